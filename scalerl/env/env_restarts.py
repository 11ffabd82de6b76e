"""Env faults inside an EnvRunner: recreate a failing env, or name it in the error.

With `config.fault_tolerance(restart_failed_sub_environments=True)` every env of a runner
is wrapped in `RestartingEnv`. When the env's `step()` raises, the wrapper closes it,
builds a new one with the same creator and `EnvContext`, and answers that step as a
*truncation* with reward 0 whose final observation is the one the action was taken on
(info is the `RESTARTED` marker). The runner then ends the episode as it ends any
truncated one, so learners bootstrap from V(s_t) there and the fragment keeps its
[T, N] layout, but it leaves the episode out of the episode metrics: its return is cut
short. The runner's next `reset()` resets the new env. A `reset()` that raises is retried
on a new env (up to `MAX_RESET_ATTEMPTS` in a row).

Without the setting envs are not wrapped (no cost per step): an exception from `step()`
becomes an `EnvError` naming the env, the runner and the step (`env_step_error`), with
the original exception chained.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from scalerl.utils.errors import EnvError

logger = logging.getLogger(__name__)

# `info` of the step at which an env was recreated (compared by identity).
RESTARTED: dict = {"env_restarted": True}
MAX_RESET_ATTEMPTS = 10


class RestartingEnv:
    """Wraps one env: recreates it when `step()` or `reset()` raises; counts restarts.

    Every other attribute is the env's own (spaces, `get_observation_space`, ...).
    """

    def __init__(
        self, env: Any, env_creator: Any, context: Any, env_id: str, multi_agent: bool = False
    ):
        self.env = env
        self._multi_agent = multi_agent
        self._creator = env_creator
        self._context = context
        self._env_id = env_id
        self._last_obs: Any = None
        self._seed: int | None = None  # the first reset's seed: recreated envs derive theirs
        self._next_seed: int | None = None  # for the first reset of a recreated env
        self.num_restarts = 0
        self.num_reported = 0  # restarts already reported in metrics (`pop_env_restarts`)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["env"], name)

    @property
    def unwrapped(self) -> Any:
        """The innermost env (of the current env, which may have been recreated)."""
        return self.env.unwrapped

    def _recreate(self, where: str, error: BaseException) -> None:
        self.num_restarts += 1
        log = logger.warning if self.num_restarts == 1 else logger.debug  # not 1000 lines
        log(
            "Env `%s` (worker %s, vector index %s) raised %s in %s: recreating it "
            "(`restart_failed_sub_environments=True`; restart %d).",
            self._env_id,
            getattr(self._context, "worker_index", 0),
            getattr(self._context, "vector_index", 0),
            f"{type(error).__name__}: {error}",
            where,
            self.num_restarts,
        )
        with contextlib.suppress(Exception):
            self.env.close()
        self.env = self._creator(self._context)
        if self._seed is not None:  # reproducible, but not the original episodes again
            self._next_seed = self._seed + 1_000_003 * self.num_restarts

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        """The env's `reset()`; an env that raises is recreated and reset again.

        A recreated env's first reset uses a seed derived from the first reset's, so runs
        stay reproducible.

        Raises:
            EnvError: If reset() raised `MAX_RESET_ATTEMPTS` times in a row.
        """
        if seed is not None and self._seed is None:
            self._seed = seed
        if seed is None:
            seed, self._next_seed = self._next_seed, None
        for attempt in range(MAX_RESET_ATTEMPTS):
            try:
                obs, info = self.env.reset(seed=seed, options=options)
                self._last_obs = obs
                return obs, info
            except Exception as e:  # noqa: BLE001 (any env failure is recreated)
                if attempt == MAX_RESET_ATTEMPTS - 1:
                    raise EnvError(
                        f"Env `{self._env_id}` raised in reset() {MAX_RESET_ATTEMPTS} times in "
                        f"a row, each time on a new env; last: {type(e).__name__}: {e}"
                    ) from e
                self._recreate("reset()", e)
                seed, self._next_seed = self._next_seed, None
        raise AssertionError("unreachable")

    def step(self, action: Any) -> tuple:
        """The env's `step(action)`; if it raises, the env is recreated and the step is returned
        as a truncation with reward 0 and `info` = `RESTARTED` (multi-agent: every agent cut).
        """
        try:
            out = self.env.step(action)
        except Exception as e:  # noqa: BLE001 (any env failure is recreated)
            self._recreate("step()", e)
            return self._cut_step()
        if isinstance(out, tuple) and out:
            self._last_obs = out[0]
        return out

    def _cut_step(self) -> tuple:
        """The failed step as a truncation with reward 0 (multi-agent: every agent cut)."""
        if self._multi_agent:
            return {}, {}, {"__all__": False}, {"__all__": True}, RESTARTED
        return self._last_obs, 0.0, False, True, RESTARTED

    def close(self) -> None:
        """Close the current env."""
        self.env.close()


def wrap_envs(
    envs: list, env_creator: Any, contexts: list, env_id: str, multi_agent: bool = False
) -> list:
    """The runner's envs, each in a `RestartingEnv`."""
    return [RestartingEnv(e, env_creator, c, env_id, multi_agent) for e, c in zip(envs, contexts)]


def pop_env_restarts(envs: list) -> int:
    """Env restarts since the last call, over a runner's envs (0 when not wrapped)."""
    total = 0
    for env in envs:
        if isinstance(env, RestartingEnv):
            total += env.num_restarts - env.num_reported
            env.num_reported = env.num_restarts
    return total


def env_step_error(env_id: str, worker_index: int, env_index: int, error: Exception) -> EnvError:
    """The error for an env whose `step()` raised, with what to change."""
    where = "the local EnvRunner" if worker_index == 0 else f"EnvRunner {worker_index}"
    return EnvError(
        f"Env `{env_id}` (sub-env {env_index} of {where}) raised {type(error).__name__} in "
        f"step(): {error}. Fix the env, or set `config.fault_tolerance("
        "restart_failed_sub_environments=True)` to recreate failing envs and drop their "
        "episodes."
    )
