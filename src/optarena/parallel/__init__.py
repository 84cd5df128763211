"""Batches of evaluations on workers (``minimize(..., executor=...)``), shared with the arena."""

from .executor import Evaluated, ExecutorError, Parallel, ParallelRun, RemoteTraceback

__all__ = ["Evaluated", "ExecutorError", "Parallel", "ParallelRun", "RemoteTraceback"]
