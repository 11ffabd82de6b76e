"""RLlib's `min_time_s_per_iteration`, applied in `Algorithm.train()` (the evaluation
options live in `evaluation.py`)."""

from __future__ import annotations

import time
from typing import Any


def run_training_steps(algo: Any) -> dict[str, Any]:
    """One `training_step()`, repeated until `min_time_s_per_iteration` seconds have
    passed (if set); returns the last step's results (the sampling counters of the
    iteration add up over all steps)."""
    start = time.perf_counter()
    result = algo.training_step()
    min_time = algo.config.min_time_s_per_iteration
    while min_time and time.perf_counter() - start < min_time:
        result = algo.training_step()
    return result
