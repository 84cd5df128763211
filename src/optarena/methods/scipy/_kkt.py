"""First-order (KKT) conditions at a point, from the exact gradient and constraint Jacobians.

Used where a solver's own stopping test cannot be met for reasons of rounding, not of the
answer: SLSQP with a value tolerance near the precision of f ends on "Positive directional
derivative for linesearch" at the solution. The point is then judged by the conditions that
define a solution: feasible, and the gradient of f a combination of the active constraints'
gradients with multipliers of the right sign.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize as so
import torch

from ...core.oracle import Oracle

__all__ = ["kkt_residual"]


def kkt_residual(
    oracle: Oracle,
    x: torch.Tensor,
    grad: np.ndarray,
    lower: np.ndarray | None,
    upper: np.ndarray | None,
) -> float:
    """The stationarity residual ``max |grad f - sum lambda_i grad c_i|`` at a feasible ``x``,
    relative to ``max(1, max |grad f|)``, over multipliers of the active constraints and bounds
    (``lambda >= 0`` for inequalities ``c >= 0`` and bounds, free for equalities).

    A constraint or bound counts as active within ``max(1e-6, 10 tol)`` of its edge (the
    Jacobians cost one counted constraint-Jacobian evaluation).
    """
    g = np.asarray(grad, dtype=np.float64).reshape(-1)
    xn = x.detach().cpu().double().numpy()
    rows: list[np.ndarray] = []
    low: list[float] = []
    if oracle.constraints:
        pairs = oracle.constraint_jacobians(x)
        for c, (vals, jac) in zip(oracle.constraints.items, pairs, strict=True):
            v = vals.detach().cpu().double().numpy().reshape(-1)
            J = jac.detach().cpu().double().numpy().reshape(v.size, -1)
            near = max(1e-6, 10 * c.tol)
            for k in range(v.size):
                if c.kind == "eq":
                    rows.append(J[k])
                    low.append(-np.inf)
                elif v[k] <= near:
                    rows.append(J[k])
                    low.append(0.0)
    eye = np.eye(g.size)
    for bound, sign in ((lower, 1.0), (upper, -1.0)):
        if bound is None:
            continue
        near = 1e-7 * np.maximum(1.0, np.abs(bound))
        for i in np.flatnonzero(np.abs(xn - bound) <= near):
            rows.append(sign * eye[i])  # x_i - lo_i >= 0 and hi_i - x_i >= 0
            low.append(0.0)
    scale = max(1.0, float(np.abs(g).max(initial=0.0)))
    if not rows:
        return float(np.abs(g).max(initial=0.0)) / scale
    A = np.array(rows).T  # (d, m): grad f = A @ lambda at a KKT point
    fit = so.lsq_linear(A, g, bounds=(np.array(low), np.full(len(low), np.inf)))
    return float(np.abs(A @ fit.x - g).max(initial=0.0)) / scale
