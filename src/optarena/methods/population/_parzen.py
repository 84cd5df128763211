"""Parzen estimators of TPE over mixed variables (Optuna's ``_ParzenEstimator`` as reference).

A :class:`Parzen` is a mixture with one kernel per observation (weighted by age, Optuna's
default ramp) plus a prior kernel: a truncated normal per real (its box as truncation), the same
integrated over the integer's cell per integer, and per categorical the observed option with
weight 1 on top of ``prior_weight / kernels`` on every option. Bandwidths (Optuna 5,
multivariate or not): each kernel's larger distance to its sorted neighbours in that variable,
clipped to ``[range / min(100, 1 + kernels), range]`` ("magic clip").
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from ._mixed import Var, log_mass

__all__ = ["Parzen", "age_weights"]


def age_weights(n: int) -> np.ndarray:
    """Optuna's ``default_weights``: the 25 newest observations weigh 1, older ones less."""
    if n < 25:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, n - 25), np.ones(25)])


class Parzen:
    """The mixture of the observations ``X`` (rows, in trial order) over variables ``vs``."""

    def __init__(self, X: np.ndarray, vs: list[Var], prior_weight: float) -> None:
        n = X.shape[0]
        self.vs = vs
        w = np.append(age_weights(n), prior_weight) if n else np.ones(1)
        self.logw = np.log(w / w.sum())
        self.mus: list[np.ndarray] = []
        self.sigmas: list[np.ndarray] = []
        self.cat: list[np.ndarray] = []
        kernels = n + 1
        for v in vs:
            if v.kind == "cat":
                obs = v.option(X)
                W = np.full((kernels, v.n), prior_weight / kernels)
                W[np.arange(n), obs] += 1.0
                W[n] = 1.0
                self.cat.append(np.log(W / W.sum(axis=1, keepdims=True)))
                self.mus.append(np.empty(0))
                self.sigmas.append(np.empty(0))
                continue
            lo, hi = v.lower, v.upper
            span = hi - lo
            mu = X[:, v.start].copy()
            sig = _neighbour_sigmas(mu, lo, hi)
            minsig = span / min(100.0, 1.0 + kernels)
            sig = np.clip(sig, minsig, span)
            self.mus.append(np.append(mu, (lo + hi) / 2))
            self.sigmas.append(np.append(sig, span))
            self.cat.append(np.empty((0, 0)))
        # what every kernel's log density adds whatever the point: its weight, the truncated
        # normals' normalizations (and the reals' 1 / (sigma sqrt(2 pi)))
        self.base = self.logw.copy()
        for j, v in enumerate(vs):
            if v.kind in ("real", "int"):
                mu, s = self.mus[j], self.sigmas[j]
                self.base -= log_mass((v.lower - mu) / s, (v.upper - mu) / s)
                if v.kind == "real":
                    self.base -= np.log(s * math.sqrt(2 * math.pi))

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` draws as ``(m, variables)``: coordinates of reals and ints, option indices."""
        k = rng.choice(len(self.logw), size=m, p=np.exp(self.logw))
        out = np.empty((m, len(self.vs)))
        for j, v in enumerate(self.vs):
            if v.kind == "cat":
                P = np.exp(self.cat[j][k])
                u = rng.random((m, 1))
                out[:, j] = np.minimum((u >= np.cumsum(P, axis=1)).sum(axis=1), v.n - 1)
                continue
            mu, s = self.mus[j][k], self.sigmas[j][k]
            a, b = ndtr((v.lower - mu) / s), ndtr((v.upper - mu) / s)
            u = a + rng.random(m) * (b - a)
            x = np.clip(mu + s * ndtri(np.clip(u, 1e-300, 1 - 1e-16)), v.lower, v.upper)
            out[:, j] = v.values(v.index(x)) if v.kind == "int" else x
        return out

    def log_pdf(self, Y: np.ndarray) -> np.ndarray:
        """Log density (mass for ints and options) of the draws ``Y`` from :meth:`sample`."""
        total = np.tile(self.base, (Y.shape[0], 1))
        for j, v in enumerate(self.vs):
            if v.kind == "cat":
                total += self.cat[j][:, Y[:, j].astype(np.int64)].T
                continue
            mu, s = self.mus[j][None], self.sigmas[j][None]
            if v.kind == "int":  # the mass of each distinct cell once (draws share cells)
                cells, which = np.unique(v.index(Y[:, j]), return_inverse=True)
                a, b = v.cell(cells)
                total += log_mass((a[:, None] - mu) / s, (b[:, None] - mu) / s)[which]
            else:
                z = (Y[:, j][:, None] - mu) / s
                total -= 0.5 * z * z
        top = total.max(axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        return np.log(np.exp(total - top).sum(axis=1)) + top[:, 0]


def _neighbour_sigmas(mu: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Optuna's bandwidths: the larger distance to a sorted neighbour (the box ends beyond),
    the end kernels using their inner neighbour only."""
    order = np.argsort(mu, kind="stable")
    ends = np.concatenate([[lo], mu[order], [hi]])
    sig = np.maximum(ends[1:-1] - ends[:-2], ends[2:] - ends[1:-1])
    if ends.shape[0] >= 4:
        sig[0] = ends[2] - ends[1]
        sig[-1] = ends[-2] - ends[-3]
    out = np.empty_like(sig)
    out[order] = sig
    return out
