"""The method registry: every method registers itself with its capabilities.

``minimize``, the CLI, the benchmark runner and the contract tests find methods here, never in
hand-kept lists, so adding a method is adding one file.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._habits import habit_hints
from ._params import Param, declared_params

if TYPE_CHECKING:
    from ._base import Method

__all__ = [
    "ROLES",
    "Facts",
    "MethodInfo",
    "candidates",
    "get_method_class",
    "method_infos",
    "register",
    "resolve_method",
    "unregister",
]

Family = Literal["gradient", "population", "external", "composite"]
GradientMode = Literal["autograd", "fd", "none"]
QuasiNewton = Literal["dense", "limited"]

#: The roles composites fill with registered methods. A method takes a role by declaring it in
#: ``register(roles={role: rank})`` (lower ranks are preferred) and may declare the options it
#: wants in that role (``role_options``); composites pick among the methods that declare a role
#: and fit the problem (:func:`candidates`), so a method added later is found without any edit.
ROLES = {
    "local": "a deterministic local search that polishes a point (a chain's 'local' phase)",
    "global": "a gradient-free global search (auto on noisy values and as its fallback; the "
    "first phase of a chain by default)",
    "constrained": "a method that handles constraints itself (auto's plan for constraints)",
    "merit": "the default inner method of penalty and augmented_lagrangian",
    "from_x0": "a limited-memory method run from x0 before restarts (auto in large dimension)",
    "restarts": "a composite that runs raced cohorts of batched local searches from many "
    "starts (auto's plans with a gradient or differences)",
    "large_scale": "a gradient-free search whose memory and time per generation are linear in "
    "the dimension (auto's global search above a dimension)",
    "mixed": "a search that models a space's integers and categoricals natively (auto on a "
    "search space with discrete parameters)",
}


@dataclass(frozen=True)
class Facts:
    """What a run offers a method: the only input of :meth:`MethodInfo.refusal`.

    ``gradient`` is the objective's gradient mode; ``subject`` names the problem in messages
    (``"objective 'f'"``, ``"problem rosenbrock"``).
    """

    gradient: GradientMode = "autograd"
    bounded: bool = False
    constrained: bool = False
    executor: bool = False
    subject: str = "the objective"

    @property
    def has_gradient(self) -> bool:
        """True when gradients can be had (autograd or finite differences)."""
        return self.gradient != "none"


@dataclass(frozen=True)
class MethodInfo:
    """What a method is and can do; tests and ``minimize`` select methods by these flags."""

    name: str
    family: Family
    needs_grad: bool
    supports_bounds: bool
    supports_constraints: bool = False
    stochastic: bool = False
    is_global: bool = False
    requires_bounds: bool = False
    summary: str = ""
    options: tuple[Param, ...] = ()
    batched_lanes: bool = False  # multistart can run it as lanes of one batched search
    quasi_newton: QuasiNewton | None = None  # its curvature model: a dense matrix or pairs
    linear_memory: bool = False  # memory and time per generation O(popsize * dimension)
    dense_matrices: int = 0  # d x d float64 matrices its state holds (memory grows as d^2)
    roles: tuple[tuple[str, int], ...] = ()  # (role, rank) for the roles of ROLES it takes
    role_options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The flags as a plain dict (for tables and JSON); ``options`` as their listing."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["options"] = [p.as_dict() for p in self.options]
        out["roles"] = dict(self.roles)
        out["role_options"] = {role: self.options_for(role) for role, _ in self.role_options}
        return out

    def rank(self, role: str) -> int | None:
        """This method's rank for ``role`` (lower is preferred); None when it does not take it."""
        return dict(self.roles).get(role)

    def options_for(self, role: str) -> dict[str, Any]:
        """The options this method declared for ``role`` (empty when none)."""
        return dict(dict(self.role_options).get(role, ()))

    def fits(self, facts: Facts) -> bool:
        """True when this method can run on a problem with these facts."""
        return self.refusal(facts) is None

    def refusal(self, facts: Facts, role: str = "method") -> str | None:
        """Why this method cannot run on a problem with ``facts`` (None when it can).

        The one capability check: ``minimize`` raises it, the arena reports it as a skip
        reason, composites use it for their inner methods. The message names the way out.
        """
        who = f"{role} {self.name!r}"
        if self.needs_grad and not facts.has_gradient:
            return (
                f"{who} needs a gradient, but {facts.subject} has none "
                f"(gradient={facts.gradient!r}). Use a gradient-free method that fits the "
                f"problem ({_gradient_free(facts)}), or build the objective with "
                "gradient='fd' for finite differences (each probe is counted): "
                "Objective(f, gradient='fd') for a torch function, "
                "Objective.from_numpy(f, gradient='fd') for a numpy one"
            )
        if facts.bounded and not self.supports_bounds:
            return (
                f"{who} does not support bounds; methods that do: "
                f"{_names(lambda i: i.supports_bounds)}"
            )
        if not facts.bounded and self.requires_bounds:
            return f"{who} searches a box and needs bounds=(lower, upper)"
        if facts.constrained and not self.supports_constraints:
            return (
                f"{who} cannot handle constraints and optarena never drops them "
                f"silently. Use a method that supports them "
                f"({_names(lambda i: i.supports_constraints) or 'none registered'}), or wrap "
                f"this one: optarena.Penalty({self.name!r}) or "
                f"optarena.AugmentedLagrangian({self.name!r})"
            )
        if facts.executor and self.family == "gradient" and facts.gradient != "fd":
            return (
                f"{who} evaluates one point and its gradient at a time, so executor= would "
                "never be used. Workers evaluate batches: the generations of a population "
                f"method ({_names(lambda i: i.family == 'population')}) or the probes of "
                "finite-difference gradients (an Objective built with gradient='fd')"
            )
        return None


