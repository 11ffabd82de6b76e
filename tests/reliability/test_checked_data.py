"""Checked data: what envs return is checked on every step (API, shape, dtype, NaN/inf),
bad settings are refused, non-finite updates are skipped, and acting validates its input."""

import gymnasium as gym
import numpy as np
import pytest

from scalerl.algorithms.ppo import PPOConfig
from scalerl.env.multi_agent_env import MultiAgentEnv
from scalerl.utils.errors import EnvError

SMALL = dict(train_batch_size=256, minibatch_size=64, num_epochs=2)


class Faulty(gym.Wrapper):
    """CartPole that returns bad data: `nan_obs_p` / `nan_reward_p`: the chance per step of
    a NaN observation / reward; `bad_step`: at this global step return `bad_value`."""

    def __init__(self, config: dict):
        super().__init__(gym.make("CartPole-v1"))
        self.cfg = config
        self.rng = np.random.default_rng(config.get("seed", 0))
        self.count = 0

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        self.count += 1
        c = self.cfg
        if self.rng.random() < c.get("nan_obs_p", 0.0):
            obs = obs.copy()
            obs[self.rng.integers(4)] = c.get("value", np.nan)
        if self.rng.random() < c.get("nan_reward_p", 0.0):
            r = c.get("value", np.nan)
        if self.count == c.get("bad_step"):
            kind = c["kind"]
            if kind == "short_obs":
                obs = obs[:1]
            elif kind == "reward":
                r = c["bad_value"]
            elif kind == "terminated":
                term = c["bad_value"]
            elif kind == "float_for_discrete":
                obs = c["bad_value"]
        return obs, r, term, trunc, info


def config(env_config: dict, **env_kwargs) -> PPOConfig:
    return (
        PPOConfig()
        .environment(Faulty, env_config=env_config, **env_kwargs)
        .training(**SMALL)
        .debugging(seed=0)
    )


# -- observations and rewards: raise --------------------------------------------------------


def test_nan_observation_names_env_and_step():
    algo = config(
        {"bad_step": 37, "kind": "reward", "bad_value": 1.0, "nan_obs_p": 0.0}
    ).build_algo()
    algo.train()  # clean data trains
    algo.stop()
    algo = config({"nan_obs_p": 0.01, "seed": 3}).build_algo()
    with pytest.raises(EnvError) as e:
        for _ in range(5):
            algo.train()
    msg = str(e.value)
    assert "Faulty" in msg and "non-finite observation" in msg
    assert "episode step" in msg and "env step" in msg and "nan" in msg
    assert "on_nonfinite='drop'" in msg
    algo.stop()


def test_nan_and_inf_rewards_raise():
    for value in (np.nan, np.inf, -np.inf):
        algo = config({"nan_reward_p": 0.02, "value": value}).build_algo()
        with pytest.raises(EnvError, match="non-finite reward"):
            for _ in range(5):
                algo.train()
        algo.stop()


def test_error_names_the_exact_step():
    """A NaN reward at env step 100 of one env: the message names runner step 100."""
    algo = config({"bad_step": 100, "kind": "reward", "bad_value": float("nan")}).build_algo()
    with pytest.raises(EnvError, match=r"the runner's env step 100\)"):
        algo.train()
    algo.stop()


def test_evaluation_checks_every_step():
    algo = config({"nan_obs_p": 0.05}).evaluation(evaluation_duration=3).build_algo()
    with pytest.raises(EnvError, match="non-finite observation"):
        algo.evaluate()
    algo.stop()


# -- observations and rewards: drop -----------------------------------------------------------


@pytest.mark.parametrize("num_envs", [1, 4])
def test_drop_counts_and_weights_stay_finite(num_envs):
    algo = (
        config({"nan_obs_p": 0.01, "nan_reward_p": 0.01}, on_nonfinite="drop")
        .env_runners(num_envs_per_env_runner=num_envs)
        .build_algo()
    )
    dropped = 0
    for _ in range(4):
        result = algo.train()
        dropped += result["env_runners"]["num_nonfinite_dropped"]
        assert np.isfinite(result["env_runners"]["episode_return_mean"])
        assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
    assert dropped > 0
    assert result["env_runners"]["num_nonfinite_dropped_lifetime"] == dropped
    weights = algo.get_weights()["default_policy"]
    assert all(np.isfinite(w).all() for w in weights.values())
    algo.stop()


