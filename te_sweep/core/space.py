"""Search spaces: which trial settings a sweep holds fixed and which Optuna searches.

A space file (search_spaces/*.yaml) maps TrialConfig fields under `fixed:` (the same in every
trial, baselines too) and under `search:` (`{low, high, log, step}` or `{choices: [...]}`).
A sweep runs for hours, so every mistake a file can hold (a typo, low > high, a window of 1, a
subset larger than the data, grad mode on a single-FC net) is found at load, in one line naming
the file, the key and the fix: both ends of every range pass the rules of `te-sweep train`
(config.validate, preflight.check_trial). Seeds are the sweep's, never the file's. Optuna is
imported lazily.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from te_sweep.core.config import TrialConfig, validate
from te_sweep.errors import ConfigError, InputError, yaml_problem

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

TOP_LEVEL_KEYS = ("description", "fixed", "search")
# Settings that define the problem and the objective, the same for every trial and its paired
# baseline: searching them would let Optuna "win" by changing the question (a lower target,
# fewer epochs, another data set) and would break the pairing with the baselines.
NOT_SEARCHABLE = (
    "dataset",
    "preset",
    "subset",
    "data_root",
    "max_epochs",
    "target_metric",
    "target",
    "device",
    "last_lr_scale",
)
RANGE_KEYS = ("low", "high", "log", "step")
FIELD_TYPES = {f.name: f.type for f in fields(TrialConfig)}  # annotations as strings
Fail = Callable[[str, str], NoReturn]  # raises SpaceError naming the file, a key path, a message


class SpaceError(InputError):
    """A space file (or a sample from it) is invalid; one line naming the file, key and fix."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "float", "int" or "categorical"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def to_optuna(self) -> BaseDistribution:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(self.choices)
        low, high = self.bounds
        if self.kind == "int":
            return IntDistribution(int(low), int(high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(low, high, log=self.log, step=self.step)

    @property
    def bounds(self) -> tuple[float, float]:
        """low and high of a numeric parameter, as floats (a categorical has none)."""
        if self.low is None or self.high is None:
            raise ValueError(f"{self.name} is {self.kind}: it has no low and high")
        return float(self.low), float(self.high)

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        low, high = self.bounds
        return isinstance(value, (int, float)) and low <= value <= high


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    text: str  # the file's exact text (recorded in the Parquet metadata)
    description: str
    fixed: dict[str, Any]  # validated, typed values
    params: dict[str, Param]  # in file order

    def optuna_space(self) -> dict[str, BaseDistribution]:
        return {name: p.to_optuna() for name, p in self.params.items()}

    def check_sampled(self, sampled: Mapping[str, Any]) -> None:
        """Raise SpaceError unless `sampled` has exactly the searched names, each in range."""
        unknown = [k for k in sampled if k not in self.params]
        missing = [k for k in self.params if k not in sampled]
        if unknown or missing:
            raise SpaceError(
                f"{self.path}: a sample must name exactly the searched parameters "
                f"({', '.join(self.params)}), but got unknown {unknown} and "
                f"missing {missing}; sample from this space's optuna_space()"
            )
        for name, p in self.params.items():
            if not p.contains(sampled[name]):
                allowed = p.choices if p.kind == "categorical" else f"[{p.low}, {p.high}]"
                raise SpaceError(
                    f"{self.path}: search.{name}: a sample must be in {allowed}, "
                    f"but got {sampled[name]!r}; sample from optuna_space()"
                )

    def trial_config(self, sampled: Mapping[str, Any], seed: int) -> TrialConfig:
        """One TE trial: the fixed settings, the sampled ones and the sweep's seed."""
        self.check_sampled(sampled)
        return self._config({**self.fixed, **sampled, "seed": seed})

    def baseline_config(self, seed: int) -> TrialConfig:
        """The no-TE baseline: fixed settings, te_scale 0; searched fields keep their defaults."""
        return self._config({**self.fixed, "te_scale": 0.0, "seed": seed})

    def _config(self, values: dict[str, Any]) -> TrialConfig:
        try:
            cfg = TrialConfig.from_dict(values)
            validate(cfg)
        except ConfigError as err:
            raise SpaceError(f"{self.path}: {err.field}: {err.message}") from None
        return cfg


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads 1e-3 as a number (YAML 1.1: a string)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a space file; raise SpaceError on the first problem found."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise SpaceError(
            f"{path}: cannot read the space file ({reason}); give the path of a "
            "YAML file such as search_spaces/default.yaml"
        ) from None
    return space_from_text(text, path)


def space_from_text(text: str, path: Path, check_trials: bool = True) -> SearchSpace:
    """A space from a file's text (`path` names it in messages). `check_trials=False` skips
    the whole-trial checks (they import torch): for reading the space a sweep ran with."""

    def fail(key: str, message: str) -> NoReturn:
        raise SpaceError(f"{path}: {key}: {message}")

    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise SpaceError(f"{path}: not valid YAML{yaml_problem(err)}; fix the syntax") from None
    if not isinstance(doc, dict):
        got = "an empty file" if doc is None else f"a {type(doc).__name__}"
        fail(
            "top level",
            f"the file must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}, "
            f"but got {got}; see search_spaces/default.yaml",
        )
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            fail(
                str(key),
                f"is not a space file key; the allowed keys are {', '.join(TOP_LEVEL_KEYS)}",
            )
    description = doc.get("description") or ""
    if not isinstance(description, str) or "\n" in description.strip():
        fail("description", f"must be one line of text, but got {description!r}; shorten it")
    fixed = _load_fixed({} if doc.get("fixed") is None else doc["fixed"], fail)
    search = {} if doc.get("search") is None else doc["search"]
    if not isinstance(search, dict) or not search:
        fail(
            "search",
            f"at least one searched parameter is needed, but got {search!r}; add "
            "e.g. 'te_scale: {low: 0.1, high: 4.0, log: true}'",
        )
    params = {name: _load_param(name, spec, fixed, fail) for name, spec in search.items()}
    if check_trials:
        _check_whole_trials(fixed, params, fail)
    return SearchSpace(path, text, description.strip(), fixed, params)


def _load_fixed(raw: Any, fail: Fail) -> dict[str, Any]:
    if not isinstance(raw, dict):
        fail(
            "fixed",
            f"must be a mapping of trial settings, but got {raw!r}; "
            "write e.g. 'fixed: {dataset: fashion-mnist}'",
        )
    for key in raw:
        _check_field_name("fixed", key, fail)
    try:
        cfg = TrialConfig.from_dict(raw)
        validate(cfg)
    except ConfigError as err:
        fail(f"fixed.{err.field}", err.message)
    return {key: getattr(cfg, key) for key in raw}


def _check_field_name(section: str, key: Any, fail: Fail) -> None:
    if key == "seed":
        fail(
            f"{section}.seed",
            "seeds cannot be fixed or searched: the sweep assigns one per "
            "trial (te-sweep launch --seed); remove the key",
        )
    if key not in FIELD_TYPES:
        near = difflib.get_close_matches(str(key), FIELD_TYPES, n=1)
        fail(
            f"{section}.{key}",
            "is not a trial setting; "
            + (f"did you mean {near[0]}? " if near else "")
            + "use one of "
            + ", ".join(k for k in FIELD_TYPES if k != "seed"),
        )


def _load_param(name: Any, spec: Any, fixed: dict[str, Any], fail: Fail) -> Param:
    _check_field_name("search", name, fail)
    key = f"search.{name}"
    if name in NOT_SEARCHABLE:
        fail(
            key,
            f"`{name}` defines the problem every trial and its baseline share, so it "
            "cannot be searched (Optuna could win by changing the question); move it to "
            "`fixed`",
        )
    if name in fixed:
        fail(key, "is both fixed and searched; remove it from `fixed` or from `search`")
    if not isinstance(spec, dict) or not spec:
        fail(
            key,
            f"must be a mapping {{low, high[, log, step]}} or {{choices: [...]}}, but got {spec!r}",
        )
    allowed, what = (("choices",), "categorical") if "choices" in spec else (RANGE_KEYS, "range")
    for k in spec:
        if k not in allowed:
            fail(
                f"{key}.{k}",
                f"is not allowed here; a {what} parameter takes only {', '.join(allowed)}",
            )
    if "choices" in spec:
        return _load_choices(name, spec["choices"], fixed, fail)
    field_type = FIELD_TYPES[name]
    if "bool" in field_type or ("float" not in field_type and "int" not in field_type):
        fail(
            key,
            f"`{name}` is not a numeric setting, so it cannot take a range; use {{choices: [...]}}",
        )
    kind = "float" if "float" in field_type else "int"
    numbers = {}
    for end in ("low", "high", "step"):
        value = spec.get(end)
        if value is None and end == "step":
            continue
        if end not in spec:
            fail(key, f"a range needs both low and high, but `{end}` is missing; add it")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"{key}.{end}", f"must be a number, but got {value!r}; give e.g. 1")
        if kind == "int" and not isinstance(value, int):
            fail(
                f"{key}.{end}",
                f"`{name}` is an integer setting, so {end} must be an "
                f"integer, but got {value!r}; use a whole number such as {round(value)}",
            )
        numbers[end] = float(value) if kind == "float" else value
    low, high, step, log = (
        numbers["low"],
        numbers["high"],
        numbers.get("step"),
        spec.get("log", False),
    )
    if not isinstance(log, bool):
        fail(f"{key}.log", f"must be true or false, but got {log!r}")
    if not low <= high:
        fail(key, f"`low <= high` must hold, but got (low={low}, high={high}); swap them")
    if log and low <= 0:
        fail(key, f"`low > 0` must hold when log is true, but got low={low}; raise low")
    if log and step is not None:
        fail(
            key,
            f"`step` and `log` cannot be combined (Optuna forbids it), but got "
            f"(log=true, step={step}); remove one",
        )
    steps = 0.0 if step is None else (high - low) / step if step > 0 else 0.5
    if not math.isclose(steps, round(steps), abs_tol=1e-9):
        fail(
            key,
            f"`step > 0` must hold and high - low must be a multiple of it, but got "
            f"(low={low}, high={high}, step={step}); adjust high or step",
        )
    for end in ("low", "high"):
        _check_value(f"{key}.{end}", name, numbers[end], fixed, fail)
    return Param(name, kind, low, high, log, step)


