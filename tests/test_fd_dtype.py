"""Finite differences in the run's dtype: the step follows that dtype's resolution.

A float64-sized step (1.5e-8) is below float32's resolution: ``x + h == x`` or ``f(x + h) ==
f(x)``, every derivative came out exactly zero and each gradient method "converged" at x0.
Every registered method that needs a gradient (selected by its flags) runs here on a
forward-difference objective, torch and numpy, float32 and float64, against the same method
with the exact gradient in the same dtype, run in the same process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy.optimize import rosen as scipy_rosen

import optarena as oa
from optarena.core.fd import fd_relative_step

GRADIENT_METHODS = [i.name for i in oa.methods() if i.needs_grad]
DTYPES = ["float32", "float64"]
KINDS = ["torch", "numpy"]
GRADS = 300  # gradient evaluations per run, the same for the exact and the FD run
# the exact-gradient run ends this close to x_opt: the method converges (quasi-Newton and
# scipy methods end within 3e-5; first-order methods at their default learning rates stay
# 5e-3 (rmsprop) to 1.7 away after 300 steps)
CONVERGED = 1e-3
SHIFT = np.array([1.0, -2.0, 0.5])


def quadratic_t(x: torch.Tensor) -> torch.Tensor:
    return ((x - torch.as_tensor(SHIFT, dtype=x.dtype)) ** 2).sum()


def quadratic_n(x: np.ndarray) -> float:
    return ((x - SHIFT.astype(x.dtype)) ** 2).sum()


def rosen_t(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def rosen_hessian(x: np.ndarray) -> np.ndarray:
    return np.array([[1200 * x[0] ** 2 - 400 * x[1] + 2, -400 * x[0]], [-400 * x[0], 200.0]])


@dataclass(frozen=True)
class Problem:
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    numpy_fn: Callable[[np.ndarray], float]
    x0: np.ndarray
    x_opt: np.ndarray
    hessian: np.ndarray  # at x_opt

    def bias_limit(self, dtype: torch.dtype) -> float:
        """How far from x_opt a forward-difference method can settle: where the quotient is
        zero, ``grad f = -(h_i / 2) H_ii``, so ``x - x_opt = -H^-1 (h / 2) diag(H)`` with
        ``h_i = rel * max(1, |x_i|)`` (0.21 on Rosenbrock in float32: H's condition is 2,500)."""
        h = fd_relative_step(None, dtype) * np.maximum(1.0, np.abs(self.x_opt))
        shift = np.linalg.solve(self.hessian, h / 2 * np.diag(self.hessian))
        return float(np.abs(shift).max())


PROBLEMS = {
    "quadratic": Problem(quadratic_t, quadratic_n, np.zeros(3), SHIFT, 2 * np.eye(3)),
    "rosen": Problem(
        rosen_t, scipy_rosen, np.array([2.0, 0.0]), np.ones(2), rosen_hessian(np.ones(2))
    ),
}


def _start(kind: str, x0: np.ndarray, dtype: str) -> torch.Tensor | np.ndarray:
    return torch.tensor(x0, dtype=getattr(torch, dtype)) if kind == "torch" else x0.astype(dtype)


def _objective(kind: str, p: Problem) -> oa.Objective:
    if kind == "torch":
        return oa.Objective(p.torch_fn, gradient="fd")
    return oa.Objective.from_numpy(p.numpy_fn, gradient="fd")


def _run(obj: oa.Objective, x0: object, name: str) -> np.ndarray:
    res = oa.minimize(obj, x0, name, budget=oa.Budget(evals=100_000, grad_evals=GRADS))
    return res.x.double().numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_fd_gradient_methods_reach_what_the_exact_gradient_reaches(
    name: str, problem: str, kind: str, dtype: str
) -> None:
    """Where the exact gradient reaches the optimum, differences reach it to the bias of the
    forward difference (measured: float32 3.5e-4 on the quadratic, 0.17 on Rosenbrock;
    float64 3.5e-8 and 3.4e-5); where it does not (first-order methods at their default
    learning rates), the differences follow its path (measured: 5e-3 in float32, 2e-7 in
    float64, at most 14 relative steps)."""
    p = PROBLEMS[problem]
    tdt = getattr(torch, dtype)
    rel = fd_relative_step(None, tdt)
    exact = _run(oa.Objective(p.torch_fn), torch.tensor(p.x0, dtype=tdt), name)
    fd = _run(_objective(kind, p), _start(kind, p.x0, dtype), name)
    exact_err = float(np.abs(exact - p.x_opt).max())
    # twice the bias and the exact run's own error, and 1e-6 for stopping tests on a
    # gradient that is not exact (float64 runs end 3.5e-8 from the quadratic's optimum)
    tol = 2 * p.bias_limit(tdt) + 2 * exact_err + 1e-6
    if exact_err <= CONVERGED:  # the method converges: the differences must get there too
        assert np.abs(fd - p.x_opt).max() <= tol, (fd, exact, tol)
    else:
        assert np.abs(fd - exact).max() <= 100 * rel, (fd, exact)


def floors(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x).sum()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_zero_fd_gradient_at_start_is_a_failure_not_convergence(
    name: str, kind: str, dtype: str
) -> None:
    """A step function has a zero difference quotient at x0: as with an autograd gradient
    that is zero everywhere, the run ends METHOD_FAILED after the first gradient, never
    success=True at x0."""
    if kind == "torch":
        obj = oa.Objective(floors, gradient="fd")
    else:
        obj = oa.Objective.from_numpy(lambda x: float(np.floor(x).sum()), gradient="fd")
    x0 = np.array([0.5, 1.5, -0.5])
    res = oa.minimize(obj, _start(kind, x0, dtype), name, budget=200)
    assert res.stop_reason == oa.StopReason.METHOD_FAILED
    assert not res.success
    assert "finite-difference gradient at the start is exactly zero" in res.message
    assert res.nfev == 1 + x0.size


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_default_step_follows_dtype_and_the_quotient_uses_the_step_taken(
    dtype: torch.dtype,
) -> None:
    """The default relative step is sqrt(eps) of the dtype; the probes the function sees are
    x + h e_i rounded to that dtype, and a linear function's quotient divides by the step
    each probe really made."""
    seen: list[torch.Tensor] = []
    a = torch.tensor([3.0, -1.0, 0.25], dtype=torch.float64)

    def linear(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return (a.to(x.dtype) * x).sum()

    x = torch.tensor([3.0, 0.1, -700.0], dtype=dtype)
    rel = fd_relative_step(None, dtype)
    assert rel == math.sqrt(torch.finfo(dtype).eps)
    res = oa.minimize(
        oa.Objective(linear, gradient="fd", vectorize=False),
        x,
        "gd",
        budget=oa.Budget(grad_evals=1),
    )
    assert res.nfev == 4
    x0, probes = seen[0], seen[1:4]
    for i, probe in enumerate(probes):
        h = rel * max(1.0, abs(float(x0[i])))
        intended = x0[i] + torch.tensor(h, dtype=dtype)  # rounded as the probe was
        assert probe[i] == intended and probe[i] != x0[i]


def test_explicit_fd_step_keeps_its_meaning() -> None:
    """An fd_step the user gives is the relative step in every dtype."""
    seen: list[torch.Tensor] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return (x**2).sum()

    x = torch.tensor([2.0, 0.5], dtype=torch.float32)
    oa.minimize(
        oa.Objective(f, gradient="fd", fd_step=1e-2, vectorize=False),
        x,
        "gd",
        budget=oa.Budget(grad_evals=1),
    )
    assert seen[1][0] == x[0] + torch.tensor(1e-2 * 2.0, dtype=torch.float32)
    assert seen[2][1] == x[1] + torch.tensor(1e-2, dtype=torch.float32)


def test_every_variable_fixed_by_the_box_is_not_a_flat_function() -> None:
    """A zero quotient because no variable may move (lower == upper) is convergence."""
    obj = oa.Objective(lambda x: (x**2).sum(), gradient="fd")
    res = oa.minimize(obj, torch.ones(2), "lbfgs", bounds=([1.0, 1.0], [1.0, 1.0]))
    assert res.stop_reason == oa.StopReason.CONVERGED and res.success
