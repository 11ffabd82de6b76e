"""R2D2: Recurrent Experience Replay in Distributed RL (Kapturowski et al. 2019).

DQN (double Q, dueling, n-step, prioritized replay) with an LSTM Q-network trained on
replayed sequences:

- EnvRunners act epsilon-greedily with the LSTM, carry its state per env and record it
  every `max_seq_len` steps of each episode;
- the driver cuts their fragments into sequences of `burn_in + max_seq_len` steps that
  start every `max_seq_len` steps (overlapping by `burn_in`), stores them with that
  stored state, and replays them uniformly or by priority;
- the learner unrolls the online and target networks from the stored state, uses the
  first `burn_in` steps only to refresh the state, and regresses the rest on n-step
  double-Q targets under the value rescaling h.

Settings keep the names of RLlib's R2D2 (`burn_in`, `zero_init_states`, `use_h_function`,
`h_function_epsilon`, the LSTM in `model_config`). One difference: RLlib's docs count the
burn-in inside `max_seq_len`, its code adds it; here, as in the paper and RLlib's code,
a replayed sequence is `burn_in + max_seq_len` steps and `max_seq_len` are trained.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from scalerl.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from scalerl.algorithms.dqn.dqn import DQN, DQNConfig
from scalerl.algorithms.r2d2.r2d2_learner import R2D2Learner
from scalerl.algorithms.r2d2.recurrent_dqn_rl_module import (
    R2D2_MODEL_DEFAULTS,
    RecurrentDQNTorchRLModule,
)
from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.columns import Columns
from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.utils.errors import ConfigError
from scalerl.utils.replay_buffers import (
    PrioritizedSequenceReplayBuffer,
    SequenceCutter,
    SequenceReplayBuffer,
)

BUFFER_DEFAULTS = {"type": "prioritized", "capacity": 10_000, "alpha": 0.9, "beta": 0.6, "eta": 0.9}
# RLlib keeps these in `replay_buffer_config`; here they are plain settings (or derived).
RLLIB_BUFFER_KEYS = {
    "replay_burn_in": "set `burn_in` in `.training()`",
    "zero_init_states": "set `zero_init_states` in `.training()`",
    "replay_sequence_length": "it is `burn_in + model_config['max_seq_len']`",
    "storage_unit": "R2D2 always stores sequences",
}


class R2D2Config(DQNConfig):
    """R2D2 settings. `train_batch_size` is the number of sequences per update.

    The LSTM: `.rl_module(model_config={"use_lstm": True, "max_seq_len": ...,
    "lstm_cell_size": ..., "lstm_use_prev_action": ..., "lstm_use_prev_reward": ...})`.
    `training_intensity` counts trained steps replayed per env step sampled (None: one
    update per sampling round); `replay_buffer_config` takes "eta" (the priority mix of
    max and mean TD error) and counts `capacity` in sequences.

    Defaults that differ from `DQNConfig`'s: `minibatch_size=1` (unused), `n_step=3`,
    `replay_buffer_config={'type': 'prioritized', 'capacity': 10000, 'alpha': 0.9,
    'beta': 0.6, 'eta': 0.9}`, `target_network_update_freq=2000`,
    `epsilon=[[0, 1.0], [50000, 0.02]]`, `num_steps_sampled_before_learning_starts=2000`.
    """

    def __init__(self, algo_class: type | None = None):
        """An R2D2 config with R2D2's defaults (`algo_class`: the algorithm to build)."""
        super().__init__(algo_class or R2D2)
        self.burn_in = 20
        self.zero_init_states = False
        self.use_h_function = True
        self.h_function_epsilon = 1e-3
        self.lr = 5e-4
        self.train_batch_size = 32
        self.minibatch_size = 1  # unused: one update per replayed batch
        self.n_step = 3
        self.replay_buffer_config = dict(BUFFER_DEFAULTS)
        self.target_network_update_freq = 2000
        self.epsilon = [[0, 1.0], [50_000, 0.02]]
        self.num_steps_sampled_before_learning_starts = 2000

    def training(
        self,
        *,
        burn_in: int = NotProvided,
        zero_init_states: bool = NotProvided,
        use_h_function: bool = NotProvided,
        h_function_epsilon: float = NotProvided,
        **kwargs: Any,
    ) -> R2D2Config:
        """Set R2D2's settings (and, through `kwargs`, `DQNConfig.training`'s).

        Args:
            burn_in: Steps before the `max_seq_len` trained ones that only unroll the LSTM
                to refresh its stored state (an integer >= 0). Default: `20`.
            zero_init_states: Start every replayed sequence from the initial state instead
                of the stored one (True or False). Default: `False`.
            use_h_function: Value rescaling h(x) of the targets (True or False). Default:
                `True`.
            h_function_epsilon: The epsilon of h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x
                (a number > 0). Default: `0.001`.
            **kwargs: `DQNConfig.training`'s and `AlgorithmConfig.training`'s settings;
                any other name raises a ConfigError that suggests the nearest valid one.

        Returns:
            This config, for chaining.
        """
        settings = locals()
        super().training(**kwargs)
        return self._set("training", settings)

    def get_default_rl_module_class(self, model_config: dict | None = None) -> type[RLModule]:
        """R2D2's LSTM Q-network."""
        return RecurrentDQNTorchRLModule

    def get_rl_module_spec(
        self, observation_space: gym.Space, action_space: gym.Space
    ) -> RLModuleSpec:
        """The module spec, with R2D2's LSTM defaults and the dueling setting."""
        spec = AlgorithmConfig.get_rl_module_spec(self, observation_space, action_space)
        spec.model_config = {
            **R2D2_MODEL_DEFAULTS,
            "dueling": self.dueling,
            **(spec.model_config or {}),
        }
        return spec

    def validate(self) -> None:
        """DQNConfig's checks plus R2D2's: burn-in, value rescaling, the buffer's keys and
        a recurrent module whose sequences hold `n_step`."""
        super().validate()
        if self.is_multi_agent:
            raise ConfigError(
                "R2D2 is single-agent so far: drop `config.multi_agent(...)` (PPO, DQN and "
                "SAC train several policies)."
            )
        self._check_int("burn_in", 0)
        self.check_number("h_function_epsilon")
        if self.h_function_epsilon <= 0:
            raise ConfigError(
                f"`h_function_epsilon` must be > 0, got {self.h_function_epsilon!r} (turn the "
                "value rescaling off with `use_h_function=False`)."
            )
        for key, hint in RLLIB_BUFFER_KEYS.items():
            if key in self.replay_buffer_config:
                raise ConfigError(f"`replay_buffer_config[{key!r}]` is not used by R2D2: {hint}.")
        if self.num_atoms != 1 or self.noisy:
            raise ConfigError(
                "R2D2 learns scalar Q-values with epsilon-greedy exploration: set "
                f"`num_atoms=1` and `noisy=False` (got num_atoms={self.num_atoms}, "
                f"noisy={self.noisy})."
            )
        if self.rl_module_spec is not None and self.rl_module_spec.module_class is not None:
            return  # a custom module: checked when built (R2D2.__init__)
        mc = {**R2D2_MODEL_DEFAULTS, **self.model_config}
        if not mc.get("use_lstm") or mc.get("use_attention"):
            raise ConfigError(
                "R2D2 needs a recurrent Q-network: `model_config` must have `use_lstm=True` "
                f"(and no `use_attention`); got use_lstm={mc.get('use_lstm')!r}, "
                f"use_attention={mc.get('use_attention', False)!r}. For a memoryless "
                "Q-network use DQN."
            )
        length = self.burn_in + mc["max_seq_len"]
        if self.n_step > length:
            raise ConfigError(
                f"`n_step` ({self.n_step}) must not exceed the replayed sequence length "
                f"`burn_in + max_seq_len` ({self.burn_in} + {mc['max_seq_len']} = {length})."
            )


