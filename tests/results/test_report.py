"""Answers a researcher can trust, end to end with stand-in trials: no effect is never
reported as a speedup, a planted one is found; configs.parquet, optuna.db, and the report
rendered in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from sweep_helpers import standin_space, standin_sweep

from te_sweep.sweep.standin import StandIn


def configs_of(sweep) -> list[dict]:
    return pq.read_table(sweep / "configs.parquet").to_pylist()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A sweep where every TE run reaches the target 30% faster than its seed's baseline."""
    tmp = tmp_path_factory.mktemp("planted")
    space = standin_space(tmp, max_epochs=4, target=0.6)
    _, export, out, _ = standin_sweep(
        space,
        tmp,
        "planted",
        num_samples=2,
        repeats=6,
        standin=StandIn(0.02, 4096, te_effect=0.3),
        max_concurrent=6,
    )
    return tmp / "planted", export, out


def test_no_effect_is_never_reported_as_a_speedup(tmp_path):
    space = standin_space(tmp_path, max_epochs=4, target=0.6)
    _, _export, _out, _ = standin_sweep(
        space,
        tmp_path,
        "none",
        num_samples=4,
        repeats=3,
        standin=StandIn(0.02, 4096),
        max_concurrent=6,
    )
    configs = configs_of(tmp_path / "none")
    assert len(configs) == 4 and all(c["status"] == "complete" for c in configs)
    for c in configs:
        assert c["speedup_ci_low"] <= 1.0 <= c["speedup_ci_high"], c
        assert not c["beats_baselines"] and c["prob_te_faster"] == 0.5
        assert c["speedups"] == [1.0, 1.0, 1.0] and len(c["seeds"]) == 3
    assert any(
        line.startswith("No configuration is shown to reach the target faster")
        for line in _summary(tmp_path / "none")
    )


def _summary(sweep) -> list[str]:
    from te_sweep.results.summary import verdict

    return [verdict(configs_of(sweep))]


def test_a_planted_effect_is_found(planted):
    sweep, _export, _ = planted
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
    assert all(t["paired_speedup_epochs"] > 1 and t["paired_kind"] == "both_reached" for t in te)
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


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (make test installs it)"
)
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
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--window-size=1200,3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert f'data-figures="{len(names)}"' in dom
    assert f'data-figures-loaded="{len(names)}"' in dom, dom[:300]
    assert 'data-wider-than-window="false"' in dom  # the table scrolls inside the page
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,3000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 50_000  # figures drawn, not a blank page


def test_report_without_tables_exits_2(capsys, tmp_path):
    (tmp_path / "te_sweep.json").write_text("{}")
    result = run_cli(capsys, "report", tmp_path)
    assert result.code == 2 and "te-sweep export" in result.err
    (tmp_path / "file").write_text("x")
    result = run_cli(capsys, "report", tmp_path, "--out", tmp_path / "file")
    assert result.code == 2 and "is a file" in result.err
    assert (tmp_path / "file").read_text() == "x"
