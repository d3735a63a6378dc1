"""The clustered deployment under test (`make test-cluster`): three RabbitMQ nodes and a
private PostgreSQL, started once for the session (stack.cluster.local_cluster). A node a
test kills is started again before the next test, so each test begins with all three."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from core import db
from ingest.amqp_worker import AmqpWorker
from stack.cluster import ClusterServices, local_cluster
from stack.postgres import Postgres, replicated_pair, start_standby
from tests.conftest import empty_database
from tests.support import wait_for

WORKER_START_TIMEOUT_S = 30.0


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterServices]:
    with local_cluster("test-cluster") as started:
        yield started


@pytest.fixture
def services(cluster: ClusterServices) -> Iterator[ClusterServices]:
    """The cluster with every node running and an empty database."""
    rabbit = cluster.rabbit
    restarted = [n.index for n in rabbit.nodes if not n.running]
    for index in restarted:
        rabbit.start_node(index)
    if restarted:
        rabbit.ctl(0 if rabbit.nodes[0].running else restarted[0], "await_online_nodes", "3")
    empty_database(cluster.database_url)
    yield cluster


@dataclass
class ThreadWorker:
    worker: AmqpWorker
    thread: threading.Thread

    @classmethod
    def start(cls, services: ClusterServices, index: int = 0) -> ThreadWorker:
        worker = AmqpWorker(services.ingest_settings(), index)
        thread = threading.Thread(target=worker.run, name=f"amqp-ingest-{index}", daemon=True)
        thread.start()
        wait_for(lambda: worker.ready, timeout=WORKER_START_TIMEOUT_S)
        return cls(worker, thread)

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "ingest worker did not stop"


@pytest.fixture
def amqp_worker(services: ClusterServices) -> Iterator[AmqpWorker]:
    running = ThreadWorker.start(services)
    yield running.worker
    running.stop()


@pytest.fixture
def pair(services: ClusterServices) -> Iterator[tuple[Postgres, Postgres]]:
    """A primary and its synchronous standby of their own, migrated (a test may kill one)."""
    root = services.root / f"replicated-{uuid.uuid4().hex[:8]}"
    primary, standby = replicated_pair(root)
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
        shutil.rmtree(root, ignore_errors=True)