def test_drop_recurrent_module():
    algo = (
        config({"nan_obs_p": 0.02}, on_nonfinite="drop")
        .env_runners(num_envs_per_env_runner=3)
        .rl_module(model_config={"use_lstm": True, "max_seq_len": 8, "lstm_cell_size": 16})
        .build_algo()
    )
    for _ in range(2):
        result = algo.train()
    assert result["env_runners"]["num_nonfinite_dropped_lifetime"] > 0
    assert all(np.isfinite(w).all() for w in algo.get_weights()["default_policy"].values())
    algo.stop()


def test_checks_off_the_learner_guard_still_stops_nan():
    """`check_env_steps=False` (the benchmark's baseline) does not look at the data; the
    learner then skips the NaN updates and stops the run, naming the module."""
    from scalerl.utils.errors import NonFiniteUpdateError

    algo = config({"nan_obs_p": 0.01}, check_env_steps=False).build_algo()
    with pytest.raises(NonFiniteUpdateError, match="default_policy"):
        for _ in range(5):
            algo.train()
    after = algo.get_weights()["default_policy"]
    assert all(np.isfinite(w).all() for w in after.values())
    algo.stop()


# -- shapes, dtypes, API ----------------------------------------------------------------------


def test_shape_change_at_step_7_is_an_error():
    algo = config({"bad_step": 7, "kind": "short_obs"}).build_algo()
    with pytest.raises(EnvError, match=r"shape \(1,\), expected \(4,\)") as e:
        algo.train()
    assert "episode step 7" in str(e.value) and "Faulty" in str(e.value)
    algo.stop()


@pytest.mark.parametrize("bad", [None, "1.0", [1.0, 2.0]])
def test_bad_reward_types(bad):
    algo = config({"bad_step": 5, "kind": "reward", "bad_value": bad}).build_algo()
    with pytest.raises(EnvError, match="reward"):
        algo.train()
    algo.stop()


@pytest.mark.parametrize("bad", [None, 0, "yes"])
def test_non_bool_terminated(bad):
    algo = config({"bad_step": 5, "kind": "terminated", "bad_value": bad}).build_algo()
    with pytest.raises(EnvError, match="`terminated`.*must be a bool"):
        algo.train()
    algo.stop()


class OldGym(gym.Env):
    """The pre-0.26 Gym API: reset() -> obs, step() -> (obs, reward, done, info)."""

    observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        self.reset_ok = (config or {}).get("reset_ok", False)

    def reset(self, *, seed=None, options=None):
        obs = np.zeros(4, np.float32)
        return (obs, {}) if self.reset_ok else obs

    def step(self, action):
        return np.zeros(4, np.float32), 1.0, False, {}


@pytest.mark.parametrize("reset_ok", [False, True])
def test_old_gym_api_names_the_gymnasium_api(reset_ok):
    algo = PPOConfig().environment(OldGym, env_config={"reset_ok": reset_ok}).training(**SMALL)
    algo = algo.build_algo()
    with pytest.raises(EnvError) as e:
        algo.train()
    msg = str(e.value)
    assert "OldGym" in msg
    assert "reset() returned" in msg if not reset_ok else "step() returned a 4-tuple" in msg
    assert "step(action) -> (obs, reward, terminated, truncated, info)" in msg
    assert "reset(*, seed=None, options=None) -> (obs, info)" in msg
    assert "shimmy" in msg
    algo.stop()


def test_float_observation_for_integer_space():
    class Grid(gym.Env):
        observation_space = gym.spaces.Discrete(5)
        action_space = gym.spaces.Discrete(2)

        def __init__(self, config=None):
            pass

        def reset(self, *, seed=None, options=None):
            return 0, {}

        def step(self, action):
            return 1.5, 0.0, False, False, {}

    algo = PPOConfig().environment(Grid).training(**SMALL).build_algo()
    with pytest.raises(EnvError, match="dtype float64"):
        algo.train()
    algo.stop()


