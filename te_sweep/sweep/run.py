"""Running a prepared sweep on Ray Tune: the manifest, Ray, the Tuner, and the export.

`run_sweep` writes the manifest, starts (or connects to) Ray, runs the Tuner, and exports the
Parquet tables. With resume=True it continues a killed sweep with Tune's own restore: finished
trials are kept, interrupted ones continue from their last checkpoint, and the Optuna study
continues from the searcher's saved state. One driver per sweep (claim.py) holds it throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from te_sweep.exit_codes import ExitCode
from te_sweep.results.storage import MANIFEST, SweepDir
from te_sweep.sweep.claim import SweepClaim
from te_sweep.sweep.launch import PreparedSweep, SweepOptions, decide_launch, new_manifest
from te_sweep.sweep.ray_cluster import cluster_address, local_cpus, local_gpus, ray_session
from te_sweep.sweep.stopping import Phase, StopController, SweepStopped

MAX_FAILURES = 3  # a trial is retried from its last checkpoint this many times


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
    local: dict[str, float] | None = (
        None if cluster_address(opts.address) else {"CPU": local_cpus(), "GPU": local_gpus()}
    )
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
    callbacks: list[Any],
    trainable: Callable[[dict[str, Any]], None] | None = None,
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
            # (Tune's JsonLoggerCallback.__init__, which ResultLog keeps, is unannotated)
            callbacks=[ResultLog(), *callbacks],  # type: ignore[no-untyped-call]
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
    trainable: Callable[[dict[str, Any]], None] | None = None,
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
        _hand_back_tune_memory()
        if stop is not None:
            stop.enter(Phase.EXPORT)
        return export_sweep(prepared.sweep_dir)


def _hand_back_tune_memory() -> None:
    """Tune's objects of every trial are garbage once it has ended: collect them and hand their
    heap back before the export reads the sweep, so that the export starts from what is still
    live, not from Tune's high-water mark (at 10,000 trials: 789 MiB at Tune's peak, 629 as
    the export began, 854 at the export's; BENCHMARKS.md section 12)."""
    import gc

    from te_sweep.sweep.ended_trials import release_heap

    gc.collect()
    release_heap()


def _run_tune(
    prepared: PreparedSweep,
    echo: Callable[[str], None],
    trainable: Callable[[dict[str, Any]], None] | None,
    parts: tuple[Any, Any] | None,
    stop: StopController | None,
) -> None:
    from te_sweep.sweep.checkpoints import KeepCheckpoints
    from te_sweep.sweep.disk_guard import DiskCheck
    from te_sweep.sweep.ended_trials import TrimEndedTrials, no_result_frames
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
            TrimEndedTrials(),  # last: the others read an ended trial's full result first
        ]
        # Tune's ResultGrid (Tuner.restore and fit build one) without every trial's
        # result.json read into pandas: te-sweep's export reads them (ended_trials.py).
        with no_result_frames():
            tuner = build_tuner(prepared, callbacks, trainable, parts)
            if stop is not None:
                stop.enter(Phase.TUNE)
            try:
                with _disk_guard(prepared, stop):
                    tuner.fit()
            except BaseException as err:
                # A second stop raises SweepStopped from a signal handler wherever Tune is;
                # inside Ray's compiled code that surfaces as another exception (a SystemError
                # "returned a result with an exception set"). After a second stop, whatever
                # ends fit is it.
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
