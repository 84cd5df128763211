"""TPE's Parzen densities computed by distinct integer cells equal the density of each draw
on its own (the draws of ``l`` share few cells, so each cell's mass is computed once)."""

from __future__ import annotations

import numpy as np
import torch

from optarena.methods._base import RunContext
from optarena.methods.population._mixed import variables
from optarena.methods.population._parzen import Parzen
from optarena.space import Choice, Int, Real, Space


def test_log_pdf_of_draws_sharing_cells_is_each_draws_own() -> None:
    space = Space(
        {
            "z": Int(1, 40),
            "w": Int(1, 1000, log=True),
            "x": Real(-1.0, 2.0),
            "c": Choice(["a", "b", "c"]),
        }
    )
    enc = space.encoding
    ctx = RunContext(
        torch.tensor(enc.centre), torch.tensor(enc.lower), torch.tensor(enc.upper), (), 0
    )
    ctx.space = enc
    vs = list(variables(ctx, "tpe"))
    rng = np.random.default_rng(5)
    configs = [
        {
            "z": int(rng.integers(1, 41)),
            "w": int(rng.integers(1, 1001)),
            "x": float(rng.uniform(-1, 2)),
            "c": "abc"[int(rng.integers(3))],
        }
        for _ in range(60)
    ]
    X = np.array([enc.encode(c) for c in configs])
    p = Parzen(X, vs, 1.0)
    Y = p.sample(rng, 200)
    assert len(np.unique(Y[:, 0])) < 200  # cells repeat: the shared computation is exercised
    together = p.log_pdf(Y)
    alone = np.array([p.log_pdf(Y[i : i + 1])[0] for i in range(Y.shape[0])])
    np.testing.assert_array_equal(together, alone)
    assert np.all(np.isfinite(together))
