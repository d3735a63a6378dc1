"""The bridge's durable state in one SQLite file (WAL): bonded meters, per-meter
checkpoints, and the outbox of batches not yet confirmed stored by ingest.

A sync's batches and the checkpoint that follows them are committed in one transaction:
after a crash either both are on disk or neither is, so a record is never skipped and the
outbox re-sends whatever was committed. `synchronous=FULL` makes a commit survive a power
cut (a Raspberry Pi's SD card), at the price of an fsync per sync, which is cheap.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.contract import ReadingsBatch
from device.gls import Operator
from device.sync import Checkpoint

# Another process (the `bridge pair` command) may hold the write lock briefly.
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meters (
    address TEXT PRIMARY KEY,
    name TEXT,
    serial TEXT,
    bonded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    address TEXT PRIMARY KEY,
    serial TEXT NOT NULL,
    last_sequence INTEGER NOT NULL,
    last_stamp TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- RACP operators the meter answered "not supported", as comma-separated numbers.
    unsupported_operators TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- publishing order
    batch_id TEXT NOT NULL UNIQUE,
    meter_serial TEXT NOT NULL,
    readings INTEGER NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class BondedMeter:
    address: str
    name: str | None
    serial: str | None


@dataclass(frozen=True)
class OutboxEntry:
    batch_id: uuid.UUID
    meter_serial: str
    readings: int  # readings and held records
    payload: bytes
    seq: int = 0  # publishing order, set by the outbox

    @classmethod
    def of(cls, batch: ReadingsBatch) -> OutboxEntry:
        return cls(
            batch.batch_id,
            batch.meter.serial,
            len(batch.readings) + len(batch.held),
            batch.to_json(),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _operator_text(operators: Iterable[Operator]) -> str:
    return ",".join(str(int(o)) for o in sorted(operators))


def _operators(text: str) -> frozenset[Operator]:
    return frozenset(Operator(int(part)) for part in text.split(",") if part)


class BridgeStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(checkpoints)")}
        if "unsupported_operators" not in columns:  # a store written before it was kept
            self.db.execute(
                "ALTER TABLE checkpoints ADD COLUMN unsupported_operators TEXT NOT NULL DEFAULT ''"
            )

    def close(self) -> None:
        self.db.close()

    # -- bonded meters -------------------------------------------------------------------

    def add_bonded(self, address: str, name: str | None, serial: str | None) -> None:
        self.db.execute(
            "INSERT INTO meters (address, name, serial, bonded_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (address) DO UPDATE SET name = excluded.name, serial = excluded.serial",
            (address, name, serial, _now()),
        )

    def bonded(self) -> dict[str, BondedMeter]:
        rows = self.db.execute("SELECT address, name, serial FROM meters ORDER BY bonded_at")
        return {r[0]: BondedMeter(r[0], r[1], r[2]) for r in rows}

    def forget(self, address: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM meters WHERE address = ?", (address,))
            self.db.execute("DELETE FROM checkpoints WHERE address = ?", (address,))

    # -- checkpoints ---------------------------------------------------------------------

    def checkpoint(self, address: str) -> Checkpoint | None:
        row = self.db.execute(
            "SELECT serial, last_sequence, last_stamp, unsupported_operators FROM checkpoints"
            " WHERE address = ?",
            (address,),
        ).fetchone()
        if row is None:
            return None
        return Checkpoint(row[0], row[1], row[2], _operators(row[3]))

    def remember_unsupported(self, address: str, operators: Iterable[Operator]) -> None:
        """Keep what the meter refused with its checkpoint, so it is not asked again."""
        self.db.execute(
            "UPDATE checkpoints SET unsupported_operators = ? WHERE address = ?",
            (_operator_text(operators), address),
        )

    # -- outbox --------------------------------------------------------------------------

    def commit_sync(
        self, address: str, batches: Iterable[ReadingsBatch], checkpoint: Checkpoint | None
    ) -> int:
        """Write a sync's batches and move the meter's checkpoint, atomically (a sync whose
        records carry no sequence number leaves the checkpoint where it was)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            count = self._insert(OutboxEntry.of(b) for b in batches)
            if checkpoint is not None:
                self.db.execute(
                    "INSERT INTO checkpoints (address, serial, last_sequence, last_stamp,"
                    " updated_at, unsupported_operators) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (address) DO UPDATE SET"
                    " serial = excluded.serial, last_sequence = excluded.last_sequence,"
                    " last_stamp = excluded.last_stamp, updated_at = excluded.updated_at,"
                    " unsupported_operators = excluded.unsupported_operators",
                    (
                        address,
                        checkpoint.serial,
                        checkpoint.last_sequence,
                        checkpoint.last_stamp,
                        _now(),
                        _operator_text(checkpoint.unsupported),
                    ),
                )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return count

    def add(self, entries: Iterable[OutboxEntry]) -> int:
        """Batches already serialised, into the outbox in one transaction (no checkpoint)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            return self._insert(entries)

    def _insert(self, entries: Iterable[OutboxEntry]) -> int:
        count = 0
        for entry in entries:
            self.db.execute(
                "INSERT INTO outbox (batch_id, meter_serial, readings, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (str(entry.batch_id), entry.meter_serial, entry.readings, entry.payload, _now()),
            )
            count += 1
        return count

    def pending(self, limit: int, after: int = 0) -> list[OutboxEntry]:
        """The oldest unconfirmed batches after publishing position `after`."""
        return [
            OutboxEntry(uuid.UUID(row[0]), row[1], row[2], bytes(row[3]), row[4])
            for row in self.db.execute(
                "SELECT batch_id, meter_serial, readings, payload, seq FROM outbox"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
        ]

    def payload(self, batch_id: uuid.UUID) -> bytes | None:
        """A batch's payload, or None once it was retired."""
        row = self.db.execute(
            "SELECT payload FROM outbox WHERE batch_id = ?", (str(batch_id),)
        ).fetchone()
        return bytes(row[0]) if row else None

    def retire(self, batch_id: uuid.UUID) -> bool:
        """Drop a batch ingest confirmed; False if it was not (or no longer) in the outbox."""
        cursor = self.db.execute("DELETE FROM outbox WHERE batch_id = ?", (str(batch_id),))
        return cursor.rowcount > 0

    def unconfirmed(self) -> int:
        row = self.db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0]) if row else 0
