"""The meter's side of the Record Access Control Point: one procedure at a time.

Every op code of GLS 1.0 is handled: report stored records, report the number of stored
records, abort, and delete (when the profile supports it; otherwise "op code not
supported", which is what most meters answer). Filters on sequence numbers work with every
operator; the user-facing-time filter is answered with "operand not supported", as on
meters that do not implement it. Fault hooks let tests drop the link mid-transfer.
"""

from __future__ import annotations

import asyncio
import logging
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
            self.abort_requested = True
            asyncio.get_running_loop().create_task(self._abort(connection, value))
            return
        self.abort_requested = False
        self.procedure = asyncio.get_running_loop().create_task(self._run(connection, value))

    async def _abort(self, connection: Connection, value: bytes) -> None:
        if self.procedure is not None:
            await asyncio.wait([self.procedure])
        await self._respond(connection, value, ResponseCode.SUCCESS)

    async def _respond(self, connection: Connection, value: bytes, code: ResponseCode) -> None:
        op = value[0] if value else 0
        await self.meter.indicate(connection, bytes(RacpResponse(op, code)))

    async def _run(self, connection: Connection, value: bytes) -> None:
        try:
            request = RacpRequest.from_bytes(value)
        except RacpRequestError as exc:
            await self.meter.indicate(connection, bytes(RacpResponse.refusing(exc)))
            return
        except GlsError:
            await self._respond(connection, value, ResponseCode.INVALID_OPERATOR)
            return
        await self._serve(connection, request, value)

    async def _serve(self, connection: Connection, request: RacpRequest, value: bytes) -> None:
        if isinstance(request.filter, UserFacingTimeFilter):
            await self._respond(connection, value, ResponseCode.OPERAND_NOT_SUPPORTED)
            return
        if request.filter is not None and not request.filter.in_order:
            await self._respond(connection, value, ResponseCode.INVALID_OPERAND)
            return
        records = self.meter.memory.select(request.operator, request.filter)
        if request.op_code is OpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            await self.meter.indicate(connection, bytes(RacpNumberOfRecords(len(records))))
            return
        if request.op_code is OpCode.DELETE_STORED_RECORDS:
            if not self.meter.profile.supports_delete:
                await self._respond(connection, value, ResponseCode.OP_CODE_NOT_SUPPORTED)
                return
            self.meter.memory.delete(records)
            await self._respond(
                connection,
                value,
                ResponseCode.SUCCESS if records else ResponseCode.NO_RECORDS_FOUND,
            )
            return
        if not records:
            await self._respond(connection, value, ResponseCode.NO_RECORDS_FOUND)
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
        await self._respond(connection, value, ResponseCode.SUCCESS)
