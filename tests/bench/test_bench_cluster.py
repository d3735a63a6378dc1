"""Ingest through the RabbitMQ cluster (three nodes on this machine, GLUCOBRIDGE_BROKER=
rabbitmq), each figure beside the COPY ceiling measured in the same run, to set beside the
Mosquitto figures of test_bench_ingest.py. Prints, asserts no time:

- draining a backlog queued in the readings quorum queue while the workers were away: syncs
  of 1-200 readings with one worker, single-reading messages with two;
- publish-to-confirmed p50/p95 at a steady 2,000 readings/s (one per message), two workers;
- peak and steady memory per worker, and per RabbitMQ node.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from core.contract import ReadingsBatch
from stack.cluster import ClusterServices, local_cluster, spawn_worker
from stack.rabbitmq import READINGS_QUEUE
from tests.bench.test_bench_ingest import SEED, _batches, _copy_ceiling, _reset
from tests.ingest.burst import BurstBridge, publish_all, status_kb, until_confirmed
from tests.support import wait_for

BATCHED_READINGS = 100_000
# A bridge keeps at most 1,000 batches unconfirmed (device.courier.MAX_IN_FLIGHT): ten
# bridges queue at most this many while no worker runs.
SINGLE_MESSAGES = 10_000
LATENCY_RATE = 2_000
LATENCY_SECONDS = 5.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterServices]:
    with local_cluster("bench-cluster") as started:
        yield started


class Workers:
    def __init__(self, services: ClusterServices, count: int, tag: str) -> None:
        self.services = services
        logs = services.root / "logs"
        logs.mkdir(exist_ok=True)
        self.procs = [spawn_worker(services, i, logs / f"{tag}-{i}.log") for i in range(count)]
        wait_for(lambda: _consumers(services) == count, timeout=60)

    def memory_mb(self, key: str) -> list[float]:
        return [status_kb(p.pid, key) / 1024 for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        wait_for(lambda: _consumers(self.services) == 0, timeout=60)


def _consumers(services: ClusterServices) -> int:
    out = services.rabbit.ctl(0, "list_queues", "name", "consumers", "--quiet")
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == READINGS_QUEUE:
            return int(parts[1])
    return 0


def _bridges(
    services: ClusterServices, batches: dict[str, list[ReadingsBatch]]
) -> list[BurstBridge]:
    out = []
    for n, (bridge_id, items) in enumerate(batches.items()):
        services.add_bridge(bridge_id)
        url = services.rabbit.bridge_url(bridge_id, first=n % 3)
        payloads = {b.batch_id: b.to_json() for b in items}
        out.append(BurstBridge(bridge_id, url, payloads, broker="rabbitmq"))
    return out


def _queued(services: ClusterServices, bridges: list[BurstBridge]) -> bool:
    """Every batch in the readings queue (re-sends of unconfirmed ones may add copies)."""
    batches = sum(len(b.payloads) for b in bridges)
    return services.rabbit.queue_depth(READINGS_QUEUE) >= batches


def _reset_all(services: ClusterServices) -> None:
    """An empty database and readings queue: copies re-sent in an earlier run (a batch
    unconfirmed for a while is sent again) must not be stored in this one's figures."""
    _reset(services.database_url)
    services.rabbit.ctl(0, "purge_queue", READINGS_QUEUE)


def _drain(
    services: ClusterServices, workers: int, total: int, sizes: tuple[int, int], tag: str
) -> tuple[float, list[float]]:
    database = services.database_url
    _reset_all(services)
    bridges = _bridges(services, _batches(total, sizes, tag))
    try:
        publish_all(bridges)  # no worker yet: the queue keeps the backlog
        wait_for(lambda: _queued(services, bridges), timeout=900)
        pool = Workers(services, workers, tag)
        try:
            until_confirmed(bridges, timeout=900)
            peak = pool.memory_mb("VmHWM")
        finally:
            pool.stop()
    finally:
        for bridge in bridges:
            bridge.close()
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*), extract(epoch FROM max(received_at) - min(received_at)) FROM readings"
        ).fetchone()
    assert row is not None and row[0] == total
    return total / float(row[1]), peak


def _latency(services: ClusterServices) -> tuple[float, float, list[float]]:
    _reset_all(services)
    messages = int(LATENCY_RATE * LATENCY_SECONDS)
    bridges = _bridges(services, _batches(messages, (1, 1), "lat"))
    pool = Workers(services, 2, "lat")
    try:
        order = [(b, i) for b in bridges for i in b.payloads]
        random.Random(SEED).shuffle(order)
        interval = 1 / LATENCY_RATE
        started = time.perf_counter()
        for n, (bridge, batch_id) in enumerate(order):
            wait = started + n * interval - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            bridge.publish(batch_id)
        until_confirmed(bridges, timeout=120)
        steady = pool.memory_mb("VmRSS")
    finally:
        pool.stop()
        for bridge in bridges:
            bridge.close()
    latencies = sorted(
        (b.confirmed_at[i] - b.sent_at[i]) * 1000 for b in bridges for i in b.payloads
    )
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)], steady


def _node_memory_mb(services: ClusterServices) -> list[float]:
    """Each node's Erlang VM (its pid file; the process we started is the script around it)."""
    return [
        status_kb(int((n.root / "rabbitmq.pid").read_text().strip()), "VmRSS") / 1024
        for n in services.rabbit.nodes
    ]


def test_bench_cluster(cluster: ClusterServices) -> None:
    ceiling = _copy_ceiling(cluster.database_url, BATCHED_READINGS)
    batched, batched_peak = _drain(cluster, 1, BATCHED_READINGS, (1, 200), "cb1")
    single, single_peak = _drain(cluster, 2, SINGLE_MESSAGES, (1, 1), "cs2")
    p50, p95, steady = _latency(cluster)

    print("\n== ingest benchmark on the RabbitMQ cluster (3 nodes, one run, this machine) ==")
    print(f"ceiling  raw COPY into readings (with indexes)  {ceiling:>10,.0f} readings/s")
    for label, rate, peak in (
        ("1 worker  syncs of 1-200 readings ", batched, batched_peak),
        ("2 workers single-reading messages ", single, single_peak),
    ):
        print(
            f"rabbitmq {label}{rate:>10,.0f} readings/s  ({rate / ceiling:.0%} of ceiling)"
            f"  peak memory per worker {', '.join(f'{p:.0f}' for p in peak)} MB"
        )
    print(
        f"publish-to-confirmed at {LATENCY_RATE:,} readings/s (1 per message): p50 {p50:.1f} ms,"
        f" p95 {p95:.1f} ms; steady memory per worker {', '.join(f'{m:.0f}' for m in steady)} MB"
    )
    nodes = ", ".join(f"{m:.0f}" for m in _node_memory_mb(cluster))
    print(f"RabbitMQ nodes' resident memory: {nodes} MB")
