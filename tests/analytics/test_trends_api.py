"""Trends, comparison and AGP through the API: same numbers as the metrics CLI's summary,
in either unit, control solution never counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.metrics import GlucoseSeries, Source, summarize
from core.metrics.export import summary_to_json
from core.units import MG_DL_PER_MMOL_L, Unit
from tests.analytics.rows import Row, add_patient, insert

START = datetime(2026, 5, 1, tzinfo=UTC)


def cgm(start: datetime, values: list[float]) -> list[Row]:
    return [
        Row(start + timedelta(minutes=5 * i), v, sample_type="interstitial_fluid")
        for i, v in enumerate(values)
    ]


def test_trends_match_the_cli_summary_in_both_units(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "America/New_York", api)
    values = [float(40 + (i * 37) % 300) for i in range(14 * 288)]
    rows = cgm(START, values)
    rows.append(Row(START + timedelta(hours=3, seconds=7), 500.0, sample_type="control_solution"))
    insert(database, patient, rows, serial="cgm-1")
    period = {"start": START.isoformat(), "end": (START + timedelta(days=14)).isoformat()}

    expected = summary_to_json(
        summarize(
            GlucoseSeries.build([r.measured_at for r in rows[:-1]], values, Unit.MG_DL, Source.CGM),
            ZoneInfo("America/New_York"),
        )
    )
    got = api.get(f"/api/v1/patients/{patient}/trends", params=period)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["source"] == "cgm" and body["control_excluded"] == 1
    summary = body["summary"]
    assert set(summary) == set(expected)
    expected["control_excluded"] = 1
    expected["agp"] = list(expected["agp"])  # a tuple in Python, a list in JSON
    assert summary == expected  # same code, same floats: JSON round-trips them exactly

    mmol = api.get(f"/api/v1/patients/{patient}/trends", params=period | {"unit": "mmol/L"}).json()[
        "summary"
    ]
    assert mmol["mean_mmol_l"] == pytest.approx(expected["mean_mg_dl"] / MG_DL_PER_MMOL_L)
    assert "mean_mg_dl" not in mmol
    assert mmol["pct_in_range"] == expected["pct_in_range"]
    assert mmol["agp"][0]["p50"] == pytest.approx(expected["agp"][0]["p50"] / MG_DL_PER_MMOL_L)


def test_comparison_with_the_previous_period(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "UTC", api)
    insert(database, patient, cgm(START - timedelta(days=7), [100.0] * (7 * 288)), "a")
    insert(database, patient, cgm(START, [150.0] * (7 * 288)), "b")
    period = {"start": START.isoformat(), "end": (START + timedelta(days=7)).isoformat()}
    body = api.get(f"/api/v1/patients/{patient}/trends/comparison", params=period).json()
    assert body["previous"]["start"].startswith("2026-04-24")
    assert body["current"]["summary"]["mean_mg_dl"] == 150.0
    assert body["previous"]["summary"]["mean_mg_dl"] == 100.0
    assert body["change"]["mean_mg_dl"] == 50.0
    assert body["change"]["pct_in_range"] == 0.0


def test_agp_by_local_time_and_problems(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "Europe/Berlin", api)
    # Every reading at 06:00 UTC = 08:00 Berlin in summer.
    rows = [Row(START + timedelta(days=d, hours=6), 100.0 + d) for d in range(10)]
    insert(database, patient, rows, "m")
    period = {"start": START.isoformat(), "end": (START + timedelta(days=10)).isoformat()}
    body = api.get(f"/api/v1/patients/{patient}/agp", params=period).json()
    (b,) = body["bins"]
    assert b["minute_of_day"] == 8 * 60 and b["readings"] == 10
    assert b["p50"] == pytest.approx(104.5)
    bad = api.get(
        f"/api/v1/patients/{patient}/trends",
        params={"start": "2026-05-02T00:00:00", "end": "2026-05-01T00:00:00Z"},
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    backwards = api.get(
        f"/api/v1/patients/{patient}/trends",
        params={"start": "2026-05-02T00:00:00Z", "end": "2026-05-01T00:00:00Z"},
    )
    assert backwards.json()["type"].endswith("/invalid-period")
    empty = api.get(
        f"/api/v1/patients/{patient}/trends",
        params={"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"},
    ).json()
    assert empty["summary"] is None