def _names(pred: Callable[[MethodInfo], bool]) -> str:
    return ", ".join(i.name for i in method_infos() if pred(i))


def _gradient_free(facts: Facts) -> str:
    """The methods that run on a problem with ``facts`` without a gradient: the gradient-free
    methods that fit it (bounds required or refused, constraints), then the composites, which
    choose gradient-free inner methods by themselves when none is named."""
    free = dataclasses.replace(facts, gradient="none")
    fit = [i for i in method_infos() if not i.needs_grad and i.fits(free)]
    own = ", ".join(i.name for i in fit if i.family != "composite") or "none registered"
    composites = [i.name for i in fit if i.family == "composite"]
    if not composites:
        return own
    return f"{own}; or, with their inner methods left to choose, {', '.join(composites)}"


_REGISTRY: dict[str, type[Method]] = {}
M = TypeVar("M", bound="type[Method]")


def register(
    name: str,
    *,
    family: Family,
    needs_grad: bool,
    supports_bounds: bool,
    supports_constraints: bool = False,
    stochastic: bool = False,
    is_global: bool = False,
    requires_bounds: bool = False,
    batched_lanes: bool = False,
    quasi_newton: QuasiNewton | None = None,
    linear_memory: bool = False,
    dense_matrices: int = 0,
    roles: Mapping[str, int] | None = None,
    role_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[M], M]:
    """Class decorator adding a method (a frozen dataclass of hyperparameters) to the registry.

    ``roles`` maps roles of :data:`ROLES` to this method's rank in each (lower is preferred);
    ``role_options`` gives the options it wants when a composite uses it in a role.
    ``linear_memory`` declares memory and time per generation linear in the dimension (no
    d x d matrix): the methods for 10^3-10^6 parameters. ``dense_matrices`` counts the d x d
    float64 matrices the method's state holds at once (its memory, checked against
    ``minimize(memory=)`` before the run).
    """
    roles = dict(roles or {})
    role_options = {r: dict(o) for r, o in (role_options or {}).items()}
    unknown = sorted((set(roles) | set(role_options)) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {unknown} for method {name!r}; roles: {sorted(ROLES)}")
    if not set(role_options) <= set(roles):
        raise ValueError(f"method {name!r} gives options for roles it does not take")

    def deco(cls: M) -> M:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a method named {name!r} is already registered")
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"method {name!r} must be a dataclass")
        doc = (cls.__doc__ or "").strip().splitlines()
        cls.info = MethodInfo(  # type: ignore[attr-defined]
            name=name,
            family=family,
            needs_grad=needs_grad,
            supports_bounds=supports_bounds,
            supports_constraints=supports_constraints,
            stochastic=stochastic,
            is_global=is_global,
            requires_bounds=requires_bounds,
            summary=doc[0] if doc else "",
            options=declared_params(cls),
            batched_lanes=batched_lanes,
            quasi_newton=quasi_newton,
            linear_memory=linear_memory,
            dense_matrices=dense_matrices,
            roles=tuple(sorted(roles.items())),
            role_options=tuple(
                (r, tuple(sorted(o.items()))) for r, o in sorted(role_options.items())
            ),
        )
        _REGISTRY[name] = cls
        return cls

    return deco


