"""Ask/tell: a population method driven by a caller who evaluates the candidates.

    opt = optarena.Optimizer("cmaes", x0=torch.zeros(5), seed=0, budget=200)
    while not opt.done:
        X = opt.ask()                      # a tensor (k, d); a list of dicts with space=
        opt.tell(X, [f(x) for x in X])     # any order; NaN or an exception for a failure
    res = opt.result()

The Optimizer runs the :class:`~optarena.methods._base.Generations` that ``minimize`` runs for
the method (one loop, two drivers); only who evaluates a batch differs. Every value told goes
through the run's Oracle, which counts it and keeps the best point and the History as in
``minimize``: told in the order asked, the History is ``minimize``'s for the same seed.

How a generation is handed out: a method draws one generation at a time, so ``ask(n)`` hands
out up to ``n`` of its rows not yet handed out (``n=None``: all of them); a smaller ``n``
hands out pieces, so asking one and telling one (asynchronous use) works for every method.
The next generation is drawn once every row of this one was told: ``ask`` returns an empty
batch while all rows are out and some are not back. Rows are recorded in the order they are
told. With elite re-evaluation (``reevaluate_elite``, or ``noisy=True``) the best rows of a
generation are handed out once more before it is told to the method.

Budget: ``ask`` never hands out more candidates than the evaluations left, counting those in
flight (a last generation is trimmed as ``minimize`` trims it); a ``seconds`` limit stops the
handing out, and values in flight when it passes are still recorded; a ``target`` ends the
study at the value that reaches it.

Failures: NaN or infinite values count and rank as ``+inf`` (the History keeps them as told);
an exception instance told as a value counts, is recorded as NaN and its message is kept in
``result().info["failures"]``. With a space, every candidate goes to the caller, repeated
configurations included (``minimize(space=)``'s cache of values is not applied).
"""

from __future__ import annotations

from .optimizer import Optimizer

__all__ = ["Optimizer"]
