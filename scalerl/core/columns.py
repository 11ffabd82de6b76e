"""Batch column names: RLlib's `ray.rllib.core.columns.Columns`, plus scalerl's own.

Each name's layout (shape convention) and its concatenate/split rule are in
`scalerl.utils.batch_schema`; this class only names the columns, so that code refers to a
column by one constant and never by a bare string.
"""


class Columns:
    """Names of the batch columns shared by EnvRunners, replay, modules and learners."""

    # -- RLlib's names (same strings) -----------------------------------------------------
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
    # The observation after a transition. RLlib's string is "new_obs"; scalerl's replay
    # buffers (and their checkpoints) store "next_obs", so the name is RLlib's, the value not.
    NEXT_OBS = "next_obs"

    # -- scalerl: the time-major EnvRunner fragment [T, N] --------------------------------
    BOOTSTRAP_OBS = "bootstrap_obs"  # [N, ...] the observation after the fragment's last step
    BOOTSTRAP_STATE = "bootstrap_state"  # [N, ...] the recurrent state for it
    TRUNC_INDEX = "trunc_index"  # [K, 2] (t, env) of each truncated episode's last step
    TRUNC_OBS = "trunc_obs"  # [K, ...] the final observation there
    TRUNC_STATE = "trunc_state"  # [K, ...] the recurrent state after that step
    SEQ_INDEX = "seq_index"  # [S, 2] (t, env) where each recurrent sequence starts

    # -- scalerl: n-step replay transitions [B] -------------------------------------------
    DISCOUNTS = "discounts"  # gamma^n' of the n' reward steps taken
    N_STEPS = "n_steps"  # n', the reward steps taken
    WEIGHTS = "weights"  # importance weights of prioritized replay
    INDICES = "indices"  # the buffer slots a replayed batch was drawn from

    # -- scalerl: R2D2's replay sequences [B, L] ------------------------------------------
    SEQ_MASK = "mask"  # [B, L] the valid steps of each sequence
    BURN_IN = "burn_in"  # [B] leading steps that only unroll the network
    SEQ_PREV_ACTION = "prev_action"  # [B, ...] a_{-1}, the module's input at the first step
    SEQ_PREV_REWARD = "prev_reward"  # [B] r_{-1}
