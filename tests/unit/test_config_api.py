"""The config builders' typed signatures, their docstrings, the defaults in `__init__` and
`to_dict()` stay in step; unknown names give a ConfigError; the public API has docstrings."""

from __future__ import annotations

import copy
import inspect
import pickle
import re
from pathlib import Path

import pytest

import scalerl
from scalerl.algorithms.algorithm_config import (
    ATTRIBUTE,
    BUILDER_METHODS,
    IGNORED,
    AlgorithmConfig,
    NotProvided,
    bool_settings,
    builder_sections,
)
from scalerl.algorithms.apex_dqn import APEXDQNConfig
from scalerl.algorithms.dqn import DQNConfig
from scalerl.algorithms.fault_tolerance_config import FAULT_TOLERANCE_SETTINGS
from scalerl.algorithms.multi_agent_config import MULTI_AGENT_SETTINGS
from scalerl.algorithms.pg import PGConfig
from scalerl.algorithms.ppo import PPOConfig
from scalerl.algorithms.r2d2 import R2D2Config
from scalerl.algorithms.sac import SACConfig
from scalerl.utils.errors import ConfigError

CONFIGS = [AlgorithmConfig, PPOConfig, PGConfig, DQNConfig, SACConfig, R2D2Config, APEXDQNConfig]
ROOT = Path(__file__).resolve().parents[2]


def args_section(doc: str) -> dict[str, str]:
    """A Google-style docstring's `Args:` entries: name -> its text on one line."""
    match = re.search(r"^Args:\n(.*?)(?:\n\S|\Z)", doc, re.S | re.M)
    assert match, f"no `Args:` section in:\n{doc}"
    entries: dict[str, str] = {}
    name = None
    for line in match.group(1).splitlines():
        head = re.match(r"^    (?:\*\*)?(\w+): (.*)$", line)
        if head:
            name = head.group(1)
            entries[name] = head.group(2)
        elif line.strip():
            assert name and line.startswith("        "), f"stray line in Args: {line!r}"
            entries[name] += " " + line.strip()
    return entries


def defining_class(cls: type, method: str) -> type:
    return next(k for k in cls.__mro__ if method in vars(k))


def own_params(cls: type, method: str) -> list[inspect.Parameter]:
    """The parameters a class's own builder method declares (not self, not **)."""
    params = inspect.signature(vars(cls)[method]).parameters.values()
    return [p for p in params if p.name != "self" and p.kind is not p.VAR_KEYWORD]


# -- signatures, sections, defaults, to_dict ---------------------------------------------------


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_sections_are_the_builder_signatures(cls):
    assert tuple(cls.sections) == BUILDER_METHODS
    assert cls.sections == builder_sections(cls)
    for method, settings in cls.sections.items():
        declared = [
            p.name
            for k in reversed(cls.__mro__)
            if method in vars(k)
            for p in own_params(k, method)
        ]
        assert list(settings) == list(dict.fromkeys(declared))
    assert cls.sections["fault_tolerance"] == FAULT_TOLERANCE_SETTINGS
    assert cls.sections["multi_agent"] == MULTI_AGENT_SETTINGS


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_setting_has_a_default_and_every_default_a_setting(cls):
    """A default in `__init__` without a builder argument (or the reverse) fails here."""
    settings = {k for keys in cls.sections.values() for k in keys if k not in IGNORED}
    attributes = set(vars(cls())) - {"algo_class"}
    assert attributes == {ATTRIBUTE.get(k, k) for k in settings}
    assert set(cls().to_dict()) == settings


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", BUILDER_METHODS)
def test_builder_arguments_are_typed_keywords_defaulting_to_not_provided(cls, method):
    params = inspect.signature(getattr(cls, method)).parameters.values()
    *settings, last = [p for p in params if p.name != "self"]
    assert last.kind is last.VAR_KEYWORD, f"{method}() must end with **unknown / **kwargs"
    for p in settings:
        assert p.default is NotProvided, f"{method}({p.name}=...) must default to NotProvided"
        assert p.annotation is not p.empty, f"{method}({p.name}) has no type"
        positional = method in ("environment", "framework", "api_stack", "callbacks")
        assert p.kind is p.KEYWORD_ONLY or positional, f"{method}({p.name}) is positional"


