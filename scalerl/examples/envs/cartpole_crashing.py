"""CartPoleCrashing: CartPole-v1 that fails on purpose (RLlib's example env of that name).

For trying `config.fault_tolerance(...)`: envs that raise at random, or once at a planned
step, and envs that stall.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from scalerl.examples.envs._config import check_config

DEFAULTS: dict[str, Any] = {
    "p_crash": 0.0,
    "p_crash_reset": 0.0,
    "p_stall": 0.0,
    "stall_s": 0.0,
    "crash_at_step": None,
    "stall_at_step": None,
    "once_file": None,
    "crash_on_worker_indices": None,
    "fault_log": None,
    "seed": None,
}
_instances = itertools.count()  # per process: a recreated env draws new faults


class CartPoleCrashing(gym.Wrapper):
    """CartPole-v1 whose `step()` raises `RuntimeError` with probability `p_crash` (and
    `reset()` with `p_crash_reset`), or sleeps `stall_s` seconds with `p_stall`.

    Planned faults: `crash_at_step` / `stall_at_step` (this env instance's step count) crash
    or stall once; with `once_file` (a path) they happen once per run, not once per env
    instance: the first env to reach its step creates the file, and no env does it again.
    `crash_on_worker_indices` (a list; default all) limits faults to envs on those
    EnvRunners. `fault_log` (a path): every fault appends a line there, so tests can count
    faults across processes. `seed` makes the random faults reproducible.
    """

    def __init__(self, config: dict | None = None):
        super().__init__(gym.make("CartPole-v1"))
        cfg = check_config("CartPoleCrashing", config, DEFAULTS)
        self.cfg = cfg
        worker = getattr(config, "worker_index", 0)
        vector = getattr(config, "vector_index", 0)
        workers = cfg["crash_on_worker_indices"]
        self.faulty = workers is None or worker in workers
        seed = cfg["seed"]
        key = None if seed is None else [seed, worker, vector, next(_instances)]
        self.fault_rng = np.random.default_rng(key)
        self.num_steps = 0

    def _fault(self, kind: str) -> None:
        if self.cfg["fault_log"] is not None:
            with open(self.cfg["fault_log"], "a") as f:
                f.write(f"{kind}\n")

    def _planned(self, step: int | None) -> bool:
        if step is None or self.num_steps != step:
            return False
        once = self.cfg["once_file"]
        if once is None:
            return True
        try:  # exclusive create: exactly one env in the run gets it
            Path(once).open("x").close()
            return True
        except FileExistsError:
            return False

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        if self.faulty and self.fault_rng.random() < self.cfg["p_crash_reset"]:
            self._fault("crash_reset")
            raise RuntimeError("CartPoleCrashing: simulated crash in reset()")
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> Any:
        self.num_steps += 1
        if self.faulty:
            cfg = self.cfg
            if self._planned(cfg["stall_at_step"]) or self.fault_rng.random() < cfg["p_stall"]:
                self._fault("stall")
                time.sleep(cfg["stall_s"])
            if self._planned(cfg["crash_at_step"]) or self.fault_rng.random() < cfg["p_crash"]:
                self._fault("crash")
                raise RuntimeError(f"CartPoleCrashing: simulated crash at step {self.num_steps}")
        return self.env.step(action)
