"""The multi-agent half of `Algorithm`: module specs from the env's agents, per-agent and
per-module metrics, and adding or removing modules on a running algorithm (league play)."""

from __future__ import annotations

from typing import Any

from scalerl.algorithms.multi_agent_config import multi_rl_module_spec, normalize_policies
from scalerl.core import DEFAULT_MODULE_ID
from scalerl.core.rl_module import RLModuleSpec
from scalerl.core.rl_module.multi_rl_module import MultiRLModuleSpec
from scalerl.env.multi_agent_env_runner import agent_spaces
from scalerl.utils.errors import ConfigError
from scalerl.utils.metrics import KeyedReturns


class MultiAgentMixin:
    """Uses the algorithm's config, learner group and EnvRunner groups."""

    def _multi_agent_spec(self) -> MultiRLModuleSpec:
        """One module spec per policy, with the spaces of the env's agents mapped to it."""
        cfg = self.config
        env = self._make_env()
        agents = list(getattr(env, "possible_agents", None) or [])
        if not agents:
            agents = list(env.reset(seed=cfg.seed)[0])
        self.agent_space_table = {aid: agent_spaces(env, aid) for aid in agents}
        # RLlib's `env_to_module_connector=lambda env: MeanStdFilter()`: one per module.
        spaces = (getattr(env, "observation_space", None), getattr(env, "action_space", None))
        self._resolve_env_to_module_connector(env, spaces)
        env.close()
        fn = cfg.get_policy_mapping_fn()
        self.agent_to_module = {aid: fn(aid, None) for aid in agents}
        return multi_rl_module_spec(cfg, self.agent_space_table)

    def _module_obs_filter(self, policy_id: str) -> Any:
        """The central observation filter that `policy_id`'s observations go through (its
        module's own in a multi-agent run), or None."""
        obs_filter = self.env_runner_group.obs_filter
        if obs_filter is None or not self.config.is_multi_agent:
            return obs_filter
        modules = self.learner_group.module
        if policy_id == DEFAULT_MODULE_ID and len(modules) == 1:
            policy_id = modules.keys()[0]
        return obs_filter[policy_id]

    def _multi_agent_means(self, agents: KeyedReturns, modules: KeyedReturns) -> dict:
        if not self.config.is_multi_agent:
            return {}
        return {
            "agent_episode_returns_mean": agents.means(),
            "module_episode_returns_mean": modules.means(),
        }

    def add_module(
        self,
        module_id: str,
        module_spec: RLModuleSpec | None = None,
        *,
        config_overrides: dict | None = None,
        new_agent_to_module_mapping_fn: Any = None,
        new_should_module_be_updated: Any = None,
    ) -> None:
        """Add a module to a running multi-agent algorithm (RLlib's `Algorithm.add_module`).

        Its spaces come from `module_spec` or from the agents the new mapping sends to it;
        `new_should_module_be_updated` is the new `policies_to_train` (default: the old
        ones plus this module). EnvRunners start fresh episodes with the new mapping.
        """
        cfg = self._require_multi_agent("add_module")
        if module_id in self.learner_group.module:
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
        full = self._checked_change(changes, [module_id]).rl_module_specs[module_id]
        self.module_spec.rl_module_specs[module_id] = full
        self.learner_group.add_module(module_id, full, train=new_should_module_be_updated is None)
        self._update_policies_to_train(new_should_module_be_updated)
        self._refresh_runners(add=(module_id, full))

    def remove_module(
        self,
        module_id: str,
        *,
        new_agent_to_module_mapping_fn: Any = None,
        new_should_module_be_updated: Any = None,
    ) -> None:
        """Remove a module (RLlib's `Algorithm.remove_module`); the new mapping must not
        send any agent to it."""
        cfg = self._require_multi_agent("remove_module")
        self.get_module(module_id)  # a clear error for an unknown id
        policies = {k: v for k, v in normalize_policies(cfg.policies).items() if k != module_id}
        if not policies:
            raise ConfigError(f"`{module_id}` is the last module; it cannot be removed.")
        overrides = dict(cfg.algorithm_config_overrides_per_module or {})
        overrides.pop(module_id, None)
        changes = {"policies": policies, "algorithm_config_overrides_per_module": overrides}
        if new_agent_to_module_mapping_fn is not None:
            changes["policy_mapping_fn"] = new_agent_to_module_mapping_fn
        self._checked_change(changes, [])  # the mapping must not send agents to it
        del self.module_spec.rl_module_specs[module_id]
        self.learner_group.remove_module(module_id)
        self._update_policies_to_train(new_should_module_be_updated)
        self._refresh_runners(remove=module_id)

    def _checked_change(self, changes: dict[str, Any], module_ids: list[str]) -> MultiRLModuleSpec:
        """Check `changes` to the multi-agent settings on a copy, then apply them (nothing
        changes if the new mapping or spaces do not fit)."""
        trial = self.config.copy()
        for key, value in changes.items():
            setattr(trial, key, value)
        specs = multi_rl_module_spec(trial, self.agent_space_table, module_ids)
        for key, value in changes.items():
            setattr(self.config, key, value)
        return specs

    def _require_multi_agent(self, what: str) -> Any:
        if not self.config.is_multi_agent:
            raise ConfigError(
                f"`{what}` needs a multi-agent algorithm: configure `config.multi_agent("
                "policies=..., policy_mapping_fn=...)`."
            )
        return self.config

    def _update_policies_to_train(self, policies_to_train: Any) -> None:
        if policies_to_train is not None:
            self.learner_group.policies_to_train = set(policies_to_train)
        self.config.policies_to_train = sorted(self.learner_group.policies_to_train)
        fn = self.config.get_policy_mapping_fn()
        self.agent_to_module = {aid: fn(aid, None) for aid in self.agent_space_table}

    def _refresh_runners(self, add: tuple | None = None, remove: str | None = None) -> None:
        fn = self.config.get_policy_mapping_fn()
        obs_filter = self.env_runner_group.obs_filter
        if obs_filter is not None:  # (in local mode the runner's own: adding it is idempotent)
            if add is not None:
                obs_filter.add_module(add[0], add[1].observation_space)
            if remove is not None:
                obs_filter.remove_module(remove)
        # Replayed on runners that replace failed ones (built from the original spec).
        self.env_runner_group.call("update_modules", add, remove, fn, replay_on_restart=True)
        if self.eval_env_runner_group is not None:  # rebuilt with the new modules when needed
            self.eval_env_runner_group.stop()
            self.eval_env_runner_group = None
        self.env_runner_group.sync_weights(self.runner_weights())
