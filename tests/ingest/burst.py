"""Many bridges publishing at once, as fast as the broker takes it, each through the real
outbox and courier (tests.support.CourierBridge): shared by the burst fault test and the
ingest benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import IO

from core.settings import BrokerKind
from device.store import OutboxEntry
from tests.support import CourierBridge

# A burst bridge's meter, as its outbox names it.
BURST_METER = "burst"


class BurstBridge:
    """A bridge with its batches already serialised: `publish` puts them in its outbox, the
    courier delivers them; when each was put and confirmed is kept for latency figures."""

    def __init__(
        self,
        bridge_id: str,
        url: str,
        payloads: dict[uuid.UUID, bytes],
        broker: BrokerKind = "mosquitto",
    ) -> None:
        self.bridge_id = bridge_id
        self.payloads = payloads
        self.sent_at: dict[uuid.UUID, float] = {}
        self.bridge = CourierBridge(url, bridge_id, broker=broker)

    @property
    def confirmed_at(self) -> dict[uuid.UUID, float]:
        return self.bridge.confirmed_at

    @property
    def resent(self) -> int:
        return self.bridge.courier.resent

    @property
    def published(self) -> int:
        return self.bridge.courier.published

    def publish(self, *batch_ids: uuid.UUID) -> None:
        now = time.monotonic()
        for batch_id in batch_ids:
            self.sent_at.setdefault(batch_id, now)
        self.bridge.put_entries(
            [OutboxEntry(b, BURST_METER, 1, self.payloads[b]) for b in batch_ids]
        )

    def unconfirmed(self) -> list[uuid.UUID]:
        return [b for b in self.payloads if b not in self.confirmed_at]

    def close(self) -> None:
        self.bridge.close()


def publish_all(bridges: list[BurstBridge]) -> None:
    """Every batch into its bridge's outbox; the couriers start publishing at once."""
    for bridge in bridges:
        bridge.publish(*bridge.payloads)


def until_confirmed(bridges: list[BurstBridge], timeout: float) -> None:
    """Until every bridge's outbox is empty: each batch confirmed stored."""
    deadline = time.monotonic() + timeout
    for bridge in bridges:
        bridge.bridge.delivered(max(0.0, deadline - time.monotonic()))
    missing = sum(len(b.unconfirmed()) for b in bridges)
    if missing:
        raise AssertionError(f"{missing} batches never confirmed")


class WorkerProcesses:
    """`glucobridge ingest` worker processes, started and stopped as a real deployment's."""

    def __init__(self, database_url: str, mqtt_url: str, client_id: str) -> None:
        # Their own share group: the sessions of workers stopped here linger on the broker
        # for a while (as a restart wants) and must not be handed later runs' readings.
        self.env = dict(
            os.environ,
            GLUCOBRIDGE_DATABASE_URL=database_url,
            GLUCOBRIDGE_MQTT_URL=mqtt_url,
            GLUCOBRIDGE_SHARE_GROUP=client_id,
        )
        self.procs: list[subprocess.Popen[str]] = []
        self.drains: list[threading.Thread] = []

    def start(self, count: int) -> None:
        """Start `count` workers and wait until each has subscribed."""
        for index in range(count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "stack", "ingest", "--index", str(index)],
                env=self.env,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert proc.stderr is not None
            for line in proc.stderr:
                if "subscribed to" in line:
                    break
            else:
                raise RuntimeError(f"worker {index} exited before subscribing")
            drain = threading.Thread(target=_drain, args=(proc.stderr,), daemon=True)
            drain.start()  # a full pipe would stall the worker
            self.procs.append(proc)
            self.drains.append(drain)

    def peak_memory_mb(self) -> list[float]:
        return [status_kb(p.pid, "VmHWM") / 1024 for p in self.procs]

    def memory_mb(self) -> list[float]:
        return [status_kb(p.pid, "VmRSS") / 1024 for p in self.procs]

    def kill(self) -> None:
        """SIGKILL: the broker keeps their sessions and queues what arrives meanwhile."""
        for proc in self.procs:
            proc.send_signal(signal.SIGKILL)
        self._reap()

    def pause(self) -> None:
        """Freeze every worker (SIGSTOP), as a stalled process: its broker session stays."""
        for proc in self.procs:
            proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        for proc in self.procs:
            proc.terminate()
        self._reap()

    def _reap(self) -> None:
        for proc in self.procs:
            proc.wait(30)
        for drain in self.drains:
            drain.join(10)
        self.procs, self.drains = [], []


def _drain(stream: IO[str]) -> None:
    with stream:
        for line in stream:
            if "level=error" in line or "Traceback" in line or "Error" in line:
                print("worker:", line.rstrip(), file=sys.stderr)


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")
