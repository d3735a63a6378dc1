"""Record Access Control Point (0x2A52): the bridge asks, the meter reports and answers.

Every RACP value is ``op code u8, operator u8, operand...``. Requests (client -> meter):

* report stored records (1), delete stored records (2), report number of stored records (4)
  take a record operator: all (1), <= (2), >= (3), within range (4), first (5), last (6);
  the filtering ones carry a filter type (1 sequence number: u16 bounds; 2 user-facing time:
  7-byte Date Time bounds): ``<=`` sends the maximum, ``>=`` the minimum, range both.
* abort operation (3) takes the null operator (0) and no operand.

Responses (meter -> client, indicated): number of stored records (5) ``05 00 <u16>``, and
response code (6) ``06 00 <request op code> <response code>``.

Decoding a *request* reports what is wrong as :class:`RacpRequestError`, carrying the
response code a server owes for it, so the simulator can answer exactly as the spec asks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from device.gls import uuids
from device.gls.date_time import DateTime
from device.gls.errors import (
    GlsError,
    LengthError,
    OutOfRangeError,
    RacpRequestError,
)
from device.gls.wire import UINT8_MAX, UINT16_MAX, check_range, lookup, require_length, u8, u16

RACP_UUID = uuids.RACP
_HEADER_SIZE = 2  # op code and operator


class OpCode(enum.IntEnum):
    REPORT_STORED_RECORDS = 1
    DELETE_STORED_RECORDS = 2
    ABORT_OPERATION = 3
    REPORT_NUMBER_OF_STORED_RECORDS = 4
    NUMBER_OF_STORED_RECORDS_RESPONSE = 5
    RESPONSE_CODE = 6


class Operator(enum.IntEnum):
    NULL = 0
    ALL_RECORDS = 1
    LESS_THAN_OR_EQUAL_TO = 2
    GREATER_THAN_OR_EQUAL_TO = 3
    WITHIN_RANGE_OF = 4
    FIRST_RECORD = 5
    LAST_RECORD = 6


class FilterType(enum.IntEnum):
    SEQUENCE_NUMBER = 1
    USER_FACING_TIME = 2


class ResponseCode(enum.IntEnum):
    SUCCESS = 1
    OP_CODE_NOT_SUPPORTED = 2
    INVALID_OPERATOR = 3
    OPERATOR_NOT_SUPPORTED = 4
    INVALID_OPERAND = 5
    NO_RECORDS_FOUND = 6
    ABORT_UNSUCCESSFUL = 7
    PROCEDURE_NOT_COMPLETED = 8
    OPERAND_NOT_SUPPORTED = 9


REQUEST_OP_CODES = frozenset(
    {
        OpCode.REPORT_STORED_RECORDS,
        OpCode.DELETE_STORED_RECORDS,
        OpCode.ABORT_OPERATION,
        OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
    }
)
# Which bounds each filtering operator carries: (minimum, maximum).
_BOUNDS: dict[Operator, tuple[bool, bool]] = {
    Operator.LESS_THAN_OR_EQUAL_TO: (False, True),
    Operator.GREATER_THAN_OR_EQUAL_TO: (True, False),
    Operator.WITHIN_RANGE_OF: (True, True),
}
_UNFILTERED = frozenset({Operator.ALL_RECORDS, Operator.FIRST_RECORD, Operator.LAST_RECORD})


@dataclass(frozen=True, slots=True)
class SequenceNumberFilter:
    """Filter type 1: bounds on the sequence number (inclusive); an unused bound is None."""

    FILTER_TYPE: ClassVar[FilterType] = FilterType.SEQUENCE_NUMBER
    BOUND_SIZE: ClassVar[int] = 2

    minimum: int | None = None
    maximum: int | None = None

    def __post_init__(self) -> None:
        for name, bound in (("minimum", self.minimum), ("maximum", self.maximum)):
            if bound is not None:
                check_range(f"sequence number {name}", bound, 0, UINT16_MAX)

    @property
    def in_order(self) -> bool:
        """False only when both bounds are given and the minimum is above the maximum."""
        return self.minimum is None or self.maximum is None or self.minimum <= self.maximum

    def bounds_bytes(self) -> bytes:
        return b"".join(u16(b) for b in (self.minimum, self.maximum) if b is not None)


@dataclass(frozen=True, slots=True)
class UserFacingTimeFilter:
    """Filter type 2: bounds on user-facing time (inclusive); an unused bound is None."""

    FILTER_TYPE: ClassVar[FilterType] = FilterType.USER_FACING_TIME
    BOUND_SIZE: ClassVar[int] = DateTime.SIZE

    minimum: DateTime | None = None
    maximum: DateTime | None = None

    @property
    def is_known(self) -> bool:
        """True when every bound given is a full calendar date ("not known" cannot filter)."""
        return all(b.is_known for b in (self.minimum, self.maximum) if b is not None)

    @property
    def in_order(self) -> bool:
        if self.minimum is None or self.maximum is None or not self.is_known:
            return True
        return self.minimum.to_datetime() <= self.maximum.to_datetime()

    def bounds_bytes(self) -> bytes:
        return b"".join(bytes(b) for b in (self.minimum, self.maximum) if b is not None)


RecordFilter = SequenceNumberFilter | UserFacingTimeFilter
_FILTER_TYPE_VALUES = frozenset(int(t) for t in FilterType)
_OPERATOR_VALUES = frozenset(int(o) for o in Operator)
_OP_CODE_VALUES = frozenset(int(o) for o in OpCode)

T = TypeVar("T")


def _place(values: list[T], bounds: tuple[bool, bool]) -> tuple[T | None, T | None]:
    """Put the decoded bounds back in (minimum, maximum) order; ``bounds`` says which exist."""
    it = iter(values)
    return (next(it) if bounds[0] else None, next(it) if bounds[1] else None)


def _refuse(op_code: int, code: ResponseCode, reason: str) -> RacpRequestError:
    return RacpRequestError(op_code, code, reason)


def _check_reserved_operator(op_code: OpCode, operator: int) -> None:
    """A reserved operator is one no server supports ("operator not supported", as Nordic's
    qualified nRF5 GLS server answers for operators >= 7 in `is_request_to_be_executed`);
    with abort, whose operator must be null, any other value is an invalid operator."""
    if operator in _OPERATOR_VALUES:
        return
    if op_code is OpCode.ABORT_OPERATION:
        raise _refuse(op_code, ResponseCode.INVALID_OPERATOR, "abort takes the null operator")
    raise _refuse(op_code, ResponseCode.OPERATOR_NOT_SUPPORTED, "reserved operator")


def _check_operator(op_code: OpCode, operator: Operator) -> None:
    if op_code is OpCode.ABORT_OPERATION:
        if operator is not Operator.NULL:
            raise _refuse(op_code, ResponseCode.INVALID_OPERATOR, "abort takes the null operator")
    elif operator is Operator.NULL:
        raise _refuse(op_code, ResponseCode.INVALID_OPERATOR, "needs a record operator")


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """A request written to the RACP. Construction checks what a meter would check."""

    op_code: OpCode
    operator: Operator = Operator.NULL
    filter: RecordFilter | None = None

    def __post_init__(self) -> None:
        op = int(self.op_code)
        if op not in REQUEST_OP_CODES:
            raise _refuse(op, ResponseCode.OP_CODE_NOT_SUPPORTED, "not a request op code")
        op_code = OpCode(op)
        _check_reserved_operator(op_code, int(self.operator))
        operator = Operator(self.operator)
        object.__setattr__(self, "op_code", op_code)
        object.__setattr__(self, "operator", operator)
        _check_operator(op_code, operator)
        bounds = _BOUNDS.get(operator)
        if bounds is None:
            if self.filter is not None:
                raise _refuse(op, ResponseCode.INVALID_OPERAND, "operator takes no operand")
            return
        if not isinstance(self.filter, SequenceNumberFilter | UserFacingTimeFilter):
            raise _refuse(op, ResponseCode.INVALID_OPERAND, "operator needs a filter")
        if (self.filter.minimum is not None, self.filter.maximum is not None) != bounds:
            raise _refuse(op, ResponseCode.INVALID_OPERAND, "bounds do not fit the operator")
        if isinstance(self.filter, UserFacingTimeFilter) and not self.filter.is_known:
            raise _refuse(op, ResponseCode.INVALID_OPERAND, "time bound is not known")
        if not self.filter.in_order:
            raise _refuse(op, ResponseCode.INVALID_OPERAND, "minimum is above maximum")

    # -- the requests a collector sends ------------------------------------------------

    @classmethod
    def report_all_records(cls) -> RacpRequest:
        return cls(OpCode.REPORT_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def report_records_at_least(cls, sequence_number: int) -> RacpRequest:
        """``01 03 01 <u16>``: the bridge's incremental sync from its checkpoint."""
        return cls(
            OpCode.REPORT_STORED_RECORDS,
            Operator.GREATER_THAN_OR_EQUAL_TO,
            SequenceNumberFilter(minimum=sequence_number),
        )

    @classmethod
    def report_records_at_most(cls, sequence_number: int) -> RacpRequest:
        return cls(
            OpCode.REPORT_STORED_RECORDS,
            Operator.LESS_THAN_OR_EQUAL_TO,
            SequenceNumberFilter(maximum=sequence_number),
        )

    @classmethod
    def report_records_between(cls, minimum: int, maximum: int) -> RacpRequest:
        return cls(
            OpCode.REPORT_STORED_RECORDS,
            Operator.WITHIN_RANGE_OF,
            SequenceNumberFilter(minimum, maximum),
        )

    @classmethod
    def report_first_record(cls) -> RacpRequest:
        return cls(OpCode.REPORT_STORED_RECORDS, Operator.FIRST_RECORD)

    @classmethod
    def report_last_record(cls) -> RacpRequest:
        return cls(OpCode.REPORT_STORED_RECORDS, Operator.LAST_RECORD)

    @classmethod
    def count_all_records(cls) -> RacpRequest:
        return cls(OpCode.REPORT_NUMBER_OF_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def count_records_at_least(cls, sequence_number: int) -> RacpRequest:
        return cls(
            OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
            Operator.GREATER_THAN_OR_EQUAL_TO,
            SequenceNumberFilter(minimum=sequence_number),
        )

    @classmethod
    def delete_all_records(cls) -> RacpRequest:
        return cls(OpCode.DELETE_STORED_RECORDS, Operator.ALL_RECORDS)

    @classmethod
    def abort(cls) -> RacpRequest:
        return cls(OpCode.ABORT_OPERATION, Operator.NULL)

    # -- wire --------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes) -> RacpRequest:
        """Decode a request; what a meter must refuse raises :class:`RacpRequestError`."""
        if not data:
            raise LengthError(_HEADER_SIZE, 0, "RACP op code and operator", at_least=True)
        op = data[0]
        if op not in REQUEST_OP_CODES:
            raise _refuse(op, ResponseCode.OP_CODE_NOT_SUPPORTED, "not a request op code")
        if len(data) < _HEADER_SIZE:
            raise _refuse(op, ResponseCode.INVALID_OPERATOR, "operator missing")
        _check_reserved_operator(OpCode(op), data[1])
        op_code, operator, operand = OpCode(op), Operator(data[1]), data[_HEADER_SIZE:]
        _check_operator(op_code, operator)
        bounds = _BOUNDS.get(operator)
        if bounds is None:
            if operand:
                raise _refuse(op, ResponseCode.INVALID_OPERAND, "operator takes no operand")
            return cls(op_code, operator)
        if not operand:
            raise _refuse(op, ResponseCode.INVALID_OPERAND, "filter type missing")
        if operand[0] not in _FILTER_TYPE_VALUES:
            raise _refuse(op, ResponseCode.OPERAND_NOT_SUPPORTED, "filter type not supported")
        filter_type, values = FilterType(operand[0]), operand[1:]
        size = (
            SequenceNumberFilter.BOUND_SIZE
            if filter_type is FilterType.SEQUENCE_NUMBER
            else UserFacingTimeFilter.BOUND_SIZE
        )
        if len(values) != size * sum(bounds):
            raise _refuse(op, ResponseCode.INVALID_OPERAND, "operand length does not fit")
        chunks = [values[i : i + size] for i in range(0, len(values), size)]
        record_filter: RecordFilter
        try:
            if filter_type is FilterType.SEQUENCE_NUMBER:
                numbers = [int.from_bytes(chunk, "little") for chunk in chunks]
                record_filter = SequenceNumberFilter(*_place(numbers, bounds))
            else:
                times = [DateTime.from_bytes(chunk) for chunk in chunks]
                record_filter = UserFacingTimeFilter(*_place(times, bounds))
        except GlsError as exc:
            raise _refuse(op, ResponseCode.INVALID_OPERAND, str(exc)) from exc
        return cls(op_code, operator, record_filter)

    def __bytes__(self) -> bytes:
        out = u8(self.op_code) + u8(self.operator)
        if self.filter is not None:
            out += u8(self.filter.FILTER_TYPE) + self.filter.bounds_bytes()
        return out


@dataclass(frozen=True, slots=True)
class RacpNumberOfRecords:
    """Number of stored records response: ``05 00 <u16 count>``."""

    SIZE: ClassVar[int] = 4

    count: int

    def __post_init__(self) -> None:
        check_range("number of records", self.count, 0, UINT16_MAX)

    @classmethod
    def from_bytes(cls, data: bytes) -> RacpNumberOfRecords:
        require_length(data, cls.SIZE, "number of records response fields")
        _check_response_header(data, OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE)
        return cls(int.from_bytes(data[_HEADER_SIZE:], "little"))

    def __bytes__(self) -> bytes:
        return u8(OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE) + u8(Operator.NULL) + u16(self.count)


@dataclass(frozen=True, slots=True)
class RacpResponse:
    """Response code: ``06 00 <request op code> <response code>``, ending a procedure.

    ``request_op_code`` stays an int: a meter echoes op codes it does not know, too.
    """

    SIZE: ClassVar[int] = 4

    request_op_code: int
    response_code: ResponseCode

    def __post_init__(self) -> None:
        check_range("request op code", self.request_op_code, 0, UINT8_MAX)
        code = lookup(ResponseCode, self.response_code, "RACP response code")
        object.__setattr__(self, "response_code", code)

    @classmethod
    def refusing(cls, error: RacpRequestError) -> RacpResponse:
        """The response a meter sends for a request that decoding refused."""
        return cls(error.request_op_code, error.response_code)

    @classmethod
    def from_bytes(cls, data: bytes) -> RacpResponse:
        require_length(data, cls.SIZE, "response code fields")
        _check_response_header(data, OpCode.RESPONSE_CODE)
        return cls(data[2], lookup(ResponseCode, data[3], "RACP response code"))

    @property
    def request_op(self) -> OpCode | None:
        """The request op code as an :class:`OpCode`, or None if it is not one."""
        if self.request_op_code not in _OP_CODE_VALUES:
            return None
        return OpCode(self.request_op_code)

    @property
    def succeeded(self) -> bool:
        return self.response_code is ResponseCode.SUCCESS

    def __bytes__(self) -> bytes:
        return (
            u8(OpCode.RESPONSE_CODE)
            + u8(Operator.NULL)
            + u8(self.request_op_code)
            + u8(self.response_code)
        )


def _check_response_header(data: bytes, op_code: OpCode) -> None:
    if data[0] != op_code:
        raise OutOfRangeError("RACP op code", data[0], int(op_code), int(op_code))
    if data[1] != Operator.NULL:
        raise OutOfRangeError("RACP response operator", data[1], 0, 0)


RacpValue = RacpRequest | RacpNumberOfRecords | RacpResponse


def decode_racp(data: bytes) -> RacpValue:
    """Decode any RACP value, request or response, by its op code."""
    if data and data[0] == OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        return RacpNumberOfRecords.from_bytes(data)
    if data and data[0] == OpCode.RESPONSE_CODE:
        return RacpResponse.from_bytes(data)
    return RacpRequest.from_bytes(data)
