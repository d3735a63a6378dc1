"""The simulated meter speaks GLS as a real one does, over the real bumble stack: bonding
first, ATT errors 0x81 and 0x80, every RACP operator and the documented refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError

from device import ble
from device.gls import (
    DateTime,
    OpCode,
    Operator,
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponse,
    ResponseCode,
    UserFacingTimeFilter,
    decode_racp,
)
from device.pairing import PairingError, find_unbonded, pair_meter
from device.store import BridgeStore
from firmware_sim.meter import SimulatedMeter
from firmware_sim.profiles import CONTOUR
from stack.virtual_home import VirtualHome
from tests.bridge.harness import HOME, model_readings

INSUFFICIENT_ENCRYPTION = 0x0F
PROCEDURE_ALREADY_IN_PROGRESS = 0x80
CCCD_IMPROPERLY_CONFIGURED = 0x81
ANSWER_TIMEOUT_S = 10.0


async def _meter(home: VirtualHome, records: int = 30) -> SimulatedMeter:
    meter = await home.add_meter(CONTOUR, "CNO-PROTO", HOME)
    meter.load(model_readings(records))
    return meter


async def _connected(home: VirtualHome, meter: SimulatedMeter) -> BleakClient:
    client = home.stack.client(ble_device(home, meter))
    await client.connect()
    return client


def ble_device(home: VirtualHome, meter: SimulatedMeter) -> object:
    from bleak.backends.device import BLEDevice

    from firmware_sim.bleak_backend import BumbleDetails

    return BLEDevice(meter.address, meter.local_name, BumbleDetails(home.radio, meter.address))


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
            await client.read_gatt_char(ble.FEATURE)
        assert read.value.code == INSUFFICIENT_ENCRYPTION
        with pytest.raises(BleakGATTProtocolError) as subscribe:
            await client.start_notify(ble.RACP, lambda _c, _d: None)
        assert subscribe.value.code == INSUFFICIENT_ENCRYPTION
        # The Device Information Service stays open, as on real meters.
        assert bytes(await client.read_gatt_char(ble.SERIAL_NUMBER)) == b"CNO-PROTO"
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


class _Collector:
    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.racp: asyncio.Queue[bytes] = asyncio.Queue()
        self.measurements: list[bytes] = []

    async def subscribe(self, *, racp: bool = True, measurement: bool = True) -> None:
        if measurement:
            await self.client.start_notify(
                ble.MEASUREMENT, lambda _c, d: self.measurements.append(bytes(d))
            )
            await self.client.start_notify(ble.CONTEXT, lambda _c, _d: None)
        if racp:
            await self.client.start_notify(ble.RACP, lambda _c, d: self.racp.put_nowait(bytes(d)))

    async def ask(self, request: bytes) -> object:
        await self.client.write_gatt_char(ble.RACP, request, response=True)
        return decode_racp(await asyncio.wait_for(self.racp.get(), ANSWER_TIMEOUT_S))


async def _bonded_collector(
    home: VirtualHome, tmp_path: Path, records: int = 30
) -> tuple[SimulatedMeter, _Collector]:
    meter = await _meter(home, records)
    store = BridgeStore(tmp_path / "bridge.db")
    await home.pair(meter, store)
    store.close()
    return meter, _Collector(await _connected(home, meter))


def test_racp_refused_with_0x81_until_notifications_and_indication_are_enabled(
    tmp_path: Path,
) -> None:
    async def scenario(home: VirtualHome) -> None:
        _, collector = await _bonded_collector(home, tmp_path)
        await collector.subscribe(measurement=False)  # indication only: not enough
        with pytest.raises(BleakGATTProtocolError) as refused:
            await collector.ask(bytes(RacpRequest.count_all_records()))
        assert refused.value.code == CCCD_IMPROPERLY_CONFIGURED
        await collector.subscribe(racp=False)
        assert await collector.ask(bytes(RacpRequest.count_all_records())) == RacpNumberOfRecords(
            30
        )

    run(scenario)


def test_every_operator_on_sequence_numbers_and_the_documented_refusals(tmp_path: Path) -> None:
    async def scenario(home: VirtualHome) -> None:
        _, c = await _bonded_collector(home, tmp_path)
        await c.subscribe()
        ok = RacpResponse(OpCode.REPORT_STORED_RECORDS, ResponseCode.SUCCESS)
        cases: list[tuple[RacpRequest, int]] = [
            (RacpRequest.report_all_records(), 30),
            (RacpRequest.report_records_at_least(25), 5),
            (RacpRequest.report_records_at_most(4), 5),
            (RacpRequest.report_records_between(10, 12), 3),
            (RacpRequest.report_first_record(), 1),
            (RacpRequest.report_last_record(), 1),
        ]
        for request, expected in cases:
            c.measurements.clear()
            assert await c.ask(bytes(request)) == ok
            assert len(c.measurements) == expected, request
        none = await c.ask(bytes(RacpRequest.report_records_at_least(500)))
        assert none == RacpResponse(OpCode.REPORT_STORED_RECORDS, ResponseCode.NO_RECORDS_FOUND)
        count = await c.ask(bytes(RacpRequest.count_records_at_least(20)))
        assert count == RacpNumberOfRecords(10)
        by_time = RacpRequest(
            OpCode.REPORT_STORED_RECORDS,
            Operator.GREATER_THAN_OR_EQUAL_TO,
            UserFacingTimeFilter(minimum=DateTime(2025, 1, 1)),
        )
        assert await c.ask(bytes(by_time)) == RacpResponse(
            OpCode.REPORT_STORED_RECORDS, ResponseCode.OPERAND_NOT_SUPPORTED
        )
        assert await c.ask(bytes(RacpRequest.delete_all_records())) == RacpResponse(
            OpCode.DELETE_STORED_RECORDS, ResponseCode.OP_CODE_NOT_SUPPORTED
        )
        assert await c.ask(bytes([0x01, 0x07])) == RacpResponse(
            OpCode.REPORT_STORED_RECORDS, ResponseCode.INVALID_OPERATOR
        )
        minimum_above_maximum = bytes([0x01, 0x04, 0x01, 9, 0, 3, 0])
        assert await c.ask(minimum_above_maximum) == RacpResponse(
            OpCode.REPORT_STORED_RECORDS, ResponseCode.INVALID_OPERAND
        )

    run(scenario)


def test_a_second_request_during_a_report_gets_0x80_and_abort_ends_it(tmp_path: Path) -> None:
    async def scenario(home: VirtualHome) -> None:
        meter, c = await _bonded_collector(home, tmp_path, records=800)
        meter.racp_server.record_interval_s = 0.005  # a real meter's pace: 4 s for 800
        await c.subscribe()
        await c.client.write_gatt_char(
            ble.RACP, bytes(RacpRequest.report_all_records()), response=True
        )
        with pytest.raises(BleakGATTProtocolError) as busy:
            await c.client.write_gatt_char(
                ble.RACP, bytes(RacpRequest.count_all_records()), response=True
            )
        assert busy.value.code == PROCEDURE_ALREADY_IN_PROGRESS
        aborted = await c.ask(bytes(RacpRequest.abort()))
        assert aborted == RacpResponse(OpCode.ABORT_OPERATION, ResponseCode.SUCCESS)
        assert len(c.measurements) < 800
        assert c.racp.empty()  # the aborted report sends no response of its own

    run(scenario)
