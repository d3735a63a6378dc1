"""Faults on the clustered deployment, each in the middle of a stream of readings from three
bridges (tests.cluster.flow): a RabbitMQ node SIGKILLed (the readings queue's leader; the
node the bridges are on), an ingest worker SIGKILLed holding deliveries. Each ends counting
every reading published against every reading stored: nothing lost, nothing doubled, every
bridge's outbox empty."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from stack.cluster import ClusterServices, spawn_worker
from stack.rabbitmq import READINGS_QUEUE
from tests.cluster.conftest import ThreadWorker
from tests.cluster.flow import Flow
from tests.support import wait_for


@pytest.fixture
def two_workers(services: ClusterServices) -> Iterator[list[ThreadWorker]]:
    workers = [ThreadWorker.start(services, i) for i in range(2)]
    yield workers
    for worker in workers:
        worker.stop()


def _run_through(flow: Flow, fault: object) -> None:
    assert callable(fault)
    flow.start()
    try:
        flow.until_confirmed(0.3)
        fault()
        flow.finish()
    finally:
        flow.close()


def test_killing_the_readings_queue_leader_loses_and_doubles_nothing(
    services: ClusterServices, two_workers: list[ThreadWorker]
) -> None:
    rabbit = services.rabbit
    leader = rabbit.quorum_leader()
    # The bridges start on another node: this test is about the queue's leader alone.
    flow = Flow(services, "leader", first_node=(leader + 1) % 3)
    _run_through(flow, lambda: rabbit.kill(leader))
    assert flow.stored() == flow.expected
    assert rabbit.quorum_leader() != leader


def test_killing_the_node_the_bridges_are_on_loses_and_doubles_nothing(
    services: ClusterServices, two_workers: list[ThreadWorker]
) -> None:
    rabbit = services.rabbit
    leader = rabbit.quorum_leader()
    node = (leader + 1) % 3
    flow = Flow(services, "onnode", first_node=node)
    _run_through(flow, lambda: rabbit.kill(node))
    assert flow.stored() == flow.expected
    # Each bridge lost its node and came back on another.
    assert all(b.uplink.connections >= 2 for b in flow.bridges)


def _consumers(services: ClusterServices) -> int:
    out = services.rabbit.ctl(
        services.rabbit.any_running(), "list_queues", "name", "consumers", "--quiet"
    )
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == READINGS_QUEUE:
            return int(parts[1])
    return 0


def test_an_ingest_worker_killed_mid_batch_loses_and_doubles_nothing(
    services: ClusterServices,
) -> None:
    logs = services.root / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = [spawn_worker(services, i, logs / f"worker-{i}.log") for i in range(2)]
        wait_for(lambda: _consumers(services) == 2, timeout=60)
        flow = Flow(services, "workerkill")
        _run_through(flow, lambda: os.kill(procs[0].pid, signal.SIGKILL))
        assert procs[0].wait(10) == -signal.SIGKILL
        assert flow.stored() == flow.expected
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(30)
