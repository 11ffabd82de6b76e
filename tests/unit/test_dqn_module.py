"""The default DQN module: dueling aggregation, distributional Q as the atoms' expectation,
noisy heads, errors, and a save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from scalerl.algorithms.dqn.default_dqn_rl_module import (
    QF_PREDS,
    QF_PROBS,
    DefaultDQNTorchRLModule,
)
from scalerl.core.columns import Columns
from scalerl.core.models.noisy import NoisyLinear
from scalerl.core.rl_module import RLModule
from scalerl.utils.errors import ConfigError

OBS = spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT = spaces.Discrete(3)


def module(**model_config) -> DefaultDQNTorchRLModule:
    torch.manual_seed(0)
    return DefaultDQNTorchRLModule(OBS, ACT, model_config={"fcnet_hiddens": [16], **model_config})


def batch(n: int = 5) -> dict:
    return {Columns.OBS: torch.randn(n, 4)}


def test_dueling_q_is_value_plus_centred_advantage():
    m = module(dueling=True)
    b = batch()
    q = m.compute_q_values(b)[QF_PREDS]
    features = m.encoder(m.pre(b[Columns.OBS]))
    # mean_a Q(s, a) = V(s): the advantages are centred.
    torch.testing.assert_close(q.mean(-1), m.value_head(features).squeeze(-1))
    out = m.forward_inference(b)
    torch.testing.assert_close(out[Columns.ACTION_DIST_INPUTS], q)


def test_distributional_q_is_the_expectation_over_atoms():
    m = module(num_atoms=11, v_min=-5.0, v_max=5.0)
    out = m.compute_q_values(batch())
    probs = out[QF_PROBS]
    assert probs.shape == (5, 3, 11)
    torch.testing.assert_close(probs.sum(-1), torch.ones(5, 3))
    torch.testing.assert_close(out[QF_PREDS], (probs * torch.linspace(-5, 5, 11)).sum(-1))


def test_noisy_heads_explore_in_train_mode_only():
    m = module(noisy=True, dueling=False)
    assert any(isinstance(x, NoisyLinear) for x in m.modules())
    b = batch()
    q1 = m.compute_q_values(b)[QF_PREDS]
    m.reset_noise()
    assert not torch.allclose(m.compute_q_values(b)[QF_PREDS], q1)
    m.eval()
    torch.testing.assert_close(m.compute_q_values(b)[QF_PREDS], m.compute_q_values(b)[QF_PREDS])


def test_errors_name_the_setting():
    with pytest.raises(ConfigError, match="Discrete action space"):
        DefaultDQNTorchRLModule(OBS, spaces.Box(-1, 1, (2,)), model_config={})
    with pytest.raises(ConfigError, match="v_min"):
        module(num_atoms=5, v_min=1.0, v_max=1.0)


def test_save_and_load(tmp_path):
    m = module(num_atoms=5, noisy=True).eval()
    m.save_to_path(tmp_path / "q")
    loaded = RLModule.from_checkpoint(tmp_path / "q").eval()
    b = batch()
    torch.testing.assert_close(
        loaded.compute_q_values(b)[QF_PREDS], m.compute_q_values(b)[QF_PREDS]
    )
