"""Sweeps through the real CLI on a real local Ray with real Optuna, read back from Parquet."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import run_cli
from sweep_helpers import blocks_space, read_export

from te_sweep.exit_codes import ExitCode
from te_sweep.results.export import EPOCHS_SCHEMA, TRIALS_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_sweep_through_the_cli(capsys, tmp_path, fashion_mnist, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "unset below")  # restored after the test
    monkeypatch.delenv("OMP_WAIT_POLICY")  # the user set none: trials wait passively
    result = run_cli(
        capsys,
        "launch",
        ROOT / "search_spaces" / "smoke.yaml",
        "--num-samples",
        2,
        "--repeats",
        2,
        "--max-concurrent",
        2,
        "--storage",
        tmp_path,
        "--name",
        "smoke",
        "--seed",
        7,
    )
    assert result.code == 0, result.err
    sweep = tmp_path / "smoke"
    trials, epochs, meta = read_export(sweep)
    assert pq.read_schema(sweep / "trials.parquet").remove_metadata() == TRIALS_SCHEMA
    assert pq.read_schema(sweep / "epochs.parquet").remove_metadata() == EPOCHS_SCHEMA
    assert not any(pa.types.is_null(f.type) for f in TRIALS_SCHEMA)
    assert sorted(t["role"] for t in trials) == ["baseline"] * 2 + ["te"] * 4
    assert len({t["trial_id"] for t in trials}) == 6
    assert all(t["status"] in ("complete", "censored") for t in trials), trials
    baselines = [t for t in trials if t["role"] == "baseline"]
    assert all(b["param_te_scale"] == 0.0 for b in baselines)
    assert len({b["seed"] for b in baselines}) == 2
    for t in trials:
        if t["role"] == "te":
            assert t["param_te_scale"] > 0
            assert t["seed"] in {b["seed"] for b in baselines}  # paired
            assert t["paired_baseline"] in {b["trial_id"] for b in baselines}
            if t["epochs_to_target"]:
                assert (
                    t["epochs_to_target"] - 1
                    < t["epochs_to_target_frac"]
                    <= t["epochs_to_target"]
                    == t["epochs_run"]
                )
                assert t["objective_epochs"] == t["epochs_to_target_frac"]
            else:
                assert t["objective_epochs"] == t["param_max_epochs"] + 1
            assert t["paired_speedup_epochs"] is not None and t["paired_kind"]
        assert t["epochs_run"] == sum(e["trial_id"] == t["trial_id"] for e in epochs)
        assert t["param_dataset"] == "fashion-mnist" and t["param_window"] >= 2
        assert t["device_name"] == "cpu" and t["node_id"]
        assert t["omp_wait_policy"] == "PASSIVE"  # cpu_threads.py, inherited from the driver
        assert t["te_compiled"] == (None if t["role"] == "baseline" else False), t  # CPU
        assert t["started_at"] < t["finished_at"]
        assert sorted(
            p.name
            for p in (sweep / f"{t['role']}_{t['trial_id']}").iterdir()
            if "checkpoint" in p.name
        ) == [f"checkpoint-epoch-{t['epochs_run']:05d}.pt"]
        times = [e["finished_at"] for e in epochs if e["trial_id"] == t["trial_id"]]
        assert times == sorted(times) and times[-1] == t["finished_at"]
        assert all(e["node_id"] == t["node_id"] for e in epochs if e["trial_id"] == t["trial_id"])
    assert meta[b"te_sweep.partial"] == b"false"
    assert b"search:" in meta[b"te_sweep.space"]
    assert b'"ray": "2.60.0"' in meta[b"te_sweep.versions"]
    assert str(sweep / "trials.parquet") in result.out
    assert f"wrote {sweep / 'report.html'}" in result.out
    assert (sweep / "figures" / "speedups.png").exists() and (sweep / "optuna.db").exists()
    configs = pq.read_table(sweep / "configs.parquet").to_pylist()
    assert len(configs) == 2 and all(len(c["seeds"]) == 2 for c in configs)
    assert result.out.splitlines()[0].startswith(f"launching sweep {sweep} on the local")
    assert sum(line.startswith("trial ") for line in result.out.splitlines()) == 6


def test_asha_prunes_te_trials_and_tells_optuna(capsys, tmp_path):
    import optuna

    space = blocks_space(tmp_path, max_epochs=9)
    result = run_cli(
        capsys,
        "launch",
        space,
        "--num-samples",
        2,
        "--repeats",
        3,
        "--max-concurrent",
        2,
        "--storage",
        tmp_path,
        "--name",
        "asha",
        "--scheduler",
        "asha",
    )  # 3 seeds: accuracies differ, ASHA can rank
    assert result.code == 0, result.err
    trials, _, _ = read_export(tmp_path / "asha")
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned and all(t["role"] == "te" for t in pruned)
    assert all(t["epochs_run"] == 9 for t in trials if t["role"] == "baseline")
    state_file = sorted((tmp_path / "asha").glob("searcher-state-*.pkl"))[-1]
    searcher_state = pickle.loads(state_file.read_bytes())
    study = searcher_state["study"]
    states = [t.state for t in study.trials]
    pruned_configs = {t["config_id"] for t in pruned}  # a pruned run prunes its configuration
    assert states.count(optuna.trial.TrialState.PRUNED) == len(pruned_configs)
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2 - len(pruned_configs)
    configs = pq.read_table(tmp_path / "asha" / "configs.parquet").to_pylist()
    assert {c["config_id"] for c in configs if c["status"] == "pruned"} == pruned_configs

    # The same sweep read through a URI (as from s3://) exports the same rows elsewhere.
    exported = run_cli(capsys, "export", f"file://{tmp_path / 'asha'}", "--out", tmp_path / "copy")
    assert exported.code == 0, exported.err
    strip = lambda rows: [{k: v for k, v in r.items()} for r in rows]  # noqa: E731
    again = pq.read_table(tmp_path / "copy" / "trials.parquet").to_pylist()
    assert strip(again) == strip(trials)


def test_export_of_a_directory_without_a_sweep_exits_2(capsys, tmp_path):
    result = run_cli(capsys, "export", tmp_path)
    assert result.code == 2 and "holds no te-sweep sweep" in result.err


# ------------------------------------------------------------------ bad input: exit 2, nothing
def assert_refused(result, *fragments: str) -> str:
    assert result.code == 2, result
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD_SEARCH = "search:\n  te_scale: {low: 0.1, high: 4.0, log: true}\n"


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("fixed: {dataset: fashion-mnist\n" + GOOD_SEARCH, ["bad.yaml", "line"]),
        ("fixed: {dataset: fashion-mnist}\nsearchh: {}\n" + GOOD_SEARCH, ["bad.yaml", "searchh"]),
        ("fixed: {dataset: fashion-mnist, epochz: 3}\n" + GOOD_SEARCH, ["fixed.epochz"]),
        (
            "fixed: {dataset: fashion-mnist}\nsearch:\n  window: {low: 900, high: 100}\n",
            ["search.window", "low <= high", "low=900, high=100"],
        ),
        ("fixed: {dataset: imagenet}\n" + GOOD_SEARCH, ["fixed.dataset", "imagenet"]),
    ],
)
def test_bad_space_files_start_nothing(capsys, tmp_path, text, fragments):
    space = write(tmp_path / "bad.yaml", text)
    result = run_cli(capsys, "launch", space, "--storage", tmp_path / "results")
    assert_refused(result, *fragments)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--gpus-per-trial", "-1"], ["'--gpus-per-trial'", "-1"]),
        (["--num-samples", "0"], ["'--num-samples'", "at least 1"]),
        (["--cpus-per-trial", "64"], ["'--cpus-per-trial'", "--address"]),
        (["--gpus-per-trial", "0.5"], ["'--gpus-per-trial'", "GPUs"]),
        (["--scheduler", "hyperband"], ["'--scheduler'"]),
        (["--name", "a/b"], ["'--name'", "plain directory name"]),
    ],
)
def test_bad_launch_options_start_nothing(capsys, tmp_path, args, fragments):
    if "0.5" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    result = run_cli(
        capsys,
        "launch",
        ROOT / "search_spaces" / "smoke.yaml",
        "--storage",
        tmp_path / "results",
        *args,
    )
    assert_refused(result, *fragments)
    assert not (tmp_path / "results").exists()


def test_a_name_holding_another_sweep_is_refused(capsys, tmp_path):
    existing = tmp_path / "results" / "mine"
    existing.mkdir(parents=True)
    manifest = '{"sweep_id": "abc123", "space_path": "other.yaml", "space_text": "x"}'
    (existing / "te_sweep.json").write_text(manifest)
    before = sorted(p.name for p in existing.iterdir())
    result = run_cli(
        capsys,
        "launch",
        ROOT / "search_spaces" / "smoke.yaml",
        "--storage",
        tmp_path / "results",
        "--name",
        "mine",
    )
    assert_refused(result, "already holds sweep abc123", "--resume-if-exists")
    with_flag = run_cli(
        capsys,
        "launch",
        ROOT / "search_spaces" / "smoke.yaml",
        "--storage",
        tmp_path / "results",
        "--name",
        "mine",
        "--resume-if-exists",
    )
    assert_refused(with_flag, "different space file")
    assert sorted(p.name for p in existing.iterdir()) == before
    assert (existing / "te_sweep.json").read_text() == manifest


def test_a_name_holding_other_files_is_refused(capsys, tmp_path):
    (tmp_path / "results" / "data").mkdir(parents=True)
    (tmp_path / "results" / "data" / "notes.txt").write_text("mine")
    result = run_cli(
        capsys,
        "launch",
        ROOT / "search_spaces" / "smoke.yaml",
        "--storage",
        tmp_path / "results",
        "--name",
        "data",
    )
    assert_refused(result, "not a te-sweep sweep")
    assert (tmp_path / "results" / "data" / "notes.txt").read_text() == "mine"


def test_failing_trials_end_as_errors_with_their_message(capsys, tmp_path):
    """USPS in an empty data root, offline: every attempt fails to fetch it, retries included."""
    empty = tmp_path / "no-data-here"
    empty.mkdir()
    space = write(
        tmp_path / "broken.yaml",
        f"fixed:\n  dataset: usps\n  data_root: {empty}\n  max_epochs: 1\n" + GOOD_SEARCH,
    )
    result = run_cli(
        capsys,
        "launch",
        space,
        "--num-samples",
        1,
        "--repeats",
        1,
        "--storage",
        tmp_path,
        "--name",
        "broken",
    )
    assert result.code == ExitCode.TRIALS_FAILED == 3, result.err  # ran; its trials failed
    sweep = tmp_path / "broken"
    assert result.err == (
        f"2 of 2 trials ended in error (each trial's error.txt holds its "
        f"traceback); after fixing the cause, continue it with: te-sweep "
        f"resume {sweep}\n"
    )
    trials, epochs, meta = read_export(sweep)
    assert [t["status"] for t in trials] == ["error", "error"]
    assert all("usps" in t["error"] and "DataSourceError" in t["error"] for t in trials)
    assert epochs == [] and meta[b"te_sweep.partial"] == b"true"  # resume retries them
    assert "2 error" in result.out


def test_storage_given_as_a_uri(capsys, tmp_path):
    """The pyarrow filesystem path that s3:// and gs:// storage take, with file://."""
    space = blocks_space(tmp_path, max_epochs=1)
    uri = f"file://{tmp_path / 'remote'}"
    result = run_cli(
        capsys, "launch", space, "--num-samples", 1, "--repeats", 1, "--storage", uri, "--name", "u"
    )
    assert result.code == 0, result.err
    assert f"wrote {uri}/u/trials.parquet" in result.out
    trials, epochs, _ = read_export(tmp_path / "remote" / "u")
    assert len(trials) == 2 and len(epochs) == 2


