"""A sweep directory moved or renamed after launch: point Tune's saved search state at it.

`Tuner.restore(NEWDIR)` moves the trials Tune already created to NEWDIR (Tune propagates the new
storage to each restored trial), but its search generator's saved state keeps the Experiment of
the launch, whose storage names the old directory; every trial the searcher creates after the
resume would then write its files (result.json, checkpoints) at the old location, which may no
longer exist, and the export of NEWDIR would find those trials without results. So before Tune
restores a sweep, each saved search generator state on the storage gets the storage NEWDIR is
on, as Tune does for its restored trials (ray.tune.execution.tune_controller._restore_trials).
"""

from __future__ import annotations

import pyarrow.fs as pafs

from te_sweep.results.storage import SweepDir, reaching

# Tune's SearchGenerator.CKPT_FILE_TMPL: cloudpickle despite the name, one per driver session
SEARCH_STATE_PREFIX, SEARCH_STATE_SUFFIX = "search_gen_state-", ".json"
EXPERIMENT_KEY = "experiment"


def relocate_search_state(sweep_dir: SweepDir) -> list[str]:
    """Rewrite each search generator state whose experiment names another directory than
    `sweep_dir`; returns the names of the files rewritten (none when nothing moved)."""
    import ray.cloudpickle as cloudpickle  # what Tune writes and reads these files with

    fs, root = sweep_dir.filesystem()
    storage_fs_path = root.rstrip("/").rpartition("/")[0] or "/"
    rewritten = []
    with reaching(sweep_dir.uri):
        listing = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        names = sorted(
            info.base_name
            for info in listing
            if info.type == pafs.FileType.File
            and info.base_name.startswith(SEARCH_STATE_PREFIX)
            and info.base_name.endswith(SEARCH_STATE_SUFFIX)
        )
        for name in names:
            state = cloudpickle.loads(sweep_dir.read_bytes(name))
            storage = getattr(state.get(EXPERIMENT_KEY), "storage", None)
            if storage is None or (storage.storage_fs_path, storage.experiment_dir_name) == (
                storage_fs_path,
                sweep_dir.name,
            ):
                continue
            storage.storage_filesystem = fs
            storage.storage_fs_path = storage_fs_path
            storage.experiment_dir_name = sweep_dir.name
            # ray.cloudpickle.dumps is unannotated in ray's source (no stubs)
            sweep_dir.write_bytes(name, cloudpickle.dumps(state))
            rewritten.append(name)
    return rewritten
