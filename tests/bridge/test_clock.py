"""Acceptance 3, clocks: a meter seven minutes fast and one set to the wrong zone, both
exposing their clock (Current Time Service); the corrected instant is right and the raw
meter fields are kept beside it."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from core.contract import ReadingsBatch, WireReading
from firmware_sim.clock import MeterClock
from firmware_sim.profiles import CONTOUR, CTS, NO_CONTEXT
from ingest.worker import Worker
from stack.local import Services
from tests.bridge.harness import HOME, model_readings, rig, stored

# The skew is read at one-second resolution and the read takes a moment.
CLOCK_TOLERANCE = timedelta(seconds=2)
SEVEN_MINUTES = timedelta(minutes=7)


def _outbox(store: object) -> list[WireReading]:
    return [
        reading
        for entry in store.pending(1000)  # type: ignore[attr-defined]
        for reading in ReadingsBatch.model_validate_json(entry.payload).readings
    ]


def test_a_meter_seven_minutes_fast_is_corrected_and_raw_time_kept(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path
) -> None:
    url = services.add_bridge("home-fast")
    readings = model_readings(20)
    contour_with_clock = dataclasses.replace(CONTOUR, current_time_service=True)

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-fast") as r:
            await r.add_paired_meter(
                contour_with_clock, "CNO-FAST", readings, clock_offset=SEVEN_MINUTES
            )
            [report] = await r.bridge.sync_all()
            assert report.clock_skew_s is not None
            assert abs(report.clock_skew_s - SEVEN_MINUTES.total_seconds()) <= 2
            await r.delivered()

    asyncio.run(scenario())
    rows = stored(database, "CNO-FAST")
    assert len(rows) == len(readings)
    for (_seq, meter_time, measured_at, context), truth in zip(rows, readings, strict=True):
        assert isinstance(measured_at, datetime) and isinstance(context, dict)
        assert abs(measured_at - truth.at) <= CLOCK_TOLERANCE
        # Raw: the Contour-like meter keeps UTC as base time, fast by seven minutes.
        assert meter_time == (truth.at.astimezone(UTC) + SEVEN_MINUTES).replace(tzinfo=None)
        assert abs(context["meter_clock_skew_s"] - 420) <= 2


def test_a_meter_set_to_the_wrong_zone_is_corrected(services: Services, tmp_path: Path) -> None:
    readings = model_readings(12)
    utc_clock = MeterClock(ZoneInfo("UTC"))  # bought abroad, never set to Shanghai time

    async def scenario() -> None:
        async with rig(tmp_path, None, "home-zone") as r:
            await r.add_paired_meter(CTS, "GC-ZONE", readings, clock=utc_clock)
            [report] = await r.bridge.sync_all()
            assert report.clock_skew_s is not None
            assert abs(report.clock_skew_s + 8 * 3600) <= 2
            sent = _outbox(r.store)
        assert len(sent) == len(readings)
        for wire, truth in zip(sent, readings, strict=True):
            assert abs(wire.measured_at - truth.at) <= CLOCK_TOLERANCE
            assert wire.meter_time == truth.at.astimezone(UTC).replace(tzinfo=None)
            assert wire.time_offset_minutes is None

    asyncio.run(scenario())


def test_without_a_readable_clock_the_meter_time_is_taken_in_the_home_zone(
    services: Services, tmp_path: Path
) -> None:
    readings = model_readings(5)

    async def scenario() -> None:
        async with rig(tmp_path, None, "home-noclock") as r:
            await r.add_paired_meter(NO_CONTEXT, "GM-NOCLOCK", readings)
            [report] = await r.bridge.sync_all()
            assert report.clock_skew_s is None
            sent = _outbox(r.store)
        for wire, truth in zip(sent, readings, strict=True):
            assert wire.measured_at == truth.at
            assert wire.meter_time == truth.at.astimezone(HOME).replace(tzinfo=None)
            assert wire.context is None

    asyncio.run(scenario())
