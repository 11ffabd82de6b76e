"""Presets: the shipped YAML files load, name real settings and state their stop criteria;
`scalerl train --preset` uses them under the --config file, flags and --set."""

from __future__ import annotations

import json

import pytest
import yaml

from scalerl.cli import build_parser, main
from scalerl.examples.envs import MultiAgentCartPole, StatelessCartPole
from scalerl.presets import PRESETS_DIR, list_presets, load_preset
from scalerl.utils.errors import ConfigError

REQUIRED = {
    "cartpole-ppo", "acrobot-ppo", "pendulum-ppo", "lunarlander-ppo", "cartpole-dqn",
    "cartpole-rainbow", "pendulum-sac", "stateless-cartpole-r2d2",
    "multi-agent-cartpole-ppo", "halfcheetah-sac", "hopper-ppo", "cartpole-a2c",
}  # fmt: skip


def test_list_presets_names_every_required_preset():
    assert REQUIRED <= set(list_presets())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_preset_loads_as_a_config_with_stop_criteria(name):
    # The file is one tuned-example entry named like the file.
    (key,) = yaml.safe_load((PRESETS_DIR / f"{name}.yaml").read_text())
    assert key == name
    preset = load_preset(name)
    assert set(preset.stop) == {"stop_reward", "stop_timesteps"}
    config = preset.build_config()  # every key is a setting of the algorithm
    assert type(config).__name__ == f"{preset.algo}Config"
    stored_forms = {"policies", "policy_mapping_fn"}  # decoded by the config (tested below)
    for key, value in preset.settings.items():
        if key not in stored_forms:
            assert getattr(config, key) == value, key
    config.validate()


def test_example_envs_resolve_to_scalerl_classes_and_agents_to_policies():
    assert load_preset("stateless-cartpole-r2d2").settings["env"] is StatelessCartPole
    config = load_preset("multi-agent-cartpole-ppo").build_config()
    assert config.env is MultiAgentCartPole
    assert set(config.policies) == {"p0", "p1"}
    mapping = config.get_policy_mapping_fn()
    assert (mapping(0, None), mapping(1, None)) == ("p0", "p1")


def test_rainbow_turns_every_part_on():
    s = load_preset("cartpole-rainbow").settings
    assert s["double_q"] and s["dueling"] and s["noisy"]
    assert s["n_step"] == 3 and s["num_atoms"] == 51
    assert s["replay_buffer_config"]["type"] == "prioritized"


def test_unknown_preset_suggests_the_nearest():
    with pytest.raises(ConfigError, match="Did you mean `cartpole-ppo`"):
        load_preset("cartpole-pp")


def test_train_help_lists_presets():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "--preset NAME" in text
    assert "pendulum-sac" in " ".join(text.split())


def test_cli_preset_with_overrides(tmp_path, capsys):
    """The preset's settings and stop apply; --set and flags override them."""
    ckpt = tmp_path / "ckpt"
    rc = main(
        ["train", "--preset", "pendulum-sac", "--stop-iters", "1", "--eval-episodes", "0",
         "--set", "num_steps_sampled_before_learning_starts=100",
         "--set", "min_sample_timesteps_per_iteration=200", "--checkpoint-dir", str(ckpt)]
    )  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "Training SAC on Pendulum-v1 until return >= -250 or 20,000 env steps" in out
    assert "or 1 iterations" in out
    config = json.loads((ckpt / "algorithm_state.json").read_text())["config"]
    assert config["num_steps_sampled_before_learning_starts"] == 100  # --set
    assert config["metrics_num_episodes_for_smoothing"] == 10  # the preset


@pytest.mark.parametrize("name", ["multi-agent-cartpole-ppo", "stateless-cartpole-r2d2"])
def test_cli_preset_with_an_example_env_trains_and_saves(name, tmp_path, capsys):
    """Presets naming scalerl's example envs (and an agent -> policy table) go through the
    CLI and into a checkpoint."""
    ckpt = tmp_path / "ckpt"
    small = ["--set", "train_batch_size=256", "--set", "minibatch_size=64"]
    if name.endswith("r2d2"):
        small = ["--set", "min_sample_timesteps_per_iteration=64"]
    args = ["train", "--preset", name, "--stop-iters", "1", "--eval-episodes", "0"]
    assert main([*args, *small, "--checkpoint-dir", str(ckpt)]) == 0
    config = json.loads((ckpt / "algorithm_state.json").read_text())["config"]
    assert isinstance(config["env"], dict)  # stored as the env class, not as its bare name


def test_cli_unknown_preset_exits_2(capsys):
    assert main(["train", "--preset", "nope"]) == 2
    assert "Unknown preset `nope`" in capsys.readouterr().err
