"""Checkpoints of a small PPO run on CartPole: exact restore, formats, corruption, seeds.

Everything runs locally (num_env_runners=0): no Ray.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPO, PPOConfig
from scalerl.core.rl_module import Columns, RLModule
from scalerl.utils.checkpoints import write_manifest
from scalerl.utils.errors import CheckpointError

MODULE_SUBDIR = Path("learner_group", "learner", "rl_module", "default_policy")
WEIGHTS = MODULE_SUBDIR / "module_state.safetensors"


def make_config(seed: int = 0) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .training(train_batch_size=256, minibatch_size=64, num_epochs=2)
        .debugging(seed=seed)
    )


def train(algo, iterations: int) -> list[dict]:
    return [algo.train() for _ in range(iterations)]


def module_state(algo) -> dict[str, torch.Tensor]:
    return algo.get_module().state_dict()


def optimizer_of(algo):
    return algo.learner_group.get_local_learner().optimizer


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k].cpu(), b[k].cpu()), f"weights differ at {k}"


def assert_same_optimizer(a, b) -> None:
    assert a.t == b.t
    assert len(a.exp_avg) == len(b.exp_avg) and len(a.exp_avg_sq) == len(b.exp_avg_sq)
    for i, (x, y) in enumerate(zip(a.exp_avg, b.exp_avg)):
        assert torch.equal(x.cpu(), y.cpu()), f"exp_avg.{i} differs"
    for i, (x, y) in enumerate(zip(a.exp_avg_sq, b.exp_avg_sq)):
        assert torch.equal(x.cpu(), y.cpu()), f"exp_avg_sq.{i} differs"
    assert a.hyperparameters() == b.hyperparameters()


def obs_batch(n: int = 16) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.normal(size=(n, 4)).astype(np.float32))


def inference_out(module: RLModule) -> torch.Tensor:
    with torch.no_grad():
        return module.forward_inference({Columns.OBS: obs_batch()})[Columns.ACTION_DIST_INPUTS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A PPO trained for 2 iterations, and a pristine checkpoint of it."""
    algo = make_config().build_algo()
    train(algo, 2)
    ckpt = Path(algo.save_to_path(tmp_path_factory.mktemp("pristine") / "ckpt"))
    yield algo, ckpt
    algo.stop()


@pytest.fixture
def ckpt_copy(trained, tmp_path) -> Path:
    """A fresh copy of the pristine checkpoint that a test may damage."""
    _, ckpt = trained
    dst = tmp_path / "ckpt"
    shutil.copytree(ckpt, dst)
    return dst


# -- exact restore -----------------------------------------------------------------------------


def test_restore_is_exact_and_training_continues(trained):
    algo, ckpt = trained
    restored = Algorithm.from_checkpoint(ckpt)
    try:
        assert isinstance(restored, PPO)
        assert_same_weights(module_state(algo), module_state(restored))
        assert_same_optimizer(optimizer_of(algo), optimizer_of(restored))
        assert optimizer_of(restored).t > 0
        assert restored.iteration == algo.iteration == 2
        assert restored.num_env_steps_sampled_lifetime == algo.num_env_steps_sampled_lifetime
        assert restored.num_env_steps_sampled_lifetime >= 512
        assert restored.num_episodes_lifetime == algo.num_episodes_lifetime
        assert restored.episode_stats.get_state() == algo.episode_stats.get_state()
        assert restored.learner_group.get_local_learner().get_extra_state() == (
            algo.learner_group.get_local_learner().get_extra_state()
        )
        assert restored.config.to_dict() == algo.config.to_dict()
        # The EnvRunner got the restored weights too.
        runner_weights = restored.env_runner_group.local_runner.module.state_dict()
        assert_same_weights(module_state(restored), runner_weights)

        result = restored.train()
        assert result["training_iteration"] == 3
        assert result["num_env_steps_sampled_lifetime"] == (
            algo.num_env_steps_sampled_lifetime + 256
        )
        assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
        assert optimizer_of(restored).t > optimizer_of(algo).t
    finally:
        restored.stop()