def _load_choices(name: str, choices: Any, fixed: dict[str, Any], fail: Fail) -> Param:
    key = f"search.{name}.choices"
    if not isinstance(choices, list) or not choices:
        fail(key, f"must be a non-empty list, but got {choices!r}; give e.g. [a, b]")
    typed: list[Any] = []
    for i, choice in enumerate(choices):
        try:
            value = getattr(TrialConfig.from_dict({name: choice}), name)
        except ConfigError as err:
            fail(f"{key}[{i}]", err.message)
        _check_value(f"{key}[{i}]", name, value, fixed, fail)
        if value in typed:
            fail(
                f"{key}[{i}]",
                f"choices must be distinct, but {choice!r} is repeated; remove the duplicate",
            )
        typed.append(value)
    return Param(name, "categorical", choices=tuple(typed))


def _check_value(key: str, name: str, value: Any, fixed: dict[str, Any], fail: Fail) -> None:
    try:
        validate(TrialConfig(**{**fixed, name: value}))
    except ConfigError as err:
        fail(key, err.message)


def _check_whole_trials(fixed: dict[str, Any], params: dict[str, Param], fail: Fail) -> None:
    """Run preflight on the corners of the space: all lows, all highs, every choice."""
    from te_sweep.core.preflight import check_trial  # imports torch

    def end(p: Param, high: bool) -> Any:
        return (
            (p.choices[-1] if high else p.choices[0])
            if p.kind == "categorical"
            else (p.high if high else p.low)
        )

    low = {n: end(p, False) for n, p in params.items()}
    corners = [
        ({**low}, "every searched parameter at its low end / first choice"),
        (
            {n: end(p, True) for n, p in params.items()},
            "every searched parameter at its high end / last choice",
        ),
    ]
    corners += [
        ({**low, n: c}, f"{n}={c!r} and the other searched parameters at their low end")
        for n, p in params.items()
        for c in p.choices[1:-1]
    ]
    corners.append(({"te_scale": 0.0}, "te_scale=0 (the no-TE baseline)"))
    for sampled, label in corners:
        try:
            check_trial(TrialConfig(**{**fixed, **sampled}).replace(device="cpu"))
        except ConfigError as err:
            where = (
                f"fixed.{err.field}"
                if err.field in fixed
                else f"search.{err.field}"
                if err.field in params
                else f"{err.field} (left at default)"
            )
            fail(where, f"{err.message} (checked with {label})")
