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
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

MANIFEST = "te_sweep.json"


def is_uri(storage: str) -> bool:
    return "://" in storage


def normalize_storage(storage: str) -> str:
    """Absolute local path, or the URI unchanged."""
    return storage if is_uri(storage) else str(Path(storage).expanduser().resolve())


@dataclass(frozen=True)
class SweepDir:
    storage: str  # normalized: absolute path or URI
    name: str

    @classmethod
    def from_path(cls, path: str) -> "SweepDir":
        """STORAGE/NAME given as one path or URI (what resume and export take)."""
        path = normalize_storage(path).rstrip("/")
        storage, _, name = path.rpartition("/")
        return cls(storage or "/", name)

    @property
    def uri(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        if is_uri(self.storage):
            fs, root = pafs.FileSystem.from_uri(self.uri)
            return fs, root
        return pafs.LocalFileSystem(), self.uri

    def file_uri(self, filename: str) -> str:
        return f"{self.uri}/{filename}"

    def exists(self) -> bool:
        fs, root = self._fs()
        return fs.get_file_info(root).type != pafs.FileType.NotFound

    def is_empty(self) -> bool:
        fs, root = self._fs()
        if fs.get_file_info(root).type == pafs.FileType.NotFound:
            return True
        return not fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))

    def has_file(self, filename: str) -> bool:
        fs, root = self._fs()
        return fs.get_file_info(f"{root}/{filename}").type == pafs.FileType.File

    def read_bytes(self, filename: str) -> bytes:
        fs, root = self._fs()
        with fs.open_input_stream(f"{root}/{filename}") as stream:
            return stream.read()

    def write_bytes(self, filename: str, data: bytes) -> None:
        """Atomic write: a temporary name, then a rename (local) or a single PUT (URI)."""
        fs, root = self._fs()
        folder, _, name = f"{root}/{filename}".rpartition("/")  # filename may be sub/name
        fs.create_dir(folder, recursive=True)
        if is_uri(self.storage):
            with fs.open_output_stream(f"{folder}/{name}") as stream:
                stream.write(data)
            return
        tmp = Path(folder) / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, Path(folder) / name)

    def local_path(self) -> Path | None:
        return None if is_uri(self.storage) else Path(self.uri)

    def mirror_results(self, destination: Path) -> Path:
        """Copy the small files an export reads (never checkpoints) to a local directory."""
        fs, root = self._fs()
        wanted = ("params.json", "result.json", "error.txt")
        for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
            relative = info.path[len(root):].lstrip("/")
            top_level = "/" not in relative
            if info.type != pafs.FileType.File or not (
                    (top_level and relative.endswith(".json"))
                    or (relative.count("/") == 1 and relative.rsplit("/", 1)[1] in wanted)):
                continue
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(info.path) as stream:
                target.write_bytes(stream.read())
        return destination

    # --- the manifest ------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        if not self.has_file(MANIFEST):
            return None
        return json.loads(self.read_bytes(MANIFEST))

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.write_bytes(MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
