"""`te-sweep report`: report.html and the figures as PNGs, from the Parquet tables alone.

report.html is one self-contained file: the figures are embedded as PNG data, the styles are
inline, and nothing is fetched from a network, so it opens offline and can be mailed or
archived. The same figures are written as figures/NAME.png beside it. It states in words what
the sweep can and cannot conclude (how the trials ended and the verdict, in the summary's
words from outcome_words.py; the estimator, the seeds, the censoring, the LR control), then
shows the figures (figures.py) and the configurations table. A figure that the data cannot
support (parameter importance from too few configurations) is replaced by the sentence saying
why. On the Pareto and parameter figures the best configurations' points carry an HTML image
map: hovering one shows which configuration it is. The table scrolls sideways inside the page.
The page of 10,000 configurations is written in seconds (bench/report_scale.py): only the
learning curves' epochs are read as rows.
A tiny inline script counts the figures the browser decoded into the page's
`data-figures-loaded` attribute, and says in `data-wider-than-window` whether anything runs
off the window's right edge, so a headless browser can check the page rendered.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from te_sweep.core.space import SearchSpace, space_from_text
from te_sweep.errors import InputError
from te_sweep.results.configs import CONFIGS_FILE
from te_sweep.results.export import EPOCHS_FILE, TRIALS_FILE, expected_trials
from te_sweep.results.outcome_words import outcome_sentences, partial_sentence
from te_sweep.results.storage import SweepDir

REPORT_FILE, FIGURES_DIR = "report.html", "figures"
TABLE_ROWS = 50  # configurations listed in the report's table (best ranked)
TABLE_COLUMNS = (
    "rank",
    "config_id",
    "status",
    "speedup_mean",
    "speedup_ci_low",
    "speedup_ci_high",
    "prob_te_faster",
    "p_holm",
    "beats_baselines",
    "censored_te",
    "censored_baseline",
    "censored_both",
    "objective_epochs",
    "te_overhead",
    "time_speedup_median",
    "control_speedup_mean",
)


class ReportError(InputError):
    """The sweep has no exported tables to report on."""


@dataclass
class Tables:
    trials: list[dict[str, Any]]
    epochs: pa.Table  # epochs.parquet as read: rows only where needed (epoch_rows)
    configs: list[dict[str, Any]]
    metadata: dict[str, str]
    space: SearchSpace

    def epoch_rows(self, trial_ids: set[str]) -> list[dict[str, Any]]:
        """The epochs of these trials as rows (a 10,000-trial sweep has ~100,000 epochs)."""
        import pyarrow.compute as pc

        mask = pc.is_in(self.epochs["trial_id"], pa.array(sorted(trial_ids), pa.string()))
        rows: list[dict[str, Any]] = self.epochs.filter(mask).to_pylist()
        return rows


def read_tables(sweep_dir: SweepDir) -> Tables:
    missing = [
        name for name in (TRIALS_FILE, EPOCHS_FILE, CONFIGS_FILE) if not sweep_dir.has_file(name)
    ]
    if missing:
        raise ReportError(
            f"{sweep_dir.uri} has no {', '.join(missing)}; run `te-sweep export "
            f"{sweep_dir.uri}` first (launch and resume write them at their end)"
        )

    def table(name: str) -> Any:
        try:
            return pq.read_table(io.BytesIO(sweep_dir.read_bytes(name)))
        except (pa.ArrowException, OSError) as err:  # truncated, empty, overwritten
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ReportError(
                f"{sweep_dir.file_uri(name)} is not a readable Parquet file "
                f"({first}); write it again with `te-sweep export "
                f"{sweep_dir.uri}`"
            ) from None

    trials = table(TRIALS_FILE)
    metadata = {
        k.decode().removeprefix("te_sweep."): v.decode()
        for k, v in (trials.schema.metadata or {}).items()
    }
    space = space_from_text(metadata["space"], Path(metadata["space_path"]), check_trials=False)
    return Tables(
        trials.to_pylist(), table(EPOCHS_FILE), table(CONFIGS_FILE).to_pylist(), metadata, space
    )


HOVER = " Hover a point to see its configuration (the {n} best ranked and the front)."
IMPORTANCE_CAPTION = (
    "Parameter importance for each objective (Optuna's PED-ANOVA): how much "
    "each parameter's values differ between the best 10% of the "
    "configurations and all. The scores are shares (they sum to 1), so one "
    "parameter leads even where none matters."
)


def figure_makers(t: Tables) -> list[tuple[str, str, Callable[[], Any] | str]]:
    """(file name, caption, function making the figure), in the report's order; in place of
    the function, the sentence saying why a figure is not shown."""
    from te_sweep.results import figures, importance, timeline

    baseline = next((r for r in t.trials if r["role"] == "baseline"), None) or (
        t.trials[0] if t.trials else None
    )
    target_metric = baseline["param_target_metric"] if baseline else "train_acc"
    target = baseline["param_target"] if baseline else 1.0
    return [
        (
            "speedups",
            "Paired speedup of each configuration over the baseline of the same "
            "seed, with its 95% bootstrap interval.",
            lambda: figures.speedup_intervals(t.configs),
        ),
        (
            "pareto",
            "The two objectives Optuna minimised, per configuration, with the "
            "Pareto front and the baselines." + HOVER.format(n=figures.NAMED_POINTS),
            lambda: figures.pareto_front(t.configs, t.trials),
        ),
        (
            "parameters",
            "Paired speedup, with its 95% interval, against each searched "
            "parameter." + HOVER.format(n=figures.NAMED_POINTS),
            lambda: figures.speedup_by_parameter(t.configs, t.space),
        ),
        (
            "curves",
            "Learning curves of the best configurations beside their paired baselines.",
            lambda: figures.learning_curves(
                t.configs,
                t.trials,
                t.epoch_rows(figures.curve_trial_ids(t.configs, t.trials)),
                target_metric,
                target,
            ),
        ),
        (
            "importance",
            IMPORTANCE_CAPTION,
            importance.importance_withheld(t.configs, t.space)
            or (lambda: importance.importances(t.configs, t.space)),
        ),
        (
            "timeline",
            "When the trials ran, and where: how many at once by role, and how many "
            "on each node (or GPU) over time.",
            lambda: timeline.timeline(t.trials),
        ),
    ]


DPI = 110  # of the PNGs; the image maps' pixel coordinates are at this resolution


def png_bytes(figure: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def image_map(name: str, figure: Any) -> str:
    """An HTML <map> naming the figure's named points (figures.point_areas), or "" when it
    names none; call after saving the figure, when its axes' limits are final."""
    from te_sweep.results.figures import point_areas

    areas = "".join(
        f'<area shape="circle" coords="{a.x:g},{a.y:g},{a.radius:g}" '
        f'title="{html.escape(a.title)}" alt="{html.escape(a.title)}">'
        for a in point_areas(figure, DPI)
    )
    return f'<map name="{name}-points">{areas}</map>' if areas else ""


