"""DefaultModelConfig: the settings of the default modules, as a typed dataclass.

Mirrors RLlib's `ray.rllib.core.rl_module.default_model_config.DefaultModelConfig` with
RLlib's full field set; pass it (or a plain dict) as `config.rl_module(model_config=...)`,
in `RLModuleSpec(model_config=...)`, or to a module's constructor. Defaults that differ
from RLlib's: `fcnet_hiddens=[64, 64]`, `vf_share_layers=False`, `free_log_std=True`
(scalerl's PPO learns fastest with these on classic control). Settings listed in
`NOT_SUPPORTED_YET` raise a ConfigError when set to anything but their default.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DefaultModelConfig:
    """Settings of the default modules (PPO, PG, DQN, SAC, R2D2).

    Attributes:
        fcnet_hiddens: Widths of the hidden layers of the encoder MLP.
        fcnet_activation: One of "tanh", "relu", "elu", "swish", "silu", "linear".
        fcnet_kernel_initializer: A `torch.nn.init` function by name ("xavier_uniform",
            "orthogonal", ...) for the encoder's weights; None: orthogonal (gain sqrt 2).
        fcnet_kernel_initializer_kwargs: Keyword arguments of that initializer.
        fcnet_bias_initializer: The same for the encoder's biases; None: zeros.
        fcnet_bias_initializer_kwargs: Keyword arguments of that initializer.
        fcnet_use_layernorm: Layer norm in the encoder (not supported yet).
        conv_filters: CNN layers for image observations (Box of rank 3), each
            [out_channels, kernel, stride] (kernel may be [k, k]); None picks
            [[16, 4, 2], [32, 4, 2], [64, 3, 2]].
        conv_activation: Activation after each conv layer.
        conv_kernel_initializer: A `torch.nn.init` function by name for the conv weights.
        conv_kernel_initializer_kwargs: Keyword arguments of that initializer.
        conv_bias_initializer: The same for the conv biases.
        conv_bias_initializer_kwargs: Keyword arguments of that initializer.
        head_fcnet_hiddens: Hidden layers of the policy and value heads (PPO, PG), after
            the encoder; [] (the default): one linear output layer.
        head_fcnet_activation: Activation of those hidden layers.
        head_fcnet_kernel_initializer: A `torch.nn.init` function by name for the heads'
            weights (their output layers included); None: orthogonal.
        head_fcnet_kernel_initializer_kwargs: Keyword arguments of that initializer.
        head_fcnet_bias_initializer: The same for the heads' biases.
        head_fcnet_bias_initializer_kwargs: Keyword arguments of that initializer.
        head_fcnet_use_layernorm: Layer norm in the heads (not supported yet).
        free_log_std: Box actions (PPO, PG): True, a state-independent learned log-std;
            False, the policy head outputs the log-std too (RLlib's default).
        log_std_clip_param: Log-stds are clipped to [-log_std_clip_param,
            log_std_clip_param] (PPO, PG).
        vf_share_layers: Whether the value head shares the policy's encoder.
        log_std_init: Initial log standard deviation of Gaussian (Box) actions.
        use_lstm: Put an LSTM between the encoder MLP and the heads (policy and value share
            it). EnvRunners carry its state per env and reset it at episode starts.
        max_seq_len: Length of the training sequences (recurrent and attention modules).
        lstm_cell_size: The LSTM's hidden and cell size.
        lstm_use_prev_action: Also feed the previous action (one-hot or flat) to the encoder.
        lstm_use_prev_reward: Also feed the previous reward to the encoder.
        lstm_kernel_initializer: LSTM weight initializer (not supported yet).
        lstm_kernel_initializer_kwargs: Its keyword arguments (not supported yet).
        lstm_bias_initializer: LSTM bias initializer (not supported yet).
        lstm_bias_initializer_kwargs: Its keyword arguments (not supported yet).
        use_attention: Put a GTrXL (gated transformer-XL) memory there instead.
        attention_num_transformer_units: Number of GTrXL units (layers).
        attention_dim: Width of the GTrXL's inputs and outputs.
        attention_num_heads: Attention heads per unit.
        attention_head_dim: Width of each head.
        attention_position_wise_mlp_dim: Hidden width of each unit's position-wise MLP.
        attention_memory_inference: Past steps each unit attends to when acting.
        attention_memory_training: Past steps each unit attends to in training.
        attention_init_gru_gate_bias: Initial bias of the GRU gates (higher: closer to
            identity at the start, which stabilizes early training).
        fusionnet_hiddens: RLlib's multi-input fusion MLP (not supported yet: Tuple/Dict
            observations are concatenated before the encoder).
        fusionnet_activation: Its activation (not supported yet).
        fusionnet_kernel_initializer: Its weight initializer (not supported yet).
        fusionnet_kernel_initializer_kwargs: Its keyword arguments (not supported yet).
        fusionnet_bias_initializer: Its bias initializer (not supported yet).
        fusionnet_bias_initializer_kwargs: Its keyword arguments (not supported yet).
    """

    fcnet_hiddens: list[int] = field(default_factory=lambda: [64, 64])
    fcnet_activation: str = "tanh"
    fcnet_kernel_initializer: str | None = None
    fcnet_kernel_initializer_kwargs: dict | None = None
    fcnet_bias_initializer: str | None = None
    fcnet_bias_initializer_kwargs: dict | None = None
    fcnet_use_layernorm: bool = False
    conv_filters: list | None = None
    conv_activation: str = "relu"
    conv_kernel_initializer: str | None = None
    conv_kernel_initializer_kwargs: dict | None = None
    conv_bias_initializer: str | None = None
    conv_bias_initializer_kwargs: dict | None = None
    head_fcnet_hiddens: list[int] = field(default_factory=list)
    head_fcnet_activation: str = "relu"
    head_fcnet_kernel_initializer: str | None = None
    head_fcnet_kernel_initializer_kwargs: dict | None = None
    head_fcnet_bias_initializer: str | None = None
    head_fcnet_bias_initializer_kwargs: dict | None = None
    head_fcnet_use_layernorm: bool = False
    free_log_std: bool = True
    log_std_clip_param: float = 20.0
    vf_share_layers: bool = False
    log_std_init: float = 0.0
    use_lstm: bool = False
    max_seq_len: int = 20
    lstm_cell_size: int = 256
    lstm_use_prev_action: bool = False
    lstm_use_prev_reward: bool = False
    lstm_kernel_initializer: str | None = None
    lstm_kernel_initializer_kwargs: dict | None = None
    lstm_bias_initializer: str | None = None
    lstm_bias_initializer_kwargs: dict | None = None
    use_attention: bool = False
    attention_num_transformer_units: int = 1
    attention_dim: int = 64
    attention_num_heads: int = 1
    attention_head_dim: int = 32
    attention_position_wise_mlp_dim: int = 32
    attention_memory_inference: int = 50
    attention_memory_training: int = 50
    attention_init_gru_gate_bias: float = 2.0
    fusionnet_hiddens: list[int] = field(default_factory=lambda: [256, 256])
    fusionnet_activation: str = "tanh"
    fusionnet_kernel_initializer: str | None = None
    fusionnet_kernel_initializer_kwargs: dict | None = None
    fusionnet_bias_initializer: str | None = None
    fusionnet_bias_initializer_kwargs: dict | None = None


# RLlib's settings that no default module implements yet: a ConfigError unless default.
NOT_SUPPORTED_YET = (
    "fcnet_use_layernorm",
    "head_fcnet_use_layernorm",
    "lstm_kernel_initializer",
    "lstm_kernel_initializer_kwargs",
    "lstm_bias_initializer",
    "lstm_bias_initializer_kwargs",
    "fusionnet_hiddens",
    "fusionnet_activation",
    "fusionnet_kernel_initializer",
    "fusionnet_kernel_initializer_kwargs",
    "fusionnet_bias_initializer",
    "fusionnet_bias_initializer_kwargs",
)
# What only PPO's and PG's default modules implement (DQN, SAC, R2D2 refuse them).
POLICY_HEAD_SETTINGS = (
    "head_fcnet_hiddens",
    "head_fcnet_activation",
    "head_fcnet_kernel_initializer",
    "head_fcnet_kernel_initializer_kwargs",
    "head_fcnet_bias_initializer",
    "head_fcnet_bias_initializer_kwargs",
    "free_log_std",
    "log_std_clip_param",
)
