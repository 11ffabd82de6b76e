"""Saving never destroys what it did not write, and a crash at any moment leaves the old or
the new checkpoint, complete and loadable (local mode, no Ray).

The kill test forks this process: the child saves in a loop and is SIGKILLed at a random
moment; the parent then loads what is there. `-m reliability` runs it with 300 kills.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch

from scalerl.algorithms.algorithm import Algorithm, read_algorithm_state
from scalerl.algorithms.ppo import PPOConfig
from scalerl.cli import main
from scalerl.core.rl_module import RLModule
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError

USER_FILES = {
    "main.py": "print('my project')\n",
    ".ssh/id_ed25519": "secret key\n",
    "data/table.csv": "a,b\n1,2\n",
    ".hidden": "x",
}


def make_config() -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
        .debugging(seed=0)
    )


@pytest.fixture(scope="module")
def algo():
    algo = make_config().build_algo()
    algo.train()
    yield algo
    algo.stop()


def write_user_files(root: Path) -> None:
    for rel, text in USER_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def assert_user_files_intact(root: Path) -> None:
    for rel, text in USER_FILES.items():
        assert (root / rel).read_text() == text, f"{rel} was changed or removed"


def no_leftovers(root: Path) -> bool:
    return not list(root.glob(ckpt.STAGING_PREFIX + "*"))


def saved_iteration(path: Path) -> int:
    return read_algorithm_state(path)[1]["counters"]["training_iteration"]


# -- user files ------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["project_dir", "cwd", "home"])
def test_user_files_survive_saving_into_their_directory(algo, tmp_path, monkeypatch, where):
    root = tmp_path / "proj"
    root.mkdir()
    write_user_files(root)
    target = {"project_dir": root, "cwd": ".", "home": "~"}[where]
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root))
    for i in range(3):  # the second and third saves replace the first checkpoint
        algo.iteration = 100 + i
        path = algo.save(target).checkpoint.path
        assert Path(path) == root
        assert_user_files_intact(root)
        assert saved_iteration(root) == 100 + i
        assert no_leftovers(root)
    restored = Algorithm.from_checkpoint(root)
    try:
        assert restored.iteration == 102
    finally:
        restored.stop()
    module = RLModule.from_checkpoint(root / "learner_group/learner/rl_module/default_policy")
    assert isinstance(module, RLModule)


def test_cli_checkpoint_dir_keeps_user_files(tmp_path, capsys):
    write_user_files(tmp_path)
    code = main(
        [
            "train", "--env", "CartPole-v1", "--stop-iters", "1", "--eval-episodes", "0",
            "--checkpoint-dir", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    assert_user_files_intact(tmp_path)
    assert saved_iteration(tmp_path) == 1


def test_a_foreign_file_where_the_checkpoint_writes_is_kept_and_save_refused(algo, tmp_path):
    (tmp_path / "learner_group").write_text("not ours")
    with pytest.raises(CheckpointError, match="learner_group.*not written by the checkpoint"):
        algo.save(tmp_path)
    assert (tmp_path / "learner_group").read_text() == "not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["learner_group"]


def test_a_user_file_put_inside_the_checkpoint_is_kept_and_save_refused(algo, tmp_path):
    algo.save(tmp_path)
    notes = tmp_path / "learner_group" / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(CheckpointError, match="did not write.*notes.txt"):
        algo.save(tmp_path)
    assert notes.read_text() == "mine"
    assert saved_iteration(tmp_path) == algo.iteration


def test_saving_a_module_keeps_user_files(algo, tmp_path):
    write_user_files(tmp_path)
    module = algo.get_module()
    module.save_to_path(tmp_path)
    module.save_to_path(tmp_path)
    assert_user_files_intact(tmp_path)
    loaded = RLModule.from_checkpoint(tmp_path)
    for k, v in module.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_saving_over_a_checkpoint_of_fewer_files_removes_only_old_checkpoint_files(algo, tmp_path):
    write_user_files(tmp_path)
    algo.get_module().save_to_path(tmp_path)  # a module checkpoint: rl_module.json, weights
    algo.save(tmp_path)  # an algorithm checkpoint replaces it
    assert not (tmp_path / ckpt.MODULE_FILE).exists()
    assert_user_files_intact(tmp_path)
    assert saved_iteration(tmp_path) == algo.iteration


# -- crashes -----------------------------------------------------------------------------------
class Crash(BaseException):
    """Stands for the process dying between two file-system operations."""


MOVES = ("rename", "replace")  # os functions; plus ckpt.exchange


def patch_moves(monkeypatch, wrap) -> None:
    """Route every move a save makes (os.rename, os.replace, ckpt.exchange) through `wrap`."""
    for name in MOVES:
        monkeypatch.setattr(ckpt.os, name, wrap(getattr(os, name)))
    monkeypatch.setattr(ckpt, "exchange", wrap(ckpt.exchange))


def count_moves(algo, path: Path, monkeypatch) -> int:
    calls = 0

    def wrap(fn):
        def counted(a, b):
            nonlocal calls
            calls += 1
            fn(a, b)

        return counted

    with monkeypatch.context() as m:
        patch_moves(m, wrap)
        algo.save(path)
    return calls


@pytest.mark.parametrize("exchange", ["renameat2", "three_renames"])
@pytest.mark.parametrize("with_user_files", [False, True])
def test_a_crash_at_every_move_leaves_old_or_new_and_the_next_save_works(
    algo, tmp_path, monkeypatch, with_user_files, exchange
):
    """Crash the save (same process, same pid) at each rename/exchange of the commit and of
    the recovery after it; every time the path loads as the old or the new checkpoint.
    `three_renames`: a file system without atomic exchange (the fallback path)."""
    if exchange == "three_renames":
        monkeypatch.setattr(ckpt, "_renameat2", None)
    elif ckpt._renameat2 is None:
        pytest.fail("renameat2 is missing on this Linux machine")
    target = tmp_path / "ckpt"
    target.mkdir()
    if with_user_files:
        write_user_files(target)
    algo.iteration = 1
    algo.save(target)
    moves = count_moves(algo, target, monkeypatch)  # a save over an existing checkpoint
    assert moves >= 3
    for k in range(1, moves + 1):
        algo.iteration = 10 + k
        before = saved_iteration(target)
        calls = 0

        def wrap(fn, k=k):
            def crash_at_k(a, b):
                nonlocal calls
                calls += 1
                if calls == k:
                    raise Crash
                fn(a, b)

            return crash_at_k

        with monkeypatch.context() as m:
            patch_moves(m, wrap)
            with pytest.raises(Crash):
                algo.save(target)
        assert saved_iteration(target) in (before, 10 + k)
        restored_module = RLModule.from_checkpoint(target)
        assert isinstance(restored_module, RLModule)
        if with_user_files:
            assert_user_files_intact(target)
        algo.iteration = 100 + k
        algo.save(target)  # recovers, then saves; the same pid as the crashed save
        assert saved_iteration(target) == 100 + k
        assert no_leftovers(target)


def test_leftovers_of_crashed_saves_never_block_saving(algo, tmp_path):
    target = tmp_path / "ckpt"
    algo.save(target)
    for name in (".scalerl-save-aaaa", ".scalerl-save-bbbb"):
        (target / name / "learner_group").mkdir(parents=True)
        (target / name / "learner_group" / "junk").write_text("half-written")
    assert saved_iteration(target) == algo.iteration  # leftovers do not disturb loading
    algo.save(target)
    assert no_leftovers(target)
    assert saved_iteration(target) == algo.iteration


def _kill_cycles(algo, tmp_path: Path, cycles: int, seed: int) -> dict:
    """Fork a child that saves to one directory in a loop; SIGKILL it at a random moment;
    load what is left. Returns counts of what the kills hit."""
    rng = random.Random(seed)
    target = tmp_path / "ckpt"
    target.mkdir()
    write_user_files(target)
    algo.iteration = 0
    algo.save(target)
    seen = {"old": 0, "new": 0, "kills": 0}
    last_done = 0
    for _ in range(cycles):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: save, save, save ... until killed
            os.close(read_fd)
            try:
                i = last_done
                while True:
                    i += 1
                    algo.iteration = i
                    algo.save(target)
                    os.write(write_fd, f"{i}\n".encode())
            finally:
                os._exit(1)
        os.close(write_fd)
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd) as f:
            done = [int(line) for line in f.read().split()]
        seen["kills"] += 1
        last = done[-1] if done else last_done
        # The save under way may have committed before its report was written.
        iteration = saved_iteration(target)
        assert iteration in (last, last + 1), (iteration, last)
        seen["old" if iteration == last else "new"] += 1
        algo.restore_from_path(target)  # loads completely (every file verified)
        assert algo.iteration == iteration
        assert_user_files_intact(target)
        last_done = iteration
    algo.iteration = last_done + 1
    algo.save(target)  # and saving works afterwards
    assert no_leftovers(target) and saved_iteration(target) == last_done + 1
    assert_user_files_intact(target)
    return seen


def test_sigkill_at_random_moments_during_repeated_saves(algo, tmp_path):
    seen = _kill_cycles(algo, tmp_path, cycles=30, seed=0)
    assert seen["kills"] == 30


@pytest.mark.reliability
def test_sigkill_at_random_moments_during_repeated_saves_long(algo, tmp_path):
    seen = _kill_cycles(algo, tmp_path, cycles=300, seed=1)
    print(json.dumps(seen))
    assert seen["kills"] == 300
