"""scalerl's Adam against torch.optim.Adam, and its state round trip."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from scalerl.core.optim import Adam


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def make_data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 5, generator=g), torch.randn(32, 3, generator=g)


def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
    # A loss that changes with the step, so gradients vary over time.
    return ((model(x) - y * (1 + 0.1 * step)) ** 2).mean()


def step_ours(model, opt: Adam, x, y, step: int) -> None:
    opt.zero_grad()
    loss_fn(model, x, y, step).backward()
    opt.step()


def step_torch(model, opt: torch.optim.Optimizer, x, y, step: int) -> None:
    opt.zero_grad()
    loss_fn(model, x, y, step).backward()
    opt.step()


@pytest.mark.parametrize(
    "lr, betas, eps",
    [(1e-3, (0.9, 0.999), 1e-8), (3e-2, (0.8, 0.99), 1e-5), (1e-2, (0.0, 0.9), 1e-3)],
)
def test_matches_torch_adam(lr, betas, eps):
    ours_model = make_model()
    ref_model = copy.deepcopy(ours_model)
    ours = Adam(ours_model.parameters(), lr=lr, betas=betas, eps=eps)
    ref = torch.optim.Adam(ref_model.parameters(), lr=lr, betas=betas, eps=eps, foreach=False)
    x, y = make_data()
    for step in range(20):
        step_ours(ours_model, ours, x, y, step)
        step_torch(ref_model, ref, x, y, step)
    assert ours.t == 20
    for (name, p), q in zip(ours_model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=f"parameter {name}")
    # Moments agree too (ours are flat, in parameter order).
    for name, atol in (("exp_avg", 1e-7), ("exp_avg_sq", 1e-9)):
        ref_flat = torch.cat([ref.state[q][name].reshape(-1) for q in ref_model.parameters()])
        torch.testing.assert_close(getattr(ours, name), ref_flat, atol=atol, rtol=1e-5)


def test_parameters_actually_move():
    model = make_model()
    before = [p.detach().clone() for p in model.parameters()]
    opt = Adam(model.parameters(), lr=1e-2)
    x, y = make_data()
    step_ours(model, opt, x, y, 0)
    # First Adam step moves every parameter with a nonzero gradient by ~lr.
    for b, p in zip(before, model.parameters()):
        delta = (p.detach() - b).abs()
        assert delta.max() == pytest.approx(1e-2, rel=1e-3)


def test_step_with_zero_gradients_leaves_parameters_unchanged():
    model = make_model()
    opt = Adam(model.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    opt.step()
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_parameters_and_grads_are_views_of_the_flat_buffers():
    model = make_model()
    opt = Adam(model.parameters(), lr=1e-2)
    assert opt.flat_param.numel() == sum(p.numel() for p in model.parameters())
    # load_state_dict copies in place: the optimizer keeps training the module's weights.
    model.load_state_dict({k: torch.zeros_like(v) for k, v in model.state_dict().items()})
    assert torch.count_nonzero(opt.flat_param) == 0
    x, y = make_data()
    step_ours(model, opt, x, y, 0)
    assert torch.count_nonzero(opt.flat_grad) > 0
    assert torch.count_nonzero(opt.flat_param) > 0
    assert torch.count_nonzero(model[2].bias) > 0  # the step reached the module's own tensors


def test_frozen_parameters_are_excluded():
    model = make_model()
    model[0].weight.requires_grad_(False)
    opt = Adam(model.parameters(), lr=1e-2)
    assert len(opt.params) == 3
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert {k: v.numel() for k, v in opt.state_tensors().items()} == {
        "exp_avg": trainable,
        "exp_avg_sq": trainable,
    }


def _snapshot(opt: Adam) -> tuple[dict[str, torch.Tensor], dict]:
    return {k: v.clone() for k, v in opt.state_tensors().items()}, dict(opt.hyperparameters())


def test_state_round_trip_resumes_identically():
    x, y = make_data()
    model_a = make_model()
    opt_a = Adam(model_a.parameters(), lr=1e-2, betas=(0.85, 0.995), eps=1e-6)
    for step in range(10):
        step_ours(model_a, opt_a, x, y, step)
    tensors, hyper = _snapshot(opt_a)
    assert set(tensors) == {"exp_avg", "exp_avg_sq"}
    assert hyper == {"lr": 1e-2, "betas": [0.85, 0.995], "eps": 1e-6, "t": 10}

    # A fresh optimizer (default hyperparameters) on a copy of the model, loaded from the state.
    model_b = copy.deepcopy(model_a)
    opt_b = Adam(model_b.parameters(), lr=1.0)
    opt_b.load_state(tensors, hyper)
    assert opt_b.hyperparameters() == hyper
    assert opt_b.betas == (0.85, 0.995)
    for k, v in opt_b.state_tensors().items():
        assert torch.equal(v, tensors[k]), k

    for step in range(10, 20):
        step_ours(model_a, opt_a, x, y, step)
        step_ours(model_b, opt_b, x, y, step)
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(p, q)
    assert opt_a.t == opt_b.t == 20


def test_loaded_state_does_not_alias_the_source_tensors():
    model = make_model()
    opt = Adam(model.parameters(), lr=1e-2)
    x, y = make_data()
    step_ours(model, opt, x, y, 0)
    tensors, hyper = _snapshot(opt)
    saved = {k: v.clone() for k, v in tensors.items()}
    other = Adam(copy.deepcopy(model).parameters(), lr=1e-2)
    other.load_state(tensors, hyper)
    other.exp_avg.add_(1.0)
    assert torch.equal(tensors["exp_avg"], saved["exp_avg"])


def test_state_round_trip_through_safetensors(tmp_path):
    from scalerl.utils.checkpoints import open_checkpoint, save_tensors, write_manifest

    model = make_model()
    opt = Adam(model.parameters(), lr=1e-2)
    x, y = make_data()
    for step in range(3):
        step_ours(model, opt, x, y, step)
    save_tensors(tmp_path / "opt.safetensors", opt.state_tensors())
    write_manifest(tmp_path, "Optimizer")
    view = open_checkpoint(tmp_path, "Optimizer")
    loaded = view.load_tensors("opt.safetensors", "optimizer state")
    other = Adam(copy.deepcopy(model).parameters(), lr=1e-2)
    other.load_state(loaded, opt.hyperparameters())
    for name in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(getattr(opt, name), getattr(other, name))


def test_load_state_rejects_wrong_keys_and_shapes():
    model = make_model()
    opt = Adam(model.parameters(), lr=1e-2)
    tensors, hyper = _snapshot(opt)
    missing = dict(tensors)
    del missing["exp_avg_sq"]
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state(missing, hyper)
    wrong_shape = dict(tensors)
    wrong_shape["exp_avg"] = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state(wrong_shape, hyper)
