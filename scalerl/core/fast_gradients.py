"""Hand-written gradients as an opt-in fast path, registered per (learner, module) pair.

A learner trains through autograd on its `compute_loss_for_module`. Where writing the chain
rule out pays (a benchmark shows >= 1.3x end to end, `benchmarks/fast_gradients.py`), the
learner's module registers a fast path for one exact (learner class, module class) pair;
`Learner.fast_gradient()` uses it only for exactly those classes and while the loss
methods are the ones registered with it, so a subclass or a patched loss gets autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

# A fast path writes dL/dtheta into every parameter's `.grad` (as `backward()` would), logs
# its metrics with `learner.log_metrics` and returns {optimizer name: loss} (no gradient
# needed: the loss only feeds the non-finite guard), as `compute_losses` does.
FastGradient = Callable[[Any, dict], dict[str, torch.Tensor]]
# (learner class, module class) -> (fast path, its `supports` check, the loss methods it
# replaces: a fast path is off once either is patched).
_FAST_GRADIENTS: dict[tuple[type, type], tuple[FastGradient, Callable | None, tuple]] = {}
_LOSS_METHODS = ("compute_loss_for_module", "compute_losses")


def register_fast_gradient(
    learner_class: type,
    module_class: type,
    fn: FastGradient | None,
    supports: Callable[[Any], bool] | None = None,
) -> None:
    """Use `fn` instead of autograd for learners of exactly `learner_class` training modules
    of exactly `module_class` (subclasses of either train through autograd), where
    `supports(learner)` (if given) is true. `fn=None` removes the registration.

    Register a fast path only where a benchmark shows it pays (`benchmarks/fast_gradients.py`)
    and a test shows it gives autograd's gradient of `compute_loss_for_module`.
    """
    if fn is None:
        _FAST_GRADIENTS.pop((learner_class, module_class), None)
    else:
        losses = tuple(getattr(learner_class, name) for name in _LOSS_METHODS)
        _FAST_GRADIENTS[(learner_class, module_class)] = (fn, supports, losses)


def fast_gradient_for(learner: Any) -> FastGradient | None:
    """The fast path registered for exactly `learner`'s and its module's classes, unless the
    loss methods were replaced since registration (on the class or this instance) or the
    path's `supports(learner)` says no."""
    entry = _FAST_GRADIENTS.get((type(learner), type(learner.module)))
    if entry is None:
        return None
    fn, supports, losses = entry
    if losses != tuple(getattr(type(learner), name) for name in _LOSS_METHODS) or (
        set(_LOSS_METHODS) & vars(learner).keys()
    ):
        return None  # the loss was replaced after registration
    return fn if supports is None or supports(learner) else None


def registered_fast_gradient(learner_class: type, module_class: type) -> FastGradient | None:
    """The fast path registered for exactly this pair, or None."""
    entry = _FAST_GRADIENTS.get((learner_class, module_class))
    return entry[0] if entry else None
