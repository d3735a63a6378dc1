"""Benchmark: a clinician's worklist of 300 patients, each with 28 days of 15-minute CGM
(the current and the previous period: 806,400 readings), ranked in one request. Prints
figures; asserts only that the answer is right, never how fast it came."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx
import numpy as np
import psycopg

from api.auth import Role, issue_access_token
from core.settings import DEV_JWT_SECRET

PATIENTS = 300
DAYS = 28
STEP_MINUTES = 15
WARMUP = 3
REQUESTS = 10
# One patient in ten runs high (a mean near 260 mg/dL): they must top the list.
HIGH_EVERY = 10

# Readings straight into the hypertable, as the intake would store a CGM upload: a daily
# sine around each patient's mean, identities from the same SQL function the intake uses.
_SEED = """
INSERT INTO readings (measured_at, device, sequence_number, meter_time, patient_id, sender,
                      batch_id, value, unit, mg_dl, sample_type, source, identity)
SELECT t, 'bench-cgm-' || p.n, NULL, t AT TIME ZONE 'Asia/Shanghai', p.id, 'bench',
       %(batch)s, v, 'mg/dL', v, 'interstitial_fluid', 'cgm',
       reading_identity(p.id, 'bench-cgm-' || p.n, 'cgm', NULL,
                        t AT TIME ZONE 'Asia/Shanghai', v)
FROM unnest(%(ids)s::uuid[], %(means)s::float8[]) WITH ORDINALITY AS p (id, mean, n),
     generate_series(now() - make_interval(days => %(days)s), now() - interval '1 minute',
                     make_interval(mins => %(step)s)) AS t,
     LATERAL (SELECT round((p.mean + 40 * sin(extract(epoch FROM t) / 13751))::numeric, 1)
                     ::float8 AS v) AS g
"""


def test_worklist_of_300_patients(database: str, api: httpx.Client) -> None:
    ids = [uuid.uuid4() for _ in range(PATIENTS)]
    means = [260.0 if i % HIGH_EVERY == 0 else 140.0 for i in range(PATIENTS)]
    began = time.perf_counter()
    with psycopg.connect(database) as conn:
        clinician = conn.execute(
            "INSERT INTO users (email, display_name, role, password_hash)"
            " VALUES ('bench-clinician@example.org', 'Bench', 'clinician', 'no-login')"
            " RETURNING id"
        ).fetchone()
        assert clinician is not None
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO patients (id, display_name, timezone)"
                " VALUES (%s, %s, 'Asia/Shanghai')",
                [(p, f"bench {i:03d}") for i, p in enumerate(ids)],
            )
            cur.executemany(
                "INSERT INTO grants (patient_id, grantee_user_id, scopes, status, decided_at)"
                " VALUES (%s, %s, ARRAY['trends'], 'active', now())",
                [(p, clinician[0]) for p in ids],
            )
        conn.execute(
            _SEED,
            {
                "ids": ids,
                "means": means,
                "days": DAYS,
                "step": STEP_MINUTES,
                "batch": uuid.uuid4(),
            },
        )
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert row is not None
    loaded_s = time.perf_counter() - began
    print(f"\nloaded {row[0]:,} readings for {PATIENTS} patients in {loaded_s:.0f} s")
    token = issue_access_token(DEV_JWT_SECRET, clinician[0], Role.CLINICIAN, datetime.now(UTC))
    api.headers["Authorization"] = f"Bearer {token}"
    samples = []
    for i in range(WARMUP + REQUESTS):
        began = time.perf_counter()
        response = api.get("/api/v1/dashboards/worklist", params={"size": 50})
        elapsed = (time.perf_counter() - began) * 1000
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == PATIENTS
        high = {f"bench {i:03d}" for i in range(0, PATIENTS, HIGH_EVERY)}
        assert {item["name"] for item in body["items"][: len(high)]} == high
        if i >= WARMUP:
            samples.append(elapsed)
    p50, p95 = (float(np.percentile(np.array(samples), p)) for p in (50, 95))
    print(
        f"GET /dashboards/worklist, {PATIENTS} patients x {DAYS} days of CGM, {REQUESTS} requests:"
        f" p50 {p50:.0f} ms, p95 {p95:.0f} ms, mean {statistics.fmean(samples):.0f} ms"
    )
