"""Incremental sync from a per-meter checkpoint, with only what GLS requires of a meter.

GLS requires a meter's Record Access Control Point to report "all records" and records
"greater than or equal to" a sequence number; the other operators (<=, within range, first,
last) are optional, and real servers leave them out: Nordic's qualified nRF5 GLS server
(`ble_gls.c`, `is_request_to_be_executed`) implements all, >=, first and last and answers
"operator not supported" (`06 00 01 04`) for the rest. So a sync needs only those two:

* No checkpoint: report all records.
* Otherwise report records >= the checkpoint's sequence number. The first record returned
  is the checkpoint record itself (same number, same raw time; after a wrap, older records
  numbered above it may come first): every record after it is new. If it is not there (the
  memory was cleared, or the ring overwrote it while the bridge was away), report all
  records and keep every one (ingest's identity drops a record it already holds).
* The 16-bit sequence number wraps: records numbered from 0 again follow 65535. When the
  >= report reaches 65535, or the meter's last record is numbered below the checkpoint, the
  records past the wrap are fetched too.

Optional operators are used when the meter has them: "last record" answers "nothing new"
in one record and shows a wrap; "<=" fetches just the wrapped part. A meter's answer that
one is not supported is learnt once and kept with its checkpoint (`Checkpoint.unsupported`),
so it is never asked again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from device.gls import Operator, RacpRequest, RacpResponse, ResponseCode
from device.records import MeterRecord
from device.session import GlsSession, SessionError

SEQUENCE_MAX = 0xFFFF
# Answers by which a meter says it does not implement an optional operator: "operator not
# supported" as GLS specifies, and what some servers send instead ("invalid operator",
# "operand not supported" for a filter on an operator they lack).
_NOT_SUPPORTED = frozenset(
    {
        ResponseCode.OPERATOR_NOT_SUPPORTED,
        ResponseCode.INVALID_OPERATOR,
        ResponseCode.OPERAND_NOT_SUPPORTED,
    }
)
_ENDED = frozenset({ResponseCode.SUCCESS, ResponseCode.NO_RECORDS_FOUND})


@dataclass(frozen=True)
class Checkpoint:
    """The last record the bridge holds of a meter, and what the meter cannot do."""

    serial: str
    last_sequence: int
    last_stamp: str
    unsupported: frozenset[Operator] = field(default_factory=frozenset)

    def matches(self, record: MeterRecord) -> bool:
        return record.sequence_number == self.last_sequence and record.stamp == self.last_stamp


def checkpoint_after(
    serial: str, records: list[MeterRecord], unsupported: frozenset[Operator]
) -> Checkpoint | None:
    """The checkpoint once `records` are committed: the last one with a sequence number."""
    for record in reversed(records):
        number = record.sequence_number
        if number is not None:
            return Checkpoint(serial, number, record.stamp, unsupported)
    return None


class RacpFailed(SessionError):
    def __init__(self, response: RacpResponse | object) -> None:
        super().__init__(f"RACP procedure ended with {response}")
        self.response = response


@dataclass
class _Anchor:
    number: int
    stamp: str

    def matches(self, record: MeterRecord) -> bool:
        return record.sequence_number == self.number and record.stamp == self.stamp


class Sync:
    """One sync's dialogue with a meter; `unsupported` grows with what the meter refuses."""

    def __init__(self, session: GlsSession, checkpoint: Checkpoint | None) -> None:
        self.session = session
        self.checkpoint = checkpoint
        self.unsupported: set[Operator] = set(checkpoint.unsupported if checkpoint else ())

    async def fetch_new(self, sink: list[MeterRecord]) -> None:
        """Append to `sink`, oldest first, every record the bridge does not hold yet. What
        arrived before a failure stays in `sink`."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            await self._report(RacpRequest.report_all_records(), sink.append)
            return
        last = await self._last()
        if last is not None and checkpoint.matches(last):
            return
        anchor = _Anchor(checkpoint.last_sequence, checkpoint.last_stamp)
        found = await self._at_least(anchor, sink)
        if found is None:  # the checkpoint record is gone: take what follows it, if anything
            await self._all_after(anchor, sink)
            return
        top = found.sequence_number
        wrapped = (
            last.sequence_number < checkpoint.last_sequence
            if last is not None and last.sequence_number is not None
            else top == SEQUENCE_MAX
        )
        if not wrapped:
            return
        if last is not None and last.sequence_number is not None:
            at_most = RacpRequest.report_records_at_most(last.sequence_number)
            if await self._optional(Operator.LESS_THAN_OR_EQUAL_TO, at_most, sink.append):
                return
        # Past the wrap: everything after the newest record held so far.
        newest = sink[-1] if sink else found
        number = newest.sequence_number
        if number is not None:
            await self._all_after(_Anchor(number, newest.stamp), sink)

    async def _last(self) -> MeterRecord | None:
        got: list[MeterRecord] = []
        await self._optional(Operator.LAST_RECORD, RacpRequest.report_last_record(), got.append)
        return got[-1] if got else None

    async def _at_least(self, anchor: _Anchor, sink: list[MeterRecord]) -> MeterRecord | None:
        """Records >= the anchor's number. Normally the first one returned is the anchor; after
        a wrap, older records numbered above it come first (a meter reports in the order it
        stored). The records after the anchor go to `sink` and the newest record returned is
        the answer; None (and nothing in `sink`) when the anchor is not among them."""
        got: list[MeterRecord] = []
        at: int | None = None
        try:
            await self._report(RacpRequest.report_records_at_least(anchor.number), got.append)
        finally:
            at = next((i for i, r in enumerate(got) if anchor.matches(r)), None)
            if at is not None:
                sink.extend(got[at + 1 :])
        return got[-1] if at is not None else None

    async def _all_after(self, anchor: _Anchor, sink: list[MeterRecord]) -> None:
        """All records; those after the anchor record go to `sink`, or every one when the
        anchor is not among them."""
        got: list[MeterRecord] = []
        try:
            await self._report(RacpRequest.report_all_records(), got.append)
        finally:
            at = next((i for i, r in enumerate(got) if anchor.matches(r)), None)
            sink.extend(got if at is None else got[at + 1 :])

    async def _optional(
        self, operator: Operator, request: RacpRequest, sink: Callable[[MeterRecord], None]
    ) -> bool:
        """Run an optional operator's request unless the meter is known to refuse it; False
        (and remembered) when it refuses."""
        if operator in self.unsupported:
            return False
        response = await self.session.request(request, _Collector(sink))
        if isinstance(response, RacpResponse) and response.response_code in _ENDED:
            return True
        if isinstance(response, RacpResponse) and response.response_code in _NOT_SUPPORTED:
            self.unsupported.add(operator)
            return False
        raise RacpFailed(response)

    async def _report(self, request: RacpRequest, sink: Callable[[MeterRecord], None]) -> None:
        response = await self.session.request(request, _Collector(sink))
        if not (isinstance(response, RacpResponse) and response.response_code in _ENDED):
            raise RacpFailed(response)


class _Collector(list[MeterRecord]):
    """A list the session appends to, handing each record on as it arrives."""

    def __init__(self, hand_on: Callable[[MeterRecord], None]) -> None:
        super().__init__()
        self._hand_on = hand_on

    def append(self, record: MeterRecord) -> None:
        super().append(record)
        self._hand_on(record)
