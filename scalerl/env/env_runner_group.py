"""EnvRunnerGroup: a local EnvRunner, or Ray actors that share weights via the object store.

The Ray actors are fault tolerant (`config.fault_tolerance(...)`, see docs/design.md): a
runner that dies, raises, or does not answer within `sample_timeout_s` (plus a health
probe of `env_runner_health_probe_timeout_s`) is replaced by a new actor with the last
weights and filter statistics the group synced, or dropped, or the error is raised with
the setting to change. Work it did not finish goes to the runners that are left, so
`sample()` still returns one fragment per configured runner.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from scalerl.connectors.env_to_module.mean_std_filter import MeanStdFilter
from scalerl.connectors.env_to_module.multi_agent_filter import build_filter_for_spec
from scalerl.core.rl_module import RLModuleSpec
from scalerl.env.env_runner import SingleAgentEnvRunner
from scalerl.utils.errors import ConfigError, EnvRunnerError
from scalerl.utils.ray_init import init_ray_if_needed

logger = logging.getLogger(__name__)


class _Slot:
    """One configured runner position: worker index, its current actor, its history."""

    __slots__ = ("index", "actor", "healthy", "generation", "weights_version")

    def __init__(self, index: int, actor: Any):
        self.index = index  # the worker index (1-based), kept by replacements
        self.actor = actor
        self.healthy = True
        self.generation = 0  # +1 per replacement: a new actor's episodes start fresh
        self.weights_version = 0  # the group's `weights_version` this actor was last sent


# A unit of work: submit(actor) -> object refs; the last one finishes last (actor calls
# run in order), and any of them raising means the runner failed.
Job = Callable[[Any], list]


class EnvRunnerGroup:
    """Local sampling when `num_env_runners == 0`, else that many Ray actors.

    `sync_weights` puts the weights into the object store once; every actor fetches them.

    With an observation filter, `obs_filter` is the central one (multi-agent: one per
    module, `MultiAgentMeanStdFilter`): the local runner's own filter in local mode; with
    Ray actors a driver-side copy into which `sample()` merges every runner's new
    statistics, and which `sync_weights` sends back with the weights.

    `last_sample_sources` lists, for each fragment the last `sample()` returned, the
    (slot, generation) of the runner that made it: fragments of one source continue each
    other's episodes, a new generation starts fresh ones (R2D2 cuts sequences per source).
    """

    def __init__(
        self,
        config: Any,
        env_creator: Any,
        module_spec: RLModuleSpec,
        num_env_runners: int,
        runner_class: type[SingleAgentEnvRunner] = SingleAgentEnvRunner,
    ):
        self.config = config
        self.local_runner: SingleAgentEnvRunner | None = None
        self._slots: list[_Slot] = []
        self.obs_filter: MeanStdFilter | None = None
        self.num_remote_env_runner_restarts = 0
        self.last_sample_sources: list[tuple[int, int]] = [(0, 0)]
        self._weights_ref: Any = None
        self._filter_ref: Any = None
        # +1 per `sync_weights`; each runner's requests carry the version it had then.
        self.weights_version = 0
        self._replayed_calls: list[tuple[str, tuple]] = []  # see `call(replay_on_restart)`
        # Called as fn(group, [worker index]) after a failed runner was replaced (the
        # Algorithm's `on_env_runners_recreated`).
        self.on_recreated: Callable[[EnvRunnerGroup, list[int]], None] | None = None
        if num_env_runners == 0:
            self.local_runner = runner_class(config, env_creator, module_spec)
            self.obs_filter = self.local_runner.obs_filter
            return
        self.obs_filter = build_filter_for_spec(config.observation_filter, module_spec)
        init_ray_if_needed()
        import ray

        need = num_env_runners * config.num_cpus_per_env_runner
        # Inside a placement group (a Ray Tune trial) the runners' CPUs are already
        # reserved in the group's bundles, so Ray's free CPUs say nothing about them.
        in_group = ray.util.get_current_placement_group() is not None
        have = need if in_group else _free_cpus(need)
        if need > have:
            raise ConfigError(
                f"{num_env_runners} EnvRunners x `num_cpus_per_env_runner="
                f"{config.num_cpus_per_env_runner}` need {need:g} CPUs, but Ray has {have:g} "
                "free. Lower `num_env_runners` (or `evaluation_num_env_runners`), request "
                "fractional CPUs, e.g. `num_cpus_per_env_runner=0.5`, or start Ray with more "
                "`num_cpus`."
            )
        # Restarts are ours (with the synced weights), not Ray's: max_restarts=0.
        actor_cls = ray.remote(runner_class).options(
            num_cpus=config.num_cpus_per_env_runner, max_restarts=0
        )
        self._new_actor = lambda index: actor_cls.remote(
            config, env_creator, module_spec, index, num_env_runners
        )
        self._slots = [_Slot(i + 1, self._new_actor(i + 1)) for i in range(num_env_runners)]
        # Up before the first sample (whose `sample_timeout_s` is for sampling, not for
        # starting processes); an env that cannot be created fails here, at build time.
        try:
            ray.get(
                [s.actor.__ray_ready__.remote() for s in self._slots],
                timeout=config.env_runner_restore_timeout_s,
            )
        except ray.exceptions.RayActorError as e:
            missing = _missing_module(e)
            if missing is None:
                raise
            self.stop()
            raise ConfigError(
                f"The Ray EnvRunners cannot import {missing}, where something in the config "
                "comes from (the env, a callbacks class or function, an RLModule class). "
                "Ray workers import from the driver script's directory, the current "
                "directory and PYTHONPATH: move it into a module there, or define it in "
                "your script, or use `num_env_runners=0`."
            ) from None

    # -- the runners ------------------------------------------------------------------
    @property
    def remote_runners(self) -> list:
        """The healthy Ray actors, in worker-index order."""
        return [s.actor for s in self._slots if s.healthy]

    def healthy_slots(self) -> list[_Slot]:
        """The healthy runner slots (worker index, actor, weights version), in order."""
        return [s for s in self._slots if s.healthy]

    @property
    def num_runners(self) -> int:
        """The number of remote EnvRunner actors (0 when sampling locally)."""
        return len(self.remote_runners)

    @property
    def num_healthy_env_runners(self) -> int:
        """Runners that sample: the healthy actors, or 1 for the local runner."""
        return 1 if self.local_runner is not None else self.num_runners

    def metrics(self) -> dict[str, int]:
        """RLlib's `env_runner_group` results."""
        return {
            "num_healthy_env_runners": self.num_healthy_env_runners,
            "num_remote_env_runner_restarts": self.num_remote_env_runner_restarts,
        }

    # -- weights ------------------------------------------------------------------------
    def sync_weights(
        self, weights: dict[str, np.ndarray], obs_filter: MeanStdFilter | None = None
    ) -> None:
        """Send the weights (and the central filter statistics) to every runner.

        Args:
            weights: The module state from the learner.
            obs_filter: Another group's central filter to adopt first (evaluation runners
                filter with the training runners' statistics).
        """
        own = self.obs_filter
        if obs_filter is not None and own is not None and obs_filter is not own:
            own.set_state(obs_filter.get_state())
        if self.local_runner is not None:
            self.local_runner.set_weights(weights)  # its filter is `self.obs_filter`
            return
        import ray

        # Kept: a replacement runner starts from these.
        self._weights_ref = ray.put(weights)
        self._filter_ref = None if self.obs_filter is None else ray.put(self.obs_filter.get_state())
        self.weights_version += 1
        # Actor calls run in order, so the next sample() sees these weights; no need to
        # wait. A runner that died meanwhile fails at its next sample() and is replaced.
        for slot in self.healthy_slots():
            slot.actor.set_weights.remote(self._weights_ref, self._filter_ref)
            slot.weights_version = self.weights_version

    # -- sampling -----------------------------------------------------------------------
    def sample(self) -> list[tuple[dict, dict]]:
        """One rollout fragment per configured runner: a list of (batch, metrics).

        A runner that fails is replaced (or dropped) and its fragment is sampled again
        by a healthy runner, so the iteration gets its full number of env steps."""
        if self.local_runner is not None:
            return [self.local_runner.sample()]
        if self.obs_filter is None:

            def job(actor: Any) -> list:
                return [actor.sample.remote()]
        else:

            def job(actor: Any) -> list:
                # Queued behind sample(), so one round trip brings both back.
                return [actor.sample.remote(), actor.pop_obs_filter_delta.remote()]

        done = self._run([job] * len(self._slots), "sample()")
        done.sort(key=lambda d: d[0].index)  # runner order (stable): reproducible batches
        self.last_sample_sources = [(slot.index, slot.generation) for slot, _ in done]
        if self.obs_filter is not None:
            self.obs_filter.merge_states([values[1] for _, values in done])
        return [values[0] for _, values in done]

    def sample_episodes(
        self, num_episodes: int | None, num_timesteps: int | None, explore: bool
    ) -> list[dict]:
        """Evaluation-style sampling, the work split evenly over the configured runners
        (a failed runner's share is run again by another)."""
        if self.local_runner is not None:
            return [self.local_runner.sample_episodes(num_episodes, num_timesteps, explore)]
        n = len(self._slots)

        def split(x: int | None, i: int) -> int | None:
            return None if x is None else x // n + (i < x % n)

        def share(i: int) -> Job:
            episodes, steps = split(num_episodes, i), split(num_timesteps, i)
            return lambda actor: [actor.sample_episodes.remote(episodes, steps, explore)]

        done = self._run([share(i) for i in range(n)], "sample_episodes()")
        done.sort(key=lambda d: d[0].index)
        return [values[0] for _, values in done]

    def call(self, method: str, *args: Any, replay_on_restart: bool = False) -> list:
        """Call `method(*args)` on every runner (and wait); returns their results.

        A runner that fails is handled as in `sample()`; its result is left out. With
        `replay_on_restart` the call changes the runners' setup (e.g. adds a module):
        runners that replace failed ones later get it too, after the weights."""
        if self.local_runner is not None:
            return [getattr(self.local_runner, method)(*args)]
        if replay_on_restart:
            self._replayed_calls.append((method, args))
        slots = [s for s in self._slots if s.healthy]
        refs = [getattr(s.actor, method).remote(*args) for s in slots]
        return [values[0] for _, values in self._collect(slots, [[r] for r in refs], method)]

    # -- state (checkpoints) ------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Every runner's sampling state (RNGs, counters) and the restart count."""
        return {
            "runners": self.call("get_state"),
            "num_remote_env_runner_restarts": self.num_remote_env_runner_restarts,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Give each runner the stored state of the runner with its worker index (runners
        without one, e.g. after changing `num_env_runners`, keep theirs)."""
        by_index = {r["worker_index"]: r for r in state.get("runners", [])}
        self.num_remote_env_runner_restarts = int(state.get("num_remote_env_runner_restarts", 0))
        if self.local_runner is not None:
            if 0 in by_index:
                self.local_runner.set_state(by_index[0])
            return
        slots = [s for s in self._slots if s.healthy and s.index in by_index]
        refs = [[s.actor.set_state.remote(by_index[s.index])] for s in slots]
        # A state that does not fit is an error to report, not a runner to replace.
        self._collect(slots, refs, "set_state", raise_task_errors=True)

    # -- fault tolerance -------------------------------------------------------------------
    def _run(self, jobs: list[Job], what: str) -> list[tuple[_Slot, list]]:
        """Run every job on some healthy runner, one job per runner at a time; a failed
        job is run again on another runner (or the failed runner's replacement).

        Returns (slot, values) in order of completion: one `ray.wait` per round."""
        import ray

        queue = deque(jobs)
        busy: dict[Any, tuple[_Slot, list, Job, float]] = {}  # last ref -> (slot, refs, ...)
        done: list[tuple[_Slot, list]] = []
        timeout = self.config.sample_timeout_s
        while queue or busy:
            working = {id(b[0]) for b in busy.values()}
            for slot in self._slots:
                if not queue:
                    break
                if slot.healthy and id(slot) not in working:
                    job = queue.popleft()
                    refs = job(slot.actor)
                    busy[refs[-1]] = (slot, refs, job, time.monotonic())
            if not busy:
                self._raise_all_failed(what)
            # Normally wait for all at once; with work left, take each runner as it ends.
            wait_s = None
            if timeout is not None:
                first_deadline = min(b[3] for b in busy.values()) + timeout
                wait_s = max(0.0, first_deadline - time.monotonic())
            ready, _ = ray.wait(list(busy), num_returns=1 if queue else len(busy), timeout=wait_s)
            ready = set(ready)
            if len(ready) < len(busy) and timeout is not None:
                ready |= self._probe_overdue(busy, ready, timeout)
            finished = [busy.pop(ref) for ref in list(busy) if ref in ready]
            for (slot, _, job, _), values in zip(finished, self._get_each(finished)):
                if isinstance(values, BaseException):
                    queue.append(job)
                    self._on_failure(slot, values, what)
                else:
                    done.append((slot, values))
        return done

    @staticmethod
    def _get_each(finished: list[tuple]) -> list:
        """The values of each finished job, or the error it raised (one `ray.get` for all
        when none failed)."""
        import ray

        refs = [r for _, job_refs, _, _ in finished for r in job_refs]
        if not any(isinstance(r, _Stalled) for r in refs):
            try:
                flat = ray.get(refs)
                out, k = [], 0
                for _, job_refs, _, _ in finished:
                    out.append(flat[k : k + len(job_refs)])
                    k += len(job_refs)
                return out
            except ray.exceptions.RayError:
                pass  # find out which ones failed
        out = []
        for _, job_refs, _, _ in finished:
            try:
                if isinstance(job_refs[0], _Stalled):
                    raise job_refs[0]
                out.append(ray.get(job_refs))
            except (ray.exceptions.RayError, _Stalled) as e:
                out.append(e)
        return out

    def _probe_overdue(self, busy: dict, ready: set, timeout: float) -> set:
        """Runners past `sample_timeout_s`: a health probe queued behind their work gets
        `env_runner_health_probe_timeout_s` to answer. Returns the refs now settled (the
        ones that stay silent are marked stalled)."""
        import ray

        now = time.monotonic()
        overdue = [ref for ref, b in busy.items() if ref not in ready and now - b[3] >= timeout]
        if not overdue:
            return set()
        probes = {busy[ref][0].actor.__ray_ready__.remote(): ref for ref in overdue}
        answered, _ = ray.wait(
            list(probes),
            num_returns=len(probes),
            timeout=self.config.env_runner_health_probe_timeout_s,
        )
        for probe in set(probes) - set(answered):
            slot, refs, job, start = busy[probes[probe]]
            stalled = _Stalled(
                f"no answer within `sample_timeout_s={timeout}` and the health probe's "
                f"`env_runner_health_probe_timeout_s="
                f"{self.config.env_runner_health_probe_timeout_s}`"
            )
            busy[probes[probe]] = (slot, [stalled], job, start)
        return set(overdue)

    def _collect(
        self, slots: list[_Slot], refs: list[list], what: str, raise_task_errors: bool = False
    ) -> list:
        """Wait for one call per slot (no retry): (slot, values) of those that answered.
        `raise_task_errors`: an exception raised by the call itself is re-raised."""
        import ray

        timeout = self.config.sample_timeout_s
        busy = {r[-1]: (slot, r, None, time.monotonic()) for slot, r in zip(slots, refs)}
        ready, _ = ray.wait(list(busy), num_returns=len(busy), timeout=timeout)
        ready = set(ready)
        if len(ready) < len(busy) and timeout is not None:
            ready |= self._probe_overdue(busy, ready, timeout)
        out = []
        finished = list(busy.values())
        for (slot, _, _, _), values in zip(finished, self._get_each(finished)):
            if raise_task_errors and isinstance(values, ray.exceptions.RayTaskError):
                raise values.as_instanceof_cause()
            if isinstance(values, BaseException):
                self._on_failure(slot, values, what)
            else:
                out.append((slot, values))
        if not any(s.healthy for s in self._slots):
            self._raise_all_failed(what)
        return out

    def _on_failure(self, slot: _Slot, error: BaseException, what: str) -> None:
        """Replace the failed runner, drop it, or raise, as `fault_tolerance` says."""
        import ray

        cfg = self.config
        cause = _describe(error)
        ray.kill(slot.actor)  # a stalled or raising actor may still be alive
        slot.healthy = False
        if cfg.restart_failed_env_runners:
            while self.num_remote_env_runner_restarts < cfg.max_num_env_runner_restarts:
                logger.warning(
                    "EnvRunner %d failed in %s (%s); restarting it.", slot.index, what, cause
                )
                if self._restart(slot):
                    if self.on_recreated is not None:
                        self.on_recreated(self, [slot.index])
                    return
            if not cfg.ignore_env_runner_failures:
                raise EnvRunnerError(
                    f"EnvRunner {slot.index} failed in {what} ({cause}), and the "
                    f"`max_num_env_runner_restarts={cfg.max_num_env_runner_restarts}` "
                    "restarts are used up. Raise `config.fault_tolerance("
                    "max_num_env_runner_restarts=...)`, or set "
                    "`ignore_env_runner_failures=True` to go on with the other runners."
                ) from error
        elif not cfg.ignore_env_runner_failures:
            raise EnvRunnerError(
                f"EnvRunner {slot.index} failed in {what}: {cause}. Set "
                "`config.fault_tolerance(restart_failed_env_runners=True)` to replace failed "
                "runners, or `ignore_env_runner_failures=True` to go on without them."
            ) from error
        logger.warning(
            "EnvRunner %d failed in %s (%s); going on without it (%d left).",
            slot.index,
            what,
            cause,
            self.num_runners,
        )

    def _restart(self, slot: _Slot) -> bool:
        """A new actor in the slot, with the last synced weights and filter statistics;
        False if it does not come up within `env_runner_restore_timeout_s`."""
        import ray

        cfg = self.config
        if cfg.delay_between_env_runner_restarts_s > 0:
            time.sleep(cfg.delay_between_env_runner_restarts_s)
        self.num_remote_env_runner_restarts += 1
        actor = self._new_actor(slot.index)
        try:
            for method, args in self._replayed_calls:
                getattr(actor, method).remote(*args)
            if self._weights_ref is not None:
                ready = actor.set_weights.remote(self._weights_ref, self._filter_ref)
            else:
                ready = actor.__ray_ready__.remote()
            ray.get(ready, timeout=cfg.env_runner_restore_timeout_s)
        except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as e:
            logger.warning("Restarting EnvRunner %d failed: %s", slot.index, _describe(e))
            ray.kill(actor)
            return False
        slot.actor, slot.healthy = actor, True
        slot.generation += 1
        slot.weights_version = self.weights_version
        return True

    def send_weights(self, runner_index: int, weights_ref: Any, version: int) -> None:
        """Weights (an object ref) to one runner, for callers that sync runners one by one
        (APEX-DQN); they become the weights a replacement runner starts from."""
        self._weights_ref = weights_ref
        self.weights_version = max(self.weights_version, version)
        for slot in self.healthy_slots():
            if slot.index == runner_index:
                slot.actor.set_weights.remote(weights_ref, self._filter_ref)
                slot.weights_version = version

    def restart_runner(self, actor: Any, error: BaseException, what: str) -> Any | None:
        """For callers that drive the actors themselves (APEX-DQN): handle the failure of
        `actor` as `sample()` would. Returns its replacement, or None if it was dropped."""
        slot = next(s for s in self._slots if s.actor is actor)
        self._on_failure(slot, error, what)
        if not any(s.healthy for s in self._slots):
            self._raise_all_failed(what)
        return slot.actor if slot.healthy else None

    def _raise_all_failed(self, what: str) -> None:
        raise EnvRunnerError(
            f"All {len(self._slots)} EnvRunners failed in {what} and none could be restarted "
            f"({self.num_remote_env_runner_restarts} restarts so far; see "
            "`config.fault_tolerance(...)`)."
        )

    def stop(self) -> None:
        """Stop the local runner and kill the remote runner actors."""
        if self.local_runner is not None:
            self.local_runner.stop()
            self.local_runner = None
        if self._slots:
            import ray

            for slot in self._slots:
                ray.kill(slot.actor)
            self._slots = []


def _free_cpus(need: float, wait_s: float = 10.0) -> float:
    """Ray's free CPUs; if Ray has enough in all but not free yet, wait (up to `wait_s`)
    for actors that were just killed (`ray.kill` is asynchronous) to give theirs back."""
    import ray

    deadline = time.monotonic() + wait_s
    have = ray.available_resources().get("CPU", 0.0)
    while need > have and need <= ray.cluster_resources().get("CPU", 0.0):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
        have = ray.available_resources().get("CPU", 0.0)
    return have


def _missing_module(error: BaseException) -> str | None:
    """`module 'x'` when an actor died importing a module it could not find, else None."""
    match = re.search(r"No module named '([^']+)'", str(error))
    return None if match is None else f"module '{match.group(1)}'"


class _Stalled(Exception):
    """A runner that neither answered nor passed the health probe in time."""


def _describe(error: BaseException) -> str:
    """A short cause: the env's exception for a task error, else the Ray error's kind."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError):
        cause = error.cause if error.cause is not None else error
        return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1][:300]}"
    if isinstance(error, ray.exceptions.RayActorError):
        return "the actor died"
    if isinstance(error, _Stalled):
        return f"it stalled: {error}"
    return f"{type(error).__name__}: {error}"
