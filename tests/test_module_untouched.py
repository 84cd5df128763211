"""minimize over a module's parameters leaves the module as it was until write_back: its
buffers too (a module in train mode updates BatchNorm's running statistics on every forward);
and dropout in train mode, which makes every evaluation a random draw, is pointed out."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import optarena as oa


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 4, generator=g), torch.randn(64, 1, generator=g)


@pytest.mark.parametrize("method", ["adam", "cmaes", "nelder_mead"])
@pytest.mark.parametrize("eval_dtype", [None, torch.float64])
def test_buffers_stay_as_they_were(method: str, eval_dtype) -> None:
    X, y = data()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=X, target=y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # vmap and BatchNorm: one at a time
        kw = {} if eval_dtype is None else {"eval_dtype": eval_dtype}
        res = oa.minimize(obj, method=method, budget=40, seed=0, **kw)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), [
        k for k in before if not torch.equal(before[k], after[k])
    ]
    obj.write_back(res.x)  # the parameters, and only they, become the result's
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    torch.testing.assert_close(flat, res.x.to(flat.dtype))
    assert torch.equal(net.state_dict()["1.running_mean"], before["1.running_mean"])


def test_dropout_in_train_mode_is_pointed_out_and_eval_mode_is_quiet() -> None:
    X, y = data()
    net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 1))
    with pytest.warns(RuntimeWarning, match="train mode with dropout"):
        oa.Objective.from_module(net, nn.functional.mse_loss, args=X, target=y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        oa.Objective.from_module(net.eval(), nn.functional.mse_loss, args=X, target=y)
        oa.Objective.from_module(net.train(), nn.functional.mse_loss, args=X, target=y, noisy=True)
