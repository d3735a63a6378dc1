"""What both ingest workers (MQTT: ingest.worker, AMQP: ingest.amqp_worker) do alike between
their broker and the one writer: an inbox cut into batches, decoding, writing until the
database commits, the per-bridge confirmations, the metrics of a commit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import psycopg

from core.backoff import backoff_delay
from core.contract import BatchAck, Confirmations
from core.intake import (
    BatchOutcome,
    DecodedBatch,
    Rejected,
    decode_bridge_message,
    write_isolating_bad_batches,
)
from core.settings import IngestSettings
from ingest.metrics import IngestMetrics

log = logging.getLogger("glucobridge.ingest")

Connection = psycopg.Connection[tuple[object, ...]]


class Arrival(Protocol):
    """A message as a worker received it."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...

    @property
    def received(self) -> float: ...  # time.monotonic() at arrival


A = TypeVar("A", bound=Arrival)


@dataclass
class Inbox(Generic[A]):
    """Messages received and not yet written, cut into batches by count, bytes and age."""

    settings: IngestSettings
    metrics: IngestMetrics
    items: list[A] = field(default_factory=list)
    size_bytes: int = 0  # payload bytes held, kept as messages come and go

    def add(self, item: A) -> None:
        self.items.append(item)
        self.size_bytes += len(item.payload)

    def clear(self) -> None:
        self.items, self.size_bytes = [], 0

    def __len__(self) -> int:
        return len(self.items)

    def full(self) -> bool:
        """A batch's worth is here: no reason to wait for more."""
        return (
            len(self.items) >= self.settings.batch_max_messages
            or self.size_bytes >= self.settings.batch_max_bytes
        )

    def due_in(self, poll_s: float) -> float:
        """How long the loop may wait for more before the oldest message must be written."""
        if not self.items:
            return poll_s
        due = self.items[0].received + self.settings.batch_max_wait_s
        return max(0.0, min(poll_s, due - time.monotonic()))

    def take(self) -> list[A]:
        """The head once it is full enough or its oldest message waited enough."""
        if not self.items:
            return []
        waited = time.monotonic() - self.items[0].received
        if not self.full() and waited < self.settings.batch_max_wait_s:
            return []
        size, limit = self.settings.batch_max_messages, self.settings.batch_max_bytes
        taken, held = 0, 0
        for item in self.items[:size]:
            if taken and held + len(item.payload) > limit:
                break
            taken += 1
            held += len(item.payload)
        batch, self.items = self.items[:taken], self.items[taken:]
        self.size_bytes -= held
        self.metrics.received.inc(len(batch))
        self.metrics.inbox.set(len(self.items))
        return batch


def pumping(
    pump: Callable[[float], None], stopping: Callable[[], bool], poll_s: float
) -> Callable[[float], bool]:
    """A `wait(seconds)` for `write_until_committed`: keeps the broker link alive by pumping
    its network loop a poll at a time; False once the worker is stopping."""

    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if stopping():
                return False
            pump(min(poll_s, deadline - time.monotonic()))
        return not stopping()

    return wait


def decode_all(arrivals: list[A]) -> tuple[list[DecodedBatch], list[Rejected]]:
    """Each message decoded; what cannot be read is kept to be dead-lettered with its batch."""
    batches: list[DecodedBatch] = []
    rejected: list[Rejected] = []
    for arrival in arrivals:
        result = decode_bridge_message(arrival.topic, arrival.payload)
        if isinstance(result, Rejected):
            log.warning("dead-lettered message on %s: %s", arrival.topic, result.reason)
            rejected.append(result)
        else:
            batches.append(result)
    return batches, rejected


@dataclass
class Committed:
    conn: Connection
    outcomes: list[BatchOutcome]
    rejected: list[Rejected]  # messages that could not be read, dead-lettered in the write
    started: float  # time.monotonic() when the write that committed began


def store_until_committed(
    conn: Connection | None,
    settings: IngestSettings,
    metrics: IngestMetrics,
    arrivals: list[A],
    wait: Callable[[float], bool],
) -> Committed | None:
    """Decode the messages and write them through the one writer, again and again while the
    database is down (the messages stay unacknowledged, so the broker stops sending past its
    limit). `wait(s)` keeps the broker link alive for `s` seconds and says False once the
    worker is stopping: then None, and nothing is acknowledged."""
    batches, rejected = decode_all(arrivals)
    attempt = 0
    while True:
        started = time.monotonic()
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(settings.database_url)
            outcomes = write_isolating_bad_batches(conn, batches, rejected)
            return Committed(conn, outcomes, rejected, started)
        except psycopg.OperationalError as exc:
            delay = backoff_delay(attempt)
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.warning("database unavailable (%s); retrying in %.1f s", first_line, delay)
            metrics.db_retries.inc()
            if conn is not None:
                conn.close()
            conn = None
            attempt += 1
            if not wait(delay):
                return None


def confirmations(outcomes: list[BatchOutcome]) -> dict[str, bytes]:
    """One confirmation message per bridge, listing its batches the commit covered."""
    by_bridge: dict[str, list[BatchAck]] = {}
    for o in outcomes:
        ack = BatchAck(
            batch_id=o.batch_id,
            stored=o.stored,
            duplicates=o.duplicates,
            rejected=o.rejected,
            held=o.held,
        )
        by_bridge.setdefault(o.bridge_id, []).append(ack)
    return {b: Confirmations(batches=acks).to_json() for b, acks in by_bridge.items()}


def count_commit(metrics: IngestMetrics, arrivals: list[A], committed: Committed) -> None:
    """The commit in the worker's metrics and debug log."""
    outcomes = committed.outcomes
    metrics.batch_seconds.observe(time.monotonic() - committed.started)
    metrics.lag_seconds.set(time.monotonic() - arrivals[0].received)
    stored = sum(o.stored for o in outcomes)
    duplicates = sum(o.duplicates for o in outcomes)
    dead = len(committed.rejected) + sum(o.rejected for o in outcomes)
    metrics.stored.inc(stored)
    metrics.duplicates.inc(duplicates)
    metrics.dead_lettered.inc(dead)
    log.debug(
        "committed %d messages: %d stored, %d duplicates, %d dead-lettered",
        len(arrivals),
        stored,
        duplicates,
        dead,
    )
