"""Helpers shared by tests: a bridge on the real broker (`Bridge`: publish and wait for the
confirmation; `CourierBridge`: deliver through the real outbox and courier), readings to
send, database reads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import uvicorn

from api.app import server_config
from core.contract import BatchAck, MeterInfo, ReadingsBatch, WireReading
from core.settings import ApiSettings, BrokerKind
from core.units import Unit
from core.vocabulary import SampleLocation, SampleType
from device.courier import MAX_IN_FLIGHT, STALL_AFTER_S, Courier
from device.store import BridgeStore, OutboxEntry
from device.uplink import Uplink
from stack.local import Services
from stack.proc import free_port

# Generous: ingest flushes within milliseconds; a loaded CI machine may be slow.
CONFIRM_TIMEOUT_S = 30.0
# How long a test's HTTP client waits for an answer: a safeguard against a hung server, not a
# measure of speed (httpx's 5 s default is short for a large import on a loaded CI machine).
HTTP_TIMEOUT_S = 60.0
# A whole test's batches, through whatever fault the test causes.
DELIVERY_TIMEOUT_S = 120.0

T = TypeVar("T")


class Bridge(Uplink):
    @classmethod
    @contextlib.contextmanager
    def connect(
        cls, services: Services, bridge_id: str, patient_id: str | uuid.UUID | None = None
    ) -> Iterator[Bridge]:
        """A bridge registered to `patient_id` (a new patient when None), connected."""
        patient = uuid.UUID(str(patient_id)) if patient_id is not None else None
        bridge = cls(services.add_bridge(bridge_id, patient), bridge_id)
        with bridge:
            yield bridge

    def send(self, *batches: ReadingsBatch) -> None:
        for batch in batches:
            self.publish(batch)
        self.wait_confirmed([b.batch_id for b in batches], CONFIRM_TIMEOUT_S)


def readings(
    count: int, *, start: datetime | None = None, first_sequence: int = 1, unit: Unit = Unit.MG_DL
) -> list[WireReading]:
    """`count` plausible readings four hours apart, the last one about now; values vary so a
    mix-up shows."""
    if start is None:
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=4 * count)
    out = []
    for i in range(count):
        at = start + timedelta(hours=4 * i)
        mg_dl = 70 + (i * 37) % 180
        value = mg_dl if unit is Unit.MG_DL else round(mg_dl / 18.016, 1)
        out.append(
            WireReading(
                sequence_number=(first_sequence + i) % 0x10000,
                meter_time=at.replace(tzinfo=None),
                measured_at=at,
                value=value,
                unit=unit,
                sample_type=SampleType.CAPILLARY_PLASMA,
                sample_location=SampleLocation.FINGER,
            )
        )
    return out


def batch(bridge_id: str, serial: str, items: list[WireReading]) -> ReadingsBatch:
    return ReadingsBatch(bridge_id=bridge_id, meter=MeterInfo(serial=serial), readings=items)


def add_patient(
    database_url: str, name: str, serial: str, tz: str = "UTC", *, bridge_id: str | None = None
) -> str:
    """A patient who has claimed the meter `serial`; their bridges' readings of it count.
    With `bridge_id`, that (already registered) bridge is this patient's from now on."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO patients (display_name, timezone) VALUES (%s, %s) RETURNING id", (name, tz)
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO meters (patient_id, serial, claimed_at) VALUES (%s, %s, now())",
            (row[0], serial),
        )
        if bridge_id is not None:
            moved = conn.execute(
                "UPDATE bridges SET patient_id = %s WHERE id = %s", (row[0], bridge_id)
            )
            assert moved.rowcount == 1, f"bridge {bridge_id} is not registered"
        return str(row[0])


def bridge_patient(database_url: str, bridge_id: str) -> str:
    """The patient a bridge is registered to."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT patient_id FROM bridges WHERE id = %s", (bridge_id,)).fetchone()
        assert row is not None, f"bridge {bridge_id} is not registered"
        return str(row[0])


def claim(database_url: str, patient_id: str | uuid.UUID, serial: str) -> None:
    """The patient claims a meter (as POST .../meters does): its readings count."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO meters (patient_id, serial, claimed_at) VALUES (%s, %s, now())"
            " ON CONFLICT (patient_id, serial) DO UPDATE SET claimed_at = now()",
            (patient_id, serial),
        )
        conn.execute(
            "UPDATE readings SET awaiting_claim = false WHERE patient_id = %s AND device = %s",
            (patient_id, serial),
        )


def dead_letters(database_url: str) -> list[tuple[str, bytes, str]]:
    with psycopg.connect(database_url) as conn:
        return [
            (r[0], bytes(r[1]), r[2])
            for r in conn.execute("SELECT topic, payload, reason FROM dead_letters ORDER BY id")
        ]


