"""What the gradient methods built on torch.optim share: warm-up, option checks, and saving an
optimizer's state as plain tensors (for checkpoints) and loading it back."""

from __future__ import annotations

import copy
import importlib
import signal
import sys
import threading
from typing import Any

import torch

__all__ = [
    "import_without_interrupts",
    "leaf",
    "load_optimizer",
    "save_optimizer",
    "two_betas",
    "warm_up_torch_optim",
]


def warm_up_torch_optim() -> None:
    """Import what torch.optim's first ``step()`` imports lazily (about a second of
    ``torch._dynamo``), before the run's clock starts, so it never counts as run time."""
    if "torch._dynamo" not in sys.modules:
        import_without_interrupts("torch._dynamo")


def import_without_interrupts(name: str) -> None:
    """Import module ``name`` with Ctrl-C held back until the import has finished.

    A KeyboardInterrupt in the middle of an import leaves half-initialised modules in
    ``sys.modules`` (torch._dynamo then fails for the rest of the process with "module 'sympy'
    has no attribute 'core'"). In the main thread SIGINT is recorded while the import runs and
    handed to the previous handler afterwards; other threads never receive signals.
    """
    if threading.current_thread() is not threading.main_thread():
        importlib.import_module(name)
        return
    caught: list[tuple[int, Any]] = []
    try:
        before = signal.signal(signal.SIGINT, lambda signum, frame: caught.append((signum, frame)))
    except ValueError:  # no signals here (an embedded interpreter): import as is
        importlib.import_module(name)
        return
    try:
        importlib.import_module(name)
    finally:
        signal.signal(signal.SIGINT, before)
    if caught and callable(before):
        before(*caught[0])  # the default handler raises KeyboardInterrupt now
    elif caught and before == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)


def two_betas(value: Any) -> str | None:
    """Adam's ``betas`` (``param(check=two_betas)``): two numbers in [0, 1)."""
    ok = (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(b, int | float) and not isinstance(b, bool) for b in value)
        and all(0.0 <= b < 1.0 for b in value)  # NaN fails this too
    )
    return None if ok else "must be two numbers in [0, 1)"


def leaf(x: torch.Tensor) -> torch.Tensor:
    """A fresh leaf copy of ``x`` that autograd tracks (the parameter a torch optimizer moves)."""
    return x.detach().clone().requires_grad_(True)


def save_optimizer(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's ``state_dict()`` as a deep copy (tensors, numbers and lists only), so
    later steps, which update those tensors and lists in place, leave it as it was."""
    return copy.deepcopy(optimizer.state_dict())


def load_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Set a freshly built optimizer to a saved state (the saved copy stays untouched)."""
    optimizer.load_state_dict(copy.deepcopy(saved))
