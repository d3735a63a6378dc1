"""A `Summary` as JSON-ready values, shared by `glucobridge metrics` and the API.

In mg/dL the keys are exactly the `Summary` fields. In mmol/L every glucose field is
converted and its `_mg_dl` suffix becomes `_mmol_l` (AGP percentiles keep their names), so a
key always says the unit of its value. Shares, indices and counts do not depend on the unit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from core.metrics.summary import Summary
from core.units import Unit, from_mg_dl

_MG_DL_SUFFIX = "_mg_dl"
_AGP_VALUE_KEYS = ("p5", "p25", "p50", "p75", "p95")


def summary_to_json(summary: Summary, unit: Unit = Unit.MG_DL) -> dict[str, Any]:
    """Instants as ISO 8601 UTC strings; glucose values in `unit`."""
    fields = dataclasses.asdict(summary)
    fields["start"] = iso_utc(summary.start)
    fields["end"] = iso_utc(summary.end)
    if unit is Unit.MG_DL:
        return fields
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key.endswith(_MG_DL_SUFFIX):
            stem = key[: -len(_MG_DL_SUFFIX)]
            out[f"{stem}_mmol_l"] = None if value is None else from_mg_dl(value, unit)
        elif key == "agp":
            out[key] = [
                {k: from_mg_dl(v, unit) if k in _AGP_VALUE_KEYS else v for k, v in b.items()}
                for b in value
            ]
        else:
            out[key] = value
    return out


def iso_utc(instant: np.datetime64) -> str:
    return f"{np.datetime_as_string(instant.astype('datetime64[s]'), unit='s')}Z"
