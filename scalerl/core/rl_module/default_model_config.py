"""DefaultModelConfig: the settings of the default modules, as a typed dataclass.

Mirrors RLlib's `ray.rllib.core.rl_module.default_model_config.DefaultModelConfig` for the
settings scalerl supports; pass it (or a plain dict) as `config.rl_module(model_config=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DefaultModelConfig:
    """Settings of the default MLP modules.

    Attributes:
        fcnet_hiddens: Widths of the hidden layers of the policy (and value) MLP.
        fcnet_activation: One of "tanh", "relu", "elu", "swish", "silu", "linear".
        vf_share_layers: Whether the value head shares the policy's hidden layers.
        log_std_init: Initial log standard deviation of Gaussian (Box) actions.
        conv_filters: CNN layers for image observations (Box of rank 3), each
            [out_channels, kernel, stride] (kernel may be [k, k]); None picks
            [[16, 4, 2], [32, 4, 2], [64, 3, 2]].
        conv_activation: Activation after each conv layer.
        use_lstm: Put an LSTM between the encoder MLP and the heads (policy and value share
            it). EnvRunners carry its state per env and reset it at episode starts.
        lstm_cell_size: The LSTM's hidden and cell size.
        max_seq_len: Length of the training sequences (recurrent and attention modules).
        lstm_use_prev_action: Also feed the previous action (one-hot or flat) to the encoder.
        lstm_use_prev_reward: Also feed the previous reward to the encoder.
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
    """

    fcnet_hiddens: list[int] = field(default_factory=lambda: [64, 64])
    fcnet_activation: str = "tanh"
    vf_share_layers: bool = False
    log_std_init: float = 0.0
    conv_filters: list | None = None
    conv_activation: str = "relu"
    use_lstm: bool = False
    lstm_cell_size: int = 256
    max_seq_len: int = 20
    lstm_use_prev_action: bool = False
    lstm_use_prev_reward: bool = False
    use_attention: bool = False
    attention_num_transformer_units: int = 1
    attention_dim: int = 64
    attention_num_heads: int = 1
    attention_head_dim: int = 32
    attention_position_wise_mlp_dim: int = 32
    attention_memory_inference: int = 50
    attention_memory_training: int = 50
    attention_init_gru_gate_bias: float = 2.0
