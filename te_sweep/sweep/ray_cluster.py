"""The Ray a sweep runs on: a private single-node Ray, or a cluster, and what it offers.

A local run gets its own single-node Ray with its own temporary directory, so it never
attaches to another Ray running on the machine; a cluster (--address or RAY_ADDRESS) is
checked for reachability and for a storage every node can reach before anything is written.
Ray is imported lazily (it takes seconds).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from te_sweep.core.cpu_threads import prefer_passive_waiting, worker_env
from te_sweep.errors import ConfigError, InputError, TESweepError
from te_sweep.results.storage import is_uri

LOCAL_ADDRESS = "local"  # RAY_ADDRESS=local means a local Ray, not a cluster

AUTO_ADDRESS = "auto"  # Ray finds the cluster this machine belongs to

CONNECT_TIMEOUT_S = 5.0  # how long the reachability check waits for the head to answer

# A local Ray declares this many GPUs instead of the real count: fractional-GPU packing can then
# be exercised on a CPU machine (trials get a GPU id from Ray and fall back to the CPU).
LOGICAL_GPUS_ENV = "TE_SWEEP_LOGICAL_GPUS"

# Likewise CPUs: the scale benchmark runs dozens of stand-in trials at once on 2 cores.
LOGICAL_CPUS_ENV = "TE_SWEEP_LOGICAL_CPUS"


class ClusterError(TESweepError):
    """The Ray cluster given by --address or RAY_ADDRESS could not be reached (exit 1)."""


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
    quiet: dict[str, Any] = dict(
        log_to_driver=False, logging_level=logging.ERROR, configure_logging=True
    )
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


def check_local_resources(
    address: str | None, cpus_per_trial: float, gpus_per_trial: float
) -> None:
    """A local Ray must be able to hold one trial, or Tune would wait forever."""
    if cluster_address(address):
        return
    cpus = local_cpus()
    if cpus_per_trial > cpus:
        raise ConfigError(
            "cpus_per_trial",
            f"{cpus_per_trial:g} but this machine has "
            f"{cpus} CPUs; ask for at most {cpus}, or use --address of a cluster",
        )
    if gpus_per_trial > 0:
        gpus = local_gpus()
        if gpus_per_trial > gpus or gpus == 0:
            raise ConfigError(
                "gpus_per_trial",
                f"{gpus_per_trial:g} but this machine "
                f"has {gpus} GPUs; use --gpus-per-trial 0, or --address of a "
                "cluster with GPUs",
            )
