"""A bleak backend on bumble's host: `BleakScanner(backend=BumbleScanner, radio=...)` and
`BleakClient(device, backend=BumbleClient)` over the virtual link.

The bridge uses the ordinary bleak API; this backend sits where BlueZ sits on a Raspberry
Pi. A :class:`BumbleRadio` is the collector's controller and host (its bonds kept in a
JSON key store, like BlueZ keeps them under /var/lib/bluetooth). As BlueZ does, the client
encrypts the link with the stored keys when the peer is bonded, and pairs on request,
asking `passkey_entry` for the passkey the meter shows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy
from bumble.hci import Address
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore, PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate

log = logging.getLogger(__name__)

# How long to wait for a connection; meters advertise every 100 ms to 1 s when awake.
CONNECT_TIMEOUT_S = 10.0
# The ATT MTU the collector asks for: a GLS record with context fits 23, so this only
# saves round trips on long values.
REQUESTED_MTU = 185

ATT_WRITE_HEADER = 3  # op code and handle precede the value in a write

PasskeyEntry = Callable[[], Awaitable[int]]


class BumbleRadio:
    """The collector's Bluetooth controller and host on the virtual link."""

    def __init__(self, device: Device, keystore_path: Path | None = None) -> None:
        self.device = device
        self.keystore: KeyStore = (
            JsonKeyStore(namespace="bridge", filename=str(keystore_path))
            if keystore_path is not None
            else MemoryKeyStore()
        )
        device.keystore = self.keystore
        self.passkey_entry: PasskeyEntry | None = None
        device.pairing_config_factory = self._pairing_config
        self._powered = False

    def _pairing_config(self, _connection: Connection) -> PairingConfig:
        return PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=_Keyboard(self),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )

    async def power_on(self) -> None:
        if not self._powered:
            await self.device.power_on()
            self._powered = True

    async def is_bonded(self, address: str) -> bool:
        return await self.keys(address) is not None

    async def keys(self, address: str) -> PairingKeys | None:
        for name in (address, f"{address}/P"):
            keys = await self.keystore.get(name)
            if keys is not None:
                return keys
        return None

    async def forget(self, address: str) -> None:
        for name in (address, f"{address}/P"):
            if await self.keystore.get(name) is not None:
                await self.keystore.delete(name)


class _Keyboard(PairingDelegate):
    """The collector types the passkey the meter displays."""

    def __init__(self, radio: BumbleRadio) -> None:
        super().__init__(PairingDelegate.KEYBOARD_INPUT_ONLY)
        self.radio = radio

    async def get_number(self) -> int | None:
        if self.radio.passkey_entry is None:
            return None  # nobody to ask: a negative reply, pairing fails
        return await self.radio.passkey_entry()


@dataclass(frozen=True)
class BumbleDetails:
    """`BLEDevice.details` of this backend: where the device was heard."""

    radio: BumbleRadio
    address: str


def _uuid(value: core.UUID) -> str:
    return (
        str(value.to_hex_str("-")).lower()
        if len(value.uuid_bytes) == 16
        else (f"0000{value.to_hex_str()}-0000-1000-8000-00805f9b34fb".lower())
    )


