"""Answers a researcher can trust, end to end with stand-in trials: no effect is never
reported as a speedup, a planted one is found; configs.parquet, optuna.db, and the report
rendered in a real headless Chromium."""

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

from conftest import run_cli
from sweep_helpers import standin_space, standin_sweep
from te_sweep import figures
from te_sweep.report import TABLE_ROWS, figure_makers, read_tables, write_report
from te_sweep.standin import StandIn
from te_sweep.storage import SweepDir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from report_scale import write_sweep  # noqa: E402  (the synthesiser the benchmark times)


def configs_of(sweep) -> list[dict]:
    return pq.read_table(sweep / "configs.parquet").to_pylist()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A sweep where every TE run reaches the target 30% faster than its seed's baseline."""
    tmp = tmp_path_factory.mktemp("planted")
    space = standin_space(tmp, max_epochs=4, target=0.6)
    _, export, out, _ = standin_sweep(space, tmp, "planted", num_samples=2, repeats=6,
                                      standin=StandIn(0.02, 4096, te_effect=0.3),
                                      max_concurrent=6)
    return tmp / "planted", export, out


def test_no_effect_is_never_reported_as_a_speedup(tmp_path):
    space = standin_space(tmp_path, max_epochs=4, target=0.6)
    _, export, out, _ = standin_sweep(space, tmp_path, "none", num_samples=4, repeats=3,
                                      standin=StandIn(0.02, 4096), max_concurrent=6)
    configs = configs_of(tmp_path / "none")
    assert len(configs) == 4 and all(c["status"] == "complete" for c in configs)
    for c in configs:
        assert c["speedup_ci_low"] <= 1.0 <= c["speedup_ci_high"], c
        assert not c["beats_baselines"] and c["prob_te_faster"] == 0.5
        assert c["speedups"] == [1.0, 1.0, 1.0] and len(c["seeds"]) == 3
    assert any(line.startswith("No configuration is shown to reach the target faster")
               for line in _summary(tmp_path / "none"))


def _summary(sweep) -> list[str]:
    from te_sweep.summary import verdict

    return [verdict(configs_of(sweep))]


def test_a_planted_effect_is_found(planted):
    sweep, export, _ = planted
    configs = configs_of(sweep)
    assert len(configs) == 2
    for c in configs:
        assert c["beats_baselines"], c
        assert c["speedup_ci_low"] > 1.2 and c["prob_te_faster"] == 1.0
        assert c["p_value"] == pytest.approx(1 / 2**6)
        assert c["p_holm"] == pytest.approx(2 / 2**6)
        assert c["rank"] in (1, 2) and c["repeats"] == 6
    trials = pq.read_table(sweep / "trials.parquet").to_pylist()
    te = [t for t in trials if t["role"] == "te"]
    assert {t["config_id"] for t in te} == {c["config_id"] for c in configs}
    assert all(t["paired_speedup_epochs"] > 1 and t["paired_kind"] == "both_reached"
               for t in te)
    baselines = [t for t in trials if t["role"] == "baseline"]
    assert len(baselines) == 6 and {t["seed"] for t in te} == {t["seed"] for t in baselines}


def test_optuna_db_opens_with_optunas_own_tools(planted):
    import optuna

    sweep, _, _ = planted
    study = optuna.load_study(study_name="te-sweep", storage=f"sqlite:///{sweep}/optuna.db")
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE] * 2
    assert study.metric_names == ["objective_epochs", "te_overhead"]
    configs = {c["config_id"]: c for c in configs_of(sweep)}
    assert len(study.trials) == len(configs)
    for trial in study.trials:
        row = configs[trial.user_attrs["config_id"]]
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.values == [row["objective_epochs"], row["te_overhead"]]
        assert trial.params["te_scale"] == row["param_te_scale"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium "
                    "(make test installs it)")
