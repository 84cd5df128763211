"""The ``optarena`` command: a thin map from subcommands to library calls.

Each subcommand is one :class:`Command` entry in :data:`COMMANDS` (a name, a help line, a
function that declares its arguments and one that runs it), so adding a subcommand is adding
one entry. Every ``KEY=VALUE`` is read by :func:`optarena.cli.values.parse_value`. User errors
print one line on stderr and exit with status 1 (2 for bad usage); ``--traceback`` shows the
full traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from .arena import BENCH, DEMO, REPORT, SUMMARY
from .catalog import COMMANDS as _CATALOG
from .command import Command
from .runs import PLOT, RUN
from .study import STUDY
from .values import VALUE_HELP, parse_method, parse_pairs, parse_value

__all__ = [
    "COMMANDS",
    "Command",
    "build_parser",
    "main",
    "parse_method",
    "parse_pairs",
    "parse_value",
]

COMMANDS: list[Command] = [*_CATALOG, RUN, BENCH, SUMMARY, REPORT, PLOT, DEMO, STUDY]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per entry of :data:`COMMANDS`."""
    from optarena.bench.runner import package_version

    parser = argparse.ArgumentParser(
        prog="optarena",
        description="Optimize functions and PyTorch models with every kind of optimizer, "
        "and compare optimizers fairly (budgets counted in objective evaluations).",
        epilog=VALUE_HELP[0].upper() + VALUE_HELP[1:] + ".",
    )
    parser.add_argument("--version", action="version", version=f"optarena {package_version()}")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, epilog=VALUE_HELP)
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``optarena`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or bad usage (already printed)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    terminated: list[bool] = []
    with _sigterm_as_interrupt(terminated):
        try:
            return int(args._run(args))
        except BrokenPipeError:  # the reader went away (optarena methods | head): done
            with contextlib.suppress(OSError):  # no second error when Python flushes stdout
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except KeyboardInterrupt:
            if terminated:
                print("optarena: terminated (SIGTERM); finished runs are kept", file=sys.stderr)
                return 128 + signal.SIGTERM
            print("optarena: interrupted; finished runs are kept", file=sys.stderr)
            return 130
        except Exception as e:
            if args.traceback:
                raise
            print(f"optarena: error: {e}", file=sys.stderr)
            return 1


@contextlib.contextmanager
def _sigterm_as_interrupt(came: list[bool]) -> Iterator[None]:
    """Within the block SIGTERM stops a command as Ctrl-C does (worker processes stopped,
    finished runs kept) instead of killing this process outright; ``came`` records it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        came.append(True)
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