class R2D2(DQN):
    """R2D2 (Kapturowski et al., 2019): recurrent DQN on replayed fixed-length sequences with
    stored states and a burn-in, on DQN's loop.
    """

    config_class = R2D2Config
    learner_class = R2D2Learner

    def __init__(self, config: R2D2Config):
        super().__init__(config)  # DQN's: learners, sequence buffer (below), epsilon sync
        self.max_seq_len = int(self.module_spec.model_config["max_seq_len"])
        # One cutter per stream of fragments: (runner slot, generation); a replaced
        # runner's fragments start fresh episodes, so they get a new cutter.
        self.cutters: dict[tuple[int, int], SequenceCutter] = {}

    def make_replay_buffers(self) -> dict[str, Any]:
        """One sequence buffer (R2D2 is single-agent) in place of DQN's transitions."""
        module = self.get_module()
        if not (module.is_stateful() and getattr(module, "episode_aligned_states", False)):
            raise ConfigError(
                f"R2D2 needs a stateful module whose EnvRunners record the state every "
                f"`max_seq_len` episode steps; {type(module).__name__} is not (set its "
                "`episode_aligned_states = True`, as `RecurrentDQNTorchRLModule` does)."
            )
        rb = {**BUFFER_DEFAULTS, **self.config.replay_buffer_config}
        if rb["type"] == "prioritized":
            buffer: SequenceReplayBuffer = PrioritizedSequenceReplayBuffer(
                int(rb["capacity"]), float(rb["alpha"]), float(rb["beta"]), float(rb["eta"])
            )
        else:
            buffer = SequenceReplayBuffer(int(rb["capacity"]), float(rb["eta"]))
        return {DEFAULT_MODULE_ID: buffer}

    def store(self, fragments: list[dict], sources: list[Any]) -> dict[str, int]:
        """Cut each runner's fragments into sequences (one cutter per runner stream) and
        store those they complete, each with the state the runner had at its first step;
        returns the env steps sampled (R2D2's update credit counts trained steps)."""
        sampled = 0
        for source, fragment in zip(sources, fragments):
            cutter = self.cutters.get(source)
            if cutter is None:
                self.cutters = {s: c for s, c in self.cutters.items() if s[0] != source[0]}
                cutter = SequenceCutter(self.max_seq_len, self.config.burn_in)
                self.cutters[source] = cutter
            sequences = cutter.add(fragment)
            if sequences is not None:
                self.replay_buffer.add(sequences)
            sampled += fragment[Columns.REWARDS].size
        return {DEFAULT_MODULE_ID: sampled}

    def steps_per_update(self, cfg: Any) -> int:
        """Trained steps per update: `train_batch_size` sequences of `max_seq_len`."""
        return cfg.train_batch_size * self.max_seq_len

    def replay_metrics(self) -> dict[str, Any]:
        """Stored sequences, the env steps they hold, and the buffer's memory."""
        return {
            "num_sequences": len(self.replay_buffer),
            "num_env_steps": self.replay_buffer.num_steps,
            "nbytes": self.replay_buffer.nbytes,
        }