def test_ppo_from_checkpoint_and_restore_into_existing(trained):
    algo, ckpt = trained
    restored = PPO.from_checkpoint(ckpt)
    fresh = make_config(seed=3).build_algo()
    try:
        assert_same_weights(module_state(algo), module_state(restored))
        fresh.restore(ckpt)
        assert_same_weights(module_state(algo), module_state(fresh))
        assert_same_optimizer(optimizer_of(algo), optimizer_of(fresh))
        assert fresh.iteration == 2
    finally:
        restored.stop()
        fresh.stop()


def test_save_result_str_and_path_are_accepted(trained, tmp_path):
    algo, _ = trained
    result = algo.save(tmp_path / "via_save")
    assert Path(result.checkpoint.path) == (tmp_path / "via_save").resolve()
    for handle in (
        result,
        result.checkpoint.path,
        str(tmp_path / "via_save"),
        tmp_path / "via_save",
    ):
        restored = Algorithm.from_checkpoint(handle)
        try:
            assert_same_weights(module_state(algo), module_state(restored))
        finally:
            restored.stop()


def test_save_default_location(trained):
    algo, _ = trained  # trained: the checkpoint goes into its run directory
    result = algo.save()
    path = Path(result.checkpoint.path)
    assert path.is_dir()
    assert path.parent == Path(algo.logdir) and path.name.startswith("checkpoint_")
    restored = Algorithm.from_checkpoint(result)
    try:
        assert_same_weights(module_state(algo), module_state(restored))
    finally:
        restored.stop()


def test_rl_module_from_checkpoint(trained):
    algo, ckpt = trained
    expected = inference_out(algo.get_module())
    from_algo_dir = RLModule.from_checkpoint(ckpt)
    from_module_dir = RLModule.from_checkpoint(ckpt / MODULE_SUBDIR)
    from_module_dir_str = RLModule.from_checkpoint(str(ckpt / MODULE_SUBDIR))
    for module in (from_algo_dir, from_module_dir, from_module_dir_str):
        assert type(module) is type(algo.get_module())
        assert_same_weights(module_state(algo), module.state_dict())
        assert torch.equal(inference_out(module), expected)


def test_rl_module_save_to_path_round_trip(trained, tmp_path):
    algo, _ = trained
    path = algo.get_module().save_to_path(tmp_path / "module")
    module = RLModule.from_checkpoint(path)
    assert torch.equal(inference_out(module), inference_out(algo.get_module()))


def test_saving_twice_to_same_path_replaces_atomically(tmp_path):
    algo = make_config().build_algo()
    try:
        train(algo, 1)
        target = tmp_path / "ckpt"
        algo.save_to_path(target)
        first = {k: v.clone() for k, v in module_state(algo).items()}
        train(algo, 1)
        algo.save_to_path(target)
        # Only the checkpoint remains: no temp or old copies beside it.
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
        restored = Algorithm.from_checkpoint(target)
        try:
            assert restored.iteration == 2
            assert_same_weights(module_state(algo), module_state(restored))
            assert any(not torch.equal(first[k], v) for k, v in module_state(restored).items())
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_failed_save_keeps_previous_checkpoint(trained, tmp_path, monkeypatch):
    algo, _ = trained
    target = tmp_path / "ckpt"
    algo.save_to_path(target)
    real_save = algo.learner_group.save

    def crashing_save(directory):
        real_save(directory)  # half-written new checkpoint...
        raise RuntimeError("disk full")  # ...then a crash

    monkeypatch.setattr(algo.learner_group, "save", crashing_save)
    with pytest.raises(RuntimeError, match="disk full"):
        algo.save_to_path(target)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    restored = Algorithm.from_checkpoint(target)
    try:
        assert_same_weights(module_state(algo), module_state(restored))
    finally:
        restored.stop()


