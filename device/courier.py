"""The courier: moves outbox batches to the broker until ingest confirms each one stored.

Re-sending is driven by progress, not by a timer per batch: while confirmations keep
arriving, nothing is sent twice, however long the backlog (a blind per-batch timer would
double the load exactly when ingest is slowest). Only when no confirmation arrives for
`stall_after` seconds while batches are in flight, or after the link to the broker was
re-established, is everything in flight published again. At most `window` batches are
in flight, far below MQTT's 65,535 message ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from core.contract import BatchAck
from device.store import BridgeStore
from device.uplink import Uplink

log = logging.getLogger(__name__)

# Batches published and not yet confirmed, at most. A sync of a full meter (1,000 records)
# is a handful of batches; a bridge back from a week offline may hold hundreds.
MAX_IN_FLIGHT = 1_000
# No confirmation for this long while batches are in flight: they are presumed lost and
# published again. Ingest confirms in milliseconds; a few seconds tolerates a busy worker.
STALL_AFTER_S = 3.0


class Courier:
    def __init__(
        self,
        store: BridgeStore,
        uplink: Uplink,
        *,
        window: int = MAX_IN_FLIGHT,
        stall_after: float = STALL_AFTER_S,
    ) -> None:
        self.store = store
        self.uplink = uplink
        self.window = window
        self.stall_after = stall_after
        self.in_flight: dict[uuid.UUID, float] = {}
        self.published = 0
        self.resent = 0
        self.confirmed = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._last_progress = time.monotonic()
        self._session_seen = -1

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Route the uplink's callbacks (network thread) into this loop."""

        def on_ack(ack: BatchAck) -> None:
            loop.call_soon_threadsafe(self._acked, ack)

        def on_ready() -> None:
            loop.call_soon_threadsafe(self._wake.set)

        self.uplink.on_ack = on_ack
        self.uplink.on_ready = on_ready

    def wake(self) -> None:
        """New batches are in the outbox."""
        self._drained.clear()
        self._wake.set()

    def _acked(self, ack: BatchAck) -> None:
        retired = self.store.retire(ack.batch_id)
        self.in_flight.pop(ack.batch_id, None)
        if retired:
            self.confirmed += 1
            self._last_progress = time.monotonic()
            if ack.rejected:
                log.warning("batch %s: ingest set aside %d readings", ack.batch_id, ack.rejected)
        self._wake.set()

    def _pump(self) -> None:
        if not self.uplink.ready.is_set():
            return
        if self.uplink.connections != self._session_seen:
            # A new connection: what was in flight on the old one may be lost.
            self._session_seen = self.uplink.connections
            if self.in_flight:
                self.resent += len(self.in_flight)
                self.in_flight.clear()
        now = time.monotonic()
        if self.in_flight and now - self._last_progress >= self.stall_after:
            log.info(
                "no confirmation for %.1f s: re-sending %d", self.stall_after, len(self.in_flight)
            )
            self.resent += len(self.in_flight)
            self.in_flight.clear()
        room = self.window - len(self.in_flight)
        if room <= 0:
            return
        batch = self.store.pending(room, exclude=self.in_flight.keys())
        if batch and not self.in_flight:
            self._last_progress = now  # the stall clock starts with the first in flight
        for entry in batch:
            self.uplink.publish_raw(entry.payload)
            self.in_flight[entry.batch_id] = now
            self.published += 1
        if not self.in_flight and self.store.unconfirmed() == 0:
            self._drained.set()

    async def run(self) -> None:
        while True:
            self._pump()
            with contextlib.suppress(TimeoutError):  # time to look for a stall
                await asyncio.wait_for(self._wake.wait(), self.stall_after / 2)
            self._wake.clear()

    async def drained(self) -> None:
        """Until the outbox is empty (every batch confirmed)."""
        while self.store.unconfirmed() > 0:
            self._drained.clear()
            self._wake.set()
            await self._drained.wait()
