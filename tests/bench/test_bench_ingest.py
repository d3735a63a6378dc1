"""Ingest throughput and latency, each beside the ceiling measured in the same run.

Prints (no assertions on time):
- the ceiling: raw COPY of the same rows into the same readings table, with its indexes;
- the naive way: one INSERT and commit per reading;
- glucobridge end to end through the real broker into the hypertable, draining a backlog
  queued while the workers were away (publishers off the measured path), with realistic
  sync batches (1-200 readings) and with single-reading messages, for one and two workers;
- p95 publish-to-queryable latency at a steady 2,000 and 10,000 readings/s (measured to the
  bridge's receipt of ingest's confirmation, which is sent after the commit: an upper bound);
- peak memory per worker during a backlog, and resident memory when steady.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from core.contract import MeterInfo, ReadingsBatch, WireReading
from core.units import Unit
from stack.local import Services
from tests.ingest.burst import BurstBridge, WorkerProcesses, publish_all, until_confirmed

BATCHED_READINGS = 200_000
SINGLE_MESSAGES = 60_000
NAIVE_READINGS = 5_000
BRIDGES = 10
LATENCY_SECONDS = 5.0
SEED = 20261122

# What the intake writes for a meter's reading: its patient (so the series index holds it,
# as it holds every stored reading), its source and its identity.
_COLUMNS = (
    "measured_at, device, sequence_number, meter_time, sender, batch_id, "
    "value, unit, mg_dl, sample_type, sample_location, source, identity, patient_id"
)


def _reading(i: int, start: datetime) -> WireReading:
    at = start + timedelta(minutes=i)
    return WireReading(
        sequence_number=i % 0x10000,
        meter_time=at.replace(tzinfo=None),
        measured_at=at,
        value=70 + i % 200,
        unit=Unit.MG_DL,
        sample_type="capillary_plasma",
        sample_location="finger",
    )


def _batches(total: int, sizes: tuple[int, int], tag: str) -> dict[str, list[ReadingsBatch]]:
    """`total` readings cut into syncs of random sizes, spread over BRIDGES bridges, each
    delivering its own meter's readings (as a home bridge does)."""
    rng = random.Random(SEED)
    start = datetime.now(UTC) - timedelta(days=200)
    out: dict[str, list[ReadingsBatch]] = {f"bench-{tag}-{b}": [] for b in range(BRIDGES)}
    made, meter = 0, 0
    while made < total:
        size = min(rng.randint(*sizes), total - made)
        bridge_id = f"bench-{tag}-{meter % BRIDGES}"
        items = [_reading(made + k, start) for k in range(size)]
        out[bridge_id].append(
            ReadingsBatch(
                bridge_id=bridge_id,
                meter=MeterInfo(serial=f"BENCH-{tag}-{meter % BRIDGES}"),
                readings=items,
            )
        )
        made += size
        meter += 1
    return out


def _reset(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("TRUNCATE readings, reading_identities, meters, dead_letters CASCADE")


def _ceiling_patient(database: str) -> uuid.UUID:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "INSERT INTO patients (display_name) VALUES ('bench ceiling') RETURNING id"
        ).fetchone()
    assert row is not None and isinstance(row[0], uuid.UUID)
    return row[0]


def _rows(total: int, patient_id: uuid.UUID) -> list[tuple[object, ...]]:
    start = datetime.now(UTC) - timedelta(days=200)
    batch_id = uuid.uuid4()
    return [
        (
            r.measured_at,
            f"CEIL-{i // 200:06d}",
            r.sequence_number,
            r.meter_time,
            "bench",
            batch_id,
            r.value,
            r.unit.value,
            r.value,
            r.sample_type,
            r.sample_location,
            "meter",
            uuid.uuid4(),
            patient_id,
        )
        for i, r in ((i, _reading(i, start)) for i in range(total))
    ]


