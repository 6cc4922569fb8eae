"""The per-trial result.json, as Tune's JsonLoggerCallback writes it minus the config.

Tune repeats the trial's whole config in every report line; params.json already holds it, once
per trial. Without it a line is about half as long, and the export parses half a million
lines for a sweep of 10,000 trials x 50 epochs. The lines keep every other key Tune writes, so
Tune's own readers (ExperimentAnalysis) still read them.
"""

from __future__ import annotations

from typing import Any

from ray.tune.logger import JsonLoggerCallback

CONFIG_KEY = "config"


class ResultLog(JsonLoggerCallback):
    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        super().log_trial_result(
            iteration, trial, {k: v for k, v in result.items() if k != CONFIG_KEY}
        )
