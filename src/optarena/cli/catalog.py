"""``optarena methods [NAME]`` and ``optarena problems``: what the registries hold."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .command import Command, table, yes

__all__ = ["COMMANDS", "method_options_text"]


def _methods_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name", nargs="?", help="one method: print every option with its default and meaning"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _default(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def method_options_text(name: str) -> str:
    """A method's capabilities and every declared option: default, what it accepts, meaning."""
    from optarena.methods import get_method_class

    info = get_method_class(name).info  # type: ignore[attr-defined]
    flags = [
        ("needs a gradient", info.needs_grad),
        ("supports bounds", info.supports_bounds),
        ("needs a box", info.requires_bounds),
        ("supports constraints", info.supports_constraints),
        ("stochastic", info.stochastic),
        ("global", info.is_global),
    ]
    lines = [
        f"{info.name} ({info.family}): {info.summary}",
        "capabilities: " + ", ".join(f"{k} {yes(v)}" for k, v in flags),
        "",
    ]
    if not info.options:
        lines.append(f"{info.name} declares no options.")
    else:
        rows = [[p.name, _default(p.default), p.constraint(), p.doc] for p in info.options]
        lines.append(table(["option", "default", "accepts", "meaning"], rows))
        lines += ["", f"set them with: optarena run PROBLEM -m {info.name} -o KEY=VALUE"]
    return "\n".join(lines)


def _methods_run(args: argparse.Namespace) -> int:
    from optarena.methods import method_infos

    if args.name:
        from optarena.methods import get_method_class

        info = get_method_class(args.name).info  # type: ignore[attr-defined]
        text = json.dumps(info.as_dict(), indent=2, default=repr) if args.json else None
        print(text or method_options_text(args.name))
        return 0
    infos = method_infos()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2, default=repr))
        return 0
    headers = ["method", "family", "gradient", "bounds", "constraints", "stochastic", "global",
               "needs box", "options", "summary"]  # fmt: skip
    rows = [
        [
            i.name,
            i.family,
            yes(i.needs_grad),
            yes(i.supports_bounds),
            yes(i.supports_constraints),
            yes(i.stochastic),
            yes(i.is_global),
            yes(i.requires_bounds),
            len(i.options) or "-",
            i.summary,
        ]
        for i in infos
    ]
    print(table(headers, rows))
    print("\noptarena methods NAME lists a method's options with their defaults and meaning.")
    return 0


def _problems_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _problems_run(args: argparse.Namespace) -> int:
    from optarena import problems  # the registry of test problems (a subpackage)

    rows = []
    for name in problems.names():
        p = problems.get(name)
        rows.append(
            {
                "problem": name,
                "dim": p.dim,
                "f_opt": p.f_opt,
                "differentiable": p.differentiable,
                "bounds": p.bounds is not None,
                "constraints": len(p.constraints),
                "description": p.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = ["problem", "dim", "f_opt", "gradient", "box", "constraints", "description"]
    cells = [
        [
            r["problem"],
            r["dim"],
            "?" if r["f_opt"] is None else f"{r['f_opt']:.12g}",
            yes(r["differentiable"]),
            yes(r["bounds"]),
            r["constraints"] or "-",
            r["description"],
        ]
        for r in rows
    ]
    print(table(headers, cells))
    return 0


COMMANDS = [
    Command(
        "methods",
        "list the registered methods and what they can do; NAME: its options",
        _methods_configure,
        _methods_run,
    ),
    Command(
        "problems",
        "list the test problems (dimension, known optimum)",
        _problems_configure,
        _problems_run,
    ),
]
