"""Forward-difference probes: where to step so that every probe stays in the box.

Pure arithmetic; the Oracle evaluates the probes (each one counted) and writes the counts.
"""

from __future__ import annotations

import math

import torch

__all__ = ["fd_gradients", "fd_probes", "fd_steps"]


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
    actually taken in floating point (shape ``(n, d)``)."""
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
