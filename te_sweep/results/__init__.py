"""A sweep's results, read back from the files on disk: tables, statistics, report. No Ray.

Everything here reads what trials and Tune wrote (storage, tune_files) and never starts Ray,
so results can be exported and read on a laptop from a copied sweep directory. It imports
te_sweep.core (a trial's records and outcome) and nothing from te_sweep.sweep
(tests/test_layers.py).

- Where a sweep lives: storage (the sweep directory, atomic writes), provenance (versions and
  git revision).
- Reading and tabulating: tune_files (Tune's files), report_lines (their report lines as one
  table), export (trials.parquet, epochs.parquet), param_columns, configs (configs.parquet),
  statistics (paired comparisons over seeds), optuna_db (the study as optuna.db).
- What a reader sees: summary (the end-of-sweep lines), outcome_words (how trials ended, in
  sentences), figures, importance and timeline (the report's figures), report (report.html).
"""

from __future__ import annotations

from te_sweep.surface import lazy_surface

# The names the layers above use, by module (tests/test_layers.py holds it to their imports).
EXPORTS = {
    "export": ("export_sweep",),
    "outcome_words": ("failed_trials",),
    "provenance": ("git_revision", "package_versions"),
    "report": ("write_report",),
    "storage": ("MANIFEST", "SweepDir", "check_storage", "is_uri", "normalize_storage", "reaching"),
    "summary": ("print_summary",),
    "tune_files": (
        "PARAMS_FILE",
        "RESULT_FILE",
        "STATE_GLOB",
        "error_line",
        "experiment_state",
        "state_is_readable",
    ),
}
__all__, __getattr__ = lazy_surface(__name__, EXPORTS)