def figure_html(name: str, caption: str, data: bytes, areas: str) -> str:
    """One figure: the PNG inline, its image map and caption. A mapped PNG keeps its own
    pixel size, so the map's coordinates hold, and scrolls sideways in a narrow window."""
    encoded = base64.b64encode(data).decode()
    img = f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}"'
    if areas:
        img = f'<div class="figure-scroll">{img} usemap="#{name}-points">{areas}</div>'
    else:
        img += ">"
    return f'<figure id="{name}">{img}<figcaption>{html.escape(caption)}</figcaption></figure>'


def withheld_html(name: str, reason: str) -> str:
    """A figure not shown: the sentence saying why, where it would be."""
    return f'<figure id="{name}"><p class="withheld">{html.escape(reason)}</p></figure>'


def conclusions(t: Tables) -> list[str]:
    """Sentences on what the sweep can and cannot conclude."""
    options = json.loads(t.metadata.get("options", "{}"))
    estimators = sorted(
        {r.get("param_te_estimator") or "plugin" for r in t.trials if r["role"] == "te"}
    )
    expected = expected_trials(options, t.configs) if "num_samples" in options else None
    lines = outcome_sentences(t.trials, t.configs, expected)
    repeats = options.get("repeats")
    if repeats:
        lines.append(
            f"Each configuration was trained on {repeats} seeds, each paired with a "
            "no-TE baseline of the same seed (same initial weights and batch order); "
            "speedups are paired, never against a median baseline."
        )
    censored = sum(c["censored_te"] + c["censored_baseline"] for c in t.configs)
    both = sum(c["censored_both"] for c in t.configs)
    if censored or both:
        lines.append(
            f"{censored} pairs had one side miss the target: they enter as bounds "
            f"(the missing side at max_epochs + 1); {both} pairs where both missed "
            "are left out of the estimates."
        )
    if "plugin" in estimators:
        lines.append(
            "With the plug-in TE (the paper's), the fed-back value is mostly the "
            "estimator's bias, about 1/((W-1) ln 2) bits, so a grad-mode effect may "
            "be a smaller last-layer step rather than transfer; the effective TE and "
            "the LR control (--lr-control) tell them apart."
        )
    controls = [c for c in t.configs if c["control_speedup_mean"] is not None]
    if controls:
        beyond = [c for c in controls if c["control_speedup_ci_low"] > 1]
        lines.append(
            f"{len(controls)} configurations have LR controls; {len(beyond)} of them "
            "reached the target faster than their control (interval above 1)."
        )
    if t.metadata.get("partial") == "true":
        lines.append(partial_sentence(t.trials, expected))
    return lines


