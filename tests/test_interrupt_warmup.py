"""Ctrl-C while a run's warm-up imports torch internals never breaks the next run: the
KeyboardInterrupt waits until the import has finished, then ends the call as usual."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A real SIGINT delivered to the process at a fixed point of the warm-up import: when
# torch._dynamo's import reaches sympy.core (nothing of torch._dynamo is imported before the
# first gradient run), as if the user pressed Ctrl-C during that second.
SCRIPT = textwrap.dedent(
    """
    import importlib.abc, os, signal, sys
    import torch
    import optarena as oa

    assert "sympy" not in sys.modules and "torch._dynamo" not in sys.modules

    class CtrlC(importlib.abc.MetaPathFinder):
        fired = False
        def find_spec(self, name, path=None, target=None):
            if name == "sympy.core" and not CtrlC.fired:
                CtrlC.fired = True
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, CtrlC())
    x0 = torch.tensor([1.0, -1.0], dtype=torch.float64)
    fn = lambda x: (x ** 2).sum()
    try:
        first = oa.minimize(fn, x0, "adam", budget=20)
        print("first:", first.stop_reason.name)
    except KeyboardInterrupt:
        print("first: KeyboardInterrupt")
    assert CtrlC.fired
    again = oa.minimize(fn, x0, "adam", budget=20)
    print("again:", again.stop_reason.name, again.nfev)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to itself")
def test_ctrl_c_during_the_warm_up_import_leaves_torch_usable() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] in ("first: KeyboardInterrupt", "first: INTERRUPTED"), done.stdout
    assert lines[1] == "again: MAX_EVALS 20", done.stdout
