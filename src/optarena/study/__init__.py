"""Studies: expensive objectives (a training run per trial) searched over a space, with
trials run in parallel, stored in SQLite as they finish, resumable after a crash, and pruned
early from the values they report.

::

    study = optarena.study.optimize(train, space, method="tpe", n_trials=50, in_flight=2,
                                    executor="local:2", store="hpo.sqlite", name="mlp",
                                    pruner=MedianPruner())
    study.best_config, study.trials          # the best configuration, every trial (a DataFrame)

What is decided where:

- the objective takes ``config`` or, declared with two positional parameters,
  ``(config, trial)``; ``trial.report(step, value)`` may raise :class:`TrialPruned`.
- a trial that raises is stored as failed (``"Type: message"`` in the trials table, the
  traceback kept: ``study.traceback(n)``, :func:`trial_traceback`) and the study stops with a
  :class:`TrialError` chained to the exception, unless ``catch=`` names it (as Optuna's
  ``catch``); then, as for a NaN value, the failure is told to the method and the study goes
  on. A pruned trial is stored with its last reported value and told
  that value (NaN when it reported nothing): an early estimate that still marks the region
  as poor, rather than a failure that would teach the method nothing about it.
- pruners decide from a snapshot of the trials finished when the trial was launched (it may
  run in another process), so decisions depend only on the launch order.
- resuming replays the stored asks and tells, interleaved as they ran, on a fresh method
  with the stored seed and checks each replayed candidate against the stored one
  (:func:`optimize`); Ctrl-C returns the study so far, and the same call resumes it.
- the store is the arena's: a study is also one run (problem ``study:<name>``) that
  ``optarena summary`` and the plots read; :func:`trials_frame` / :func:`reports_frame` read
  the study tables.
"""

from __future__ import annotations

from .errors import TrialError
from .pruners import MedianPruner, Pruner, SuccessiveHalvingPruner
from .result import Study, TrialRecord
from .runner import optimize
from .tables import reports_frame, trial_traceback, trials_frame
from .trial import Trial, TrialPruned

__all__ = [
    "MedianPruner",
    "Pruner",
    "Study",
    "SuccessiveHalvingPruner",
    "Trial",
    "TrialError",
    "TrialPruned",
    "TrialRecord",
    "optimize",
    "reports_frame",
    "trial_traceback",
    "trials_frame",
]
