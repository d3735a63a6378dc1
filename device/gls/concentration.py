"""Glucose concentration units as GLS sends them (SI), and conversions to clinical units.

Meters send kg/L or mol/L (Glucose Measurement flags bit 2). Within one family the scale is
exact, so it is done in :class:`~decimal.Decimal`: 111e-5 kg/L is exactly 111 mg/dL. Across
families the project's one factor (``core.units.MG_DL_PER_MMOL_L``) applies.
"""

from __future__ import annotations

import enum
from decimal import Decimal

from core.units import mg_dl_to_mmol_l, mmol_l_to_mg_dl
from device.gls.sfloat import SFloat

# 1 kg/L = 1e6 mg per 10 dL = 100 000 mg/dL.
MG_DL_PER_KG_L = 100_000
# 1 mol/L = 1000 mmol/L.
MMOL_L_PER_MOL_L = 1_000
# Exponents meters use on the wire: 111 mg/dL is 111e-5 kg/L (Contour Next One, Accu-Chek
# Guide captures); 5.9 mmol/L is 59e-4 mol/L (a mol/L meter in nordicsemi/Android-BLE-Library
# issue 130). With these, every whole mg/dL and every 0.1 mmol/L a meter shows is exact.
KG_L_EXPONENT = -5
MOL_L_EXPONENT = -4


class ConcentrationUnit(enum.IntEnum):
    """Glucose Measurement flags bit 2."""

    KG_PER_L = 0
    MOL_PER_L = 1

    @property
    def symbol(self) -> str:
        return "kg/L" if self is ConcentrationUnit.KG_PER_L else "mol/L"


def to_mg_dl(value: SFloat, unit: ConcentrationUnit) -> float | None:
    """The value in mg/dL, or None when the SFLOAT is a special value (NaN, NRes, INF)."""
    exact = value.decimal
    if exact is None:
        return None
    if unit is ConcentrationUnit.KG_PER_L:
        return float(exact * MG_DL_PER_KG_L)
    return mmol_l_to_mg_dl(float(exact * MMOL_L_PER_MOL_L))


def to_mmol_l(value: SFloat, unit: ConcentrationUnit) -> float | None:
    """The value in mmol/L, or None when the SFLOAT is a special value (NaN, NRes, INF)."""
    exact = value.decimal
    if exact is None:
        return None
    if unit is ConcentrationUnit.MOL_PER_L:
        return float(exact * MMOL_L_PER_MOL_L)
    return mg_dl_to_mmol_l(float(exact * MG_DL_PER_KG_L))


Number = Decimal | int | float | str


def _exact(value: Number) -> Decimal:
    # A float goes through its shortest repr: 5.9 means 5.9, not 5.90000000000000035527...
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def kg_per_l_from_mg_dl(mg_dl: Number, exponent: int = KG_L_EXPONENT) -> SFloat:
    """The kg/L SFLOAT a meter sends for ``mg_dl`` (exact, or NotRepresentableError)."""
    return SFloat.from_value(_exact(mg_dl) / MG_DL_PER_KG_L, exponent)


def mol_per_l_from_mmol_l(mmol_l: Number, exponent: int = MOL_L_EXPONENT) -> SFloat:
    """The mol/L SFLOAT a meter sends for ``mmol_l`` (exact, or NotRepresentableError)."""
    return SFloat.from_value(_exact(mmol_l) / MMOL_L_PER_MOL_L, exponent)
