"""RLlib's `ray.rllib.examples.envs.classes.multi_agent`: multi-agent example envs."""

from scalerl.env.multi_agent_env import make_multi_agent
from scalerl.examples.envs.cartpole_dict_obs import CartPoleWithDictObservationSpace
from scalerl.examples.envs.multi_agent_cartpole import MultiAgentCartPole
from scalerl.examples.envs.stateless_cartpole import StatelessCartPole
from scalerl.examples.envs.tic_tac_toe import TicTacToe
from scalerl.utils.unsupported import missing_names

MultiAgentPendulum = make_multi_agent("Pendulum-v1")
MultiAgentMountainCar = make_multi_agent("MountainCarContinuous-v0")
MultiAgentStatelessCartPole = make_multi_agent(StatelessCartPole)
MultiAgentCartPoleWithDictObservationSpace = make_multi_agent(CartPoleWithDictObservationSpace)

__getattr__ = missing_names(
    __name__,
    {
        "GuessTheNumberGame": "the GuessTheNumberGame example env",
        "TwoStepGame": "the TwoStepGame example env (grouped agents)",
        "TwoStepGameWithGroupedAgents": "grouped agents",
        "MultiAgentNestedSpaceRepeatAfterMeEnv": "this example env",
    },
)

__all__ = [
    "MultiAgentCartPole",
    "MultiAgentCartPoleWithDictObservationSpace",
    "MultiAgentMountainCar",
    "MultiAgentPendulum",
    "MultiAgentStatelessCartPole",
    "TicTacToe",
]
