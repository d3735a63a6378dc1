"""The simulated meter speaks GLS as real servers do, over the real bumble stack.

What it must answer is taken from the specification and from a qualified server, not from
the simulator itself:

* GLS v1.0.1 (Bluetooth SIG, 2022), "Record Access Control Point" procedures and their
  general error handling; the RACP response codes of the GATT Specification Supplement.
* Nordic's nRF5 SDK GLS server, `components/ble/ble_services/ble_gls/ble_gls.c`
  (`is_request_to_be_executed`, `ble_gls_are_cccd_configured`, `on_racp_value_write`):
  the operator set all / >= / first / last, "operator not supported" (0x04) for <=, within
  range and reserved operators, "invalid operator" (0x03) for the null operator and for an
  abort with an operator, "invalid operand" (0x05) for an abort with an operand or a wrong
  operand length, "operand not supported" (0x09) for the user-facing-time and reserved filter
  types, "op code not supported" (0x02) for delete and reserved op codes, "abort
  unsuccessful" (0x07) for an abort with nothing running, ATT error 0x80 for a request while
  a procedure runs, 0x81 unless measurement notifications and the RACP indication are both
  enabled (the Context subscription is not required).
* The Core specification, Vol 3, Part G, 3.3.3.3: CCCD values persist across connections
  for bonded devices.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakGATTProtocolError
from bumble.pairing import PairingConfig, PairingDelegate

from device.ble import BleStack
from device.gls import (
    OpCode,
    Operator,
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponse,
    ResponseCode,
    decode_racp,
)
from device.gls import uuids as gatt
from device.pairing import PairingError, find_unbonded, pair_meter
from device.store import BridgeStore
from firmware_sim.bleak_backend import BumbleClient, BumbleDetails, BumbleRadio, BumbleScanner
from firmware_sim.meter import SimulatedMeter
from firmware_sim.profiles import CONTOUR, MINIMAL, NO_CONTEXT, NORDIC, MeterProfile
from stack.virtual_home import VirtualHome
from tests.bridge.harness import HOME, model_readings

INSUFFICIENT_ENCRYPTION = 0x0F
PROCEDURE_ALREADY_IN_PROGRESS = 0x80
CCCD_IMPROPERLY_CONFIGURED = 0x81
ANSWER_TIMEOUT_S = 10.0
RECORDS = 30

MEASUREMENT = gatt.uuid128(gatt.MEASUREMENT)
CONTEXT = gatt.uuid128(gatt.CONTEXT)
RACP = gatt.uuid128(gatt.RACP)


async def _meter(
    home: VirtualHome, records: int = RECORDS, profile: MeterProfile = CONTOUR
) -> SimulatedMeter:
    meter = await home.add_meter(profile, "CNO-PROTO", HOME)
    meter.load(model_readings(records))
    return meter


def ble_device(radio: BumbleRadio, meter: SimulatedMeter) -> BLEDevice:
    return BLEDevice(meter.address, meter.local_name, BumbleDetails(radio, meter.address))


async def _connected(home: VirtualHome, meter: SimulatedMeter) -> BleakClient:
    client = home.stack.client(ble_device(home.radio, meter))
    await client.connect()
    return client


def run(scenario: Callable[[VirtualHome], Awaitable[None]]) -> None:
    async def main() -> None:
        home = VirtualHome()
        try:
            await scenario(home)
        finally:
            await home.close()

    asyncio.run(main())


def test_protected_characteristics_need_a_bond(tmp_path: Path) -> None:
    async def scenario(home: VirtualHome) -> None:
        meter = await _meter(home)
        client = await _connected(home, meter)
        with pytest.raises(BleakGATTProtocolError) as read:
            await client.read_gatt_char(gatt.uuid128(gatt.FEATURE))
        assert read.value.code == INSUFFICIENT_ENCRYPTION
        with pytest.raises(BleakGATTProtocolError) as subscribe:
            await client.start_notify(RACP, lambda _c, _d: None)
        assert subscribe.value.code == INSUFFICIENT_ENCRYPTION
        # The Device Information Service stays open, as on real meters.
        serial = await client.read_gatt_char(gatt.uuid128(gatt.SERIAL_NUMBER))
        assert bytes(serial) == b"CNO-PROTO"
        await client.disconnect()

    run(scenario)


def test_pairing_needs_pairing_mode_and_the_passkey_the_meter_shows(tmp_path: Path) -> None:
    async def scenario(home: VirtualHome) -> None:
        meter = await _meter(home)
        store = BridgeStore(tmp_path / "bridge.db")
        [found] = await find_unbonded(home.stack, store, 0.3)

        async def wrong() -> int:
            return 111111 if meter.shown_passkey != 111111 else 222222

        with pytest.raises(PairingError):
            await pair_meter(home.stack, store, found, wrong)  # not in pairing mode
        meter.pairing_mode = True
        with pytest.raises(PairingError):
            await pair_meter(home.stack, store, found, wrong)
        assert meter.shown_passkey is not None
        assert store.bonded() == {}
        bonded = await home.pair(meter, store)
        assert bonded.serial == "CNO-PROTO" and set(store.bonded()) == {meter.address}
        store.close()

    run(scenario)


class _NoInputNoOutput(PairingDelegate):
    """A collector with neither keyboard nor display: it can only pair "just works"."""

    def __init__(self) -> None:
        super().__init__(PairingDelegate.NO_OUTPUT_NO_INPUT)


def _headless_collector(home: VirtualHome) -> tuple[BumbleRadio, BleStack]:
    radio = BumbleRadio(home.air.device("headless"))
    radio.device.pairing_config_factory = lambda _c: PairingConfig(
        sc=True, mitm=False, bonding=True, delegate=_NoInputNoOutput()
    )
    stack = BleStack(BumbleScanner, BumbleClient, {"radio": radio}, {"radio": radio})
    return radio, stack


@pytest.mark.parametrize(("passkey_pairing", "pairs"), [(True, False), (False, True)])
def test_just_works_is_refused_where_the_profile_requires_mitm(
    tmp_path: Path, passkey_pairing: bool, pairs: bool
) -> None:
    """A meter with a display requires MITM protection: a collector with no input cannot
    bond by "just works". The same collector bonds with a meter whose profile pairs that way
    (so the refusal is the meter's, not a broken collector)."""

    async def scenario(home: VirtualHome) -> None:
        profile = dataclasses.replace(CONTOUR, passkey_pairing=passkey_pairing)
        meter = await _meter(home, profile=profile)
        meter.pairing_mode = True
        radio, stack = _headless_collector(home)
        store = BridgeStore(tmp_path / f"headless-{passkey_pairing}.db")

        async def nothing_to_type() -> int:
            raise AssertionError("just works asks for no passkey")

        device = ble_device(radio, meter)
        if pairs:
            await pair_meter(stack, store, device, nothing_to_type)
            assert await radio.is_bonded(meter.address)
        else:
            with pytest.raises(PairingError):
                await pair_meter(stack, store, device, nothing_to_type)
            assert not await radio.is_bonded(meter.address)
            assert store.bonded() == {}
        store.close()

    run(scenario)


class _Collector:
    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.racp: asyncio.Queue[bytes] = asyncio.Queue()
        self.measurements: list[bytes] = []

    async def subscribe(
        self, *, racp: bool = True, measurement: bool = True, context: bool = False
    ) -> None:
        if measurement:
            await self.client.start_notify(
                MEASUREMENT, lambda _c, d: self.measurements.append(bytes(d))
            )
        if context:
            await self.client.start_notify(CONTEXT, lambda _c, _d: None)
        if racp:
            await self.client.start_notify(RACP, lambda _c, d: self.racp.put_nowait(bytes(d)))

    async def write(self, request: bytes) -> None:
        await self.client.write_gatt_char(RACP, request, response=True)

    async def answer(self) -> object:
        return decode_racp(await asyncio.wait_for(self.racp.get(), ANSWER_TIMEOUT_S))

    async def ask(self, request: bytes) -> object:
        await self.write(request)
        return await self.answer()


async def _bonded_collector(
    home: VirtualHome, tmp_path: Path, records: int = RECORDS, profile: MeterProfile = CONTOUR
) -> tuple[SimulatedMeter, _Collector]:
    meter = await _meter(home, records, profile)
    store = BridgeStore(tmp_path / "bridge.db")
    await home.pair(meter, store)
    store.close()
    return meter, _Collector(await _connected(home, meter))


def test_racp_needs_measurement_notifications_and_its_indication_not_the_context(
    tmp_path: Path,
) -> None:
    async def scenario(home: VirtualHome) -> None:
        _, collector = await _bonded_collector(home, tmp_path)
        await collector.subscribe(measurement=False)  # the indication only: not enough
        with pytest.raises(BleakGATTProtocolError) as refused:
            await collector.ask(bytes(RacpRequest.count_all_records()))
        assert refused.value.code == CCCD_IMPROPERLY_CONFIGURED
        # Measurement notifications too, the Context left off (as ble_gls.c allows).
        await collector.subscribe(racp=False)
        answer = await collector.ask(bytes(RacpRequest.count_all_records()))
        assert answer == RacpNumberOfRecords(RECORDS)

    run(scenario)


OPERATOR_REQUESTS = {
    Operator.ALL_RECORDS: (RacpRequest.report_all_records(), RECORDS),
    Operator.GREATER_THAN_OR_EQUAL_TO: (RacpRequest.report_records_at_least(25), 5),
    Operator.LESS_THAN_OR_EQUAL_TO: (RacpRequest.report_records_at_most(4), 5),
    Operator.WITHIN_RANGE_OF: (RacpRequest.report_records_between(10, 12), 3),
    Operator.FIRST_RECORD: (RacpRequest.report_first_record(), 1),
    Operator.LAST_RECORD: (RacpRequest.report_last_record(), 1),
}


@pytest.mark.parametrize(
    ("profile", "supported"),
    [
        (CONTOUR, set(Operator) - {Operator.NULL}),
        # ble_gls.c: ALL, FIRST, LAST, GREATER_OR_EQUAL; LESS_OR_EQUAL and RANGE unsupported.
        (
            NORDIC,
            {Operator.ALL_RECORDS, Operator.GREATER_THAN_OR_EQUAL_TO}
            | {Operator.FIRST_RECORD, Operator.LAST_RECORD},
        ),
        # What GLS requires of every server.
        (MINIMAL, {Operator.ALL_RECORDS, Operator.GREATER_THAN_OR_EQUAL_TO}),
    ],
    ids=lambda p: p.key if isinstance(p, MeterProfile) else "",
)
def test_each_operator_set_reports_what_it_has_and_refuses_the_rest_with_0x04(
    tmp_path: Path, profile: MeterProfile, supported: set[Operator]
) -> None:
    async def scenario(home: VirtualHome) -> None:
        _, c = await _bonded_collector(home, tmp_path, profile=profile)
        await c.subscribe()
        for operator, (request, expected) in OPERATOR_REQUESTS.items():
            c.measurements.clear()
            answer = await c.ask(bytes(request))
            if operator in supported:
                assert answer == RacpResponse(OpCode.REPORT_STORED_RECORDS, ResponseCode.SUCCESS)
                assert len(c.measurements) == expected, operator
            else:
                # `06 00 01 04`: operator not supported, and nothing reported.
                assert bytes(answer) == bytes.fromhex("06000104"), operator  # type: ignore[call-overload]
                assert c.measurements == []
        none = await c.ask(bytes(RacpRequest.report_records_at_least(500)))
        assert none == RacpResponse(OpCode.REPORT_STORED_RECORDS, ResponseCode.NO_RECORDS_FOUND)
        count = await c.ask(bytes(RacpRequest.count_records_at_least(20)))
        assert count == RacpNumberOfRecords(10)

    run(scenario)


# Every malformed write and the response code the specification (and ble_gls.c) names.
MALFORMED: list[tuple[str, str, int, ResponseCode]] = [
    ("reserved op code 0", "0001", 0, ResponseCode.OP_CODE_NOT_SUPPORTED),
    ("reserved op code 7", "0701", 7, ResponseCode.OP_CODE_NOT_SUPPORTED),
    ("reserved op code 0xff", "ff01", 0xFF, ResponseCode.OP_CODE_NOT_SUPPORTED),
    ("a response op code as a request", "0600", 6, ResponseCode.OP_CODE_NOT_SUPPORTED),
    ("delete, which the meter lacks", "0201", 2, ResponseCode.OP_CODE_NOT_SUPPORTED),
    ("reserved operator 7", "0107", 1, ResponseCode.OPERATOR_NOT_SUPPORTED),
    ("reserved operator 0xff in a count", "04ff", 4, ResponseCode.OPERATOR_NOT_SUPPORTED),
    ("null operator", "0100", 1, ResponseCode.INVALID_OPERATOR),
    ("no operator", "01", 1, ResponseCode.INVALID_OPERATOR),
    ("abort with an operator", "0301", 3, ResponseCode.INVALID_OPERATOR),
    ("abort with an operand", "030001", 3, ResponseCode.INVALID_OPERAND),
    ("all records with an operand", "010100", 1, ResponseCode.INVALID_OPERAND),
    (">= without a filter type", "0103", 1, ResponseCode.INVALID_OPERAND),
    (">= with half a sequence number", "0103011e", 1, ResponseCode.INVALID_OPERAND),
    (">= with a byte too many", "0103011e0000", 1, ResponseCode.INVALID_OPERAND),
    ("range with minimum above maximum", "0104010a000500", 1, ResponseCode.INVALID_OPERAND),
    ("reserved filter type 3", "0103030100", 1, ResponseCode.OPERAND_NOT_SUPPORTED),
    ("user-facing-time filter", "010302e9070101000000", 1, ResponseCode.OPERAND_NOT_SUPPORTED),
    ("abort with nothing running", "0300", 3, ResponseCode.ABORT_UNSUCCESSFUL),
]


def test_every_malformed_write_is_answered_with_the_specified_response_code(
    tmp_path: Path,
) -> None:
    async def scenario(home: VirtualHome) -> None:
        _, c = await _bonded_collector(home, tmp_path)
        await c.subscribe()
        for name, wire, op_code, code in MALFORMED:
            answer = await c.ask(bytes.fromhex(wire))
            assert answer == RacpResponse(op_code, code), name
        assert c.measurements == []
        # ... and the meter still answers a well-formed request after all of them.
        assert await c.ask(bytes(RacpRequest.count_all_records())) == RacpNumberOfRecords(RECORDS)

    run(scenario)


REPORT_RECORDS = 200


def test_malformed_and_second_requests_during_a_report_leave_it_running(
    tmp_path: Path,
) -> None:
    """While a report runs: another request is refused with ATT error 0x80; an abort with an
    operator or an operand is answered 0x03 / 0x05 and stops nothing. The report ends with
    every record and its own "success"."""

    async def scenario(home: VirtualHome) -> None:
        meter, c = await _bonded_collector(home, tmp_path, records=REPORT_RECORDS)
        meter.racp_server.record_interval_s = 0.005  # a real meter's pace: 1 s for 200
        await c.subscribe()
        await c.write(bytes(RacpRequest.report_all_records()))
        for request in (RacpRequest.count_all_records(), RacpRequest.report_last_record()):
            with pytest.raises(BleakGATTProtocolError) as busy:
                await c.write(bytes(request))
            assert busy.value.code == PROCEDURE_ALREADY_IN_PROGRESS
        assert await c.ask(bytes.fromhex("0301")) == RacpResponse(
            OpCode.ABORT_OPERATION, ResponseCode.INVALID_OPERATOR
        )
        assert await c.ask(bytes.fromhex("030001")) == RacpResponse(
            OpCode.ABORT_OPERATION, ResponseCode.INVALID_OPERAND
        )
        assert len(c.measurements) < REPORT_RECORDS  # the report was still running
        assert await c.answer() == RacpResponse(OpCode.REPORT_STORED_RECORDS, ResponseCode.SUCCESS)
        assert len(c.measurements) == REPORT_RECORDS

    run(scenario)


def test_abort_ends_a_running_report(tmp_path: Path) -> None:
    async def scenario(home: VirtualHome) -> None:
        meter, c = await _bonded_collector(home, tmp_path, records=800)
        meter.racp_server.record_interval_s = 0.005  # a real meter's pace: 4 s for 800
        await c.subscribe()
        await c.write(bytes(RacpRequest.report_all_records()))
        aborted = await c.ask(bytes(RacpRequest.abort()))
        assert aborted == RacpResponse(OpCode.ABORT_OPERATION, ResponseCode.SUCCESS)
        assert len(c.measurements) < 800
        await asyncio.sleep(0.05)
        assert c.racp.empty()  # the aborted report sends no response of its own

    run(scenario)


def _cccd(client: BleakClient, uuid: str) -> object:
    char = client.services.get_characteristic(uuid)
    assert char is not None
    descriptor = char.get_descriptor(gatt.uuid128(gatt.CLIENT_CHARACTERISTIC_CONFIGURATION))
    assert descriptor is not None
    return descriptor


@pytest.mark.parametrize("profile", [CONTOUR, NO_CONTEXT], ids=lambda p: p.key)
def test_a_bonded_collector_that_reconnects_finds_its_subscriptions_in_place(
    tmp_path: Path, profile: MeterProfile
) -> None:
    """Core Vol 3, Part G, 3.3.3.3: the CCCD values a bonded collector wrote are kept across
    connections. After reconnecting (encrypted with the bond), without writing any CCCD, the
    collector reads its values back and the RACP takes its request (no 0x81). Another
    collector, bonded too, starts with none."""

    async def scenario(home: VirtualHome) -> None:
        meter, c = await _bonded_collector(home, tmp_path, profile=profile)
        await c.subscribe()
        await c.client.disconnect()

        again = await _connected(home, meter)
        assert bytes(await again.read_gatt_descriptor(_cccd(again, MEASUREMENT))) == b"\x01\x00"  # type: ignore[arg-type]
        assert bytes(await again.read_gatt_descriptor(_cccd(again, RACP))) == b"\x02\x00"  # type: ignore[arg-type]
        await again.write_gatt_char(RACP, bytes(RacpRequest.count_all_records()), response=True)
        await again.disconnect()

        other = VirtualHome.__new__(VirtualHome)  # a second collector on the same air
        other.air, other.meters = home.air, []
        other.radio = BumbleRadio(home.air.device("neighbour"))
        store = BridgeStore(tmp_path / "neighbour.db")
        await other.pair(meter, store)
        store.close()
        stranger = await _connected(other, meter)
        assert bytes(await stranger.read_gatt_descriptor(_cccd(stranger, RACP))) == b"\x00\x00"  # type: ignore[arg-type]
        with pytest.raises(BleakGATTProtocolError) as refused:
            await stranger.write_gatt_char(
                RACP, bytes(RacpRequest.count_all_records()), response=True
            )
        assert refused.value.code == CCCD_IMPROPERLY_CONFIGURED
        await stranger.disconnect()

    run(scenario)