def test_discrete_python_ints_are_fine():
    algo = PPOConfig().environment("FrozenLake-v1").training(**SMALL).build_algo()
    algo.train()
    algo.stop()


# -- multi-agent ------------------------------------------------------------------------------


def multi_agent_config(env_config: dict, **env_kwargs) -> PPOConfig:
    from scalerl.env.multi_agent_env import make_multi_agent
    from scalerl.env.registry import register_env

    register_env("faulty", Faulty)
    return (
        PPOConfig()
        .environment(make_multi_agent("faulty"), env_config=env_config, **env_kwargs)
        .multi_agent(policies={"p0", "p1"}, policy_mapping_fn=lambda aid, ep, **kw: f"p{aid}")
        .training(**SMALL)
        .debugging(seed=0)
    )


@pytest.mark.parametrize("kind", ["nan_obs_p", "nan_reward_p"])
def test_multi_agent_nan_names_agent(kind):
    algo = multi_agent_config({"num_agents": 2, kind: 0.01}).build_algo()
    with pytest.raises(EnvError) as e:
        for _ in range(5):
            algo.train()
    msg = str(e.value)
    what = "observation" if kind == "nan_obs_p" else "reward"
    assert f"non-finite {what}" in msg and "for agent " in msg and "episode step" in msg
    algo.stop()


def test_multi_agent_shape_change_names_agent():
    """At step 30: after the full API check of the first 20 steps, the per-step checks."""
    algo = multi_agent_config({"num_agents": 2, "bad_step": 30, "kind": "short_obs"}).build_algo()
    with pytest.raises(EnvError, match=r"for agent \d at episode step \d+.*shape \(1,\)"):
        algo.train()
    algo.stop()


def test_multi_agent_none_reward_names_the_api():
    algo = multi_agent_config(
        {"num_agents": 2, "bad_step": 30, "kind": "reward", "bad_value": None}
    ).build_algo()
    with pytest.raises(EnvError, match=r"reward of agent 0 None .*step\(action\) -> \(obs, reward"):
        algo.train()
    algo.stop()


def test_multi_agent_drop():
    algo = (
        multi_agent_config(
            {"num_agents": 2, "nan_obs_p": 0.01, "nan_reward_p": 0.01}, on_nonfinite="drop"
        )
        .env_runners(num_envs_per_env_runner=2)
        .build_algo()
    )
    dropped = 0
    for _ in range(3):
        result = algo.train()
        dropped += result["env_runners"]["num_nonfinite_dropped"]
        for mid in ("p0", "p1"):
            assert np.isfinite(result["learners"][mid]["total_loss"])
    assert dropped > 0
    for weights in algo.get_weights().values():
        assert all(np.isfinite(w).all() for w in weights.values())
    algo.stop()


# -- non-finite updates -----------------------------------------------------------------------


def poisoned_ppo(monkeypatch, bad_calls: set, term: str = "vf_loss"):
    """PPO (autograd path) whose loss term `term` is NaN on the update calls in `bad_calls`."""
    import torch

    from scalerl.algorithms.ppo import ppo_learner

    real = ppo_learner.ppo_loss
    calls = []

    def loss(*args, **kwargs):
        total, stats = real(*args, **kwargs)
        calls.append(1)
        if len(calls) in bad_calls:
            stats[term] = stats[term] * torch.tensor(float("nan"))
            total = total + stats[term]
        return total, stats

    monkeypatch.setattr(ppo_learner, "ppo_loss", loss)
    # Autograd on the patched loss, not the registered hand-written gradient.
    monkeypatch.setattr(ppo_learner.PPOLearner, "fast_gradient", lambda self: None)
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=64, minibatch_size=64, num_epochs=1)
        .debugging(seed=0)
        .build_algo()
    )


