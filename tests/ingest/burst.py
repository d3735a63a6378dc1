"""Many bridges publishing at once, as fast as the broker takes it, each re-sending what
stays unconfirmed: shared by the burst fault test and the ingest benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import IO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from core.contract import Confirmations, acks_topic, readings_topic
from core.settings import MqttEndpoint

# paho's window of unacknowledged publishes per bridge: large enough to keep the broker
# busy, far below MQTT's 65,535 message ids.
MAX_INFLIGHT = 1000
# A bridge re-sends what is unconfirmed once no confirmation has come for this long.
STALL_S = 3.0


@dataclass
class BurstBridge:
    """A bridge with its batches already serialised; it publishes them all and collects
    confirmations (and when each came)."""

    bridge_id: str
    url: str
    payloads: dict[uuid.UUID, bytes]
    sent_at: dict[uuid.UUID, float] = field(default_factory=dict)
    confirmed_at: dict[uuid.UUID, float] = field(default_factory=dict)
    resent: int = 0

    def __post_init__(self) -> None:
        endpoint = MqttEndpoint.parse(self.url)
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.bridge_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(endpoint.username, endpoint.password)
        self.client.max_inflight_messages_set(MAX_INFLIGHT)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        self.client.subscribe(acks_topic(self.bridge_id), qos=1)
        if not self.subscribed.wait(10):
            raise RuntimeError(f"{self.bridge_id} could not subscribe to its acks")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            confirmations = Confirmations.model_validate_json(msg.payload)
        except ValidationError:
            return
        now = time.monotonic()
        with self.lock:
            for ack in confirmations.batches:
                self.confirmed_at.setdefault(ack.batch_id, now)

    def publish(self, batch_id: uuid.UUID) -> mqtt.MQTTMessageInfo:
        self.sent_at.setdefault(batch_id, time.monotonic())
        return self.client.publish(readings_topic(self.bridge_id), self.payloads[batch_id], qos=1)

    def unconfirmed(self) -> list[uuid.UUID]:
        with self.lock:
            return [b for b in self.payloads if b not in self.confirmed_at]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(bridges: list[BurstBridge]) -> None:
    """Every batch once, waiting for the broker's PUBACKs (which do not mean stored)."""
    infos = [b.publish(i) for b in bridges for i in b.payloads]
    for info in infos:
        info.wait_for_publish(120)


def until_confirmed(bridges: list[BurstBridge], timeout: float) -> None:
    """Wait for every confirmation, re-sending whatever is unconfirmed when they stall."""
    deadline = time.monotonic() + timeout
    last_count, last_progress = -1, time.monotonic()
    while True:
        pending = [(b, i) for b in bridges for i in b.unconfirmed()]
        if not pending:
            return
        if len(pending) != last_count:
            last_count, last_progress = len(pending), time.monotonic()
        elif time.monotonic() - last_progress > STALL_S:
            for bridge, batch_id in pending:
                bridge.publish(batch_id)
                bridge.resent += 1
            last_progress = time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(pending)} batches never confirmed")
        time.sleep(0.1)


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
        return [_status_kb(p.pid, "VmHWM") / 1024 for p in self.procs]

    def memory_mb(self) -> list[float]:
        return [_status_kb(p.pid, "VmRSS") / 1024 for p in self.procs]

    def kill(self) -> None:
        """SIGKILL: the broker keeps their sessions and queues what arrives meanwhile."""
        for proc in self.procs:
            proc.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
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


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")
