"""A steady stream of readings from several bridges through the cluster, each through its real
outbox and courier, so a test can cause a fault in the middle of it and then count: every
reading published is stored exactly once, every outbox is empty."""

from __future__ import annotations

import threading
import time

from stack.cluster import ClusterServices
from tests.support import CourierBridge, batch, readings, stored_identities, wait_for

BRIDGES = 3
BATCHES_PER_BRIDGE = 60
READINGS_PER_BATCH = 10
# One batch per bridge this often: the stream lasts a few seconds, long enough for a fault
# to land in its middle.
PUT_EVERY_S = 0.08
DELIVERY_TIMEOUT_S = 120.0


class Flow:
    def __init__(
        self, services: ClusterServices, prefix: str, *, first_node: int = 0, bridges: int = BRIDGES
    ) -> None:
        self.services = services
        self.prefix = prefix
        self.expected: list[tuple[str, int]] = []
        self.batches = []
        self.bridges: list[CourierBridge] = []
        for b in range(bridges):
            bridge_id = f"{prefix}-home-{b}"
            services.add_bridge(bridge_id)
            serial = f"{prefix}-meter-{b}"
            items = readings(BATCHES_PER_BRIDGE * READINGS_PER_BATCH)
            self.expected += [(serial, r.sequence_number) for r in items]
            self.batches.append(
                [
                    batch(bridge_id, serial, items[i : i + READINGS_PER_BATCH])
                    for i in range(0, len(items), READINGS_PER_BATCH)
                ]
            )
            url = services.rabbit.bridge_url(bridge_id, first=first_node)
            self.bridges.append(CourierBridge(url, bridge_id, broker="rabbitmq"))
        self.expected.sort()
        self.feeder = threading.Thread(target=self._feed, name=f"{prefix}-feeder", daemon=True)

    def _feed(self) -> None:
        for i in range(BATCHES_PER_BRIDGE):
            for bridge, batches in zip(self.bridges, self.batches, strict=True):
                bridge.put(batches[i])
            time.sleep(PUT_EVERY_S)

    def start(self) -> Flow:
        self.feeder.start()
        return self

    def confirmed(self) -> int:
        return sum(len(b.confirmed_at) for b in self.bridges)

    @property
    def total(self) -> int:
        return sum(len(b) for b in self.batches)

    def until_confirmed(self, share: float) -> None:
        """Until this share of all batches is confirmed: the fault lands mid-stream."""
        wait_for(lambda: self.confirmed() >= share * self.total, timeout=DELIVERY_TIMEOUT_S)

    def finish(self) -> None:
        """Every batch put, every outbox drained (each batch confirmed stored)."""
        self.feeder.join(DELIVERY_TIMEOUT_S)
        for bridge in self.bridges:
            bridge.delivered(DELIVERY_TIMEOUT_S)

    def stored(self) -> list[tuple[str, int]]:
        """Every stored reading of this flow, duplicates included."""
        return stored_identities(self.services.database_url, f"{self.prefix}-meter-")

    def close(self) -> None:
        for bridge in self.bridges:
            bridge.close()
