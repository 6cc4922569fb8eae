"""The training core: one trial, from its settings to its per-epoch records. No Ray.

`te-sweep train` and every sweep trial run this layer; the tests run it directly. It imports
nothing from te_sweep.results or te_sweep.sweep (tests/test_layers.py), and never Ray, so a
trial's code can be read, run and profiled without a cluster.

- The settings: config (TrialConfig), presets (the paper's five CNNs), space (a search space
  file: which settings are fixed and which Optuna searches), preflight (every check made before
  data is loaded).
- Training: sources, npz and data (the data set on the device), models, train (the loop),
  timing, cpu_threads.
- The TE feedback: te (batched transfer entropy), te_window (sliding counts), feedback (the
  step that feeds TE back into the weights), te_compile (torch.compile for it).
- What a trial reports: metrics (the per-epoch metrics), outcome (status and epochs to
  target), objectives (what Optuna minimises), reporting (the dict told to Tune each epoch),
  console (the terminal's epoch table).
"""

from __future__ import annotations

from te_sweep.surface import lazy_surface

# The names the layers above use, by module (tests/test_layers.py holds it to their imports).
EXPORTS = {
    "config": (
        "HIDDEN_RULES",
        "MODES",
        "ResolvedConfig",
        "TARGET_METRICS",
        "TE_ESTIMATORS",
        "TrialConfig",
        "resolve",
    ),
    "console": ("EpochTable", "cell", "counts"),
    "cpu_threads": ("prefer_passive_waiting", "wait_policy", "worker_env"),
    "metrics": ("EPOCH_METRICS", "clean_record"),
    "objectives": ("censored_score", "mean_of_present", "te_overhead_of", "total_of"),
    "outcome": (
        "CONFIG_COMPLETE",
        "CONFIG_ERROR",
        "CONFIG_PRUNED",
        "FINAL_STATUSES",
        "STATUS_CENSORED",
        "STATUS_COMPLETE",
        "STATUS_DIVERGED",
        "STATUS_ERROR",
        "STATUS_PRUNED",
        "STATUS_UNFINISHED",
        "configuration_status",
        "outcome_of",
        "trial_status",
    ),
    "preflight": ("check_device_here", "check_trial"),
    "reporting": ("FACTOR_KEY", "RECORD_COLUMNS", "RECORD_KEY", "RUNNING", "Role", "tune_result"),
    "space": ("Param", "SearchSpace", "SpaceError", "load_space", "space_from_text"),
    "train": ("Trainer", "device_name", "resolve_device", "run_trial"),
}
__all__, __getattr__ = lazy_surface(__name__, EXPORTS)
