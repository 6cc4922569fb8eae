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

Torch-free: the payload is bytes; the real trainable and the scale benchmark's stand-in share it.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyarrow is imported where used: the CLI reads KEEP_CHOICES at start-up
    import pyarrow.fs as pafs

PREFIX, SUFFIX = "checkpoint-epoch-", ".pt"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+){re.escape(SUFFIX)}$")


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
    def of_current_trial(cls) -> "TrialCheckpoints":
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

    def latest(self) -> tuple[int, bytes] | None:
        """(epoch, payload) of the newest checkpoint, or None when the trial has none."""
        epochs = self.epochs()
        if not epochs:
            return None
        with self.fs.open_input_stream(self._path(epochs[-1])) as stream:
            return epochs[-1], stream.read()

    def discard_partial(self) -> None:
        """Delete temporaries of a save cut short (a killed attempt); only one attempt of a
        trial runs at a time, so any found when the trial starts are dead."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.trial_path, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.base_name.startswith(f".{PREFIX}") and info.base_name.endswith(".tmp"):
                self.fs.delete_file(info.path)

    def save(self, epoch: int, payload: bytes) -> None:
        """Write the checkpoint of `epoch` atomically, then delete every older one."""
        self.fs.create_dir(self.trial_path, recursive=True)
        final = self._path(epoch)
        if self.fs.type_name == "local":
            temporary = f"{self.trial_path}/.{checkpoint_name(epoch)}.{uuid.uuid4().hex[:8]}.tmp"
            with self.fs.open_output_stream(temporary) as stream:
                stream.write(payload)
            self.fs.move(temporary, final)
        else:  # an object store: one PUT is atomic, a "move" would be a copy
            with self.fs.open_output_stream(final) as stream:
                stream.write(payload)
        for older in self.epochs():
            if older < epoch:
                self.fs.delete_file(self._path(older))

    def finish(self, keep: KeepCheckpoints) -> None:
        """Apply the policy for a finished trial: keep the newest file only, or none."""
        epochs = self.epochs()
        doomed = epochs if keep is KeepCheckpoints.NONE else epochs[:-1]
        for epoch in doomed:
            self.fs.delete_file(self._path(epoch))
