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
import json
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from te_sweep.core.cpu_threads import prefer_passive_waiting, worker_env
from te_sweep.core.space import SearchSpace, SpaceError, load_space, space_from_text
from te_sweep.errors import ConfigError, InputError, TESweepError
from te_sweep.exit_codes import ExitCode
from te_sweep.results.provenance import git_revision, package_versions
from te_sweep.results.storage import MANIFEST, SweepDir, check_storage, is_uri, normalize_storage
from te_sweep.sweep.checkpoints import KEEP_CHOICES
from te_sweep.sweep.claim import CLAIM_FILE, LEASE_FILE, SweepClaim
from te_sweep.sweep.samplers import SAMPLER_CHOICES, SamplerName, grid_size
from te_sweep.sweep.stopping import Phase, StopController, SweepStopped

SCHEDULERS = ("none", "asha")
LOCAL_ADDRESS = "local"  # RAY_ADDRESS=local means a local Ray, not a cluster
AUTO_ADDRESS = "auto"  # Ray finds the cluster this machine belongs to
CONNECT_TIMEOUT_S = 5.0  # how long the reachability check waits for the head to answer
# A local Ray declares this many GPUs instead of the real count: fractional-GPU packing can then
# be exercised on a CPU machine (trials get a GPU id from Ray and fall back to the CPU).
LOGICAL_GPUS_ENV = "TE_SWEEP_LOGICAL_GPUS"
# Likewise CPUs: the scale benchmark runs dozens of stand-in trials at once on 2 cores.
LOGICAL_CPUS_ENV = "TE_SWEEP_LOGICAL_CPUS"
MAX_FAILURES = 3  # a trial is retried from its last checkpoint this many times
MANIFEST_FORMAT = 1
CLAIM_FILES = (CLAIM_FILE, LEASE_FILE)  # a driver's claim is not a sweep's content


class SweepStateError(InputError):
    """The storage location is not in a state the command can use (exit 2)."""


class ClusterError(TESweepError):
    """The Ray cluster given by --address or RAY_ADDRESS could not be reached (exit 1)."""


