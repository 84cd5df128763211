"""CatCMA's focus phase: the settled discrete mode probed, then CMA-ES on the reals alone.

Once the discrete mode (each integer's cell of the mean, each choice's likeliest option) has
stood still for a few generations, the mixed search still spends a share ``1 - (1 - alpha)^k``
of its draws on discrete mutations (the margin and the floor ``q_min``), and learns a
covariance over all the Gaussian's coordinates at the learning rates of that many. Its ranking
also compares discrete values only through draws that differ in the reals too, so a level
worth less than the reals' spread is chosen by chance. The focus phase first probes the mode:
the point holding it with the reals at the mean, against each single discrete move (another
option of one choice, one integer one cell up or down) at the same reals; the best strict
improvement is taken and probed again, until none improves. It then holds that mode and runs
CMA-ES over the reals alone, started from the mixed search's marginal Gaussian of the reals,
with the reals' population and learning rates. When that search meets a stopping criterion,
its mean and covariance go back into the mixed search, which resumes with the margin and the
categorical law (moved by the probe) and can change the discrete values again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._mixed import Var

__all__ = ["enter", "held_point", "leave", "neighbours", "settled", "take"]


def _mode(st: Any, gauss: list[Var], cats: list[Var]) -> np.ndarray:
    """The discrete mode: each integer's cell of the mean, each choice's likeliest option."""
    m = st.mean.numpy()
    ints = [int(v.index(m[j])) for j, v in enumerate(gauss) if v.kind == "int"]
    q = st.q.numpy()
    return np.array(ints + [int(np.argmax(q[i, : v.n])) for i, v in enumerate(cats)])


def settled(st: Any, gauss: list[Var], cats: list[Var]) -> int:
    """The generations (``st.calm``, updated) the discrete mode has stayed the same; 0 when
    there is no discrete part."""
    if not (cats or any(v.kind == "int" for v in gauss)):
        return 0
    mode = _mode(st, gauss, cats)
    same = st.mode is not None and np.array_equal(st.mode.numpy(), mode)
    st.calm = st.calm + 1 if same else 0
    st.mode = torch.as_tensor(mode)
    return st.calm


def held_point(st: Any, gauss: list[Var], cats: list[Var], lower: np.ndarray) -> np.ndarray:
    """The encoded point of the mode with the reals at the mean (inside the box)."""
    x = lower.copy()
    m = st.mean.numpy()
    for j, v in enumerate(gauss):
        x[v.start] = (
            np.clip(m[j], v.lower, v.upper) if v.kind == "real" else v.values(v.index(m[j]))
        )
    q = st.q.numpy()
    for i, v in enumerate(cats):
        x[v.start : v.start + v.size] = 0.0
        x[v.start + int(np.argmax(q[i, : v.n]))] = 1.0
    return x


def neighbours(x: np.ndarray, gauss: list[Var], cats: list[Var]) -> np.ndarray:
    """Every single discrete move from ``x``: each other option of a choice, each integer one
    cell up and one down (inside its range)."""
    rows = []
    for v in gauss:
        if v.kind == "int":
            k = int(v.index(x[v.start]))
            for j in (k - 1, k + 1):
                if 0 <= j < v.n:
                    y = x.copy()
                    y[v.start] = v.values(j)
                    rows.append(y)
    for v in cats:
        k = int(np.argmax(x[v.start : v.start + v.size]))
        for j in range(v.n):
            if j != k:
                y = x.copy()
                y[v.start : v.start + v.size] = 0.0
                y[v.start + j] = 1.0
                rows.append(y)
    return np.array(rows).reshape(len(rows), x.shape[0])


def take(st: Any, gauss: list[Var], cats: list[Var], x: np.ndarray) -> None:
    """Move the mixed search's mode to the discrete values of ``x``: an integer's mean to its
    new value, a choice's probabilities of its old and new option swapped."""
    m, q = st.mean.numpy().copy(), st.q.numpy().copy()
    for j, v in enumerate(gauss):
        if v.kind == "int" and v.index(m[j]) != v.index(x[v.start]):
            m[j] = x[v.start]
    for i, v in enumerate(cats):
        old, new = int(np.argmax(q[i, : v.n])), int(np.argmax(x[v.start : v.start + v.size]))
        q[i, [old, new]] = q[i, [new, old]]
    st.mean, st.q = torch.from_numpy(m), torch.from_numpy(q)
    st.mode = None


def enter(st: Any, gauss: list[Var], sub: Any) -> None:
    """Start the focus phase: ``sub`` (a fresh state over the reals alone) takes the mixed
    search's marginal Gaussian of the reals."""
    reals = np.array([j for j, v in enumerate(gauss) if v.kind == "real"], dtype=np.int64)
    A = st.A.numpy()
    cov = (A[:, None] * st.C.numpy() * A[None, :])[np.ix_(reals, reals)]
    sub.mean = torch.from_numpy(st.mean.numpy()[reals].copy())
    sub.sigma = st.sigma
    sub.C = torch.from_numpy(cov)
    st.sub = sub


def leave(st: Any, gauss: list[Var]) -> None:
    """End the focus phase: the reals' mean and covariance go back into the mixed search."""
    sub = st.sub
    reals = np.array([j for j, v in enumerate(gauss) if v.kind == "real"], dtype=np.int64)
    m, C = st.mean.numpy().copy(), st.C.numpy().copy()
    m[reals] = sub.mean.numpy()
    C[reals, :] = 0.0
    C[:, reals] = 0.0
    C[np.ix_(reals, reals)] = (sub.sigma / st.sigma) ** 2 * sub.C.numpy()
    st.mean, st.C = torch.from_numpy(m), torch.from_numpy(C)
    st.ps = torch.zeros_like(st.ps)
    st.pc = torch.zeros_like(st.pc)
    st.sub = st.held = None
    st.calm = 0
