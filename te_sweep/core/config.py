"""The trial configuration: one frozen dataclass, every default commented with its unit.

The same object is what the CLI fills, what a search space fills, what a checkpoint stores and
what the Parquet metadata records. Fields left as None take the value of the trial's preset
(the paper's settings for its data set) in `resolve`. `validate` checks every field on its own;
checks that need the data set's size or the model's shape live in preflight.py.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from te_sweep.core.presets import DEFAULT_NPZ_PRESET, PRESETS
from te_sweep.errors import ConfigError

KNOWN_DATASET_NAMES = ("fashion-mnist", "usps", "cifar10", "svhn", "stl10")
TARGET_METRICS = ("train_acc", "test_acc")
MODES = ("grad", "paper")
TE_ESTIMATORS = ("plugin", "effective")
HIDDEN_RULES = ("two_sided", "one_sided")
MAX_WINDOW = 2**20
Config = TypeVar("Config", bound="TrialConfig")


@dataclass(frozen=True)
class TrialConfig:
    # --- data -------------------------------------------------------------------------------
    dataset: str = "fashion-mnist"  # a known data set name, or a path to a user's .npz
    preset: str | None = None  # architecture + optimiser settings; None: the data set's own
    subset: int | None = None  # train on a stratified first N training images; None: all
    data_root: str | None = None  # torchvision data directory; None: ~/.cache/te-sweep/data
    # --- stopping ---------------------------------------------------------------------------
    max_epochs: int = 10  # epochs at most
    target_metric: str = "train_acc"  # "train_acc" (the paper's) or "test_acc"
    target: float | None = None  # accuracy in (0, 1] that ends the trial; None: the paper's
    other_split_every: int = 5  # the split the target does not read is evaluated every this
    #                             many epochs and at the trial's last; the target's, every epoch
    # --- optimiser (None: the preset's) ----------------------------------------------------
    lr: float | None = None  # SGD learning rate
    momentum: float | None = None  # SGD momentum in [0, 1)
    weight_decay: float | None = None  # L2 penalty
    batch_size: int | None = None  # training images per step
    # --- TE feedback ------------------------------------------------------------------------
    mode: str = "grad"  # "grad": scale last-layer gradients; "paper": the authors' W <- (I-T)^T W
    te_scale: float = 1.0  # s >= 0; 0 switches the feedback off entirely (the baseline)
    pair_fraction: float = 1.0  # share of neuron pairs fed back, in (0, 1]
    window: int | None = None  # TE window in training samples, >= 2; None: the preset's
    threshold: float = 1.0  # g > 0: a pre-activation or logit is 1 when |z| >= g
    prob_threshold: float = 0.9  # paper mode: a softmax output is 1 when p >= this, in (0, 1)
    te_every: int = 1  # recompute the TE every this many steps; the latest acts at every step
    hidden_rule: str = "two_sided"  # grad mode's hidden units: |pre-activation| >= threshold,
    #                                 or "one_sided": the post-ReLU output >= threshold
    redraw_pairs: bool = False  # draw a new pair subset every epoch (default: once per trial)
    te_estimator: str = "plugin"  # "plugin" (the paper's) or "effective": minus the TE of a
    #                               time-shuffled source, so estimator bias is not fed back
    last_lr_scale: float = 1.0  # multiplies the last layer's learning rate (the LR control)
    te_compile: bool | None = None  # torch.compile the TE step; None: on CUDA only
    # --- run --------------------------------------------------------------------------------
    seed: int = 0  # seeds weights, batch order, dropout and the pair subset
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrialConfig:
        """Build from a mapping (a YAML/JSON file, a search-space sample); unknown keys fail."""
        known = _field_types(cls)
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                unknown[0], "is not a trial setting; known settings: " + ", ".join(known)
            )
        return cls(**{k: _coerce(k, known[k], v) for k, v in values.items()})

    def to_dict(self) -> dict[str, Any]:
        # Every field is a scalar, so a shallow dict is the whole config (and, unlike
        # dataclasses.asdict, cheap enough for an export of 10,000 trials).
        return {name: getattr(self, name) for name in _field_types(type(self))}

    def replace(self: Config, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    @property
    def is_user_file(self) -> bool:
        """True when `dataset` is a path to the user's own .npz, not a known data set name."""
        return self.dataset not in KNOWN_DATASET_NAMES

    @property
    def feedback_on(self) -> bool:
        return self.te_scale > 0


