"""Replay buffers for off-policy algorithms (RLlib: `ray.rllib.utils.replay_buffers`)."""

from scalerl.utils.replay_buffers.n_step import n_step_transitions
from scalerl.utils.replay_buffers.replay_buffer import PrioritizedReplayBuffer, ReplayBuffer
from scalerl.utils.replay_buffers.sequence_buffer import (
    PrioritizedSequenceReplayBuffer,
    SequenceReplayBuffer,
    sequence_priorities,
)
from scalerl.utils.replay_buffers.sequence_cutter import SequenceCutter
from scalerl.utils.replay_buffers.sum_tree import SumTree

__all__ = [
    "PrioritizedReplayBuffer",
    "PrioritizedSequenceReplayBuffer",
    "ReplayBuffer",
    "SequenceCutter",
    "SequenceReplayBuffer",
    "SumTree",
    "n_step_transitions",
    "sequence_priorities",
]
