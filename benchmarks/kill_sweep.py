"""Kill a running `optarena bench --workers 2` and check that nothing is left behind.

Each trial starts a sweep in its own session, waits until at least one run is stored, then

- ``parent-kill``: kills the bench process with SIGKILL,
- ``parent-term``: sends it SIGTERM,
- ``worker-kill``: kills one worker process with SIGKILL,

and checks: the bench process ends within BOUND seconds (after a worker was killed, with
status 1 and the "run the same command again to resume" message), no process of the session
is left LEFTOVER seconds later (the fork server, the resource tracker and the workers
included), the store passes SQLite's integrity check, holds every run that was stored before
the kill and each stored run has its whole history. The last trial of each kind resumes the
sweep to the end.

    python benchmarks/kill_sweep.py              # 20 trials of each kind
    python benchmarks/kill_sweep.py --trials 1   # what tests/test_bench_kill.py runs
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("parent-kill", "parent-term", "worker-kill")
#: Seconds the bench process may take to end after the kill (a worker's death waits for the
#: other worker's run in progress, about 2 s here).
BOUND = 60.0
#: Seconds every process of the session has to be gone once the bench process ended.
LEFTOVER = 10.0
#: Seconds to wait for the sweep to store its first run.
START = 180.0

SPEC = """
name = "kill"
seeds = 12
deterministic_once = false
budget = 2000
problems = [{name = "mlp_identity"}]
methods = [{name = "adam", options = {lr = 0.0001}}]
"""


def session(sid: int) -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every live process of session ``sid``."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[0] == "Z" or int(fields[3]) != sid:
                continue
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        out.append((int(d), int(fields[1]), cmd.strip()))
    return out


def workers(sid: int) -> list[int]:
    """The worker processes of the sweep led by ``sid``: children of its fork server."""
    procs = session(sid)
    servers = {p for p, pp, cmd in procs if pp == sid and "multiprocessing.forkserver" in cmd}
    return [p for p, pp, _ in procs if pp in servers]


def stored(path: Path) -> int:
    """Runs in the store, read as any SQLite client would (0 before the schema exists)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=10.0) as c:
            return int(c.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def check_store(path: Path, at_least: int) -> str | None:
    """What is wrong with the store after a kill, or None."""
    c = sqlite3.connect(path, timeout=10.0)
    try:
        if c.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            return "integrity check failed"
        n = c.execute("SELECT count(*) FROM runs").fetchone()[0]
        if n < at_least:
            return f"{n} runs stored, {at_least} were before the kill"
        short = c.execute(
            "SELECT count(*) FROM runs r WHERE r.nfev != "
            "(SELECT count(*) FROM history h WHERE h.run_id = r.run_id)"
        ).fetchone()[0]
        return f"{short} runs without their whole history" if short else None
    finally:
        c.close()


def bench_command(spec: Path, store: Path) -> list[str]:
    return [sys.executable, "-m", "optarena.cli", "bench", str(spec), "--store", str(store),
            "--workers", "2", "--no-progress", "--format", "none"]  # fmt: skip


def bench(spec: Path, store: Path, log: Path) -> subprocess.Popen:
    with log.open("wb") as f:  # a file, not a pipe: a leaked process must not block us
        return subprocess.Popen(
            bench_command(spec, store),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=f,
            start_new_session=True,
        )


def trial(kind: str, workdir: Path, resume: bool = False) -> str | None:
    """One kill of ``kind``; returns what went wrong, or None."""
    spec, store, log = workdir / "kill.toml", workdir / "s.sqlite", workdir / "bench.log"
    spec.write_text(SPEC)
    for p in workdir.glob("s.sqlite*"):
        p.unlink()
    proc = bench(spec, store, log)
    sid = proc.pid
    try:
        deadline = time.monotonic() + START
        while stored(store) < 1 or len(workers(sid)) < 2:
            if proc.poll() is not None:
                return f"the sweep ended before the kill: {log.read_text()[-500:]}"
            if time.monotonic() > deadline:
                return "no run stored in time"
            time.sleep(0.1)
        before = stored(store)
        if kind == "parent-kill":
            os.kill(proc.pid, signal.SIGKILL)
        elif kind == "parent-term":
            os.kill(proc.pid, signal.SIGTERM)
        else:
            os.kill(workers(sid)[0], signal.SIGKILL)
        try:
            proc.wait(BOUND)
        except subprocess.TimeoutExpired:
            return f"the bench process still runs {BOUND:g} s after the kill"
        text = log.read_text()
        if kind == "worker-kill" and (
            proc.returncode != 1 or "run the same command again to resume" not in text
        ):
            return f"status {proc.returncode} without the resume message: {text[-500:]}"
        if kind == "parent-term" and proc.returncode != 128 + signal.SIGTERM:
            return f"status {proc.returncode} after SIGTERM: {text[-500:]}"
        deadline = time.monotonic() + LEFTOVER
        while session(sid):
            if time.monotonic() > deadline:
                left = "; ".join(f"{p} {cmd[:60]}" for p, _, cmd in session(sid))
                return f"processes left {LEFTOVER:g} s after the bench ended: {left}"
            time.sleep(0.1)
        wrong = check_store(store, before)
        if wrong:
            return wrong
    finally:
        for pid, _, _ in session(sid):  # clean up after a failed trial
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if resume:
        done = subprocess.run(
            bench_command(spec, store), cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0 or stored(store) != 12:
            return f"resuming failed (status {done.returncode}): {done.stderr[-500:]}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials of each kind (20)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--no-resume", action="store_true", help="skip the final resumes")
    args = parser.parse_args(argv)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="optarena-kill-") as tmp:
        for kind in args.kinds:
            for i in range(args.trials):
                t0 = time.monotonic()
                wrong = trial(kind, Path(tmp), resume=i == args.trials - 1 and not args.no_resume)
                failures += wrong is not None
                status = "ok" if wrong is None else f"FAILED: {wrong}"
                print(f"{kind} {i + 1}/{args.trials}: {status} ({time.monotonic() - t0:.1f} s)",
                      flush=True)  # fmt: skip
    print(f"{failures} failed trial(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
