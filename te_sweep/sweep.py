"""Launching and resuming sweeps on Ray Tune: everything between the CLI and Tuner.fit.

`prepare_launch` validates the space file and every option and decides where the sweep lives,
without starting Ray, so bad input fails in a second with nothing written. `run_sweep` then
writes the manifest, starts (or connects to) Ray, runs the Tuner, and exports the Parquet
tables. `prepare_resume` / `run_sweep(resume=True)` continue a killed sweep with Tune's own
restore: finished trials are kept, interrupted ones continue from their last checkpoint,
and the Optuna study continues from the searcher's saved state.

Ray is imported lazily (it takes seconds); a local run gets its own single-node Ray with its
own temporary directory, so it never attaches to another Ray running on the machine.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from te_sweep.errors import ConfigError, InputError
from te_sweep.provenance import git_revision, package_versions
from te_sweep.space import SearchSpace, load_space
from te_sweep.storage import SweepDir, normalize_storage

SCHEDULERS = ("none", "asha")
# A local Ray declares this many GPUs instead of the real count: fractional-GPU packing can then
# be exercised on a CPU machine (trials get a GPU id from Ray and fall back to the CPU).
LOGICAL_GPUS_ENV = "TE_SWEEP_LOGICAL_GPUS"
MAX_FAILURES = 3  # a trial is retried from its last checkpoint this many times
MANIFEST_FORMAT = 1


class SweepStateError(InputError):
    """The storage location is not in a state the command can use (exit 2)."""


@dataclass(frozen=True)
class SweepOptions:
    num_samples: int = 8  # TE trials (baselines come on top)
    max_concurrent: int | None = None  # None: what the local machine or cluster can hold
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions pack several trials on one GPU
    address: str | None = None  # Ray cluster; None: RAY_ADDRESS, else a local Ray
    storage: str = "results"  # local directory or URI (s3://...)
    name: str | None = None  # None: <space file stem>-<UTC time>
    seed: int = 0
    baselines: int = 3
    scheduler: str = "none"
    resume_if_exists: bool = False

    def validate(self) -> None:
        checks = [
            (self.num_samples >= 1, "num_samples", f"{self.num_samples} must be at least 1"),
            (self.max_concurrent is None or self.max_concurrent >= 1, "max_concurrent",
             f"{self.max_concurrent} must be at least 1"),
            (self.cpus_per_trial > 0, "cpus_per_trial",
             f"{self.cpus_per_trial} must be > 0 (fractions allowed, e.g. 0.5)"),
            (self.gpus_per_trial >= 0, "gpus_per_trial",
             f"{self.gpus_per_trial} must be >= 0; 0 runs on CPUs, 0.25 packs 4 trials per GPU"),
            (self.gpus_per_trial <= 1 or self.gpus_per_trial == int(self.gpus_per_trial),
             "gpus_per_trial", f"{self.gpus_per_trial}: above 1 it must be a whole number"),
            (self.baselines >= 0, "baselines", f"{self.baselines} must be >= 0"),
            (self.scheduler in SCHEDULERS, "scheduler",
             f"{self.scheduler!r} is not one of {', '.join(SCHEDULERS)}"),
            (0 <= self.seed < 2**32, "seed", f"{self.seed} must be in [0, 2**32)"),
            (self.name is None or (self.name and "/" not in self.name
                                   and not self.name.startswith(".")), "name",
             f"{self.name!r} must be a plain directory name (no '/', not starting with '.')"),
        ]
        for ok, field, message in checks:
            if not ok:
                raise ConfigError(field, message)


@dataclass(frozen=True)
class PreparedSweep:
    space: SearchSpace
    options: SweepOptions
    sweep_dir: SweepDir
    resume: bool  # continue an existing sweep instead of starting one


def default_name(space: SearchSpace) -> str:
    return f"{space.path.stem}-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}"


def prepare_launch(space_path: str, options: SweepOptions) -> PreparedSweep:
    """All checks of `te-sweep launch`, before Ray starts or anything is written."""
    options.validate()
    space = load_space(space_path)
    options = replace(options, storage=normalize_storage(options.storage),
                      name=options.name or default_name(space))
    sweep_dir = SweepDir(options.storage, options.name)
    _check_local_resources(options)
    manifest = sweep_dir.read_manifest() if sweep_dir.exists() else None
    if manifest is None:
        if not sweep_dir.is_empty():
            raise SweepStateError(f"Invalid value for '--name': {sweep_dir.uri} exists and holds "
                                  "files that are not a te-sweep sweep; choose another --name "
                                  "or --storage")
        return PreparedSweep(space, options, sweep_dir, resume=False)
    if not options.resume_if_exists:
        raise SweepStateError(f"Invalid value for '--name': {sweep_dir.uri} already holds sweep "
                              f"{manifest['sweep_id']} (space {manifest['space_path']}); choose "
                              "another --name, or pass --resume-if-exists to continue it")
    if manifest["space_text"] != space.text:
        raise SweepStateError(f"Invalid value for '--resume-if-exists': {sweep_dir.uri} holds a "
                              f"sweep of a different space file ({manifest['space_path']}); "
                              "choose another --name")
    return _prepared_resume(sweep_dir, manifest, address=options.address)


def prepare_resume(path: str, address: str | None = None) -> PreparedSweep:
    """All checks of `te-sweep resume STORAGE/NAME`, before Ray starts."""
    sweep_dir = SweepDir.from_path(path)
    manifest = sweep_dir.read_manifest() if sweep_dir.exists() else None
    if manifest is None:
        raise SweepStateError(f"Invalid value for 'SWEEP_DIR': {sweep_dir.uri} holds no te-sweep "
                              "sweep (no te_sweep.json); give the STORAGE/NAME directory that "
                              "`te-sweep launch` printed")
    return _prepared_resume(sweep_dir, manifest, address=address)


def _prepared_resume(sweep_dir: SweepDir, manifest: dict[str, Any],
                     address: str | None) -> PreparedSweep:
    from ray.tune import Tuner

    if not Tuner.can_restore(sweep_dir.uri):
        raise SweepStateError(f"Invalid value for 'SWEEP_DIR': {sweep_dir.uri} has nothing to "
                              "restore (the sweep never started running, or Ray's experiment "
                              "state is missing); launch it again under a new --name")
    options = SweepOptions(**{**manifest["options"], "address": address})
    space = load_space_from_manifest(manifest)
    return PreparedSweep(space, options, sweep_dir, resume=True)


def load_space_from_manifest(manifest: dict[str, Any]) -> SearchSpace:
    """The space exactly as launched (the file may have changed or moved since)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / Path(manifest["space_path"]).name
        copy.write_text(manifest["space_text"])
        space = load_space(copy)
    return replace(space, path=Path(manifest["space_path"]))


