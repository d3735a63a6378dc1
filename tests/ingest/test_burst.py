"""A burst of 20,000 messages against one worker, through a broker configured as Mosquitto
ships (1,000 queued messages per client, twenty times fewer than the burst): what the broker
drops is re-sent by the bridges that never got their confirmation, and everything ends up
stored exactly once. (`make bench` drives larger loads.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from stack.local import Services, register_bridge, state_dir
from stack.mosquitto import INGEST_USER, Mosquitto
from tests.ingest.burst import BurstBridge, WorkerProcesses, publish_all, until_confirmed
from tests.support import batch, readings

MESSAGES = 20_000
BRIDGES = 20
# Mosquitto's default; with one consumer far behind, the broker drops beyond it.
SHIPPED_QUEUE_LIMIT = 1000
# How long the bridges may take to publish twice the queue limit while the worker stalls.
OVERFLOW_WAIT_S = 60.0


@pytest.fixture
def stock_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(
        state_dir() / "run" / f"burst-{tmp_path.name}", max_queued_messages=SHIPPED_QUEUE_LIMIT
    )
    broker.start()
    yield broker
    broker.stop()


def test_a_burst_beyond_the_brokers_queue_is_stored_exactly_once(
    services: Services, database: str, stock_broker: Mosquitto
) -> None:
    bridges = []
    per_bridge = MESSAGES // BRIDGES
    for b in range(BRIDGES):
        bridge_id = f"home-burst-{b:02d}"
        register_bridge(database, bridge_id)
        stock_broker.add_user(bridge_id)
        url = stock_broker.url(bridge_id)
        one = readings(1)
        payloads = {}
        for m in range(per_bridge):
            item = batch(bridge_id, f"SN-BURST-{b:02d}-{m:05d}", one)
            payloads[item.batch_id] = item.to_json()
        bridges.append(BurstBridge(bridge_id, url, payloads))
    workers = WorkerProcesses(database, stock_broker.url(INGEST_USER), "burst-ingest")
    workers.start(1)
    try:
        # The worker stalls while the burst arrives: the broker keeps its queue limit for the
        # worker's session and drops the rest, which the bridges must notice and re-send.
        workers.pause()
        publish_all(bridges)
        deadline = time.monotonic() + OVERFLOW_WAIT_S
        while sum(b.published for b in bridges) < 2 * SHIPPED_QUEUE_LIMIT:
            assert time.monotonic() < deadline, "the bridges never published the burst"
            time.sleep(0.05)
        workers.resume()
        until_confirmed(bridges, timeout=600)
    finally:
        workers.stop()
        for bridge in bridges:
            bridge.close()
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT device) FROM readings WHERE device LIKE 'SN-BURST-%'"
        ).fetchone()
    assert row == (MESSAGES, MESSAGES)
    resent = sum(b.resent for b in bridges)
    print(f"burst: {MESSAGES} messages, {resent} re-sent after the broker dropped them")
    assert resent > 0, "nothing the broker dropped was re-sent"
