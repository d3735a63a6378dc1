"""A simulated glucometer: a Glucose Profile GATT peripheral on the virtual link.

It behaves like a meter on a kitchen table: it advertises the Glucose Service (0x1808),
requires bonding before anything protected (GLS characteristics and their CCCDs need an
encrypted link), shows a 6-digit passkey when a collector pairs in pairing mode and refuses
"just works" pairing when its profile requires MITM protection, refuses a RACP request with
ATT error 0x81 until the collector enabled the measurement notifications and the RACP
indication (the Context subscription is the collector's choice, as in Nordic's
`ble_gls_are_cccd_configured`), and with 0x80 while a procedure runs. It keeps a bonded
collector's CCCD values across connections, as the Core specification requires (Vol 3,
Part G, 3.3.3.3: "the Client Characteristic Configuration descriptor value shall be
persistent across connections for bonded devices"). Records are encoded with the bridge's
own GLS codec (device.gls), stamped by the meter's own (wrong, drifting) clock.
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
from device.gls import uuids as gatt
from firmware_sim.clock import MeterClock
from firmware_sim.encode import encode_reading
from firmware_sim.memory import RecordMemory, StoredRecord
from firmware_sim.model import ModelReading
from firmware_sim.profiles import MeterProfile
from firmware_sim.racp_server import RacpServer

log = logging.getLogger(__name__)

# A measurement's sequence number ends at this byte (flags u8, then the u16).
SEQUENCE_END = 3
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

    async def confirm(self, auto: bool = False) -> bool:
        """Asked only for "just works" pairing: a meter that requires MITM protection (it
        shows a passkey) refuses it, whatever the collector's input capabilities."""
        return not self.meter.profile.passkey_pairing

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
            gatt.uuid16(gatt.MEASUREMENT), _NOTIFY, Characteristic.Permissions(0)
        )
        self.context: Characteristic[bytes] = Characteristic(
            gatt.uuid16(gatt.CONTEXT), _NOTIFY, Characteristic.Permissions(0)
        )
        self.racp: Characteristic[bytes] = Characteristic(
            gatt.uuid16(gatt.RACP),
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            Characteristic.WRITE_REQUIRES_ENCRYPTION,
            CharacteristicValue(write=self._on_racp_write),
        )
        self.racp_server = RacpServer(self)
        # CCCD values of bonded collectors, by their identity address, kept across links.
        self.bonded_cccds: dict[str, dict[int, bytes]] = {}
        device.on(Device.EVENT_CONNECTION, self._on_connection)
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
        characteristic.on(Characteristic.EVENT_SUBSCRIPTION, self._remember_cccds)
        return Descriptor(
            GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
            Descriptor.READABLE | _ENCRYPTED_WRITE,
            self.device.gatt_server.make_descriptor_value(characteristic),
        )

    def _remember_cccds(self, connection: Connection, _notify: bool, _indicate: bool) -> None:
        # Only an encrypted link may write a CCCD here, and only a bonded collector encrypts.
        cccds = self.device.gatt_server.subscribers.get(connection, {})
        self.bonded_cccds[str(connection.peer_address)] = dict(cccds)

    def _on_connection(self, connection: Connection) -> None:
        def restore() -> None:
            saved = self.bonded_cccds.get(str(connection.peer_address))
            if connection.is_encrypted and saved:
                self.device.gatt_server.subscribers.setdefault(connection, {}).update(saved)

        connection.on(Connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, restore)

    def _services(self) -> list[Service]:
        feature: Characteristic[bytes] = Characteristic(
            gatt.uuid16(gatt.FEATURE),
            Characteristic.Properties.READ,
            _ENCRYPTED_READ,
            bytes(GlucoseFeature(self.profile.features)),
        )
        chars = [self.measurement, feature, self.racp]
        if self.profile.context_records:
            chars.insert(1, self.context)
        if self.profile.clock_in_glucose_service:
            date_time: Characteristic[bytes] = Characteristic(
                gatt.uuid16(gatt.DATE_TIME),
                Characteristic.Properties.READ,
                _ENCRYPTED_READ,
                CharacteristicValue(read=lambda _c: self.date_time_value()),
            )
            chars.append(date_time)
        for char in (self.measurement, self.context, self.racp):
            char.descriptors = [self._cccd(char)]
        services = [
            Service(gatt.uuid16(gatt.GLUCOSE_SERVICE), chars),
            DeviceInformationService(
                manufacturer_name=self.profile.manufacturer,
                model_number=self.profile.model,
                serial_number=self.serial,
            ),
        ]
        if self.profile.current_time_service:
            current_time: Characteristic[bytes] = Characteristic(
                gatt.uuid16(gatt.CURRENT_TIME),
                Characteristic.Properties.READ,
                Characteristic.READABLE,
                CharacteristicValue(read=lambda _c: self.current_time_value()),
            )
            services.append(Service(gatt.uuid16(gatt.CURRENT_TIME_SERVICE), [current_time]))
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
                        gatt.GLUCOSE_SERVICE.to_bytes(2, "little"),
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

    def date_time_value(self) -> bytes:
        """Date Time (0x2A08): the meter's wall clock, as Roche meters expose it."""
        return bytes(DateTime.from_datetime(self.clock.now_local().replace(microsecond=0)))

    def is_subscribed(self, connection: Connection) -> bool:
        """True when the collector enabled what the RACP needs: measurement notifications
        and the RACP indication (the Context subscription is optional)."""
        cccds = self.device.gatt_server.subscribers.get(connection, {})

        def bits(char: Characteristic[bytes]) -> int:
            value = cccds.get(char.handle, b"\x00\x00")
            return value[0] if value else 0

        wanted = [(self.measurement, gatt.CCCD_NOTIFY), (self.racp, gatt.CCCD_INDICATE)]
        return all(bits(char) & bit for char, bit in wanted)

    def _on_racp_write(self, connection: Connection, value: bytes) -> None:
        self.racp_server.on_write(connection, value)

    async def notify(self, connection: Connection, record: StoredRecord) -> None:
        await self.device.notify_subscriber(connection, self.measurement, record.measurement)
        if record.context is not None and self.profile.context_records:
            await self.device.notify_subscriber(connection, self.context, record.context)

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

    def store_raw(self, measurement: bytes, context: bytes | None = None) -> StoredRecord:
        """Store bytes as a faulty meter would (the sequence number read from them, or the
        next one when they are too short to carry it); the counter moves on."""
        number = self.memory.take_sequence_number()
        if len(measurement) >= SEQUENCE_END:
            number = int.from_bytes(measurement[1:SEQUENCE_END], "little")
        stored = StoredRecord(number, measurement, context)
        self.memory.add(stored)
        return stored

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
