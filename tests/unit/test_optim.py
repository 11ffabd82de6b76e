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
    # Moments agree too.
    for i, q in enumerate(ref_model.parameters()):
        state = ref.state[q]
        torch.testing.assert_close(ours.exp_avg[i], state["exp_avg"], atol=1e-7, rtol=1e-5)
        torch.testing.assert_close(ours.exp_avg_sq[i], state["exp_avg_sq"], atol=1e-9, rtol=1e-5)


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


def test_zero_grad_and_step_without_grads_is_noop():
    model = make_model()
    opt = Adam(model.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    opt.step()
    assert opt.t == 0
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_frozen_parameters_are_excluded():
    model = make_model()
    model[0].weight.requires_grad_(False)
    opt = Adam(model.parameters(), lr=1e-2)
    assert len(opt.params) == 3
    assert len(opt.state_tensors()) == 6


def _snapshot(opt: Adam) -> tuple[dict[str, torch.Tensor], dict]:
    return {k: v.clone() for k, v in opt.state_tensors().items()}, dict(opt.hyperparameters())


def test_state_round_trip_resumes_identically():
    x, y = make_data()
    model_a = make_model()
    opt_a = Adam(model_a.parameters(), lr=1e-2, betas=(0.85, 0.995), eps=1e-6)
    for step in range(10):
        step_ours(model_a, opt_a, x, y, step)
    tensors, hyper = _snapshot(opt_a)
    assert set(tensors) == {f"{k}.{i}" for k in ("exp_avg", "exp_avg_sq") for i in range(4)}
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
    other.exp_avg[0].add_(1.0)
    assert torch.equal(tensors["exp_avg.0"], saved["exp_avg.0"])


def test_state_round_trip_through_safetensors(tmp_path):
    from scalerl.utils.checkpoints import load_tensors, save_tensors

    model = make_model()
    opt = Adam(model.parameters(), lr=1e-2)
    x, y = make_data()
    for step in range(3):
        step_ours(model, opt, x, y, step)
    save_tensors(tmp_path / "opt.safetensors", opt.state_tensors())
    loaded = load_tensors(tmp_path / "opt.safetensors", "optimizer state")
    other = Adam(copy.deepcopy(model).parameters(), lr=1e-2)
    other.load_state(loaded, opt.hyperparameters())
    for a, b in zip(opt.exp_avg + opt.exp_avg_sq, other.exp_avg + other.exp_avg_sq):
        assert torch.equal(a, b)


def test_load_state_rejects_wrong_keys_and_shapes():
    model = make_model()
    opt = Adam(model.parameters(), lr=1e-2)
    tensors, hyper = _snapshot(opt)
    missing = dict(tensors)
    del missing["exp_avg_sq.3"]
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state(missing, hyper)
    wrong_shape = dict(tensors)
    wrong_shape["exp_avg.0"] = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="shape"):
        opt.load_state(wrong_shape, hyper)
