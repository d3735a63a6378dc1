"""The meter's side of the Record Access Control Point: one procedure at a time.

What it answers follows the GLS specification (v1.0.1, "Record Access Control Point" and its
general error handling; response codes in the GATT Specification Supplement, RACP) and
what qualified servers do (Nordic's nRF5 SDK `ble_gls.c`, `is_request_to_be_executed`):

* a write before the collector enabled measurement notifications and the RACP indication:
  ATT error 0x81 (Client Characteristic Configuration descriptor improperly configured);
* any write but an abort while a procedure runs: ATT error 0x80 (procedure already in
  progress), the procedure going on undisturbed;
* an abort while a procedure runs ends it, then "success"; an abort with an operator or an
  operand is answered "invalid operator" / "invalid operand" and the procedure goes on (Nordic's
  server ends its procedure there too; the specification does not ask it to); an abort with
  nothing running, "abort unsuccessful";
* a reserved op code (or a response op code written as a request), or "delete" on a meter
  without it: "op code not supported"; a reserved operator, or one the profile lacks:
  "operator not supported"; the null operator where a record operator belongs: "invalid
  operator"; a missing or ill-sized operand: "invalid operand"; a reserved filter type, or
  the user-facing-time filter: "operand not supported".

Fault hooks let tests drop the link mid-transfer or pace the records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING

from bumble import att
from bumble.device import Connection

from device.gls import (
    GlsError,
    OpCode,
    RacpNumberOfRecords,
    RacpRequest,
    RacpRequestError,
    RacpResponse,
    ResponseCode,
    UserFacingTimeFilter,
)

if TYPE_CHECKING:
    from firmware_sim.meter import SimulatedMeter

log = logging.getLogger(__name__)

# Application error codes of the Glucose Service (GLS 1.0, 2.2).
ERROR_PROCEDURE_ALREADY_IN_PROGRESS = 0x80
ERROR_CCCD_IMPROPERLY_CONFIGURED = 0x81


class RacpServer:
    def __init__(self, meter: SimulatedMeter) -> None:
        self.meter = meter
        self.procedure: asyncio.Task[None] | None = None
        self.abort_requested = False
        self.records_sent = 0
        # Fault hook: after this many records of a report, the meter drops the link (once).
        self.drop_link_after: int | None = None
        # Pause between records. A real meter sends about one record per connection event
        # (7.5-50 ms); the virtual link needs no pause, tests of abort want one.
        self.record_interval_s = 0.0
        # Every response code sent, with the operator of the request it answered (tests
        # count what a collector asked that the meter refused).
        self.answered: list[tuple[int, ResponseCode]] = []
        self._answers: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        return self.procedure is not None and not self.procedure.done()

    def on_write(self, connection: Connection, value: bytes) -> None:
        if not self.meter.is_subscribed(connection):
            raise att.ATT_Error(ERROR_CCCD_IMPROPERLY_CONFIGURED)
        is_abort = bool(value) and value[0] == OpCode.ABORT_OPERATION
        if self.busy and not is_abort:
            raise att.ATT_Error(ERROR_PROCEDURE_ALREADY_IN_PROGRESS)
        if is_abort:
            self._answer(self._abort(connection, value))
            return
        self.abort_requested = False
        self.procedure = asyncio.get_running_loop().create_task(self._run(connection, value))

    def _answer(self, coroutine: Coroutine[None, None, None]) -> None:
        """Run an answer beside the procedure (kept referenced until done)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _abort(self, connection: Connection, value: bytes) -> None:
        try:
            RacpRequest.from_bytes(value)
        except RacpRequestError as exc:  # an operator or an operand: refused, nothing stops
            await self.meter.indicate(connection, bytes(RacpResponse.refusing(exc)))
            return
        if not self.busy:
            await self._respond(connection, OpCode.ABORT_OPERATION, ResponseCode.ABORT_UNSUCCESSFUL)
            return
        self.abort_requested = True
        assert self.procedure is not None
        await asyncio.wait([self.procedure])
        await self._respond(connection, OpCode.ABORT_OPERATION, ResponseCode.SUCCESS)

    async def _respond(
        self, connection: Connection, op: int, code: ResponseCode, operator: int = 0
    ) -> None:
        self.answered.append((operator, code))
        await self.meter.indicate(connection, bytes(RacpResponse(op, code)))

    async def _run(self, connection: Connection, value: bytes) -> None:
        try:
            request = RacpRequest.from_bytes(value)
        except RacpRequestError as exc:
            await self.meter.indicate(connection, bytes(RacpResponse.refusing(exc)))
            return
        except GlsError:  # an empty write: no op code to name
            await self._respond(connection, 0, ResponseCode.OP_CODE_NOT_SUPPORTED)
            return
        await self._serve(connection, request)

    async def _serve(self, connection: Connection, request: RacpRequest) -> None:
        op, operator = request.op_code, int(request.operator)
        profile = self.meter.profile
        if op is OpCode.DELETE_STORED_RECORDS and not profile.supports_delete:
            await self._respond(connection, op, ResponseCode.OP_CODE_NOT_SUPPORTED, operator)
            return
        if request.operator not in profile.operators:
            await self._respond(connection, op, ResponseCode.OPERATOR_NOT_SUPPORTED, operator)
            return
        if isinstance(request.filter, UserFacingTimeFilter):
            await self._respond(connection, op, ResponseCode.OPERAND_NOT_SUPPORTED, operator)
            return
        records = self.meter.memory.select(request.operator, request.filter)
        if op is OpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            await self.meter.indicate(connection, bytes(RacpNumberOfRecords(len(records))))
            return
        if op is OpCode.DELETE_STORED_RECORDS:
            self.meter.memory.delete(records)
            code = ResponseCode.SUCCESS if records else ResponseCode.NO_RECORDS_FOUND
            await self._respond(connection, op, code, operator)
            return
        if not records:
            await self._respond(connection, op, ResponseCode.NO_RECORDS_FOUND, operator)
            return
        for record in records:
            if self.abort_requested:
                return  # the abort's own response ends the procedure
            if connection.handle not in self.meter.device.connections:
                return  # the collector went away; nothing to report to
            await self.meter.notify(connection, record)
            self.records_sent += 1
            if self.record_interval_s:
                await asyncio.sleep(self.record_interval_s)
            if self.drop_link_after is not None and self.records_sent >= self.drop_link_after:
                self.drop_link_after = None
                log.warning("meter %s drops the link mid-transfer", self.meter.serial)
                await connection.disconnect()
                return
        await self._respond(connection, op, ResponseCode.SUCCESS, operator)
