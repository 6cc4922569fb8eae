"""A trial's checkpoints: files in its own directory on the sweep's storage, bounded in number.

Why not Tune's checkpoints: Tune keeps every checkpoint unless `CheckpointConfig(num_to_keep)`
is set, and with num_to_keep set it forces a full experiment snapshot (every trial's state and
the whole Optuna study) each time any trial has checkpointed num_to_keep times since the last
one: with dozens of trials checkpointing every epoch that is a snapshot every epoch-length,
O(trials) each (ray-project/ray#31613). Tune also lists every checkpoint, with its metrics, in
the experiment state it rewrites at each snapshot (about 3 KB per checkpoint).

So the trainable keeps its own: after each epoch it writes `checkpoint-epoch-NNNNN.pt` into its
trial directory on the storage (local, NFS or a URI, through pyarrow's filesystems, as Tune's
own storage does) and only then deletes the older ones, so a trial holds one checkpoint at rest
and two for the moment of a save. A write is atomic (a temporary name renamed on a local disk;
a single PUT on an object store), so the newest file is always whole. When a trial starts (a
retry after a lost node, or `te-sweep resume` after the driver was killed), it continues from
the newest file in its directory, whatever Tune remembers. The driver applies the
`--keep-checkpoints` policy when a trial ends (keep its final checkpoint, or none).

Each file carries its own integrity record, written in the same atomic write: a header of
HEADER_BYTES (MAGIC, the payload's length, its SHA-256) before the payload. Atomic writes keep a
save cut short from ever taking a checkpoint's name, but a kill -9 of a whole machine, a storage
fault or a hand can still leave a file truncated or overwritten; loading it would fail the same
way on every retry. So a file is verified before it is used: one that fails (too short, too
long, digest mismatch; a legacy file, written before the header existed, that the trainable's
loader cannot read) is renamed to NAME.damaged, never read or listed again, and the trial falls
back to the previous checkpoint if the policy kept one, else restarts from its first epoch (a
trial is deterministic per seed, so its records come out the same). The worker does this when
it loads (`restore`); the driver does it for every unfinished trial before a resume starts
(checkpoint_check.py), since a worker's output never reaches the sweep's console.

Torch-free: the payload is bytes; the real trainable and the scale benchmark's stand-in share it.
"""

from __future__ import annotations

import enum
import hashlib
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # pyarrow is imported where used: the CLI reads KEEP_CHOICES at start-up
    import pyarrow.fs as pafs

PREFIX, SUFFIX = "checkpoint-epoch-", ".pt"
DAMAGED_SUFFIX = ".damaged"  # a damaged checkpoint's new name: NAME.pt.damaged, never listed
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+){re.escape(SUFFIX)}$")

# The integrity header: MAGIC, then the payload's length (8 bytes, big-endian) and SHA-256.
# MAGIC starts with a byte no legacy file starts with (torch.save writes a zip, "PK"; pickle
# starts with 0x80), so a file without it is a legacy one.
MAGIC = b"\x89TESWCK1"
_HEADER = struct.Struct(f">{len(MAGIC)}sQ32s")
HEADER_BYTES = _HEADER.size
FIRST_EPOCH = 1

T = TypeVar("T")
Loader = Callable[[bytes], Any]  # how a trainable reads its payload (trainable._load)


class CheckpointDamaged(Exception):
    """A checkpoint file failed its integrity check; the message says how, in a few words."""


def seal(payload: bytes) -> bytes:
    """The file's bytes: the integrity header, then the payload."""
    return _HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload


def unseal(data: bytes) -> bytes | None:
    """The payload of a sealed file, verified; None for a legacy file (no MAGIC), which only
    its loader can judge. Raises CheckpointDamaged saying what is wrong."""
    if not data:
        raise CheckpointDamaged("0 bytes")
    if len(data) < HEADER_BYTES and MAGIC.startswith(data[: len(MAGIC)]):
        raise CheckpointDamaged(f"{len(data)} bytes, shorter than its {HEADER_BYTES}-byte header")
    if not data.startswith(MAGIC):
        return None
    _, length, digest = _HEADER.unpack_from(data)
    payload = data[HEADER_BYTES:]
    expected = f"{len(data)} of {HEADER_BYTES + length} bytes"
    if len(payload) != length:
        cut = "truncated" if len(payload) < length else "too long"
        raise CheckpointDamaged(f"{expected}; {cut}")
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointDamaged(f"{expected}; digest mismatch")
    return payload


def verify_legacy(data: bytes, load: Loader) -> Any:
    """A legacy file's content through the trainable's loader; CheckpointDamaged if it fails
    (whatever the loader raises: a damaged pickle or zip raises many kinds of errors)."""
    try:
        return load(data)
    except Exception as err:
        reason = " ".join(str(err).split())[:80] or type(err).__name__
        raise CheckpointDamaged(
            f"{len(data)} bytes, a legacy checkpoint without te-sweep's "
            f"header that cannot be loaded: {reason}"
        ) from None


@dataclass(frozen=True)
class Damage:
    """A checkpoint file found damaged and moved aside."""

    path: str
    moved_to: str
    reason: str


