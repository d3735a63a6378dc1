"""The database primary lost mid-stream and its synchronous standby promoted, as the README's
failover procedure says: the ingest workers, connected through one connection string naming
both servers (`target_session_attrs=read-write`), follow the promotion by themselves.
The API, whose pool names both too, signs a user in before and after. Nothing lost, nothing
doubled, every outbox empty."""

from __future__ import annotations

import dataclasses

import httpx
import psycopg

from api.auth import INSERT_USER, hash_password
from core.settings import ApiSettings
from stack.cluster import ClusterServices
from stack.postgres import Postgres, failover_url, promote
from tests.cluster.conftest import ThreadWorker
from tests.cluster.flow import Flow
from tests.support import HTTP_TIMEOUT_S, serve_api

EMAIL = "failover@example.org"
PASSWORD = "a long enough failover password"


def _is_primary(server: Postgres) -> bool:
    with psycopg.connect(server.url) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        return row is not None and row[0] is False


def test_the_primary_lost_and_the_standby_promoted_loses_and_doubles_nothing(
    services: ClusterServices, pair: tuple[Postgres, Postgres]
) -> None:
    primary, standby = pair
    assert not _is_primary(standby)
    replicated = dataclasses.replace(services, database_url=failover_url(primary, standby))
    with psycopg.connect(primary.url) as conn:
        conn.execute(
            INSERT_USER,
            {"email": EMAIL, "name": "Failover", "role": "admin", "hash": hash_password(PASSWORD)},
        )
    workers = [ThreadWorker.start(replicated, i) for i in range(2)]
    try:
        with (
            serve_api(ApiSettings(database_url=replicated.database_url)) as base_url,
            httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as api,
        ):
            assert _sign_in(api).status_code == 200
            flow = Flow(replicated, "dbfail")
            flow.start()
            try:
                flow.until_confirmed(0.3)
                primary.kill()
                promote(standby)
                flow.finish()
            finally:
                flow.close()
            # The API follows too: signing in writes (the session), so it needs the primary.
            assert _sign_in(api).status_code == 200
    finally:
        for worker in workers:
            worker.stop()
    assert _is_primary(standby)
    assert flow.stored() == flow.expected


def _sign_in(api: httpx.Client) -> httpx.Response:
    return api.post("/api/v1/auth/token", data={"username": EMAIL, "password": PASSWORD})
