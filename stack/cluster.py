"""`glucobridge cluster`: the clustered deployment on one machine, all on loopback: three
RabbitMQ nodes (stack.rabbitmq), a PostgreSQL + TimescaleDB primary and its synchronous
standby (stack.postgres.start_standby), two ingest workers consuming the
readings' quorum queue over AMQP, and the API. The same shape a deployment across machines
has (README, "Three machines"), for the cluster tests and for anyone to try.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core import db
from core.settings import ApiSettings, IngestSettings
from stack.local import register_bridge, state_dir
from stack.postgres import Postgres, failover_url, replicated_pair, start_standby
from stack.proc import free_port, port_open
from stack.rabbitmq import RabbitCluster

INGEST_WORKERS = 2


@dataclass
class ClusterServices:
    rabbit: RabbitCluster
    postgres: Postgres
    root: Path
    database_url: str
    # Every database server: the primary, then its standby when there is one.
    servers: list[Postgres] = field(default_factory=list)

    def add_bridge(self, bridge_id: str, patient_id: uuid.UUID | None = None) -> str:
        """Register a bridge to a patient (a new one when none is named) and provision its
        broker user; returns its URL listing every node."""
        register_bridge(self.database_url, bridge_id, patient_id)
        self.rabbit.add_bridges([bridge_id])
        return self.rabbit.bridge_url(bridge_id)

    def ingest_settings(self, **overrides: object) -> IngestSettings:
        return IngestSettings(
            database_url=self.database_url,
            broker="rabbitmq",
            amqp_url=self.rabbit.ingest_url,
            **overrides,  # type: ignore[arg-type]
        )

    def api_settings(self, **overrides: object) -> ApiSettings:
        """The API on this cluster: it provisions bridges through the nodes' management API."""
        return ApiSettings(
            database_url=self.database_url,
            broker="rabbitmq",
            rabbitmq_admin_url=self.rabbit.management_url,
            **overrides,  # type: ignore[arg-type]
        )

    def api_env(self) -> dict[str, str]:
        """The environment of the API process on this cluster."""
        env = {
            **os.environ,
            "GLUCOBRIDGE_DATABASE_URL": self.database_url,
            "GLUCOBRIDGE_BROKER": "rabbitmq",
            "GLUCOBRIDGE_RABBITMQ_ADMIN_URL": self.rabbit.management_url,
        }
        if len(self.servers) > 1:  # reads that may be a moment stale: from the standby
            env["GLUCOBRIDGE_DATABASE_READ_URL"] = self.servers[1].url
        return env

    def ingest_env(self) -> dict[str, str]:
        """The environment of an ingest worker process on this cluster."""
        return {
            **os.environ,
            "GLUCOBRIDGE_DATABASE_URL": self.database_url,
            "GLUCOBRIDGE_BROKER": "rabbitmq",
            "GLUCOBRIDGE_AMQP_URL": self.rabbit.ingest_url,
        }


@contextlib.contextmanager
def local_cluster(name: str, *, standby: bool = False) -> Iterator[ClusterServices]:
    """Start the three nodes and the database (with `standby`, a primary and a synchronous
    standby, reached through one connection string naming both), apply migrations, stop
    everything on exit."""
    root = state_dir() / "run" / f"{name}-{os.getpid()}"
    rabbit = RabbitCluster(root / "rabbitmq")
    servers: list[Postgres] = []
    try:
        if standby:
            primary, second = replicated_pair(root / "database")
            servers = [primary, second]
            primary.start()
            start_standby(second, primary)
            database_url = failover_url(primary, second)
        else:
            primary = Postgres(root / "postgres")
            servers = [primary]
            primary.start()
            database_url = primary.url
        db.upgrade(database_url)
        rabbit.start()
        yield ClusterServices(rabbit, primary, root, database_url, servers)
    finally:
        rabbit.stop()
        for server in reversed(servers):
            server.stop()
            if server.home != server.root:
                shutil.rmtree(server.home, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def spawn_worker(services: ClusterServices, index: int, log: Path) -> subprocess.Popen[bytes]:
    """Ingest worker `index` as its own process (`glucobridge ingest --index i`)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stack", "ingest", "--index", str(index)],
            env=services.ingest_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def run() -> None:
    """`glucobridge cluster`: start everything, print the endpoints, run until Ctrl-C."""
    with local_cluster("cluster", standby=True) as services:
        logs = services.root / "logs"
        logs.mkdir(exist_ok=True)
        procs = [spawn_worker(services, i, logs / f"ingest-{i}.log") for i in range(INGEST_WORKERS)]
        api_port = free_port()
        with (logs / "api.log").open("ab") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "stack", "api"],
                    env={**services.api_env(), "GLUCOBRIDGE_PORT": str(api_port)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
        try:
            while not port_open(api_port):
                time.sleep(0.1)
            rabbit = services.rabbit
            print("glucobridge cluster is up (Ctrl-C stops it):")
            for node in rabbit.nodes:
                print(f"  {node.name}: AMQP {node.amqp_port}, MQTT {node.mqtt_port}")
            print(f"  ingest workers: {INGEST_WORKERS}, GLUCOBRIDGE_AMQP_URL={rabbit.ingest_url}")
            primary, standby = services.servers
            print(f"  database: primary :{primary.port}, synchronous standby :{standby.port}")
            print(f"  GLUCOBRIDGE_DATABASE_URL={services.database_url}")
            print(f"  GLUCOBRIDGE_DATABASE_READ_URL={standby.url} (the API's stale-tolerant reads)")
            print(f"  API: http://127.0.0.1:{api_port}")
            print(f"  GLUCOBRIDGE_RABBITMQ_ADMIN_URL={rabbit.management_url}")
            print(f"  logs: {logs}")
            print("  a bridge: GLUCOBRIDGE_BROKER=rabbitmq, its URL lists every node's MQTT port")
            signal.pause()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
