"""Optuna's GridSampler for ask-and-tell (`--sampler grid`).

GridSampler.after_trial calls study.stop() when the last grid point is told, which only works
inside study.optimize: with ask and tell (the sweep's searcher) it raises RuntimeError from
study.tell before the trial's values are stored. The sweep stops by itself after
--num-samples configurations, so the stop is left out. A class of its own module (not one
defined in a function) so that the searcher's snapshots can pickle it; imported only when a
grid sweep starts, because importing optuna is slow for the CLI.
"""

from __future__ import annotations

from typing import Any

from optuna.samplers import GridSampler


class AskTellGridSampler(GridSampler):
    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None
