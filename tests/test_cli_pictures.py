"""The `optarena plot` and `optarena report` commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from optarena.cli import main


@pytest.mark.parametrize(
    ("problem", "methods", "kind", "name"),
    [
        ("rosenbrock", ["adam:lr=0.5", "pso"], "convergence", "c.png"),
        ("rosenbrock", ["cmaes"], "landscape", "l.png"),
        ("wavy_bowl", ["lbfgs:line_search='strong_wolfe'"], "curve", "w.png"),
        ("flower", ["pso"], "animation", "a.gif"),
    ],
)
def test_plot_command_writes_picture(
    tmp_path: Path, problem: str, methods: list[str], kind: str, name: str
) -> None:
    out = tmp_path / name
    args = ["plot", problem, "--kind", kind, "--budget", "200", "--out", str(out)]
    for m in methods:
        args += ["-m", m]
    assert main(args) == 0
    assert out.exists() and out.stat().st_size > 1000


def test_plot_command_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", "nope", "-m", "pso", "--out", str(tmp_path / "x.png")]) == 1
    assert "unknown problem" in capsys.readouterr().err
    assert main(["plot", "sphere", "-m", "adam:lr", "--out", str(tmp_path / "x.png")]) == 1
    assert "key=value" in capsys.readouterr().err


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "tiny"\nbudget = 50\nseeds = [0]\n'
        '[[problems]]\nname = "rosenbrock"\n'
        '[[methods]]\nname = "lbfgs"\n[[methods]]\nname = "pso"\n',
        encoding="utf-8",
    )
    store = tmp_path / "r.sqlite"
    assert (
        main(["bench", str(spec), "--store", str(store), "--no-progress", "--format", "none"]) == 0
    )
    assert main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert "pso" in page and "lbfgs" in page
    assert main(["report", str(tmp_path / "missing.sqlite"), "--out", str(tmp_path)]) == 1


def test_bench_on_a_local_dask_cluster(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "tiny"\nbudget = 40\nseeds = [0, 1]\n'
        '[[problems]]\nname = "sphere"\nparams = {dim = 3}\n'
        '[[methods]]\nname = "random_search"\n',
        encoding="utf-8",
    )
    store = tmp_path / "r.sqlite"
    args = ["bench", str(spec), "--store", str(store), "--no-progress", "--format", "none"]
    assert main([*args, "--dask", "local:1"]) == 0
    import sqlite3

    with sqlite3.connect(store) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 2
    assert main([*args, "--dask", "local:1", "--workers", "2"]) == 1  # exclusive options
