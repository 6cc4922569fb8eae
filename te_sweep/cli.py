"""The `te-sweep` command line: a thin layer over the library.

Library exceptions become messages and exit codes only here: a bad value exits 2 with one line
naming the value and the fix, before any data is loaded; a domain failure (a data set that
cannot be fetched) exits 1 with one line. torch and the training code are imported lazily so
`te-sweep --help` is instant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from te_sweep.core.config import HIDDEN_RULES, MODES, TARGET_METRICS, TE_ESTIMATORS, TrialConfig
from te_sweep.core.cpu_threads import prefer_passive_waiting
from te_sweep.errors import ConfigError, InputError, TESweepError, yaml_problem
from te_sweep.sweep.checkpoints import KEEP_CHOICES
from te_sweep.sweep.samplers import AUTO_SAMPLER, SAMPLER_CHOICES

# TrialConfig field -> CLI option, where the option is not just the field with dashes.
OPTION_FOR_FIELD = {"max_epochs": "--epochs"}


def option_name(field: str) -> str:
    return OPTION_FOR_FIELD.get(field, "--" + field.replace("_", "-"))


def _load_config_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        values = yaml.safe_load(path.read_text())
    except OSError as err:
        raise InputError(
            f"Invalid value for '--config': cannot read {path}: "
            f"{err.strerror}; give a readable YAML or JSON file"
        ) from None
    except yaml.YAMLError as err:
        raise InputError(
            f"Invalid value for '--config': {path} is not valid YAML/JSON"
            f"{yaml_problem(err)}; fix the syntax"
        ) from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError(
            f"Invalid value for '--config': {path} must hold a mapping of "
            "trial settings, e.g. 'te_scale: 1.0'"
        )
    return values


def build_config(options: dict[str, Any], config_file: Path | None) -> tuple[TrialConfig, set[str]]:
    """TrialConfig from a config file overridden by the options given on the command line.

    Also returns the fields whose value came from the file, so that an error in one of them
    names the file and its key rather than a command-line option the user never typed.
    """
    file_values = _load_config_file(config_file) if config_file else {}
    try:
        base = TrialConfig.from_dict(file_values)
    except ConfigError as err:
        raise _file_error(err, config_file) from None
    given = {k: v for k, v in options.items() if v is not None}
    return base.replace(**given), set(file_values) - set(given)


def _file_error(err: ConfigError, config_file: Path | None) -> InputError:
    """A ConfigError about a key or value read from --config FILE, naming the file."""
    kind = "value for" if err.field in TrialConfig.__dataclass_fields__ else "key"
    return InputError(f"Invalid {kind} '{err.field}' in {config_file}: {err.message}")


def _check_output(path: Path | None, overwrite: bool, inputs: list[Path]) -> None:
    """Refuse an output path that would lose something on disk, before any work starts."""
    if path is None:
        return
    problem = None
    if path.is_dir():
        problem = f"{path} is a directory; give a file path such as {path / 'records.json'}"
    elif any(path.resolve() == p.resolve() for p in inputs):
        problem = f"{path} is an input of this trial; choose another path"
    elif path.exists() and not overwrite:
        problem = f"{path} already exists; choose another path or pass --overwrite"
    elif not path.parent.exists():
        problem = f"directory {path.parent} does not exist; create it first"
    elif not path.parent.is_dir():
        problem = f"{path.parent} is not a directory; choose a path inside a directory"
    if problem:
        raise InputError(f"Invalid value for '--json': {problem}")


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="te-sweep")
def cli() -> None:
    """Sweeps over transfer-entropy modulated CNN training."""
    prefer_passive_waiting()  # before any command imports torch (cpu_threads.py)


@cli.command()
@click.option(
    "--dataset",
    help="fashion-mnist, usps, cifar10, svhn, stl10, or PATH.npz [default: fashion-mnist]",
)
@click.option(
    "--preset",
    help="architecture and optimiser settings [default: the data set's; fashion-mnist for an .npz]",
)
@click.option("--subset", type=int, help="train on a stratified first N training images")
@click.option(
    "--data-root",
    help="torchvision data directory [default: $TE_SWEEP_DATA or ~/.cache/te-sweep/data]",
)
@click.option("--epochs", "max_epochs", type=int, help="epochs at most [default: 10]")
@click.option(
    "--target-metric",
    type=click.Choice(TARGET_METRICS),
    help="metric compared with --target [default: train_acc, as in the paper]",
)
@click.option(
    "--target",
    type=float,
    help="accuracy that ends the trial [default: the paper's for the preset, e.g. 0.97]",
)
@click.option(
    "--other-split-every",
    type=int,
    help="evaluate the split the target does not "
    "read every N epochs and at the last (the target's: every epoch) [default: 5]",
)
@click.option("--lr", type=float, help="SGD learning rate [default: the preset's]")
@click.option("--momentum", type=float, help="SGD momentum [default: the preset's]")
@click.option("--weight-decay", type=float, help="L2 penalty [default: the preset's]")
@click.option("--batch-size", type=int, help="training batch size [default: the preset's]")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    help="grad: scale last-layer gradients by "
    "1 - s*TE; paper: the authors' W <- (I-T)^T W [default: grad]",
)
@click.option(
    "--te-scale", type=float, help="TE feedback strength s >= 0; 0 = no-TE baseline [default: 1.0]"
)
@click.option(
    "--pair-fraction", type=float, help="share of neuron pairs fed back, in (0, 1] [default: 1.0]"
)
@click.option(
    "--window",
    type=int,
    help="TE window in training samples, >= 2 [default: the preset's, 500 for fashion-mnist]",
)
@click.option("--threshold", type=float, help="binarisation: |z| >= g is 1 [default: 1.0]")
@click.option(
    "--prob-threshold", type=float, help="paper mode: softmax p >= this is 1 [default: 0.9]"
)
@click.option(
    "--te-every",
    type=int,
    help="recompute the TE every N steps; the feedback "
    "acts at every step all the same [default: 1]",
)
@click.option(
    "--redraw-pairs/--no-redraw-pairs",
    default=None,
    help="draw a new pair subset every epoch [default: once per trial]",
)
@click.option(
    "--hidden-rule",
    type=click.Choice(HIDDEN_RULES),
    help="grad mode's hidden units: two_sided: |pre-activation| >= threshold is 1 "
    "(the paper's code); one_sided: the post-ReLU output >= threshold [default: "
    "two_sided]",
)
@click.option(
    "--te-estimator",
    type=click.Choice(TE_ESTIMATORS),
    help="plugin: the paper's TE; effective: minus the TE of a time-shuffled "
    "source, so the estimator's bias is not fed back [default: plugin]",
)
@click.option(
    "--last-lr-scale",
    type=float,
    help="multiply the last layer's learning rate (the LR control of a sweep) [default: 1.0]",
)
@click.option(
    "--te-compile/--no-te-compile",
    default=None,
    help="torch.compile the TE step into a few fused kernels [default: on CUDA only]",
)
@click.option("--seed", type=int, help="random seed [default: 0]")
@click.option("--device", help="auto, cpu, cuda or cuda:N [default: auto]")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="YAML or JSON file of trial settings; options given here override it",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    help="write the per-epoch records to this JSON file (updated every epoch)",
)
@click.option("--overwrite", is_flag=True, help="allow --json to replace an existing file")
def train(
    config_file: Path | None, json_path: Path | None, overwrite: bool, **options: Any
) -> None:
    """Run one trial and print a live per-epoch table."""
    from te_sweep.core.preflight import check_trial

    cfg, from_file = build_config(options, config_file)
    try:
        cfg = check_trial(cfg)
    except ConfigError as err:
        if err.field in from_file:
            raise _file_error(err, config_file) from None
        raise
    inputs = [Path(cfg.dataset)] + ([config_file] if config_file else [])
    _check_output(json_path, overwrite, inputs)

    from te_sweep.core.train import run_trial

    click.echo(
        f"trial: {cfg.dataset} preset={cfg.preset} subset={cfg.subset} mode={cfg.mode} "
        f"te_scale={cfg.te_scale:g} pair_fraction={cfg.pair_fraction:g} "
        f"window={cfg.window} threshold={cfg.threshold:g} seed={cfg.seed} "
        f"target {cfg.target_metric} >= {cfg.target:g} within {cfg.max_epochs} epochs"
    )
    from te_sweep.core.console import EpochTable

    table = EpochTable(click.echo)
    records: list[dict[str, Any]] = []

    def report(record: dict[str, Any]) -> None:
        table.row(record)
        records.append(record)
        if json_path:
            write_json_atomic(json_path, records)

    result = run_trial(cfg, report)
    reached = (
        f"target reached at epoch {result.epochs_to_target} after "
        f"{result.seconds_to_target:.1f} s of training"
        if result.epochs_to_target
        else "target not reached"
    )
    click.echo(f"status: {result.status}; {reached}; device {result.device}")


def _sweep_options(function: Any) -> Any:
    """The options `launch` takes (shared option group)."""
    options = [
        click.option(
            "--num-samples",
            type=int,
            default=8,
            show_default=True,
            help="configurations Optuna suggests; each is trained --repeats times",
        ),
        click.option(
            "--repeats",
            type=int,
            default=3,
            show_default=True,
            help="seeds per configuration, each paired with a no-TE baseline of "
            "the same seed (one per seed, shared)",
        ),
        click.option(
            "--lr-control",
            is_flag=True,
            help="grad mode: also train, per configuration and seed, a no-TE run "
            "whose last layer's lr is scaled by the mean factor the feedback applied",
        ),
        click.option(
            "--max-concurrent",
            type=int,
            default=None,
            help="trials in flight (running or queued) [default: locally, what the "
            "CPUs/GPUs hold; on a cluster, what it holds now plus as many again "
            "queued (8 to 64) for the autoscaler, re-read as nodes join]",
        ),
        click.option(
            "--cpus-per-trial",
            type=float,
            default=1.0,
            show_default=True,
            help="CPUs per trial (also its torch threads)",
        ),
        click.option(
            "--gpus-per-trial",
            type=float,
            default=0.0,
            show_default=True,
            help="GPUs per trial; fractions pack trials on a GPU, e.g. 0.25",
        ),
        click.option(
            "--storage",
            default="results",
            show_default=True,
            help="local directory or shared URI (s3://...) holding sweeps",
        ),
        SHARED_STORAGE_OPTION,
        click.option(
            "--name",
            default=None,
            help="sweep directory under --storage [default: SPACE-<UTC time>]",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="seeds the sampler and the trials",
        ),
        click.option(
            "--scheduler",
            type=click.Choice(["none", "asha"]),
            default="none",
            show_default=True,
            help="asha stops unpromising TE trials early",
        ),
        click.option(
            "--sampler",
            type=click.Choice(SAMPLER_CHOICES),
            default="auto",
            show_default=True,
            help=f"Optuna sampler; auto: {AUTO_SAMPLER.value} "
            "(measured best at 100 to 10,000 trials, BENCHMARKS.md); grid: every "
            "combination of a space of {choices: [...]} (a designed comparison)",
        ),
        click.option(
            "--keep-checkpoints",
            type=click.Choice(KEEP_CHOICES),
            default="final",
            show_default=True,
            help="what a finished trial keeps on the storage: its final checkpoint, or none",
        ),
        click.option(
            "--resume-if-exists",
            is_flag=True,
            help="continue the sweep already under --storage/--name",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


SHARED_STORAGE_OPTION = click.option(
    "--shared-storage",
    is_flag=True,
    help="with --address: the local --storage path is mounted at the same place on every "
    "node (NFS), so a local path is accepted",
)
ADDRESS_OPTION = click.option(
    "--address",
    default=None,
    help="Ray cluster address [default: $RAY_ADDRESS, else a private local Ray]",
)


def _finish_sweep(prepared: Any) -> None:
    """Run the sweep, print its summary, write its report, and exit with a code that tells
    what happened (exit_codes.py): a stop by a signal or by the driver itself, trials in
    error, or a sweep that ended with trials unfinished."""
    from te_sweep.sweep.run import run_sweep
    from te_sweep.sweep.stopping import Phase, StopController, SweepStopped

    where = prepared.sweep_dir.uri
    resume_line = f"continue it with: te-sweep resume {where}"
    with StopController(click.echo) as stop:
        try:
            export = run_sweep(prepared, click.echo, stop=stop)
        except SweepStopped as stopped:
            if stop.phase is Phase.SETUP:
                ran = "nothing was run" + ("" if prepared.resume else ", nothing was kept")
                later = (
                    f"; {resume_line}"
                    if prepared.resume
                    else "; launch it again when you are ready"
                )
                click.echo(
                    f"sweep stopped ({stopped.cause.name}) before it started: {ran}{later}",
                    err=True,
                )
            else:
                click.echo(
                    f"sweep stopped ({stopped.cause.name}) while exporting: the tables "
                    f"were not written (te-sweep export {where} writes them); "
                    f"{resume_line}",
                    err=True,
                )
            raise click.exceptions.Exit(stopped.cause.code) from None
        try:
            _summarise(prepared, export, skip_report=stop.hurried, stop=stop)
        except SweepStopped as stopped:
            click.echo(
                f"sweep stopped ({stopped.cause.name}) after its tables were written: "
                f"report.html was not (te-sweep report {where} writes it)"
                + (f"; {resume_line}" if export["partial"] else ""),
                err=True,
            )
            raise click.exceptions.Exit(stopped.cause.code) from None
    raise click.exceptions.Exit(_sweep_exit(export, stop.cause, resume_line))


def echo_damaged(export: dict[str, Any]) -> None:
    """One line per file the export skipped as unreadable (export_sweep's "damaged")."""
    for path in export.get("damaged", []):
        click.echo(
            f"skipped {path}: it cannot be read (cut short by a full disk or a crash?); "
            "the tables are marked partial",
            err=True,
        )


def _summarise(prepared: Any, export: dict[str, Any], skip_report: bool, stop: Any) -> None:
    from te_sweep.results.report import write_report
    from te_sweep.results.summary import print_summary
    from te_sweep.sweep.stopping import Phase

    echo_damaged(export)
    print_summary(export, list(prepared.space.params), click.echo)
    if skip_report:
        click.echo(
            f"report.html not written (stopped at once); te-sweep report "
            f"{prepared.sweep_dir.uri} writes it"
        )
        return
    stop.enter(Phase.REPORT)
    click.echo(f"wrote {write_report(prepared.sweep_dir)[0]} (figures beside it)")


def _sweep_exit(export: dict[str, Any], cause: Any, resume_line: str) -> int:
    """The exit code of a sweep that was exported, and the line that explains it (stderr)."""
    from te_sweep.exit_codes import ExitCode
    from te_sweep.results.outcome_words import failed_trials

    errored = failed_trials(export)
    if cause is not None:  # stopped: finished trials are saved and exported
        click.echo(f"sweep stopped ({cause.name}); {resume_line}", err=True)
        return int(cause.code)
    if errored:
        click.echo(
            f"{errored} of {len(export['rows'])} trials ended in error (each trial's "
            f"error.txt holds its traceback); after fixing the cause, {resume_line}",
            err=True,
        )
        return int(ExitCode.TRIALS_FAILED)
    if export["partial"]:
        click.echo(f"the sweep ended with trials unfinished; {resume_line}", err=True)
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


@cli.command()
@click.argument("space", type=click.Path(path_type=Path))
@_sweep_options
@ADDRESS_OPTION
def launch(space: Path, **options: Any) -> None:
    """Run a sweep over SPACE (a search space YAML file) on Ray Tune with Optuna."""
    from te_sweep.sweep.launch import SweepOptions, prepare_launch

    _finish_sweep(prepare_launch(str(space), SweepOptions(**options)))


@cli.command()
@click.argument("sweep_dir", metavar="SWEEP_DIR")
@ADDRESS_OPTION
@SHARED_STORAGE_OPTION
def resume(sweep_dir: str, address: str | None, shared_storage: bool) -> None:
    """Continue a killed or interrupted sweep at SWEEP_DIR (STORAGE/NAME)."""
    from te_sweep.sweep.launch import prepare_resume

    _finish_sweep(prepare_resume(sweep_dir, address, shared_storage))


@cli.command()
@click.argument("sweep_dir", metavar="SWEEP_DIR")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="directory for the tables [default: SWEEP_DIR]",
)
def export(sweep_dir: str, out: Path | None) -> None:
    """Write trials.parquet, epochs.parquet, configs.parquet and optuna.db of the sweep at
    SWEEP_DIR (no Ray needed)."""
    from te_sweep.results.export import export_sweep
    from te_sweep.results.storage import SweepDir

    _check_out_dir(out)
    result = export_sweep(SweepDir.from_path(sweep_dir), out)
    echo_damaged(result)
    state = "partial sweep" if result["partial"] else "complete sweep"
    click.echo(f"{len(result['rows'])} trials ({state})")
    for path in result["paths"]:
        click.echo(f"wrote {path}")