DOCUMENTED_BUILDERS = [
    pytest.param(cls, method, id=f"{cls.__name__}.{method}")
    for cls in CONFIGS
    for method in BUILDER_METHODS
    if method in vars(cls)
]


@pytest.mark.parametrize("cls, method", DOCUMENTED_BUILDERS)
def test_every_setting_has_a_docstring_line_with_its_default(cls, method):
    func = vars(cls)[method]
    entries = args_section(inspect.getdoc(func))
    params = inspect.signature(func).parameters.values()
    names = [p.name for p in params if p.name != "self"]
    assert list(entries) == names, "the Args: lines must list the arguments in order"
    default = cls()
    for p in own_params(cls, method):
        text = entries[p.name]
        if p.name in IGNORED:
            assert "Default: not stored" in text, p.name
            continue
        value = getattr(default, ATTRIBUTE.get(p.name, p.name))
        assert f"Default: `{value!r}`" in text, f"{method}({p.name}): {text!r} vs {value!r}"
        assert len(text.split("Default:")[0].strip()) > 10, f"{p.name} has no description"


@pytest.mark.parametrize("cls", CONFIGS[1:], ids=lambda c: c.__name__)
def test_subclass_documents_the_defaults_it_changes(cls):
    parent = cls.__mro__[1]
    doc = " ".join(inspect.getdoc(cls).split())
    mine, theirs = cls(), parent()
    for key in (k for keys in parent.sections.values() for k in keys if k not in IGNORED):
        attr = ATTRIBUTE.get(key, key)
        if getattr(mine, attr) != getattr(theirs, attr):
            assert f"`{key}={getattr(mine, attr)!r}`" in doc, f"{cls.__name__}: {key}"


# -- behaviour ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("method", BUILDER_METHODS)
def test_unknown_keyword_is_a_config_error_naming_the_nearest(cls, method):
    first = cls.sections[method][0]
    typo = first[:-1] + ("x" if first[-1] != "x" else "y")
    with pytest.raises(ConfigError, match=rf"`config\.{method}\(\)`.*`{typo}`"):
        getattr(cls(), method)(**{typo: 1})
    with pytest.raises(ConfigError, match=f"Did you mean `{first}`"):
        getattr(cls(), method)(**{typo: 1})


@pytest.mark.parametrize("cls", CONFIGS[1:], ids=lambda c: c.__name__)
def test_settings_typed_bool_must_be_bools(cls):
    names = bool_settings(cls)
    assert cls.bool_settings == names
    assert {"explore", "normalize_actions", "restart_failed_env_runners"} <= set(names)
    assert not set(names) & IGNORED
    for name in names:
        config = cls().environment("CartPole-v1")
        setattr(config, name, "yes")
        with pytest.raises(ConfigError, match=f"`{name}` must be True or False, got 'yes'"):
            config.validate()


@pytest.mark.parametrize("cls", [DQNConfig, SACConfig, R2D2Config], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "setting, value",
    [
        ("training_intensity", 0),
        ("training_intensity", "1"),
        ("min_sample_timesteps_per_iteration", 0),
    ],
)
def test_documented_ranges_of_replay_settings_are_checked(cls, setting, value):
    config = cls().environment("CartPole-v1").training(**{setting: value})
    with pytest.raises(ConfigError, match=f"`{setting}`"):
        config.validate()


def test_unknown_keyword_sets_nothing():
    config = PPOConfig()
    with pytest.raises(ConfigError):
        config.training(lr=0.5, clip_param=0.5, lrr=1)
    assert config.lr == PPOConfig().lr and config.clip_param == PPOConfig().clip_param


