"""Nightscout uploads: 100,000 xDrip+-shaped entries in batches of 288 (a day of 5-minute CGM,
the size xDrip+ and Juggluco send when they catch up) posted to the API running as its own
process, beside the ceiling measured in the same run: raw COPY of as many rows into the
readings hypertable with its indexes. Prints figures; asserts only that every entry was
stored once, never how fast."""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

from core.intake import reading_identity
from core.vocabulary import SourceKind
from stack.local import state_dir
from stack.proc import free_port, port_open, spawn, stop, wait_until
from tests.analytics.rows import add_patient
from tests.nightscout.clients import FIVE_MINUTES, sha1, xdrip_sgv

ENTRIES = 100_000
BATCH = 288
# Several phones uploading at once; the API serves uploads on a pool of 4 connections.
UPLOADERS = 4
# 100,000 five-minute entries cover about 347 days from here.
START = datetime(2025, 1, 1, tzinfo=UTC)

_CEILING_COLUMNS = (
    "measured_at, device, meter_time, sender, batch_id, value, unit, mg_dl, source,"
    " sample_type, identity, patient_id"
)


def _value(i: int) -> int:
    return 70 + (i * 7) % 180


@contextmanager
def _api_process(database: str) -> Iterator[str]:
    """`glucobridge api` as production runs it: its own process, uvicorn, one worker."""
    port = free_port()
    log = state_dir() / "run" / f"bench-nightscout-api-{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GLUCOBRIDGE_DATABASE_URL": database,
        "GLUCOBRIDGE_PORT": str(port),
        "GLUCOBRIDGE_HOST": "127.0.0.1",
    }
    glucobridge = str(Path(sys.executable).parent / "glucobridge")
    proc = spawn([glucobridge, "api"], log=log, stop_signal=signal.SIGTERM, env=env)
    try:
        wait_until(lambda: port_open(port), proc, "the API", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, signal.SIGTERM)


def _copy_ceiling(database: str, patient: uuid.UUID) -> float:
    batch = uuid.uuid4()
    rows = []
    for i in range(ENTRIES):
        at = START + i * FIVE_MINUTES
        meter_time = at.replace(tzinfo=None)
        rows.append(
            (
                at,
                "CEILING",
                meter_time,
                "bench",
                batch,
                float(_value(i)),
                "mg/dL",
                float(_value(i)),
                "cgm",
                "interstitial_fluid",
                reading_identity(
                    patient, "CEILING", SourceKind.CGM, None, meter_time, float(_value(i))
                ),
                patient,
            )
        )
    with psycopg.connect(database) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(f"COPY readings ({_CEILING_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("TRUNCATE readings, reading_identities")
    return ENTRIES / elapsed


def _bodies() -> list[bytes]:
    entries = [
        xdrip_sgv((START + i * FIVE_MINUTES).astimezone(), _value(i)) for i in range(ENTRIES)
    ]
    return [json.dumps(entries[i : i + BATCH]).encode() for i in range(0, ENTRIES, BATCH)]


def _upload(url: str, secret: str, bodies: list[bytes]) -> tuple[float, list[float]]:
    """Post every body, UPLOADERS at a time; (elapsed seconds, per-request latencies)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def uploader() -> None:
        headers = {"api-secret": sha1(secret), "Content-Type": "application/json"}
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop(0)
                began = time.perf_counter()
                answer = client.post(url, content=body, headers=headers)
                took = time.perf_counter() - began
                with lock:
                    latencies.append(took)
                    if answer.status_code != 200:
                        errors.append(answer.text[:200])

    threads = [threading.Thread(target=uploader) for _ in range(UPLOADERS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert errors == [], errors[:3]
    return elapsed, latencies


def test_bench_nightscout_uploads(database: str) -> None:
    patient = add_patient(database, "Asia/Shanghai")
    ceiling = _copy_ceiling(database, patient)
    bodies = _bodies()
    with _api_process(database) as base, httpx.Client(base_url=base, timeout=30) as api:
        uploading = add_patient(database, "Asia/Shanghai", api, name="uploader")
        site = api.post(f"/api/v1/patients/{uploading}/nightscout-sites", json={})
        assert site.status_code == 201, site.text
        url = base + site.json()["path"] + "entries"
        elapsed, latencies = _upload(url, site.json()["uploader_secret"], bodies)
    with psycopg.connect(database) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT identity) FROM counted_readings WHERE patient_id = %s",
            (uploading,),
        ).fetchone()
    assert stored == (ENTRIES, ENTRIES)
    rate = ENTRIES / elapsed
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print()
    print(f"ceiling  raw COPY into readings (with indexes)        {ceiling:>10,.0f} entries/s")
    print(
        f"nightscout  POST /api/v1/entries, {len(bodies)} batches of {BATCH}, {UPLOADERS} at once"
        f"  {rate:>10,.0f} entries/s  ({rate / ceiling:.0%} of ceiling)"
    )
    print(
        f"  per request: p50 {statistics.median(latencies) * 1000:.0f} ms,"
        f" p95 {p95 * 1000:.0f} ms ({elapsed:.1f} s in all)"
    )
