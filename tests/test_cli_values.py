"""One reader of KEY=VALUE for every subcommand: both old spellings, lists, quotes, listings."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

import optarena as oa
from optarena.cli import main
from optarena.cli.values import VALUE_HELP, parse_method, parse_pairs, parse_value, split_top


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),  # the TOML spelling `run -o` took
        ("True", True),  # the Python spelling `plot -m` took
        ("FALSE", False),
        ("none", None),
        ("None", None),
        ("null", None),
        ("3", 3),
        ("-2", -2),
        ("1e-3", 1e-3),
        ("0.5", 0.5),
        (".5", 0.5),
        ("-inf", -math.inf),
        ("[1, 2.5, 'a']", [1, 2.5, "a"]),
        ("[]", []),
        ("(1,2)", [1, 2]),
        ("[[1, 2], [3]]", [[1, 2], [3]]),
        ("'strong_wolfe'", "strong_wolfe"),
        ('"a,b"', "a,b"),
        ("strong_wolfe", "strong_wolfe"),
        ("  reflect ", "reflect"),
        ("1.2.3", "1.2.3"),
    ],
)
def test_parse_value_spellings(text: str, value: object) -> None:
    got = parse_value(text)
    assert got == value and type(got) is type(value)


def test_pairs_and_method_options_read_the_same() -> None:
    pairs = parse_pairs(["lr=0.1", "nesterov=true", "betas=[0.9,0.99]", "name='x,y'"], "--option")
    name, opts = parse_method("adam:lr=0.1,nesterov=True,betas=[0.9, 0.99],name='x,y'")
    assert name == "adam" and opts == pairs
    assert pairs == {"lr": 0.1, "nesterov": True, "betas": [0.9, 0.99], "name": "x,y"}
    assert parse_method("pso") == ("pso", {})
    assert split_top("a=[1,2],b='x,y',c=(3,4)") == ["a=[1,2]", "b='x,y'", "c=(3,4)"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_pairs(["lr"], "--option"), "must look like key=value"),
        (lambda: parse_pairs(["lr=1", "lr=2"], "--option"), "given twice"),
        (lambda: parse_method("adam:lr"), "must look like key=value"),
        (lambda: parse_method("adam:betas=[1,2"), "unclosed"),
    ],
)
def test_bad_values_say_what_to_type(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_run_and_plot_read_both_old_boolean_spellings(capsys, tmp_path) -> None:
    got = []
    for spelling in ("true", "True"):  # `run -o` took TOML's, `plot -m` Python's
        argv = ["run", "sphere", "-m", "adam", "-b", "30", "-o", f"amsgrad={spelling}", "--json"]
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        got.append((out["options"], out["fun"], out["x"]))
        png = tmp_path / f"{spelling}.png"
        assert main(["plot", "sphere", "-m", f"adam:amsgrad={spelling}", "-b", "30",
                     "--out", str(png)]) == 0  # fmt: skip
        assert png.exists() and capsys.readouterr().out.strip() == str(png)
    assert got[0] == got[1] and got[0][0] == {"amsgrad": True}


def test_help_documents_the_spellings(capsys) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert " ".join(VALUE_HELP[1:40].split()) in out
    assert main(["run", "--help"]) == 0
    assert "none/null" in capsys.readouterr().out


def test_methods_lists_every_method_and_names_option_listings(capsys) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for info in oa.methods():
        assert f"| {info.name} " in out
    assert "optarena methods NAME" in out


@pytest.mark.parametrize("name", [i.name for i in oa.methods()])
def test_methods_name_prints_every_declared_option(capsys, name: str) -> None:
    info = next(i for i in oa.methods() if i.name == name)
    assert main(["methods", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{name} ({info.family})")
    for p in info.options:
        row = next(line for line in out.splitlines() if line.startswith(f"| {p.name} "))
        assert p.constraint() in row and p.doc in row
        assert (repr(p.default) if isinstance(p.default, str) else str(p.default)) in row
    if not info.options:
        assert "declares no options" in out
    assert main(["methods", name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == name and len(data["options"]) == len(info.options)


def test_methods_name_lists_declared_options_of_a_new_method(capsys) -> None:
    from optarena.methods import _registry
    from optarena.methods._params import param

    @dataclasses.dataclass(frozen=True)
    class Probe:
        """A listing probe."""

        width: float = param(0.5, "how wide a step is", gt=0)
        mode: str = param("fast", "which way to go", choices=("fast", "slow"))

    _registry.register("cli_listing_probe", family="population", needs_grad=False,
                       supports_bounds=True)(Probe)  # fmt: skip
    try:
        assert main(["methods", "cli_listing_probe"]) == 0
        out = capsys.readouterr().out
    finally:
        _registry._REGISTRY.pop("cli_listing_probe")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:5]]
            for line in out.splitlines() if line.startswith("| ")}  # fmt: skip
    width, mode = Probe.info.options  # type: ignore[attr-defined]
    assert rows["width"] == ["0.5", width.constraint(), "how wide a step is"]
    assert "> 0" in width.constraint()
    assert rows["mode"] == ["'fast'", mode.constraint(), "which way to go"]
    assert "'fast', 'slow'" in mode.constraint()
    assert main(["methods", "no_such_method"]) == 1
    assert "unknown method" in capsys.readouterr().err