@dataclass(frozen=True)
class ResolvedConfig(TrialConfig):
    """A TrialConfig whose preset settings are filled in (`resolve`'s result): what training,
    the feedback and the outcome read. The same fields and values; only the type says that
    none of these is None any more."""

    preset: str = ""
    target: float = 0.0
    lr: float = 0.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 0
    window: int = 0


_FIELD_TYPES: dict[type, dict[str, str]] = {}


def _field_types(cls: type[TrialConfig]) -> dict[str, str]:
    """A config class's fields and their annotations, in order: looked up once per class, not
    once per trial of a 10,000-trial export."""
    types = _FIELD_TYPES.get(cls)
    if types is None:
        types = _FIELD_TYPES[cls] = {f.name: str(f.type) for f in fields(cls)}
    return types


def _coerce(name: str, annotation: str, value: Any) -> Any:
    """Accept YAML's ints for float fields; reject bools and strings where numbers belong."""
    if value is None:
        if "None" in annotation:
            return None
        raise ConfigError(name, "got null; give a value or leave the key out")
    if "bool" in annotation:
        if not isinstance(value, bool):
            raise ConfigError(name, f"expected true or false, got {value!r}")
        return value
    if "float" in annotation:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, f"expected a number, got {value!r}")
        return float(value)
    if "int" in annotation:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"expected an integer, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(name, f"expected a string, got {value!r}")
    return value


def preset_name(cfg: TrialConfig) -> str:
    if cfg.preset is not None:
        return cfg.preset
    return DEFAULT_NPZ_PRESET if cfg.is_user_file else cfg.dataset


def resolve(cfg: TrialConfig) -> ResolvedConfig:
    """Fill every None setting from the trial's preset; validates first."""
    validate(cfg)
    p = PRESETS[preset_name(cfg)]
    return ResolvedConfig(
        **{
            **cfg.to_dict(),
            "preset": p.name,
            "target": p.target if cfg.target is None else cfg.target,
            "lr": p.lr if cfg.lr is None else cfg.lr,
            "momentum": p.momentum if cfg.momentum is None else cfg.momentum,
            "weight_decay": p.weight_decay if cfg.weight_decay is None else cfg.weight_decay,
            "batch_size": p.batch_size if cfg.batch_size is None else cfg.batch_size,
            "window": p.window if cfg.window is None else cfg.window,
        }
    )


def _finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))


