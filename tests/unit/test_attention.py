"""GTrXL: segment == step-by-step, episode resets, padding, learning a memory task."""

import time

import pytest
import torch
from torch.nn import functional as F

from scalerl.core.models.attention import ATTENTION_DEFAULTS, GTrXL, gtrxl_from_model_config

IN_DIM = 3


def make(memory: int = 4, units: int = 2, **kwargs) -> GTrXL:
    torch.manual_seed(0)
    return GTrXL(
        IN_DIM,
        attention_dim=16,
        num_transformer_units=units,
        num_heads=2,
        head_dim=8,
        position_wise_mlp_dim=16,
        memory_inference=memory,
        memory_training=memory,
        **kwargs,
    ).double()


def batch_state(model: GTrXL, batch: int) -> dict[str, torch.Tensor]:
    return {k: v.expand(batch, *v.shape).clone() for k, v in model.initial_state().items()}


def random_state(model: GTrXL, batch: int, num_valid: list[int]) -> dict[str, torch.Tensor]:
    """Memory with random rows, the last num_valid[b] of env b valid."""
    state = batch_state(model, batch)
    state["memory"] = torch.randn_like(state["memory"])
    for b, n in enumerate(num_valid):
        state["memory_mask"][b, model.memory_len - n :] = True
    return state