@pytest.mark.parametrize("storage", ["{tmp}/results", "file://{tmp}/results"])
@pytest.mark.parametrize("given_by", ["--address", "RAY_ADDRESS"])
def test_local_storage_with_a_cluster_address_is_refused(
    capsys, tmp_path, monkeypatch, storage, given_by
):
    storage = storage.format(tmp=tmp_path)
    args = ["--address", "10.0.0.1:6379"] if given_by == "--address" else []
    if given_by == "RAY_ADDRESS":
        monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    result = run_cli(
        capsys, "launch", ROOT / "search_spaces" / "smoke.yaml", "--storage", storage, *args
    )
    assert_refused(result, "'--storage'", storage, "10.0.0.1:6379", "s3://", "--shared-storage")
    assert not (tmp_path / "results").exists()


def test_resume_on_a_cluster_refuses_local_storage_too(capsys, tmp_path):
    sweep = tmp_path / "results" / "s"
    sweep.mkdir(parents=True)
    (sweep / "te_sweep.json").write_text('{"sweep_id": "x", "space_path": "s.yaml"}')
    result = run_cli(capsys, "resume", sweep, "--address", "10.0.0.1:6379")
    assert_refused(result, "'--storage'", "--shared-storage")
    assert sorted(p.name for p in sweep.iterdir()) == ["te_sweep.json"]


def test_shared_storage_and_uris_are_accepted_on_a_cluster(tmp_path):
    from te_sweep.sweep.launch import SweepOptions, prepare_launch
    from te_sweep.sweep.ray_cluster import check_cluster_storage

    check_cluster_storage("s3://bucket/te-sweep", "10.0.0.1:6379", shared_storage=False)
    check_cluster_storage("gs://bucket/te-sweep", "10.0.0.1:6379", shared_storage=False)
    check_cluster_storage(str(tmp_path), None, shared_storage=False)  # local Ray: any path
    prepared = prepare_launch(
        str(ROOT / "search_spaces" / "smoke.yaml"),
        SweepOptions(storage=str(tmp_path / "nfs"), address="10.0.0.1:6379", shared_storage=True),
    )
    assert prepared.options.shared_storage and not (tmp_path / "nfs").exists()
