"""A2C builds, trains, round-trips a checkpoint, runs from the CLI and refuses settings it
has no use for (epochs, minibatches) with a ConfigError."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from scalerl.algorithms.a2c import A2C, A2CConfig
from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.registry import get_algorithm_class
from scalerl.cli import main
from scalerl.utils.errors import ConfigError


def small_config() -> A2CConfig:
    return (
        A2CConfig()
        .environment("CartPole-v1")
        .env_runners(num_envs_per_env_runner=4, rollout_fragment_length=5)
        .training(train_batch_size=20, entropy_coeff=[[0, 0.01], [100, 0.0]])
        .debugging(seed=0)
    )


def test_a2c_trains_one_step_per_batch_and_restores_exactly(tmp_path):
    algo = small_config().build_algo()
    for _ in range(2):
        result = algo.train()
    stats = result["learners"]["default_policy"]
    assert result["num_env_steps_sampled_lifetime"] == 40
    for key in ("policy_loss", "vf_loss", "entropy", "total_loss", "vf_explained_var"):
        assert np.isfinite(stats[key]), key
    assert stats["num_module_steps_trained"] == 20  # the whole batch, once
    assert stats["curr_entropy_coeff"] == pytest.approx(0.01 * (1 - 40 / 100))  # at 40 steps
    learner = algo.learner_group.get_local_learner()
    assert learner.optimizer.t == 2  # one optimizer step per iteration
    ckpt = algo.save_to_path(tmp_path / "ckpt")
    restored = Algorithm.from_checkpoint(ckpt)
    try:
        assert isinstance(restored, A2C)
        other = restored.learner_group.get_local_learner()
        for k, v in learner.module.state_dict().items():
            assert torch.equal(v, other.module.state_dict()[k]), k
        assert torch.equal(learner.optimizer.exp_avg, other.optimizer.exp_avg)
        assert restored.config.to_dict() == algo.config.to_dict()
        assert restored.train()["training_iteration"] == 3
    finally:
        restored.stop()
        algo.stop()


def test_a2c_is_registered_by_name_and_trains_from_the_cli(tmp_path):
    assert get_algorithm_class("a2c") is A2C
    assert A2CConfig().algo_class is A2C
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(
            ["train", "--algo", "A2C", "--env", "CartPole-v1", "--stop-iters", "1",
             "--seed", "0", "--checkpoint-dir", str(tmp_path / "ckpt"), "--eval-episodes", "0"]
        )  # fmt: skip
    assert rc == 0
    assert "Stopped: 1 iterations." in out.getvalue()
    assert (tmp_path / "ckpt" / "algorithm_state.json").is_file()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_epochs": 4}, "`num_epochs` must be 1"),
        ({"minibatch_size": 32}, "`minibatch_size` must be left unset"),
        ({"microbatch_size": 0}, "`microbatch_size` must be an integer >= 1"),
        ({"microbatch_size": 500}, "`microbatch_size` \\(500\\) must not exceed"),
        ({"lambda_": 1.5}, "`lambda_` must be in \\[0, 1\\]"),
        ({"vf_loss_coeff": -1.0}, "`vf_loss_coeff` is a loss coefficient"),
        ({"entropy_coeff": -0.1}, "entropy_coeff"),
        ({"use_gae": "yes"}, "`use_gae` must be True or False"),
    ],
)
def test_bad_settings_are_config_errors(settings, message):
    config = A2CConfig().environment("CartPole-v1").training(**settings)
    with pytest.raises(ConfigError, match=message):
        config.validate()


def test_minibatch_size_reads_as_the_train_batch():
    # A stored config carries `minibatch_size` = the train batch: that value is accepted.
    config = A2CConfig().environment("CartPole-v1").training(train_batch_size=64)
    assert config.minibatch_size == 64
    config.training(minibatch_size=64).validate()
    restored = A2CConfig.from_dict(config.to_dict())
    restored.validate()
    assert restored.minibatch_size == 64
    with pytest.raises(ConfigError, match="Did you mean `num_epochs`"):
        A2CConfig().training(num_epoch=2)


def test_lstm_microbatches_of_sequences_take_the_whole_batch_step():
    """With a recurrent module the microbatches are whole sequences, weighted by their
    valid steps: one iteration ends at the same weights as without microbatches."""
    from scalerl.examples.envs import StatelessCartPole

    weights = []
    for microbatch_size in (None, 40):  # 2 sequences of up to 16 steps (some padded)
        algo = (
            A2CConfig()
            .environment(StatelessCartPole)
            .env_runners(num_envs_per_env_runner=2, rollout_fragment_length=50)
            .training(train_batch_size=100, microbatch_size=microbatch_size)
            .rl_module(model_config={"use_lstm": True, "max_seq_len": 16, "lstm_cell_size": 16})
            .debugging(seed=0)
            .build_algo()
        )
        before = algo.learner_group.get_local_learner().optimizer.flat_param.clone()
        assert algo.train()["learners"]["default_policy"]["num_module_steps_trained"] == 100
        weights.append(algo.learner_group.get_local_learner().optimizer.flat_param.clone())
        algo.stop()
    assert not torch.equal(before, weights[0])
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-4, atol=1e-6)
