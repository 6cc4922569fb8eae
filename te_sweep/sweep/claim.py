"""One driver per sweep: the exclusive claim that `launch` and `resume` hold on a sweep directory.

Two drivers on one sweep directory would each run the sweep: both write te_sweep.json and Tune's
experiment state, and every configuration is trained twice on one seed, which the statistics
would then count as two seeds. So a driver claims the directory before it writes anything and
holds the claim until it exits; a second `launch` or `resume` of a held sweep is refused with one
line naming the holder. `export` and `report` only read, and need no claim.

Two mechanisms, by storage:
  - a local or NFS directory: the file CLAIM_FILE in the sweep directory, locked with a POSIX
    lock (flock; Linux maps it to a POSIX lock on NFS, which NFS servers honour). The
    operating system releases the lock when the holder's process ends in any way, kill -9
    included, so a dead holder never blocks: the next driver takes the claim over and says so,
    from the holder record left in the file (host, pid, start time).
  - a URI (s3://, gs://, ...): object stores have no locks, so the claim is a lease object
    LEASE_FILE that the driver renews every HEARTBEAT_S seconds from a background thread. A lease
    not renewed for LEASE_HEARTBEATS heartbeats belongs to a driver that is gone and is taken
    over. Writing the lease and reading it back after SETTLE_S narrows the window in which two
    drivers starting at the same moment both take it, but without a conditional write it cannot
    close it (docs/faults.md, "One driver per sweep").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from te_sweep.errors import InputError, TESweepError
from te_sweep.results.storage import SweepDir, is_uri

CLAIM_FILE = "te_sweep.lock"  # local/NFS: the locked file and its holder record
LEASE_FILE = "te_sweep.lease"  # URI: the lease object
HEARTBEAT_S = 30.0  # a URI lease is renewed this often
LEASE_HEARTBEATS = 4  # ... and taken over after this many heartbeats without renewal
SETTLE_S = 2.0  # a new URI lease is read back after this long, to see who won


class SweepHeldError(InputError):
    """Another driver holds the sweep (exit 2: the command was refused before any work)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a sweep: enough for a person to find the process and decide."""

    host: str
    pid: int
    command: str  # launch or resume
    since: str  # ISO UTC time the claim was taken
    token: str  # tells this driver's lease from another's on the same host and pid
    renewed: float = 0.0  # URI leases: time.time() of the last renewal

    @classmethod
    def of_this_process(cls, command: str) -> Holder:
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        return cls(socket.gethostname(), os.getpid(), command, now, uuid.uuid4().hex, time.time())

    @classmethod
    def parse(cls, text: bytes | str) -> Holder | None:
        """The record in a claim file or lease, or None if there is none (or it is damaged:
        a half-written record is no claim, the lock decides)."""
        try:
            values = json.loads(text)
            return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})
        except (ValueError, TypeError, KeyError):
            return None

    def dump(self) -> bytes:
        return (json.dumps(asdict(self)) + "\n").encode()

    def describe(self) -> str:
        return f"te-sweep {self.command} (pid {self.pid} on {self.host}, since {self.since})"

    def alive_here(self) -> bool | None:
        """Whether the holder's process still runs: None when it ran on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            return True
        return True


def _held_message(sweep_dir: SweepDir, holder: Holder | None, how_to_take_over: str) -> str:
    who = holder.describe() if holder else "another te-sweep driver"
    return (
        f"sweep {sweep_dir.uri} is being run by {who}; only one driver may run a sweep: "
        f"wait for it to end, or stop it (Ctrl-C, or kill -TERM its pid) and run "
        f"`te-sweep resume {sweep_dir.uri}`; {how_to_take_over}"
    )


LOCK_FIX = "the claim is freed by the operating system when that process ends, whatever ends it"


def _read_lease(sweep_dir: SweepDir) -> Holder | None:
    if not sweep_dir.has_file(LEASE_FILE):
        return None
    return Holder.parse(sweep_dir.read_bytes(LEASE_FILE))


def _lease_age(lease: Holder) -> float:
    return time.time() - lease.renewed


def _lease_fix(lease: Holder) -> str:
    return (
        f"its lease was renewed {_lease_age(lease):.0f} s ago and is taken over once it "
        f"has not been renewed for {HEARTBEAT_S * LEASE_HEARTBEATS:.0f} s"
    )


