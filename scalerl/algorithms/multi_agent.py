"""Multi-agent parts of `Algorithm`: module specs from the env's agents, the filter and
metrics per module, and adding or removing modules on a running algorithm (league play).
Functions of the algorithm's public state, called from its methods."""

from __future__ import annotations

from typing import Any

from scalerl.algorithms.multi_agent_config import multi_rl_module_spec, normalize_policies
from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.rl_module import RLModuleSpec
from scalerl.core.rl_module.multi_rl_module import MultiRLModuleSpec
from scalerl.env.multi_agent_env_runner import agent_spaces
from scalerl.utils.errors import ConfigError
from scalerl.utils.metrics import KeyedReturns


def multi_agent_spec(config: Any, env: Any) -> tuple[MultiRLModuleSpec, dict, dict]:
    """One module spec per policy, with the spaces of `env`'s agents mapped to it.

    Returns:
        (the spec, agent id -> (observation space, action space), agent id -> module id).
    """
    agents = list(getattr(env, "possible_agents", None) or [])
    if not agents:
        agents = list(env.reset(seed=config.seed)[0])
    agent_space_table = {aid: agent_spaces(env, aid) for aid in agents}
    fn = config.get_policy_mapping_fn()
    agent_to_module = {aid: fn(aid, None) for aid in agents}
    return multi_rl_module_spec(config, agent_space_table), agent_space_table, agent_to_module


def module_obs_filter(obs_filter: Any, module_ids: list[str], policy_id: str) -> Any:
    """The part of a multi-agent run's central observation filter that `policy_id`'s
    observations go through (its module's own), or None without a filter."""
    if obs_filter is None:
        return None
    if policy_id == DEFAULT_MODULE_ID and len(module_ids) == 1:
        policy_id = module_ids[0]
    return obs_filter[policy_id]


def multi_agent_means(agents: KeyedReturns, modules: KeyedReturns) -> dict:
    """The smoothed returns per agent and per module, as RLlib reports them."""
    return {
        "agent_episode_returns_mean": agents.means(),
        "module_episode_returns_mean": modules.means(),
    }


def add_module(
    algo: Any,
    module_id: str,
    module_spec: RLModuleSpec | None = None,
    *,
    config_overrides: dict | None = None,
    new_agent_to_module_mapping_fn: Any = None,
    new_should_module_be_updated: Any = None,
) -> None:
    """Add a module to the running multi-agent algorithm `algo` (see `Algorithm.add_module`).

    Its spaces come from `module_spec` or from the agents the new mapping sends to it;
    `new_should_module_be_updated` is the new `policies_to_train` (default: the old
    ones plus this module). EnvRunners start fresh episodes with the new mapping.
    """
    cfg = _require_multi_agent(algo, "add_module")
    if module_id in algo.learner_group.module:
        raise ConfigError(f"A module `{module_id}` exists already: remove it first.")
    changes: dict[str, Any] = {
        "policies": {**normalize_policies(cfg.policies), module_id: module_spec}
    }
    if config_overrides:
        changes["algorithm_config_overrides_per_module"] = {
            **(cfg.algorithm_config_overrides_per_module or {}),
            module_id: dict(config_overrides),
        }
    if new_agent_to_module_mapping_fn is not None:
        changes["policy_mapping_fn"] = new_agent_to_module_mapping_fn
    full = _checked_change(algo, changes, [module_id]).rl_module_specs[module_id]
    algo.module_spec.rl_module_specs[module_id] = full
    algo.learner_group.add_module(module_id, full, train=new_should_module_be_updated is None)
    _update_policies_to_train(algo, new_should_module_be_updated)
    _refresh_runners(algo, add=(module_id, full))


def remove_module(
    algo: Any,
    module_id: str,
    *,
    new_agent_to_module_mapping_fn: Any = None,
    new_should_module_be_updated: Any = None,
) -> None:
    """Remove a module (RLlib's `Algorithm.remove_module`); the new mapping must not
    send any agent to it."""
    cfg = _require_multi_agent(algo, "remove_module")
    algo.get_module(module_id)  # a clear error for an unknown id
    policies = {k: v for k, v in normalize_policies(cfg.policies).items() if k != module_id}
    if not policies:
        raise ConfigError(f"`{module_id}` is the last module; it cannot be removed.")
    overrides = dict(cfg.algorithm_config_overrides_per_module or {})
    overrides.pop(module_id, None)
    changes = {"policies": policies, "algorithm_config_overrides_per_module": overrides}
    if new_agent_to_module_mapping_fn is not None:
        changes["policy_mapping_fn"] = new_agent_to_module_mapping_fn
    _checked_change(algo, changes, [])  # the mapping must not send agents to it
    del algo.module_spec.rl_module_specs[module_id]
    algo.learner_group.remove_module(module_id)
    _update_policies_to_train(algo, new_should_module_be_updated)
    _refresh_runners(algo, remove=module_id)


def _checked_change(algo: Any, changes: dict[str, Any], module_ids: list[str]) -> MultiRLModuleSpec:
    """Check `changes` to the multi-agent settings on a copy, then apply them (nothing
    changes if the new mapping or spaces do not fit)."""
    trial = algo.config.copy()
    for key, value in changes.items():
        setattr(trial, key, value)
    specs = multi_rl_module_spec(trial, algo.agent_space_table, module_ids)
    for key, value in changes.items():
        setattr(algo.config, key, value)
    return specs


def _require_multi_agent(algo: Any, what: str) -> Any:
    if not algo.config.is_multi_agent:
        raise ConfigError(
            f"`{what}` needs a multi-agent algorithm: configure `config.multi_agent("
            "policies=..., policy_mapping_fn=...)`."
        )
    return algo.config


def _update_policies_to_train(algo: Any, policies_to_train: Any) -> None:
    if policies_to_train is not None:
        algo.learner_group.policies_to_train = set(policies_to_train)
    algo.config.policies_to_train = sorted(algo.learner_group.policies_to_train)
    fn = algo.config.get_policy_mapping_fn()
    algo.agent_to_module = {aid: fn(aid, None) for aid in algo.agent_space_table}


def _refresh_runners(algo: Any, add: tuple | None = None, remove: str | None = None) -> None:
    fn = algo.config.get_policy_mapping_fn()
    obs_filter = algo.env_runner_group.obs_filter
    if obs_filter is not None:  # (in local mode the runner's own: adding it is idempotent)
        if add is not None:
            obs_filter.add_module(add[0], add[1].observation_space)
        if remove is not None:
            obs_filter.remove_module(remove)
    # Replayed on runners that replace failed ones (built from the original spec).
    algo.env_runner_group.call("update_modules", add, remove, fn, replay_on_restart=True)
    if algo.eval_env_runner_group is not None:  # rebuilt with the new modules when needed
        algo.eval_env_runner_group.stop()
        algo.eval_env_runner_group = None
    algo.env_runner_group.sync_weights(algo.runner_weights())
