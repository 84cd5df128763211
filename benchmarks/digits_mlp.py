"""A supervised example at 10^4 parameters: an MLP on scikit-learn's digits, gradient-free
methods beside Adam at the same number of forward passes.

The task: scikit-learn's bundled 8x8 digits (1,797 images, no download), pixels scaled to
[0, 1], a stratified 75 / 25 train / test split fixed by ``--split-seed``; a 64-H-10 MLP (tanh
hidden layer, ``--hidden`` 128: 9,610 parameters), full-batch cross-entropy on the training
set. Every run starts from the same PyTorch-style initialization drawn from its seed.

How passes are counted: one forward of one network on the whole training set is one pass. A
gradient-free evaluation is one pass, so a budget of N passes is N evaluations (a population
of P networks is P passes, evaluated as one batched product per layer). An Adam step costs one
forward and one backward on the training set: the row "Adam, N steps" has made N forward
passes (as many as the gradient-free methods; its backward passes come on top), and the row
"Adam, N/3 steps" charges a backward as two forwards, so both ends of the usual accounting are
shown.

The methods: every registered method flagged ``linear_memory`` (sep_cmaes, lm_maes, snes,
pgpe, openai_es), found by the flag, each with its defaults and ``sigma0`` (``--sigma0``). The
table gives, after the budget, the train cross-entropy of the returned point (the best value
seen), its test cross-entropy and test accuracy: medians over ``--seeds`` seeds.

Run: ``OMP_NUM_THREADS=1 python benchmarks/digits_mlp.py`` (3 seeds, 20,000 passes);
``--quick`` is one seed and 2,000 passes (about a minute).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import optarena as oa
from optarena.methods._registry import method_infos


def digits(split_seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and test inputs (scaled to [0, 1], float32) and labels of the digits data."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.25, stratify=y, random_state=split_seed)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32) / 16.0  # noqa: E731
    i = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
    return f(Xa), i(ya), f(Xb), i(yb)


class MLP:
    """A 64-H-10 tanh MLP as a flat vector (``nn.Linear`` order: W1, b1, W2, b2), evaluated
    for one vector or a population (one batched product per layer)."""

    def __init__(self, n_in: int, hidden: int, n_out: int) -> None:
        self.sizes = (n_in, hidden, n_out)
        self.dim = hidden * n_in + hidden + n_out * hidden + n_out

    def init(self, seed: int) -> torch.Tensor:
        """``nn.Linear``'s default initialization (uniform in +- 1/sqrt(fan_in)), seeded."""
        g = torch.Generator().manual_seed(seed)
        n_in, h, n_out = self.sizes
        parts = []
        for fan_in, n in ((n_in, h * n_in + h), (h, n_out * h + n_out)):
            parts.append((torch.rand(n, generator=g) * 2 - 1) / math.sqrt(fan_in))
        return torch.cat(parts)

    def logits(self, P: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Logits ``(m, n, 10)`` of the ``m`` networks ``P`` (``(m, dim)``) on inputs ``X``."""
        n_in, h, n_out = self.sizes
        s = 0
        W1 = P[:, s : s + h * n_in].reshape(-1, h, n_in)
        s += h * n_in
        b1 = P[:, s : s + h]
        s += h
        W2 = P[:, s : s + n_out * h].reshape(-1, n_out, h)
        s += n_out * h
        b2 = P[:, s : s + n_out]
        H = torch.tanh(torch.baddbmm(b1.unsqueeze(1), X.expand(P.shape[0], -1, -1), W1.mT))
        return torch.baddbmm(b2.unsqueeze(1), H, W2.mT)

    def loss(self, P: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of each of the networks ``P`` on ``(X, y)``."""
        Z = self.logits(P, X)
        return F.cross_entropy(Z.mT, y.expand(P.shape[0], -1), reduction="none").mean(1)


def objective(net: MLP, X: torch.Tensor, y: torch.Tensor, chunk: int = 64) -> oa.Objective:
    """The training loss as a batched optarena objective (populations in chunks)."""

    def batched(P: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net.loss(c, X, y) for c in P.split(chunk)])

    return oa.Objective(lambda p: batched(p[None])[0], batched=batched, gradient="none")


def adam(net: MLP, x0: torch.Tensor, X: torch.Tensor, y: torch.Tensor, steps: int, lr: float):
    """``steps`` full-batch Adam steps from ``x0``; returns the final parameters."""
    p = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        net.loss(p[None], X, y)[0].backward()
        opt.step()
    return p.detach()


def scores(net: MLP, p: torch.Tensor, data: tuple) -> tuple[float, float, float]:
    """Train cross-entropy, test cross-entropy and test accuracy of one network."""
    Xa, ya, Xb, yb = data
    with torch.no_grad():
        train = float(net.loss(p[None], Xa, ya)[0])
        Z = net.logits(p[None], Xb)[0]
        test = float(F.cross_entropy(Z, yb))
        acc = float((Z.argmax(1) == yb).double().mean())
    return train, test, acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, 2,000 passes")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=20_000, help="forward passes per run")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--sigma0", type=float, default=0.1)
    ap.add_argument("--adam-lr", type=float, default=1e-3)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--methods", nargs="*", help="only these optarena methods")
    a = ap.parse_args()
    if a.quick:
        a.seeds, a.budget = 1, 2_000
    torch.set_num_threads(1)
    data = digits(a.split_seed)
    Xa, ya = data[0], data[1]
    net = MLP(Xa.shape[1], a.hidden, 10)
    names = sorted(i.name for i in method_infos() if getattr(i, "linear_memory", False))
    names = [n for n in names if a.methods is None or n in a.methods]
    print(
        f"digits, MLP {'-'.join(map(str, net.sizes))} ({net.dim:,} parameters), "
        f"{len(Xa)} train / {len(data[2])} test, {a.budget:,} forward passes, "
        f"median of {a.seeds} seed(s); {platform.processor() or platform.machine()}, one thread"
    )
    print(f"  {'method':26s} {'train CE':>9s} {'test CE':>8s} {'test acc':>8s} {'CPU s':>6s}")
    rows: list[tuple[str, object]] = [(n, n) for n in names]
    rows += [(f"Adam, N steps (lr {a.adam_lr:g})", a.budget)]
    rows += [(f"Adam, N/3 steps (lr {a.adam_lr:g})", a.budget // 3)]
    for label, what in rows:
        res, t0 = [], time.process_time()
        for seed in range(a.seeds):
            x0 = net.init(seed)
            if isinstance(what, int):
                p = adam(net, x0, Xa, ya, what, a.adam_lr)
            else:
                r = oa.minimize(
                    objective(net, Xa, ya),
                    x0,
                    what,
                    budget=a.budget,
                    seed=seed,
                    sigma0=a.sigma0,
                )
                p = r.x.detach()
            res.append(scores(net, p, data))
        cpu = (time.process_time() - t0) / a.seeds
        train, test, acc = (statistics.median(v) for v in zip(*res, strict=True))
        print(f"  {label:26s} {train:9.3g} {test:8.3g} {acc:8.1%} {cpu:6.1f}", flush=True)


if __name__ == "__main__":
    main()
