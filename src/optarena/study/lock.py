"""One process per study: a lock taken when a study starts on a store file, so a second
process on the same store and name is refused at once, before it runs or replays anything.

The lock is an exclusive ``flock`` on a small file beside the store (``<store>.<hash of the
name>.lock``); the operating system drops it when the process ends, so a killed study
resumes without cleanup, and a study that ends removes the file (while still holding it; a
process that locked the file just before it was removed sees that its path now names another
file, or none, and takes the lock again on the path). A store in memory needs none. (On
systems without ``fcntl`` the lock is not taken: a second process is then found when it
writes its first trial.)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import types
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
    fd = _locked(path, fcntl, store, name)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)  # still held: a process waiting on it takes it again
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _locked(path: Path, fcntl: types.ModuleType, store: Store, name: str) -> int:
    """An open descriptor of the lock file at ``path``, locked by this process."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RuntimeError(
                f"study {name!r} in {store.path} is being run by another process (pid "
                f"{owner}): a study runs in one process (its trials run in parallel with "
                "in_flight= and executor=); wait for it to end, or stop it and call again "
                "to resume, or pick another name"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # removed by the study that just ended: lock the path's new file