@dataclass(frozen=True)
class Restored(Generic[T]):
    """What `restore` found: the newest readable checkpoint (None: restart from the first
    epoch) and the damaged files it moved aside on the way."""

    newest: tuple[int, T] | None
    damaged: list[Damage]

    @property
    def restart_epoch(self) -> int:
        return self.newest[0] + 1 if self.newest else FIRST_EPOCH

    def lines(self, trial: str) -> list[str]:
        """One line per damaged file, naming it, where it went and where the trial restarts."""
        then = (
            f"the trial falls back to {checkpoint_name(self.newest[0])} and restarts from "
            f"epoch {self.restart_epoch}"
            if self.newest
            else f"the trial restarts from epoch {FIRST_EPOCH}"
        )
        return [
            f"trial {trial}: checkpoint {d.path} is damaged ({d.reason}); moved aside to "
            f"{d.moved_to}, {then}"
            for d in self.damaged
        ]


class _NotLoaded:
    """The payload was verified but not loaded yet (a sealed file)."""


_NOT_LOADED = _NotLoaded()


class KeepCheckpoints(str, enum.Enum):
    """What a finished trial keeps (`--keep-checkpoints`)."""

    FINAL = "final"  # its last checkpoint (to inspect or fine-tune the trained model)
    NONE = "none"  # nothing: the sweep's disk use is then only its results


KEEP_CHOICES = tuple(k.value for k in KeepCheckpoints)


def checkpoint_name(epoch: int) -> str:
    return f"{PREFIX}{epoch:05d}{SUFFIX}"


@dataclass(frozen=True)
class TrialCheckpoints:
    """The checkpoint files of one trial: `fs` and the trial directory's path on it."""

    fs: pafs.FileSystem
    trial_path: str

    @classmethod
    def of_current_trial(cls) -> TrialCheckpoints:
        """The running Tune trial's directory on the sweep's storage (where result.json is)."""
        from ray import tune

        storage = tune.get_context().get_storage()  # Ray DeveloperAPI: the storage context
        return cls(storage.storage_filesystem, storage.trial_fs_path)

    def epochs(self) -> list[int]:
        """Epochs that have a complete checkpoint file, oldest first."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.trial_path, allow_not_found=True)
        found = []
        for info in self.fs.get_file_info(selector):
            match = _NAME.match(info.base_name)
            if match and info.type == pafs.FileType.File:
                found.append(int(match.group(1)))
        return sorted(found)

    def _path(self, epoch: int) -> str:
        return f"{self.trial_path}/{checkpoint_name(epoch)}"

    @property
    def trial_name(self) -> str:
        """The trial directory's name (`role_trialid`), as the sweep's lines name a trial."""
        return self.trial_path.rstrip("/").rpartition("/")[2]

    def _read(self, epoch: int) -> bytes:
        with self.fs.open_input_stream(self._path(epoch)) as stream:
            data: bytes = stream.read()  # pyarrow is untyped (ignore_missing_imports)
            return data

    def latest(self) -> tuple[int, bytes] | None:
        """(epoch, payload) of the newest checkpoint, or None when the trial has none; reads
        only (a legacy file's payload is the file). Raises CheckpointDamaged if it fails its
        check: `restore` is what moves a damaged file aside and falls back."""
        epochs = self.epochs()
        if not epochs:
            return None
        data = self._read(epochs[-1])
        payload = unseal(data)
        return epochs[-1], data if payload is None else payload

    def restore(self, load: Loader | None, *, load_all: bool = True) -> Restored[Any]:
        """The newest checkpoint that passes its check, loaded with `load`; each newer one that
        fails is renamed NAME.damaged first. Legacy files are judged by `load` (None: accepted
        unread). `load_all=False` only verifies (the driver's check): a sealed file whose digest
        matches is then not loaded, and newest holds its payload bytes, or a legacy file's
        loaded content."""
        damaged: list[Damage] = []
        for epoch in reversed(self.epochs()):
            path = self._path(epoch)
            data = self._read(epoch)
            try:
                payload = unseal(data)
                content: Any = _NOT_LOADED
                if payload is None:
                    payload = data
                    if load is not None:
                        content = verify_legacy(data, load)
            except CheckpointDamaged as err:
                moved_to = f"{path}{DAMAGED_SUFFIX}"
                self.fs.move(path, moved_to)
                damaged.append(Damage(path, moved_to, str(err)))
                continue
            if isinstance(content, _NotLoaded):
                content = load(payload) if load is not None and load_all else payload
            return Restored((epoch, content), damaged)
        return Restored(None, damaged)

    def discard_partial(self) -> None:
        """Delete temporaries of a save cut short (a killed attempt); only one attempt of a
        trial runs at a time, so any found when the trial starts are dead."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.trial_path, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.base_name.startswith(f".{PREFIX}") and info.base_name.endswith(".tmp"):
                self.fs.delete_file(info.path)

    def save(self, epoch: int, payload: bytes) -> None:
        """Write the checkpoint of `epoch` (sealed: header, then payload) atomically, then
        delete every older one."""
        self.fs.create_dir(self.trial_path, recursive=True)
        final = self._path(epoch)
        data = seal(payload)
        if self.fs.type_name == "local":
            temporary = f"{self.trial_path}/.{checkpoint_name(epoch)}.{uuid.uuid4().hex[:8]}.tmp"
            with self.fs.open_output_stream(temporary) as stream:
                stream.write(data)
            self.fs.move(temporary, final)
        else:  # an object store: one PUT is atomic, a "move" would be a copy
            with self.fs.open_output_stream(final) as stream:
                stream.write(data)
        for older in self.epochs():
            if older < epoch:
                self.fs.delete_file(self._path(older))

    def finish(self, keep: KeepCheckpoints) -> None:
        """Apply the policy for a finished trial: keep the newest file only, or none."""
        epochs = self.epochs()
        doomed = epochs if keep is KeepCheckpoints.NONE else epochs[:-1]
        for epoch in doomed:
            self.fs.delete_file(self._path(epoch))
