from scalerl.env.multi_agent_env import MultiAgentEnv, make_multi_agent
from scalerl.env.registry import EnvContext, register_env

__all__ = ["EnvContext", "MultiAgentEnv", "make_multi_agent", "register_env"]
