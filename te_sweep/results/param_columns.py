"""The Arrow type of each trial setting's `param_*` column, for trials.parquet and
configs.parquet alike.

Why one place: a searched setting's choices are typed by TrialConfig (space.py), so its column
has the setting's own type (its annotation, `| None` allowed), whatever the choices are; null
choices (`batch_size: {choices: [null, 64]}`, the preset's own or 64) fit it as nulls. A type
guessed from the choices instead found none for [null, 64], and configs.parquet could not be
written.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from te_sweep.core.config import TrialConfig

_ARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
_OPTIONAL = " | None"


def arrow_type(annotation: str) -> pa.DataType:
    """The Arrow type of a TrialConfig annotation (a string: the module postpones them)."""
    return _ARROW_TYPES[annotation.removesuffix(_OPTIONAL)]


SETTING_TYPES: dict[str, pa.DataType] = {
    f.name: arrow_type(str(f.type)) for f in dataclasses.fields(TrialConfig)
}


def param_field(setting: str) -> pa.Field:
    """The `param_<setting>` column."""
    return pa.field(f"param_{setting}", SETTING_TYPES[setting])