class SweepClaim:
    """The claim of one driver on one sweep directory; `acquire` it, `release` it at exit.

    Usable as a context manager. `took_over` describes the earlier holder whose claim this
    driver took over (a driver that died without releasing it), or is None.
    """

    def __init__(
        self, sweep_dir: SweepDir, command: str, on_lost: Callable[[str], None] | None = None
    ) -> None:
        self.sweep_dir = sweep_dir
        self.on_lost = on_lost  # called (from the heartbeat thread) if a URI lease is lost
        self.holder = Holder.of_this_process(command)
        self.took_over: Holder | None = None
        self._fd: int | None = None
        self._created_dir = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.lost = False  # a URI lease taken by another driver while this one ran

    # --- public surface ----------------------------------------------------------------
    @staticmethod
    def refuse_if_held(sweep_dir: SweepDir) -> None:
        """Raise SweepHeldError if another driver holds the sweep now, writing nothing: the
        first check of `launch` and `resume`, so a held sweep is named as held and not
        described by whatever state the other driver has reached (the claim itself, taken
        later, is what decides)."""
        if is_uri(sweep_dir.storage):
            current = _read_lease(sweep_dir)
            if current is not None and _lease_age(current) < HEARTBEAT_S * LEASE_HEARTBEATS:
                raise SweepHeldError(_held_message(sweep_dir, current, _lease_fix(current)))
            return
        path = Path(sweep_dir.uri) / CLAIM_FILE
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return  # no claim file: nobody has ever held it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK):
                raise
            raise SweepHeldError(
                _held_message(sweep_dir, Holder.parse(os.pread(fd, 4096, 0)), LOCK_FIX)
            ) from None
        finally:
            os.close(fd)  # a lock this probe took goes with it

    def acquire(self) -> SweepClaim:
        if is_uri(self.sweep_dir.storage):
            self._acquire_lease()
        else:
            self._acquire_lock()
        return self

    def release(self, remove_dir_if_created: bool = False) -> None:
        """Give the claim up. `remove_dir_if_created`: the driver was refused after claiming
        (e.g. the directory holds another sweep): leave the storage as it was found."""
        if self._heartbeat is not None:
            self._stop.set()
            self._heartbeat.join(timeout=5)
            self._heartbeat = None
            if not self.lost:
                self._delete(LEASE_FILE)
        if self._fd is not None:
            path = self._lock_path()
            os.ftruncate(self._fd, 0)  # a released claim leaves no holder to take over from
            os.close(self._fd)  # closing releases the lock
            self._fd = None
            if remove_dir_if_created and self._created_dir:
                path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # not empty: another file was put there
                    path.parent.rmdir()

    def __enter__(self) -> SweepClaim:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # --- local and NFS: a POSIX record lock --------------------------------------------
    def _lock_path(self) -> Path:
        return Path(self.sweep_dir.uri) / CLAIM_FILE

    def _acquire_lock(self) -> None:
        path = self._lock_path()
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
            self._created_dir = True
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK):
                raise
            raise SweepHeldError(
                _held_message(self.sweep_dir, Holder.parse(path.read_bytes()), LOCK_FIX)
            ) from None
        previous = Holder.parse(os.pread(fd, 4096, 0))
        if previous is not None and previous.pid:
            self.took_over = previous  # it ended without releasing: its lock died with it
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.holder.dump(), 0)
        os.fsync(fd)
        self._fd = fd

    # --- URI: a lease renewed by a heartbeat -------------------------------------------
    def _read_lease(self) -> Holder | None:
        return _read_lease(self.sweep_dir)

    def _delete(self, filename: str) -> None:
        with contextlib.suppress(OSError, TESweepError):  # a lease left behind expires
            self.sweep_dir.delete_file(filename)

    def _acquire_lease(self) -> None:
        current = self._read_lease()
        if current is not None and _lease_age(current) < HEARTBEAT_S * LEASE_HEARTBEATS:
            raise SweepHeldError(_held_message(self.sweep_dir, current, _lease_fix(current)))
        self.took_over = current
        self.sweep_dir.write_bytes(LEASE_FILE, self.holder.dump())
        time.sleep(SETTLE_S)
        winner = self._read_lease()
        if winner is None or winner.token != self.holder.token:
            raise SweepHeldError(
                _held_message(
                    self.sweep_dir, winner, "it took the lease at the same moment as this one"
                )
            )
        self._heartbeat = threading.Thread(target=self._renew, name="te-sweep-lease", daemon=True)
        self._heartbeat.start()

    def _renew(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            current = self._read_lease()
            if current is not None and current.token != self.holder.token:
                self.lost = True  # another driver took it over: stop renewing, never steal
                if self.on_lost:
                    self.on_lost(
                        f"the lease on {self.sweep_dir.uri} was taken over by {current.describe()}"
                    )
                return
            renewed = Holder(**{**asdict(self.holder), "renewed": time.time()})
            self.sweep_dir.write_bytes(LEASE_FILE, renewed.dump())
