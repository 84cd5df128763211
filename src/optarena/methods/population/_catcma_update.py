"""One generation's update of CatCMA with margin (see ``catcma.py``), as ``cmaes.CatCMAwM``.

The steps, in the order of the reference: rank with the bound penalty of the reals; move the
non-mutated integers of the mu best towards their integer's value (integer centering, which
removes the rounding bias of the mean); CMA-ES update of the Gaussian; the margin correction
of the integers' marginals (mean and ``A``); the natural-gradient update of the categorical
probabilities with the SNR-adapted step and the ``q_min`` floor. Returns True when the run
meets a stopping criterion.

The Gaussian draws of a generation are orthogonal (:func:`orthogonal_normal`; orthogonal
sampling, H. Wang, M. Emmerich, T. Bäck, "Mirrored Orthogonal Sampling with Pairwise Selection
in Evolution Strategies", SAC 2014): up to ``n`` at a time along mutually orthogonal random
directions, each with an independent ``chi(n)`` length. Every draw is still exactly
``N(0, I)`` and the cross terms of any weighted sum vanish, so the expected squared length of
the evolution paths under random selection, and with it the step-size control and the
covariance update, are those of independent draws; a generation spreads over every direction
instead of leaving some unexplored by chance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.special import ndtr, ndtri

from ._mixed import Var

__all__ = ["orthogonal_normal", "update"]

EPS = 1e-8
SIGMA_MAX = 1e32


def orthogonal_normal(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """``(rows, n)`` draws of ``N(0, I)`` in blocks of up to ``n`` mutually orthogonal ones:
    uniformly random orthonormal directions (QR of a Gaussian matrix, signs made unique)
    times independent ``chi(n)`` lengths."""
    out = np.empty((rows, n))
    for start in range(0, rows, max(n, 1)):
        k = min(n, rows - start)
        Q, R = np.linalg.qr(rng.standard_normal((n, k)))
        sign = np.where(np.diag(R) < 0, -1.0, 1.0)
        out[start : start + k] = (Q * sign).T * np.sqrt(rng.chisquare(n, k))[:, None]
    return out


def _chi(p: np.ndarray) -> np.ndarray:
    """``sqrt(chi2.ppf(1 - 2p, df=1))``, the normal quantile of ``1 - p``."""
    return ndtri(1.0 - np.asarray(p, dtype=np.float64))


def _weights(lam: int, nmi: int) -> tuple[np.ndarray, int, float, float, float]:
    mu = lam // 2
    w = np.array([math.log((lam + 1) / 2) - math.log(i + 1) for i in range(lam)])
    mueff = w[:mu].sum() ** 2 / (w[:mu] ** 2).sum()
    mueff_m = w[mu:].sum() ** 2 / (w[mu:] ** 2).sum() if lam - mu > 0 else 0.0
    c1 = 2 / ((nmi + 1.3) ** 2 + mueff)
    cmu = min(1 - c1 - EPS, 2 * (mueff - 2 + 1 / mueff) / ((nmi + 2) ** 2 + mueff))
    min_alpha = (
        0.0
        if nmi == 0
        else min(1 + c1 / cmu, 1 + 2 * mueff_m / (mueff + 2), (1 - c1 - cmu) / (nmi * cmu))
    )
    pos, neg = w[w > 0].sum(), np.abs(w[w < 0]).sum()
    w = np.where(w >= 0, w / pos, min_alpha / max(neg, EPS) * w)
    return w, mu, mueff, c1, cmu


def update(st: Any, f: np.ndarray, gauss: list[Var], cats: list[Var], tolfun: float) -> bool:
    """Update ``st`` (a CatCMAState) in place from the values ``f`` of its last draws."""
    lam, nmi = st.popsize, len(gauss)
    w, mu, mueff, c1, cmu = _weights(lam, nmi)
    ints = np.array([j for j, v in enumerate(gauss) if v.kind == "int"], dtype=np.int64)
    nin, nca = len(ints), len(cats)
    alpha = 1 - 0.73 ** (1 / max(nin + nca, 1))
    order = np.argsort(f, kind="stable")
    fs = f[order]
    if nmi:
        V = st.V.numpy()
        pen = _penalty(st, V, fs, gauss, mueff)
        order = np.argsort(f + pen, kind="stable")
        V = V[order].copy()
        st.fun_hist = ([*st.fun_hist, float(fs[0]), float(fs[-1])])[-2 * _fun_term(nmi, lam) :]
        if nin:
            succ = _center(st, V, ints, gauss, mu)
        _gauss(st, V, w, mu, mueff, c1, cmu)
        if nin:
            _margin(st, ints, gauss, alpha, succ)
    if nca:
        _categorical(st, st.K.numpy()[order], w, mu, cats, alpha)
    return _stop(st, nmi, cats, tolfun, alpha)


def _fun_term(nmi: int, lam: int) -> int:
    return 10 + math.ceil(30 * nmi / lam)


def _penalty(st: Any, V: np.ndarray, fs: np.ndarray, gauss: list[Var], mueff: float) -> np.ndarray:
    """The bound penalty of the reals (Hansen et al. 2009, as CatCMAwM), per draw in order."""
    lam, nmi = V.shape
    with np.errstate(invalid="ignore"):  # inf - inf: no spread to learn from
        iq = fs[3 * lam // 4] - fs[lam // 4]
    if np.isfinite(iq) and iq > 0:
        st.iq_hist.insert(0, float(iq))
    elif iq == np.inf and len(st.iq_hist) > 1:
        st.iq_hist.insert(0, max(st.iq_hist))
    del st.iq_hist[20 + math.ceil(3 * nmi / lam) :]
    if not st.iq_hist:
        return np.zeros(lam)
    real = np.array([v.kind == "real" for v in gauss])
    lo = np.where(real, [v.lower for v in gauss], -np.inf)
    hi = np.where(real, [v.upper for v in gauss], np.inf)
    m, C, A, sigma = st.mean.numpy(), st.C.numpy(), st.A.numpy(), st.sigma
    dca = np.diag(C) * A
    gamma = np.full(nmi, 2 * float(np.median(st.iq_hist)) / (sigma**2 * dca.sum()))
    far = 3 * sigma * np.sqrt(dca) * max(1, math.sqrt(nmi) / mueff)
    inc = ((m < lo) & (np.abs(m - lo) > far)) | ((hi < m) & (np.abs(hi - m) > far))
    gamma[inc] *= 1.1 ** max(1, mueff / (10 * nmi))
    xi = np.exp(0.9 * (np.log(dca) - np.log(dca).mean()))
    feas = np.clip(V, lo, hi)
    return np.sum(gamma * (feas - V) ** 2 / xi, axis=1)


def _disc(v: Var, x: np.ndarray) -> np.ndarray:
    return v.values(v.index(x))


def _center(st: Any, V: np.ndarray, ints: np.ndarray, gauss: list[Var], mu: int) -> np.ndarray:
    """Integer centering of the mu best (in place on ``V``); which integers mutated."""
    m = st.mean.numpy()
    int_m = np.array([_disc(gauss[j], m[j]) for j in ints])
    old = V.copy()
    disc = np.stack([_disc(gauss[j], V[:mu, j]) for j in ints], axis=1)  # (mu, nin)
    mutated = disc != int_m
    succ = mutated.any(axis=0)
    diff = disc - V[:mu][:, ints]
    mpos = np.sum(~mutated * (diff > 0) * diff, axis=0)
    mneg = np.sum(~mutated * (diff < 0) * diff, axis=0)
    sub = V[:mu][:, ints]
    sub[mutated] = disc[mutated]
    V[:mu, ints] = sub
    bias = np.sum(V[:mu, ints] - old[:mu, ints], axis=0)
    alphas = np.zeros(len(ints))
    for moves in (mpos, mneg):
        idx = bias * moves < 0
        alphas[idx] = np.minimum(1, -bias[idx] / moves[idx])
    delta = disc - old[:mu][:, ints]
    indic = (bias * delta < 0) & ~mutated
    V[:mu, ints] += indic * alphas * delta
    return succ


def _gauss(
    st: Any, V: np.ndarray, w: np.ndarray, mu: int, mueff: float, c1: float, cmu: float
) -> None:
    """CMA-ES with active update on the draws undone of the margin scaling ``A``."""
    _lam, n = V.shape
    m, A, C = st.mean.numpy().copy(), st.A.numpy(), st.C.numpy()
    cs = (mueff + 2) / (n + mueff + 5)
    ds = 1 + 2 * max(0, math.sqrt((mueff - 1) / (n + 1)) - 1) + cs
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
    chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
    D2, B = np.linalg.eigh((C + C.T) / 2)
    D = np.sqrt(np.where(D2 < 0, EPS, D2))
    y = ((V - m) / A) / st.sigma  # ~ N(0, C)
    yw = (w[:mu, None] * y[:mu]).sum(axis=0)
    m = m + st.sigma * yw
    Cinv = (B / D) @ B.T
    ps = (1 - cs) * st.ps.numpy() + math.sqrt(cs * (2 - cs) * mueff) * Cinv @ yw
    nps = float(np.linalg.norm(ps))
    sigma = min(st.sigma * math.exp((cs / ds) * (nps / chi_n - 1)), SIGMA_MAX)
    hs = (
        1.0
        if nps / math.sqrt(1 - (1 - cs) ** (2 * (st.g + 2))) < (1.4 + 2 / (n + 1)) * chi_n
        else 0.0
    )
    pc = (1 - cc) * st.pc.numpy() + hs * math.sqrt(cc * (2 - cc) * mueff) * yw
    wio = w * np.where(w >= 0, 1, n / (np.linalg.norm(y @ Cinv, axis=1) ** 2 + EPS))
    dh = (1 - hs) * cc * (2 - cc)
    C = (1 + c1 * dh - c1 - cmu * w.sum()) * C + c1 * np.outer(pc, pc) + cmu * (wio * y.T) @ y
    D2, B = np.linalg.eigh((C + C.T) / 2)
    D2 = np.where(D2 < 0, EPS, D2)  # active updates can leave C indefinite: repair it
    C = (B * D2) @ B.T
    sigma = max(sigma, math.sqrt(1e-30 / float(np.sqrt(D2).min())))
    st.mean, st.sigma, st.C = torch.from_numpy(m), sigma, torch.from_numpy(C)
    st.ps, st.pc = torch.from_numpy(ps), torch.from_numpy(pc)


def _margin(st: Any, ints: np.ndarray, gauss: list[Var], alpha: float, succ: np.ndarray) -> None:
    """The margin (CMAwM): each integer's marginal keeps a mutation probability >= alpha."""
    m, A, C, sigma = st.mean.numpy().copy(), st.A.numpy().copy(), st.C.numpy(), st.sigma
    pmut = st.pmut.numpy().copy()
    mi = m[ints]
    vs = [gauss[j] for j in ints]
    cell = np.array([v.index(x) for v, x in zip(vs, mi, strict=True)])
    last = np.array([v.n - 2 for v in vs])
    z_lo = np.array([v.thresholds(c) for v, c in zip(vs, np.clip(cell - 1, 0, last), strict=True)])
    z_up = np.array([v.thresholds(c) for v, c in zip(vs, np.minimum(cell, last), strict=True)])
    cdiag = np.diag(C)[ints]
    scale = sigma * A[ints] * np.sqrt(cdiag)
    low = ndtr((z_lo - mi) / scale)
    up = 1.0 - ndtr((z_up - mi) / scale)
    mid = 1.0 - (low + up)
    edge = np.maximum(low, up) > 0.5
    side = ~edge
    nsuc = ~succ
    if edge.any():
        sign = np.sign(mi - z_up)
        p = np.maximum(np.minimum(low, up), alpha)
        p[nsuc] = np.minimum(p[nsuc], pmut[nsuc])
        p = np.clip(p, EPS, 0.5 - EPS)
        m_int = np.array([_disc(v, x) for v, x in zip(vs, mi, strict=True)])
        a_low = np.abs(m_int - z_up) / (sigma * _chi(alpha) * np.sqrt(cdiag))
        Ai = A[ints]
        Ai[edge] = np.maximum(Ai[edge], a_low[edge])
        A[ints] = Ai
        dist = sigma * A[ints] * _chi(p) * np.sqrt(cdiag)
        mi = mi + edge * (z_up + sign * dist - mi)
        pmut[edge] = p[edge]
    if side.any():
        low = np.maximum(low, alpha / 2)
        up = np.maximum(up, alpha / 2)
        mid[nsuc] = np.maximum(mid[nsuc], 1 - pmut[nsuc])
        dcdf = 1 - low - up - mid
        dcdf[succ] /= low[succ] + up[succ] + mid[succ] - 3 * alpha / 2
        dcdf[nsuc] /= low[nsuc] + up[nsuc] + mid[nsuc] - alpha - (1 - pmut[nsuc])
        low = np.clip(low + dcdf * (low - alpha / 2), EPS, 0.5 - EPS)
        up = np.clip(up + dcdf * (up - alpha / 2), EPS, 0.5 - EPS)
        cl, cu = _chi(low), _chi(up)
        Ai = A[ints]
        Ai = Ai + side * ((z_up - z_lo) / ((cl + cu) * sigma * np.sqrt(cdiag)) - Ai)
        A[ints] = Ai
        mi = mi + side * ((z_lo * cu + z_up * cl) / (cl + cu) - mi)
        pmut[side] = (low + up)[side]
    m[ints] = mi
    st.mean, st.A, st.pmut = torch.from_numpy(m), torch.from_numpy(A), torch.from_numpy(pmut)


