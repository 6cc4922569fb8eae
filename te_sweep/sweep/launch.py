"""Launching and resuming sweeps: everything decided before Ray starts.

`prepare_launch` validates the space file and every option and decides where the sweep lives,
without starting Ray, so bad input fails in a second with nothing written; `prepare_resume`
does the same for a killed sweep, from its manifest. run.py then runs what they prepared.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from te_sweep.core.space import SearchSpace, SpaceError, load_space, space_from_text
from te_sweep.errors import ConfigError, InputError
from te_sweep.results.provenance import git_revision, package_versions
from te_sweep.results.storage import MANIFEST, SweepDir, check_storage, normalize_storage
from te_sweep.sweep.checkpoints import KEEP_CHOICES
from te_sweep.sweep.claim import CLAIM_FILE, LEASE_FILE, SweepClaim
from te_sweep.sweep.ray_cluster import (
    check_cluster_reachable,
    check_cluster_storage,
    check_local_resources,
    cluster_address,
)
from te_sweep.sweep.samplers import SAMPLER_CHOICES, SamplerName, grid_size

SCHEDULERS = ("none", "asha")

MANIFEST_FORMAT = 1
CLAIM_FILES = (CLAIM_FILE, LEASE_FILE)  # a driver's claim is not a sweep's content


class SweepStateError(InputError):
    """The storage location is not in a state the command can use (exit 2)."""


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
    name = options.name or default_name(space)
    options = replace(options, storage=normalize_storage(options.storage), name=name)
    sweep_dir = SweepDir(options.storage, name)
    SweepClaim.refuse_if_held(sweep_dir)
    check_local_resources(options.address, options.cpus_per_trial, options.gpus_per_trial)
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
    check_tuner_state(sweep_dir, manifest)
    known = set(SweepOptions.__dataclass_fields__)
    saved = {k: v for k, v in manifest["options"].items() if k in known}
    options = SweepOptions(**{**saved, "address": address, "shared_storage": shared_storage})
    space = load_space_from_manifest(manifest)
    return PreparedSweep(space, options, sweep_dir, resume=True)


TUNER_STATE = "tuner.pkl"  # Tune's pickled Tuner: the searcher, callbacks, trial_dirname


def check_tuner_state(sweep_dir: SweepDir, manifest: dict[str, Any]) -> None:
    """Refuse, in one line, a sweep whose pickled Tuner names code this te-sweep has not got
    (launched by another version whose modules moved or were renamed), instead of Tune's
    traceback from inside Ray. The modules' names before the layers still load (moved.py)."""
    import pickle

    try:
        pickle.loads(sweep_dir.read_bytes(TUNER_STATE))
    except (ImportError, AttributeError) as err:
        launched = manifest.get("versions", {}).get("te-sweep", "another version")
        raise SweepStateError(
            f"{sweep_dir.file_uri(TUNER_STATE)} names code this te-sweep has not got "
            f"({type(err).__name__}: {err}); resume the sweep with the te-sweep that "
            f"launched it ({launched}, te_sweep.json), or `te-sweep export` its finished trials"
        ) from None


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