def test_another_algorithms_setting_is_rejected():
    with pytest.raises(ConfigError, match="`n_step`"):
        PPOConfig().training(n_step=3)
    with pytest.raises(ConfigError, match="`burn_in`"):
        DQNConfig().training(burn_in=3)


def test_not_provided_keeps_a_setting_and_none_sets_none():
    config = PPOConfig().training(grad_clip=1.0, lr=0.1)
    config.training(lr=0.2)
    assert config.grad_clip == 1.0 and config.lr == 0.2
    config.training(grad_clip=None)
    assert config.grad_clip is None
    config.environment("CartPole-v1").environment(env_config={"a": 1})
    assert config.env == "CartPole-v1" and config.env_config == {"a": 1}


def test_subclass_training_sets_own_and_base_settings():
    config = R2D2Config().training(burn_in=4, n_step=2, gamma=0.9)
    assert (config.burn_in, config.n_step, config.gamma) == (4, 2, 0.9)
    config = APEXDQNConfig().training(apex_epsilon=0.3, tau=0.5, lr=1e-4)
    assert (config.apex_epsilon, config.tau, config.lr) == (0.3, 0.5, 1e-4)


def test_overrides_per_module_in_rl_module_as_in_rllib():
    config = PPOConfig().rl_module(algorithm_config_overrides_per_module={"p1": {"lr": 0.1}})
    assert config.algorithm_config_overrides_per_module == {"p1": {"lr": 0.1}}
    assert list(config.to_dict()).count("algorithm_config_overrides_per_module") == 1


def test_ignored_rllib_settings_are_accepted():
    config = PPOConfig().api_stack(
        enable_rl_module_and_learner=True, enable_env_runner_and_connector_v2=True
    )
    config.api_stack(True, True).debugging(log_level="INFO").framework("torch")
    assert "log_level" not in config.to_dict()


def test_not_provided_is_one_object():
    assert repr(NotProvided) == "NotProvided"
    assert copy.deepcopy(NotProvided) is NotProvided
    assert pickle.loads(pickle.dumps(NotProvided)) is NotProvided
    assert type(NotProvided)() is NotProvided


@pytest.mark.parametrize("cls", CONFIGS[1:], ids=lambda c: c.__name__)
def test_to_dict_from_dict_round_trip(cls):
    config = cls().environment("CartPole-v1").debugging(seed=3)
    again = cls.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    assert cls.from_dict(config.copy().to_dict()).to_dict() == config.to_dict()


# -- packaging and docstrings ------------------------------------------------------------------


def test_package_ships_py_typed():
    assert (ROOT / "scalerl" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    package_data = pyproject.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert re.search(r'^scalerl = \[.*"py\.typed".*\]$', package_data, re.M)


# The walker below is shared with test_docstrings.py, which covers every module of `scalerl`.


def public_definitions(owner: object, module: str):
    """(name, object) of the public classes, functions, methods and properties that
    `owner` (a module or class) defines itself."""
    for name, obj in vars(owner).items():
        if name.startswith("_"):
            continue
        func = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
        if inspect.isclass(func) or inspect.isfunction(func):
            if getattr(func, "__module__", None) == module:
                yield name, obj


def undocumented(owner: object, module: str, prefix: str = "") -> list[str]:
    missing = []
    for name, obj in public_definitions(owner, module):
        doc = inspect.getdoc(getattr(owner, name)) if inspect.isclass(owner) else obj.__doc__
        if not (doc or "").strip():
            missing.append(f"{prefix}{name}")
        if inspect.isclass(obj):
            missing += undocumented(obj, module, f"{prefix}{name}.")
    return missing


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_config_classes_document_every_public_method(cls):
    assert (cls.__doc__ or "").strip()
    assert undocumented(cls, cls.__module__, f"{cls.__name__}.") == []


def test_package_exports_are_documented():
    for name in scalerl.__all__:
        obj = getattr(scalerl, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name
