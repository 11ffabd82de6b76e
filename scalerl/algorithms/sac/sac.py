"""Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and
Applications"): twin soft Q-functions with Polyak-averaged targets, a tanh-squashed
Gaussian policy and automatic entropy tuning; for Discrete actions the variant of
Christodoulou (2019), with Q(s, .) heads and a categorical policy.

    SACConfig().environment("Pendulum-v1").build_algo()   # -250 in 7-8k env steps
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from scalerl.algorithms.off_policy import OffPolicyAlgorithm
from scalerl.algorithms.replay import (
    build_replay_buffer,
    check_buffer_exponents,
    check_buffer_type,
    check_n_step,
)
from scalerl.algorithms.sac.default_sac_rl_module import (
    DefaultSACTorchRLModule,
    check_sac_action_space,
)
from scalerl.algorithms.sac.sac_learner import SACLearner
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.utils.errors import ConfigError
from scalerl.utils.schedules import validate_schedule

BUFFER_KEYS = ("type", "capacity", "alpha", "beta")


class SACConfig(AlgorithmConfig):
    """SAC settings. `train_batch_size` is the replayed batch size of one update; `grad_clip`
    (None: off) applies to each optimizer.

    Defaults that differ from `AlgorithmConfig`'s: `lr=None` (SAC uses `actor_lr`,
    `critic_lr` and `alpha_lr`; `lr` must stay None), `train_batch_size=256`,
    `minibatch_size=1` (unused: one update per replayed batch), `rollout_fragment_length=4`.
    """

    def __init__(self, algo_class: type | None = None):
        """A SAC config with SAC's defaults (`algo_class`: the algorithm to build)."""
        super().__init__(algo_class or SAC)
        self.lr = None
        self.actor_lr: Any = 3e-4
        self.critic_lr: Any = 3e-4
        self.alpha_lr: Any = 3e-4
        self.train_batch_size = 256
        self.minibatch_size = 1  # unused (one update per replayed batch); 1 passes any batch size
        self.rollout_fragment_length = 4  # weights sync per fragment; the update ratio stays
        self.twin_q = True
        self.initial_alpha = 1.0
        self.target_entropy: str | float = "auto"
        self.n_step = 1
        self.replay_buffer_config: dict[str, Any] = {"type": "uniform", "capacity": 1_000_000}
        self.tau = 5e-3
        self.target_network_update_freq = 0
        self.training_intensity: float | None = None
        self.num_steps_sampled_before_learning_starts = 1000
        self.min_sample_timesteps_per_iteration = 1000
        self.store_buffer_in_checkpoints = False

    def training(
        self,
        *,
        twin_q: bool = NotProvided,
        tau: float = NotProvided,
        initial_alpha: float = NotProvided,
        target_entropy: str | float = NotProvided,
        n_step: int | tuple[int, int] = NotProvided,
        store_buffer_in_checkpoints: bool = NotProvided,
        replay_buffer_config: dict[str, Any] = NotProvided,
        training_intensity: float | None = NotProvided,
        actor_lr: float | list = NotProvided,
        critic_lr: float | list = NotProvided,
        alpha_lr: float | list = NotProvided,
        target_network_update_freq: int = NotProvided,
        num_steps_sampled_before_learning_starts: int = NotProvided,
        min_sample_timesteps_per_iteration: int = NotProvided,
        **kwargs: Any,
    ) -> SACConfig:
        """Set SAC's settings (and, through `kwargs`, `AlgorithmConfig.training`'s).

        Args:
            twin_q: Two Q-networks, the minimum of them in the targets (True or False).
                Default: `True`.
            tau: Polyak weight of a target update, in (0, 1]. Default: `0.005`.
            initial_alpha: The initial entropy temperature (a number > 0). Default: `1.0`.
            target_entropy: The entropy alpha is tuned towards: "auto" (-dim(A) for Box
                actions, 0.98 log |A| for Discrete) or a number (nats). Default: `'auto'`.
            n_step: Steps of the n-step return (an integer >= 1), or RLlib's range
                (low, high): each stored fragment draws n uniformly from it. Default: `1`.
            store_buffer_in_checkpoints: Write the buffer's contents into checkpoints (True
                or False). Default: `False`.
            replay_buffer_config: {"type": "uniform" | "prioritized", "capacity"
                (transitions), "alpha", "beta"}. Default: `{'type': 'uniform', 'capacity':
                1000000}`.
            training_intensity: Replayed transitions per sampled one (a number > 0; update
                fractions carry over), or None: one update per sampled env step, the
                paper's ratio. Default: `None`.
            actor_lr: The policy's learning rate: a number > 0 or a schedule. Default:
                `0.0003`.
            critic_lr: The Q-networks' learning rate: a number > 0 or a schedule. Default:
                `0.0003`.
            alpha_lr: The temperature's learning rate: a number > 0 or a schedule.
                Default: `0.0003`.
            target_network_update_freq: Env steps between Polyak updates; 0: after every
                update (an integer >= 0). Default: `0`.
            num_steps_sampled_before_learning_starts: Env steps sampled before the first
                update (an integer >= 0). Default: `1000`.
            min_sample_timesteps_per_iteration: Env steps one `train()` samples at least
                (an integer >= 1; RLlib has it in `reporting()`). Default: `1000`.
            **kwargs: `AlgorithmConfig.training`'s settings (gamma, train_batch_size,
                grad_clip, ...); any other name raises a ConfigError that suggests the
                nearest valid one.

        Returns:
            This config, for chaining.
        """
        settings = locals()
        super().training(**kwargs)
        return self._set("training", settings)

    def get_default_rl_module_class(self, model_config: dict | None = None) -> type[RLModule]:
        """SAC's squashed-Gaussian (Box) or categorical (Discrete) actor with Q-networks."""
        return DefaultSACTorchRLModule

    def get_rl_module_spec(
        self, observation_space: gym.Space, action_space: gym.Space
    ) -> RLModuleSpec:
        """The module spec, checked against SAC's action spaces, with SAC's defaults."""
        spec = super().get_rl_module_spec(observation_space, action_space)
        check_sac_action_space(spec.action_space)
        if isinstance(spec.action_space, gym.spaces.Box) and not self.normalize_actions:
            low, high = spec.action_space.low, spec.action_space.high
            if not (np.all(low == -1.0) and np.all(high == 1.0)):
                raise ConfigError(
                    "SAC's squashed Gaussian acts in (-1, 1); with `normalize_actions=False` "
                    f"it cannot reach the bounds of {spec.action_space}. Set "
                    "`normalize_actions=True` (the default) to map (-1, 1) onto the Box."
                )
        spec.model_config = {
            "fcnet_activation": "relu",  # fcnet_hiddens: DefaultModelConfig's [64, 64]
            "twin_q": self.twin_q,
            **(spec.model_config or {}),
        }
        return spec

    def _validate_lr(self) -> None:
        if self.lr is not None:
            raise ConfigError(
                f"`lr` is not used by SAC (got {self.lr!r}): set `actor_lr`, `critic_lr` and "
                "`alpha_lr` instead, and leave `lr=None`."
            )
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            validate_schedule(name, getattr(self, name), positive=True)

    def validate(self) -> None:
        """AlgorithmConfig's checks plus SAC's: learning rates, target updates, alpha,
        target entropy, training intensity, the replay buffer."""
        super().validate()
        check_n_step(self)
        self._check_int("target_network_update_freq", 0)
        self._check_int("num_steps_sampled_before_learning_starts", 0)
        self._check_int("min_sample_timesteps_per_iteration", 1)
        self.check_number("tau")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"`tau` must be in (0, 1], got {self.tau!r}.")
        self.check_number("initial_alpha")
        if not self.initial_alpha > 0:
            raise ConfigError(f"`initial_alpha` must be > 0, got {self.initial_alpha!r}.")
        te = self.target_entropy
        if te != "auto" and (isinstance(te, bool) or not isinstance(te, int | float)):
            raise ConfigError(f'`target_entropy` must be "auto" or a number (nats), got {te!r}.')
        if not isinstance(self.twin_q, bool):
            raise ConfigError(f"`twin_q` must be True or False, got {self.twin_q!r}.")
        ti = self.training_intensity
        if ti is not None and (isinstance(ti, bool) or not isinstance(ti, int | float) or ti <= 0):
            raise ConfigError(f"`training_intensity` must be None or a number > 0, got {ti!r}.")
        self._validate_replay_buffer_config()

    def _validate_replay_buffer_config(self) -> None:
        rb = self.replay_buffer_config
        check_buffer_type(rb, "uniform")
        unknown = [k for k in rb if k not in BUFFER_KEYS]
        if unknown:
            raise ConfigError(
                f"`replay_buffer_config` has unknown keys {unknown}; valid: {list(BUFFER_KEYS)}."
            )
        check_buffer_exponents(rb)
        capacity = rb.get("capacity", 1)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigError(
                f"`replay_buffer_config['capacity']` must be an integer >= 1, got {capacity!r}."
            )


class SAC(OffPolicyAlgorithm):
    """SAC (Haarnoja et al., 2018): off-policy maximum-entropy actor-critic with twin Q
    functions, target networks and a learned temperature alpha; Box or Discrete actions.

    The loop is `OffPolicyAlgorithm`'s: one update per sampled env step by default; the
    EnvRunners get the policy's weights (not the critics') after updates.
    """

    config_class = SACConfig
    learner_class = SACLearner

    def make_replay_buffers(self) -> dict[str, Any]:
        """One uniform buffer per module (multi-agent: each policy replays its own agents'
        steps)."""
        return {
            mid: build_replay_buffer(
                self.config.get_config_for_module(mid).replay_buffer_config,
                default_type="uniform",
            )
            for mid in self.learner_group.module_ids
        }

    def default_updates(self, sampled: int) -> float:
        """One update per sampled env step."""
        return float(sampled)

    def sync_runners(self) -> None:
        """The policies' weights (no critics) to the EnvRunners."""
        self.env_runner_group.sync_weights(self.runner_weights(inference_only=True))