def test_the_report_renders_in_headless_chromium(capsys, planted, tmp_path):
    sweep, _, _ = planted
    result = run_cli(capsys, "report", sweep, "--out", tmp_path / "out")
    assert result.code == 0, result.err
    page = tmp_path / "out" / "report.html"
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing fetched
    names = ["speedups", "pareto", "parameters", "curves", "timeline"]
    assert all((tmp_path / "out" / "figures" / f"{n}.png").stat().st_size > 5000 for n in names)
    assert not (tmp_path / "out" / "figures" / "importance.png").exists()  # 2 configurations
    assert "Parameter importance is not shown: 2 configurations finished" in text
    assert "beats_baselines" in text and "What this sweep can and cannot conclude" in text
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--window-size=1200,3000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    assert f'data-figures="{len(names)}"' in dom
    assert f'data-figures-loaded="{len(names)}"' in dom, dom[:300]
    assert 'data-wider-than-window="false"' in dom  # the table scrolls inside the page
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 50_000  # figures drawn, not a blank page


def test_report_without_tables_exits_2(capsys, tmp_path):
    (tmp_path / "te_sweep.json").write_text("{}")
    result = run_cli(capsys, "report", tmp_path)
    assert result.code == 2 and "te-sweep export" in result.err
    (tmp_path / "file").write_text("x")
    result = run_cli(capsys, "report", tmp_path, "--out", tmp_path / "file")
    assert result.code == 2 and "is a file" in result.err
    assert (tmp_path / "file").read_text() == "x"


# --- the page at the `make sweep` size and above, from synthesised tables -------------------
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
    reason = figures.importance_withheld(tables.configs, tables.space)
    assert reason.startswith("Parameter importance is not shown: 4 configurations finished")
    assert f'<figure id="importance"><p class="withheld">{html.escape(reason)}</p></figure>' \
        in page
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
    tables = read_tables(write_sweep(tmp_path / "sweep", figures.MIN_IMPORTANCE_CONFIGS + 8))
    complete = sum(c["status"] == "complete" for c in tables.configs)
    assert complete >= figures.MIN_IMPORTANCE_CONFIGS
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
    areas = re.findall(r'<area shape="circle" coords="([\d.]+),([\d.]+),(\d+)" '
                       r'title="([^"]*)"', pareto)
    front = [c for c in configs.values() if c["pareto"]]
    assert len(areas) == len({c["config_id"] for c in configs.values()
                              if c["status"] == "complete" and (c["rank"] or c["pareto"])})
    png = matplotlib.image.imread(io.BytesIO((root / "figures" / "pareto.png").read_bytes()))
    for x, y, radius, title in areas:
        config = configs[html.unescape(title).split(",")[0]]
        assert html.unescape(title) == figures.describe(config)
        assert radius == str(figures.POINT_RADIUS_PX)
        assert png[round(float(y)), round(float(x))][:3].tolist() != [1.0, 1.0, 1.0], title
    assert front and all(c["config_id"] in pareto for c in front)
    parameters = page.split('<figure id="parameters">')[1].split("</figure>")[0]
    assert 'usemap="#parameters-points"' in parameters and "<area " in parameters


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium "
                    "(make test installs it)")
def test_nothing_runs_off_a_narrow_window_in_headless_chromium(small):
    """At 700 pixels (narrower than a figure) the table and the hoverable figures scroll
    inside the page; the page itself does not run off the window."""
    root, page = small

    def dom(path: Path) -> str:
        return subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--virtual-time-budget=5000", "--window-size=700,3000", "--dump-dom",
             path.as_uri()], capture_output=True, text=True, timeout=120).stdout

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
    from te_sweep.report import conclusions

    root, _ = small
    tables = tables_of(root)
    te = [t for t in tables.trials if t["role"] == "te"]
    for t in te:
        t["param_te_estimator"] = "effective"
    control = {**te[0], "trial_id": "control-0", "role": "control",
               "param_te_estimator": "plugin"}
    tables.trials.append(control)
    caveat = "With the plug-in TE (the paper's)"
    assert not any(line.startswith(caveat) for line in conclusions(tables))
    te[0]["param_te_estimator"] = "plugin"
    assert any(line.startswith(caveat) for line in conclusions(tables))
