"""What a meter can measure: the limits its "HI" and "LO" stand for.

A result above or below a meter's measuring range has no number: the meter shows HI or LO
and sends an SFLOAT infinity, or its "result too high / too low" status bits. The bridge
stores it as a reading with the meter's limit as its value and a range flag, so it counts
in very high / very low and raises the alert it implies. The limit comes from the maker's
documented range for the meter (found by its Device Information strings), and is 20-600
mg/dL (1.1-33.3 mmol/L) where the meter says nothing: the range most meters share.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contract import MeterInfo
from core.units import Unit


@dataclass(frozen=True)
class MeasuringRange:
    """The documented range, in each unit a meter may report in (a meter classifies in its
    own unit: an mmol/L meter's LO is below 1.1 mmol/L, not below 20 mg/dL converted)."""

    low_mg_dl: float
    high_mg_dl: float
    low_mmol_l: float
    high_mmol_l: float

    def low(self, unit: Unit) -> float:
        return self.low_mg_dl if unit is Unit.MG_DL else self.low_mmol_l

    def high(self, unit: Unit) -> float:
        return self.high_mg_dl if unit is Unit.MG_DL else self.high_mmol_l


# Most meters: 20-600 mg/dL, 1.1-33.3 mmol/L (ISO 15197 meters, e.g. Ascensia Contour Next
# One and i-SENS CareSens N user guides).
DEFAULT_RANGE = MeasuringRange(20, 600, 1.1, 33.3)
# Roche Accu-Chek Guide, Instant and Aviva Connect: 10-600 mg/dL, 0.6-33.3 mmol/L (their
# user manuals, "Product specifications: measuring range").
ACCU_CHEK_RANGE = MeasuringRange(10, 600, 0.6, 33.3)

# (text found in the manufacturer name, text found in the model number, range), first match
# wins; matched without regard to case.
_KNOWN: tuple[tuple[str, str, MeasuringRange], ...] = (
    ("roche", "", ACCU_CHEK_RANGE),
    ("", "accu-chek", ACCU_CHEK_RANGE),
)


def measuring_range(meter: MeterInfo) -> MeasuringRange:
    """The documented measuring range of `meter`, or the common one when it is not known."""
    maker = (meter.manufacturer or "").lower()
    model = (meter.model or "").lower()
    for maker_text, model_text, found in _KNOWN:
        if maker_text in maker and model_text in model:
            return found
    return DEFAULT_RANGE