def _categorical(
    st: Any, K: np.ndarray, w: np.ndarray, mu: int, cats: list[Var], alpha: float
) -> None:
    """Natural-gradient step on the categorical probabilities (ASNG-style adaptive step)."""
    q = st.q.numpy().copy()
    nca, kmax = q.shape
    onehot = np.zeros((K.shape[0], nca, kmax))
    onehot[np.arange(K.shape[0])[:, None], np.arange(nca)[None], K] = 1.0
    ngrad = (w[:mu, None, None] * (onehot[:mu] - q)).sum(axis=0)
    sl = []
    for i, v in enumerate(cats):
        qi, qk = q[i, : v.n - 1], q[i, v.n - 1]
        si = ngrad[i, : v.n - 1] / np.sqrt(qi)
        si = si + np.sqrt(qi) * ngrad[i, : v.n - 1].sum() / (qk + math.sqrt(qk))
        sl.extend(si)
    g = np.array(sl)
    pnorm = float(np.sqrt(g @ g))
    q += st.delta / (pnorm + EPS) * ngrad  # the step set a generation ago, as the reference
    st.delta = delta = 1.0 / st.Delta
    nsum = len(g)
    beta = delta / math.sqrt(nsum)
    s = (1 - beta) * st.s.numpy() + math.sqrt(beta * (2 - beta)) * g / (pnorm + EPS)
    st.gamma = (1 - beta) ** 2 * st.gamma + beta * (2 - beta)
    st.Delta *= math.exp(beta * (st.gamma - float(s @ s) / 1.5))
    for i, v in enumerate(cats):
        qmin = alpha / (v.n - 1)
        row = np.maximum(q[i, : v.n], qmin)
        tot = row.sum()
        row -= (tot - 1) * (row - qmin) / (tot - qmin * v.n)
        q[i, : v.n] = row / row.sum()
    st.q, st.s = torch.from_numpy(q), torch.from_numpy(s)


def _stop(st: Any, nmi: int, cats: list[Var], tolfun: float, alpha: float) -> bool:
    """CMA-ES's stopping tests on the Gaussian; without one, every choice settled."""
    if nmi == 0:
        q = st.q.numpy()
        top = np.array([1 - (v.n - 1) * alpha / (v.n - 1) for v in cats])
        return bool(np.all(q.max(axis=1) >= top - 1e-9))
    C, m, sigma = st.C.numpy(), st.mean.numpy(), st.sigma
    D2, B = np.linalg.eigh(C)
    D = np.sqrt(np.where(D2 < 0, EPS, D2))
    dC = np.diag(C)
    hist = st.fun_hist
    if st.g + 1 > _fun_term(nmi, st.popsize) and max(hist) - min(hist) < tolfun:
        return True
    tolx = 1e-12
    if np.all(sigma * dC < tolx) and np.all(sigma * st.pc.numpy() < tolx):
        return True
    if sigma * D.max() > 1e4 or D.max() / D.min() > 1e14:
        return True
    if np.any(m == m + 0.2 * sigma * np.sqrt(dC)):
        return True
    i = (st.g + 1) % nmi
    return bool(np.all(m == m + 0.1 * sigma * D[i] * B[:, i]))
