"""The pre-visit report's figures as a one-page PDF, for the guide's `cgm-summary-pdf`
DiagnosticReport: the period, mean glucose, GMI, CV, days of wear, sensor active %, and the
five times in ranges as a bar beside their consensus goals.

Written directly in PDF 1.4 (ISO 32000 subset: one page, the standard Helvetica font, text
and filled rectangles), so the server needs no renderer. Text is ASCII: the base-14 fonts
cannot show every script a patient's name may be written in, so the report names the
patient by id (the EHR holds the name beside it). Pure: values in, bytes out.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from core.fhir_cgm import CgmSummaryValues
from core.metrics import BAND_ORDER, THRESHOLDS
from core.units import Unit
from dashboards.figures import BAND_COLOURS, CONSENSUS_GOALS

# A4 in PostScript points (210 x 297 mm).
PAGE_WIDTH: Final = 595
PAGE_HEIGHT: Final = 842
MARGIN: Final = 56
LINE: Final = 18
TITLE_SIZE: Final = 16
TEXT_SIZE: Final = 11
BAR_HEIGHT: Final = 18
_BAND_NAMES: Final = {
    "very_low": "Very low",
    "low": "Low",
    "in_range": "In range",
    "high": "High",
    "very_high": "Very high",
}


def _escape(text: str) -> str:
    ascii_only = text.encode("ascii", "replace").decode()
    return ascii_only.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _rgb(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return f"{red:.3f} {green:.3f} {blue:.3f}"


def _band_limits(unit: Unit) -> dict[str, str]:
    t = THRESHOLDS[unit]
    name = unit.value
    return {
        "very_low": f"< {t.very_low_below:g} {name}",
        "low": f"{t.very_low_below:g}-<{t.low_below:g} {name}",
        "in_range": f"{t.low_below:g}-{t.high_above:g} {name}",
        "high": f">{t.high_above:g}-{t.very_high_above:g} {name}",
        "very_high": f"> {t.very_high_above:g} {name}",
    }


def _content(values: CgmSummaryValues, patient_id: uuid.UUID, generated: datetime) -> str:
    ops: list[str] = []
    y = PAGE_HEIGHT - MARGIN

    def text(line: str, size: int = TEXT_SIZE, x: int = MARGIN) -> None:
        nonlocal y
        ops.append(f"BT /F1 {size} Tf {x} {y} Td ({_escape(line)}) Tj ET")
        y -= LINE if size == TEXT_SIZE else LINE + 8

    unit = values.unit.value
    days = (values.end - values.start).total_seconds() / 86_400
    text("CGM summary - pre-visit report", TITLE_SIZE)
    text(f"Patient {patient_id}")
    text(f"Period {values.start:%Y-%m-%d %H:%M} to {values.end:%Y-%m-%d %H:%M} UTC ({days:g} days)")
    text(f"Generated {generated:%Y-%m-%d %H:%M} UTC by glucobridge")
    y -= LINE
    text(f"Mean glucose: {values.mean:.1f} {unit}")
    text(f"GMI (glucose management indicator): {values.gmi_pct:.1f} %")
    text(f"Glucose variability (CV): {values.cv_pct:.1f} % (target 36 % or less)")
    text(f"Days of wear: {values.days_of_wear}")
    text(f"Sensor active: {values.sensor_active_pct:.1f} % (target 70 % or more)")
    y -= LINE
    text("Time in ranges (goal)")
    # The bar, very low on the left; then one line per band, very high first as on the AGP.
    x = float(MARGIN)
    width = PAGE_WIDTH - 2 * MARGIN
    bar_y = y - BAR_HEIGHT + LINE
    for band, share in zip(BAND_ORDER, values.ranges, strict=True):
        w = width * share / 100
        ops.append(f"{_rgb(BAND_COLOURS[band])} rg {x:.2f} {bar_y} {w:.2f} {BAR_HEIGHT} re f")
        x += w
    y -= BAR_HEIGHT + 6
    limits = _band_limits(values.unit)
    for band, share in reversed(list(zip(BAND_ORDER, values.ranges, strict=True))):
        sign, goal = CONSENSUS_GOALS[band]
        ops.append(f"{_rgb(BAND_COLOURS[band])} rg {MARGIN} {y - 2} 10 10 re f 0 g")
        text(
            f"{_BAND_NAMES[band.value]} ({limits[band.value]}): {share:.1f} %"
            f" (goal {sign}{goal:g} %)",
            x=MARGIN + 16,
        )
    return "\n".join(ops)


def summary_pdf(values: CgmSummaryValues, patient_id: uuid.UUID, generated: datetime) -> bytes:
    """One A4 page; valid PDF 1.4 with a cross-reference table."""
    stream = _content(values, patient_id, generated).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}]"
            " /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
        ).encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
