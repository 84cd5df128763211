"""Test-wide settings: one torch thread, so tiny problems do not pay for thread contention on
a shared machine and results do not depend on the thread count; and Ctrl-C raising
KeyboardInterrupt as in a terminal."""

import signal
import threading
from collections.abc import Iterator

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_raises_keyboard_interrupt() -> Iterator[None]:
    """The Ctrl-C tests need SIGINT to raise KeyboardInterrupt, even when the suite runs as a
    background job, which starts with SIGINT ignored (Python then installs no handler and
    ``_thread.interrupt_main`` does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