def _check_out_dir(out: Path | None) -> None:
    """--out names a directory (made if missing); an existing file there is never replaced."""
    if out is not None and out.exists() and not out.is_dir():
        raise InputError(
            f"Invalid value for '--out': {out} is a file; give a directory "
            "(it is created if missing)"
        )


@cli.command()
@click.argument("sweep_dir", metavar="SWEEP_DIR")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="directory for report.html and figures/ [default: SWEEP_DIR]",
)
def report(sweep_dir: str, out: Path | None) -> None:
    """Write report.html (one self-contained file) and figures/*.png for the sweep at
    SWEEP_DIR, from its Parquet tables (no Ray needed)."""
    from te_sweep.results.report import write_report
    from te_sweep.results.storage import SweepDir

    _check_out_dir(out)
    for path in write_report(SweepDir.from_path(sweep_dir), out):
        click.echo(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line on stderr and exit 2 for bad input, exit 1 for other failures."""
    try:
        code = cli.main(args=argv, prog_name="te-sweep", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:  # bare `te-sweep`: show the help
        click.echo(err.ctx.get_help())
        sys.exit(0)
    except click.exceptions.UsageError as err:
        click.echo(f"Error: {err.format_message()}", err=True)
        sys.exit(2)
    except ConfigError as err:
        click.echo(f"Error: Invalid value for '{option_name(err.field)}': {err.message}", err=True)
        sys.exit(2)
    except InputError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except TESweepError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