def configs_table(configs: list[dict[str, Any]], space: SearchSpace) -> str:
    columns = (
        list(TABLE_COLUMNS[:3]) + [f"param_{n}" for n in space.params] + list(TABLE_COLUMNS[3:])
    )
    ranked = sorted(configs, key=lambda c: (c["rank"] is None, c["rank"] or 0, c["config_id"]))

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(c.removeprefix('param_'))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(c.get(col))}</td>" for col in columns) + "</tr>"
        for c in ranked[:TABLE_ROWS]
    )
    return (
        f'<div class="table-scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}
img{{max-width:100%}} table{{border-collapse:collapse;font-size:0.8em}}
img[usemap]{{max-width:none}} .table-scroll,.figure-scroll{{overflow-x:auto;max-width:100%}}
.withheld{{font-style:italic}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} figure{{margin:1.5em 0}}
</style></head>
<body data-figures="{count}" data-figures-loaded="0">
<h1>{title}</h1>
<p>{about}</p>
<h2>What this sweep can and cannot conclude</h2>
<ul>{conclusions}</ul>
{figures}
<h2>Configurations</h2>
<p>The {rows} best ranked of {total}, by the lower end of the paired speedup's interval
(configs.parquet holds them all, docs/results.md documents every column).</p>
{table}
<script>
window.addEventListener("load", function () {{
  var loaded = Array.prototype.filter.call(document.images,
      function (img) {{ return img.complete && img.naturalWidth > 0; }}).length;
  document.body.setAttribute("data-figures-loaded", String(loaded));
  var page = document.documentElement;
  document.body.setAttribute("data-wider-than-window", String(page.scrollWidth > page.clientWidth));
}});
</script>
</body></html>
"""


def write_report(sweep_dir: SweepDir, out: Path | None = None) -> list[str]:
    """Write report.html and figures/*.png (into the sweep, or `out`); return their paths."""
    tables = read_tables(sweep_dir)
    target = SweepDir(str(out.resolve().parent), out.resolve().name) if out else sweep_dir
    parts, paths = [], []
    for name, caption, make in figure_makers(tables):
        png = f"{FIGURES_DIR}/{name}.png"
        if isinstance(make, str):  # not shown: no PNG, not even last report's
            parts.append(withheld_html(name, make))
            if target.has_file(png):
                target.delete_file(png)
            continue
        figure = make()
        data = png_bytes(figure)
        target.write_bytes(png, data)
        paths.append(target.file_uri(png))
        parts.append(figure_html(name, caption, data, image_map(name, figure)))
    meta = tables.metadata
    page = PAGE.format(
        title=html.escape(f"te-sweep report: {meta.get('sweep_name', '?')}"),
        about=html.escape(
            f"Sweep {meta.get('sweep_id', '?')} of {meta.get('space_path', '?')}"
            f", exported {meta.get('exported_at', '?')}; "
            f"{len(tables.trials)} trials, {len(tables.configs)} "
            "configurations."
        ),
        conclusions="".join(f"<li>{html.escape(line)}</li>" for line in conclusions(tables)),
        figures="\n".join(parts),
        count=len(paths),
        rows=min(TABLE_ROWS, len(tables.configs)),
        total=len(tables.configs),
        table=configs_table(tables.configs, tables.space),
    )
    target.write_bytes(REPORT_FILE, page.encode())
    return [target.file_uri(REPORT_FILE), *paths]
