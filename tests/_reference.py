"""Reference computations the tests compare the library with (written the textbook way)."""

from __future__ import annotations

import torch


def two_loop(S: torch.Tensor, Y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Nocedal & Wright, Algorithm 7.4, with H0 = (s'y / y'y) I of the newest pair."""
    q, alphas = g.clone(), []
    for s, y in zip(reversed(S), reversed(Y), strict=True):
        a = float(s @ q) / float(s @ y)
        alphas.append(a)
        q = q - a * y
    if len(S):
        q = q * float(S[-1] @ Y[-1]) / float(Y[-1] @ Y[-1])
    for (s, y), a in zip(zip(S, Y, strict=True), reversed(alphas), strict=True):
        q = q + (a - float(y @ q) / float(s @ y)) * s
    return q
