"""The `config.multi_agent(...)` settings: policies, the mapping of agents to them, which of
them train, and their storage in checkpoints (JSON, no pickle)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scalerl.core.rl_module import RLModule, RLModuleSpec
from scalerl.core.rl_module.multi_rl_module import MultiRLModuleSpec
from scalerl.utils.checkpoints import SAFE_NAME
from scalerl.utils.errors import ConfigError
from scalerl.utils.trust import StoredName, register_trusted, resolve, stored_name

MULTI_AGENT_SETTINGS = (
    "policies",
    "policy_mapping_fn",
    "policies_to_train",
    "algorithm_config_overrides_per_module",
)


class MappingTable:
    """A policy mapping restored from a checkpoint whose function could not be stored by
    name (a lambda or local function): the agent -> module pairs seen while training."""

    def __init__(self, pairs: list[tuple[Any, str]]):
        self.table = {_key(a): m for a, m in pairs}

    def __call__(self, agent_id: Any, episode: Any = None, **kwargs: Any) -> str:
        try:
            return self.table[_key(agent_id)]
        except KeyError:
            raise ConfigError(
                f"Agent {agent_id!r} was never seen while the checkpoint was trained, and its "
                "`policy_mapping_fn` (a lambda or local function) was stored as the table of "
                f"agents it mapped: {sorted(self.table.items(), key=str)}. Pass the function: "
                "`Algorithm.from_checkpoint(path, {'policy_mapping_fn': fn})`."
            ) from None


def _key(agent_id: Any) -> Any:
    return tuple(agent_id) if isinstance(agent_id, list) else agent_id


def normalize_policies(policies: Any) -> dict[str, RLModuleSpec | None]:
    """`policies` as RLlib takes it (a set/list of ids, or a dict id -> RLModuleSpec or None)
    as a dict."""
    if policies is None:
        return {}
    if isinstance(policies, set | list | tuple):
        policies = {mid: None for mid in policies}
    if not isinstance(policies, dict):
        raise ConfigError(
            "`policies` must be a set of module ids or a dict {module_id: RLModuleSpec or "
            f"None}}; got {policies!r}."
        )
    for mid, spec in policies.items():
        if not isinstance(mid, str):
            raise ConfigError(f"Policy ids must be strings; got {mid!r} in `policies`.")
        if not SAFE_NAME.match(mid) or mid in (".", ".."):
            raise ConfigError(
                f"Policy id {mid!r} in `policies` names the module's checkpoint directory: use "
                "letters, digits, `_`, `-` and `.` only (at most 128 characters, not `.`/`..`)."
            )
        if spec is not None and not isinstance(spec, RLModuleSpec):
            raise ConfigError(
                f"`policies[{mid!r}]` must be an RLModuleSpec or None; got {type(spec).__name__}."
            )
    return dict(policies)


def validate_multi_agent(config: Any) -> None:
    """ConfigError unless the multi-agent settings fit together: a mapping function for
    several policies, module ids that are policies, valid per-module overrides, and
    recurrent modules only for algorithms that train them on multi-agent data (PPO)."""
    policies = normalize_policies(config.policies)
    if not policies:
        return
    if config.policy_mapping_fn is None and len(policies) > 1:
        raise ConfigError(
            f"Several policies ({sorted(policies)}) need a `policy_mapping_fn(agent_id, "
            "episode, **kwargs) -> module_id` in `config.multi_agent(...)`."
        )
    if config.policy_mapping_fn is not None and not callable(config.policy_mapping_fn):
        raise ConfigError("`policy_mapping_fn` must be a function (agent_id, episode, **kw).")
    for name in ("policies_to_train", "algorithm_config_overrides_per_module"):
        value = getattr(config, name)
        ids = value if isinstance(value, list | tuple | set) else (value or {})
        if callable(value):
            raise ConfigError(f"`{name}` must list module ids (a function is not supported).")
        unknown = [mid for mid in ids if mid not in policies]
        if unknown:
            raise ConfigError(
                f"`{name}` names {unknown}, which are not policies. Policies: {sorted(policies)}."
            )
    for overrides in (config.algorithm_config_overrides_per_module or {}).values():
        config.copy().update_from_dict({"policies": None, **dict(overrides)}).validate()
    if not config.multi_agent_memory:
        _check_memoryless(config, policies)


def _check_memoryless(config: Any, policies: dict[str, Any]) -> None:
    """ConfigError if a policy's `model_config` asks for a recurrent module in an
    algorithm whose multi-agent runs are memoryless (DQN, SAC)."""
    overrides = config.algorithm_config_overrides_per_module or {}
    for mid, spec in sorted(policies.items()):
        global_spec = config.rl_module_spec
        model_config = {
            **(config.model_config or {}),
            **((global_spec.model_config or {}) if global_spec is not None else {}),
            **(dict(overrides.get(mid) or {}).get("model_config") or {}),
            **((spec.model_config or {}) if spec is not None else {}),
        }
        for key in ("use_lstm", "use_attention"):
            if model_config.get(key):
                name = type(config).__name__.removesuffix("Config")
                raise ConfigError(
                    f"`model_config` sets `{key}=True` for policy `{mid}`, but {name}'s "
                    "multi-agent runs support memoryless modules only (PPO trains recurrent "
                    f"multi-agent policies): drop `{key}`."
                )


def mapping_fn(config: Any) -> Callable[..., str]:
    """The policy mapping function (the only policy when none is given)."""
    if config.policy_mapping_fn is not None:
        return config.policy_mapping_fn
    (only,) = normalize_policies(config.policies)
    return lambda agent_id, episode=None, **kw: only


def config_for_module(config: Any, module_id: str) -> Any:
    """The config with `algorithm_config_overrides_per_module[module_id]` applied."""
    overrides = (config.algorithm_config_overrides_per_module or {}).get(module_id)
    if not overrides:
        return config
    return config.copy().update_from_dict(dict(overrides))


def multi_rl_module_spec(
    config: Any, agent_spaces: dict[Any, tuple], module_ids: Any = None
) -> MultiRLModuleSpec:
    """One spec per policy (or per id in `module_ids`). A policy's spaces are those of the
    first agent mapped to it (or its RLModuleSpec's); each uses the algorithm's default
    module unless its spec names a class. Checks that the mapping sends every agent to a
    policy and agents of one policy have equal spaces."""
    policies = normalize_policies(config.policies)
    fn = mapping_fn(config)
    spaces: dict[str, tuple] = {}
    for agent_id, agent_space in agent_spaces.items():
        mid = fn(agent_id, None)
        if mid not in policies:
            raise ConfigError(
                f"`policy_mapping_fn` mapped agent {agent_id!r} to `{mid}`, which is not a "
                f"policy. Policies: {sorted(policies)}."
            )
        if mid in spaces and spaces[mid] != agent_space:
            raise ConfigError(
                f"Agents mapped to policy `{mid}` have different spaces ({spaces[mid]} and "
                f"{agent_space} for agent {agent_id!r}); map them to different policies."
            )
        spaces.setdefault(mid, agent_space)
    specs = {}
    for mid in policies if module_ids is None else module_ids:
        given = policies[mid]
        module_config = config_for_module(config, mid)
        obs_space, act_space = spaces.get(mid, (None, None))
        if given is not None:
            obs_space = given.observation_space or obs_space
            act_space = given.action_space or act_space
        if obs_space is None or act_space is None:
            raise ConfigError(
                f"No agent of the env maps to policy `{mid}`, so its spaces are unknown: give "
                f"it an RLModuleSpec with `observation_space` and `action_space`."
            )
        base = module_config.copy()
        base.rl_module_spec = given or module_config.rl_module_spec
        specs[mid] = base.get_rl_module_spec(obs_space, act_space)
    return MultiRLModuleSpec(specs)


def encode_multi_agent(key: str, value: Any, seen: dict | None) -> Any:
    """JSON form of a multi-agent setting. A mapping function is stored by import path, or,
    if it is a lambda or local function, as the agent -> module table in `seen`."""
    if key == "policies":
        return {
            mid: None
            if spec is None
            else {
                "module_class": None
                if spec.module_class is None
                else _stored_name(spec.module_class),
                "model_config": spec.model_config,
                "observation_space": spec.observation_space,
                "action_space": spec.action_space,
            }
            for mid, spec in normalize_policies(value).items()
        }
    if key == "policy_mapping_fn" and value is not None:
        if isinstance(value, MappingTable):
            return {"__mapping_table__": [[a, m] for a, m in value.table.items()]}
        name = stored_name(value)  # inside `carrying_objects()`, a lambda travels too
        by_name = not isinstance(name, StoredName)
        if by_name and ("<lambda>" in name or "<locals>" in name or name.startswith("__main__:")):
            return {"__mapping_table__": [[a, m] for a, m in (seen or {}).items()]}
        return {"__callable__": _stored_name(value)}
    if key == "policies_to_train" and value is not None:
        return sorted(value)
    return value


def _stored_name(obj: Any) -> str:
    """The name a checkpoint stores for `obj` (see `trust.stored_name`); this process
    vouches for it from now on."""
    register_trusted(obj)
    return stored_name(obj)


def decode_multi_agent(key: str, value: Any, trusted: tuple = ()) -> Any:
    """The inverse of `encode_multi_agent`; class and function names resolve only against
    what this process trusts (see `scalerl.utils.trust`)."""
    if key == "policies" and isinstance(value, dict):
        return {
            mid: None
            if spec is None
            else RLModuleSpec(
                module_class=None
                if spec["module_class"] is None
                else resolve(
                    spec["module_class"], f"the module class of policy `{mid}`", trusted, RLModule
                ),
                model_config=spec.get("model_config"),
                observation_space=spec.get("observation_space"),
                action_space=spec.get("action_space"),
            )
            for mid, spec in value.items()
        }
    if key == "policy_mapping_fn" and isinstance(value, dict):
        if "__callable__" in value:
            return resolve(value["__callable__"], "the `policy_mapping_fn`", trusted)
        return MappingTable([tuple(p) for p in value["__mapping_table__"]])
    return value
