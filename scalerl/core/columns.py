"""Batch column names (RLlib's `ray.rllib.core.columns.Columns`)."""


class Columns:
    """Names of the batch columns shared by EnvRunners, modules and learners."""

    OBS = "obs"
    ACTIONS = "actions"
    REWARDS = "rewards"
    TERMINATEDS = "terminateds"
    TRUNCATEDS = "truncateds"
    ACTION_DIST_INPUTS = "action_dist_inputs"
    ACTION_LOGP = "action_logp"
    VF_PREDS = "vf_preds"
    ADVANTAGES = "advantages"
    VALUE_TARGETS = "value_targets"
    # Recurrent modules.
    STATE_IN = "state_in"
    STATE_OUT = "state_out"
    PREV_ACTIONS = "prev_actions"
    PREV_REWARDS = "prev_rewards"
    LOSS_MASK = "loss_mask"
