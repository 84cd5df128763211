"""The HTML report of a results store, checked as written and as headless Chromium shows it."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import sqlite3
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from optarena.bench import Spec, Store, StoreError, run_spec
from optarena.plot.report import write_report

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
    "--window-size=1280,3000",
]
# Test-only probe appended to a copy of the page: reports how many images decoded.
IMAGE_PROBE = """<script>window.addEventListener("load", () => {
  const ims = [...document.images];
  const ok = ims.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.getElementById("probe").textContent = "IMAGES " + ok + "/" + ims.length;
});</script><pre id="probe"></pre>"""


class PageParser(HTMLParser):
    """Collects image sources, run-table rows and any reference to another resource."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.rows: list[list[str]] = []
        self.external: list[str] = []
        self._in_runs = False
        self._table_id: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.external.append(tag)
        if tag == "tbody" and self._table_id == "runs":
            self._in_runs = True
        if tag == "table":
            self._table_id = a.get("id")
        if self._in_runs and tag == "tr":
            self.rows.append([])
        if self._in_runs and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_runs = False
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> PageParser:
    p = PageParser()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store") / "results.sqlite"
    spec = Spec.from_dict(
        {
            "name": "report-test",
            "seeds": [0, 1],
            "budget": 60,
            "problems": ["rosenbrock", {"name": "sphere", "params": {"dim": 3}}, "flower"],
            "methods": ["lbfgs", "nelder_mead", "random_search"],
        }
    )
    run_spec(spec, path, progress=False)
    return path


def store_runs(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT run_id, problem, label FROM runs ORDER BY run_id").fetchall()


@pytest.fixture(scope="module")
def report(store, tmp_path_factory) -> Path:
    return write_report(store, tmp_path_factory.mktemp("report"), title="Report <test>")


def test_report_is_self_contained_and_lists_every_run(store, report):
    html = report.read_text(encoding="utf-8")
    assert report.name == "index.html" and html.startswith("<!DOCTYPE html>")
    assert "<title>Report &lt;test&gt;</title>" in html
    assert not re.search(r"https?://|url\(|@import", html), "the page references another file"
    page = parse(html)
    assert page.external == []
    runs = store_runs(store)
    assert len(runs) >= 9
    assert sorted(int(r[0]) for r in page.rows) == [r[0] for r in runs]
    for row in page.rows:
        assert len(row) == 12 and row[4] in ("ok", "error")
        assert row[11] == "" or row[4] == "error"  # the error column holds failures' messages
    problems = {r[1] for r in runs}
    # one convergence picture per problem, a landscape per 2-D problem, and the ECDF
    assert len(page.images) == len(problems) + 2 + 1
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        im = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        assert im.format == "PNG" and im.size[0] >= 300
        assert np.asarray(im.convert("L"), dtype=float).std() > 10


def test_report_shows_the_error_message_of_a_failed_run(tmp_path):
    from optarena.bench.runner import record_from_result

    spec = Spec.from_dict({"name": "err", "budget": 10, "problems": ["rosenbrock"],
                           "methods": ["nelder_mead"]})  # fmt: skip
    (task,) = spec.plan().tasks
    path = tmp_path / "err.sqlite"
    with Store(path) as st:
        st.write(record_from_result(task, None, "error", "ZeroDivisionError: <broke> at eval 3"))
    page = parse(write_report(path, tmp_path / "out").read_text(encoding="utf-8"))
    (row,) = page.rows
    assert row[4] == "error" and row[11] == "ZeroDivisionError: <broke> at eval 3"


def test_report_of_an_empty_store_and_of_a_missing_one(tmp_path):
    Store(tmp_path / "empty.sqlite").close()
    html = write_report(tmp_path / "empty.sqlite", tmp_path / "out").read_text(encoding="utf-8")
    assert "The store holds no runs." in html and "<img" not in html
    with pytest.raises(StoreError, match="no store"):
        write_report(tmp_path / "missing.sqlite", tmp_path / "out2")


BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def chromium() -> str:
    """A Chromium-family browser already on the machine ($CHROMIUM, then PATH); tests never
    install software, so without one the test skips and names `make browser`, which sets one up."""
    wanted = os.environ.get("CHROMIUM")
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            pytest.fail(f"CHROMIUM={wanted!r} is not an executable")
        return found
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium-family browser found (looked for $CHROMIUM and "
        f"{', '.join(BROWSER_NAMES)} on PATH); `make browser` installs one"
    )


def run_chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_report_in_headless_chromium(store, report, tmp_path):
    shot = tmp_path / "shot.png"
    done = run_chromium(report, tmp_path / "profile1", f"--screenshot={shot}", "--dump-dom")
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], f"console messages: {console}"
    im = Image.open(shot)
    assert im.size == (1280, 3000)
    assert np.asarray(im.convert("L"), dtype=float).std() > 10
    shown = parse(done.stdout)
    assert sorted(int(r[0]) for r in shown.rows) == [r[0] for r in store_runs(store)]
    probe = report.with_name("probe.html")
    probe.write_text(report.read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    done = run_chromium(probe, tmp_path / "profile2", "--dump-dom")
    n = len(parse(report.read_text()).images)
    assert f"IMAGES {n}/{n}" in done.stdout, re.findall(r"IMAGES \d+/\d+", done.stdout)


def test_browser_lookup_skips_without_installing(tmp_path, monkeypatch):
    """No browser on PATH: the lookup skips with its reason; an `apt-get` on PATH never runs."""
    marker = tmp_path / "apt-get-ran"
    apt = tmp_path / "apt-get"
    apt.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CHROMIUM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="make browser"):
        chromium()
    assert not marker.exists()
