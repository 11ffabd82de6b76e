"""Proximal Policy Optimization (Schulman et al. 2017): config and training step."""

from __future__ import annotations

from typing import Any

from scalerl.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from scalerl.algorithms.on_policy import OnPolicyAlgorithm, validate_on_policy_learners
from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule
from scalerl.algorithms.ppo.ppo_learner import PPOLearner
from scalerl.algorithms.ppo.recurrent_ppo_rl_module import (
    RecurrentPPOTorchRLModule,
    is_recurrent_config,
)
from scalerl.core.rl_module import RLModule
from scalerl.utils.errors import ConfigError
from scalerl.utils.schedules import validate_schedule


class PPOConfig(AlgorithmConfig):
    """PPO settings. Defaults solve classic-control tasks without tuning.

    Defaults that differ from `AlgorithmConfig`'s: `lr=0.0003`, `num_epochs=10`,
    `grad_clip=0.5`.
    """

    multi_agent_memory = True  # recurrent modules train on multi-agent fragments too

    def __init__(self, algo_class: type | None = None):
        """A PPO config with PPO's defaults (`algo_class`: the algorithm to build)."""
        super().__init__(algo_class or PPO)
        self.lr = 3e-4
        self.train_batch_size = 4000
        self.minibatch_size = 128
        self.num_epochs = 10
        self.grad_clip = 0.5
        self.lambda_ = 0.95
        self.clip_param = 0.2
        self.vf_clip_param: float | None = None
        self.vf_loss_coeff = 0.5
        self.entropy_coeff: Any = 0.0
        self.use_kl_loss = False
        self.kl_coeff = 0.2
        self.kl_target = 0.01
        self.use_critic = True
        self.use_gae = True

    def training(
        self,
        *,
        use_critic: bool = NotProvided,
        use_gae: bool = NotProvided,
        lambda_: float = NotProvided,
        use_kl_loss: bool = NotProvided,
        kl_coeff: float = NotProvided,
        kl_target: float = NotProvided,
        vf_loss_coeff: float = NotProvided,
        entropy_coeff: float | list = NotProvided,
        clip_param: float = NotProvided,
        vf_clip_param: float | None = NotProvided,
        **kwargs: Any,
    ) -> PPOConfig:
        """Set PPO's settings (and, through `kwargs`, `AlgorithmConfig.training`'s).

        Args:
            use_critic: Learn a value function; PPO here always does (must stay True).
                Default: `True`.
            use_gae: Advantages by GAE; PPO here always does (must stay True). Default:
                `True`.
            lambda_: The GAE lambda, in [0, 1]. Default: `0.95`.
            use_kl_loss: Add a KL(old || new) penalty with an adaptive coefficient (True or
                False). Default: `False`.
            kl_coeff: The initial KL coefficient (a number >= 0). Default: `0.2`.
            kl_target: The KL the coefficient adapts towards (a number > 0). Default:
                `0.01`.
            vf_loss_coeff: Weight of the value loss (a number >= 0). Default: `0.5`.
            entropy_coeff: Weight of the entropy bonus: a number >= 0 or a schedule
                [[timestep, value], ...]. Default: `0.0`.
            clip_param: The surrogate's clip range epsilon (a number > 0). Default: `0.2`.
            vf_clip_param: Clip of the squared value error (a number > 0), or None: no
                clipping. Default: `None`.
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
        """The LSTM/attention module for a recurrent `model_config`, else the MLP/CNN one."""
        return actor_critic_module_class(
            self.model_config if model_config is None else model_config
        )

    def validate(self) -> None:
        """AlgorithmConfig's checks plus PPO's: ranges of lambda_, clip and KL settings,
        schedules, and a custom module's value function."""
        super().validate()
        for name in ("lambda_", "clip_param", "kl_target"):
            self.check_number(name)
        for name in ("vf_loss_coeff", "kl_coeff"):
            self.check_coefficient(name)
        if self.vf_clip_param is not None:
            self.check_number("vf_clip_param", "or None")
        if not 0.0 <= self.lambda_ <= 1.0:
            raise ConfigError(f"`lambda_` must be in [0, 1], got {self.lambda_!r}.")
        if not self.clip_param > 0:
            raise ConfigError(f"`clip_param` must be > 0, got {self.clip_param!r}.")
        if self.vf_clip_param is not None and not self.vf_clip_param > 0:
            raise ConfigError(f"`vf_clip_param` must be > 0 or None, got {self.vf_clip_param!r}.")
        if self.kl_coeff < 0 or self.kl_target <= 0:
            raise ConfigError("`kl_coeff` must be >= 0 and `kl_target` > 0.")
        if not (self.use_critic and self.use_gae):
            raise ConfigError(
                "PPO here always uses a critic with GAE: `use_critic` and `use_gae` must stay True."
            )
        validate_schedule("entropy_coeff", self.entropy_coeff, minimum=0.0)
        validate_on_policy_learners(self)
        check_value_function(self, "PPO")


def actor_critic_module_class(model_config: dict) -> type[RLModule]:
    """The default module of PPO and PG (a policy and a value head): the LSTM/attention one
    for a recurrent `model_config`, else the MLP/CNN one."""
    if is_recurrent_config(model_config):
        return RecurrentPPOTorchRLModule
    return DefaultPPOTorchRLModule


def check_value_function(config: AlgorithmConfig, algo: str) -> None:
    """`algo` needs V(s) (GAE, value loss): a custom module must implement the value API."""
    module_class = config.rl_module_spec.module_class if config.rl_module_spec else None
    if module_class is not None and not callable(getattr(module_class, "compute_values", None)):
        raise ConfigError(
            f"{algo} needs state values, but the custom module class `{module_class.__name__}` "
            "(`config.rl_module(rl_module_spec=RLModuleSpec(module_class=...))`) has no "
            "`compute_values(batch, embeddings=None) -> Tensor[B]`. Subclass "
            "`scalerl.core.rl_module.ValueFunctionAPI` and implement it (its "
            "`_forward_train` may also return the values as `Columns.VF_PREDS`)."
        )


class PPO(OnPolicyAlgorithm):
    """PPO (Schulman et al., 2017): the clipped surrogate objective on on-policy rollouts, with
    GAE advantages and an optional adaptive KL penalty.
    """

    config_class = PPOConfig
    learner_class = PPOLearner