def _check_local_resources(options: SweepOptions) -> None:
    """A local Ray must be able to hold one trial, or Tune would wait forever."""
    if options.address or os.environ.get("RAY_ADDRESS"):
        return
    cpus = os.cpu_count() or 1
    if options.cpus_per_trial > cpus:
        raise ConfigError("cpus_per_trial", f"{options.cpus_per_trial:g} but this machine has "
                          f"{cpus} CPUs; ask for at most {cpus}, or use --address of a cluster")
    if options.gpus_per_trial > 0:
        gpus = local_gpus()
        if options.gpus_per_trial > gpus or gpus == 0:
            raise ConfigError("gpus_per_trial", f"{options.gpus_per_trial:g} but this machine "
                              f"has {gpus} GPUs; use --gpus-per-trial 0, or --address of a "
                              "cluster with GPUs")


def local_gpus() -> int:
    """GPUs a local Ray offers: $TE_SWEEP_LOGICAL_GPUS when set, else the CUDA devices."""
    if os.environ.get(LOGICAL_GPUS_ENV):
        return int(os.environ[LOGICAL_GPUS_ENV])
    import torch

    return torch.cuda.device_count()


def new_manifest(prepared: PreparedSweep) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "sweep_id": uuid.uuid4().hex[:12],
        "name": prepared.options.name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "space_path": str(prepared.space.path),
        "space_text": prepared.space.text,
        "options": {k: v for k, v in asdict(prepared.options).items() if k != "address"},
        "versions": package_versions(),
        "git_revision": git_revision(),
    }


