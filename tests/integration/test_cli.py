"""The `scalerl` command line: train -> checkpoint -> evaluate, config files, errors."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from scalerl.cli import main

# Tiny batches and one epoch: an iteration takes a fraction of a second.
TINY = """\
train_batch_size: 256
minibatch_size: 64
num_epochs: 1
model_config:
  fcnet_hiddens: [16]
"""


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """One `scalerl train` run shared by the tests below: (exit code, stdout, checkpoint)."""
    tmp = tmp_path_factory.mktemp("train")
    ckpt = tmp / "ckpt"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(
            ["train", "--algo", "PPO", "--env", "CartPole-v1", "--config",
             _write(tmp / "tiny.yaml", TINY), "--stop-iters", "1", "--seed", "0",
             "--checkpoint-dir", str(ckpt), "--eval-episodes", "2"]
        )  # fmt: skip
    return rc, out.getvalue(), ckpt


def test_train_writes_checkpoint_and_prints_evaluate_command(trained):
    rc, out, ckpt = trained
    assert rc == 0
    assert (ckpt / "algorithm_state.json").is_file()
    # Not a TTY here: one progress line per iteration, no carriage returns.
    assert "iter    1 | return" in out and "\r" not in out
    assert "Stopped: 1 iterations." in out
    assert "Evaluation (explore=False, 2 episodes): mean return" in out
    assert f"scalerl evaluate {ckpt.resolve()}" in out


def test_evaluate_prints_returns_and_writes_gif(trained, tmp_path, capsys):
    gif = tmp_path / "out" / "episode.gif"
    rc = main(["evaluate", str(trained[2]), "--episodes", "3", "--render", str(gif), "--seed", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("episode")] == [
        "episode   1", "episode   2", "episode   3"
    ]  # fmt: skip
    assert "mean return over 3 episodes" in out
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames > 1


def test_evaluate_is_reproducible_with_seed(trained, capsys):
    outputs = []
    for _ in range(2):
        assert main(["evaluate", str(trained[2]), "--episodes", "2", "--seed", "3"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]


def test_tuned_example_yaml_default_checkpoint_dir_and_tty(tmp_path, monkeypatch, capsys):
    cfg = _write(
        tmp_path / "tuned.yaml",
        "cartpole-ppo:\n  env: CartPole-v1\n  run: PPO\n  stop:\n"
        "    training_iteration: 50\n    env_runners/episode_return_mean: 10000\n"
        "  config:\n" + "".join(f"    {line}\n" for line in TINY.splitlines()),
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    # The flag overrides the file's `training_iteration: 50`.
    assert main(["train", "--config", cfg, "--stop-iters", "2", "--eval-episodes", "0"]) == 0
    out = capsys.readouterr().out
    assert "until return >= 10000" in out and "or 2 iterations" in out
    # A terminal: tqdm's bar redraws in place; lines end only after the run directory's
    # and at the end.
    progress = out.split("iterations.\n")[1].split("Stopped:")[0]
    assert "| iter    2 | return" in progress and "\r" in progress
    assert progress.count("\n") == 2 and "Run directory: " in progress
    assert "Evaluation" not in out
    (ckpt,) = (tmp_path / "checkpoints").glob("PPO_CartPole-v1_*")
    assert (ckpt / "algorithm_state.json").is_file()


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("lrr: 0.001\nenv: CartPole-v1\n", "Did you mean `lr`?"),
        ("x:\n  run: PPO\n  stop: {training_iterations: 1}\n", "`training_iteration`?"),
        ("x:\n  run: PPO\n  confg: {lr: 0.1}\n", "Did you mean `config`?"),
    ],
)
def test_config_typo_exits_2_with_suggestion(tmp_path, capsys, text, suggestion):
    cfg = _write(tmp_path / "bad.yaml", text)
    assert main(["train", "--env", "CartPole-v1", "--config", cfg]) == 2
    err = capsys.readouterr().err
    assert suggestion in err and err.startswith("scalerl train: error:")
    assert "Traceback" not in err


def test_train_without_env_exits_2(capsys):
    assert main(["train", "--algo", "PPO"]) == 2
    assert "--env" in capsys.readouterr().err


def test_ctrl_c_saves_checkpoint_and_exits_cleanly(tmp_path, monkeypatch, capsys):
    from scalerl.algorithms.registry import get_algorithm_class

    algo_cls = get_algorithm_class("PPO")
    real_train = algo_cls.train

    def train_then_interrupt(self):
        if self.iteration >= 1:
            raise KeyboardInterrupt
        return real_train(self)

    monkeypatch.setattr(algo_cls, "train", train_then_interrupt)
    cfg = _write(tmp_path / "tiny.yaml", TINY)
    ckpt = tmp_path / "ckpt"
    rc = main(["train", "--env", "CartPole-v1", "--config", cfg, "--checkpoint-dir", str(ckpt)])
    out = capsys.readouterr().out
    assert rc == 130
    assert "Stopped: interrupted (Ctrl-C)." in out and "Evaluation" not in out
    assert (ckpt / "algorithm_state.json").is_file()
    assert f"scalerl evaluate {ckpt.resolve()}" in out


def test_evaluate_missing_checkpoint_exits_2(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_evaluate_corrupt_checkpoint_exits_2(trained, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained[2], ckpt)
    weights = next(ckpt.rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"garbage!")
    assert main(["evaluate", str(ckpt)]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "x", "--episodes", "0"])
    assert exc.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err


def test_console_script_entry_point(trained, tmp_path):
    script = Path(sys.executable).with_name("scalerl")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "scalerl.cli"]
    proc = subprocess.run(
        [*cmd, "evaluate", str(trained[2]), "--episodes", "1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "episode   1: return" in proc.stdout


def test_help_is_fast_and_imports_nothing_heavy():
    # `python -m scalerl.cli --help` must work, and the module must not import torch or Ray.
    proc = subprocess.run(
        [sys.executable, "-m", "scalerl.cli", "train", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and "--stop-reward" in proc.stdout
    code = (
        "import sys, scalerl.cli; sys.exit(' '.join({'torch', 'ray'} & set(sys.modules)) or None)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_evaluate_carries_an_lstm_state_and_scores_as_the_algorithm(tmp_path, capsys):
    """An LSTM policy on StatelessCartPole (velocities hidden: it needs its memory). The
    CLI's greedy episodes must score about what `algo.evaluate()` scores; reset at every
    step, the memory is lost and the same policy scores far less (issue 13: 437 vs 39)."""
    from scalerl.algorithms.ppo import PPOConfig
    from scalerl.examples.envs import StatelessCartPole

    algo = (
        PPOConfig()
        .environment(StatelessCartPole)
        .env_runners(num_envs_per_env_runner=16)
        .training(train_batch_size=2048, minibatch_size=512, num_epochs=6, lr=1e-3)
        .rl_module(model_config={"fcnet_hiddens": [64], "use_lstm": True, "max_seq_len": 20})
        .evaluation(evaluation_duration=10)
        .debugging(seed=0)
        .build_algo()
    )
    steps = ret = 0
    while steps < 300_000 and ret < 150:
        runners = algo.train()["env_runners"]
        steps, ret = runners["num_env_steps_sampled_lifetime"], runners["episode_return_mean"]
    expected = algo.evaluate()["env_runners"]["episode_return_mean"]
    path = algo.save(tmp_path / "lstm").checkpoint.path
    algo.stop()
    capsys.readouterr()
    assert main(["evaluate", path, "--episodes", "10", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    got = float(out.split("mean return over 10 episodes:")[1].split()[0])
    print(f"algo.evaluate(): {expected:.1f}, scalerl evaluate: {got:.1f} ({steps} steps)")
    assert expected > 100, expected
    assert 0.6 * expected <= got <= expected / 0.6, (got, expected)


def test_set_overrides_any_setting_with_yaml_values(tmp_path, capsys):
    from scalerl.algorithms.algorithm import Algorithm
    from scalerl.cli import parse_set

    assert parse_set(["lr=1e-3", "model_config={fcnet_hiddens: [8]}", "observation_filter=X"]) == {
        "lr": 0.001,
        "model_config": {"fcnet_hiddens": [8]},
        "observation_filter": "X",
    }
    ckpt, tiny = tmp_path / "ckpt", _write(tmp_path / "t.yaml", TINY)
    rc = main(
        ["train", "--algo", "ppo", "--env", "CartPole-v1", "--config", tiny,
         "--stop-iters", "1", "--checkpoint-dir", str(ckpt), "--eval-episodes", "0",
         "--set", "lr=2e-4", "--set", "model_config={fcnet_hiddens: [8]}"]
    )  # fmt: skip
    assert rc == 0
    restored = Algorithm.from_checkpoint(ckpt)
    assert restored.config.lr == 2e-4 and restored.config.model_config["fcnet_hiddens"] == [8]
    restored.stop()
    assert main(["train", "--env", "CartPole-v1", "--set", "lr"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_algorithm_names_as_the_docs_write_them():
    from scalerl.algorithms.apex_dqn import APEXDQN
    from scalerl.algorithms.registry import get_algorithm_class

    for name in ("APEX-DQN", "apex_dqn", "ApexDQN"):
        assert get_algorithm_class(name) is APEXDQN
    with pytest.raises(Exception, match="Available: PPO, PG, A2C, DQN, APEX-DQN, R2D2, SAC"):
        get_algorithm_class("A3C")


def test_restore_resumes_the_counters_and_checkpoint_freq_saves(tmp_path, monkeypatch, capsys):
    from scalerl.algorithms.algorithm import Algorithm

    tiny, first, second = _write(tmp_path / "t.yaml", TINY), tmp_path / "a", tmp_path / "b"
    rc = main(
        ["train", "--env", "CartPole-v1", "--config", tiny, "--stop-iters", "1",
         "--checkpoint-dir", str(first), "--eval-episodes", "0", "--seed", "0"]
    )  # fmt: skip
    assert rc == 0
    saves = []
    real = Algorithm.save_to_path
    monkeypatch.setattr(
        Algorithm, "save_to_path", lambda self, path=None: saves.append(path) or real(self, path)
    )
    rc = main(
        ["train", "--restore", str(first), "--stop-iters", "3", "--checkpoint-dir", str(second),
         "--checkpoint-freq", "1", "--eval-episodes", "0", "--set", "lr=1e-4"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "resumed at iteration 1" in out
    assert "iter    2" in out and "iter    3" in out and "iter    1 " not in out.split("resumed")[1]
    assert len(saves) == 2 + 1  # iterations 2 and 3, then the final save
    resumed = Algorithm.from_checkpoint(second)
    assert resumed.training_iteration == 3 and resumed.config.lr == 1e-4
    assert resumed.num_env_steps_sampled_lifetime == 3 * 256
    resumed.stop()
    assert main(["train", "--restore", str(first), "--algo", "DQN"]) == 2
    assert "PPO checkpoint, but --algo is DQN" in capsys.readouterr().err


def test_evaluate_renders_a_custom_env_class(tmp_path, capsys):
    """A class env (not a Gymnasium id) gets `render_mode` through its env_config."""
    from scalerl.algorithms.ppo import PPOConfig
    from scalerl.examples.envs.stateless_cartpole import StatelessCartPole

    config = (
        PPOConfig()
        .environment(StatelessCartPole, env_config={"max_episode_steps": 20})
        .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1)
    )
    algo = config.build_algo()
    ckpt = algo.save_to_path(tmp_path / "ckpt")
    algo.stop()
    gif = tmp_path / "custom.gif"
    assert main(["evaluate", str(ckpt), "--episodes", "1", "--render", str(gif)]) == 0
    assert "mean return over 1 episodes" in capsys.readouterr().out
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames > 1
