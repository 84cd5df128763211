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

How many candidates ``ask(n)`` gives: a method draws one generation at a time, so ``ask(n)``
hands out up to ``n`` of its rows not yet handed out (``n=None``: all of them); a smaller ``n``
hands out pieces, so asking one and telling one (asynchronous use) works for every method.
The next generation is drawn once every row of this one was told: ``ask`` returns an empty
batch while all rows are out and some are not back, and only then (or while a spent
``seconds`` budget waits for the values out): an empty ``ask`` with nothing out never
happens while ``done`` is False. Rows are recorded in the order they are told. With elite
re-evaluation (``reevaluate_elite``, or ``noisy=True``) the best rows of a generation are
handed out once more before it is told to the method.

Noisy values (``noisy=True``): as ``minimize`` on a noisy objective, once the method's part
ends ``ask`` hands out re-evaluations of the lowest samples' points (``reevaluate=``, held
back from the budget) and ``result().fun`` is the re-evaluated mean of the chosen point, with
its standard error in ``result().info["noise"]``, not the luckiest single sample.

Saving: ``state_dict()`` is plain data (``torch.load`` reads it with ``weights_only=True``).
After ``load_state_dict`` nobody holds the candidates
that were out when the study was saved: ``ask`` hands them out again, first (telling a value
kept for one directly works too).

A method that proposes beside candidates in flight (it defines the optional
:meth:`~optarena.methods.PopulationMethod.ask_more`; ``tpe``'s counts them as pending trials,
Optuna's constant liar) gives ``n`` candidates whatever its ``popsize``, and
learns each value as it is told: ``ask(5)`` on a fresh study is the first generation of
``popsize=5``, and keeping k candidates in flight with ``ask(1)`` never waits. Every other
method gives at most the rest of its generation (``cmaes``, ``catcma`` and the ES family:
about ``4 + 3 ln d`` by default, larger after restarts; ``pso``: its swarm; ``random_search``:
``batch_size``, 100): to keep k candidates in flight, make it with ``popsize=k`` or more
(``batch_size`` for random search).

Budget: ``ask`` never hands out more candidates than the evaluations left, counting those in
flight (a last generation is trimmed as ``minimize`` trims it); a ``seconds`` limit stops the
handing out, and values in flight when it passes are still recorded; a ``target`` ends the
study at the value that reaches it.

Failures: NaN or infinite values count and rank as ``+inf`` (the History keeps them as told);
an exception instance told as a value counts, is recorded as NaN and its message is kept in
``result().info["failures"]``. ``tell`` matches candidates by exact value: tell them as ``ask``
returned them (one cast to float32 and back, or a dict with a key added, is refused).

``minimize``'s ``memory=`` and ``eval_dtype=`` are refused: they chunk and cast a population's
evaluation, and here the caller evaluates (chunk and cast the batch ``ask`` returns yourself).

With a space, a configuration already told is not handed out again: when the method proposes
it, ``ask`` tells the method the value told before and hands out the next candidate. As in
``minimize(space=)``, such a repeat counts as one evaluation (``nfev``, the History, the
budget) and ``result().cache_hits`` says how many there were. Only values are reused (a
configuration told as an exception is handed out again: a failure may pass), and a
configuration still in flight may be handed out twice. A study without an evaluation budget
ends (``converged``) after 1,000 repeats in a row: the method has nothing new to propose. With
``noisy=True`` or elite re-evaluation nothing is reused (a repeat is a new sample).
"""

from __future__ import annotations

from .optimizer import Optimizer

__all__ = ["Optimizer"]