def wait_for(predicate: object, timeout: float = CONFIRM_TIMEOUT_S) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


# Outboxes of test bridges live where an fsync is cheap when the machine has such a place
# (tmpfs): the store is the real one, its durability is not what these tests measure.
# mkdtemp makes a private directory in it, so a shared tmpfs is safe here.
_SHM = "/dev/shm"  # noqa: S108
_FAST_DIR = _SHM if os.path.isdir(_SHM) else None


class CourierBridge:
    """A bridge that delivers as the real one does: batches go into its SQLite outbox and the
    real `device.courier.Courier` publishes them through the real `Uplink` until ingest
    confirms each one. It runs in an event loop of its own thread, so a test can cause a
    fault while it delivers; its counters (`courier.published`, `.resent`, `.refused`,
    `.stored_confirmed`) say what the broker and ingest saw."""

    def __init__(
        self,
        mqtt_url: str,
        bridge_id: str,
        *,
        stall_after: float = STALL_AFTER_S,
        window: int = MAX_IN_FLIGHT,
        broker: BrokerKind = "mosquitto",
    ) -> None:
        self.bridge_id = bridge_id
        self.broker: BrokerKind = broker
        self.state = Path(tempfile.mkdtemp(prefix=f"{bridge_id}-", dir=_FAST_DIR))
        self.confirmed_at: dict[uuid.UUID, float] = {}
        self.acks: list[BatchAck] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=bridge_id, daemon=True)
        self.thread.start()
        self.store, self.uplink, self.courier = self._call(
            self._open, mqtt_url, stall_after, window
        )

    @classmethod
    @contextlib.contextmanager
    def connect(
        cls,
        services: Services,
        bridge_id: str,
        patient_id: str | uuid.UUID | None = None,
        **kwargs: Any,
    ) -> Iterator[CourierBridge]:
        """A bridge registered to `patient_id` (a new patient when None), delivering."""
        patient = uuid.UUID(str(patient_id)) if patient_id is not None else None
        bridge = cls(services.add_bridge(bridge_id, patient), bridge_id, **kwargs)
        try:
            yield bridge
        finally:
            bridge.close()

    def _call(self, fn: Callable[..., T], *args: object) -> T:
        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(CONFIRM_TIMEOUT_S)

    def _open(
        self, mqtt_url: str, stall_after: float, window: int
    ) -> tuple[BridgeStore, Uplink, Courier]:
        store = BridgeStore(self.state / "bridge.db")
        uplink = Uplink(mqtt_url, self.bridge_id, broker=self.broker)
        courier = Courier(store, uplink, window=window, stall_after=stall_after)
        courier.attach(self.loop)
        courier.on_confirmed = self._confirmed
        uplink.start(wait=False)
        self._task = self.loop.create_task(courier.run())
        return store, uplink, courier

    def _confirmed(self, ack: BatchAck) -> None:
        self.acks.append(ack)
        self.confirmed_at.setdefault(ack.batch_id, time.monotonic())

    def put(self, *batches: ReadingsBatch) -> None:
        """Into the outbox, in one transaction; the courier takes it from there."""
        self.put_entries([OutboxEntry.of(b) for b in batches])

    def put_entries(self, entries: list[OutboxEntry]) -> None:
        def add() -> None:
            self.store.add(entries)
            self.courier.wake()

        self._call(add)

    def publish_raw(self, payload: bytes) -> None:
        """Bytes on the readings topic outside the outbox (junk a faulty bridge sends)."""
        self._call(self.uplink.publish_raw, payload)

    def delivered(self, timeout: float = DELIVERY_TIMEOUT_S) -> None:
        """Until every batch put so far is confirmed (the outbox is empty)."""

        async def drained() -> None:
            await asyncio.wait_for(self.courier.drained(), timeout)

        asyncio.run_coroutine_threadsafe(drained(), self.loop).result(timeout + 5)

    def close(self) -> None:
        def stop() -> None:
            self._task.cancel()

        self._call(stop)
        self.uplink.close()
        self._call(self.store.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        shutil.rmtree(self.state, ignore_errors=True)


def stored_identities(database_url: str, serial_prefix: str) -> list[tuple[str, int]]:
    """(meter serial, sequence number) of every stored reading, duplicates included."""
    with psycopg.connect(database_url) as conn:
        return sorted(
            conn.execute(
                "SELECT device, sequence_number FROM readings WHERE device LIKE %s",
                (serial_prefix + "%",),
            ).fetchall()
        )


@contextlib.contextmanager
def serve_api(settings: ApiSettings) -> Iterator[str]:
    """The API served by uvicorn on a free port in a thread; yields its base URL, so
    requests go over a real socket."""
    port = free_port()
    server = uvicorn.Server(
        server_config(settings.model_copy(update={"host": "127.0.0.1", "port": port}))
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