def quiet_libraries() -> None:
    """Our live table replaces Ray's reporter and banners; Optuna's info logs go too."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # legacy output: silent at verbose=0
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextmanager
def ray_session(address: str | None) -> Iterator[str]:
    """Connect to a cluster (--address, else RAY_ADDRESS) or start a private local Ray."""
    quiet_libraries()
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    temp_dir = None
    if address:
        ray.init(address=address, **quiet)
        where = f"cluster at {address}"
    else:
        temp_dir = tempfile.mkdtemp(prefix="te-sweep-ray-")
        ray.init(address="local", include_dashboard=False, _temp_dir=temp_dir,
                 num_gpus=local_gpus(), **quiet)
        where = "local single-node Ray"
    for name in ("ray.tune", "ray.train", "ray.air"):  # tracebacks of failed attempts: the
        logging.getLogger(name).setLevel(logging.CRITICAL)  # live table prints one line each
    try:
        yield where
    finally:
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def trial_dirname(trial: Any) -> str:
    return f"{trial.config.get('role', 'trial')}_{trial.trial_id}"


def _max_concurrent(options: SweepOptions) -> int:
    """Set max_concurrent_trials always: without it a searcher has one pending trial at a time."""
    if options.max_concurrent:
        return options.max_concurrent
    import ray

    resources = ray.cluster_resources()
    by_cpu = int(resources.get("CPU", 1) // options.cpus_per_trial)
    by_gpu = (int(resources.get("GPU", 0) // options.gpus_per_trial)
              if options.gpus_per_trial else by_cpu)
    return max(1, min(by_cpu, by_gpu))


def _trial_device(prepared: PreparedSweep) -> str | None:
    """Trials without a GPU request run on the CPU even where the node has GPUs."""
    device = prepared.space.fixed.get("device", "auto")
    return "cpu" if prepared.options.gpus_per_trial == 0 and device == "auto" else None


def build_tuner(prepared: PreparedSweep, callbacks: list) -> Any:
    from ray import tune

    from te_sweep.searcher import SweepSearcher, TEOnlyASHA
    from te_sweep.trainable import train_function

    opts = prepared.options
    trainable = tune.with_resources(train_function,
                                    {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial})
    if prepared.resume:
        return tune.Tuner.restore(prepared.sweep_dir.uri, trainable=trainable,
                                  resume_unfinished=True, resume_errored=True)
    threads = max(1, int(opts.cpus_per_trial))
    searcher = SweepSearcher(prepared.space, opts.seed, opts.baselines, threads,
                             device=_trial_device(prepared))
    scheduler = None
    if opts.scheduler == "asha":
        cfg = prepared.space.baseline_config(0)
        scheduler = TEOnlyASHA(metric=cfg.target_metric, mode="max",
                               time_attr="training_iteration", max_t=cfg.max_epochs,
                               grace_period=1, reduction_factor=3)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=opts.num_samples + opts.baselines,
                                    max_concurrent_trials=_max_concurrent(opts),
                                    reuse_actors=True, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(name=opts.name, storage_path=opts.storage,
                                  failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
                                  callbacks=callbacks, verbose=0),
    )


def run_sweep(prepared: PreparedSweep, echo: Callable[[str], None]) -> dict[str, Any]:
    """Run (or continue) the sweep to its end, export it, return the export summary."""
    from te_sweep.export import export_sweep
    from te_sweep.progress import LiveTable

    if not prepared.resume:
        prepared.sweep_dir.write_manifest(new_manifest(prepared))
    with ray_session(prepared.options.address) as where:
        verb = "resuming" if prepared.resume else "launching"
        echo(f"{verb} sweep {prepared.sweep_dir.uri} on the {where}")
        tuner = build_tuner(prepared, callbacks=[LiveTable(echo)])
        tuner.fit()
    return export_sweep(prepared.sweep_dir)