# -- corrupt checkpoints -----------------------------------------------------------------------


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _flip_byte(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # inside the tensor data, not the header: only a checksum notices
    path.write_bytes(bytes(data))
    return path


def _remove(path: Path) -> Path:
    path.unlink()
    return path


def _write(text: str):
    def damage(path: Path) -> Path:
        path.write_text(text)
        return path

    return damage


def _write_bytes(data: bytes):
    def damage(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return damage


def _truncate_json(path: Path) -> Path:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    return path


def _drop_key(key: str):
    def damage(path: Path) -> Path:
        state = json.loads(path.read_text())
        del state[key]
        path.write_text(json.dumps(state))
        return path

    return damage


CORRUPTIONS = {
    # name: (file relative to the checkpoint, damage)
    "truncated_weights": (WEIGHTS, _truncate),
    "flipped_byte_in_weights": (WEIGHTS, _flip_byte),
    "missing_weights": (WEIGHTS, _remove),
    "truncated_optimizer": (
        Path("learner_group/learner/state/default_policy/optimizer.safetensors"),
        _truncate,
    ),
    "missing_learner_state": (
        Path("learner_group/learner/state/default_policy/learner_state.json"),
        _remove,
    ),
    "missing_algorithm_state": (Path("algorithm_state.json"), _remove),
    "garbage_json": (Path("algorithm_state.json"), _write("{not json!")),
    "binary_garbage_json": (Path("algorithm_state.json"), _write_bytes(b"\x80\xff\x00\x13")),
    "truncated_json": (Path("algorithm_state.json"), _truncate_json),
    "empty_json": (Path("algorithm_state.json"), _write("")),
    "json_not_an_object": (Path("algorithm_state.json"), _write("[1, 2, 3]")),
    "json_null": (Path("algorithm_state.json"), _write("null")),
    "json_wrong_format": (Path("algorithm_state.json"), _write('{"format": "other"}')),
    "json_missing_counters": (Path("algorithm_state.json"), _drop_key("counters")),
    "json_missing_config": (Path("algorithm_state.json"), _drop_key("config")),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupt_checkpoint_raises_checkpoint_error_naming_file(name, ckpt_copy):
    rel, damage = CORRUPTIONS[name]
    offending = damage(ckpt_copy / rel)
    with pytest.raises(CheckpointError) as info:
        algo = Algorithm.from_checkpoint(ckpt_copy)
        algo.stop()
    assert str(offending.resolve()) in str(info.value)


@pytest.mark.parametrize("name", ["truncated_weights", "missing_weights"])
def test_rl_module_from_corrupt_checkpoint(name, ckpt_copy):
    rel, damage = CORRUPTIONS[name]
    offending = damage(ckpt_copy / rel)
    for path in (ckpt_copy, ckpt_copy / MODULE_SUBDIR):
        with pytest.raises(CheckpointError) as info:
            RLModule.from_checkpoint(path)
        assert str(offending.resolve()) in str(info.value)


def test_rl_module_from_corrupt_module_json(ckpt_copy):
    meta = ckpt_copy / MODULE_SUBDIR / "rl_module.json"
    meta.write_text("{")
    with pytest.raises(CheckpointError) as info:
        RLModule.from_checkpoint(ckpt_copy / MODULE_SUBDIR)
    assert str(meta.resolve()) in str(info.value)


def test_directory_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError) as info:
        Algorithm.from_checkpoint(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)
    with pytest.raises(CheckpointError) as info:
        RLModule.from_checkpoint(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)


def test_module_dir_is_not_an_algorithm_checkpoint(ckpt_copy):
    module_dir = ckpt_copy / MODULE_SUBDIR
    with pytest.raises(CheckpointError) as info:
        Algorithm.from_checkpoint(module_dir)
    assert str(module_dir.resolve()) in str(info.value)


def test_a_file_instead_of_a_directory(ckpt_copy):
    file = ckpt_copy / "algorithm_state.json"
    with pytest.raises(CheckpointError) as info:
        Algorithm.from_checkpoint(file)
    assert str(file.resolve()) in str(info.value)


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "no" / "such" / "checkpoint"
    with pytest.raises(CheckpointError) as info:
        Algorithm.from_checkpoint(missing)
    assert str(missing.resolve()) in str(info.value)
    with pytest.raises(CheckpointError) as info:
        RLModule.from_checkpoint(missing)
    assert str(missing.resolve()) in str(info.value)
    assert not missing.exists()  # loading does not create anything


# -- seeding -------------------------------------------------------------------------------


def _run(seed: int, iterations: int = 2):
    algo = make_config(seed).build_algo()
    try:
        results = train(algo, iterations)
        returns = [r["env_runners"]["episode_return_mean"] for r in results]
        losses = [r["learners"]["default_policy"]["total_loss"] for r in results]
        weights = {k: v.clone() for k, v in module_state(algo).items()}
        return returns, losses, weights
    finally:
        algo.stop()


def test_same_seed_gives_identical_results():
    returns_a, losses_a, weights_a = _run(0)
    returns_b, losses_b, weights_b = _run(0)
    assert returns_a == returns_b
    assert losses_a == losses_b
    assert all(np.isfinite(returns_a))
    assert_same_weights(weights_a, weights_b)


def test_different_seeds_differ():
    returns_a, losses_a, weights_a = _run(0)
    returns_b, losses_b, weights_b = _run(1)
    assert losses_a != losses_b
    assert any(not torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_checkpoint_files_are_plain_data(trained):
    # Nothing pickled: JSON metadata and safetensors only.
    _, ckpt = trained
    suffixes = {p.suffix for p in ckpt.rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".safetensors"}
    state = json.loads((ckpt / "algorithm_state.json").read_text())
    assert state["counters"]["training_iteration"] == 2
    manifest = json.loads((ckpt / "scalerl_checkpoint.json").read_text())
    assert set(manifest["files"]) >= {WEIGHTS.as_posix(), "algorithm_state.json"}
    assert os.path.isfile(ckpt / MODULE_SUBDIR / "rl_module.json")


def test_restore_into_different_model_raises_checkpoint_error(trained):
    _, ckpt = trained
    other = make_config().rl_module(model_config={"fcnet_hiddens": [8]}).build_algo()
    try:
        with pytest.raises(CheckpointError) as info:
            other.restore_from_path(ckpt)
        assert str((ckpt / WEIGHTS).resolve()) in str(info.value)
    finally:
        other.stop()


def test_continuous_action_checkpoint_round_trip(tmp_path):
    config = (
        PPOConfig()
        .environment("Pendulum-v1")
        .training(train_batch_size=128, minibatch_size=64, num_epochs=1)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        train(algo, 1)
        restored = Algorithm.from_checkpoint(algo.save(tmp_path / "ckpt"))
        try:
            assert "log_std" in module_state(restored)
            assert_same_weights(module_state(algo), module_state(restored))
            assert_same_optimizer(optimizer_of(algo), optimizer_of(restored))
            obs = np.array([1.0, 0.0, 0.5], dtype=np.float32)
            np.testing.assert_array_equal(
                algo.compute_single_action(obs), restored.compute_single_action(obs)
            )
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_checkpoint_with_the_earlier_single_agent_layout_loads(trained, ckpt_copy):
    """Before per-module learner state, a single-agent checkpoint kept the optimizer and
    learner state directly in `learner_group/learner/`; such checkpoints still restore."""
    algo, _ = trained
    learner = ckpt_copy / "learner_group" / "learner"
    for name in ("optimizer.safetensors", "learner_state.json"):
        (learner / "state" / "default_policy" / name).rename(learner / name)
    shutil.rmtree(learner / "state")
    write_manifest(ckpt_copy, "Algorithm")
    restored = Algorithm.from_checkpoint(ckpt_copy)
    assert (
        optimizer_of(restored).state_tensors().keys() == optimizer_of(algo).state_tensors().keys()
    )
    for name, value in optimizer_of(algo).state_tensors().items():
        torch.testing.assert_close(optimizer_of(restored).state_tensors()[name], value)
    restored.stop()
