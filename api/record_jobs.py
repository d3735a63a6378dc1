"""The API's background jobs on a patient's record: archives to build, erasures to finish.

A job is a database row (`record_archives`, `erasures`), so it outlives the process that
accepted it: the runner, started by the app's lifespan, takes queued archives, archives a
process left half built (its lease ran out), and erasures left half done, and finishes them.
One visible loop: take a job, run it, sleep until woken or the poll interval passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta

import psycopg
from psycopg_pool import AsyncConnectionPool

from api import audit_log as audit
from api import erasure, record_archive
from api.broker_admin import BrokerAdminError
from api.problems import ProblemError
from core.settings import ApiSettings

log = logging.getLogger(__name__)

# A request wakes the runner at once; this poll finds jobs a stopped process left behind.
POLL_S = 2.0
# An archive building longer than this was left by a process that stopped: built again.
# A year of CGM readings zips in seconds; the lease is generous for a loaded machine.
ARCHIVE_LEASE = timedelta(minutes=5)
# After a failed erasure step (the broker unreachable), wait this long before retrying.
ERASURE_RETRY_S = 10.0

_TAKE_ARCHIVE = """
UPDATE record_archives SET status = 'building', started_at = now(), files_done = 0
WHERE id = (
    SELECT id FROM record_archives
    WHERE status = 'queued' OR (status = 'building' AND started_at < now() - %(lease)s)
    ORDER BY created_at
    FOR UPDATE SKIP LOCKED
    LIMIT 1
)
RETURNING id, patient_id
"""
_PROGRESS = "UPDATE record_archives SET files_done = %s, files_total = %s WHERE id = %s"
_FINISH = """
UPDATE record_archives
SET status = 'ready', content = %(content)s, finished_at = now(),
    expires_at = now() + %(valid)s
WHERE id = %(id)s
"""
_FAIL = (
    "UPDATE record_archives SET status = 'failed', error = %s, finished_at = now() WHERE id = %s"
)
_EXPIRE = """
UPDATE record_archives SET status = 'expired', content = NULL
WHERE status = 'ready' AND expires_at < now()
"""
_UNFINISHED_ERASURES = "SELECT patient_id FROM erasures WHERE finished_at IS NULL"
# The record that an erasure happened is kept for the retention period, then forgotten.
_FORGET_ERASURES = "DELETE FROM erasures WHERE finished_at IS NOT NULL AND keep_until < now()"


class RecordJobs:
    def __init__(self, pool: AsyncConnectionPool, settings: ApiSettings) -> None:
        self._pool = pool
        self._settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry_erasures_after = 0.0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="record-jobs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                worked = await self._one_archive()
                await self._erasures()
            except psycopg.Error as exc:
                # The database away (a restart, a failover): the jobs wait in their rows.
                log.warning("record jobs: database unavailable, retrying: %s", exc)
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)

    async def _one_archive(self) -> bool:
        async with self._pool.connection() as conn:
            await conn.execute(_EXPIRE)
            cur = await conn.execute(_TAKE_ARCHIVE, {"lease": ARCHIVE_LEASE})
            job = await cur.fetchone()
        if job is None:
            return False
        archive_id, patient_id = job
        try:
            await self._build(archive_id, patient_id)
        except (psycopg.Error, ProblemError) as exc:
            # Shown to the patient, who may ask again (a database fault) or ask for less.
            log.warning("archive %s failed: %s", archive_id, exc)
            async with self._pool.connection() as conn:
                await conn.execute(_FAIL, (str(exc), archive_id))
        return True

    async def _build(self, archive_id: uuid.UUID, patient_id: uuid.UUID) -> None:
        async with self._pool.connection() as progress_conn, self._pool.connection() as conn:

            async def progress(done: int, total: int) -> None:
                await progress_conn.execute(_PROGRESS, (done, total, archive_id))
                await progress_conn.commit()

            content = await record_archive.build(conn, patient_id, progress)
            await conn.execute(
                _FINISH,
                {
                    "content": content,
                    "valid": timedelta(hours=self._settings.archive_valid_hours),
                    "id": archive_id,
                },
            )
            await audit.record(
                conn,
                audit.AuditEntry(
                    patient_id=patient_id,
                    action="archive_built",
                    method="",
                    path=f"/api/v1/patients/{patient_id}/archive/{archive_id}",
                    request_id=str(archive_id),
                    client_address=None,
                    actor_kind="system",
                    actor_label="record archive",
                ),
            )

    async def _erasures(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_erasures_after:
            return
        async with self._pool.connection() as conn:
            await conn.execute(_FORGET_ERASURES)
            cur = await conn.execute(_UNFINISHED_ERASURES)
            unfinished = [row[0] for row in await cur.fetchall()]
        for patient_id in unfinished:
            try:
                await erasure.resume(self._pool, self._settings, patient_id)
            except (BrokerAdminError, ProblemError, psycopg.Error) as exc:
                log.warning("erasure of %s stopped, retrying later: %s", patient_id, exc)
                self._retry_erasures_after = loop.time() + ERASURE_RETRY_S
