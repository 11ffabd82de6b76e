"""V-trace (Espeholt et al. 2018, IMPALA, Section 4.1) over time-major fragments [T, N].

The conventions are those of `utils/advantages.py` (GAE):

- every array is time-major, [T, N] (time, env column); trailing dims beyond N are fine;
- `next_values[t]` is V(x_{t+1}), the value of the observation after step t: V(x_{t+1})
  inside an episode, the value of the episode's *final observation* at a truncation, the
  bootstrap value (the observation after the fragment) at t = T - 1, and anything (it is
  ignored) at a termination. `advantages.next_values_for` builds it from V(x_t), the
  bootstrap values and the truncated episodes' final-observation values (inside an
  episode `next_values[t]` must equal `values[t + 1]`);
- `terminateds[t]`: the episode ended at step t (no bootstrap, the return ends);
  `truncateds[t]`: it was cut off (time limit, end of an agent's trajectory): bootstrap
  from `next_values[t]`. Either way the trace stops there: the next row of the column
  belongs to another episode.

With rho_t = min(rho_bar, pi(a_t|x_t) / mu(a_t|x_t)) and c_t = lambda * min(c_bar, pi/mu):

    delta_t = rho_t * (r_t + gamma * (1 - terminated_t) * V(x_{t+1}) - V(x_t))
    v_t - V(x_t) = delta_t + gamma * (1 - done_t) * c_t * (v_{t+1} - V(x_{t+1}))
    pg_advantage_t = min(pg_rho_bar, pi/mu) * (r_t + gamma * (1 - terminated_t) * v_{t+1} - V(x_t))

where v_{t+1} - V(x_{t+1}) is taken as 0 after the fragment's last step and after a done
step (v of a bootstrap or final observation is its value). The scan runs backwards over T,
vectorised over the columns. The paper's rho_bar >= c_bar is the caller's choice (IMPALA:
both 1.0); a threshold of None turns that clipping off.
"""

from __future__ import annotations

import numpy as np
import torch

from scalerl.utils.errors import ConfigError


def _check(
    rewards_shape: tuple,
    shapes: dict[str, tuple],
    thresholds: dict[str, float | None],
    lambda_: float,
) -> None:
    """Shape and threshold checks shared by the numpy and torch versions."""
    if len(rewards_shape) < 1:
        raise ValueError("V-trace: `rewards` must have a time axis, shape [T, N].")
    for name, shape in shapes.items():
        if tuple(shape) != tuple(rewards_shape):
            raise ValueError(
                f"V-trace: `{name}` has shape {tuple(shape)}, `rewards` {tuple(rewards_shape)};"
                " all inputs are time-major [T, N] of the same shape."
            )
    for name, value in thresholds.items():
        if value is not None and not value > 0:
            raise ConfigError(f"`{name}` must be a positive number or None, got {value!r}.")
    if not 0.0 <= lambda_ <= 1.0:
        raise ConfigError(f"V-trace `lambda_` must be in [0, 1], got {lambda_!r}.")


