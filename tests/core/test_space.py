"""Search-space files: the shipped ones load, every rule is enforced at load, samples round-trip.

Every case writes a real YAML file to tmp_path and loads it with `load_space`; bad files must fail
with one SpaceError line naming the file, the key path and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from te_sweep.core.config import TrialConfig, validate
from te_sweep.core.preflight import check_trial
from te_sweep.core.space import Param, SearchSpace, SpaceError, load_space

SHIPPED = Path(__file__).resolve().parents[2] / "search_spaces"
FIXED = {"dataset": "fashion-mnist", "subset": 1000, "max_epochs": 2}
SEARCH = {"te_scale": {"low": 0.1, "high": 4.0, "log": True}}


def write(tmp_path: Path, doc: Any = None, *, text: str | None = None) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(doc, sort_keys=False))
    return path


def space_doc(fixed: dict | None = None, search: dict | None = None) -> dict:
    return {
        "fixed": FIXED if fixed is None else fixed,
        "search": SEARCH if search is None else search,
    }


def load_error(path: Path) -> str:
    with pytest.raises(SpaceError) as exc:
        load_space(path)
    message = str(exc.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


# ------------------------------------------------------------------------ the shipped files
@pytest.mark.parametrize("name", ["smoke", "default", "paper"])
def test_shipped_file_loads_as_written(name: str):
    path = SHIPPED / f"{name}.yaml"
    space = load_space(path)
    raw = yaml.safe_load(path.read_text())
    assert space.path == path and space.text == path.read_text()
    assert space.description == raw["description"] and space.description
    assert space.fixed == raw["fixed"]
    assert "seed" not in space.fixed and "seed" not in space.params
    assert list(space.params) == ["pair_fraction", "window", "threshold", "te_scale"]
    for param_name, spec in raw["search"].items():
        p = space.params[param_name]
        assert (p.low, p.high, p.log, p.step) == (
            spec["low"],
            spec["high"],
            spec.get("log", False),
            None,
        )
    assert space.fixed["dataset"] == "fashion-mnist" and space.fixed["mode"] == "grad"


def test_smoke_is_tiny():
    space = load_space(SHIPPED / "smoke.yaml")
    assert space.fixed["subset"] <= 2000 and space.fixed["max_epochs"] == 2
    assert space.params["window"].high < space.fixed["subset"]  # fills within epoch 1


def test_paper_is_full_scale():
    fixed = load_space(SHIPPED / "paper.yaml").fixed
    assert "subset" not in fixed
    assert (fixed["max_epochs"], fixed["target"], fixed["target_metric"]) == (30, 0.97, "train_acc")


PAPER_ALTERNATIVES = {
    "usps": (0.99, "grad", 500),
    "cifar10": (0.98, "paper", 512),
    "svhn": (0.94, "paper", 4096),
    "stl10": (0.98, "paper", 4096),
}


@pytest.mark.parametrize("dataset", PAPER_ALTERNATIVES)
def test_paper_alternative_blocks_load_when_uncommented(tmp_path: Path, dataset: str):
    text = (SHIPPED / "paper.yaml").read_text()
    blocks = re.findall(r"^# fixed:\n(?:^#   .*\n)+", text, flags=re.M)
    block = next(b for b in blocks if f"dataset: {dataset}\n" in b)
    active = re.search(r"^fixed:\n(?:^  .*\n)+", text, flags=re.M).group(0)
    uncommented = re.sub(r"^# ?", "", block, flags=re.M)
    space = load_space(write(tmp_path, text=text.replace(active, uncommented)))
    target, mode, window = PAPER_ALTERNATIVES[dataset]
    assert (space.fixed["dataset"], space.fixed["target"], space.fixed["mode"]) == (
        dataset,
        target,
        mode,
    )
    p = space.params["window"]
    assert p.low <= window <= p.high
    assert check_trial(space.baseline_config(0).replace(device="cpu")).window == window


def test_optuna_space_types(tmp_path: Path):
    space = load_space(SHIPPED / "smoke.yaml")
    dists = space.optuna_space()
    assert isinstance(dists["pair_fraction"], FloatDistribution) and dists["pair_fraction"].log
    assert isinstance(dists["window"], IntDistribution) and dists["window"].log
    assert isinstance(dists["threshold"], FloatDistribution) and not dists["threshold"].log
    path = write(
        tmp_path,
        space_doc(
            search={
                "mode": {"choices": ["grad", "paper"]},
                "te_every": {"low": 1, "high": 9, "step": 2},
                "threshold": {"low": 0.5, "high": 2, "step": 0.5},
            }
        ),
    )
    dists = load_space(path).optuna_space()
    assert dists["mode"] == CategoricalDistribution(["grad", "paper"])
    assert dists["te_every"] == IntDistribution(1, 9, step=2)
    assert dists["threshold"] == FloatDistribution(0.5, 2.0, step=0.5)


def test_trial_and_baseline_configs():
    space = load_space(SHIPPED / "default.yaml")
    sampled = {"pair_fraction": 0.1, "window": 256, "threshold": 0.5, "te_scale": 2.0}
    cfg = space.trial_config(sampled, seed=7)
    assert cfg == TrialConfig(**space.fixed, **sampled, seed=7)
    check_trial(cfg.replace(device="cpu"))
    base = space.baseline_config(seed=5)
    assert (base.te_scale, base.seed, base.window, base.pair_fraction) == (0.0, 5, None, 1.0)
    assert base == TrialConfig(**space.fixed, te_scale=0.0, seed=5)
    assert not check_trial(base.replace(device="cpu")).feedback_on


@pytest.mark.parametrize(
    "sampled, fragment",
    [
        ({"te_scale": 1.0, "windw": 3}, "unknown ['windw'] and missing []"),
        ({}, "unknown [] and missing ['te_scale']"),
        (
            {"te_scale": 5.0},
            "search.te_scale: a sample must be in [0.1, 4.0], but got 5.0; sample from",
        ),
    ],
)
def test_check_sampled(tmp_path: Path, sampled: dict, fragment: str):
    space = load_space(write(tmp_path, space_doc()))
    with pytest.raises(SpaceError, match=re.escape(fragment)):
        space.trial_config(sampled, seed=0)


def test_trial_config_rejects_bad_seed(tmp_path: Path):
    space = load_space(write(tmp_path, space_doc()))
    with pytest.raises(SpaceError, match=r"seed: -1 must be in \[0, 2\*\*63\)"):
        space.baseline_config(seed=-1)


# ------------------------------------------------------------------------ every load rule
BAD_SPACES = {  # id: (document, key path named, message fragment)
    "unknown top-level key": (
        {**space_doc(), "fixd": {}},
        "fixd",
        "is not a space file key; the allowed keys are description, fixed, search",
    ),
    "fixed not a mapping": (
        {**space_doc(), "fixed": ["subset"]},
        "fixed",
        "must be a mapping of trial settings",
    ),
    "description two lines": (
        {"description": "a\nb", **space_doc()},
        "description",
        "must be one line of text",
    ),
    "unknown fixed key": (
        space_doc(fixed={"epochs": 3}),
        "fixed.epochs",
        "is not a trial setting; did you mean max_epochs? use one of dataset, preset",
    ),
    "wrong type in fixed": (
        space_doc(fixed={"subset": "many"}),
        "fixed.subset",
        "expected an integer, got 'many'",
    ),
    "bad value in fixed": (
        space_doc(fixed={"target": 1.5}),
        "fixed.target",
        "1.5 is not an accuracy in (0, 1]",
    ),
    "seed in fixed": (
        space_doc(fixed={"seed": 1}),
        "fixed.seed",
        "seeds cannot be fixed or searched: the sweep assigns one per trial",
    ),
    "seed in search": (
        space_doc(search={"seed": {"low": 0, "high": 9}}),
        "search.seed",
        "seeds cannot be fixed or searched",
    ),
    "key in both": (
        space_doc(fixed={"window": 500}, search={"window": {"low": 100, "high": 900}}),
        "search.window",
        "is both fixed and searched; remove it from `fixed` or",
    ),
    "unknown search key": (
        space_doc(search={"windw": {"low": 100, "high": 900}}),
        "search.windw",
        "is not a trial setting; did you mean window?",
    ),
    "param not a mapping": (
        space_doc(search={"window": [100, 900]}),
        "search.window",
        "must be a mapping {low, high[, log, step]} or {choices: [...]}",
    ),
    "unknown key in a range": (
        space_doc(search={"te_scale": {"low": 1, "high": 2, "lg": 1}}),
        "search.te_scale.lg",
        "is not allowed here; a range parameter takes only low, high, log, step",
    ),
    "range key with choices": (
        space_doc(search={"mode": {"choices": ["grad"], "low": 1}}),
        "search.mode.low",
        "a categorical parameter takes only choices",
    ),
    "high missing": (
        space_doc(search={"te_scale": {"low": 1}}),
        "search.te_scale",
        "a range needs both low and high, but `high` is missing",
    ),
    "low > high": (
        space_doc(search={"window": {"low": 900, "high": 100}}),
        "search.window",
        "`low <= high` must hold, but got (low=900, high=100); swap them",
    ),
    "log with low 0": (
        space_doc(search={"te_scale": {"low": 0, "high": 4, "log": True}}),
        "search.te_scale",
        "`low > 0` must hold when log is true, but got low=0.0; raise low",
    ),
    "log not a bool": (
        space_doc(search={"te_scale": {"low": 1, "high": 4, "log": "yes"}}),
        "search.te_scale.log",
        "must be true or false, but got 'yes'",
    ),
    "log and step": (
        space_doc(search={"threshold": {"low": 0.5, "high": 2, "log": True, "step": 0.5}}),
        "search.threshold",
        "`step` and `log` cannot be combined (Optuna forbids it), but got "
        "(log=true, step=0.5); remove one",
    ),
    "negative step": (
        space_doc(search={"threshold": {"low": 0.5, "high": 2, "step": -0.5}}),
        "search.threshold",
        "`step > 0` must hold and high - low must be a "
        "multiple of it, but got (low=0.5, high=2.0, step=-0.5)",
    ),
    "zero step": (
        space_doc(search={"window": {"low": 100, "high": 500, "step": 0}}),
        "search.window",
        "`step > 0` must hold",
    ),
    "step not dividing": (
        space_doc(search={"window": {"low": 100, "high": 950, "step": 100}}),
        "search.window",
        "high - low must be a multiple of it, but got (low=100, high=950, step=100)",
    ),
    "int field float bound": (
        space_doc(search={"window": {"low": 100.5, "high": 500}}),
        "search.window.low",
        "`window` is an integer setting, so low "
        "must be an integer, but got 100.5; use a whole number",
    ),
    "bound not a number": (
        space_doc(search={"threshold": {"low": "small", "high": 2}}),
        "search.threshold.low",
        "must be a number, but got 'small'",
    ),
    "range on a string field": (
        space_doc(search={"mode": {"low": 1, "high": 2}}),
        "search.mode",
        "`mode` is not a numeric setting, so it cannot take a range; use {choices: [...]}",
    ),
    "range on a bool field": (
        space_doc(search={"redraw_pairs": {"low": 0, "high": 1}}),
        "search.redraw_pairs",
        "is not a numeric setting",
    ),
    "empty choices": (
        space_doc(search={"mode": {"choices": []}}),
        "search.mode.choices",
        "must be a non-empty list, but got []",
    ),
    "invalid choice": (
        space_doc(search={"mode": {"choices": ["grad", "fast"]}}),
        "search.mode.choices[1]",
        "'fast' is not one of grad, paper",
    ),
    "choice of wrong type": (
        space_doc(search={"window": {"choices": [256, "big"]}}),
        "search.window.choices[1]",
        "expected an integer, got 'big'",
    ),
    "duplicate choice": (
        space_doc(search={"threshold": {"choices": [1, 0.5, 1.0]}}),
        "search.threshold.choices[2]",
        "choices must be distinct, but 1.0 is repeated",
    ),
    "pair_fraction high 1.5": (
        space_doc(search={"pair_fraction": {"low": 0.1, "high": 1.5}}),
        "search.pair_fraction.high",
        "1.5 is not in (0, 1]; give a fraction of pairs",
    ),
    "window low 1": (
        space_doc(search={"window": {"low": 1, "high": 500}}),
        "search.window.low",
        "1 is not in [2, 1048576]",
    ),
    "subset larger than the data": (
        space_doc(fixed={"subset": 70000}),
        "fixed.subset",
        "70000 is larger than the 60000 training images of "
        "fashion-mnist; give at most 60000 or leave it out",
    ),
    "searched window too large": (
        space_doc(search={"window": {"low": 100, "high": 5000}}),
        "search.window",
        "5000 samples is not below the 2000 the trial trains on (1000 images x 2 epochs)",
    ),
    "grad on cifar10, mode left at default": (
        space_doc(fixed={"dataset": "cifar10"}),
        "mode (left at default)",
        "'grad' needs a model with two fully connected layers and preset 'cifar10' has one",
    ),
    "grad on cifar10, mode fixed": (
        space_doc(fixed={"dataset": "cifar10", "mode": "grad"}),
        "fixed.mode",
        "'grad' needs a model with two fully connected layers",
    ),
    "window too large at a middle choice": (
        space_doc(search={"window": {"choices": [100, 4096, 200]}}),
        "search.window",
        "(checked with window=4096 and the other searched parameters at their low end)",
    ),
    "no search": (
        {"fixed": FIXED},
        "search",
        "at least one searched parameter is needed, but got {}; add e.g.",
    ),
    "empty search": (space_doc(search={}), "search", "at least one searched parameter"),
}


@pytest.mark.parametrize("doc, key, fragment", BAD_SPACES.values(), ids=BAD_SPACES)
def test_bad_space_file(tmp_path: Path, doc: dict, key: str, fragment: str):
    message = load_error(write(tmp_path, doc))
    assert message.startswith(f"{tmp_path / 'space.yaml'}: {key}: "), message
    assert fragment in message, message


BAD_TEXTS = {  # id: (file text, message fragment)
    "malformed yaml": (
        "fixed:\n  subset: 1000\nsearch:\n  te_scale: {low: 0.1, high: 4\n",
        "not valid YAML at line 5, column 1 (expected ',' or '}', but got "
        "'<stream end>'); fix the syntax",
    ),
    "tab indentation": ("fixed:\n\tsubset: 1000\n", "not valid YAML at line 2, column 1"),
    "duplicate key": (
        "search:\n  window: {low: 100, high: 900}\n  window: {low: 2, high: 9}\n",
        "not valid YAML at line 3, column 3 (duplicate key 'window'; keep one)",
    ),
    "not a mapping": (
        "- te_scale\n- window\n",
        "top level: the file must be a mapping with "
        "keys description, fixed, search, but got a list",
    ),
    "empty file": (
        "",
        "top level: the file must be a mapping with keys description, fixed, "
        "search, but got an empty file",
    ),
}


@pytest.mark.parametrize("text, fragment", BAD_TEXTS.values(), ids=BAD_TEXTS)
def test_bad_space_text(tmp_path: Path, text: str, fragment: str):
    message = load_error(write(tmp_path, text=text))
    assert fragment in message, message


def test_missing_file(tmp_path: Path):
    message = load_error(tmp_path / "nope.yaml")
    assert "cannot read the space file (No such file or directory); give the path" in message


def test_directory_instead_of_file(tmp_path: Path):
    assert "cannot read the space file (Is a directory)" in load_error(tmp_path)


def test_exponent_without_dot_is_a_number(tmp_path: Path):
    """YAML 1.1 (PyYAML) reads 1e-3 as a string; a space file reads it as a number."""
    path = write(
        tmp_path, text="fixed: {subset: 1000}\nsearch:\n  lr: {low: 1e-4, high: 5E-2, log: true}\n"
    )
    p = load_space(path).params["lr"]
    assert (p.kind, p.low, p.high) == ("float", 1e-4, 5e-2)


def test_nullable_field_and_device_left_to_the_sweep(tmp_path: Path):
    """A null choice means the preset's value; device cuda loads on a machine without CUDA."""
    path = write(
        tmp_path,
        space_doc(fixed={**FIXED, "device": "cuda"}, search={"window": {"choices": [None, 64]}}),
    )
    space = load_space(path)
    assert space.params["window"] == Param("window", "categorical", choices=(None, 64))
    assert space.fixed["device"] == "cuda"
    assert space.trial_config({"window": None}, seed=1).window is None


