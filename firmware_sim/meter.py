"""A simulated glucometer: a Glucose Profile GATT peripheral on the virtual link.

It behaves like a meter on a kitchen table: it advertises the Glucose Service (0x1808),
requires bonding before anything protected (GLS characteristics and their CCCDs need an
encrypted link), shows a 6-digit passkey when a collector pairs in pairing mode, refuses a
RACP request with ATT error 0x81 until the collector enabled the measurement notifications
and the RACP indication, and with 0x80 while a procedure runs. Records are encoded with the
bridge's own GLS codec (device.gls), stamped by the meter's own (wrong, drifting) clock.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.keys import MemoryKeyStore
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.profiles.device_information_service import DeviceInformationService

from device.gls import DateTime, GlucoseFeature
from firmware_sim.clock import MeterClock
from firmware_sim.encode import encode_reading
from firmware_sim.memory import RecordMemory, StoredRecord
from firmware_sim.model import ModelReading
from firmware_sim.profiles import MeterProfile
from firmware_sim.racp_server import RacpServer

log = logging.getLogger(__name__)

GLS_UUID = "1808"
MEASUREMENT_UUID = "2A18"
CONTEXT_UUID = "2A34"
FEATURE_UUID = "2A51"
RACP_UUID = "2A52"
CTS_UUID = "1805"
CURRENT_TIME_UUID = "2A2B"
# Advertising every 100 ms (the fast interval meters use right after a test).
ADVERTISING_INTERVAL_MS = 100.0
PASSKEY_DIGITS = 6
_PASSKEY_LIMIT = 10**PASSKEY_DIGITS
_NOTIFY = Characteristic.Properties.NOTIFY
_ENCRYPTED_READ = Characteristic.READ_REQUIRES_ENCRYPTION | Characteristic.READABLE
_ENCRYPTED_WRITE = Characteristic.WRITE_REQUIRES_ENCRYPTION | Characteristic.WRITEABLE


class _MeterDelegate(PairingDelegate):
    """The meter's side of pairing: a display, no keyboard; refuses outside pairing mode."""

    def __init__(self, meter: SimulatedMeter) -> None:
        io = (
            PairingDelegate.DISPLAY_OUTPUT_ONLY
            if meter.profile.passkey_pairing
            else PairingDelegate.NO_OUTPUT_NO_INPUT
        )
        super().__init__(io)
        self.meter = meter

    async def accept(self) -> bool:
        return self.meter.pairing_mode

    async def generate_passkey(self) -> int:
        return (
            self.meter.fixed_passkey
            if self.meter.fixed_passkey is not None
            else (secrets.randbelow(_PASSKEY_LIMIT))
        )

    async def display_number(self, number: int, digits: int) -> None:
        self.meter.shown_passkey = number
        log.warning("meter %s shows passkey %0*d", self.meter.serial, digits, number)
        for listener in self.meter.passkey_listeners:
            listener(number)