def validate(cfg: TrialConfig) -> None:
    """Check every field on its own; raise ConfigError naming the first bad one and the fix."""
    if not (cfg.dataset in KNOWN_DATASET_NAMES or cfg.dataset.endswith(".npz")):
        raise ConfigError(
            "dataset",
            f"{cfg.dataset!r} is not a known data set; use one of "
            f"{', '.join(KNOWN_DATASET_NAMES)} or a path to an .npz file",
        )
    if not (cfg.preset is None or cfg.preset in PRESETS):
        raise ConfigError(
            "preset", f"{cfg.preset!r} is not a preset; use one of {', '.join(PRESETS)}"
        )
    if not (cfg.subset is None or cfg.subset >= 1):
        raise ConfigError(
            "subset",
            f"{cfg.subset} is not a positive count; give the number of training images to use",
        )
    if not (cfg.max_epochs >= 1):
        raise ConfigError("max_epochs", f"{cfg.max_epochs} must be at least 1")
    if not (cfg.other_split_every >= 1):
        raise ConfigError(
            "other_split_every",
            f"{cfg.other_split_every} must be at least 1 "
            "(epochs; 1 evaluates both splits every epoch)",
        )
    if cfg.target_metric not in TARGET_METRICS:
        raise ConfigError(
            "target_metric", f"{cfg.target_metric!r} is not one of {', '.join(TARGET_METRICS)}"
        )
    if not (cfg.target is None or (_finite(cfg.target) and 0 < cfg.target <= 1)):
        raise ConfigError("target", f"{cfg.target} is not an accuracy in (0, 1]; give e.g. 0.97")
    if not (cfg.lr is None or (_finite(cfg.lr) and cfg.lr > 0)):
        raise ConfigError("lr", f"{cfg.lr} must be a positive learning rate, e.g. 0.008")
    if not (cfg.momentum is None or 0 <= cfg.momentum < 1):
        raise ConfigError("momentum", f"{cfg.momentum} must be in [0, 1)")
    if not (cfg.weight_decay is None or (_finite(cfg.weight_decay) and cfg.weight_decay >= 0)):
        raise ConfigError("weight_decay", f"{cfg.weight_decay} must be >= 0")
    if not (cfg.batch_size is None or cfg.batch_size >= 1):
        raise ConfigError("batch_size", f"{cfg.batch_size} must be at least 1")
    if cfg.mode not in MODES:
        raise ConfigError("mode", f"{cfg.mode!r} is not one of {', '.join(MODES)}")
    if not (_finite(cfg.te_scale) and cfg.te_scale >= 0):
        raise ConfigError(
            "te_scale", f"{cfg.te_scale} must be >= 0 (0 switches the TE feedback off)"
        )
    if not (_finite(cfg.pair_fraction) and 0 < cfg.pair_fraction <= 1):
        raise ConfigError(
            "pair_fraction",
            f"{cfg.pair_fraction} is not in (0, 1]; give a fraction of pairs such as 0.1 or 1",
        )
    if not (cfg.window is None or 2 <= cfg.window <= MAX_WINDOW):
        raise ConfigError(
            "window",
            f"{cfg.window} is not in [2, {MAX_WINDOW}]; TE needs at least 2 samples, "
            "the paper uses 500 to 4096",
        )
    if not (_finite(cfg.threshold) and cfg.threshold > 0):
        raise ConfigError(
            "threshold", f"{cfg.threshold} must be a positive, finite |z| threshold, e.g. 1.0"
        )
    if not (_finite(cfg.prob_threshold) and 0 < cfg.prob_threshold < 1):
        raise ConfigError(
            "prob_threshold",
            f"{cfg.prob_threshold} is not a probability in (0, 1); the paper uses 0.9",
        )
    if not (cfg.te_every >= 1):
        raise ConfigError("te_every", f"{cfg.te_every} must be at least 1 (steps)")
    if cfg.hidden_rule not in HIDDEN_RULES:
        raise ConfigError(
            "hidden_rule", f"{cfg.hidden_rule!r} is not one of {', '.join(HIDDEN_RULES)}"
        )
    if cfg.te_estimator not in TE_ESTIMATORS:
        raise ConfigError(
            "te_estimator", f"{cfg.te_estimator!r} is not one of {', '.join(TE_ESTIMATORS)}"
        )
    if not (_finite(cfg.last_lr_scale) and cfg.last_lr_scale > 0):
        raise ConfigError(
            "last_lr_scale", f"{cfg.last_lr_scale} must be a positive factor, e.g. 0.99"
        )
    if not (0 <= cfg.seed < 2**63):
        raise ConfigError("seed", f"{cfg.seed} must be in [0, 2**63)")
    if not (
        cfg.device in ("auto", "cpu", "cuda")
        or (cfg.device.startswith("cuda:") and cfg.device[5:].isdigit())
    ):
        raise ConfigError(
            "device", f"{cfg.device!r} is not one of auto, cpu, cuda, cuda:N (N a device number)"
        )
