"""What every subcommand is made of: a :class:`Command` entry and an aligned table printer."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Command", "table", "yes"]


@dataclass(frozen=True)
class Command:
    """One subcommand: ``configure(parser)`` adds its arguments, ``run(args)`` returns a code."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned markdown table (readable in a terminal, renders as a table elsewhere)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    rule = "-|-".join("-" * w for w in widths)
    return "\n".join([f"| {fmt[0]} |", f"|-{rule}-|"] + [f"| {line} |" for line in fmt[1:]])


def yes(flag: bool) -> str:
    """A table cell for a capability flag."""
    return "yes" if flag else "-"
