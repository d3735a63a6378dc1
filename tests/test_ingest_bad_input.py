"""Bad input never stops the worker or loses the good readings next to it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg

from core.contract import WireReading
from ingest.worker import Worker
from tests.support import Bridge, batch, dead_letters, readings, wait_for


def _stored(database: str, serial: str) -> list[int]:
    with psycopg.connect(database) as conn:
        return sorted(
            r[0]
            for r in conn.execute(
                "SELECT sequence_number FROM readings WHERE device = %s", (serial,)
            )
        )


def test_malformed_payloads_are_dead_lettered_and_the_worker_goes_on(
    database: str, ingest_worker: Worker, bridge: Bridge
) -> None:
    bad = [
        b"{not json",
        b'{"schema": "glucobridge.readings/1"}',
        "\u4e2d\u6587".encode(),
        b"\xff\xfe\x00",
        json.dumps({"schema": "glucobridge.readings/9"}).encode(),
    ]
    for payload in bad:
        bridge.publish_raw(payload)
    bridge.send(batch(bridge.bridge_id, "SN-BAD-1", readings(4)))

    assert _stored(database, "SN-BAD-1") == [1, 2, 3, 4]
    wait_for(lambda: len(dead_letters(database)) == len(bad))
    letters = dead_letters(database)
    assert sorted(p for _, p, _ in letters) == sorted(bad)
    reasons = [r for _, _, r in letters]
    assert any(r.startswith("not valid JSON") for r in reasons)
    assert any(r.startswith("schema:") for r in reasons)


def test_one_impossible_reading_is_set_aside_and_its_batch_mates_are_stored(
    database: str, ingest_worker: Worker, bridge: Bridge
) -> None:
    good = readings(3)
    payload = json.loads(batch(bridge.bridge_id, "SN-BAD-2", good).to_json())
    zero = dict(payload["readings"][0], sequence_number=90, value=0)
    far = dict(payload["readings"][0], sequence_number=91, measured_at="2061-01-01T00:00:00Z")
    unit = dict(payload["readings"][0], sequence_number=92, unit="g/L")
    payload["readings"] += [zero, far, unit]
    bridge.publish_raw(json.dumps(payload).encode())
    (ack,) = bridge.wait_confirmed([uuid.UUID(payload["batch_id"])], 30)

    assert (ack.stored, ack.rejected) == (3, 3)
    assert _stored(database, "SN-BAD-2") == [1, 2, 3]
    reasons = sorted(r for _, _, r in dead_letters(database))
    assert reasons[0].startswith("reading 3: ") and "plausible glucose" in reasons[0]
    assert "plausible date" in reasons[1] and "unit" in reasons[2]


def test_a_payload_claiming_another_bridge_is_refused(
    database: str, ingest_worker: Worker, bridge: Bridge
) -> None:
    forged = batch("home-someone-else", "SN-BAD-3", readings(2))
    bridge.publish_raw(forged.to_json())
    bridge.send(batch(bridge.bridge_id, "SN-BAD-4", readings(1)))

    wait_for(lambda: len(dead_letters(database)) == 1)
    assert _stored(database, "SN-BAD-3") == []
    assert "claims bridge 'home-someone-else'" in dead_letters(database)[0][2]


def test_the_same_batch_five_times_is_stored_once(
    database: str, ingest_worker: Worker, bridge: Bridge
) -> None:
    once = batch(bridge.bridge_id, "SN-DUP-1", readings(20))
    for _ in range(5):
        bridge.send(once)
    resync = batch(bridge.bridge_id, "SN-DUP-1", readings(20))  # same records, new batch id
    bridge.send(resync)

    assert _stored(database, "SN-DUP-1") == list(range(1, 21))
    assert bridge.acks[resync.batch_id].duplicates == 20


def test_a_text_the_database_refuses_is_dead_lettered_not_retried_forever(
    database: str, ingest_worker: Worker, bridge: Bridge
) -> None:
    at = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    one = WireReading(
        sequence_number=1,
        meter_time=at.replace(tzinfo=None),
        measured_at=at,
        value=100,
        unit="mg/dL",
    )
    poisoned = batch(bridge.bridge_id, "SN\x00NUL", [one])  # PostgreSQL text holds no NUL
    healthy = batch(bridge.bridge_id, "SN-OK", readings(2))
    bridge.send(poisoned, healthy)

    assert _stored(database, "SN-OK") == [1, 2]
    assert bridge.acks[poisoned.batch_id].rejected == 1
    assert "database refused" in dead_letters(database)[0][2]