def test_non_finite_update_is_skipped_and_counted(monkeypatch):
    algo = poisoned_ppo(monkeypatch, bad_calls={1, 2})
    before = algo.get_weights()["default_policy"]
    result = algo.train()  # update 1: NaN, skipped
    after = algo.get_weights()["default_policy"]
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert result["learners"]["default_policy"]["num_non_finite_updates_skipped"] == 1
    algo.train()  # update 2: NaN, skipped
    result = algo.train()  # update 3: fine, applied
    assert result["learners"]["default_policy"]["num_non_finite_updates_skipped"] == 2
    changed = algo.get_weights()["default_policy"]
    assert any(not np.array_equal(before[k], changed[k]) for k in before)
    assert all(np.isfinite(w).all() for w in changed.values())
    algo.stop()


def test_non_finite_updates_in_a_row_raise_naming_module_and_term(monkeypatch):
    from scalerl.core.learner import MAX_NON_FINITE_UPDATES_IN_A_ROW
    from scalerl.utils.errors import NonFiniteUpdateError

    algo = poisoned_ppo(monkeypatch, bad_calls=set(range(1, 100)), term="entropy")
    before = algo.get_weights()["default_policy"]
    for _ in range(MAX_NON_FINITE_UPDATES_IN_A_ROW - 1):
        algo.train()
    with pytest.raises(NonFiniteUpdateError) as e:
        algo.train()
    assert "default_policy" in str(e.value) and "entropy=nan" in str(e.value)
    after = algo.get_weights()["default_policy"]
    assert all(np.array_equal(before[k], after[k]) for k in before)
    algo.stop()


def test_sac_non_finite_update_skipped(monkeypatch):
    import torch

    from scalerl.algorithms.sac import SACConfig, sac_learner
    from scalerl.core import fast_gradients

    real = sac_learner.sac_losses
    calls = []

    def losses(*args, **kwargs):
        losses, td, stats = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            losses = {k: v * torch.tensor(float("nan")) for k, v in losses.items()}
        return losses, td, stats

    monkeypatch.setattr(sac_learner, "sac_losses", losses)
    # The autograd path (the hand-written one never calls `sac_losses`).
    pair = (sac_learner.SACLearner, sac_learner.DefaultSACTorchRLModule)
    monkeypatch.delitem(fast_gradients._FAST_GRADIENTS, pair)
    algo = (
        SACConfig()
        .environment("Pendulum-v1")
        .training(
            train_batch_size=32,
            num_steps_sampled_before_learning_starts=64,
            min_sample_timesteps_per_iteration=100,
        )
        .debugging(seed=0)
        .build_algo()
    )
    result = algo.train()
    stats = result["learners"]["default_policy"]
    assert stats["num_non_finite_updates_skipped"] == 3  # actor, critic and alpha steps
    assert all(np.isfinite(w).all() for w in algo.get_weights()["default_policy"].values())
    algo.stop()


# -- acting -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_algo():
    algo = PPOConfig().environment("CartPole-v1").training(**SMALL).build_algo()
    yield algo
    algo.stop()


def test_compute_single_action_accepts_lists_and_tuples(cartpole_algo):
    obs = [0.01, -0.02, 0.03, 0.04]
    expected = cartpole_algo.compute_single_action(np.array(obs, dtype=np.float32))
    assert cartpole_algo.compute_single_action(obs) == expected
    assert cartpole_algo.compute_single_action(tuple(obs)) == expected
    batch = cartpole_algo.compute_actions([obs, obs])
    assert list(batch) == [expected, expected]


@pytest.mark.parametrize(
    "obs, match",
    [
        ([0.1, 0.2, 0.3], r"shape \(3,\), expected \(4,\)"),
        ([[0.1, 0.2, 0.3, 0.4]], r"shape \(1, 4\), expected \(4,\)"),
        (0.5, r"shape \(\), expected \(4,\)"),
        ([0.1, float("nan"), 0.3, 0.4], "non-finite"),
        ([0.1, float("inf"), 0.3, 0.4], "non-finite"),
        (["a", "b", "c", "d"], "non-numeric"),
        (None, "non-numeric"),
    ],
)
def test_compute_single_action_rejects_bad_observations(cartpole_algo, obs, match):
    with pytest.raises(ValueError, match=match) as e:
        cartpole_algo.compute_single_action(obs)
    assert "Box(" in str(e.value) and "(4,)" in str(e.value)


