"""The run directory `train()` writes: params, progress.csv, result.json, TensorBoard."""

from __future__ import annotations

import csv
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from scalerl.algorithms.ppo import PPOConfig
from scalerl.utils.errors import ConfigError
from scalerl.utils.run_logger import RunLogger, json_safe


def tiny(**debugging) -> PPOConfig:
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
        .rl_module(model_config={"fcnet_hiddens": [8]})
        .debugging(seed=0, **debugging)
    )


def read_events(path: Path) -> list:
    """TFRecord framing (length, its masked CRC32C, data, its masked CRC32C) around Event
    protos, the checksums verified as TensorBoard's reader does."""
    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c

    data, events, pos = path.read_bytes(), [], 0
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[pos + 8 : pos + 12])[0] == masked_crc32c(header)
        body = data[pos + 12 : pos + 12 + length]
        assert struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])[0] == (
            masked_crc32c(body)
        )
        events.append(event_pb2.Event.FromString(body))
        pos += 16 + length
    assert events[0].file_version == "brain.Event:2"
    return events


def test_train_writes_the_run_directory(results_dir):
    algo = tiny().build_algo()
    assert algo.logdir is None  # created lazily, at the first train()
    for _ in range(2):
        algo.train()
    logdir = Path(algo.logdir)  # files are read before stop(): flushed every iteration
    assert logdir.parent == results_dir and logdir.name.startswith("PPO_CartPole-v1_")
    params = json.loads((logdir / "params.json").read_text())
    assert params["train_batch_size"] == 64 and params["env"] == "CartPole-v1"
    assert "train_batch_size: 64" in (logdir / "params.yaml").read_text()
    with open(logdir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["training_iteration"] for r in rows] == ["1", "2"]
    assert "env_runners/episode_return_mean" in rows[0]
    assert int(rows[1]["num_env_steps_sampled_lifetime"]) == 128
    lines = (logdir / "result.json").read_text().splitlines()
    assert [json.loads(line)["training_iteration"] for line in lines] == [1, 2]
    (event_file,) = logdir.glob("events.out.tfevents.*")
    events = read_events(event_file)
    tags = {v.tag: (e.step, v.simple_value) for e in events for v in e.summary.value}
    assert tags["training_iteration"] == (128, 2.0)  # x axis: env steps sampled
    assert "env_runners/episode_return_mean" in tags
    algo.stop()


def test_logdir_setting_switch_off_and_unique_names(tmp_path, results_dir):
    before = set(results_dir.iterdir())
    off = tiny(logger_config={"type": None}).build_algo()
    off.train()
    assert off.logdir is None and set(results_dir.iterdir()) == before
    off.stop()
    # An existing, non-empty directory is never written into: the next free name is used.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("keep")
    algos = [tiny(logger_config={"logdir": str(tmp_path / "run")}).build_algo() for _ in "ab"]
    for algo in algos:
        algo.train()
        algo.stop()
    assert [Path(a.logdir).name for a in algos] == ["run_1", "run_2"]
    assert (tmp_path / "run" / "mine.txt").read_text() == "keep"


def test_without_tensorboard_no_event_files_and_one_log_line(tmp_path, monkeypatch, caplog):
    import scalerl.utils.run_logger as run_logger

    for name in [m for m in sys.modules if m.startswith("tensorboard")] + [
        "tensorboardX.event_file_writer",
        "tensorboard.compat.proto.event_pb2",
        "torch.utils.tensorboard",
    ]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it fails
    monkeypatch.setattr(run_logger, "_warned_no_tensorboard", False)
    for name in "ab":
        log = RunLogger({"logdir": str(tmp_path / name)}, "X")
        log.log({"training_iteration": 1}, dict)
        log.close()
        assert (tmp_path / name / "progress.csv").is_file()
        assert not list((tmp_path / name).glob("events.out.tfevents.*"))
    assert [r.message for r in caplog.records].count(
        "No TensorBoard event files: install tensorboardX (pip install 'scalerl[tensorboard]');"
        " progress.csv and result.json are written."
    ) == 1


def test_save_without_path_goes_into_the_run_directory(tmp_path):
    from scalerl.algorithms.algorithm import Algorithm

    algo = tiny(logger_config={"logdir": tmp_path / "run"}).build_algo()  # a Path is fine
    algo.train()
    path = algo.save().checkpoint.path
    algo.stop()
    assert Path(path) == tmp_path / "run" / "checkpoint_000001"
    restored = Algorithm.from_checkpoint(path)  # the config stored the path as a string
    assert restored.config.logger_config == {"logdir": str(tmp_path / "run")}
    restored.stop()


def test_save_before_any_train_goes_under_the_results_dir(results_dir):
    algo = tiny().build_algo()
    path = Path(algo.save().checkpoint.path)
    algo.stop()
    assert path.parent.parent == results_dir and path.name == "checkpoint_000000"
    assert path.parent.name.startswith("PPO_CartPole-v1_")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"logdirr": "x"}, "Did you mean `logdir`?"),
        ({"type": "CSVLogger"}, "logger_config['type']"),
        ("off", "must be None or a dict"),
    ],
)
def test_bad_logger_config_is_a_config_error(setting, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("?", r"\?")):
        tiny(logger_config=setting).build_algo()


def test_new_keys_widen_the_csv_header_and_values_are_json_safe(tmp_path):
    log = RunLogger({"logdir": str(tmp_path / "r")}, "X")
    log.log({"training_iteration": 1, "a": {"b": np.float32(0.5)}}, lambda: {"lr": 1e-3})
    log.log(
        {"training_iteration": 2, "a": {"b": float("nan")}, "evaluation": {"ret": np.int64(3)}},
        lambda: {},
    )
    log.close()
    with open(tmp_path / "r" / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows == [
        {"training_iteration": "1", "a/b": "0.5", "evaluation/ret": ""},
        {"training_iteration": "2", "a/b": "nan", "evaluation/ret": "3"},
    ]
    second = json.loads((tmp_path / "r" / "result.json").read_text().splitlines()[1])
    assert second == {"training_iteration": 2, "a": {"b": None}, "evaluation": {"ret": 3}}
    assert json_safe({"x": (np.array([1.5]), np.bool_(True))}) == {"x": [[1.5], True]}
