"""The database primary lost mid-stream and its synchronous standby promoted, as the README's
failover procedure says: the ingest workers, connected through one connection string naming
both servers (`target_session_attrs=read-write`), follow the promotion by themselves.
Nothing lost, nothing doubled, every outbox empty."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator

import psycopg
import pytest

from core import db
from stack.cluster import ClusterServices
from stack.postgres import Postgres, failover_url, promote, replicated_pair, start_standby
from tests.cluster.conftest import ThreadWorker
from tests.cluster.flow import Flow


@pytest.fixture
def pair(services: ClusterServices) -> Iterator[tuple[Postgres, Postgres]]:
    primary, standby = replicated_pair(services.root / "replicated")
    try:
        primary.start()
        start_standby(standby, primary)
        db.upgrade(primary.url)  # through the synchronous standby, as every write
        yield primary, standby
    finally:
        for server in (standby, primary):
            server.stop()
            if server.home != server.root:
                shutil.rmtree(server.home, ignore_errors=True)


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
    workers = [ThreadWorker.start(replicated, i) for i in range(2)]
    try:
        flow = Flow(replicated, "dbfail")
        flow.start()
        try:
            flow.until_confirmed(0.3)
            primary.kill()
            promote(standby)
            flow.finish()
        finally:
            flow.close()
    finally:
        for worker in workers:
            worker.stop()
    assert _is_primary(standby)
    assert flow.stored() == flow.expected
