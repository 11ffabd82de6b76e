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
    """

    fcnet_hiddens: list[int] = field(default_factory=lambda: [64, 64])
    fcnet_activation: str = "tanh"
    vf_share_layers: bool = False
    log_std_init: float = 0.0
    conv_filters: list | None = None
    conv_activation: str = "relu"
