"""The study pictures: trials tables read from minimize(space=...) and from a store, the data
behind each picture, the parameter importance, the figures and the report's study section."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

import optarena as oa  # noqa: E402
from optarena import plot  # noqa: E402
from optarena.bench.store import Store  # noqa: E402
from optarena.plot.data.study_views import best_value_data, parallel_data  # noqa: E402
from optarena.space import Choice, Int, Real, Space  # noqa: E402

SPACE = Space(
    {
        "lr": Real(1e-4, 1e-1, log=True),
        "width": Int(8, 256, log=True),
        "depth": Int(1, 3),
        "act": Choice(["relu", "tanh", "gelu"]),
        "opt": Choice({"adam": {"beta1": Real(0.8, 0.99)}, "sgd": {"momentum": Real(0.0, 0.9)}}),
        "epochs": 3,
    }
)
OFFSET = {"relu": 0.0, "tanh": 0.5, "gelu": 0.2}


def _loss(c: dict) -> float:
    """A training-like loss: lr matters most, the activation a little; wide nets fail."""
    if c["width"] > 180:
        return float("nan")
    return (math.log10(c["lr"]) + 2.5) ** 2 + 0.1 * c["depth"] + OFFSET[c["act"]]


@pytest.fixture(scope="module")
def run():
    return oa.minimize(_loss, space=SPACE, method="random_search", budget=60, seed=3)


@pytest.fixture(scope="module")
def frame(run):
    return plot.result_trials(run, study="mlp")


# -- the trials table ---------------------------------------------------------------------------
def test_result_trials_has_the_trials_frame_layout(run, frame):
    configs = run.configs()
    assert list(frame.columns[:8]) == [
        "study", "number", "status", "value", "seconds", "error", "started", "finished",
    ]  # fmt: skip
    assert frame["number"].tolist() == list(range(len(configs)))
    f = np.asarray(run.history.f, dtype=np.float64)
    assert (frame["status"] == "failed").sum() == int((~np.isfinite(f)).sum()) > 0
    done = frame["status"] == "complete"
    np.testing.assert_array_equal(frame["value"][done].to_numpy(), f[np.isfinite(f)])
    assert frame["value"][~done].isna().all() and frame["error"][~done].notna().all()
    for i, c in enumerate(configs):
        assert frame["params_act"][i] == c["act"]
        assert frame["params_lr"][i] == c["lr"]
        assert pd.isna(frame["params_momentum"][i]) == (c["opt"] != "sgd")
    assert "params_epochs" not in frame.columns  # fixed values are not searched
    assert Space.from_dict(frame.attrs["space"]) == SPACE


def test_study_trials_reads_kinds_from_the_space(frame, run):
    t = plot.study_trials(frame)
    assert t.study == "mlp" and len(t) == len(frame)
    assert list(t.params) == ["lr", "width", "depth", "act", "opt", "beta1", "momentum"]
    assert (t.params["lr"].kind, t.params["lr"].log) == ("real", True)
    assert (t.params["width"].kind, t.params["width"].log) == ("int", True)
    assert (t.params["depth"].kind, t.params["depth"].log) == ("int", False)
    act = t.params["act"]
    assert act.kind == "choice" and act.categories == ("relu", "tanh", "gelu")
    assert [act.categories[i] for i in act.values] == [c["act"] for c in run.configs()]
    sgd = t.params["opt"].values == 1
    np.testing.assert_array_equal(t.params["momentum"].present, sgd)
    np.testing.assert_array_equal(t.params["beta1"].present, ~sgd)
    # Without the space: numbers are linear, categories sorted.
    bare = frame.copy()
    bare.attrs = {}
    u = plot.study_trials(bare)
    assert not u.params["lr"].log and u.params["act"].categories == ("gelu", "relu", "tanh")


def test_a_mapping_of_columns_reads_as_the_frame(frame):
    a = plot.study_trials(frame)
    b = plot.study_trials({c: frame[c].tolist() for c in frame.columns}, space=SPACE)
    np.testing.assert_array_equal(a.number, b.number)
    np.testing.assert_array_equal(a.value, b.value)
    for name, col in a.params.items():
        np.testing.assert_array_equal(col.values, b.params[name].values)


def test_a_table_of_several_studies_needs_study(frame):
    other = frame.assign(study="other")
    both = pd.concat([frame, other], ignore_index=True)
    with pytest.raises(ValueError, match=r"'mlp', 'other'.*study="):
        plot.study_trials(both)
    assert len(plot.study_trials(both, study="other", space=SPACE)) == len(frame)
    with pytest.raises(ValueError, match="no trials of study 'nope'"):
        plot.study_trials(both, study="nope")


# -- the data behind the pictures ---------------------------------------------------------------
def _with_pruned(frame):
    out = frame.copy()
    out.loc[[3, 7], "status"] = "pruned"  # their value: the last one reported
    return out


def test_best_value_data_is_the_running_minimum_of_complete_trials(frame):
    t = plot.study_trials(_with_pruned(frame))
    d = best_value_data(t)
    done = frame.drop(index=[3, 7])
    done = done[done["status"] == "complete"]
    np.testing.assert_array_equal(d.number, done["number"].to_numpy())
    np.testing.assert_array_equal(d.best, done["value"].cummin().to_numpy())
    assert d.pruned_number.tolist() == [3, 7]
    assert d.failed_number.tolist() == frame["number"][frame["status"] == "failed"].tolist()


def test_parallel_data_places_each_trial_on_each_axis(frame):
    t = plot.study_trials(frame)
    d = parallel_data(t)
    done = frame[frame["status"] == "complete"]
    assert [a.name for a in d.axes] == ["value", *t.params]
    for a in d.axes:
        h = a.height[~np.isnan(a.height)]
        assert h.min() >= 0 and h.max() <= 1 and a.ticks.size == len(a.labels)
    lr = np.log10(done["params_lr"].to_numpy())
    np.testing.assert_allclose(d.axes[1].height, (lr - lr.min()) / (lr.max() - lr.min()))
    act = [SPACE.params["act"].index(v) / 2 for v in done["params_act"]]
    np.testing.assert_allclose(d.axes[4].height, act)
    assert d.axes[4].labels == ["relu", "tanh", "gelu"]
    np.testing.assert_array_equal(np.isnan(d.axes[7].height), done["params_momentum"].isna())


# -- parameter importance ----------------------------------------------------------------------
def _synthetic(n: int, seed: int, driver: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    noise = rng.uniform(0, 1, n)
    cat = rng.choice(["a", "b", "c"], n)
    value = x**2 if driver == "x" else np.array([{"a": 0, "b": 1, "c": 3}[c] for c in cat])
    return pd.DataFrame(
        {
            "number": np.arange(n),
            "status": "complete",
            "value": value + 0.05 * rng.standard_normal(n),
            "params_x": x,
            "params_noise": noise,
            "params_cat": cat,
            "params_cat_noise": rng.choice(["u", "v"], n),
        }
    )


@pytest.mark.parametrize("driver", ["x", "cat"])
def test_importance_picks_the_parameter_that_drives_the_value(driver):
    for seed in range(5):
        frame = _synthetic(120, seed, driver)
        if driver == "x":
            frame["params_cat"] = np.random.default_rng(seed + 99).choice(["a", "b", "c"], 120)
        shares = plot.param_importance(plot.study_trials(frame))
        assert math.isclose(sum(shares.values()), 1.0)
        assert next(iter(shares)) == driver
        assert shares[driver] > 0.85, shares
        assert shares["noise"] < 0.1 and shares["cat_noise"] < 0.1, shares


def test_importance_is_the_bias_corrected_correlation_ratio():
    frame = _synthetic(90, 0, "cat")
    got = plot.param_importance(plot.study_trials(frame), on="value", normalize=False)
    y = frame["value"]
    k, n = 3, len(y)
    means = y.groupby(frame["params_cat"]).transform("mean")
    sst = float(((y - y.mean()) ** 2).sum())
    ssw = float(((y - means) ** 2).sum())
    ssb = sst - ssw
    assert got["cat"] == pytest.approx((ssb - (k - 1) * ssw / (n - k)) / sst, rel=1e-9)
    assert 0.0 <= got["noise"] < 0.05


def test_importance_of_pure_noise_is_small_before_normalising():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"number": range(200), "status": "complete", "value": rng.standard_normal(200),
         "params_a": rng.uniform(size=200), "params_b": rng.choice([1, 2, 3], 200)}
    )  # fmt: skip
    raw = plot.param_importance(plot.study_trials(frame), normalize=False)
    assert max(raw.values()) < 0.05


def test_a_conditional_parameter_is_not_credited_with_its_parents_effect():
    rng = np.random.default_rng(0)
    model = ["mlp", "poly"] * 20
    frame = pd.DataFrame(
        {
            "number": range(40),
            "status": "complete",
            "value": [10.0 * (m == "poly") + rng.normal() for m in model],
            "params_model": model,
            "params_degree": [2 if m == "poly" else None for m in model],  # one value in its branch
        }
    )
    raw = plot.param_importance(plot.study_trials(frame), normalize=False)
    assert raw["model"] > 0.7 and raw["degree"] == 0.0


def test_importance_needs_three_complete_trials(frame):
    with pytest.raises(ValueError, match="at least 3 complete trials, got 2"):
        plot.param_importance(plot.study_trials(frame.iloc[:2]))


# -- the figures --------------------------------------------------------------------------------
def test_history_counts_pruned_and_failed_in_the_legend(frame):
    fig = plot.study_history(_with_pruned(frame))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    n_failed = int((frame["status"] == "failed").sum())
    assert "pruned, last reported value (2)" in labels
    assert f"failed, no value ({n_failed})" in labels
    assert any(s.startswith("best so far") for s in labels)


def test_slices_draw_one_panel_per_parameter(frame, tmp_path):
    fig = plot.study_slices(frame)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    titles = [ax.get_title() for ax in panels]
    assert len(panels) == 7 and titles[0] == "lr (log)"
    assert panels[0].get_xscale() == "log" and panels[2].get_xscale() == "linear"
    assert [t.get_text() for t in panels[3].get_xticklabels()] == ["relu", "tanh", "gelu"]
    assert re.fullmatch(r"momentum \(set in \d+ of \d+\)", titles[6])
    out = plot.study_slices(frame, path=tmp_path / "s.png")
    assert out.stat().st_size > 10_000


def test_slices_draw_numbers_on_the_spaces_range_with_plain_log_labels(frame):
    one = frame[frame["params_depth"] == 2]  # every trial at one depth: still the range 1..3
    panels = [ax for ax in plot.study_slices(one).axes if ax.get_label() != "<colorbar>"]
    lo, hi = panels[2].get_xlim()
    assert lo < 1 and hi > 3 and hi - lo < 2.5
    width = panels[1]  # log axis from 8 to 256: the whole range, no overlapping minor labels
    lo, hi = width.get_xlim()
    assert lo < 8 and hi > 256 and hi < 300
    assert all(t.get_text() == "" for t in width.get_xticklabels(minor=True))


def test_parallel_and_importance_figures(frame, tmp_path):
    fig = plot.study_parallel(frame)
    names = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert names == ["value", "lr (log)", "width (log)", "depth", "act", "opt", "beta1",
                     "momentum"]  # fmt: skip
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"relu", "tanh", "gelu", "adam", "sgd", "absent"} <= texts
    fig = plot.study_importance(frame)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "lr"
    assert plot.study_parallel(frame, path=tmp_path / "p.png").exists()


# -- a study store and the report ---------------------------------------------------------------
# The tables mirror the store's study migration (studies, trials, trial_reports).
STUDY_TABLES = """
CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY, space TEXT NOT NULL, method TEXT NOT NULL, options TEXT NOT NULL,
    seed INTEGER, in_flight INTEGER NOT NULL, pruner TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    study TEXT NOT NULL, number INTEGER NOT NULL, params TEXT NOT NULL, status TEXT NOT NULL,
    value REAL, seconds REAL, error TEXT, told INTEGER NOT NULL, started REAL, finished REAL,
    PRIMARY KEY (study, number));
