"""A full meter synced over the virtual link into the real broker and DB, once per profile;
an incremental sync asks a meter only what it supports, and learns a refusal once."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from device.gls import Operator, ResponseCode
from firmware_sim.profiles import MeterProfile
from ingest.worker import Worker
from stack.local import Services
from stack.virtual_home import VirtualHome
from tests.bridge.harness import HOME, kept, model_readings, rig

# A full meter: its memory holds this many records here (real ones hold 500-1,000; a full
# 1,000-record sync is timed in tests/bench), so the suite stays quick over every profile.
FULL_METER = 300


def test_a_full_meter_arrives_once_and_a_second_sync_sends_nothing(
    services: Services,
    ingest_worker: Worker,
    database: str,
    tmp_path: Path,
    profile: MeterProfile,
) -> None:
    url = services.add_bridge("home-sync-1")
    records = FULL_METER
    full = dataclasses.replace(profile, capacity=FULL_METER)

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-sync-1") as r:
            meter = await r.add_paired_meter(full, "SN-SYNC-1", model_readings(records))
            assert len(meter.memory) == meter.memory.capacity  # full
            [first] = await r.bridge.sync_all()
            assert first.complete and first.records == records and first.rejected == []
            await r.delivered()
            assert r.courier is not None
            published = r.courier.published

            [second] = await r.bridge.sync_all()
            assert second.complete and second.records == 0 and second.batches == 0
            await r.delivered()
            assert r.courier.published == published

    asyncio.run(scenario())
    assert kept(database, "SN-SYNC-1") == list(range(records))


def test_an_unbonded_meter_is_not_synced(
    services: Services, tmp_path: Path, profile: MeterProfile
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, None, "home-sync-2") as r:
            meter = await r.home.add_meter(profile, "SN-STRANGER", HOME)
            meter.load(model_readings(5))
            assert await r.bridge.sync_all() == []
            assert r.store.unconfirmed() == 0

    asyncio.run(scenario())


# What the bridge may ask beyond what GLS requires (all, >=): first, last, <=, within range.
OPTIONAL = frozenset(
    {
        Operator.LESS_THAN_OR_EQUAL_TO,
        Operator.WITHIN_RANGE_OF,
        Operator.FIRST_RECORD,
        Operator.LAST_RECORD,
    }
)


def test_a_refused_operator_is_asked_once_and_the_refusal_kept_with_the_checkpoint(
    services: Services, tmp_path: Path, profile: MeterProfile
) -> None:
    """Three incremental syncs, the bridge restarted between the second and third: every
    new record arrives each time, and the meter answers "operator not supported" at most
    once per operator it lacks (Nordic-like: none of those the bridge asks; minimal: "last
    record", once), never again after the bridge restarts."""
    readings = model_readings(40)

    async def scenario() -> None:
        home = VirtualHome()
        try:
            async with rig(tmp_path, None, "home-ops", home=home) as r:
                meter = await r.add_paired_meter(profile, "SN-OPS", readings[:20])
                for part in (readings[20:30], readings[30:35]):
                    await r.bridge.sync_all()
                    meter.load(part)
                [report] = await r.bridge.sync_all()
                assert report.complete and report.records == 5
                learnt = r.store.checkpoint(meter.address)
                assert learnt is not None
                refusals = _refusals(meter)
                # What it refused is what it lacks among what the bridge asks beyond all and
                # >=, which it never gives up.
                assert set(refusals) <= OPTIONAL - profile.operators
                assert learnt.unsupported == set(refusals)
            # The bridge restarts: a new process on the same store and radio.
            async with rig(tmp_path, None, "home-ops", home=home) as again:
                meter.load(readings[35:])
                [report] = await again.bridge.sync_all()
                assert report.complete and report.records == 5
            assert _refusals(meter) == refusals  # nothing asked that was refused before
            assert len(refusals) == len(set(refusals))  # each refusal came once
        finally:
            await home.close()

    asyncio.run(scenario())


def _refusals(meter: object) -> list[int]:
    """The operators the meter answered "operator not supported" so far."""
    server = meter.racp_server  # type: ignore[attr-defined]
    return [
        operator
        for operator, code in server.answered
        if code == ResponseCode.OPERATOR_NOT_SUPPORTED
    ]
