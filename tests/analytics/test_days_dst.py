"""Acceptance 2: daily summaries are the patient's own days, 23 and 25 hours long on DST
changes, through the API against the real database."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.analytics.rows import Row, add_patient, insert

# 2026 DST changes: the EU at 01:00 UTC on the last Sundays of March and October, the US at
# 02:00 local on the second Sunday of March and the first Sunday of November.
CASES = {
    "Europe/Berlin": (date(2026, 3, 29), date(2026, 10, 25)),
    "America/New_York": (date(2026, 3, 8), date(2026, 11, 1)),
}
STEP = timedelta(minutes=20)


def _rows_around(day: date, tz: ZoneInfo) -> list[Row]:
    """A reading every 20 minutes from two local days before to two after, values that
    differ by local day and time so a reading in the wrong day changes the numbers."""
    start = datetime.combine(day - timedelta(days=2), datetime.min.time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=3), datetime.min.time(), tz).astimezone(UTC)
    rows = []
    at = start
    i = 0
    while at < end:
        rows.append(Row(at, 60.0 + (i * 7) % 200))
        at += STEP
        i += 1
    return rows


def _expected(rows: list[Row], tz: ZoneInfo) -> dict[date, list[float]]:
    by_day: dict[date, list[float]] = defaultdict(list)
    for r in rows:
        by_day[r.measured_at.astimezone(tz).date()].append(r.value)
    return by_day


@pytest.mark.parametrize("zone", sorted(CASES))
def test_dst_days_have_23_and_25_hours_with_their_own_readings(
    database: str, api: httpx.Client, zone: str
) -> None:
    tz = ZoneInfo(zone)
    patient = add_patient(database, zone, api)
    spring, autumn = CASES[zone]
    rows = _rows_around(spring, tz) + _rows_around(autumn, tz)
    # Control solution on the short day: stored, never counted.
    control_at = datetime.combine(spring, datetime.min.time(), tz) + timedelta(hours=12)
    rows.append(
        Row(
            control_at.astimezone(UTC) + timedelta(seconds=1), 400.0, sample_type="control_solution"
        )
    )
    insert(database, patient, rows, serial=f"m-{zone}")
    expected = _expected([r for r in rows if r.sample_type != "control_solution"], tz)

    for change, hours in ((spring, 23.0), (autumn, 25.0)):
        response = api.get(
            f"/api/v1/patients/{patient}/days",
            params={
                "start_date": (change - timedelta(days=1)).isoformat(),
                "end_date": (change + timedelta(days=1)).isoformat(),
            },
        )
        assert response.status_code == 200, response.text
        page = response.json()
        days = {date.fromisoformat(d["date"]): d for d in page["items"]}
        assert list(days) == [change + timedelta(days=1), change, change - timedelta(days=1)]
        for day, summary in days.items():
            want = expected[day]
            assert summary["timezone"] == zone
            assert summary["hours"] == (hours if day == change else 24.0)
            # 20-minute readings: three per local hour, whatever the length of the day.
            assert summary["readings"] == len(want) == int(summary["hours"] * 3)
            assert summary["mean"] == pytest.approx(sum(want) / len(want))
            assert summary["min"] == min(want) and summary["max"] == max(want)
            start = datetime.fromisoformat(summary["start"])
            end = datetime.fromisoformat(summary["end"])
            assert start == datetime.combine(day, datetime.min.time(), tz)
            assert end == datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
            assert (end - start) == timedelta(hours=summary["hours"])


def test_a_day_in_mmol_l_and_its_bands(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "Europe/Berlin", api)
    day = date(2026, 10, 25)
    tz = ZoneInfo("Europe/Berlin")
    at = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)
    # very low, low, in range (the mmol/L boundary, 70.3 mg/dL), high, very high
    values = [2.9, 3.8, 3.9, 10.1, 14.0]
    meals = ["fasting", "before_meal", "before_meal", "after_meal", None]
    rows = [
        Row(at + timedelta(hours=2 * i), v, unit="mmol/L", meal=m)
        for i, (v, m) in enumerate(zip(values, meals, strict=True))
    ]
    insert(database, patient, rows, serial="m-mmol")
    response = api.get(
        f"/api/v1/patients/{patient}/days",
        params={"start_date": day.isoformat(), "end_date": day.isoformat(), "unit": "mmol/L"},
    )
    assert response.status_code == 200, response.text
    (summary,) = response.json()["items"]
    assert summary["hours"] == 25.0
    assert summary["readings"] == 5
    assert summary["min"] == pytest.approx(2.9) and summary["max"] == pytest.approx(14.0)
    assert summary["bands"] == {
        "very_low": 20.0, "low": 20.0, "in_range": 20.0, "high": 20.0, "very_high": 20.0
    }  # fmt: skip
    assert summary["hypo_level1"] == 1 and summary["hypo_level2"] == 1
    assert summary["fasting"]["readings"] == 1 and summary["fasting"]["pct_in_target"] == 0.0
    assert summary["before_meal"]["readings"] == 2
    assert summary["before_meal"]["mean"] == pytest.approx((3.8 + 3.9) / 2)
    assert summary["after_meal"] == {
        "readings": 1,
        "mean": pytest.approx(10.1),
        "pct_in_target": 0.0,
    }


def test_days_are_paged_newest_first(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "UTC", api)
    url = f"/api/v1/patients/{patient}/days"
    params = {"start_date": "2026-01-01", "end_date": "2026-01-10", "limit": "4"}
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get(url, params=params | ({"cursor": cursor} if cursor else {})).json()
        seen += [d["date"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"2026-01-{d:02d}" for d in range(10, 0, -1)]
    bad = api.get(url, params={"cursor": "%%%"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert (
        api.get(f"/api/v1/patients/{patient}/days", params={"unit": "furlongs"}).status_code == 422
    )
