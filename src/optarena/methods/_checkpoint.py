"""Checkpoints of a run: its state, its random generators, and what it was made under.

A checkpoint resumes only a run made under the same facts (dimension, dtype, bounds, seed and
the method's options): resuming under others would mix two runs, with points outside the new
box or a random stream that is not the new seed's. :func:`differences` says what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch

__all__ = ["Checkpoint", "differences"]

FORMAT = "optarena.checkpoint/1"  # of Checkpoint.state_dict()


@dataclass(frozen=True)
class Checkpoint:
    """A copy of a checkpointable method's run state (plain tensors, numbers and lists) and of
    the run's random generators, taken after iteration (generation, step) ``generation``.

    Pass it to ``minimize(..., resume=checkpoint)`` (same objective, method and seed) to
    continue exactly as the uninterrupted run would have; counts and history start afresh.
    ``numpy_rng`` is empty when the run had not used its numpy generator yet. ``made_under``
    records what the run was made under (dimension, dtype, bounds, seed, the method's
    options): a resume under anything else is refused, saying what differs.
    """

    method: str
    generation: int
    state: Any
    torch_rng: torch.Tensor
    numpy_rng: dict[str, Any]
    made_under: Mapping[str, Any] = field(default_factory=dict)

    @property
    def iteration(self) -> int:
        """The iteration after which the checkpoint was taken (``generation`` by another name)."""
        return self.generation

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint as plain data: ``torch.save`` it, ``torch.load(f)`` reads it back
        with its default ``weights_only=True``, and ``minimize(resume=...)`` takes it (or
        :meth:`from_state_dict`'s Checkpoint)."""
        from ._checkpoint_data import to_plain

        return {"format": FORMAT, **to_plain({f.name: getattr(self, f.name) for f in fields(self)})}

    @classmethod
    def from_state_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """The Checkpoint of :meth:`state_dict`'s data."""
        from ._checkpoint_data import from_plain

        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError("a checkpoint's data comes from Checkpoint.state_dict()")
        return cls(**{f.name: from_plain(data[f.name]) for f in fields(cls)})


def differences(then: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """What differs between the facts a checkpoint was made under and this run's, or None."""
    diffs = []
    for key, old in then.items():
        if key == "options":
            opts = now.get("options", {})
            for name, value in old.items():
                if name in opts and not _same(value, opts[name]):
                    diffs.append(f"option {name}={value!r} (checkpoint) vs {opts[name]!r}")
        elif not _same(old, now.get(key)):
            diffs.append(f"{key} {_show(old)} (checkpoint) vs {_show(now.get(key))}")
    return "; ".join(diffs) or None


def _same(a: Any, b: Any) -> bool:
    """Equality for checkpoint facts: tensors by shape and values, containers item by item."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and bool(torch.equal(a.cpu().double(), b.cpu().double()))
        )
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _show(value: Any) -> str:
    """A short form of a checkpoint fact for messages (a box as its first corners)."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], torch.Tensor):
        lo, hi = (v.reshape(-1)[:3].tolist() for v in value)
        more = ", ..." if value[0].numel() > 3 else ""
        return f"[{lo}{more}, {hi}{more}]"
    return "none" if value is None else repr(value)
