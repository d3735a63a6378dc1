"""Acceptance 2: a full meter synced over the virtual link into the real broker and DB."""

from __future__ import annotations

import asyncio
from pathlib import Path

from firmware_sim.profiles import CONTOUR
from ingest.worker import Worker
from stack.local import Services
from tests.bridge.harness import HOME, model_readings, rig, stored

FULL_METER = 1_000


def test_a_full_meter_arrives_once_and_a_second_sync_sends_nothing(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path
) -> None:
    url = services.add_bridge("home-sync-1")

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-sync-1") as r:
            await r.add_paired_meter(
                CONTOUR, "CNO-SYNC-1", model_readings(FULL_METER), capacity=FULL_METER
            )
            [first] = await r.bridge.sync_all()
            assert first.complete and first.records == FULL_METER and first.rejected == []
            await r.delivered()
            assert r.courier is not None
            published = r.courier.published

            [second] = await r.bridge.sync_all()
            assert second.complete and second.records == 0 and second.batches == 0
            await r.delivered()
            assert r.courier.published == published

    asyncio.run(scenario())
    rows = stored(database, "CNO-SYNC-1")
    assert len(rows) == FULL_METER
    assert sorted(r[0] for r in rows) == list(range(FULL_METER))


def test_an_unbonded_meter_is_not_synced(services: Services, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, None, "home-sync-2") as r:
            meter = await r.home.add_meter(CONTOUR, "CNO-STRANGER", HOME)
            meter.load(model_readings(5))
            assert await r.bridge.sync_all() == []
            assert r.store.unconfirmed() == 0

    asyncio.run(scenario())
