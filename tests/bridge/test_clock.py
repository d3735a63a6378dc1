"""Clocks, against every profile: a meter seven minutes fast and one set to the wrong zone,
each exposing its clock as its profile does (the Current Time Service, or a Date Time
characteristic in the Glucose Service as Roche meters do); the corrected instant is right and
the raw meter fields are kept beside it. Without a readable clock the meter time is read in
the home's zone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from core.contract import WireReading
from firmware_sim.clock import MeterClock
from firmware_sim.model import ModelReading
from firmware_sim.profiles import MeterProfile
from ingest.worker import Worker
from stack.local import Services
from tests.bridge.harness import (
    HOME,
    held_by_quirk,
    model_readings,
    outbox,
    rig,
    stored,
    with_clock,
    without_clock,
)

# The skew is read at one-second resolution and the read takes a moment.
CLOCK_TOLERANCE = timedelta(seconds=2)
SEVEN_MINUTES = timedelta(minutes=7)


def _readable(profile: MeterProfile, readings: list[ModelReading]) -> list[ModelReading]:
    """The readings that become readings (the profile's quirk holds some), in order; the
    meter numbers them 0, 1, 2, ... as it records them."""
    held = held_by_quirk(profile, range(len(readings)))
    return [r for n, r in enumerate(readings) if n not in held]


def _meter_time(profile: MeterProfile, truth: ModelReading, error: timedelta) -> datetime:
    """What the meter's clock showed: UTC for a meter that keeps UTC (Contour-like, the zone
    in the offset), else local time; `error` ahead of the truth."""
    if profile.utc_base_time:
        return (truth.at.astimezone(UTC) + error).replace(tzinfo=None)
    return (truth.at.astimezone(HOME) + error).replace(tzinfo=None)


def test_a_meter_seven_minutes_fast_is_corrected_and_raw_time_kept(
    services: Services,
    ingest_worker: Worker,
    database: str,
    tmp_path: Path,
    profile: MeterProfile,
) -> None:
    url = services.add_bridge("home-fast")
    readings = model_readings(20)

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-fast") as r:
            await r.add_paired_meter(
                with_clock(profile), "CNO-FAST", readings, clock_offset=SEVEN_MINUTES
            )
            [report] = await r.bridge.sync_all()
            assert report.clock_skew_s is not None
            assert abs(report.clock_skew_s - SEVEN_MINUTES.total_seconds()) <= 2
            await r.delivered()

    asyncio.run(scenario())
    rows = stored(database, "CNO-FAST")
    truths = _readable(profile, readings)
    assert len(rows) == len(truths)
    for (_seq, meter_time, measured_at, context), truth in zip(rows, truths, strict=True):
        assert isinstance(measured_at, datetime) and isinstance(context, dict)
        assert abs(measured_at - truth.at) <= CLOCK_TOLERANCE
        assert meter_time == _meter_time(profile, truth, SEVEN_MINUTES)
        assert abs(context["meter_clock_skew_s"] - 420) <= 2


def _sent(readings: list[WireReading]) -> list[WireReading]:
    return sorted(readings, key=lambda w: w.sequence_number or 0)


def test_a_meter_set_to_the_wrong_zone_is_corrected(
    services: Services, tmp_path: Path, profile: MeterProfile
) -> None:
    readings = model_readings(12)
    utc_clock = MeterClock(ZoneInfo("UTC"))  # bought abroad, never set to Shanghai time
    zoned = with_clock(profile)

    async def scenario() -> None:
        async with rig(tmp_path, None, "home-zone") as r:
            await r.add_paired_meter(zoned, "GC-ZONE", readings, clock=utc_clock)
            [report] = await r.bridge.sync_all()
            assert report.clock_skew_s is not None
            # A meter keeping UTC shows UTC as its wall clock: 8 h behind Shanghai.
            assert abs(report.clock_skew_s + 8 * 3600) <= 2
            sent = _sent(outbox(r.store)[0])
        truths = _readable(profile, readings)
        assert len(sent) == len(truths)
        for wire, truth in zip(sent, truths, strict=True):
            assert abs(wire.measured_at - truth.at) <= CLOCK_TOLERANCE
            assert wire.meter_time == truth.at.astimezone(UTC).replace(tzinfo=None)
            assert wire.time_offset_minutes == (0 if profile.utc_base_time else None)

    asyncio.run(scenario())


def test_without_a_readable_clock_the_meter_time_is_taken_in_the_home_zone(
    services: Services, tmp_path: Path, profile: MeterProfile
) -> None:
    readings = model_readings(5)

    async def scenario() -> None:
        async with rig(tmp_path, None, "home-noclock") as r:
            await r.add_paired_meter(without_clock(profile), "GM-NOCLOCK", readings)
            [report] = await r.bridge.sync_all()
            assert report.clock_skew_s is None
            sent = _sent(outbox(r.store)[0])
        truths = _readable(profile, readings)
        for wire, truth in zip(sent, truths, strict=True):
            assert wire.measured_at == truth.at
            assert wire.meter_time == _meter_time(profile, truth, timedelta(0))
            assert "meter_clock_skew_s" not in (wire.context or {})

    asyncio.run(scenario())
