"""Forward-difference probes: how far to step, and where, so that every probe stays in the box.

Pure arithmetic; the Oracle evaluates the probes (each one counted) and writes the counts.
"""

from __future__ import annotations

import math

import torch

__all__ = ["fd_gradients", "fd_probes", "fd_relative_step", "fd_steps"]


def fd_relative_step(fd_step: float | None, dtype: torch.dtype) -> float:
    """The relative forward-difference step for points of ``dtype``: ``sqrt(eps)`` of that
    dtype (as scipy's ``approx_derivative``: 1.5e-8 in float64, 3.5e-4 in float32) when
    ``fd_step`` is ``None`` (the default), else ``fd_step`` as the user gave it.

    A float64-sized step is below float32's resolution: ``x + h == x`` or ``f(x + h) ==
    f(x)``, and every derivative would come out exactly zero."""
    if fd_step is None:
        return math.sqrt(torch.finfo(dtype).eps)
    return float(fd_step)


def fd_steps(
    rel: float, X: torch.Tensor, lower: torch.Tensor | None, upper: torch.Tensor | None
) -> torch.Tensor:
    """Forward-difference steps that keep every probe in the box: forward where it fits, else
    backward, else the wider side's distance (0 for a fixed variable: its derivative is 0)."""
    h = rel * torch.clamp(X.abs(), min=1.0)
    if upper is None and lower is None:
        return h
    up = torch.full_like(X, math.inf) if upper is None else upper.expand_as(X)
    lo = torch.full_like(X, -math.inf) if lower is None else lower.expand_as(X)
    room_up, room_lo = up - X, X - lo
    wide = torch.where(room_up >= room_lo, room_up, -room_lo)
    return torch.where(h <= room_up, h, torch.where(h <= room_lo, -h, wide))


def fd_probes(
    rel: float, X: torch.Tensor, lower: torch.Tensor | None, upper: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The probes ``x + h_i e_i`` of every row of ``X`` (shape ``(n, d, d)``) and the steps
    actually taken, ``(x_i + h_i) - x_i`` in the dtype of ``X`` (shape ``(n, d)``): the
    difference quotient divides by the step the probe really made, not the one intended."""
    d = X.shape[1]
    h = fd_steps(rel, X, lower, upper)
    P = X.unsqueeze(1).repeat(1, d, 1)
    idx = torch.arange(d, device=X.device)
    P[:, idx, idx] += h
    return P, P[:, idx, idx] - X


def fd_gradients(f0: torch.Tensor, probe_f: torch.Tensor, taken: torch.Tensor) -> torch.Tensor:
    """Forward-difference gradients from the values at the rows and at their probes (a zero
    step, a fixed variable, gives a zero derivative)."""
    n, d = taken.shape
    G = (probe_f.reshape(n, d) - f0.unsqueeze(1)) / taken
    return torch.where(taken != 0, G, torch.zeros_like(G))