def vtrace(
    behaviour_logp: np.ndarray,
    target_logp: np.ndarray,
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminateds: np.ndarray,
    truncateds: np.ndarray,
    gamma: float,
    clip_rho_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    lambda_: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """V-trace value targets and policy-gradient advantages for [T, N] numpy arrays.

    Args:
        behaviour_logp: log mu(a_t|x_t), the policy that sampled the actions.
        target_logp: log pi(a_t|x_t), the policy being learned.
        rewards: r_t.
        values: V(x_t).
        next_values: V(x_{t+1}): see the module docstring (truncations, bootstrap).
        terminateds, truncateds: bool, the episode ended at step t.
        gamma: the discount.
        clip_rho_threshold: rho_bar, clips the importance weight in delta_t (None: no clip).
        clip_pg_rho_threshold: clips the importance weight of the advantages (None: none).
        clip_c_threshold: c_bar, clips the trace coefficients c_t (None: no clip).
        lambda_: multiplies the trace coefficients (the paper's lambda; 1 is IMPALA).

    Returns:
        (vs, pg_advantages), both [T, N] in the dtype of `values` (at least float32).
    """
    _check(
        np.shape(rewards),
        {
            "behaviour_logp": np.shape(behaviour_logp),
            "target_logp": np.shape(target_logp),
            "values": np.shape(values),
            "next_values": np.shape(next_values),
            "terminateds": np.shape(terminateds),
            "truncateds": np.shape(truncateds),
        },
        {
            "clip_rho_threshold": clip_rho_threshold,
            "clip_pg_rho_threshold": clip_pg_rho_threshold,
            "clip_c_threshold": clip_c_threshold,
        },
        lambda_,
    )
    dtype = np.result_type(values, np.float32)
    log_rhos = np.asarray(target_logp, dtype) - np.asarray(behaviour_logp, dtype)

    with np.errstate(over="ignore"):  # an overflow is inf, and min(inf, c) == c
        ratios = np.exp(log_rhos)

    def clipped(threshold: float | None) -> np.ndarray:
        return ratios if threshold is None else np.minimum(ratios, dtype.type(threshold))

    rewards = np.asarray(rewards, dtype)
    values = np.asarray(values, dtype)
    next_values = np.asarray(next_values, dtype)
    not_term = 1.0 - np.asarray(terminateds, bool).astype(dtype)
    not_done = 1.0 - (np.asarray(terminateds, bool) | np.asarray(truncateds, bool)).astype(dtype)
    discounted_next = gamma * not_term * next_values
    deltas = clipped(clip_rho_threshold) * (rewards + discounted_next - values)
    coeffs = gamma * not_done * lambda_ * clipped(clip_c_threshold)

    corrections = np.zeros_like(deltas)  # v_t - V(x_t)
    acc = np.zeros(deltas.shape[1:], dtype)
    for t in range(len(deltas) - 1, -1, -1):
        acc = deltas[t] + coeffs[t] * acc
        corrections[t] = acc
    vs = values + corrections

    # v_{t+1} - V(x_{t+1}): the next row's correction inside an episode, 0 past its end.
    next_corrections = np.zeros_like(corrections)
    next_corrections[:-1] = corrections[1:]
    next_vs = next_values + not_done * next_corrections
    pg_advantages = clipped(clip_pg_rho_threshold) * (rewards + gamma * not_term * next_vs - values)
    return vs, pg_advantages


@torch.no_grad()
def vtrace_torch(
    behaviour_logp: torch.Tensor,
    target_logp: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminateds: torch.Tensor,
    truncateds: torch.Tensor,
    gamma: float,
    clip_rho_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    lambda_: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`vtrace` for [T, N] tensors, for a learner's loss: runs under `torch.no_grad()`, so
    no gradient flows into the targets or advantages (they are constants of the loss, as
    in the paper), on the device and in the float dtype of `values`.

    The arguments and results are those of `vtrace`.
    """
    _check(
        tuple(rewards.shape),
        {
            "behaviour_logp": tuple(behaviour_logp.shape),
            "target_logp": tuple(target_logp.shape),
            "values": tuple(values.shape),
            "next_values": tuple(next_values.shape),
            "terminateds": tuple(terminateds.shape),
            "truncateds": tuple(truncateds.shape),
        },
        {
            "clip_rho_threshold": clip_rho_threshold,
            "clip_pg_rho_threshold": clip_pg_rho_threshold,
            "clip_c_threshold": clip_c_threshold,
        },
        lambda_,
    )
    dtype = values.dtype if values.is_floating_point() else torch.float32
    values = values.detach().to(dtype)
    log_rhos = target_logp.detach().to(dtype) - behaviour_logp.detach().to(dtype)

    ratios = torch.exp(log_rhos)

    def clipped(threshold: float | None) -> torch.Tensor:
        return ratios if threshold is None else torch.clamp(ratios, max=threshold)

    rewards = rewards.detach().to(dtype)
    next_values = next_values.detach().to(dtype)
    terminateds = terminateds.to(torch.bool)
    not_term = (~terminateds).to(dtype)
    not_done = (~(terminateds | truncateds.to(torch.bool))).to(dtype)
    deltas = clipped(clip_rho_threshold) * (rewards + gamma * not_term * next_values - values)
    coeffs = (gamma * lambda_) * not_done * clipped(clip_c_threshold)

    corrections = torch.empty_like(deltas)
    acc = torch.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):
        acc = torch.addcmul(deltas[t], coeffs[t], acc)
        corrections[t] = acc
    vs = values + corrections

    next_corrections = torch.zeros_like(corrections)
    next_corrections[:-1] = corrections[1:]
    next_vs = next_values + not_done * next_corrections
    pg_advantages = clipped(clip_pg_rho_threshold) * (rewards + gamma * not_term * next_vs - values)
    return vs, pg_advantages
