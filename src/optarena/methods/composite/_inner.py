"""The inner method of a constraint wrapper: chosen by role for the problem, and its refusal.

A wrapper without a named inner method takes the registry's first ``"merit"`` method that fits
the problem, else its first ``"local"`` one (a deterministic local search; on an objective
without gradient, a derivative-free one), so ``Penalty()`` runs on every objective.
:class:`WrapperInfo` is a wrapper instance's :class:`MethodInfo`: its flags are its inner
method's, and its refusal names the inner method and the way out, not the wrapper.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .._registry import Facts, MethodInfo, candidates, method_infos

__all__ = ["WrapperInfo", "default_inner", "inner_problem"]

#: Where a wrapper looks for its inner method, in order (registry roles).
_ROLES = ("merit", "local")


def inner_problem(facts: Facts) -> Facts:
    """The facts the inner method sees: the same objective and box, no constraints (they are
    inside the merit function) and no workers (the wrapper's run has them)."""
    return replace(facts, constrained=False, executor=False)


def default_inner(facts: Facts | None = None) -> str:
    """The inner method for a problem with ``facts``: the registry's first ``"merit"`` method
    that fits, else its first ``"local"`` method that fits (default facts: an objective with a
    gradient)."""
    facts = inner_problem(facts or Facts())
    for role in _ROLES:
        found = candidates(role, facts)
        if found:
            return found[0].name
    raise ValueError(
        f"no registered method of the roles {list(_ROLES)} can be the inner method for "
        f"{facts.subject} (gradient={facts.gradient!r}, bounded={facts.bounded}); name one"
    )


def _fitting(facts: Facts) -> str:
    """The registered non-composite methods that can run on a problem with ``facts``."""
    return ", ".join(i.name for i in method_infos() if i.family != "composite" and i.fits(facts))


@dataclass(frozen=True)
class WrapperInfo(MethodInfo):
    """A wrapper instance's flags (those of its inner method) and its refusal.

    ``own`` is the wrapper class's registered info, ``inner`` the named inner method's (None:
    chosen for the problem by :func:`default_inner`), ``spelled`` how users build the wrapper
    (``"optarena.Penalty"``) for the messages.
    """

    own: Any = field(default=None, compare=False, repr=False)
    inner: MethodInfo | None = field(default=None, compare=False, repr=False)
    spelled: str = field(default="", compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The flags as a plain dict (without the infos it is built from)."""
        out = super().as_dict()
        for key in ("own", "inner", "spelled"):
            out.pop(key, None)
        return out

    def refusal(self, facts: Facts, role: str = "method") -> str | None:
        """The wrapper's own refusal, else its inner method's, naming the inner method and
        what to do (a gradient-free inner method, leaving ``inner`` unset, or differences)."""
        own = self.own.refusal(facts, role) if isinstance(self.own, MethodInfo) else None
        if own is not None:
            return own
        sub = inner_problem(facts)
        who = f"{role} {self.name!r}"
        if self.inner is None:
            try:
                default_inner(sub)
            except ValueError as e:
                return f"{who}: {e}"
            return None
        why = self.inner.refusal(sub, role="inner method")
        if why is None:
            return None
        if self.inner.needs_grad and not sub.has_gradient:
            return (
                f"{who} runs its inner method {self.inner.name!r}, which needs a gradient, but "
                f"{sub.subject} has none (gradient={sub.gradient!r}). Give it a gradient-free "
                f"inner method, {self.spelled}(NAME) with NAME one of: {_fitting(sub)}; or "
                f"leave inner unset ({self.spelled}()), which picks one for the problem; or "
                "build the objective with gradient='fd' (finite differences, each probe counted)"
            )
        return f"{who}: its {why}"
