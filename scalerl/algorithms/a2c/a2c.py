"""Synchronous advantage actor-critic (A2C; Mnih et al. 2016's A3C, synchronous, as RLlib's
old stack had it): config and training step."""

from __future__ import annotations

from typing import Any

from scalerl.algorithms.a2c.a2c_learner import A2CLearner
from scalerl.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from scalerl.algorithms.on_policy import OnPolicyAlgorithm, validate_on_policy_learners
from scalerl.algorithms.ppo.ppo import actor_critic_module_class, check_value_function
from scalerl.core.rl_module import RLModule
from scalerl.utils.errors import ConfigError
from scalerl.utils.schedules import validate_schedule


class A2CConfig(AlgorithmConfig):
    """A2C settings: RLlib's old-stack A2C/A3C names and defaults where they learn
    (`lambda_=1.0`, `use_gae=True`, `vf_loss_coeff=0.5`, `entropy_coeff=0.01`,
    `grad_clip=40.0`, `microbatch_size=None`), one gradient step per train batch.

    Defaults that differ from `AlgorithmConfig`'s: `lr=0.0007`, `train_batch_size=200`,
    `grad_clip=40.0`. There are no epochs and no minibatches: `num_epochs` must stay 1 and
    `minibatch_size` reads as the whole train batch (setting it to anything else is a
    ConfigError; `microbatch_size` accumulates gradients over smaller pieces instead).
    """

    def __init__(self, algo_class: type | None = None):
        """An A2C config with A2C's defaults (`algo_class`: the algorithm to build)."""
        super().__init__(algo_class or A2C)
        self.lr = 7e-4
        self.train_batch_size = 200
        self.grad_clip = 40.0
        self.lambda_ = 1.0
        self.use_gae = True
        self.vf_loss_coeff = 0.5
        self.entropy_coeff: Any = 0.01
        self.microbatch_size: int | None = None
        self._minibatch_size: int | None = None  # None: the train batch (the only choice)

    @property
    def minibatch_size(self) -> int:
        """A2C's one step per batch: the minibatch is the whole train batch."""
        return self.total_train_batch_size

    @minibatch_size.setter
    def minibatch_size(self, value: int | None) -> None:
        # Kept to refuse a different value in `validate` (AlgorithmConfig's __init__ sets it).
        self._minibatch_size = value

    def training(
        self,
        *,
        lambda_: float = NotProvided,
        use_gae: bool = NotProvided,
        vf_loss_coeff: float = NotProvided,
        entropy_coeff: float | list = NotProvided,
        microbatch_size: int | None = NotProvided,
        **kwargs: Any,
    ) -> A2CConfig:
        """Set A2C's settings (and, through `kwargs`, `AlgorithmConfig.training`'s).

        Args:
            lambda_: The GAE lambda of the advantages, in [0, 1]. Default: `1.0` (the
                paper's n-step returns R_t - V(s_t), n = the steps to the fragment's end).
            use_gae: True: advantages by GAE with `lambda_`; False: n-step returns,
                bootstrapped by V at the end of each fragment (GAE with lambda = 1, whatever
                `lambda_` says). Default: `True`.
            vf_loss_coeff: Weight of the value loss (a number >= 0). Default: `0.5`.
            entropy_coeff: Weight of the entropy bonus: a number >= 0 or a schedule
                [[timestep, value], ...]. Default: `0.01`.
            microbatch_size: None: one forward/backward pass on the whole train batch; an
                integer >= 1: gradients accumulated over microbatches of that many rows,
                then one optimizer step (the same step, in less memory). Default: `None`.
            **kwargs: `AlgorithmConfig.training`'s settings (lr, gamma, train_batch_size,
                train_batch_size_per_learner, grad_clip, ...); `num_epochs` must stay 1 and
                `minibatch_size` unset (A2C takes one step per batch); any other name
                raises a ConfigError that suggests the nearest valid one.

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
        """AlgorithmConfig's checks plus A2C's: one step per batch (no epochs, no
        minibatches), the ranges of `lambda_`, the coefficients and `microbatch_size`."""
        if self.num_epochs != 1:
            raise ConfigError(
                f"A2C takes one gradient step per train batch: `num_epochs` must be 1, got "
                f"{self.num_epochs!r} (for several passes over a batch use PPO)."
            )
        if self._minibatch_size not in (None, self.total_train_batch_size):
            raise ConfigError(
                f"A2C takes one gradient step on the whole train batch: `minibatch_size` "
                f"must be left unset, got {self._minibatch_size!r}. To bound memory, "
                "accumulate gradients with `microbatch_size`; for minibatch SGD use PPO."
            )
        super().validate()
        self.check_number("lambda_")
        self.check_coefficient("vf_loss_coeff")
        if not 0.0 <= self.lambda_ <= 1.0:
            raise ConfigError(f"`lambda_` must be in [0, 1], got {self.lambda_!r}.")
        validate_schedule("entropy_coeff", self.entropy_coeff, minimum=0.0)
        if self.microbatch_size is not None:
            self._check_int("microbatch_size", 1, "or None")
            if self.microbatch_size > self.total_train_batch_size:
                raise ConfigError(
                    f"`microbatch_size` ({self.microbatch_size}) must not exceed the train "
                    f"batch size ({self.total_train_batch_size}), or be None."
                )
        validate_on_policy_learners(self)
        check_value_function(self, "A2C")  # the critic V(s)


class A2C(OnPolicyAlgorithm):
    """A2C: sample a rollout from every env with the current policy, take one gradient step
    of the actor-critic loss on it (`A2CLearner`), send the new weights back
    (`OnPolicyAlgorithm`'s loop)."""

    config_class = A2CConfig
    learner_class = A2CLearner