@dataclass(frozen=True)
class SweepOptions:
    num_samples: int = 8  # configurations Optuna suggests, each trained on `repeats` seeds
    max_concurrent: int | None = None  # None: what the local machine or cluster can hold
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions pack several trials on one GPU
    address: str | None = None  # Ray cluster; None: RAY_ADDRESS, else a local Ray
    storage: str = "results"  # local directory or URI (s3://...)
    name: str | None = None  # None: <space file stem>-<UTC time>
    seed: int = 0
    repeats: int = 3  # seeds per configuration; one shared no-TE baseline per seed
    lr_control: bool = False  # grad mode: also train each configuration's LR controls
    scheduler: str = "none"
    sampler: str = "auto"  # samplers.SAMPLER_CHOICES
    keep_checkpoints: str = "final"  # checkpoints.KEEP_CHOICES: what a finished trial keeps
    shared_storage: bool = False  # the local --storage path is the same on every node (NFS)
    resume_if_exists: bool = False

    def validate(self) -> None:
        checks = [
            (self.num_samples >= 1, "num_samples", f"{self.num_samples} must be at least 1"),
            (
                self.max_concurrent is None or self.max_concurrent >= 1,
                "max_concurrent",
                f"{self.max_concurrent} must be at least 1",
            ),
            (
                self.cpus_per_trial > 0,
                "cpus_per_trial",
                f"{self.cpus_per_trial} must be > 0 (fractions allowed, e.g. 0.5)",
            ),
            (
                self.gpus_per_trial >= 0,
                "gpus_per_trial",
                f"{self.gpus_per_trial} must be >= 0; 0 runs on CPUs, 0.25 packs 4 trials per GPU",
            ),
            (
                self.gpus_per_trial <= 1 or self.gpus_per_trial == int(self.gpus_per_trial),
                "gpus_per_trial",
                f"{self.gpus_per_trial}: above 1 it must be a whole number",
            ),
            (
                self.repeats >= 1,
                "repeats",
                f"{self.repeats} must be at least 1; 3 shows the "
                "spread over seeds, 5 or more can show a speedup (docs/sweeps.md: Repeats and "
                "pairing)",
            ),
            (
                self.scheduler in SCHEDULERS,
                "scheduler",
                f"{self.scheduler!r} is not one of {', '.join(SCHEDULERS)}",
            ),
            (
                self.sampler in SAMPLER_CHOICES,
                "sampler",
                f"{self.sampler!r} is not one of {', '.join(SAMPLER_CHOICES)}",
            ),
            (
                self.keep_checkpoints in KEEP_CHOICES,
                "keep_checkpoints",
                f"{self.keep_checkpoints!r} is not one of {', '.join(KEEP_CHOICES)}",
            ),
            (0 <= self.seed < 2**32, "seed", f"{self.seed} must be in [0, 2**32)"),
            (
                self.name is None
                or (self.name and "/" not in self.name and not self.name.startswith(".")),
                "name",
                f"{self.name!r} must be a plain directory name (no '/', not starting with '.')",
            ),
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
    check_storage(options.storage)
    space = load_space(space_path)
    options = replace(
        options,
        storage=normalize_storage(options.storage),
        name=options.name or default_name(space),
    )
    sweep_dir = SweepDir(options.storage, options.name)
    SweepClaim.refuse_if_held(sweep_dir)
    _check_local_resources(options)
    check_sampler(space, options)
    check_trial_device(space, options)
    check_cluster_storage(options.storage, options.address, options.shared_storage)
    check_cluster_reachable(options.address)
    return decide_launch(space, options, sweep_dir)


def decide_launch(space: SearchSpace, options: SweepOptions, sweep_dir: SweepDir) -> PreparedSweep:
    """A new sweep, or (with --resume-if-exists) the one already at `sweep_dir`. Decided again
    under the driver's claim (claimed_sweep): another driver may have started it meanwhile."""
    manifest = sweep_dir.read_manifest() if sweep_dir.exists() else None
    if manifest is None:
        if not sweep_dir.is_empty(ignoring=CLAIM_FILES):
            raise SweepStateError(
                f"Invalid value for '--name': {sweep_dir.uri} exists and holds "
                "files that are not a te-sweep sweep; choose another --name "
                "or --storage"
            )
        return PreparedSweep(space, options, sweep_dir, resume=False)
    if not options.resume_if_exists:
        raise SweepStateError(
            f"Invalid value for '--name': {sweep_dir.uri} already holds sweep "
            f"{manifest['sweep_id']} (space {manifest['space_path']}); choose "
            "another --name, or pass --resume-if-exists to continue it"
        )
    if (
        manifest["space_text"] != space.text
        and Path(manifest["space_path"]).resolve() == space.path.resolve()
    ):
        raise SweepStateError(
            f"Invalid value for '--resume-if-exists': {space.path} has changed "
            f"since sweep {sweep_dir.uri} was launched from it; restore it as "
            f"it was (the sweep's {MANIFEST} holds its text), or choose "
            "another --name"
        )
    if manifest["space_text"] != space.text:
        raise SweepStateError(
            f"Invalid value for '--resume-if-exists': {sweep_dir.uri} holds a "
            f"sweep of a different space file ({manifest['space_path']}); "
            "choose another --name"
        )
    return _prepared_resume(
        sweep_dir, manifest, address=options.address, shared_storage=options.shared_storage
    )


def prepare_resume(
    path: str, address: str | None = None, shared_storage: bool = False
) -> PreparedSweep:
    """All checks of `te-sweep resume STORAGE/NAME`, before Ray starts."""
    sweep_dir = SweepDir.from_path(path)
    SweepClaim.refuse_if_held(sweep_dir)
    manifest = sweep_dir.read_manifest() if sweep_dir.exists() else None
    if manifest is None:
        raise SweepStateError(
            f"Invalid value for 'SWEEP_DIR': {sweep_dir.uri} holds no te-sweep "
            "sweep (no te_sweep.json); give the STORAGE/NAME directory that "
            "`te-sweep launch` printed"
        )
    return _prepared_resume(sweep_dir, manifest, address=address, shared_storage=shared_storage)


def _prepared_resume(
    sweep_dir: SweepDir, manifest: dict[str, Any], address: str | None, shared_storage: bool
) -> PreparedSweep:
    from ray.tune import Tuner

    check_cluster_storage(sweep_dir.storage, address, shared_storage)
    check_cluster_reachable(address)
    if not Tuner.can_restore(sweep_dir.uri):
        raise SweepStateError(
            f"Invalid value for 'SWEEP_DIR': {sweep_dir.uri} has nothing to "
            "restore (the sweep never started running, or Ray's experiment "
            "state is missing); launch it again under a new --name"
        )
    check_experiment_state(sweep_dir)
    known = set(SweepOptions.__dataclass_fields__)
    saved = {k: v for k, v in manifest["options"].items() if k in known}
    options = SweepOptions(**{**saved, "address": address, "shared_storage": shared_storage})
    space = load_space_from_manifest(manifest)
    return PreparedSweep(space, options, sweep_dir, resume=True)


def check_experiment_state(sweep_dir: SweepDir) -> None:
    """Refuse to continue a sweep none of whose experiment states Tune could restore from (each
    cut short by a full disk or a crash mid-write). A newest one cut short with a readable one
    before it is continued from that one (state_fallback.py; local and NFS storage only)."""
    import pyarrow.fs as pafs

    from te_sweep.results.tune_files import STATE_GLOB
    from te_sweep.sweep.state_fallback import newest_readable

    local = sweep_dir.local_path()
    if local is not None:
        damaged, readable = newest_readable(local)
        if not damaged or readable is not None:
            return
        newest = sweep_dir.file_uri(f"{STATE_GLOB.split('*')[0]}{damaged[0]}.json")
    else:
        fs, root = sweep_dir.filesystem()
        prefix, suffix = STATE_GLOB.split("*")
        names = sorted(
            info.base_name
            for info in fs.get_file_info(pafs.FileSelector(root))
            if info.base_name.startswith(prefix) and info.base_name.endswith(suffix)
        )
        if not names:
            return
        try:
            json.loads(sweep_dir.read_bytes(names[-1]))["trial_data"]
            return
        except (ValueError, KeyError, TypeError):
            newest = sweep_dir.file_uri(names[-1])
    raise SweepStateError(
        f"Invalid value for 'SWEEP_DIR': Tune's newest experiment state {newest} cannot be "
        "read (cut short by a full disk or a crash while it was written) and no earlier one "
        "can, so there is nothing to continue from without training trials twice; "
        f"`te-sweep export {sweep_dir.uri}` still writes the tables of every finished trial, "
        "and a new --name runs the rest"
    )


def load_space_from_manifest(manifest: dict[str, Any]) -> SearchSpace:
    """The space exactly as launched (the file may have changed or moved since)."""
    return space_from_text(manifest["space_text"], Path(manifest["space_path"]))


def cluster_address(address: str | None) -> str | None:
    """The Ray cluster a sweep will join (--address, else $RAY_ADDRESS), or None: local."""
    address = address or os.environ.get("RAY_ADDRESS")
    return None if address in (None, "", LOCAL_ADDRESS) else address


def check_cluster_reachable(address: str | None) -> None:
    """A cluster address that nothing answers on fails here, in a second, with one line.

    Why: ray.init retries an unreachable head for minutes before it raises. A TCP connection
    to the head's port (the GCS, or the Ray Client server for ray://) says at once whether
    anything listens there. "auto" (find the cluster this machine belongs to) is left to Ray.
    """
    cluster = cluster_address(address)
    if cluster is None or cluster == AUTO_ADDRESS:
        return
    hostport = cluster.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(
            f"Invalid value for '--address': {cluster} is not HOST:PORT (or "
            "ray://HOST:PORT); give the address `ray status` on the head prints, "
            "e.g. 10.0.0.5:6379"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ClusterError(
            f"cannot connect to the Ray cluster at {cluster}: {reason}; check "
            "the address (`ray status` on the head prints it) and that this "
            "machine reaches it"
        ) from None


def check_cluster_storage(storage: str, address: str | None, shared_storage: bool) -> None:
    """On a cluster every node writes its trials' files: a path on one machine will not do."""
    cluster = cluster_address(address)
    local = not is_uri(storage) or storage.startswith("file://")
    if cluster and local and not shared_storage:
        raise ConfigError(
            "storage",
            f"{storage} is a path on this machine, but the sweep runs "
            f"on the Ray cluster at {cluster}, whose other nodes cannot write "
            "there; give a URI every node reaches (s3://bucket/te-sweep, "
            "gs://bucket/te-sweep), or a directory mounted at the same path on "
            "every node (NFS) and pass --shared-storage",
        )


def check_sampler(space: SearchSpace, options: SweepOptions) -> None:
    """`--sampler grid` trains every combination of the space's choices: it needs a space of
    choices only, and no more configurations than the grid has."""
    if options.sampler != SamplerName.GRID:
        return
    distributions = space.optuna_space()
    size = grid_size(distributions)
    if size is None:
        ranged = next(n for n, p in space.params.items() if p.kind != "categorical")
        raise ConfigError(
            "sampler",
            f"'grid' trains every combination of the searched "
            f"settings' choices, but search.{ranged} is a range; write it as "
            "{choices: [...]}, or choose another --sampler",
        )
    if options.num_samples > size:
        raise ConfigError(
            "num_samples",
            f"{options.num_samples} is more than the "
            f"{size} combinations of the grid; give --num-samples {size} (each "
            "is trained --repeats times)",
        )


def check_trial_device(space: SearchSpace, options: SweepOptions) -> None:
    """A space that fixes a CUDA device needs GPUs for its trials: --gpus-per-trial > 0 (Ray
    hides every GPU from a trial that asked for none) and, on a local Ray, this machine's."""
    device = space.fixed.get("device", "auto")
    if not device.startswith("cuda"):
        return
    if options.gpus_per_trial <= 0:
        raise ConfigError(
            "gpus_per_trial",
            f"0, but the space fixes device {device!r}: Ray "
            "gives a trial no GPU unless it asks for one; pass e.g. "
            "--gpus-per-trial 0.25, or use device auto",
        )
    if not cluster_address(options.address):
        from te_sweep.core.preflight import check_device_here

        try:
            check_device_here(device)
        except ConfigError as err:
            raise SpaceError(f"{space.path}: fixed.device: {err.message}") from None


def _check_local_resources(options: SweepOptions) -> None:
    """A local Ray must be able to hold one trial, or Tune would wait forever."""
    if cluster_address(options.address):
        return
    cpus = local_cpus()
    if options.cpus_per_trial > cpus:
        raise ConfigError(
            "cpus_per_trial",
            f"{options.cpus_per_trial:g} but this machine has "
            f"{cpus} CPUs; ask for at most {cpus}, or use --address of a cluster",
        )
    if options.gpus_per_trial > 0:
        gpus = local_gpus()
        if options.gpus_per_trial > gpus or gpus == 0:
            raise ConfigError(
                "gpus_per_trial",
                f"{options.gpus_per_trial:g} but this machine "
                f"has {gpus} GPUs; use --gpus-per-trial 0, or --address of a "
                "cluster with GPUs",
            )


def env_count(name: str) -> int | None:
    """A count from the environment variable `name` (None when unset), or exit 2 saying why."""
    value = os.environ.get(name)
    if not value:
        return None
    if not value.isdigit():
        raise InputError(
            f"Invalid value for ${name}: {value!r} is not a whole number >= 0; "
            f"set it to a count such as 4, or unset it"
        )
    return int(value)


def local_cpus() -> int:
    """CPUs a local Ray offers: $TE_SWEEP_LOGICAL_CPUS when set, else the machine's."""
    return env_count(LOGICAL_CPUS_ENV) or os.cpu_count() or 1


def local_gpus() -> int:
    """GPUs a local Ray offers: $TE_SWEEP_LOGICAL_GPUS when set, else the CUDA devices."""
    declared = env_count(LOGICAL_GPUS_ENV)
    if declared is not None:
        return declared
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


def configure_tune() -> None:
    """Tune's settings for a sweep, where the user's environment does not set them already.

    Legacy output (silent at verbose=0: the live view replaces Ray's reporter); pending
    trials bounded by our ConcurrencyPolicy, not by Tune's default of one at a time for a
    searcher; result.json (result_log.py) as the only per-trial log (the export reads it;
    Tune's CSV and TensorBoard loggers would write every result twice more, on the driver).
    """
    from te_sweep.sweep.concurrency import MAX_PENDING

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(MAX_PENDING))
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextmanager
def signals_blocked_in_children() -> Iterator[None]:
    """Start a private Ray's processes (GCS, raylet, and the workers they start) with SIGTERM
    and SIGHUP blocked, as Ray itself blocks SIGINT in them.

    Why: a batch scheduler or a closed terminal signals every process of the job or the
    process group, not only the driver. The driver then stops the sweep in order (stopping.py),
    which needs Ray running until the trials are saved and Tune's state written; a GCS killed
    at once by the same signal would leave the driver waiting a minute for it and exiting
    without tables. A child inherits the signal mask of the thread that starts it; the driver's
    own mask is restored at once, and a signal that came meanwhile is delivered then.
    """
    import signal

    blocked = {signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def ray_session(address: str | None, echo: Callable[[str], None] = print) -> Iterator[str]:
    """Connect to a cluster (--address, else RAY_ADDRESS) or start a private local Ray."""
    configure_tune()
    import ray

    from te_sweep.sweep.tune_log import route_tune_logs

    address = cluster_address(address)
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    temp_dir = None
    prefer_passive_waiting()  # a local Ray's processes inherit it (cpu_threads.py)
    if address:
        try:
            ray.init(address=address, runtime_env={"env_vars": worker_env()}, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ClusterError(
                f"cannot connect to the Ray cluster at {address}: {first}; "
                "check the address (`ray status` on the head prints it) and that "
                "this machine reaches it"
            ) from None
        where = f"cluster at {address}"
    else:
        temp_dir = tempfile.mkdtemp(prefix="te-sweep-ray-")
        with signals_blocked_in_children():
            ray.init(
                address="local",
                include_dashboard=False,
                _temp_dir=temp_dir,
                num_cpus=local_cpus(),
                num_gpus=local_gpus(),
                **quiet,
            )
        where = "local single-node Ray"
    route_tune_logs(echo)  # Tune's warnings as one line each; tracebacks stay on disk
    try:
        yield where
    finally:
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def trial_dirname(trial: Any) -> str:
    return f"{trial.config.get('role', 'trial')}_{trial.trial_id}"


def max_trials(options: SweepOptions) -> int:
    """An upper bound on a sweep's Tune trials (searcher.trials_bound)."""
    from te_sweep.sweep.searcher import trials_bound

    return trials_bound(options.num_samples, options.repeats, options.lr_control)


def concurrency_policy(prepared: PreparedSweep) -> Any:
    """How many trials are in flight (concurrency.py); on a cluster its size is read later."""
    from te_sweep.sweep.concurrency import ConcurrencyPolicy

    opts = prepared.options
    local = None if cluster_address(opts.address) else {"CPU": local_cpus(), "GPU": local_gpus()}
    return ConcurrencyPolicy.for_sweep(
        opts.max_concurrent, local, opts.cpus_per_trial, opts.gpus_per_trial, max_trials(opts)
    )


def _trial_device(prepared: PreparedSweep) -> str | None:
    """Trials without a GPU request run on the CPU even where the node has GPUs."""
    device = prepared.space.fixed.get("device", "auto")
    return "cpu" if prepared.options.gpus_per_trial == 0 and device == "auto" else None


def search_parts(prepared: PreparedSweep) -> tuple[Any, Any]:
    """The searcher and the scheduler (None without --scheduler asha) of a new sweep."""
    from te_sweep.sweep.searcher import SweepSearcher, TEOnlyASHA

    opts = prepared.options
    searcher = SweepSearcher(
        prepared.space,
        opts.seed,
        opts.repeats,
        opts.num_samples,
        max(1, int(opts.cpus_per_trial)),
        concurrency_policy(prepared),
        sampler=opts.sampler,
        lr_control=opts.lr_control,
        device=_trial_device(prepared),
    )
    scheduler = None
    if opts.scheduler == "asha":
        cfg = prepared.space.baseline_config(0)
        scheduler = TEOnlyASHA(
            metric=cfg.target_metric,
            mode="max",
            time_attr="epoch",
            max_t=cfg.max_epochs,
            grace_period=1,
            reduction_factor=3,
        )
    return searcher, scheduler


def build_tuner(
    prepared: PreparedSweep,
    callbacks: list,
    trainable: Callable[[dict], None] | None = None,
    parts: tuple[Any, Any] | None = None,
) -> Any:
    """The Tuner of a new or resumed sweep; `trainable` replaces the real one and `parts` the
    searcher and scheduler of search_parts (benchmarks and tests)."""
    from ray import tune

    from te_sweep.sweep.result_log import ResultLog
    from te_sweep.sweep.trainable import train_function

    opts = prepared.options
    trainable = tune.with_resources(
        trainable or train_function, {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial}
    )
    if prepared.resume:
        return tune.Tuner.restore(
            prepared.sweep_dir.uri, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    searcher, scheduler = parts or search_parts(prepared)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=max_trials(opts),
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=opts.name,
            storage_path=opts.storage,
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            callbacks=[ResultLog(), *callbacks],
            verbose=0,
        ),
    )


@contextmanager
def claimed_sweep(
    prepared: PreparedSweep, echo: Callable[[str], None], stop: StopController | None = None
) -> Iterator[PreparedSweep]:
    """Hold the sweep's claim (claim.py) for the whole run: a second driver is refused.

    What prepare_launch decided is decided again under the claim, since another driver may
    have started this sweep between the two; a refusal then leaves the storage as it was.
    """
    command = "resume" if prepared.resume else "launch"
    lost = (
        (
            lambda why: stop.request_stop(
                "claim lost",
                ExitCode.FAILURE,
                f"Error: {why}; stopping this driver, the other one runs the sweep",
            )
        )
        if stop
        else None
    )
    claim = SweepClaim(prepared.sweep_dir, command, on_lost=lost).acquire()
    try:
        if not prepared.resume:
            prepared = decide_launch(prepared.space, prepared.options, prepared.sweep_dir)
    except BaseException:
        claim.release(remove_dir_if_created=True)
        raise
    if claim.took_over is not None:
        echo(
            f"took over sweep {prepared.sweep_dir.uri} from {claim.took_over.describe()}, "
            "which ended without releasing it"
        )
    try:
        yield prepared
    finally:
        claim.release()


def run_sweep(
    prepared: PreparedSweep,
    echo: Callable[[str], None],
    trainable: Callable[[dict], None] | None = None,
    parts: tuple[Any, Any] | None = None,
    stop: StopController | None = None,
) -> dict[str, Any]:
    """Run (or continue) the sweep to its end, or until `stop` stops it, then export it and
    return the export summary. Holds the sweep's claim throughout."""
    from te_sweep.results.export import export_sweep

    with claimed_sweep(prepared, echo, stop) as prepared:
        fresh = not prepared.resume
        if fresh:
            prepared.sweep_dir.write_manifest(new_manifest(prepared))
        try:
            _run_tune(prepared, echo, trainable, parts, stop)
        except SweepStopped:
            if fresh and not _tune_started(prepared.sweep_dir):
                _forget_launch(prepared.sweep_dir)  # nothing ran: leave the storage as found
                raise
            if stop is None or stop.phase is not Phase.TUNE:
                raise
        if stop is not None:
            stop.enter(Phase.EXPORT)
        return export_sweep(prepared.sweep_dir)


def _run_tune(
    prepared: PreparedSweep,
    echo: Callable[[str], None],
    trainable: Callable[[dict], None] | None,
    parts: tuple[Any, Any] | None,
    stop: StopController | None,
) -> None:
    from te_sweep.sweep.checkpoints import KeepCheckpoints
    from te_sweep.sweep.disk_guard import DiskCheck
    from te_sweep.sweep.progress import LiveView
    from te_sweep.sweep.retention import CheckpointRetention

    opts = prepared.options
    with ray_session(opts.address, echo) as where:
        verb = "resuming" if prepared.resume else "launching"
        echo(
            f"{verb} sweep {prepared.sweep_dir.uri} on the {where}: "
            f"{concurrency_policy(prepared).describe()}"
        )
        if prepared.resume:  # a moved sweep's manifest; damaged checkpoints (workers can't say)
            from te_sweep.sweep.checkpoint_check import check_resumed_checkpoints, trainable_loader
            from te_sweep.sweep.relocate import relocate_search_state
            from te_sweep.sweep.state_fallback import fall_back

            local = prepared.sweep_dir.local_path()
            for line in fall_back(local) if local else []:  # a state cut short: the one before
                echo(line)
            moved_from = prepared.sweep_dir.record_location()
            relocate_search_state(prepared.sweep_dir)  # Tune's, for trials not created yet
            if moved_from:
                echo(
                    f"{prepared.sweep_dir.uri} was launched as {moved_from}; its {MANIFEST} "
                    "now records where it is"
                )
            for line in check_resumed_checkpoints(prepared.sweep_dir, trainable_loader(trainable)):
                echo(line)
        callbacks = [
            LiveView(echo, total=max_trials(opts), total_is_bound=opts.lr_control),
            CheckpointRetention(KeepCheckpoints(opts.keep_checkpoints)),
            DiskCheck(),
        ]
        tuner = build_tuner(prepared, callbacks, trainable, parts)
        if stop is not None:
            stop.enter(Phase.TUNE)
        try:
            with _disk_guard(prepared, stop):
                tuner.fit()
        except BaseException as err:
            # A second stop raises SweepStopped from a signal handler wherever Tune is; inside
            # Ray's compiled code that surfaces as another exception (a SystemError "returned a
            # result with an exception set"). After a second stop, whatever ends fit is it.
            if stop is not None and stop.hurried and not isinstance(err, SweepStopped):
                raise SweepStopped(stop.cause) from None  # type: ignore[arg-type]
            raise


def _disk_guard(prepared: PreparedSweep, stop: StopController | None) -> Any:
    """While Tune runs, a sweep on a local or NFS path stops cleanly before its disk fills
    (disk_guard.py); a URI has no free space to watch."""
    from contextlib import nullcontext

    from te_sweep.sweep.disk_guard import DiskGuard

    local = prepared.sweep_dir.local_path()
    if stop is None or local is None:
        return nullcontext()
    policy = concurrency_policy(prepared)
    return DiskGuard(
        local,
        policy.fixed or policy.limit(),
        lambda line: stop.request_stop("disk full", ExitCode.FAILURE, line),
    )


def _tune_started(sweep_dir: SweepDir) -> bool:
    from ray.tune import Tuner

    return bool(Tuner.can_restore(sweep_dir.uri))


def _forget_launch(sweep_dir: SweepDir) -> None:
    """Remove what a launch stopped before Tune began wrote: its manifest (the claim file goes
    with the claim's release), so the same --name can be launched again."""
    from te_sweep.results.storage import MANIFEST

    sweep_dir.delete_file(MANIFEST)
