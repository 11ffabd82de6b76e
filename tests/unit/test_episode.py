"""Episode objects the EnvRunner callbacks get: RLlib's accessors and index rules."""

import pytest

from scalerl.callbacks import MultiAgentEpisode, SingleAgentEpisode


def test_single_agent_accessors_follow_rllibs_indices():
    ep = SingleAgentEpisode()
    ep.add_env_reset("o0", {"start": True})
    for t in (1, 2, 3):
        ep.add_env_step(f"o{t}", t * 10, float(t), {"t": t}, truncated=t == 3)
    assert len(ep) == ep.env_steps() == 3 and ep.get_return() == 6.0
    assert ep.get_observations(-1) == "o3" and ep.get_observations(0) == "o0"
    assert ep.get_observations([0, -1]) == ["o0", "o3"]
    assert ep.get_observations(slice(1, None)) == ["o1", "o2", "o3"]
    assert ep.get_actions() == [10, 20, 30] and ep.get_rewards(-1) == 3.0
    assert ep.get_infos(0) == {"start": True} and ep.get_infos(-1) == {"t": 3}
    assert ep.is_done and ep.is_truncated and not ep.is_terminated
    with pytest.raises(IndexError):
        ep.get_rewards(3)
    with pytest.raises(KeyError, match="angle"):
        ep.get_temporary_timestep_data("angle")
    ep.add_temporary_timestep_data("angle", 0.1)
    ep.add_temporary_timestep_data("angle", 0.2)
    assert ep.get_temporary_timestep_data("angle") == [0.1, 0.2]
    assert SingleAgentEpisode().id_ != ep.id_


def test_multi_agent_steps_per_agent_with_rewards_in_between():
    """A turn-based game: "a" acts, "b" is paid while waiting; rewards received before an
    agent's next action join its open step."""
    ep = MultiAgentEpisode()
    ep.agent_to_module_map.update(a="pa", b="pb")
    ep.add_env_reset({"a": 0}, {"a": {"r": 1}})
    ep.add_env_step({"b": 1}, {"a": "x"}, {"a": 0.5, "b": 1.0}, {}, {}, {})
    ep.add_env_step({"a": 2}, {"b": "y"}, {"a": 1.0}, {}, {}, {})
    ep.add_env_step({}, {"a": "z"}, {"a": 2.0, "b": 3.0}, {}, {"__all__": True}, {})
    assert len(ep) == 3 and ep.is_terminated and ep.agent_ids == {"a", "b"}
    assert ep.get_rewards() == {"a": [1.5, 2.0], "b": [4.0]}  # b's first 1.0 came early
    assert ep.get_return() == 7.5 == ep.get_return(include_hanging_rewards=True)
    assert ep.get_observations(0) == {"a": 0, "b": 1}
    assert ep.get_actions(-1) == {"a": "z", "b": "y"}
    assert ep.get_infos(0, agent_ids="a") == {"a": {"r": 1}}
    assert ep.agent_episodes["b"].module_id == "pb" and ep.module_for("a") == "pa"
    assert ep.agent_steps() == 3
