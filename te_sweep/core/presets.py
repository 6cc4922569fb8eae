"""The published training settings of the five CNNs of the paper, one preset each.

Values are those of the authors' public code (github.com/avmoldovan/CNN-TE), summarised in
shared/reference/te-method.md. A TrialConfig field left as None takes its preset's value, so
a trial on a data set runs with the paper's settings unless the user overrides one.
`target` is the paper's training-set accuracy target for that data set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    architecture: str  # key into te_sweep.core.models.ARCHITECTURES
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    window: int  # TE window in samples (the authors' te_length)
    target: float  # the paper's train-accuracy target
    lr_step_epochs: int | None = None  # multiply lr by lr_gamma every this many epochs
    lr_gamma: float = 0.1


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "fashion-mnist",
            "fashion-mnist",
            lr=0.008,
            momentum=0.0,
            weight_decay=0.0,
            batch_size=100,
            window=500,
            target=0.97,
        ),
        Preset(
            "usps",
            "usps",
            lr=0.008,
            momentum=0.0,
            weight_decay=0.0,
            batch_size=100,
            window=500,
            target=0.99,
        ),
        Preset(
            "cifar10",
            "cifar10",
            lr=0.01,
            momentum=0.9,
            weight_decay=5e-4,
            batch_size=128,
            window=512,
            target=0.98,
            lr_step_epochs=20,
        ),
        Preset(
            "svhn",
            "svhn",
            lr=0.001,
            momentum=0.9,
            weight_decay=0.0,
            batch_size=200,
            window=4096,
            target=0.94,
        ),
        Preset(
            "stl10",
            "stl10",
            lr=0.001,
            momentum=0.9,
            weight_decay=0.0,
            batch_size=200,
            window=4096,
            target=0.98,
        ),
    )
}

# A user's .npz gets this preset unless --preset says otherwise: small, two FC layers.
DEFAULT_NPZ_PRESET = "fashion-mnist"
