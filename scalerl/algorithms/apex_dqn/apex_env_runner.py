"""The Ape-X actor: an EnvRunner with its own exploration rate that hands out ready n-step
transitions with their initial priorities."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from scalerl.algorithms.dqn.default_dqn_rl_module import QF_PREDS
from scalerl.core.rl_module import Columns
from scalerl.env.env_runner import SingleAgentEnvRunner
from scalerl.utils import nested
from scalerl.utils.replay_buffers import n_step_transitions


def per_worker_epsilon(worker_index: int, num_workers: int, base: float, alpha: float) -> float:
    """Ape-X's fixed exploration rates: eps_i = base^(1 + alpha i / (N - 1)), i = 0..N-1
    (runner `worker_index` i + 1). With base 0.4 and alpha 7 they span 0.4 down to 0.4^8."""
    i = max(worker_index - 1, 0)
    return base ** (1.0 + alpha * i / (num_workers - 1)) if num_workers > 1 else base


class ApexEnvRunner(SingleAgentEnvRunner):
    """Samples with a constant epsilon of its own (the weights' epsilon is overridden) and
    turns each fragment into n-step transitions before it leaves the actor."""

    def __init__(self, config: Any, env_creator: Any, module_spec: Any, *args: Any):
        super().__init__(config, env_creator, module_spec, *args)
        self.epsilon = per_worker_epsilon(
            self.worker_index,
            max(self.config.num_env_runners, 1),
            config.apex_epsilon,
            config.apex_epsilon_alpha,
        )
        self.module.epsilon.fill_(self.epsilon)

    def set_weights(self, weights: dict[str, Any], obs_filter_state: dict | None = None) -> None:
        super().set_weights(weights, obs_filter_state)
        self.module.epsilon.fill_(self.epsilon)

    def sample_transitions(self) -> tuple[tuple[dict, np.ndarray | None], dict]:
        """((n-step transitions, their initial priorities), episode metrics)."""
        fragment, metrics = self.sample()
        cfg = self.config
        transitions = n_step_transitions(fragment, cfg.n_step, cfg.gamma)
        priorities = None
        if getattr(self.module, "num_atoms", 1) == 1:
            priorities = self.td_errors(transitions)
        return (transitions, priorities), {**metrics, "epsilon": self.epsilon}

    @torch.inference_mode()
    def td_errors(self, t: dict[str, Any]) -> np.ndarray:
        """|R + gamma^n (1 - done) max_a Q(s', a) - Q(s, a)| with this actor's own network
        (Ape-X: actors prioritize what they add, so new data is not all at max priority)."""

        def q(obs: Any) -> torch.Tensor:
            obs = nested.map_structure(torch.from_numpy, obs)
            return self.module.compute_q_values({Columns.OBS: obs})[QF_PREDS]

        q_sa = q(t[Columns.OBS]).gather(
            1, torch.from_numpy(t[Columns.ACTIONS] - self.module.action_start).long()[:, None]
        )[:, 0]
        y = (
            torch.from_numpy(t[Columns.REWARDS])
            + torch.from_numpy(t[Columns.DISCOUNTS])
            * (1.0 - torch.from_numpy(t[Columns.TERMINATEDS]))
            * q(t[Columns.NEXT_OBS]).max(dim=1).values
        )
        return (y - q_sa).abs().numpy()
