"""The CGM summary of a period, computed exactly as `GET /api/v1/patients/{id}/trends`
computes it (`api.series.fetch_series` + `core.metrics.summarize`), mapped onto what the
guide's `cgm-summary` states. This is the one place that mapping lives: when the metrics'
shape changes, only this module follows.

A summary needs CGM data (the guide is about sensors) and at least two readings (CV needs a
standard deviation); otherwise there is none for that period.

Summary resources are not stored: their ids encode the patient and the period
(`cgms-<patient>-<start>-<end>[-<member>]`, times as base-36 Unix seconds), so reading one
back by id recomputes it from the same readings.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from psycopg import AsyncConnection

from api.patient_scope import ScopedPatient
from api.series import fetch_series
from core.fhir_cgm import CgmSummaryValues, Member
from core.metrics import Source, summarize
from core.units import from_mg_dl

SUMMARY_PREFIX: Final = "cgms"
REPORT_PREFIX: Final = "cgmr"
# Two readings at least: the guide requires CV, and CV needs a standard deviation.
MIN_READINGS: Final = 2
_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_ID = re.compile(
    r"^(?P<kind>cgms|cgmr)-(?P<patient>[0-9a-f]{32})-(?P<start>[0-9a-z]{1,12})"
    r"-(?P<end>[0-9a-z]{1,12})(?:-(?P<member>[a-z]+))?$"
)


async def cgm_summary_values(
    conn: AsyncConnection[Any], patient: ScopedPatient, start: datetime, end: datetime
) -> CgmSummaryValues | None:
    """The summary of [start, end) from the patient's CGM readings, or None without enough."""
    fetched = await fetch_series(conn, patient.id, start, end, source=Source.CGM)
    series = fetched.series
    if series is None or len(series) < MIN_READINGS:
        return None
    found = summarize(series, patient.zones)
    if found.cv_pct is None or found.cgm_coverage_pct is None:
        return None
    return CgmSummaryValues(
        start=start,
        end=end,
        unit=series.unit,
        mean=from_mg_dl(found.mean_mg_dl, series.unit),
        pct_very_low=found.pct_very_low,
        pct_low=found.pct_low,
        pct_in_range=found.pct_in_range,
        pct_high=found.pct_high,
        pct_very_high=found.pct_very_high,
        gmi_pct=found.gmi_pct,
        cv_pct=found.cv_pct,
        days_of_wear=found.days,
        sensor_active_pct=found.cgm_coverage_pct,
    )


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError("times before 1970 have no summary id")
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _DIGITS[rest] + digits
        if number == 0:
            return digits


@dataclass(frozen=True)
class SummaryKey:
    """What a summary resource id names."""

    kind: str  # SUMMARY_PREFIX or REPORT_PREFIX
    patient_id: uuid.UUID
    start: datetime
    end: datetime
    member: Member | None = None

    @property
    def id(self) -> str:
        base = (
            f"{self.kind}-{self.patient_id.hex}-{_base36(int(self.start.timestamp()))}"
            f"-{_base36(int(self.end.timestamp()))}"
        )
        return base if self.member is None else f"{base}-{self.member.value}"

    def of(self, member: Member | None) -> SummaryKey:
        return SummaryKey(SUMMARY_PREFIX, self.patient_id, self.start, self.end, member)

    def ids(self) -> dict[Member | None, str]:
        """The summary's id (key None) and its members' ids."""
        return {m: self.of(m).id for m in (None, *Member)}

    @classmethod
    def parse(cls, resource_id: str) -> SummaryKey | None:
        match = _ID.match(resource_id)
        if match is None:
            return None
        try:
            member = Member(match["member"]) if match["member"] else None
        except ValueError:
            return None
        return cls(
            match["kind"],
            uuid.UUID(match["patient"]),
            datetime.fromtimestamp(int(match["start"], 36), UTC),
            datetime.fromtimestamp(int(match["end"], 36), UTC),
            member,
        )
