"""Episode statistics smoothed over the last N episodes, and RLlib's metric-name constants."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

# RLlib's metric names (`ray.rllib.utils.metrics`), for the keys of the result dict:
# `result[ENV_RUNNER_RESULTS][EPISODE_RETURN_MEAN]`.
ENV_RUNNER_RESULTS = "env_runners"
EVALUATION_RESULTS = "evaluation"
LEARNER_RESULTS = "learners"
EPISODE_RETURN_MEAN = "episode_return_mean"
EPISODE_RETURN_MAX = "episode_return_max"
EPISODE_RETURN_MIN = "episode_return_min"
EPISODE_LEN_MEAN = "episode_len_mean"
NUM_EPISODES = "num_episodes"
NUM_EPISODES_LIFETIME = "num_episodes_lifetime"
NUM_ENV_STEPS_SAMPLED = "num_env_steps_sampled"
NUM_ENV_STEPS_SAMPLED_LIFETIME = "num_env_steps_sampled_lifetime"
NUM_MODULE_STEPS_TRAINED = "num_module_steps_trained"
TRAINING_ITERATION = "training_iteration"
TIMERS = "timers"


class EpisodeStats:
    """Keeps the returns and lengths of the last `window` finished episodes."""

    def __init__(self, window: int = 100):
        self.returns: deque[float] = deque(maxlen=window)
        self.lengths: deque[int] = deque(maxlen=window)

    def add(self, returns: Iterable[float], lengths: Iterable[int]) -> None:
        """Record finished episodes: their returns and lengths, in the same order."""
        self.returns.extend(float(r) for r in returns)
        self.lengths.extend(int(n) for n in lengths)

    def summary(self) -> dict[str, float]:
        """RLlib's `episode_return_mean/max/min` and `episode_len_mean` (NaN when empty)."""
        if not self.returns:
            nan = float("nan")
            return {
                "episode_return_mean": nan,
                "episode_return_max": nan,
                "episode_return_min": nan,
                "episode_len_mean": nan,
            }
        r = np.asarray(self.returns)
        return {
            "episode_return_mean": float(r.mean()),
            "episode_return_max": float(r.max()),
            "episode_return_min": float(r.min()),
            "episode_len_mean": float(np.mean(self.lengths)),
        }

    def get_state(self) -> dict:
        """The window's returns and lengths as JSON-able lists, for checkpoints."""
        return {"returns": list(self.returns), "lengths": list(self.lengths)}

    def set_state(self, state: dict) -> None:
        """Replace the window with the state that `get_state` returned."""
        self.returns.clear()
        self.lengths.clear()
        self.add(state["returns"], state["lengths"])


class KeyedReturns:
    """The last `window` episode returns per key (agent id or module id), for the
    multi-agent `agent_episode_returns_mean` / `module_episode_returns_mean`."""

    def __init__(self, window: int = 100):
        self.window = window
        self.returns: dict = {}

    def add(self, returns: dict) -> None:
        """Record episode returns given as key -> list of returns."""
        for key, values in returns.items():
            self.returns.setdefault(key, deque(maxlen=self.window)).extend(map(float, values))

    def means(self) -> dict:
        """Key -> mean return over its window, for the keys that have any."""
        return {k: float(np.mean(v)) for k, v in self.returns.items() if v}

    def get_state(self) -> list:
        """The windows as a JSON-able list of [key, returns] pairs (keys may be tuples)."""
        return [[k, list(v)] for k, v in self.returns.items()]

    def set_state(self, state: list) -> None:
        """Replace the windows with the state that `get_state` returned (lists as keys: tuples)."""
        self.returns = {}
        self.add({tuple(k) if isinstance(k, list) else k: v for k, v in state})