# ------------------------------------------------------------------------ optuna round trip
ALL_KINDS = {
    "pair_fraction": {"low": 0.02, "high": 1.0, "log": True},
    "window": {"low": 100, "high": 1999, "log": True},  # below 1000 images x 2 epochs
    "threshold": {"low": 0.25, "high": 2.0, "step": 0.25},
    "te_every": {"low": 1, "high": 4},
    "te_scale": {"low": 0.05, "high": 4, "log": True},
    "mode": {"choices": ["grad", "paper"]},
    "redraw_pairs": {"choices": [False, True]},
}


@pytest.mark.parametrize(
    "sampler",
    [
        optuna.samplers.TPESampler(seed=1, n_startup_trials=10),
        optuna.samplers.RandomSampler(seed=2),
    ],
    ids=["tpe", "random"],
)
def test_sampling_round_trip(tmp_path: Path, sampler: optuna.samplers.BaseSampler):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space: SearchSpace = load_space(write(tmp_path, space_doc(search=ALL_KINDS)))
    study = optuna.create_study(sampler=sampler)
    seen: dict[str, set] = {name: set() for name in ALL_KINDS}
    for _ in range(50):
        trial = study.ask(fixed_distributions=space.optuna_space())
        cfg = space.trial_config(trial.params, seed=3)
        validate(cfg)
        assert cfg.seed == 3 and cfg.subset == FIXED["subset"]
        for name, value in trial.params.items():
            p = space.params[name]
            assert getattr(cfg, name) == value
            if p.kind == "categorical":
                assert value in p.choices
            else:
                assert p.low <= value <= p.high and type(value) is type(p.low)
            seen[name].add(value)
        study.tell(trial, cfg.te_scale * cfg.threshold)
    assert seen["mode"] == {"grad", "paper"} and seen["redraw_pairs"] == {False, True}
    assert seen["threshold"] <= {0.25 * k for k in range(1, 9)}
    assert all(len(values) > 1 for values in seen.values())