def unregister(name: str) -> None:
    """Remove a method from the registry (for methods registered at run time, e.g. in tests)."""
    if name not in _REGISTRY:
        raise ValueError(f"no method named {name!r} is registered")
    del _REGISTRY[name]


def candidates(role: str, facts: Facts) -> list[MethodInfo]:
    """The registered methods that take ``role`` and can run on a problem with ``facts``,
    preferred first (by rank, then name)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {sorted(ROLES)}")
    found = [i for i in method_infos() if i.rank(role) is not None and i.fits(facts)]
    return sorted(found, key=lambda i: (i.rank(role), i.name))


def _ensure_loaded() -> None:
    from . import _load_all

    _load_all()


def method_infos() -> list[MethodInfo]:
    """Capabilities of every registered method, sorted by name."""
    _ensure_loaded()
    return [_REGISTRY[n].info for n in sorted(_REGISTRY)]  # type: ignore[attr-defined]


def get_method_class(name: str) -> type[Method]:
    """The class registered under ``name``; ``ValueError`` naming close matches if unknown."""
    _ensure_loaded()
    key = name.strip().lower().replace("-", "_")
    if key in _REGISTRY:
        return _REGISTRY[key]
    # scipy's spellings without our underscores: "L-BFGS-B" is lbfgsb
    bare = {n.replace("_", ""): n for n in _REGISTRY}
    if key.replace("_", "") in bare:
        return _REGISTRY[bare[key.replace("_", "")]]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"unknown method {name!r}.{hint} Registered methods: {', '.join(sorted(_REGISTRY))} "
        "(optarena.methods() lists them with their capabilities)"
    )


def _misspelled(unknown: list[str], caller: Callable[..., Any] | None, fields: set[str]) -> str:
    """ " (did you mean budget= for buget=, of minimize()?)": keywords close to an option of
    the method or to an argument of the caller."""
    said = []
    own = [] if caller is None else list(inspect.signature(caller).parameters)
    for u in unknown:
        if m := difflib.get_close_matches(u, sorted(fields), n=1, cutoff=0.75):
            said.append(f"{m[0]}= for {u}=")
        elif m := difflib.get_close_matches(u, own, n=1, cutoff=0.75):
            said.append(f"{m[0]}= for {u}=, of {caller.__name__}()")  # type: ignore[union-attr]
    return f" (did you mean {'; '.join(said)}?)" if said else ""


def resolve_method(
    method: str | Method, options: dict[str, Any], caller: Callable[..., Any] | None = None
) -> Method:
    """A method instance from a name plus options, or an instance (then no options allowed).
    ``caller``: the public function whose extra keywords are the options (``minimize``), so
    an unknown one close to its own arguments (``buget=``) is named as a misspelling."""
    from ._base import Method

    if isinstance(method, Method):
        if options:
            raise TypeError(
                f"options {sorted(options)} were given with a method instance; set them on "
                f"the instance instead, e.g. dataclasses.replace(method, **options)"
            )
        return method
    if not isinstance(method, str):
        raise TypeError(
            f"method must be a registered name or a Method instance, got {type(method).__name__}"
        )
    if ">" in method:
        # "cmaes>lbfgs": a chain of phases, built by the registered "chain" method
        phases = tuple(part.strip() for part in method.split(">"))
        if not all(phases):
            raise ValueError(f"empty phase in method chain {method!r}")
        return get_method_class("chain")(*phases, **options)  # type: ignore[call-arg]
    cls = get_method_class(method)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(options) - fields)
    if unknown:
        who = f"method {cls.info.name!r}"  # type: ignore[attr-defined]
        if caller is not None:
            who = f"{caller.__name__}() nor {who}"
        raise TypeError(
            f"unknown option(s) {unknown}: {'neither ' * (caller is not None)}{who} takes "
            f"them{_misspelled(unknown, caller, fields)}; the method's options are "
            f"{sorted(fields) or 'none'}{habit_hints(unknown)}"
        )
    return cls(**options)
