"""The report page from synthesised tables (bench/report_scale.py's write_sweep, in the
exported schemas), no Ray: the importance rule, the scrolling table in rank order, the image
maps that name each point, the page in a narrow window, the curves' epochs, the plug-in
caveat. tests/results/test_report.py runs the report at the end of real (stand-in) sweeps."""

from __future__ import annotations

import html
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from te_sweep.results import figures, importance
from te_sweep.results.report import TABLE_ROWS, figure_makers, read_tables, write_report
from te_sweep.results.storage import SweepDir

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from report_scale import write_sweep


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A `make sweep`-sized sweep (4 configurations x 3 seeds) in the exported schemas
    (bench/report_scale.py), its report written."""
    sweep = write_sweep(tmp_path_factory.mktemp("small") / "sweep", 4)
    write_report(sweep)
    root = Path(sweep.uri)
    return root, (root / "report.html").read_text()


def tables_of(root: Path):
    return read_tables(SweepDir(str(root.parent), root.name))


def test_importance_is_replaced_by_the_reason_below_the_minimum(small):
    root, page = small
    tables = tables_of(root)
    reason = importance.importance_withheld(tables.configs, tables.space)
    assert reason.startswith("Parameter importance is not shown: 4 configurations finished")
    assert f'<figure id="importance"><p class="withheld">{html.escape(reason)}</p></figure>' in page
    assert not (root / "figures" / "importance.png").exists()
    assert 'data-figures="5"' in page


def test_a_stale_importance_figure_is_removed(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", 4)
    stale = tmp_path / "sweep" / "figures" / "importance.png"
    stale.parent.mkdir()
    stale.write_bytes(b"from a report of another sweep")
    write_report(sweep)
    assert not stale.exists()


def test_importance_is_drawn_from_the_minimum(tmp_path):
    tables = read_tables(write_sweep(tmp_path / "sweep", importance.MIN_IMPORTANCE_CONFIGS + 8))
    complete = sum(c["status"] == "complete" for c in tables.configs)
    assert complete >= importance.MIN_IMPORTANCE_CONFIGS
    makers = {name: make for name, _, make in figure_makers(tables)}
    assert callable(makers["importance"])


def test_the_table_scrolls_inside_the_page(small):
    _, page = small
    assert re.search(r"\.table-scroll[,.\w-]*\{[^}]*overflow-x:auto", page)
    table = page.split("<h2>Configurations</h2>")[1]
    assert '<div class="table-scroll"><table>' in table and "</table></div>" in table
    assert table.count("<tr>") == 1 + min(TABLE_ROWS, 4)
    assert "<p>The 4 best ranked of 4, by the lower end" in table


def test_a_point_of_the_pareto_figure_names_its_configuration(small):
    """The page's image map over pareto.png: an area titled with a configuration's line sits
    on its point (drawn in the PNG: not the white background)."""
    import matplotlib.image

    root, page = small
    configs = {c["config_id"]: c for c in pq.read_table(root / "configs.parquet").to_pylist()}
    pareto = page.split('<figure id="pareto">')[1].split("</figure>")[0]
    assert '<img alt="' in pareto and 'usemap="#pareto-points"' in pareto
    areas = re.findall(
        r'<area shape="circle" coords="([\d.]+),([\d.]+),(\d+)" '
        r'title="([^"]*)"',
        pareto,
    )
    front = [c for c in configs.values() if c["pareto"]]
    assert len(areas) == len(
        {
            c["config_id"]
            for c in configs.values()
            if c["status"] == "complete" and (c["rank"] or c["pareto"])
        }
    )
    png = matplotlib.image.imread(io.BytesIO((root / "figures" / "pareto.png").read_bytes()))
    for x, y, radius, title in areas:
        config = configs[html.unescape(title).split(",")[0]]
        assert html.unescape(title) == figures.describe(config)
        assert radius == str(figures.POINT_RADIUS_PX)
        assert png[round(float(y)), round(float(x))][:3].tolist() != [1.0, 1.0, 1.0], title
    assert front and all(c["config_id"] in pareto for c in front)
    parameters = page.split('<figure id="parameters">')[1].split("</figure>")[0]
    assert 'usemap="#parameters-points"' in parameters and "<area " in parameters


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (make test installs it)"
)
def test_nothing_runs_off_a_narrow_window_in_headless_chromium(small):
    """At 700 pixels (narrower than a figure) the table and the hoverable figures scroll
    inside the page; the page itself does not run off the window."""
    root, page = small

    def dom(path: Path) -> str:
        return subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=5000",
                "--window-size=700,3000",
                "--dump-dom",
                path.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    shown = dom(root / "report.html")
    assert 'data-figures-loaded="5"' in shown, shown[:300]
    assert 'data-wider-than-window="false"' in shown
    wide = root / "wide.html"  # the check itself: a page that does run off the window
    wide.write_text(page.replace("<h1>", '<div style="width:2000px">wide</div><h1>', 1))
    assert 'data-wider-than-window="true"' in dom(wide)


def test_the_curves_get_exactly_their_trials_epochs(small):
    root, _ = small
    tables = tables_of(root)
    ids = figures.curve_trial_ids(tables.configs, tables.trials)
    rows = tables.epoch_rows(ids)
    every = pq.read_table(root / "epochs.parquet").to_pylist()
    assert rows == [e for e in every if e["trial_id"] in ids] and len(ids) == 3 + 3 * 3


def test_the_plug_in_caveat_follows_the_te_runs_estimator_not_the_controls(small):
    """LR controls carry the default (plug-in) estimator whatever the TE runs used: a sweep
    of effective-TE runs gets no plug-in caveat."""
    from te_sweep.results.report import conclusions

    root, _ = small
    tables = tables_of(root)
    te = [t for t in tables.trials if t["role"] == "te"]
    for t in te:
        t["param_te_estimator"] = "effective"
    control = {**te[0], "trial_id": "control-0", "role": "control", "param_te_estimator": "plugin"}
    tables.trials.append(control)
    caveat = "With the plug-in TE (the paper's)"
    assert not any(line.startswith(caveat) for line in conclusions(tables))
    te[0]["param_te_estimator"] = "plugin"
    assert any(line.startswith(caveat) for line in conclusions(tables))


def test_the_table_lists_the_best_ranked_first(tmp_path):
    """60 configurations whose ranks do not follow their ids: the table's TABLE_ROWS rows are
    ranks 1, 2, ... in order, then none of the rest."""
    sweep = write_sweep(tmp_path / "sweep", 60)
    write_report(sweep)
    root = Path(sweep.uri)
    configs = pq.read_table(root / "configs.parquet").to_pylist()
    by_rank = sorted((c for c in configs if c["rank"] is not None), key=lambda c: c["rank"])
    assert [c["config_id"] for c in by_rank] != sorted(c["config_id"] for c in by_rank)
    table = (root / "report.html").read_text().split("<h2>Configurations</h2>")[1]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", table)
    assert [config_id for _, config_id in rows] == [c["config_id"] for c in by_rank][:TABLE_ROWS]


def test_the_table_shows_the_documented_fifty_and_its_columns_in_order(tmp_path):
    """README: "the 50 best ranked configurations"; columns: rank, config_id, status, the
    searched settings, then the statistics."""
    sweep = write_sweep(tmp_path / "sweep", 60)
    write_report(sweep)
    root = Path(sweep.uri)
    table = (root / "report.html").read_text().split("<h2>Configurations</h2>")[1]
    assert table.count("<tr>") == 1 + 50
    header = re.findall(r"<th>([^<]*)</th>", table)
    searched = list(tables_of(root).space.params)
    assert header[: 3 + len(searched)] == ["rank", "config_id", "status", *searched]
    assert header[3 + len(searched) : 5 + len(searched)] == ["speedup_mean", "speedup_ci_low"]
    assert header[-1] == "control_speedup_mean"


def test_the_curves_target_line_is_the_sweeps_target(small):
    """The learning curves' dotted line sits at the trials' own target (0.75 here), not at
    the fallback for a sweep without trials."""
    root, _ = small
    tables = tables_of(root)
    target = next(t["param_target"] for t in tables.trials if t["role"] == "baseline")
    assert target == 0.75
    curves = {name: make for name, _, make in figure_makers(tables)}["curves"]()
    lines = [
        line
        for ax in curves.axes
        for line in ax.lines
        if line.get_linestyle() == ":" and len(set(line.get_ydata())) == 1
    ]
    assert lines and all(line.get_ydata()[0] == target for line in lines)


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_an_unreadable_table_is_named_with_its_first_line_and_exits_2(capsys, tmp_path, damage):
    from conftest import run_cli

    sweep = write_sweep(tmp_path / "sweep", 4)
    path = Path(sweep.uri) / "configs.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    result = run_cli(capsys, "report", Path(sweep.uri))
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert line.startswith(f"Error: {path} is not a readable Parquet file (")
    reason = line.split(" is not a readable Parquet file (")[1].split("); write it again")[0]
    assert reason and reason not in ("ArrowInvalid", "OSError", "ArrowException")
    assert "te-sweep export" in line


def test_the_curves_follow_the_sweeps_target_metric(small):
    """A sweep whose target is test_acc draws test_acc curves (the trials' own setting, not
    the fallback for a sweep without trials)."""
    root, _ = small
    tables = tables_of(root)
    for t in tables.trials:
        t["param_target_metric"] = "test_acc"
    curves = {name: make for name, _, make in figure_makers(tables)}["curves"]()
    assert curves.axes[0].get_ylabel().startswith("test_acc")
