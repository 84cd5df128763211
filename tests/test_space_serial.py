"""Malformed space dicts and JSON: every error says what is wrong and where (the parameter, a
nested one by the option it hangs from), never a bare KeyError or TypeError from inside."""

from __future__ import annotations

import json
import re

import pytest

from optarena.space import Choice, Int, Real, Space


def real(**kw) -> dict:
    return {"type": "real", "lo": 0.0, "hi": 1.0, **kw}


def wrap(params) -> dict:
    return {"version": 1, "params": params}


def branchy(branch_a) -> dict:
    return wrap({"o": {"type": "choice", "options": ["a", "b"], "branches": [branch_a, {}]}})


BAD = {
    "missing hi": (
        wrap({"lr": {"type": "real", "lo": 0.1}}),
        ValueError,
        "the real 'lr' is missing 'hi'",
    ),
    "missing lo and hi": (
        wrap({"w": {"type": "int"}}),
        ValueError,
        "the int 'w' is missing 'lo' and 'hi'",
    ),
    "missing value": (
        wrap({"e": {"type": "fixed"}}),
        ValueError,
        "the fixed 'e' is missing 'value'",
    ),
    "missing options": (
        wrap({"c": {"type": "choice"}}),
        ValueError,
        "the choice 'c' is missing 'options'",
    ),
    "missing type": (
        wrap({"lr": {"lo": 0, "hi": 1}}),
        ValueError,
        "'lr' must be a dict with 'type'",
    ),
    "unknown type": (
        wrap({"lr": {"type": "reel"}}),
        ValueError,
        "'lr' must be .* got 'type' 'reel'",
    ),
    "unhashable type": (
        wrap({"lr": {"type": ["real"]}}),
        ValueError,
        "'lr' must be a dict with 'type'",
    ),
    "not a dict": (wrap({"lr": 3}), ValueError, "'lr' must be a dict .* got int 3"),
    "unknown key": (
        wrap({"lr": real(step=2)}),
        ValueError,
        r"unknown key\(s\) \['step'\] for the real 'lr'",
    ),
    "lo a string": (
        wrap({"lr": real(lo="0")}),
        TypeError,
        "the real 'lr': Real: lo must be a real number",
    ),
    "lo above hi": (wrap({"lr": real(lo=2.0)}), ValueError, "the real 'lr': .*lo must be below hi"),
    "log not a bool": (
        wrap({"lr": real(log="yes")}),
        ValueError,
        "'log' of the real 'lr' must be true or false",
    ),
    "ordered not a bool": (
        wrap({"c": {"type": "choice", "options": [1, 2], "ordered": 1}}),
        ValueError,
        "'ordered' of the choice 'c'",
    ),
    "options not a list": (
        wrap({"c": {"type": "choice", "options": "ab"}}),
        ValueError,
        "the choice 'c': 'options' must be a list",
    ),
    "no option": (
        wrap({"c": {"type": "choice", "options": []}}),
        ValueError,
        "the choice 'c': .*at least one",
    ),
    "repeated option": (
        wrap({"c": {"type": "choice", "options": [1, 1]}}),
        ValueError,
        "the choice 'c': .*twice",
    ),
    "no version": ({"params": {}}, ValueError, "no 'version' key"),
    "wrong version": (wrap({}) | {"version": 2}, ValueError, "version 2 is not 1"),
    "version true": (wrap({}) | {"version": True}, ValueError, "version True is not 1"),
    "no params": ({"version": 1}, ValueError, "no 'params' key"),
    "params a list": (wrap([real()]), ValueError, "'params' must be a dict of parameters"),
    "unknown top key": (wrap({}) | {"x": 1}, ValueError, r"unknown key\(s\) \['x'\]"),
    "not a dict at all": ([1, 2], ValueError, "a space dict must be a dict"),
    "nested missing hi": (
        branchy({"m": {"type": "int", "lo": 0}}),
        ValueError,
        "the int 'm' under option 'a' of 'o' is missing 'hi'",
    ),
    "nested twice": (
        branchy({"p": {"type": "choice", "options": ["x"], "branches": [{"q": real(lo=5.0)}]}}),
        ValueError,
        "the real 'q' under option 'x' of 'p' under option 'a' of 'o': .*lo must be below hi",
    ),
    "branch not a dict": (
        branchy([real()]),
        ValueError,
        "the branch of option 'a' of 'o' must be a dict",
    ),
    "one branch short": (
        wrap({"o": {"type": "choice", "options": ["a", "b"], "branches": [{}]}}),
        ValueError,
        r"the choice 'o': 'branches' must be a list of one dict of parameters per option \(2\)",
    ),
    "unhashable conditional option": (
        wrap({"o": {"type": "choice", "options": [["a"], "b"], "branches": [{}, {}]}}),
        ValueError,
        "the choice 'o': the options of a conditional choice name its branches",
    ),
    "repeated conditional option": (
        wrap({"o": {"type": "choice", "options": ["a", "a"], "branches": [{}, {}]}}),
        ValueError,
        "the choice 'o': the options of a conditional choice must be distinct",
    ),
}


@pytest.mark.parametrize(("data", "error", "match"), BAD.values(), ids=BAD.keys())
def test_a_malformed_space_dict_is_refused_naming_the_parameter_and_the_fault(
    data, error, match
) -> None:
    with pytest.raises(error, match=match):
        Space.from_dict(data)
    with pytest.raises(error, match=match):  # the JSON path reads the same dict
        Space.from_json(json.dumps(data))


def test_text_that_is_not_a_space_is_refused_as_a_value_error() -> None:
    with pytest.raises(ValueError):
        Space.from_json("not json")
    with pytest.raises(ValueError, match=re.escape("got NoneType")):
        Space.from_json("null")


def test_well_formed_nested_spaces_still_read_back() -> None:
    sp = Space({"lr": Real(1e-3, 1.0, log=True), "o": Choice({"a": {"m": Int(0, 3)}, "b": {}})})
    assert Space.from_json(sp.to_json()) == sp
    assert Space.from_dict(wrap({"lr": real()})) == Space({"lr": Real(0.0, 1.0)})  # log: default
