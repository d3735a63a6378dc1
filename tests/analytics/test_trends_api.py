"""Trends, comparison and AGP through the API: the same report `core.metrics.summarize`
gives (and `glucobridge metrics` prints), in either unit, control solution never counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.metrics import GlucoseSeries, Period, Source, summarize
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
    end = START + timedelta(days=14)
    period = {"start": START.isoformat(), "end": end.isoformat()}

    expected = summarize(
        GlucoseSeries.build([r.measured_at for r in rows[:-1]], values, Unit.MG_DL, Source.CGM),
        ZoneInfo("America/New_York"),
        period=Period(START, end),
    ).model_dump(mode="json")
    got = api.get(f"/api/v1/patients/{patient}/trends", params=period)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["source"] == {
        "source": "cgm",
        "chosen_by": "default",
        "other_sources": {"cgm": 0, "meter": 0, "lab": 0},
        "control_excluded": 1,
    }
    assert body["report"] == expected  # same code, same floats: JSON round-trips them exactly

    mmol = api.get(f"/api/v1/patients/{patient}/trends", params=period | {"unit": "mmol/L"})
    report = mmol.json()["report"]
    assert report["unit"] == "mmol/L"
    assert report["mean"] == pytest.approx(expected["mean"] / MG_DL_PER_MMOL_L)
    assert report["limits"]["low_below"] == 3.9  # the mmol/L number, not 70 / 18.016
    assert report["time_in_ranges"] == expected["time_in_ranges"]
    assert report["agp"][0]["p50"] == pytest.approx(expected["agp"][0]["p50"] / MG_DL_PER_MMOL_L)


def test_comparison_with_the_previous_period(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "UTC", api)
    insert(database, patient, cgm(START - timedelta(days=7), [100.0] * (7 * 288)), "a")
    insert(database, patient, cgm(START, [150.0] * (7 * 288)), "b")
    period = {"start": START.isoformat(), "end": (START + timedelta(days=7)).isoformat()}
    body = api.get(f"/api/v1/patients/{patient}/trends/comparison", params=period).json()
    assert body["previous"]["start"].startswith("2026-04-24")
    assert body["current"]["report"]["mean"] == 150.0
    assert body["previous"]["report"]["mean"] == 100.0
    assert body["previous"]["source"]["source"] == "cgm"
    assert body["change"]["mean"] == 50.0
    assert body["change"]["in_ranges"]["in_range"] == 0.0
    # GMI moves 0.02392 per mg/dL: 50 x 0.02392 = 1.196 points.
    assert body["change"]["gmi_pct"] == pytest.approx(1.196)


def test_agp_by_local_time_and_problems(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "Europe/Berlin", api)
    # Every reading at 06:00 UTC = 08:00 Berlin in summer.
    rows = [Row(START + timedelta(days=d, hours=6), 100.0 + d) for d in range(10)]
    insert(database, patient, rows, "m")
    period = {"start": START.isoformat(), "end": (START + timedelta(days=10)).isoformat()}
    # Ten fingersticks in ten days are below the sufficiency rule (14 days, 70 % of them
    # with 4 readings): the meter AGP is withheld ...
    withheld = api.get(f"/api/v1/patients/{patient}/agp", params=period).json()
    assert withheld["source"]["source"] == "meter"
    assert withheld["withheld"] is True and withheld["bins"] == []
    # ... and drawn for CGM data, one reading per day at 08:00 Berlin.
    cgm_rows = [
        Row(START + timedelta(days=d, hours=6), 100.0 + d, sample_type="interstitial_fluid")
        for d in range(10)
    ]
    insert(database, patient, cgm_rows, "c")
    body = api.get(f"/api/v1/patients/{patient}/agp", params=period).json()
    assert body["source"]["source"] == "cgm"
    assert body["source"]["other_sources"]["meter"] == 10
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
    assert empty["report"] is None
