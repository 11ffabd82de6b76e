"""`scalerl train`'s run directory and progress display, `module:Class` envs, `scalerl plot`."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

from scalerl.cli import main
from scalerl.cli_progress import ProgressDisplay, format_eta
from scalerl.utils import trust
from scalerl.utils.errors import ConfigError

TINY = [
    "--set", "train_batch_size=64", "--set", "minibatch_size=32", "--set", "num_epochs=1",
    "--set", "model_config={fcnet_hiddens: [8]}", "--eval-episodes", "0", "--seed", "0",
]  # fmt: skip
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    """Two `scalerl train` runs of 2 iterations: their run directories."""
    tmp = tmp_path_factory.mktemp("runs")
    runs = []
    for seed, smoothing in (("0", "7"), ("1", "3")):
        logdir = tmp / f"run{seed}"
        rc = main(
            ["train", "--env", "CartPole-v1", *TINY, "--seed", seed, "--stop-iters", "2",
             "--smoothing", smoothing, "--log-dir", str(logdir),
             "--checkpoint-dir", str(tmp / f"ckpt{seed}")]
        )  # fmt: skip
        assert rc == 0
        runs.append(logdir)
    return runs


def test_train_writes_its_run_directory_with_smoothing(two_runs, capsys):
    params = json.loads((two_runs[0] / "params.json").read_text())
    assert params["metrics_num_episodes_for_smoothing"] == 7  # --smoothing reached the config
    assert params["logger_config"] == {"logdir": str(two_runs[0])}
    with open(two_runs[0] / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and "env_runners/episode_return_mean" in rows[0]
    assert len((two_runs[1] / "result.json").read_text().splitlines()) == 2


def test_train_prints_the_run_directory_and_eta(tmp_path, capsys):
    rc = main(
        ["train", "--env", "CartPole-v1", *TINY, "--stop-iters", "2", "--stop-reward", "400",
         "--log-dir", str(tmp_path / "run"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert f"Run directory: {tmp_path / 'run'}" in out
    # Not a TTY: one plain line per iteration, with the target and the time left.
    lines = [line for line in out.splitlines() if line.startswith("iter ")]
    assert len(lines) == 2 and "(target 400)" in lines[0] and "\r" not in out
    assert lines[0].split("| ETA ")[1] != "?" and lines[1].endswith("| ETA 0:00")
    assert f"Results: {tmp_path / 'run'}" in out and " plot " in out


def test_env_as_module_class_goes_through_the_trust_rules(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_envs.py").write_text(
        "from scalerl.examples.envs.stateless_cartpole import StatelessCartPole\n\n"
        "class MyCartPole(StatelessCartPole):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(trust, "_TRUSTED", dict(trust._TRUSTED))  # undone after the test
    ckpt = tmp_path / "ckpt"
    rc = main(
        ["train", "--env", "my_envs:MyCartPole", *TINY, "--stop-iters", "1",
         "--checkpoint-dir", str(ckpt), "--log-dir", str(tmp_path / "run")]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "Training PPO on MyCartPole" in out
    assert "--trust my_envs:MyCartPole --render" in out  # the evaluate hint names it
    params = json.loads((tmp_path / "run" / "params.json").read_text())
    assert params["env"] == {"__callable__": "my_envs:MyCartPole"}
    # A fresh process has not imported it: the checkpoint alone imports nothing.
    del trust._TRUSTED["my_envs:MyCartPole"]
    assert main(["evaluate", str(ckpt), "--episodes", "1"]) == 2
    assert "--trust my_envs:MyCartPole" in capsys.readouterr().err
    assert main(["evaluate", str(ckpt), "--episodes", "1", "--trust", "my_envs:MyCartPole"]) == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("no_such_module_xyz:Env", "cannot import module `no_such_module_xyz`"),
        ("scalerl.examples.envs.stateless_cartpole:Nope", "has no `Nope`"),
    ],
)
def test_bad_module_class_env_exits_2(env, message, capsys):
    assert main(["train", "--env", env, "--stop-iters", "1"]) == 2
    assert message in capsys.readouterr().err


def test_plot_draws_two_runs_into_a_png(two_runs, tmp_path, capsys):
    out = tmp_path / "plots" / "curves.png"
    rc = main(["plot", *map(str, two_runs), "--smoothing", "2", "--output", str(out)])
    assert rc == 0 and f"Wrote {out} (2 runs)" in capsys.readouterr().out
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    rc = main(
        ["plot", str(two_runs[0]), "--x", "training_iteration", "-o", str(tmp_path / "i.png")]
    )
    assert rc == 0 and (tmp_path / "i.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_errors_name_the_problem(two_runs, tmp_path, capsys):
    assert main(["plot", str(two_runs[0]), "--metric", "env_runners/episode_retrun_mean"]) == 2
    err = capsys.readouterr().err
    assert "--metric `env_runners/episode_retrun_mean` is not in" in err
    assert "Available metrics:" in err and "  env_runners/episode_return_mean\n" in err
    assert main(["plot", str(tmp_path)]) == 2
    assert "has no progress.csv or result.json" in capsys.readouterr().err


def test_plot_reads_result_json_when_there_is_no_csv(two_runs, tmp_path):
    from scalerl.utils.plotting import read_progress

    (tmp_path / "result.json").write_text((two_runs[0] / "result.json").read_text())
    columns = read_progress(tmp_path)
    assert columns["training_iteration"] == [1.0, 2.0]
    assert columns["num_env_steps_sampled_lifetime"] == [64.0, 128.0]


def fake_result(it: int, steps: int) -> dict:
    return {
        "env_runners": {"episode_return_mean": 20.0 + it, "num_env_steps_sampled": 100},
        "num_env_steps_sampled_lifetime": steps,
        "training_iteration": it,
        "time_this_iter_s": 0.5,
        "time_total_s": 0.5 * it,
    }


def test_progress_display_plain_lines_and_eta():
    out = io.StringIO()  # not a TTY: plain lines even with tqdm installed
    display = ProgressDisplay(1000, stop_iters=4, start_steps=200, start_iter=2, out=out)
    display.started -= 10.0  # 10 s into this session
    display.update(fake_result(3, 300))  # iterations bind: 1 of 2 done -> 10 s left
    display.close()
    (line,) = out.getvalue().splitlines()
    assert line.startswith("iter    3 | return    23.00 |       200 steps/s | 300 steps |")
    assert line.endswith("| ETA 0:10")
    assert display.fraction(600, 3) == 0.5 and display.fraction(1000, 3) == 1.0
    assert format_eta(3725) == "1:02:05" and format_eta(float("inf")) == "?"


def test_progress_display_tqdm_bar():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    display = ProgressDisplay(400, stop_reward=195.0, out=out, use_tqdm=True)
    display.update(fake_result(1, 100))
    display.message("Run directory: x")
    display.update(fake_result(2, 200))
    display.close()
    text = out.getvalue()
    assert display.bar.n == 500  # half of the 400 steps
    assert "Run directory: x" in text and "return    22.00 (target 195)" in text
    assert "| ETA " in text and "\r" in text  # redrawn in place


def test_progress_display_without_tqdm_redraws_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed
    out = io.StringIO()
    out.isatty = lambda: True  # a terminal
    display = ProgressDisplay(1000, out=out)
    display.update(fake_result(1, 100))
    display.update(fake_result(2, 200))
    display.close()
    text = out.getvalue()
    assert display.bar is None and text.count("\r") == 2 and text.count("\n") == 1
    assert text.startswith("\riter    1 | return") and "\riter    2 | return" in text


def test_env_from_name_keeps_ids_and_gymnasium_module_form():
    from scalerl.cli import env_from_name
    from scalerl.examples.envs.stateless_cartpole import StatelessCartPole

    assert env_from_name("CartPole-v1") == "CartPole-v1"
    gym_form = "gymnasium.envs.classic_control:CartPole-v1"  # Gymnasium's module:EnvId
    assert env_from_name(gym_form) == gym_form
    assert env_from_name("scalerl.examples.envs.stateless_cartpole:StatelessCartPole") is (
        StatelessCartPole
    )
    with pytest.raises(ConfigError, match="is not an env class or creator function"):
        env_from_name("scalerl.examples.envs.stateless_cartpole:np.pi")


def test_smoothing_is_a_trailing_mean():
    from scalerl.utils.plotting import smooth

    assert smooth([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert smooth([1.0, 3.0, 5.0], 1) == [1.0, 3.0, 5.0]
    assert smooth([2.0, 4.0, 6.0, 8.0], 3) == [2.0, 3.0, 4.0, 6.0]
