"""Vanilla policy gradient (RLlib's PG): config and training step."""

from __future__ import annotations

from typing import Any

from scalerl.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from scalerl.algorithms.on_policy import OnPolicyAlgorithm, validate_on_policy_learners
from scalerl.algorithms.pg.pg_learner import PGLearner
from scalerl.algorithms.ppo.ppo import actor_critic_module_class, check_value_function
from scalerl.core.rl_module import RLModule
from scalerl.utils.errors import ConfigError


class PGConfig(AlgorithmConfig):
    """PG settings: RLlib's PG defaults, one gradient step per sampled batch.

    Defaults that differ from `AlgorithmConfig`'s: `lr=0.0004`, `train_batch_size=200`,
    `minibatch_size=200`.
    """

    def __init__(self, algo_class: type | None = None):
        """A PG config with PG's defaults (`algo_class`: the algorithm to build)."""
        super().__init__(algo_class or PG)
        self.lr = 0.0004
        self.train_batch_size = 200
        self.minibatch_size = 200
        self.lambda_ = 1.0
        self.vf_loss_coeff = 0.5

    def training(
        self,
        *,
        lambda_: float = NotProvided,
        vf_loss_coeff: float = NotProvided,
        **kwargs: Any,
    ) -> PGConfig:
        """Set PG's settings (and, through `kwargs`, `AlgorithmConfig.training`'s).

        Args:
            lambda_: The GAE lambda of the advantages, in [0, 1]; 1 is REINFORCE's return
                G_t minus the baseline V(s_t) (bootstrapped where a fragment cuts an
                episode). Default: `1.0`.
            vf_loss_coeff: Weight of the baseline's squared error (a number >= 0).
                Default: `0.5`.
            **kwargs: `AlgorithmConfig.training`'s settings (lr, gamma, train_batch_size,
                minibatch_size, num_epochs, grad_clip, ...); any other name raises a
                ConfigError that suggests the nearest valid one.

        Returns:
            This config, for chaining.
        """
        settings = locals()
        super().training(**kwargs)
        return self._set("training", settings)

    def get_default_rl_module_class(self, model_config: dict | None = None) -> type[RLModule]:
        """PPO's modules (a policy and a value head): the LSTM/attention one for a
        recurrent `model_config`, else the MLP/CNN one."""
        return actor_critic_module_class(
            self.model_config if model_config is None else model_config
        )

    def validate(self) -> None:
        """AlgorithmConfig's checks plus the range of `lambda_` and `vf_loss_coeff`."""
        super().validate()
        self.check_number("lambda_")
        self.check_coefficient("vf_loss_coeff")
        if not 0.0 <= self.lambda_ <= 1.0:
            raise ConfigError(f"`lambda_` must be in [0, 1], got {self.lambda_!r}.")
        validate_on_policy_learners(self)
        check_value_function(self, "PG")  # the baseline V(s)


class PG(OnPolicyAlgorithm):
    """Vanilla policy gradient: REINFORCE with a learned baseline on on-policy rollouts
    (`OnPolicyAlgorithm`'s loop; the learner takes one step per batch by default)."""

    config_class = PGConfig
    learner_class = PGLearner
