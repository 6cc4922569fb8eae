"""Every check of a trial that can be made before any data is loaded.

Field-by-field rules live in config.validate; here are the checks that need to know the data
set's size and image shape (from a table for the known data sets, from the .npz headers for a
user's file, never from the images) or the network's shape (arithmetic on its conv spec). A
user with a bad value hears about it in a second, not after a download.
"""

from __future__ import annotations

from pathlib import Path

import torch

from te_sweep.core.config import ResolvedConfig, TrialConfig, resolve
from te_sweep.core.models import ARCHITECTURES, flat_size
from te_sweep.core.npz import inspect_npz
from te_sweep.core.presets import PRESETS
from te_sweep.core.sources import KNOWN_DATASETS, DataSourceError
from te_sweep.errors import ConfigError


def data_shape(cfg: TrialConfig) -> tuple[int, tuple[int, int, int]]:
    """(training images, (H, W, C)) of the trial's data set, without loading images."""
    if not cfg.is_user_file:
        known = KNOWN_DATASETS[cfg.dataset]
        return known.train_size, known.image_shape
    try:
        info = inspect_npz(Path(cfg.dataset))
    except DataSourceError as err:
        raise ConfigError("dataset", str(err)) from None
    return info.train_size, info.image_shape


def check_trial(cfg: TrialConfig, check_device: bool = True) -> ResolvedConfig:
    """Validate everything about a trial; returns it resolved against its preset.

    `check_device=False` leaves out whether this machine has the trial's CUDA device (a sweep
    on a cluster runs its trials elsewhere; launch.py checks what it can)."""
    cfg = resolve(cfg)
    if (
        cfg.data_root is not None
        and Path(cfg.data_root).expanduser().exists()
        and not Path(cfg.data_root).expanduser().is_dir()
    ):
        raise ConfigError(
            "data_root",
            f"{cfg.data_root} is a file, not a directory; give the "
            "directory torchvision keeps (or downloads) the data sets in",
        )
    train_size, (height, width, channels) = data_shape(cfg)
    if cfg.subset is not None and cfg.subset > train_size:
        raise ConfigError(
            "subset",
            f"{cfg.subset} is larger than the {train_size} training "
            f"images of {cfg.dataset}; give at most {train_size} or leave it out",
        )
    arch = ARCHITECTURES[PRESETS[cfg.preset].architecture]
    try:
        flat_size(arch, channels, (height, width))
    except ValueError as err:
        raise ConfigError("preset", f"{cfg.preset!r} does not fit {cfg.dataset}: {err}") from None
    if cfg.feedback_on and cfg.mode == "grad" and arch.fc_layers < 2:
        raise ConfigError(
            "mode",
            f"'grad' needs a model with two fully connected layers and "
            f"preset {cfg.preset!r} has one; use mode 'paper' (logits -> softmax "
            "pairs) or a two-FC preset (fashion-mnist, usps)",
        )
    samples = (cfg.subset or train_size) * cfg.max_epochs
    if cfg.feedback_on and cfg.window >= samples:
        raise ConfigError(
            "window",
            f"{cfg.window} samples is not below the {samples} the trial "
            f"trains on ({cfg.subset or train_size} images x {cfg.max_epochs} "
            "epochs), so its TE window would fill at the last step at best and "
            f"nothing would be fed back; give a window below {samples}",
        )
    if check_device:
        check_device_here(cfg.device)
        if cfg.feedback_on and cfg.te_compile:
            check_compile_here(cfg.device)
    return cfg


def check_compile_here(device: str) -> None:
    """te_compile true: torch.compile can compile here (inductor needs a C++ compiler for
    the CPU, Triton for CUDA), probed on a one-line function (seconds, once)."""
    from te_sweep.core.te_compile import compile_error
    from te_sweep.core.train import resolve_device

    error = compile_error(resolve_device(device))
    if error:
        raise ConfigError(
            "te_compile",
            f"true, but torch.compile cannot compile here ({error}); "
            "install what it names, or leave te_compile out (compiled on CUDA "
            "only, where it can)",
        )


def check_device_here(device: str) -> None:
    """The CUDA device `device` names exists on this machine ('auto' and 'cpu' always do)."""
    if not device.startswith("cuda"):
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(
            "device",
            f"{device!r} asked for, but no CUDA device is available here; use 'cpu' or 'auto'",
        )
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise ConfigError(
            "device",
            f"{device!r} asked for, but this machine has {count} CUDA "
            f"device(s), cuda:0 to cuda:{count - 1}; use one of those or 'auto'",
        )