class SimulatedMeter:
    """One meter; `await start()` inside the event loop that runs the virtual air."""

    def __init__(
        self,
        device: Device,
        profile: MeterProfile,
        serial: str,
        zone: ZoneInfo,
        *,
        clock: MeterClock | None = None,
        capacity: int | None = None,
        fixed_passkey: int | None = None,
    ) -> None:
        self.device = device
        self.profile = profile
        self.serial = serial
        self.zone = zone
        self.clock = clock or MeterClock(zone)
        self.memory = RecordMemory(capacity or profile.capacity)
        self.fixed_passkey = fixed_passkey
        self.shown_passkey: int | None = None
        self.passkey_listeners: list[Callable[[int], None]] = []
        self.pairing_mode = False
        self.strip_inserted = False
        self.measurement: Characteristic[bytes] = Characteristic(
            MEASUREMENT_UUID, _NOTIFY, Characteristic.Permissions(0)
        )
        self.context: Characteristic[bytes] = Characteristic(
            CONTEXT_UUID, _NOTIFY, Characteristic.Permissions(0)
        )
        self.racp: Characteristic[bytes] = Characteristic(
            RACP_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            Characteristic.WRITE_REQUIRES_ENCRYPTION,
            CharacteristicValue(write=self._on_racp_write),
        )
        self.racp_server = RacpServer(self)
        device.keystore = MemoryKeyStore()
        device.pairing_config_factory = lambda _connection: PairingConfig(
            sc=True,
            mitm=profile.passkey_pairing,
            bonding=True,
            delegate=_MeterDelegate(self),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )

    # -- GATT ------------------------------------------------------------------------

    def _cccd(self, characteristic: Characteristic[bytes]) -> Descriptor:
        """A CCCD that only a bonded (encrypted) collector may write, as GLS requires."""
        return Descriptor(
            GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
            Descriptor.READABLE | _ENCRYPTED_WRITE,
            self.device.gatt_server.make_descriptor_value(characteristic),
        )

    def _services(self) -> list[Service]:
        feature = Characteristic(
            FEATURE_UUID,
            Characteristic.Properties.READ,
            _ENCRYPTED_READ,
            bytes(GlucoseFeature(self.profile.features)),
        )
        chars = [self.measurement, feature, self.racp]
        if self.profile.context_records:
            chars.insert(1, self.context)
        for char in (self.measurement, self.context, self.racp):
            char.descriptors = [self._cccd(char)]
        services = [
            Service(GLS_UUID, chars),
            DeviceInformationService(
                manufacturer_name=self.profile.manufacturer,
                model_number=self.profile.model,
                serial_number=self.serial,
            ),
        ]
        if self.profile.current_time_service:
            current_time: Characteristic[bytes] = Characteristic(
                CURRENT_TIME_UUID,
                Characteristic.Properties.READ,
                Characteristic.READABLE,
                CharacteristicValue(read=lambda _c: self.current_time_value()),
            )
            services.append(Service(CTS_UUID, [current_time]))
        return services

    @property
    def local_name(self) -> str:
        return f"{self.profile.name_prefix}-{self.serial[-4:]}"

    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),  # LE general discoverable, no BR/EDR
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        bytes.fromhex("0818"),
                    ),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.local_name.encode()),
                ]
            )
        )

    async def start(self) -> None:
        self.device.add_services(self._services())
        await self.device.power_on()
        await self.advertise()

    async def advertise(self) -> None:
        await self.device.start_advertising(
            advertising_data=self.advertising_data(),
            auto_restart=True,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    @property
    def address(self) -> str:
        return str(self.device.public_address).removesuffix("/P")

    def current_time_value(self) -> bytes:
        """Current Time (0x2A2B): Date Time, day of week, fractions256, adjust reason."""
        now = self.clock.now_local()
        return bytes(DateTime.from_datetime(now)) + bytes([now.isoweekday(), 0, 0])

    def is_subscribed(self, connection: Connection) -> bool:
        """True when the collector enabled what the RACP needs (GLS 1.0, 3.2.5.x)."""
        cccds = self.device.gatt_server.subscribers.get(connection, {})

        def bits(char: Characteristic[bytes]) -> int:
            value = cccds.get(char.handle, b"\x00\x00")
            return value[0] if value else 0

        wanted = [(self.measurement, 0x01), (self.racp, 0x02)]
        if self.profile.context_records:
            wanted.append((self.context, 0x01))
        return all(bits(char) & bit for char, bit in wanted)

    def _on_racp_write(self, connection: Connection, value: bytes) -> None:
        self.racp_server.on_write(connection, value)

    async def notify(self, connection: Connection, record: StoredRecord) -> None:
        await self.device.notify_subscriber(connection, self.measurement, bytes(record.measurement))
        if record.context is not None:
            await self.device.notify_subscriber(connection, self.context, bytes(record.context))

    async def indicate(self, connection: Connection, value: bytes) -> None:
        await self.device.indicate_subscriber(connection, self.racp, value)

    # -- the patient's hands -----------------------------------------------------------

    def record(self, reading: ModelReading) -> StoredRecord:
        """Store a result as the meter would have when it was taken."""
        stored = encode_reading(
            reading, self.memory.take_sequence_number(), self.clock, self.profile
        )
        self.memory.add(stored)
        return stored

    def load(self, readings: Iterable[ModelReading]) -> None:
        for reading in readings:
            self.record(reading)

    async def insert_strip(self) -> None:
        """A strip goes in; meters of the Accu-Chek kind drop the BLE link to measure."""
        self.strip_inserted = True
        if self.profile.drops_link_on_strip:
            await self.drop_links()

    def measure(self, reading: ModelReading | None = None, mg_dl: int = 110) -> StoredRecord:
        """The result of the strip inserted before, now or as given."""
        self.strip_inserted = False
        return self.record(reading or ModelReading(datetime.now(UTC), mg_dl))

    async def drop_links(self) -> None:
        for connection in list(self.device.connections.values()):
            await connection.disconnect()

    async def stop(self) -> None:
        await self.drop_links()
        await self.device.stop_advertising()
        await self.device.power_off()
