"""MultiAgentCartPole: independent CartPoles, one per agent (RLlib's example env)."""

from __future__ import annotations

from scalerl.env.multi_agent_env import make_multi_agent


class MultiAgentCartPole(make_multi_agent("CartPole-v1")):
    """`num_agents` (default 2) independent CartPole-v1 envs; agent ids `0 .. num_agents-1`.

    Each agent acts in its own CartPole. An agent whose pole falls (terminated) or that
    reaches 500 steps (truncated) reports its final observation with the flag set, then
    leaves `agents` and the observation dicts. The episode ends when every agent is done:
    `truncateds["__all__"]` if the agents done in that last step were all truncated, else
    `terminateds["__all__"]`. Other config keys go to `gymnasium.make("CartPole-v1", ...)`.
    """

    default_num_agents = 2
