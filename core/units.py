"""Glucose units and the one conversion factor the whole project uses."""

from enum import StrEnum

# mg/dL per mmol/L: glucose's molar mass is 180.16 g/mol, so 1 mmol/L = 18.016 mg/dL.
# DESIGN.md states the factor once; everything else imports it from here.
MG_DL_PER_MMOL_L = 18.016


class Unit(StrEnum):
    """A unit a glucose value is shown or measured in."""

    MG_DL = "mg/dL"
    MMOL_L = "mmol/L"


def mmol_l_to_mg_dl(value: float) -> float:
    return value * MG_DL_PER_MMOL_L


def mg_dl_to_mmol_l(value: float) -> float:
    return value / MG_DL_PER_MMOL_L


def to_mg_dl(value: float, unit: Unit) -> float:
    return value if unit is Unit.MG_DL else mmol_l_to_mg_dl(value)


def from_mg_dl(value_mg_dl: float, unit: Unit) -> float:
    return value_mg_dl if unit is Unit.MG_DL else mg_dl_to_mmol_l(value_mg_dl)
