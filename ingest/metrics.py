"""What an ingest worker counts, exposed for Prometheus on GLUCOBRIDGE_METRICS_PORT."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Write latency buckets: a healthy batch commits in milliseconds; seconds mean trouble.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.received = Counter(
            "glucobridge_ingest_messages_received", "Messages taken off the broker", registry=r
        )
        self.stored = Counter(
            "glucobridge_ingest_readings_stored", "Readings newly stored", registry=r
        )
        self.duplicates = Counter(
            "glucobridge_ingest_readings_duplicate",
            "Readings already stored (redelivery or re-sync)",
            registry=r,
        )
        self.dead_lettered = Counter(
            "glucobridge_ingest_dead_lettered",
            "Payloads or readings set aside in dead_letters",
            registry=r,
        )
        self.batch_seconds = Histogram(
            "glucobridge_ingest_batch_seconds",
            "Time to write and commit one batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag_seconds = Gauge(
            "glucobridge_ingest_lag_seconds",
            "Age of the oldest message of the last committed batch",
            registry=r,
        )
        self.inbox = Gauge(
            "glucobridge_ingest_inbox_messages",
            "Messages received and not yet committed",
            registry=r,
        )
        self.db_retries = Counter(
            "glucobridge_ingest_database_retries",
            "Writes retried because the database was unavailable",
            registry=r,
        )

    def serve(self, port: int) -> None:
        start_http_server(port, addr="127.0.0.1", registry=self.registry)
