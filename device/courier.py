"""The courier: the bridge's one delivery mechanism. It moves outbox batches to the broker
until ingest confirms each one stored, and re-sends only what there is reason to think lost,
at most once per outage.

A batch is published again when:

* the broker refused it: a PUBACK with a failure code, or 0x10 "no matching subscribers"
  (MQTT v5, 3.4.2.1: the broker accepted the publish and dropped it, as after a broker
  restart before ingest re-subscribed). While that lasts, one batch at a time is sent as a
  probe, with backoff; once a probe is routed, everything refused is sent again at once, so
  recovery needs no stall timeout;
* the connection to the broker was re-established after the broker had routed it: a broker
  that went away may have lost it. paho itself re-sends what the broker had not yet
  acknowledged;
* confirmations stalled: none for `stall_after` seconds while it was in flight. Each batch is
  re-sent this way at most once until a confirmation arrives again, however long the outage
  (a database outage holds every batch in the broker and ingest, safe: re-sending them all
  every few seconds only multiplied the load), and no sooner than its own backoff since its
  last send;
* it stayed unconfirmed `RESEND_CAP_S`: by then a worker's session holding it has expired.

So over an outage the broker sees at most twice the batches in flight (the first publish
and one re-send), plus a few probes. At most `window` batches are in flight, far below MQTT's
65,535 message ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from paho.mqtt.enums import MQTTErrorCode

from core.backoff import backoff_delay
from core.contract import BatchAck
from device.store import BridgeStore
from device.uplink import Uplink

log = logging.getLogger(__name__)

# Batches published and not yet confirmed, at most. A sync of a full meter (1,000 records)
# is a handful of batches; a bridge back from a week offline may hold hundreds.
MAX_IN_FLIGHT = 1_000
# No confirmation for this long while batches are in flight: they may be lost. Ingest
# confirms in milliseconds; a few seconds tolerates a busy worker.
STALL_AFTER_S = 3.0
# A batch unconfirmed this long since it was last sent is sent again whatever else happens:
# ingest's broker sessions expire after 15 minutes (ingest.worker.SESSION_EXPIRY_S), taking
# what they held with them.
RESEND_CAP_S = 15 * 60.0
# Probes while the broker refuses (no subscribers): quick first, a broker restart takes a
# second or two; then at most this far apart.
PROBE_BASE_S = 0.2
PROBE_CAP_S = 5.0
# How often the courier looks at its clocks (stalls, probes) when nothing wakes it.
TICK_S = 0.1
# PUBACK reason codes below 0x80 are successes, but 0x10 says no subscriber took the message.
NO_MATCHING_SUBSCRIBERS = 0x10
FAILURE_CODES = 0x80


class Routing(enum.Enum):
    """Whether the broker passes our publishes on to ingest, as its PUBACKs say."""

    UNKNOWN = "unknown"  # a new connection: the first publish is a probe
    ROUTED = "routed"
    REFUSED = "refused"  # no matching subscribers, or a failure code


@dataclass
class _InFlight:
    sends: int = 0
    last_sent: float = 0.0
    mid: int | None = None
    accepted: bool = False  # the broker routed the last publish (PUBACK 0x00)
    due: bool = True  # to be published (again)
    stall_resends: int = 0  # re-sent for a stall since the last confirmation

    def backoff(self, stall_after: float) -> float:
        return float(min(stall_after * 2.0 ** max(self.sends - 1, 0), RESEND_CAP_S))


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
        self.in_flight: dict[uuid.UUID, _InFlight] = {}
        self.routing = Routing.UNKNOWN
        # What happened, for the log and tests: publishes (first and again), confirmations
        # (every one received; `stored` summed, so the rows a bridge stored add up).
        self.published = 0
        self.resent = 0
        self.refused = 0
        self.probes = 0
        self.confirmed = 0
        self.acks_received = 0
        self.stored_confirmed = 0
        self._by_mid: dict[int, uuid.UUID] = {}
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._last_progress = time.monotonic()
        self._session_seen = -1
        self._maybe_more = True  # the outbox may hold batches not yet in flight
        self._taken_upto = 0  # the outbox position of the newest batch taken in flight
        # Told of every confirmation (tests and benchmarks time them); must not block.
        self.on_confirmed: Callable[[BatchAck], None] | None = None
        self._probe_attempt = 0
        self._next_probe = 0.0
        self._probe_mid: int | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Route the uplink's callbacks (network thread) into this loop."""

        def on_ack(ack: BatchAck) -> None:
            loop.call_soon_threadsafe(self._acked, ack)

        def on_ready() -> None:
            loop.call_soon_threadsafe(self._wake.set)

        def on_published(mid: int, reason: int) -> None:
            loop.call_soon_threadsafe(self._published, mid, reason)

        self.uplink.on_ack = on_ack
        self.uplink.on_ready = on_ready
        self.uplink.on_published = on_published

    def wake(self) -> None:
        """New batches are in the outbox."""
        self._maybe_more = True
        self._drained.clear()
        self._wake.set()

    # -- what the broker and ingest say ----------------------------------------------------

    def _published(self, mid: int, reason: int) -> None:
        if mid == self._probe_mid:
            self._probe_mid = None
        batch_id = self._by_mid.pop(mid, None)
        if batch_id is None:
            return  # not a batch (the retained status, say, which nobody subscribes to)
        batch = self.in_flight.get(batch_id)
        if reason == NO_MATCHING_SUBSCRIBERS or reason >= FAILURE_CODES:
            self.refused += 1
            if self.routing is not Routing.REFUSED:
                log.warning("broker did not route a batch (PUBACK 0x%02x): probing", reason)
            self.routing = Routing.REFUSED
            if batch is not None:
                batch.accepted, batch.due = False, True
        else:
            if batch is not None:
                batch.accepted = True
            self._routed()
        self._wake.set()

    def _routed(self) -> None:
        if self.routing is not Routing.ROUTED:
            log.info("broker routes batches again")
        self.routing = Routing.ROUTED
        self._probe_attempt = 0

    def _acked(self, ack: BatchAck) -> None:
        if self.on_confirmed is not None:
            self.on_confirmed(ack)
        self.acks_received += 1
        self.stored_confirmed += ack.stored
        retired = self.store.retire(ack.batch_id)
        batch = self.in_flight.pop(ack.batch_id, None)
        if batch is not None and batch.mid is not None:
            self._by_mid.pop(batch.mid, None)
        if retired:
            self.confirmed += 1
            self._maybe_more = True
            self._last_progress = time.monotonic()
            for waiting in self.in_flight.values():
                waiting.stall_resends = 0
            self._routed()  # ingest stored it: the broker routes
            if ack.rejected:
                log.warning("batch %s: ingest set aside %d readings", ack.batch_id, ack.rejected)
        self._wake.set()

    # -- deciding what to send ------------------------------------------------------------

    def _pump(self) -> None:
        if not self.uplink.ready.is_set():
            return
        now = time.monotonic()
        if self.uplink.connections != self._session_seen:
            self._new_connection()
        self._find_lost(now)
        room = self.window - len(self.in_flight)
        if room > 0 and self._maybe_more:
            fresh = self.store.pending(room, after=self._taken_upto)
            self._maybe_more = len(fresh) == room
            if fresh and not self.in_flight:
                self._last_progress = now  # the stall clock starts with the first in flight
            for entry in fresh:
                self.in_flight[entry.batch_id] = _InFlight()
                self._taken_upto = entry.seq
        due = [batch_id for batch_id, b in self.in_flight.items() if b.due]
        if due and self.routing is not Routing.ROUTED:
            due = self._probe(now, due)
        for batch_id in due:
            self._send(batch_id, now)
        if not self.in_flight and not self._maybe_more and self.store.unconfirmed() == 0:
            self._drained.set()

    def _new_connection(self) -> None:
        """What the broker had routed may have gone with it; what it had not, paho re-sends."""
        first = self._session_seen < 0
        self._session_seen = self.uplink.connections
        self.routing = Routing.UNKNOWN
        self._probe_mid = None
        self._next_probe = 0.0
        if first:
            return
        for batch in self.in_flight.values():
            if batch.accepted:
                batch.accepted, batch.due = False, True

    def _find_lost(self, now: float) -> None:
        """Mark for re-sending what a stall (or the cap) says may be lost."""
        stalled = now - self._last_progress >= self.stall_after
        marked = 0
        for batch in self.in_flight.values():
            if batch.due or not batch.accepted:
                continue
            since = now - batch.last_sent
            if since >= RESEND_CAP_S or (
                stalled and batch.stall_resends == 0 and since >= batch.backoff(self.stall_after)
            ):
                batch.due = True
                batch.stall_resends += 1
                marked += 1
        if marked:
            log.info("no confirmation for %.1f s: re-sending %d batches", self.stall_after, marked)
            self._last_progress = now  # the next stall is counted from this re-send

    def _probe(self, now: float, due: list[uuid.UUID]) -> list[uuid.UUID]:
        """While the broker has not shown it routes: one batch at a time, with backoff."""
        if self._probe_mid is not None or now < self._next_probe:
            return []
        self._next_probe = now + backoff_delay(
            self._probe_attempt, base_s=PROBE_BASE_S, cap_s=PROBE_CAP_S
        )
        self._probe_attempt += 1
        self.probes += 1
        return due[:1]

    def _send(self, batch_id: uuid.UUID, now: float) -> None:
        batch = self.in_flight[batch_id]
        payload = self.store.payload(batch_id)
        if payload is None:  # retired meanwhile
            del self.in_flight[batch_id]
            return
        info = self.uplink.publish_raw(payload)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return  # paho's queue is full: stays due
        if batch.mid is not None:
            self._by_mid.pop(batch.mid, None)
        batch.mid = info.mid
        self._by_mid[info.mid] = batch_id
        if self.routing is not Routing.ROUTED:
            self._probe_mid = info.mid
        batch.due, batch.accepted = False, False
        batch.sends += 1
        batch.last_sent = now
        self.published += 1
        if batch.sends > 1:
            self.resent += 1

    async def run(self) -> None:
        while True:
            self._pump()
            with contextlib.suppress(TimeoutError):  # time to look at the clocks
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            self._wake.clear()

    async def drained(self) -> None:
        """Until the outbox is empty (every batch confirmed)."""
        while self.store.unconfirmed() > 0 or self.in_flight:
            self._drained.clear()
            self._wake.set()
            await self._drained.wait()
