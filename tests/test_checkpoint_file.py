"""A minimize checkpoint through a file: ``Checkpoint.state_dict()`` is plain data that
``torch.load`` reads with its default ``weights_only=True``, and resuming from it continues
exactly as resuming from the Checkpoint object does (was: a pickled dataclass, refused)."""

from __future__ import annotations

import io

import pytest
import torch

import optarena as oa
from optarena.methods import get_method_class

CHECKPOINTABLE = [
    i.name
    for i in oa.methods()
    if get_method_class(i.name).checkpointable and i.family in ("population", "gradient")
]
X0 = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)


def bumpy(x: torch.Tensor) -> torch.Tensor:
    return ((x - 0.3) ** 2).sum() + 0.5 * torch.sin(3 * x).sum() ** 2


def kwargs(name: str) -> dict:
    return {"bounds": (-2.0, 2.0)} if oa.methods(name).requires_bounds else {}


@pytest.mark.parametrize("name", CHECKPOINTABLE)
def test_a_checkpoint_through_torch_save_resumes_as_the_object_does(name: str) -> None:
    kept: list[oa.Checkpoint] = []

    def keep(info: oa.IterationInfo) -> None:
        if info.checkpoint is not None and not kept:
            kept.append(info.checkpoint)

    oa.minimize(bumpy, X0, name, budget=60, seed=1, callback=keep, **kwargs(name))
    if not kept:
        pytest.skip(f"{name} ended before its first checkpoint")
    buf = io.BytesIO()
    torch.save(kept[0].state_dict(), buf)
    buf.seek(0)
    data = torch.load(buf)  # weights_only=True: plain data only
    a = oa.minimize(bumpy, X0, name, budget=40, resume=kept[0], **kwargs(name))
    b = oa.minimize(bumpy, X0, name, budget=40, resume=data, **kwargs(name))
    assert (a.fun, a.nfev) == (b.fun, b.nfev)
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
    assert torch.equal(torch.as_tensor(a.history.f), torch.as_tensor(b.history.f))


def test_a_checkpoint_naming_a_class_outside_optarena_is_refused() -> None:
    kept: list[oa.Checkpoint] = []
    oa.minimize(bumpy, X0, "cmaes", budget=30, seed=1, callback=lambda i: kept.append(i.checkpoint))
    data = kept[0].state_dict()
    data["state"]["__class__"] = "os:PathLike"
    with pytest.raises(ValueError, match="outside optarena"):
        oa.minimize(bumpy, X0, "cmaes", budget=30, resume=data)
    with pytest.raises(ValueError, match=r"Checkpoint\.state_dict"):
        oa.Checkpoint.from_state_dict({"format": "other"})