CREATE TABLE IF NOT EXISTS trial_reports (
    study TEXT NOT NULL, number INTEGER NOT NULL, step INTEGER NOT NULL, value REAL,
    PRIMARY KEY (study, number, step));
"""

TRIAL_COLUMNS = "study, number, params, status, value, seconds, error, told, started, finished"


def _store_study(store: Store, name: str, result, pruned: tuple[int, ...] = ()) -> None:
    frame = plot.result_trials(result, study=name)
    conn = store.conn
    conn.execute(
        "INSERT INTO studies (study, space, method, options, seed, in_flight, pruner, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (name, result.space.to_json(), "random_search", "{}", 0, 2, None, 0.0),
    )
    for i, config in enumerate(result.configs()):
        status = "pruned" if i in pruned else frame["status"][i]
        value = frame["value"][i]
        conn.execute(
            f"INSERT INTO trials ({TRIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, i, json.dumps(config), status, None if np.isnan(value) else float(value),
             float(frame["seconds"][i]), frame["error"][i], i, None, None),
        )  # fmt: skip


@pytest.fixture
def study_store(tmp_path, run):
    path = tmp_path / "study.sqlite"
    with Store(path) as store:
        store.conn.executescript(STUDY_TABLES)
        _store_study(store, "mlp", run, pruned=(1, 4))
        small = oa.minimize(
            _loss, space={"lr": Real(1e-4, 1e-1, log=True), "depth": Int(1, 3),
                          "act": Choice(["relu", "tanh", "gelu"]), "width": 32},
            method="random_search", budget=12, seed=0,
        )  # fmt: skip
        _store_study(store, "small", small)
    return path


def test_store_trials_reads_the_tables(study_store, frame):
    with Store(study_store, create=False) as store:
        studies = plot.store_trials(store)
    assert list(studies) == ["mlp", "small"]
    cols, info = studies["mlp"]
    assert info["method"] == "random_search" and Space.from_json(info["space"]) == SPACE
    t = plot.study_trials(cols, space=info["space"])
    assert t.counts()["pruned"] == 2
    ref = plot.study_trials(frame)
    for name, col in ref.params.items():
        np.testing.assert_array_equal(col.values, t.params[name].values)


def _study_html(page: str) -> str:
    return page[page.index("<h2>Studies</h2>") :]


def test_report_has_a_section_per_study(study_store, tmp_path, frame):
    page = plot.write_report(study_store, tmp_path / "out").read_text()
    section = _study_html(page)
    assert "<h3>mlp</h3>" in section and "<h3>small</h3>" in section
    mlp = section[: section.index("<h3>small</h3>")]
    assert mlp.count("<img") == 4
    assert "2 pruned" in mlp
    body = mlp[mlp.index('<table class="study-best">') :]
    nums = [int(m) for m in re.findall(r"<tr><td>(\d+)</td>", body)]
    done = frame[(frame["status"] == "complete") & ~frame["number"].isin([1, 4])]
    assert nums == done.sort_values("value", kind="stable")["number"].head(10).tolist()


def test_report_without_studies_has_no_study_section(tmp_path):
    path = tmp_path / "plain.sqlite"
    Store(path).close()
    page = plot.write_report(path, tmp_path / "out").read_text()
    assert "<h2>Studies</h2>" not in page and "The store holds no runs" in page


def test_report_of_a_study_without_complete_trials(tmp_path, run):
    path = tmp_path / "failed.sqlite"
    with Store(path) as store:
        store.conn.executescript(STUDY_TABLES)
        store.conn.execute(
            f"INSERT INTO trials ({TRIAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                "broken",
                0,
                '{"lr": 0.1}',
                "failed",
                None,
                0.1,
                "RuntimeError: out of memory",
                0,
                None,
                None,
            ),
        )
    section = _study_html(plot.write_report(path, tmp_path / "out").read_text())
    assert "<h3>broken</h3>" in section and "No complete trial" in section
    assert "<img" not in section


def test_pictures_of_a_study_without_a_complete_trial():
    failed = pd.DataFrame(
        {"study": "s", "number": [0, 1], "status": "failed", "value": [None, None],
         "params_a": [1.0, 2.0], "params_b": [None, None]}
    )  # fmt: skip
    for draw in (plot.study_history, plot.study_slices, plot.study_parallel):
        assert draw(failed).axes
    with pytest.raises(ValueError, match="got 0"):
        plot.study_importance(failed)
