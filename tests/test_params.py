"""Declared options, checked over the whole registry: a method is covered the day it is added.

For every registered method and every option it declares with ``param(...)``, the values the
declaration refuses (``bad_values``) raise ValueError naming the option, the defaults construct,
an unknown option is a TypeError before any evaluation, and ``optarena.methods()`` lists every
option with a one-line meaning. The second half checks ``_params`` itself on a throwaway method.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

import pytest
import torch

import optarena as oa
from optarena.methods import Method, get_method_class
from optarena.methods._params import Param, bad_values, declared_params, param, validate_params

NAMES = [i.name for i in oa.methods()]


def _label(value: Any) -> str:
    return (
        repr(value) if isinstance(value, str | int | float | type(None)) else type(value).__name__
    )


BAD_CASES = [
    pytest.param(name, p.name, bad, id=f"{name}-{p.name}-{_label(bad)}")
    for name in NAMES
    for p in declared_params(get_method_class(name))
    for bad in bad_values(p)
]


def _option_pattern(option: str) -> str:
    return rf"(?<![\w]){re.escape(option)}(?![\w])"


# -- the registry ----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "option", "bad"), BAD_CASES)
def test_refused_value_raises_value_error_naming_the_option(
    name: str, option: str, bad: Any
) -> None:
    cls = get_method_class(name)
    with pytest.raises(ValueError, match=_option_pattern(option)):
        cls(**{option: bad})


@pytest.mark.parametrize("name", NAMES)
def test_defaults_construct_and_are_accepted(name: str) -> None:
    cls = get_method_class(name)
    method = cls()  # a method may normalize a value (None to a chosen inner method)
    for p in declared_params(cls):
        assert p.problem(p.default) is None, (p.name, p.default)
        assert p.problem(getattr(method, p.name)) is None, p.name


@pytest.mark.parametrize("name", NAMES)
def test_every_bad_value_is_refused_by_its_declaration(name: str) -> None:
    for p in declared_params(get_method_class(name)):
        values = bad_values(p)
        assert values, f"{name}.{p.name} has no value its declaration refuses"
        for bad in values:
            assert p.problem(bad) is not None, (p.name, bad)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_type_error_before_any_evaluation(name: str) -> None:
    calls: list[int] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return (x**2).sum()

    kw: dict[str, Any] = (
        {"bounds": (-1.0, 1.0)} if get_method_class(name).info.requires_bounds else {}
    )
    with pytest.raises(TypeError, match="unknown option"):
        oa.minimize(f, torch.zeros(2, dtype=torch.float64), method=name, budget=10, bogus=1, **kw)
    assert not calls


@pytest.mark.parametrize("name", NAMES)
def test_methods_list_every_declared_option_with_a_one_line_meaning(name: str) -> None:
    info = next(i for i in oa.methods() if i.name == name)
    cls = get_method_class(name)
    assert [p.name for p in info.options] == [p.name for p in declared_params(cls)]
    for p in info.options:
        assert p.doc.strip(), f"{name}.{p.name} has no meaning"
        assert "\n" not in p.doc, f"{name}.{p.name}: the meaning is one line"
        listed = info.as_dict()["options"]
        assert {"name": p.name, "default": p.default} == {
            k: v
            for k, v in next(o for o in listed if o["name"] == p.name).items()
            if k != "accepts" and k != "doc"
        }


@pytest.mark.parametrize("name", NAMES)
def test_every_init_field_is_declared_with_param(name: str) -> None:
    cls = get_method_class(name)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    declared = [p.name for p in declared_params(cls)]
    missing = [f for f in fields if f not in declared]
    assert not missing, f"{name}: options not declared with param(...): {missing}"


# -- _params on a throwaway method -------------------------------------------------------------
def _no_odd(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int):
        return "must be an int"
    return "must be even" if v % 2 else None


@dataclass(frozen=True)
class _Toy(Method):
    """A throwaway method with one option of each kind.

    Args:
        count: how many things, described only here.
    """

    count: int = param(4, ge=1)
    rate: float = param(0.5, "a rate in (0, 1)", gt=0, lt=1)
    limit: float | None = param(None, "optional positive limit", gt=0)
    mode: str = param("a", "a mode", choices=("a", "b"))
    flag: bool = param(True, "a switch")
    even: int = param(2, "an even number", check=_no_odd)
    items: list[int] = param([1, 2], "a list default, copied per instance")  # noqa: RUF009

    def validate(self) -> None:
        if self.mode == "b" and self.count > 10:
            raise ValueError("mode='b' takes count <= 10")


def test_toy_declarations_are_read_from_annotations_and_docstring() -> None:
    ps = {p.name: p for p in declared_params(_Toy)}
    assert list(ps) == ["count", "rate", "limit", "mode", "flag", "even", "items"]
    assert ps["count"].doc == "how many things, described only here"
    assert (ps["count"].kind, ps["rate"].kind, ps["flag"].kind) == ("int", "float", "bool")
    assert ps["limit"].optional and not ps["rate"].optional
    assert ps["rate"].constraint() == "a finite number > 0 and < 1"
    assert ps["limit"].constraint() == "a finite number > 0 or None"
    assert ps["mode"].constraint() == "one of 'a', 'b'"
    assert ps["items"].default == [1, 2]


@pytest.mark.parametrize(
    ("kw", "phrase"),
    [
        ({"count": 0}, "count must be >= 1"),
        ({"count": 2.0}, "count must be an int"),
        ({"count": True}, "count must be an int"),
        ({"rate": 1.0}, "rate must be < 1"),
        ({"rate": 0}, "rate must be > 0"),
        ({"rate": math.nan}, "rate must be a finite number"),
        ({"rate": math.inf}, "rate must be a finite number"),
        ({"rate": "0.5"}, "rate must be a number"),
        ({"rate": None}, "rate cannot be None"),
        ({"limit": -1.0}, "limit must be > 0"),
        ({"mode": "c"}, "mode must be one of 'a', 'b'"),
        ({"flag": 1}, "flag must be True or False"),
        ({"even": 3}, "even must be even"),
    ],
)
def test_toy_refusals_say_what_was_given_and_what_is_taken(kw: dict, phrase: str) -> None:
    ((name, value),) = kw.items()
    with pytest.raises(ValueError) as err:
        _Toy(**kw)
    text = str(err.value)
    assert text.startswith(f"{name}={value!r} is not accepted by _Toy: {phrase}")
    assert f"{name}: " in text  # the option's meaning follows


def test_toy_accepts_its_range_and_none_where_declared() -> None:
    t = _Toy(count=1, rate=0.999, limit=None, mode="b", flag=False, even=0)
    assert (t.count, t.limit, t.mode) == (1, None, "b")
    assert _Toy(limit=3).limit == 3  # an int where a float is declared


def test_validate_runs_after_the_declared_checks() -> None:
    with pytest.raises(ValueError, match="count <= 10"):
        _Toy(mode="b", count=11)
    with pytest.raises(ValueError, match="mode must be one of"):  # declared check first
        _Toy(mode="c", count=11)


def test_list_defaults_are_not_shared() -> None:
    a, b = _Toy(), _Toy()
    assert a.items == b.items and a.items is not b.items


def test_validate_params_on_an_object_with_declared_fields() -> None:
    t = _Toy()
    object.__setattr__(t, "count", -3)
    with pytest.raises(ValueError, match="count must be >= 1"):
        validate_params(t)


def test_bad_values_follow_the_declaration() -> None:
    p = Param(name="n", doc="d", default=3, kind="int", ge=1, le=9)
    assert bad_values(p) == ["1", True, 1.5, 0, 10, None]
    q = Param(name="x", doc="d", default=None, kind="float", optional=True, gt=0)
    values = bad_values(q)
    assert None not in values and 0 in values
    assert all(q.problem(v) is not None for v in values)
    r = Param(name="c", doc="d", default="a", kind="str", choices=("a", "b"))
    assert all(r.problem(v) is not None for v in bad_values(r))
    s = Param(name="z", doc="d", default=2, check=_no_odd)
    assert len(bad_values(s)) == 2  # object() and None
    assert all(s.problem(v) is not None for v in bad_values(s))