def step_by_step(model: GTrXL, x: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
    outs = []
    for t in range(x.shape[1]):
        out, state = model(x[:, t : t + 1], state)
        outs.append(out)
    return torch.cat(outs, 1), state


@pytest.mark.parametrize("steps", [1, 3, 4, 11])
@pytest.mark.parametrize("train_mode", [False, True])
def test_segment_equals_step_by_step(steps, train_mode):
    """One call over T steps == T calls of one step (any T, also T > memory), same memory."""
    model = make(memory=4).train(train_mode)
    state = random_state(model, 3, [0, 2, 4])
    x = torch.randn(3, steps, IN_DIM, dtype=torch.float64)
    out_seg, state_seg = model(x, state)
    out_step, state_step = step_by_step(model, x, state)
    torch.testing.assert_close(out_seg, out_step)
    for key in state_seg:
        torch.testing.assert_close(state_seg[key], state_step[key])
    assert state_seg["memory_mask"].sum(1).tolist() == [min(4, n + steps) for n in (0, 2, 4)]


def test_window_is_memory_inference_in_eval_and_memory_training_in_train():
    torch.manual_seed(0)
    model = GTrXL(IN_DIM, attention_dim=8, head_dim=4, memory_inference=2, memory_training=5)
    x = torch.randn(1, 8, IN_DIM)
    state = batch_state(model, 1)
    assert state["memory"].shape == (1, 1, 5, 8)
    # In eval mode step 7 sees steps 5..7 only: changing steps 0..4 leaves it alone.
    x2 = x.clone()
    x2[:, :5] += 1.0
    model.eval()
    torch.testing.assert_close(model(x, state)[0][:, 7], model(x2, state)[0][:, 7])
    model.train()
    assert not torch.allclose(model(x, state)[0][:, 7], model(x2, state)[0][:, 7])
    x3 = x.clone()
    x3[:, :2] += 1.0  # steps 0..1 are outside the training window (5 back from step 7)
    torch.testing.assert_close(model(x, state)[0][:, 7], model(x3, state)[0][:, 7])


def test_reset_state_ignores_old_memory():
    """After a reset (memory_mask all False) the memory rows' contents do not matter."""
    model = make(memory=5)
    x = torch.randn(2, 7, IN_DIM, dtype=torch.float64)
    fresh = batch_state(model, 2)
    stale = random_state(model, 2, [0, 0])
    out_fresh, state_fresh = model(x, fresh)
    out_stale, state_stale = model(x, stale)
    torch.testing.assert_close(out_fresh, out_stale)
    torch.testing.assert_close(state_fresh["memory"], state_stale["memory"])
    # Whereas valid memory does change the outputs.
    assert not torch.allclose(out_fresh, model(x, random_state(model, 2, [5, 5]))[0])


def test_reset_between_steps_matches_fresh_episode():
    """Zeroing one env's state mid-stream gives that env the outputs of a fresh episode."""
    model = make(memory=3)
    x = torch.randn(2, 6, IN_DIM, dtype=torch.float64)
    _, state = step_by_step(model, x, batch_state(model, 2))
    for key, value in model.initial_state().items():
        state[key][0] = value  # env 0 starts a new episode
    out, _ = step_by_step(model, x, state)
    out_fresh, _ = step_by_step(model, x, batch_state(model, 2))
    torch.testing.assert_close(out[0], out_fresh[0])
    assert not torch.allclose(out[1], out_fresh[1])


def test_padding_does_not_affect_valid_steps_or_memory():
    model = make(memory=4)
    lengths = [6, 2, 0]
    x = torch.randn(3, 6, IN_DIM, dtype=torch.float64)
    mask = torch.arange(6)[None] < torch.tensor(lengths)[:, None]
    state = random_state(model, 3, [1, 4, 3])
    out, new_state = model(x, state, mask)
    garbage = torch.where(mask[..., None], x, 1e3 * torch.randn_like(x))
    out_g, new_state_g = model(garbage, state, mask)
    assert torch.isfinite(out_g).all()
    for b, n in enumerate(lengths):
        torch.testing.assert_close(out[b, :n], out_g[b, :n])
        # Same as running only the valid steps of that env.
        ref_out, ref_state = model(x[b : b + 1, :n], {k: v[b : b + 1] for k, v in state.items()})
        torch.testing.assert_close(out[b : b + 1, :n], ref_out)
        for key in ref_state:
            torch.testing.assert_close(new_state[key][b : b + 1], ref_state[key])
            torch.testing.assert_close(new_state_g[key][b : b + 1], ref_state[key])
    torch.testing.assert_close(new_state["memory"][2], state["memory"][2])


def test_units_start_near_identity():
    """With b_g = 2 the gates let through ~sigma(-2) of each submodule: output ~ input."""
    model = make(memory=4, units=1, init_gru_gate_bias=2.0)
    x = torch.randn(4, 5, IN_DIM, dtype=torch.float64)
    e = model.input_layer(x)
    out, _ = model(x, batch_state(model, 4))
    assert (out - e).norm() < 0.5 * e.norm()
    open_model = make(memory=4, units=1, init_gru_gate_bias=-2.0)
    out_open, _ = open_model(x, batch_state(open_model, 4))
    assert (out_open - e).norm() > (out - e).norm()


def test_every_parameter_gets_a_gradient():
    model = make(memory=4, units=2)
    x = torch.randn(2, 5, IN_DIM, dtype=torch.float64)
    out, new_state = model(x, random_state(model, 2, [2, 4]))
    out.square().sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert not new_state["memory"].requires_grad  # StopGrad(M)


def test_learns_to_recall_the_token_from_k_steps_ago():
    """Copy task: name the token (one of 4, one-hot) seen 3 steps ago.

    Threshold: cross-entropy < 0.05 and accuracy > 0.99, stepping one step at a time, after
    200 Adam steps on batches of 32 sequences of 12 steps from a fresh state (a memoryless
    model stays at chance: cross-entropy ln 4 = 1.39, accuracy 0.25).
    """
    torch.manual_seed(0)
    k, steps, vocab = 3, 12, 4
    model = GTrXL(
        vocab, attention_dim=32, num_heads=2, head_dim=16, position_wise_mlp_dim=32,
        memory_inference=4, memory_training=4,
    )  # fmt: skip
    head = torch.nn.Linear(32, vocab)
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=3e-3)

    def recall_loss(tokens, logits):
        return F.cross_entropy(logits[:, k:].reshape(-1, vocab), tokens[:, :-k].reshape(-1))

    state = batch_state(model, 32)
    for _ in range(200):
        tokens = torch.randint(vocab, (32, steps))
        loss = recall_loss(tokens, head(model(F.one_hot(tokens, vocab).float(), state)[0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tokens = torch.randint(vocab, (256, steps))
    with torch.no_grad():
        x = F.one_hot(tokens, vocab).float()
        logits = head(step_by_step(model.eval(), x, batch_state(model, 256))[0])
    accuracy = (logits[:, k:].argmax(-1) == tokens[:, :-k]).float().mean().item()
    assert recall_loss(tokens, logits).item() < 0.05 and accuracy > 0.99, accuracy


def test_from_model_config_reads_rllib_keys():
    model = gtrxl_from_model_config(
        5,
        {
            "attention_num_transformer_units": 2,
            "attention_dim": 24,
            "attention_memory_inference": 7,
            "attention_memory_training": 3,
            "fcnet_hiddens": [8],
        },
    )
    assert len(model.units) == 2 and model.attention_dim == 24
    assert model.units[0].num_heads == ATTENTION_DEFAULTS["attention_num_heads"]
    assert model.initial_state()["memory"].shape == (2, 7, 24)
    with pytest.raises(ValueError, match="attention_num_heads"):
        gtrxl_from_model_config(5, {"attention_num_heads": 0})
    with pytest.raises(ValueError, match="state\\['memory'\\]"):
        model(torch.zeros(1, 1, 5), {"memory": torch.zeros(1, 2, 3, 24), "memory_mask": None})


def test_sampling_step_benchmark():
    """Prints the cost of one [16 envs, T=1] step with the default sizes (memory 50)."""
    torch.manual_seed(0)
    model = gtrxl_from_model_config(8, {}).eval()
    state = batch_state(model, 16)
    x = torch.randn(16, 1, 8)
    with torch.no_grad():
        for _ in range(60):  # fill the memory, warm up
            out, state = model(x, state)
        start, n = time.perf_counter(), 200
        for _ in range(n):
            out, state = model(x, state)
        per_step = (time.perf_counter() - start) / n
    assert out.shape == (16, 1, 64) and bool(state["memory_mask"].all())
    print(f"GTrXL [16 envs, T=1, memory 50] forward: {per_step * 1e6:.0f} us")
