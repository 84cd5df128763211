"""The one reader of values typed on the command line: ``-o KEY=VALUE``, ``-p KEY=VALUE`` and
``-m NAME:KEY=VALUE,KEY=VALUE`` all mean the same thing by the same text.

Accepted spellings (:data:`VALUE_HELP`, shown by ``optarena --help``): ``true``/``false`` and
``none``/``null`` in any case (so the TOML ``true`` and the Python ``True`` both work), ints,
floats (``1e-3``, ``inf``, ``nan``), lists in brackets (``[1, 2.5, 'a']``, also
``(1, 2)``), quoted strings (``'a b'`` or ``"a,b"``); anything else is the plain string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["VALUE_HELP", "parse_method", "parse_pairs", "parse_value", "split_top"]

VALUE_HELP = (
    "values of KEY=VALUE options (-o, -p, -m NAME:KEY=VALUE,...): true/false and none/null "
    "in any case, numbers (3, -2, 1e-3, inf), lists [1, 2.5, 'a'], quoted strings 'a b' or "
    '"a,b"; anything else is the plain string (line_search=strong_wolfe)'
)

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|nan)", re.I)
_WORDS = {"true": True, "false": False, "none": None, "null": None}
_PAIRS = {"[": "]", "(": ")", "{": "}"}


def split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside brackets and quotes (``"a=[1,2],b='x,y'"`` gives two
    parts); ValueError for an unclosed bracket or quote."""
    parts, depth, quote, start = [], [], "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _PAIRS:
            depth.append(_PAIRS[ch])
        elif depth and ch == depth[-1]:
            depth.pop()
        elif ch == sep and not depth:
            parts.append(text[start:i])
            start = i + 1
    if quote or depth:
        raise ValueError(f"unclosed quote or bracket in {text!r}")
    parts.append(text[start:])
    return parts


def parse_value(text: str) -> Any:
    """One value in the spellings of :data:`VALUE_HELP`."""
    t = text.strip()
    low = t.lower()
    if low in _WORDS:
        return _WORDS[low]
    if _INT.fullmatch(t):
        return int(t)
    if _FLOAT.fullmatch(t):
        return float(t)
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if len(t) >= 2 and (t[0], t[-1]) in (("[", "]"), ("(", ")")):
        inner = t[1:-1]
        return [parse_value(p) for p in split_top(inner)] if inner.strip() else []
    return t


def _pair(item: str, what: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{what} {item!r} must look like key=value (e.g. lr=0.1)")
    return key.strip(), parse_value(value)


def _collect(items: Sequence[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, value = _pair(item, what)
        if key in out:
            raise ValueError(f"{what} {key!r} is given twice ({out[key]!r} and {value!r})")
        out[key] = value
    return out


def parse_pairs(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``["lr=0.1", "nesterov=true"]`` as ``{"lr": 0.1, "nesterov": True}``."""
    return _collect(items or (), what)


def parse_method(text: str) -> tuple[str, dict[str, Any]]:
    """``"adam:lr=0.5,betas=[0.9,0.99]"`` as ``("adam", {"lr": 0.5, "betas": [0.9, 0.99]})``."""
    name, _, opts = text.partition(":")
    items = [p for p in split_top(opts) if p.strip()] if opts.strip() else []
    return name.strip(), _collect(items, "method option")
