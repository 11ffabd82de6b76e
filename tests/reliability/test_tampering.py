"""Loading a tampered checkpoint is refused with a clear error, and no code from it runs.

Every attack writes a marker file if its code ever runs; each test checks the marker is
absent. Tamperings that keep the manifest consistent (the attacker recomputes the digests)
show that safety does not rest on the checksums alone. `-m reliability` edits every digit
of every JSON file.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import sys
from pathlib import Path

import pytest

from scalerl.algorithms.algorithm import Algorithm
from scalerl.algorithms.ppo import PPOConfig
from scalerl.cli import main
from scalerl.core.rl_module import RLModule
from scalerl.utils import checkpoints as ckpt
from scalerl.utils.errors import CheckpointError, ConfigError

MODULE_DIR = "learner_group/learner/rl_module/default_policy"
WEIGHTS = f"{MODULE_DIR}/{ckpt.WEIGHTS_FILE}"


class _Payload:
    """Unpickling this touches the marker file (what a pickle in a weight file could do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    algo = (
        PPOConfig()
        .environment("CartPole-v1")
        .training(train_batch_size=64, minibatch_size=32, num_epochs=1)
        .debugging(seed=0)
        .build_algo()
    )
    algo.train()
    path = Path(algo.save(tmp_path_factory.mktemp("pristine") / "ckpt").checkpoint.path)
    algo.stop()
    return path


@pytest.fixture
def copy(pristine, tmp_path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(pristine, dst)
    return dst


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "CODE_RAN"


@pytest.fixture
def evil_module(tmp_path, marker, monkeypatch) -> str:
    """A module on sys.path (as the current directory would be) that runs code on import."""
    name = "evil_scalerl_test_module"
    (tmp_path / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        "class Env:\n    pass\n"
        "class Module:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return name


def load_all_ways(path: Path) -> list[Exception]:
    """Every public way to load `path`; each must raise. Returns the errors."""
    errors = []
    for load in (
        lambda: Algorithm.from_checkpoint(path),
        lambda: RLModule.from_checkpoint(path),
    ):
        with pytest.raises((CheckpointError, ConfigError)) as info:
            algo = load()
            getattr(algo, "stop", lambda: None)()
        errors.append(info.value)
    return errors


def edit_state(path: Path, edit) -> None:
    """Change algorithm_state.json and re-record the manifest: a consistent tampering."""
    state = json.loads((path / ckpt.ALGO_FILE).read_text())
    edit(state)
    (path / ckpt.ALGO_FILE).write_text(json.dumps(state))
    ckpt.write_manifest(path, "Algorithm")


def test_pickle_in_weight_file_is_refused(copy, marker):
    (copy / WEIGHTS).write_bytes(pickle.dumps(_Payload(marker)))
    assert "corrupt" in str(load_all_ways(copy)[0])  # the checksum catches it first
    ckpt.write_manifest(copy / MODULE_DIR, "RLModule")
    ckpt.write_manifest(copy, "Algorithm")  # digests recomputed: the parser must refuse
    for error in load_all_ways(copy):
        assert "module_state.safetensors" in str(error) and "not a tensor file" in str(error)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    [
        "subprocess:Popen",
        "builtins:exec",
        "os:system",
        "scalerl.utils.checkpoints:shutil.rmtree",  # reached through a scalerl import
        "scalerl.env.registry:gym.make",
        "scalerl.cli:main",  # scalerl's own function, not an env: env_config as its argv
        "scalerl.algorithms.ppo:PPO",  # scalerl's own class, not an env
    ],
)
def test_callable_in_config_is_refused(copy, marker, name):
    def edit(state):
        state["config"]["env"] = {"__callable__": name}
        state["config"]["env_config"] = {"args": ["touch", str(marker)], "shell": False}

    edit_state(copy, edit)
    with pytest.raises(CheckpointError, match="trusted"):
        Algorithm.from_checkpoint(copy).stop()
    assert not marker.exists()


def test_module_path_env_id_is_not_imported(copy, marker, evil_module):
    edit_state(copy, lambda s: s["config"].update(env=f"{evil_module}:Env-v0"))
    with pytest.raises(CheckpointError, match=f"would import the module `{evil_module}`"):
        Algorithm.from_checkpoint(copy).stop()
    assert not marker.exists() and evil_module not in sys.modules


def test_module_class_names_in_config_are_not_imported(copy, marker, evil_module):
    def spec(state):
        state["config"]["rl_module_spec"] = {"module_class": f"{evil_module}:Module"}

    def env_class(state):
        state["config"]["env"] = {"__callable__": f"{evil_module}:Env"}

    def policy(state):
        state["config"]["policies"] = {"p0": {"module_class": f"{evil_module}:Module"}}

    def mapping(state):
        state["config"]["policies"] = {"p0": None}
        state["config"]["policy_mapping_fn"] = {"__callable__": f"{evil_module}:Module"}

    for edit in (spec, env_class, policy, mapping):
        edit_state(copy, edit)
        with pytest.raises(CheckpointError, match="never imports"):
            Algorithm.from_checkpoint(copy).stop()
        assert not marker.exists() and evil_module not in sys.modules


def test_module_class_in_rl_module_json_is_not_imported(copy, marker, evil_module):
    meta_file = copy / MODULE_DIR / ckpt.MODULE_FILE
    meta = json.loads(meta_file.read_text())
    meta["module_class"] = f"{evil_module}:Module"
    meta_file.write_text(json.dumps(meta))
    ckpt.write_manifest(copy / MODULE_DIR, "RLModule")
    ckpt.write_manifest(copy, "Algorithm")
    for path in (copy, copy / MODULE_DIR):
        with pytest.raises(CheckpointError, match="never imports"):
            RLModule.from_checkpoint(path)
    assert not marker.exists() and evil_module not in sys.modules


def test_trusted_classes_load_when_passed(copy):
    from scalerl.algorithms.ppo.default_ppo_rl_module import DefaultPPOTorchRLModule

    # scalerl's own classes need no listing; a class passed as `trusted` is used as given.
    assert isinstance(RLModule.from_checkpoint(copy), DefaultPPOTorchRLModule)
    module = DefaultPPOTorchRLModule.from_checkpoint(copy)
    assert isinstance(module, DefaultPPOTorchRLModule)


def manifest_edit(path: Path, edit) -> None:
    body = json.loads((path / ckpt.MANIFEST_FILE).read_text())
    edit(body["files"])
    body["manifest_sha256"] = ckpt._digest_of(body)
    (path / ckpt.MANIFEST_FILE).write_text(json.dumps(body))


@pytest.mark.parametrize("rel", ["../outside.json", "/etc/hostname", "a/../../x", "a\\..\\x"])
def test_manifest_paths_outside_the_checkpoint_are_refused(copy, rel):
    outside = copy.parent / "outside.json"
    outside.write_text("{}")
    manifest_edit(copy, lambda files: files.update({rel: ckpt.sha256_file(outside)}))
    for error in load_all_ways(copy):
        assert "not a plain path inside the checkpoint" in str(error)


def test_symlinks_in_the_checkpoint_are_refused(copy, tmp_path):
    # A link to a file with the very same bytes: the digest matches, the link is refused.
    elsewhere = tmp_path / "elsewhere.json"
    shutil.copy(copy / ckpt.ALGO_FILE, elsewhere)
    (copy / ckpt.ALGO_FILE).unlink()
    (copy / ckpt.ALGO_FILE).symlink_to(elsewhere)
    for error in load_all_ways(copy):
        assert "symbolic link" in str(error)
    # A linked directory on the way to a listed file.
    (copy / ckpt.ALGO_FILE).unlink()
    shutil.copy(elsewhere, copy / ckpt.ALGO_FILE)
    shutil.move(copy / "learner_group", tmp_path / "lg")
    (copy / "learner_group").symlink_to(tmp_path / "lg")
    for error in load_all_ways(copy):
        assert "symbolic link" in str(error)


def test_a_checkpoint_without_manifest_is_refused_unless_allowed(copy):
    for p in list(copy.rglob(ckpt.MANIFEST_FILE)):
        p.unlink()
    files = {rel: ckpt.sha256_file(copy / rel) for rel in every_file(copy)}
    files.pop(ckpt.ALGO_FILE)
    state = json.loads((copy / ckpt.ALGO_FILE).read_text())
    state.update(files=files, version=1)
    (copy / ckpt.ALGO_FILE).write_text(json.dumps(state))  # a format-1 checkpoint
    with pytest.raises(CheckpointError, match="allow_unverified=True"):
        Algorithm.from_checkpoint(copy)
    algo = Algorithm.from_checkpoint(copy, allow_unverified=True)
    assert algo.iteration == 1
    algo.stop()


def _corrupt_once(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    i = rng.randrange(len(data))
    data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def every_file(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_flipped_bit_in_any_file_is_refused(pristine, tmp_path):
    rng = random.Random(0)
    refused = 0
    files = every_file(pristine)
    assert len(files) >= 7
    for n, rel in enumerate(files * 4):  # 4 random bit flips per file
        copy = tmp_path / f"c{n}"
        shutil.copytree(pristine, copy)
        _corrupt_once(copy / rel, rng)
        for error in load_all_ways(copy):
            assert str(copy) in str(error)
        refused += 1
        shutil.rmtree(copy)
    print(f"{refused} bit flips in {len(files)} files refused")
    assert refused == 4 * len(files)


def test_corrupt_weights_are_refused_by_rl_module_from_checkpoint(pristine, tmp_path):
    rng = random.Random(1)
    for n in range(25):
        copy = tmp_path / f"c{n}"
        shutil.copytree(pristine / MODULE_DIR, copy)
        _corrupt_once(copy / ckpt.WEIGHTS_FILE, rng)
        with pytest.raises(CheckpointError, match="corrupt"):
            RLModule.from_checkpoint(copy)
        shutil.rmtree(copy)


def _digit_edits(text: str, limit: int | None, rng: random.Random) -> list[str]:
    spots = [i for i, c in enumerate(text) if c.isdigit()]
    if limit is not None and len(spots) > limit:
        spots = sorted(rng.sample(spots, limit))
    return [text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :] for i in spots]


def _check_digit_edits(pristine: Path, tmp_path: Path, limit: int | None) -> tuple[int, int]:
    """Edit single digits of every JSON file (at most `limit` spots per file); each edited
    checkpoint must be refused. Returns (refused, tried)."""
    rng = random.Random(2)
    copy = tmp_path / "c"
    shutil.copytree(pristine, copy)
    refused = tried = 0
    for rel in [f for f in every_file(pristine) if f.endswith(".json")]:
        original = (pristine / rel).read_text()
        for edited in _digit_edits(original, limit, rng):
            (copy / rel).write_text(edited)
            tried += 1
            with pytest.raises((CheckpointError, ConfigError)):
                Algorithm.from_checkpoint(copy).stop()
            refused += 1
        (copy / rel).write_text(original)
    return refused, tried


def test_single_digit_edits_are_refused(pristine, tmp_path):
    refused, tried = _check_digit_edits(pristine, tmp_path, limit=100)
    print(f"{refused} of {tried} digit edits refused")
    assert refused == tried >= 500


@pytest.mark.reliability
def test_every_single_digit_edit_is_refused(pristine, tmp_path):
    refused, tried = _check_digit_edits(pristine, tmp_path, limit=None)
    print(f"{refused} of {tried} digit edits refused")
    assert refused == tried >= 1000


def test_module_ids_cannot_leave_the_checkpoint():
    for bad in ("/tmp/evil", "../up", "a/b", "..", ""):
        with pytest.raises(ConfigError, match="Policy id"):
            PPOConfig().environment("CartPole-v1").multi_agent(
                policies={bad}, policy_mapping_fn=lambda aid, ep, bad=bad, **kw: bad
            ).validate()
    with pytest.raises(CheckpointError, match="cannot name a checkpoint directory"):
        ckpt.check_module_id("../x")


def test_cli_evaluate_refuses_a_tampered_checkpoint(copy, marker, capsys):
    def edit(state):
        state["config"]["env"] = {"__callable__": "subprocess:Popen"}
        state["config"]["env_config"] = {"args": ["touch", str(marker)]}

    edit_state(copy, edit)
    assert main(["evaluate", str(copy), "--episodes", "1"]) == 2
    assert "never imports or calls" in capsys.readouterr().err
    assert not marker.exists()


def test_replay_buffer_state_is_verified(tmp_path):
    from scalerl.algorithms.dqn import DQNConfig

    algo = (
        DQNConfig()
        .environment("CartPole-v1")
        .training(num_steps_sampled_before_learning_starts=32, store_buffer_in_checkpoints=True)
        .debugging(seed=0)
        .build_algo()
    )
    algo.train()
    path = Path(algo.save(tmp_path / "ckpt").checkpoint.path)
    algo.stop()
    buffer_files = [f for f in every_file(path) if f.startswith("replay_buffer/")]
    assert buffer_files
    for rel in buffer_files:
        copy = tmp_path / "copy"
        shutil.copytree(path, copy)
        _corrupt_once(copy / rel, random.Random(3))
        with pytest.raises(CheckpointError, match="replay_buffer"):
            Algorithm.from_checkpoint(copy).stop()
        shutil.rmtree(copy)


class _CartPoleCopy:
    """A user's env creator, as it would live in their own module."""

    def __new__(cls, env_config):
        import gymnasium as gym

        return gym.make("CartPole-v1")


def test_a_users_classes_load_in_a_new_process_only_when_trusted(tmp_path, monkeypatch):
    from scalerl.utils import trust

    config = PPOConfig().environment(_CartPoleCopy)
    algo = config.training(train_batch_size=64, minibatch_size=32).build_algo()
    path = algo.save(tmp_path / "ckpt").checkpoint.path
    algo.stop()
    restored = Algorithm.from_checkpoint(path)  # this process stored it: trusted here
    restored.stop()
    monkeypatch.setattr(trust, "_TRUSTED", {})  # a new process: nothing registered
    with pytest.raises(CheckpointError, match=r"trusted=\[_CartPoleCopy\]"):
        Algorithm.from_checkpoint(path)
    Algorithm.from_checkpoint(path, trusted=[_CartPoleCopy]).stop()
    monkeypatch.setattr(trust, "_TRUSTED", {})
    Algorithm.from_checkpoint(path, config_overrides={"env": _CartPoleCopy}).stop()
    monkeypatch.setattr(trust, "_TRUSTED", {})
    trust.register_trusted(_CartPoleCopy)
    Algorithm.from_checkpoint(path).stop()
