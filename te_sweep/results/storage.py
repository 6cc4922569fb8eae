"""Where a sweep lives: STORAGE/NAME, on a local disk or a shared URI (s3://, gs://, ...).

Everything te-sweep writes beside Ray's own files goes through a SweepDir: the manifest
(te_sweep.json: which sweep this is, its space file, launch options, versions) and the Parquet
exports. Files are written atomically: to a temporary name, then renamed (a single PUT on object
stores, which is atomic there), so a crash never leaves a half-written file behind.
pyarrow's filesystem layer is used because Ray Tune uses the same one for storage_path.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from te_sweep.errors import InputError, TESweepError

MANIFEST = "te_sweep.json"
COPY_THREADS = 16  # parallel reads of a URI sweep's small files (object stores are latency-bound)
# pyarrow.fs.FileSystem.from_uri's schemes (a sweep's storage, as Tune's storage_path)
URI_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")
_SCHEME_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # "s3:", "gs:", also "s3:/x"


def is_uri(storage: str) -> bool:
    return "://" in storage


def check_storage(storage: str) -> None:
    """Refuse, without touching the storage, a location te-sweep could not use: an unknown
    URI scheme, a URI missing its '//' (which would silently become a local folder), a
    local path that is a file or lies under one, or a local directory this user cannot create
    or write."""

    def refuse(problem: str) -> None:
        raise InputError(f"Invalid value for '--storage': {problem}")

    if is_uri(storage):
        scheme = storage.split("://", 1)[0].lower()
        if scheme not in URI_SCHEMES:
            refuse(
                f"{storage!r} has the scheme {scheme!r}, which te-sweep cannot store to; "
                f"use a local directory or one of {', '.join(s + '://' for s in URI_SCHEMES)}"
            )
        return
    if _SCHEME_LIKE.match(storage) and not Path(storage).exists():
        refuse(
            f"{storage!r} looks like a URI without its '//' and would become a local "
            f"folder; write {storage.split(':', 1)[0]}://... or give a local path"
        )
    path = Path(storage).expanduser()
    if path.exists() and not path.is_dir():
        refuse(f"{storage} is a file; give a directory (it is created if missing)")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        refuse(
            f"{existing} is a file, so {storage} cannot be created inside it; give a path "
            "whose parent is a directory"
        )
    if not _can_write_in(existing):
        refuse(
            f"{existing} is not writable by this user, so {storage} cannot be created or "
            "written; choose a directory you can write"
        )


def _can_write_in(directory: Path) -> bool:
    """Whether a file can be created in `directory`: the permission bits, then a real try (root
    passes every permission check, yet cannot write to /proc or a read-only mount). The probe
    file is anonymous and gone when closed: nothing is left behind."""
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def normalize_storage(storage: str) -> str:
    """Absolute local path, or the URI unchanged."""
    return storage if is_uri(storage) else str(Path(storage).expanduser().resolve())


class StorageError(TESweepError):
    """The storage could not be read or written (exit 1): a path, a URI or credentials."""


@contextmanager
def reaching(uri: str) -> Iterator[None]:
    """pyarrow's and the OS's errors about a storage location as one StorageError line."""
    try:
        yield
    except (OSError, pa.ArrowException) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise StorageError(
            f"cannot use {uri}: {first}; check the path or URI, that it is "
            "reachable from here, and the credentials"
        ) from None


@dataclass(frozen=True)
class SweepDir:
    storage: str  # normalized: absolute path or URI
    name: str

    @classmethod
    def from_path(cls, path: str) -> SweepDir:
        """STORAGE/NAME given as one path or URI (what resume and export take)."""
        if is_uri(path) and path.split("://", 1)[0].lower() not in URI_SCHEMES:
            raise InputError(
                f"Invalid value for 'SWEEP_DIR': {path!r} has a scheme te-sweep "
                f"cannot read; use a local path or one of "
                f"{', '.join(s + '://' for s in URI_SCHEMES)}"
            )
        path = normalize_storage(path).rstrip("/")
        storage, _, name = path.rpartition("/")
        return cls(storage or "/", name)

    @property
    def uri(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """The sweep's filesystem and its directory's path on it (local, or a URI's store)."""
        return self._fs()

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        if is_uri(self.storage):
            with reaching(self.uri):
                fs, root = pafs.FileSystem.from_uri(self.uri)
            return fs, root
        return pafs.LocalFileSystem(), self.uri

    def file_uri(self, filename: str) -> str:
        return f"{self.uri}/{filename}"

    def exists(self) -> bool:
        fs, root = self._fs()
        with reaching(self.uri):
            return bool(fs.get_file_info(root).type != pafs.FileType.NotFound)

    def is_empty(self, ignoring: tuple[str, ...] = ()) -> bool:
        """Whether the directory is missing or holds nothing but the files named `ignoring`."""
        fs, root = self._fs()
        with reaching(self.uri):
            if fs.get_file_info(root).type == pafs.FileType.NotFound:
                return True
            found = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
            return all(info.base_name in ignoring for info in found)

    def has_file(self, filename: str) -> bool:
        fs, root = self._fs()
        with reaching(self.uri):
            return bool(fs.get_file_info(f"{root}/{filename}").type == pafs.FileType.File)

    def read_bytes(self, filename: str) -> bytes:
        fs, root = self._fs()
        with reaching(self.file_uri(filename)), fs.open_input_stream(f"{root}/{filename}") as f:
            data: bytes = f.read()  # (pyarrow is untyped)
            return data

    def write_bytes(self, filename: str, data: bytes) -> None:
        """Atomic write: a temporary name, then a rename (local) or a single PUT (URI)."""
        fs, root = self._fs()
        folder, _, name = f"{root}/{filename}".rpartition("/")  # filename may be sub/name
        with reaching(self.file_uri(filename)):
            fs.create_dir(folder, recursive=True)
            if is_uri(self.storage):
                with fs.open_output_stream(f"{folder}/{name}") as stream:
                    stream.write(data)
                return
            tmp = Path(folder) / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, Path(folder) / name)

    def delete_file(self, filename: str) -> None:
        fs, root = self._fs()
        with reaching(self.file_uri(filename)):
            fs.delete_file(f"{root}/{filename}")

    def local_path(self) -> Path | None:
        return None if is_uri(self.storage) else Path(self.uri)

    def mirror_results(self, destination: Path) -> Path:
        """Copy the small files an export reads (never checkpoints) to a local directory,
        COPY_THREADS at a time (one listing, then parallel reads: an object store's latency
        per file, not its bandwidth, is what a sweep of 10,000 trials waits for)."""
        fs, root = self._fs()
        wanted = ("params.json", "result.json", "error.txt")
        with reaching(self.uri):
            listing = fs.get_file_info(pafs.FileSelector(root, recursive=True))
        chosen = []
        for info in listing:
            relative = info.path[len(root) :].lstrip("/")
            top_level = "/" not in relative
            if info.type == pafs.FileType.File and (
                (top_level and relative.endswith(".json"))
                or (relative.count("/") == 1 and relative.rsplit("/", 1)[1] in wanted)
            ):
                chosen.append((info.path, destination / relative))

        def copy(source: str, target: Path) -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(source) as stream:
                target.write_bytes(stream.read())

        with reaching(self.uri), ThreadPoolExecutor(COPY_THREADS) as pool:
            list(pool.map(lambda pair: copy(*pair), chosen))
        return destination

    # --- the manifest ------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, naming where the sweep is now (see `located`); None if there is none."""
        if not self.has_file(MANIFEST):
            return None
        return self.located(json.loads(self.read_bytes(MANIFEST)))

    def located(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """`manifest` with this directory as the sweep's storage and name. A sweep directory
        moved or renamed after its launch (to other storage, or archived) still holds the
        launch's location in its manifest; where the directory is now is what resume and export
        must use (Tune's own files are found relative to it)."""
        options = manifest.get("options")
        if not isinstance(options, dict) or "storage" not in options:
            return manifest  # a manifest that records no location (hand-made)
        return {
            **manifest,
            "name": self.name,
            "options": {**options, "storage": self.storage, "name": self.name},
        }

    def record_location(self) -> str | None:
        """Rewrite the manifest if it records another location than this directory (the sweep
        was moved); returns the location it recorded then, or None if nothing changed."""
        recorded = json.loads(self.read_bytes(MANIFEST))
        located = self.located(recorded)
        if located == recorded:
            return None
        self.write_manifest(located)
        before = recorded["options"]
        return f"{before['storage'].rstrip('/')}/{before.get('name') or recorded.get('name')}"

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.write_bytes(MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
