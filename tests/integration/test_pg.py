"""PG builds, trains a few iterations, round-trips a checkpoint and is known by name."""

from __future__ import annotations

import numpy as np
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.pg import PG, PGConfig
from scalerl.algorithms.registry import get_algorithm_class


def test_pg_trains_and_restores_exactly(tmp_path):
    algo = PGConfig().environment("CartPole-v1").debugging(seed=0).build_algo()
    for _ in range(3):
        result = algo.train()
    stats = result["learners"]["default_policy"]
    assert result["num_env_steps_sampled_lifetime"] == 600
    for key in ("policy_loss", "vf_loss", "total_loss", "vf_explained_var", "curr_lr"):
        assert np.isfinite(stats[key]), key
    assert stats["num_module_steps_trained"] == 200
    ckpt = algo.save_to_path(tmp_path / "ckpt")
    restored = Algorithm.from_checkpoint(ckpt)
    try:
        assert isinstance(restored, PG)
        learner = algo.learner_group.get_local_learner()
        other = restored.learner_group.get_local_learner()
        for k, v in learner.module.state_dict().items():
            assert torch.equal(v, other.module.state_dict()[k]), k
        assert torch.equal(learner.optimizer.exp_avg, other.optimizer.exp_avg)
        assert restored.config.to_dict() == algo.config.to_dict()
        assert restored.train()["training_iteration"] == 4
    finally:
        restored.stop()
        algo.stop()


def test_pg_is_registered_by_name():
    assert get_algorithm_class("pg") is PG
    assert PGConfig().algo_class is PG
