"""Incremental sync from a per-meter checkpoint, robust to sequence wrap and cleared memory.

The checkpoint is the last record the bridge holds: its sequence number and raw time
fields. A sync first asks for the meter's last record; if that is the checkpoint, nothing
is new. Otherwise it checks that the checkpoint record is still in the meter (same number,
same time): if so, new records are those after it, `>= checkpoint + 1` and, when the
16-bit counter wrapped since, `<= last`. If the checkpoint record is gone or different,
the memory was cleared (or the ring overwrote it while the bridge was away): every record
is new to us, and ingest's identity (serial, number, meter time) drops any duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

from device.gls import RacpRequest, RacpResponse, ResponseCode
from device.session import GlsSession, MeterRecord, SessionError

SEQUENCE_MAX = 0xFFFF


@dataclass(frozen=True)
class Checkpoint:
    serial: str
    last_sequence: int
    last_stamp: str

    @classmethod
    def of(cls, serial: str, record: MeterRecord) -> Checkpoint:
        return cls(serial, record.sequence_number, record.stamp)

    def matches(self, record: MeterRecord) -> bool:
        return record.sequence_number == self.last_sequence and record.stamp == self.last_stamp


class RacpFailed(SessionError):
    def __init__(self, response: RacpResponse | object) -> None:
        super().__init__(f"RACP procedure ended with {response}")
        self.response = response


async def _report(session: GlsSession, request: RacpRequest, sink: list[MeterRecord]) -> None:
    response = await session.request(request, sink)
    if isinstance(response, RacpResponse) and response.response_code in (
        ResponseCode.SUCCESS,
        ResponseCode.NO_RECORDS_FOUND,
    ):
        return
    raise RacpFailed(response)


async def _one(session: GlsSession, request: RacpRequest) -> MeterRecord | None:
    found: list[MeterRecord] = []
    await _report(session, request, found)
    return found[-1] if found else None


async def fetch_new(
    session: GlsSession, checkpoint: Checkpoint | None, sink: list[MeterRecord]
) -> None:
    """Append to `sink`, oldest first, every record the bridge does not hold yet."""
    last = await _one(session, RacpRequest.report_last_record())
    if last is None:
        return
    if checkpoint is not None and checkpoint.matches(last):
        return
    if checkpoint is not None:
        held = await _one(
            session,
            RacpRequest.report_records_between(checkpoint.last_sequence, checkpoint.last_sequence),
        )
        if held is not None and checkpoint.matches(held):
            if checkpoint.last_sequence < SEQUENCE_MAX:
                after = RacpRequest.report_records_at_least(checkpoint.last_sequence + 1)
                await _report(session, after, sink)
            if last.sequence_number < checkpoint.last_sequence:  # the counter wrapped
                await _report(
                    session, RacpRequest.report_records_at_most(last.sequence_number), sink
                )
            return
    await _report(session, RacpRequest.report_all_records(), sink)
