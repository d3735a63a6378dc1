"""Record Access Control Point (0x2A52): requests, responses, and what a meter must refuse."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given

from device.gls import (
    DateTime,
    LengthError,
    OpCode,
    Operator,
    OutOfRangeError,
    RacpNumberOfRecords,
    RacpRequest,
    RacpRequestError,
    RacpResponse,
    ReservedValueError,
    ResponseCode,
    SequenceNumberFilter,
    UserFacingTimeFilter,
    decode_racp,
)

from .test_gls_strategies import racp_requests


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (RacpRequest.report_records_at_least(30), "0103011e00"),
        (RacpRequest.report_records_at_least(0x1234), "0103013412"),
        (RacpRequest.report_records_at_most(7), "0102010700"),
        (RacpRequest.report_records_between(5, 0x0102), "01040105000201"),
        (RacpRequest.report_all_records(), "0101"),
        (RacpRequest.report_first_record(), "0105"),
        (RacpRequest.report_last_record(), "0106"),
        (RacpRequest.count_all_records(), "0401"),
        (RacpRequest.count_records_at_least(30), "0403011e00"),
        (RacpRequest.delete_all_records(), "0201"),
        (RacpRequest.abort(), "0300"),
    ],
)
def test_requests_encode_to_the_bytes_meters_expect(request_: RacpRequest, wire: str) -> None:
    assert bytes(request_) == bytes.fromhex(wire)
    assert RacpRequest.from_bytes(bytes.fromhex(wire)) == request_
    assert decode_racp(bytes.fromhex(wire)) == request_


def test_user_facing_time_range_round_trips() -> None:
    early, late = DateTime(2024, 3, 1), DateTime(2024, 3, 31, 23, 59, 59)
    request = RacpRequest(
        OpCode.REPORT_STORED_RECORDS, Operator.WITHIN_RANGE_OF, UserFacingTimeFilter(early, late)
    )
    wire = bytes.fromhex("010402" + "e8070301000000" + "e807031f173b3b")
    assert bytes(request) == wire
    assert RacpRequest.from_bytes(wire) == request


def test_response_code_from_an_accu_chek_guide() -> None:
    # Stack Overflow question 63340809: the RACP indication after "report all records".
    response = decode_racp(bytes([6, 0, 1, 1]))
    assert response == RacpResponse(OpCode.REPORT_STORED_RECORDS, ResponseCode.SUCCESS)
    assert isinstance(response, RacpResponse)
    assert response.succeeded
    assert response.request_op is OpCode.REPORT_STORED_RECORDS


@pytest.mark.parametrize("code", list(ResponseCode))
def test_every_response_code_round_trips(code: ResponseCode) -> None:
    wire = bytes([6, 0, 4, code])
    decoded = RacpResponse.from_bytes(wire)
    assert decoded.response_code is code
    assert decoded.succeeded is (code is ResponseCode.SUCCESS)
    assert bytes(decoded) == wire


def test_response_to_an_unknown_op_code_keeps_it() -> None:
    decoded = RacpResponse.from_bytes(bytes.fromhex("06006602"))
    assert decoded.request_op_code == 0x66
    assert decoded.request_op is None
    assert decoded.response_code is ResponseCode.OP_CODE_NOT_SUPPORTED


def test_number_of_records_response() -> None:
    decoded = decode_racp(bytes.fromhex("05002a01"))
    assert decoded == RacpNumberOfRecords(0x012A)
    assert bytes(decoded) == bytes.fromhex("05002a01")


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("060001", LengthError),
        ("0600010100", LengthError),
        ("06000100", ReservedValueError),  # response code 0
        ("0600010a", ReservedValueError),  # response code 10
        ("06010101", OutOfRangeError),  # responses carry the null operator
        ("050001", LengthError),
        ("05010100", OutOfRangeError),
    ],
)
def test_malformed_responses_are_refused(wire: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_racp(bytes.fromhex(wire))


REFUSALS = [
    # op code the meter does not have
    ("0701", 7, ResponseCode.OP_CODE_NOT_SUPPORTED),
    ("0000", 0, ResponseCode.OP_CODE_NOT_SUPPORTED),
    ("ff", 0xFF, ResponseCode.OP_CODE_NOT_SUPPORTED),
    # operators: missing, wrong for the op code, or reserved (a reserved operator is one no
    # server supports: nRF5 SDK ble_gls.c answers operators >= RACP_OPERATOR_RFU_START (7)
    # with RACP_RESPONSE_OPERATOR_UNSUPPORTED)
    ("01", 1, ResponseCode.INVALID_OPERATOR),
    ("0107", 1, ResponseCode.OPERATOR_NOT_SUPPORTED),
    ("04ff", 4, ResponseCode.OPERATOR_NOT_SUPPORTED),
    ("0307", 3, ResponseCode.INVALID_OPERATOR),  # abort takes the null operator only
    ("0100", 1, ResponseCode.INVALID_OPERATOR),
    ("0400", 4, ResponseCode.INVALID_OPERATOR),
    ("0301", 3, ResponseCode.INVALID_OPERATOR),
    # operands
    ("010100", 1, ResponseCode.INVALID_OPERAND),  # "all records" takes none
    ("030000", 3, ResponseCode.INVALID_OPERAND),
    ("0103", 1, ResponseCode.INVALID_OPERAND),  # filter type missing
    ("0103011e", 1, ResponseCode.INVALID_OPERAND),  # half a sequence number
    ("0103011e0000", 1, ResponseCode.INVALID_OPERAND),  # a byte too many
    ("0104011e00", 1, ResponseCode.INVALID_OPERAND),  # range with one bound
    ("0104010a000500", 1, ResponseCode.INVALID_OPERAND),  # minimum above maximum
    ("010302e2070d14051b07", 1, ResponseCode.INVALID_OPERAND),  # month 13
    ("01030200000000000000", 1, ResponseCode.INVALID_OPERAND),  # time not known
    ("0103030100", 1, ResponseCode.OPERAND_NOT_SUPPORTED),  # filter type 3
    ("0203001e00", 2, ResponseCode.OPERAND_NOT_SUPPORTED),  # filter type 0
]


@pytest.mark.parametrize(("wire", "op_code", "code"), REFUSALS)
def test_requests_a_meter_must_refuse_carry_the_response_it_owes(
    wire: str, op_code: int, code: ResponseCode
) -> None:
    with pytest.raises(RacpRequestError) as caught:
        RacpRequest.from_bytes(bytes.fromhex(wire))
    assert (caught.value.request_op_code, caught.value.response_code) == (op_code, code)
    answer = RacpResponse.refusing(caught.value)
    assert bytes(answer) == bytes([6, 0, op_code, code])


def test_empty_request_is_a_length_error() -> None:
    with pytest.raises(LengthError):
        RacpRequest.from_bytes(b"")


def test_every_op_code_and_operator_pair_either_round_trips_or_is_refused() -> None:
    operand_for: dict[int, str] = {
        Operator.LESS_THAN_OR_EQUAL_TO: "010a00",
        Operator.GREATER_THAN_OR_EQUAL_TO: "010a00",
        Operator.WITHIN_RANGE_OF: "010a001400",
    }
    accepted = []
    for op, operator in itertools.product(range(1, 7), range(8)):
        wire = bytes.fromhex(f"{op:02x}{operator:02x}" + operand_for.get(operator, ""))
        try:
            request = RacpRequest.from_bytes(wire)
        except RacpRequestError:
            continue
        assert bytes(request) == wire
        accepted.append((op, operator))
    # Ops 1, 2, 4 with operators 1-6; abort with the null operator. Nothing else.
    expected = [(op, operator) for op in (1, 2, 4) for operator in range(1, 7)]
    assert sorted(accepted) == sorted([*expected, (3, 0)])


@pytest.mark.parametrize(
    "build",
    [
        lambda: RacpRequest(OpCode.RESPONSE_CODE, Operator.NULL),
        lambda: RacpRequest(OpCode.REPORT_STORED_RECORDS, Operator.GREATER_THAN_OR_EQUAL_TO),
        lambda: RacpRequest(
            OpCode.REPORT_STORED_RECORDS, Operator.ALL_RECORDS, SequenceNumberFilter(1)
        ),
        lambda: RacpRequest(
            OpCode.REPORT_STORED_RECORDS,
            Operator.LESS_THAN_OR_EQUAL_TO,
            SequenceNumberFilter(minimum=1),
        ),
    ],
)
def test_construction_refuses_what_from_bytes_refuses(build: object) -> None:
    with pytest.raises(RacpRequestError):
        build()  # type: ignore[operator]


def test_sequence_filter_bounds_are_uint16() -> None:
    with pytest.raises(OutOfRangeError):
        RacpRequest.report_records_at_least(0x10000)


@given(racp_requests())
def test_encode_decode_identity(request_: RacpRequest) -> None:
    assert RacpRequest.from_bytes(bytes(request_)) == request_
