"""One process per study: a lock taken when a study starts on a store file, so a second
process on the same store and name is refused at once, before it runs or replays anything.

The lock is an exclusive ``flock`` on a small file beside the store (``<store>.<hash of the
name>.lock``); the operating system drops it when the process ends, so a killed study
resumes without cleanup. A store in memory needs none. (On systems without ``fcntl``
the lock is not taken: a second process is then found when it writes its first trial.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..bench.store import Store

__all__ = ["study_lock"]


def _lock_path(store: Store, name: str) -> Path | None:
    path = str(store.path)
    if path == ":memory:" or path.startswith("file::memory:") or not path:
        return None
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return Path(f"{path}.{digest}.lock")


@contextlib.contextmanager
def study_lock(store: Store, name: str) -> Iterator[None]:
    """Hold study ``name``'s lock on ``store`` for the duration; RuntimeError when another
    process (or another call in this one) holds it."""
    path = _lock_path(store, name)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RuntimeError(
                f"study {name!r} in {store.path} is being run by another process (pid "
                f"{owner}): a study runs in one process (its trials run in parallel with "
                "in_flight= and executor=); wait for it to end, or stop it and call again "
                "to resume, or pick another name"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