def test_compute_actions_rejects_bad_batches(cartpole_algo):
    with pytest.raises(ValueError, match=r"shape \(2, 3\), expected \(2, 4\)"):
        cartpole_algo.compute_actions(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        cartpole_algo.compute_actions(np.full((2, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="no batch axis"):
        cartpole_algo.compute_actions(np.float32(0.5))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        cartpole_algo.compute_actions({"a": [0.0] * 4, "b": [0.0] * 3})


def test_compute_single_action_discrete_and_dict_spaces():
    class DictEnv(gym.Env):
        observation_space = gym.spaces.Dict(
            {"pos": gym.spaces.Discrete(5), "vel": gym.spaces.Box(-1, 1, (2,), np.float32)}
        )
        action_space = gym.spaces.Discrete(2)

        def __init__(self, config=None):
            pass

        def reset(self, *, seed=None, options=None):
            return {"pos": 0, "vel": np.zeros(2, np.float32)}, {}

        def step(self, action):
            return {"pos": 1, "vel": np.zeros(2, np.float32)}, 0.0, True, False, {}

    algo = PPOConfig().environment(DictEnv).training(**SMALL).build_algo()
    assert algo.compute_single_action({"pos": 3, "vel": [0.1, -0.1]}) in (0, 1)
    with pytest.raises(ValueError, match=r"keys \['pos', 'vel'\], got \['pos'\]"):
        algo.compute_single_action({"pos": 3})
    with pytest.raises(ValueError, match=r"\['pos'\].*outside its range"):
        algo.compute_single_action({"pos": 7, "vel": [0.1, -0.1]})
    with pytest.raises(ValueError, match=r"\['pos'\].*non-integer"):
        algo.compute_single_action({"pos": 2.5, "vel": [0.1, -0.1]})
    algo.stop()


class OldGymMultiAgent(MultiAgentEnv):
    """A MultiAgentEnv whose step() returns the old 4-tuple (no truncateds)."""

    def __init__(self, config=None):
        super().__init__()
        self.possible_agents = self.agents = [0, 1]
        box = gym.spaces.Box(-1, 1, (4,), np.float32)
        self.observation_spaces = {0: box, 1: box}
        self.action_spaces = {0: gym.spaces.Discrete(2), 1: gym.spaces.Discrete(2)}

    def reset(self, *, seed=None, options=None):
        return {a: np.zeros(4, np.float32) for a in self.agents}, {}

    def step(self, action_dict):
        obs = {a: np.zeros(4, np.float32) for a in action_dict}
        return obs, dict.fromkeys(action_dict, 1.0), {"__all__": False}, {}


def test_multi_agent_old_gym_step_names_the_api():
    algo = (
        PPOConfig()
        .environment(OldGymMultiAgent)
        .multi_agent(policies={"p"}, policy_mapping_fn=lambda aid, ep, **kw: "p")
        .training(**SMALL)
        .build_algo()
    )
    with pytest.raises(EnvError, match=r"step\(\) returned a 4-tuple.*MultiAgentEnv"):
        algo.train()
    algo.stop()


def test_multi_agent_evaluation_checks_every_step():
    algo = (
        multi_agent_config({"num_agents": 2, "nan_obs_p": 0.05})
        .evaluation(evaluation_duration=3)
        .build_algo()
    )
    with pytest.raises(EnvError, match="non-finite observation.*for agent"):
        algo.evaluate()
    algo.stop()


def test_compatible_dtypes_and_lists_are_accepted():
    """float64 (or int, or a list) for a float32 Box casts safely: no error, every step."""

    class Loose(gym.Env):
        observation_space = gym.spaces.Box(-10, 10, (3,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def __init__(self, config=None):
            self.t = 0

        def reset(self, *, seed=None, options=None):
            self.t = 0
            return np.zeros(3), {}  # float64

        def step(self, action):
            self.t += 1
            obs = [1, 2, 3] if self.t % 3 == 0 else np.full(3, 0.5)  # a list, float64
            return obs, 1, False, np.bool_(self.t >= 10), {}  # int reward, numpy bool

    algo = PPOConfig().environment(Loose).training(**SMALL).build_algo()
    result = algo.train()
    assert result["env_runners"]["episode_return_mean"] == 10.0
    algo.stop()