class BumbleScanner(BaseBleakScanner):
    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        radio: BumbleRadio,
        **_kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self.radio = radio
        self._active = scanning_mode == "active"

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        uuids: list[str] = []
        for kind in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            for value in data.get_all(kind):
                uuids.extend(_uuid(u) for u in value)
        if not self.is_allowed_uuid(uuids):
            return
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        local_name = name if isinstance(name, str) else None
        address = str(advertisement.address).removesuffix("/P")
        adv = AdvertisementData(
            local_name=local_name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(
            address, address, local_name, BumbleDetails(self.radio, address), adv
        )
        self.call_detection_callbacks(device, adv)

    async def start(self) -> None:
        self.seen_devices = {}
        await self.radio.power_on()
        self.radio.device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self.radio.device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        self.radio.device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self.radio.device.stop_scanning()


def _protocol_error(exc: att.ATT_Error) -> BleakGATTProtocolError:
    return BleakGATTProtocolError(int(exc.error_code))


class BumbleClient(BaseBleakClient):
    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        radio: BumbleRadio | None = None,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = CONNECT_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        if isinstance(address_or_ble_device, BLEDevice) and isinstance(
            address_or_ble_device.details, BumbleDetails
        ):
            radio = radio or address_or_ble_device.details.radio
        if radio is None:
            raise BleakError("BumbleClient needs radio= or a BLEDevice found by BumbleScanner")
        self.radio = radio
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    # -- connection ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    def _max_write(self) -> int:
        return self.mtu_size - ATT_WRITE_HEADER

    def _on_disconnection(self, _reason: int) -> None:
        self._connection = None
        self._peer = None
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        await self.radio.power_on()
        timeout = float(kwargs.get("timeout", self._timeout))
        try:
            connection = await self.radio.device.connect(Address(self.address), timeout=timeout)
        except core.TimeoutError as exc:
            raise BleakDeviceNotFoundError(self.address, f"{self.address} did not answer") from exc
        self._connection = connection
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._peer = Peer(connection)
        try:
            if await self.radio.is_bonded(self.address):
                await connection.encrypt()
            elif pair:
                await self.pair()
            await self._peer.request_mtu(REQUESTED_MTU)
            await self._discover()
        except (core.BaseBumbleError, att.ATT_Error) as exc:
            await self.disconnect()
            raise BleakError(f"{self.address}: {exc}") from exc

    async def _discover(self) -> None:
        peer = self._require_peer()
        await peer.discover_all()  # type: ignore[no-untyped-call]  # bumble leaves it unannotated
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, _uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                properties = [
                    cast(CharacteristicPropertyName, p.name.lower().replace("_", "-"))
                    for p in type(char.properties)
                    if p in char.properties and p.name is not None
                ]
                bleak_char = BleakGATTCharacteristic(
                    char, char.handle, _uuid(char.uuid), properties, self._max_write, bleak_service
                )
                collection.add_characteristic(bleak_char)
                for descriptor in char.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor, descriptor.handle, _uuid(descriptor.type), bleak_char
                        )
                    )
        self.services = collection

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            await connection.disconnect()
        except core.BaseBumbleError as exc:
            log.debug("disconnect from %s: %s", self.address, exc)
        self._connection = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond; `passkey_entry=` is asked for the passkey the meter shows."""
        connection = self._connection
        if connection is None:
            raise BleakError("not connected")
        entry = kwargs.get("passkey_entry")
        if entry is not None:
            self.radio.passkey_entry = entry
        try:
            await connection.pair()
        except core.BaseBumbleError as exc:
            raise BleakError(f"pairing with {self.address} failed: {exc}") from exc

    async def unpair(self) -> None:
        await self.radio.forget(self.address)
        await self.disconnect()

    # -- GATT ------------------------------------------------------------------------------

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **_: Any
    ) -> bytearray:
        self._require_peer()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        try:
            return bytearray(await proxy.read_value())
        except att.ATT_Error as exc:
            raise _protocol_error(exc) from exc

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **_: Any
    ) -> bytearray:
        self._require_peer()
        proxy = cast(DescriptorProxy, descriptor.obj)
        try:
            return bytearray(await proxy.read_value())
        except att.ATT_Error as exc:
            raise _protocol_error(exc) from exc

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        self._require_peer()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        try:
            await proxy.write_value(bytes(data), with_response=response)
        except att.ATT_Error as exc:
            raise _protocol_error(exc) from exc

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        self._require_peer()
        proxy = cast(DescriptorProxy, descriptor.obj)
        try:
            await proxy.write_value(bytes(data), with_response=True)
        except att.ATT_Error as exc:
            raise _protocol_error(exc) from exc

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **_: Any
    ) -> None:
        self._require_peer()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscriptions[characteristic.handle] = deliver
        try:
            await proxy.subscribe(deliver, prefer_notify=True)
        except att.ATT_Error as exc:
            raise _protocol_error(exc) from exc

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._require_peer()
        proxy = cast(CharacteristicProxy[bytes], characteristic.obj)
        deliver = self._subscriptions.pop(characteristic.handle, None)
        try:
            await proxy.unsubscribe(deliver)
        except att.ATT_Error as exc:
            raise _protocol_error(exc) from exc
