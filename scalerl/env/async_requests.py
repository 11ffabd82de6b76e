"""Asynchronous sampling on an EnvRunnerGroup's Ray runners (APEX-DQN, later IMPALA/APPO).

Each healthy runner keeps up to `max_in_flight` calls of a method in flight (RLlib's
`max_requests_in_flight_per_env_runner`); `fetch_ready()` returns the calls that have
finished, each with the runner's worker index and the weights version the runner had when
the call was sent (`EnvRunnerGroup.weights_version`: calls run in order on an actor, so a
call sent after a weight sync samples with those weights). Runners that die, raise or
stall are handled by the group's fault tolerance (replaced, dropped, or an error); their
lost calls are simply requested again by the next `request()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from scalerl.env.env_runner_group import EnvRunnerGroup, _Stalled


@dataclass
class AsyncResult:
    """One finished call: its runner, the weights version it sampled with, its value (the
    last of its return values) and the object refs of the others (left in the object
    store, e.g. a fragment on its way to a replay shard)."""

    runner_index: int
    weights_version: int
    value: Any
    other_refs: list = field(default_factory=list)


class AsyncRequests:
    """Calls of one runner method kept in flight on every healthy runner of `group`."""

    def __init__(self, group: EnvRunnerGroup, max_in_flight: int = 1):
        if not group.healthy_slots():
            raise ValueError("Asynchronous sampling needs Ray EnvRunners (num_env_runners > 0).")
        if max_in_flight < 1:
            raise ValueError(f"`max_in_flight` must be >= 1, got {max_in_flight}.")
        self.group = group
        self.max_in_flight = max_in_flight
        # last ref -> (slot, refs, weights version, time sent)
        self._busy: dict[Any, tuple[Any, list, int, float]] = {}

    def request(self, method: str, *args: Any, num_returns: int = 1, runner_index=None) -> int:
        """Top up each healthy runner (or only runner `runner_index`) to `max_in_flight`
        calls of `method(*args)`. Returns how many calls were sent."""
        sent = 0
        for slot in self.group.healthy_slots():
            if runner_index is not None and slot.index != runner_index:
                continue
            pending = sum(1 for b in self._busy.values() if b[0] is slot)
            for _ in range(self.max_in_flight - pending):
                call = getattr(slot.actor, method)
                out = call.options(num_returns=num_returns).remote(*args)
                refs = list(out) if num_returns > 1 else [out]
                self._busy[refs[-1]] = (slot, refs, slot.weights_version, time.monotonic())
                sent += 1
        return sent

    def in_flight(self) -> list:
        """The refs whose readiness `fetch_ready` waits for (to wait on them together with
        other work, e.g. replay shards)."""
        return list(self._busy)

    def num_in_flight(self, runner_index: int | None = None) -> int:
        """Requests sent and not yet fetched: to runner `runner_index`, or to all when None."""
        return sum(1 for b in self._busy.values() if runner_index in (None, b[0].index))

    def fetch_ready(self, timeout_s: float | None = 0.0) -> list[AsyncResult]:
        """The calls that have finished, waiting up to `timeout_s` for the first one
        (None: until one finishes). Calls older than `sample_timeout_s` get a health
        probe; a runner that fails it, dies or raises is handed to the group's fault
        tolerance and its calls are dropped."""
        import ray

        if not self._busy:
            return []
        ready, _ = ray.wait(list(self._busy), num_returns=1, timeout=timeout_s)
        if ready:  # then everything else that is done too
            ready, _ = ray.wait(list(self._busy), num_returns=len(self._busy), timeout=0)
        ready = set(ready)
        stalled = self._stalled(ready)
        results, failed = [], {}
        for ref in [r for r in self._busy if r in ready or r in stalled]:
            slot, refs, version, _ = self._busy.pop(ref)
            if ref in stalled:
                failed.setdefault(id(slot), (slot, stalled[ref]))
                continue
            try:
                value = ray.get(ref)
            except ray.exceptions.RayError as e:
                failed.setdefault(id(slot), (slot, e))
                continue
            results.append(AsyncResult(slot.index, version, value, refs[:-1]))
        for slot, error in failed.values():
            self._fail(slot, error)
        return results

    def _stalled(self, ready: set) -> dict:
        """Refs of calls past `sample_timeout_s` whose runner misses a health probe."""
        import ray

        cfg = self.group.config
        timeout = cfg.sample_timeout_s
        if timeout is None:
            return {}
        now = time.monotonic()
        overdue = [r for r, b in self._busy.items() if r not in ready and now - b[3] >= timeout]
        slots = {id(self._busy[r][0]): self._busy[r][0] for r in overdue}
        if not slots:
            return {}
        probes = {s.actor.__ray_ready__.remote(): s for s in slots.values()}
        answered, _ = ray.wait(
            list(probes), num_returns=len(probes), timeout=cfg.env_runner_health_probe_timeout_s
        )
        silent = {id(probes[p]) for p in probes if p not in answered}
        error = _Stalled(f"no answer within `sample_timeout_s={timeout}` and the health probe")
        return {r: error for r in overdue if id(self._busy[r][0]) in silent}

    def _fail(self, slot: Any, error: BaseException) -> None:
        """Drop the runner's other calls and let the group replace it (or drop it)."""
        for ref in [r for r, b in self._busy.items() if b[0] is slot]:
            del self._busy[ref]
        self.group.restart_runner(slot.actor, error, "an asynchronous request")
