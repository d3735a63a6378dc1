"""The API reading from the synchronous standby where a few seconds of staleness is
acceptable (GLUCOBRIDGE_DATABASE_READ_URL): readings lists, trends and days come from the
standby, their audit rows are written on the primary, and a user who has just written reads
the primary, so they see at once what is there.

The standby is made visibly behind by pausing its replay (`pg_wal_replay_pause`): commits on
the primary still return (the standby keeps receiving and flushing WAL), but what it serves
stands still until replay resumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from core.settings import ApiSettings
from stack.cluster import ClusterServices
from stack.postgres import Postgres, failover_url
from tests.analytics.rows import Row, add_patient, insert
from tests.support import HTTP_TIMEOUT_S, serve_api, wait_for

SERIAL = "SN-STANDBY-READS"


def _readings(url: str, patient: object) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE patient_id = %s", (patient,)
        ).fetchone()
        assert row is not None
        return int(row[0])


def _audited(url: str, patient: object) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT action FROM audit_log WHERE patient_id = %s ORDER BY id", (patient,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_reads_come_from_the_standby_and_a_user_who_just_wrote_reads_the_primary(
    services: ClusterServices, pair: tuple[Postgres, Postgres]
) -> None:
    primary, standby = pair
    settings = ApiSettings(
        database_url=failover_url(primary, standby), database_read_url=standby.url
    )
    start = datetime.now(UTC) - timedelta(hours=3)
    first = [Row(start + timedelta(minutes=10 * i), 100 + i) for i in range(3)]
    later = [Row(start + timedelta(minutes=10 * i), 150 + i) for i in range(3, 5)]
    with (
        serve_api(settings) as base_url,
        httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as api,
    ):
        patient = add_patient(primary.url, "UTC", api)
        readings = f"/api/v1/patients/{patient}/readings"
        insert(primary.url, patient, first, SERIAL)
        wait_for(lambda: _readings(standby.url, patient) == len(first))
        with psycopg.connect(standby.url, autocommit=True) as paused:
            paused.execute("SELECT pg_wal_replay_pause()")
            try:
                # New readings arrive (ingest writes them, not this user): on the primary
                # at once, not yet on the paused standby.
                insert(primary.url, patient, later, SERIAL + "-2")
                assert _readings(primary.url, patient) == 5

                # The user reads: the standby answers, a moment behind.
                listed = api.get(readings)
                assert listed.status_code == 200, listed.text
                assert len(listed.json()["items"]) == 3
                trends = api.get(f"/api/v1/patients/{patient}/trends")
                assert trends.status_code == 200, trends.text
                days = api.get(f"/api/v1/patients/{patient}/days")
                assert days.status_code == 200, days.text
                # Every one of those reads was audited, on the primary.
                assert _audited(primary.url, patient) == ["list_readings", "trends", "days"]

                # The user writes; their next read goes to the primary and sees everything.
                claimed = api.post(
                    f"/api/v1/patients/{patient}/meters", json={"serial": "SN-STANDBY-NEW"}
                )
                assert claimed.status_code in (200, 201), claimed.text
                after = api.get(readings)
                assert after.status_code == 200, after.text
                assert len(after.json()["items"]) == 5
            finally:
                paused.execute("SELECT pg_wal_replay_resume()")