def _copy_ceiling(database: str, total: int) -> float:
    _reset(database)
    rows = _rows(total, _ceiling_patient(database))
    with psycopg.connect(database) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(f"COPY readings ({_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return total / (time.perf_counter() - started)


def _naive(database: str, total: int) -> float:
    _reset(database)
    rows = _rows(total, _ceiling_patient(database))
    with psycopg.connect(database) as conn:
        started = time.perf_counter()
        for row in rows:
            conn.execute(
                f"INSERT INTO readings ({_COLUMNS}) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                row,
            )
            conn.commit()
        return total / (time.perf_counter() - started)


def _bridges(services: Services, batches: dict[str, list[ReadingsBatch]]) -> list[BurstBridge]:
    return [
        BurstBridge(
            bridge_id, services.add_bridge(bridge_id), {b.batch_id: b.to_json() for b in items}
        )
        for bridge_id, items in batches.items()
    ]


def _drain(
    services: Services,
    database: str,
    workers: int,
    total_readings: int,
    sizes: tuple[int, int],
    tag: str,
) -> tuple[float, list[float]]:
    """Readings/s draining a backlog queued while `workers` workers were away."""
    _reset(database)
    batches = _batches(total_readings, sizes, tag)
    # Broker users of their own per run: sessions of earlier runs' workers linger.
    url = services.ingest_url(f"bench-workers-{tag}", workers)
    pool = WorkerProcesses(database, url, f"ingest-bench-{tag}")
    pool.start(workers)  # their sessions join the share group...
    pool.kill()  # ...and stay there, queueing, while they are gone
    bridges = _bridges(services, batches)
    try:
        publish_all(bridges)
        pool.start(workers)
        until_confirmed(bridges, timeout=900)
        peak = pool.peak_memory_mb()
    finally:
        pool.stop()
        for bridge in bridges:
            bridge.close()
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*), extract(epoch FROM max(received_at) - min(received_at)) FROM readings"
        ).fetchone()
    assert row is not None and row[0] == total_readings
    return total_readings / float(row[1]), peak


def _latency(
    services: Services, database: str, rate: int, per_message: int, workers: int
) -> tuple[float, float, list[float]]:
    """p50 and p95 ms from publish to confirmation at `rate` readings/s."""
    _reset(database)
    messages = int(rate * LATENCY_SECONDS / per_message)
    batches = _batches(messages * per_message, (per_message, per_message), f"lat{rate}")
    url = services.ingest_url(f"bench-workers-lat{rate}", workers)
    pool = WorkerProcesses(database, url, f"ingest-bench-lat{rate}")
    pool.start(workers)
    bridges = _bridges(services, batches)
    try:
        order = [(b, i) for b in bridges for i in b.payloads]
        random.Random(SEED).shuffle(order)
        interval = per_message / rate
        started = time.perf_counter()
        for n, (bridge, batch_id) in enumerate(order):
            wait = started + n * interval - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            bridge.publish(batch_id)
        until_confirmed(bridges, timeout=120)
        steady = pool.memory_mb()
    finally:
        pool.stop()
        for bridge in bridges:
            bridge.close()
    latencies = sorted(
        (b.confirmed_at[i] - b.sent_at[i]) * 1000 for b in bridges for i in b.payloads
    )
    return (latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)], steady)


def test_bench_ingest(services: Services, database: str) -> None:
    ceiling = _copy_ceiling(database, BATCHED_READINGS)
    naive = _naive(database, NAIVE_READINGS)
    results = {}
    for workers in (1, 2):
        results[("batched", workers)] = _drain(
            services, database, workers, BATCHED_READINGS, (1, 200), f"b{workers}"
        )
        results[("single", workers)] = _drain(
            services, database, workers, SINGLE_MESSAGES, (1, 1), f"s{workers}"
        )
    lat2k = _latency(services, database, 2000, 1, 2)
    lat10k = _latency(services, database, 10_000, 10, 2)

    print("\n== ingest benchmark (one run, this machine) ==")
    print(f"ceiling  raw COPY into readings (with indexes)  {ceiling:>10,.0f} readings/s")
    print(
        f"naive    INSERT + commit per reading             {naive:>10,.0f} readings/s"
        f"  ({naive / ceiling:.0%} of ceiling)"
    )
    for (kind, workers), (rate, peak) in results.items():
        label = "syncs of 1-200 readings" if kind == "batched" else "single-reading messages"
        print(
            f"glucobridge {workers} worker{'s' if workers > 1 else ' '} {label:<24}"
            f"{rate:>10,.0f} readings/s  ({rate / ceiling:.0%} of ceiling)"
            f"  peak memory per worker {', '.join(f'{p:.0f}' for p in peak)} MB"
        )
    for label, (p50, p95, steady) in (
        ("2,000 readings/s (1 per message)", lat2k),
        ("10,000 readings/s (10 per message)", lat10k),
    ):
        print(
            f"publish-to-confirmed at {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms;"
            f" steady memory per worker {', '.join(f'{m:.0f}' for m in steady)} MB"
        )
