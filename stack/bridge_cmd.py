"""`glucobridge bridge`: the home bridge. `bridge pair` bonds with a meter in pairing mode,
registering its own BlueZ pairing agent (D-Bus) that asks for the passkey on the terminal;
`bridge run` scans for bonded meters, syncs them and delivers their readings.

GLUCOBRIDGE_BLE_BACKEND=bleak (the default) uses bleak's platform backend: BlueZ on a
Raspberry Pi. `virtual` runs simulated meters on bumble's in-process link instead, so the
whole flow can be tried on any machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from core.settings import BridgeSettings
from device.ble import BleStack
from device.bridge import Bridge, BridgeConfig
from device.courier import Courier
from device.pairing import PairingError, find_unbonded, pair_meter
from device.store import BridgeStore
from device.uplink import Uplink

log = logging.getLogger(__name__)

# Days of readings a virtual demo meter holds.
VIRTUAL_METER_DAYS = 30
VIRTUAL_METER_SERIAL = "SIM-CNO-0001"


def _store(settings: BridgeSettings) -> BridgeStore:
    return BridgeStore(Path(settings.bridge_state_dir) / "bridge.db")


async def _virtual_home(settings: BridgeSettings, store: BridgeStore) -> tuple[BleStack, object]:
    """A simulated Contour-like meter on the virtual link, bonded on first use."""
    from firmware_sim.model import GlucoseModel
    from firmware_sim.profiles import CONTOUR
    from stack.virtual_home import VirtualHome

    zone = ZoneInfo(settings.timezone)
    # The simulated meter lives only as long as this process, and its bonds with it.
    home = VirtualHome()
    meter = await home.add_meter(CONTOUR, VIRTUAL_METER_SERIAL, zone)
    start = date.today() - timedelta(days=VIRTUAL_METER_DAYS)
    meter.load(GlucoseModel(1, zone).readings(start, VIRTUAL_METER_DAYS))
    meter.pairing_mode = True
    return home.stack, home


async def _prompt_passkey() -> int:
    text = await asyncio.to_thread(click.prompt, "Passkey shown on the meter", type=str)
    return int(text.strip())


class TerminalPrompts:
    """The pairing agent's questions, asked on this terminal (device.pairing_agent)."""

    async def ask_passkey(self, device: str) -> int:
        return await _prompt_passkey()

    async def show_passkey(self, device: str, passkey: int, entered: int) -> None:
        click.echo(f"Type {passkey:06d} on the device ({entered} digits typed so far)")

    async def confirm_passkey(self, device: str, passkey: int) -> bool:
        question = f"Does the meter show {passkey:06d}?"
        return bool(await asyncio.to_thread(click.confirm, question, default=False))


@click.group()
def bridge() -> None:
    """The home bridge: meters over Bluetooth (GLS) to the broker (MQTT)."""


@bridge.command()
@click.option("--address", default=None, help="Pair this meter (Bluetooth address) only.")
def pair(address: str | None) -> None:
    """Bond with a meter in pairing mode; type the passkey it shows."""
    settings = BridgeSettings()
    store = _store(settings)

    async def pair_one(stack: BleStack) -> None:
        found = await find_unbonded(stack, store, settings.scan_s)
        found = [d for d in found if address is None or d.address == address]
        if not found:
            raise click.ClickException("no meter in pairing mode heard (is it showing 'PAIR'?)")
        device = found[0]
        click.echo(f"pairing with {device.name or '?'} ({device.address})")
        try:
            meter = await pair_meter(stack, store, device, _prompt_passkey)
        except PairingError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"bonded: {meter.name or '?'} serial {meter.serial or '?'} ({meter.address})")

    async def main() -> None:
        if settings.ble_backend == "virtual":
            stack, _home = await _virtual_home(settings, store)
            await pair_one(stack)  # the virtual link asks for the passkey itself
            return
        # BlueZ asks its registered agent for the passkey: this command is that agent.
        from device.pairing_agent import bluez_agent

        async with bluez_agent(TerminalPrompts()):
            await pair_one(BleStack())

    try:
        asyncio.run(main())
    finally:
        store.close()


@bridge.command()
@click.option("--once", is_flag=True, help="One scan and sync, deliver, then exit.")
def run(once: bool) -> None:
    """Sync bonded meters and deliver their readings until stopped."""
    settings = BridgeSettings()
    store = _store(settings)
    ca_file = Path(settings.mqtt_ca_file) if settings.mqtt_ca_file else None
    uplink = Uplink(settings.mqtt_url, settings.bridge_id, ca_file=ca_file, broker=settings.broker)

    async def main() -> None:
        stack = BleStack()
        if settings.ble_backend == "virtual":
            stack, home = await _virtual_home(settings, store)
            from stack.virtual_home import VirtualHome

            assert isinstance(home, VirtualHome)
            await home.pair(home.meters[0], store)  # a new simulated meter each run
        uplink.start(wait=False)  # the outbox holds everything while the broker is away
        courier = Courier(store, uplink, stall_after=settings.stall_after_s)
        courier.attach(asyncio.get_running_loop())
        config = BridgeConfig(
            settings.bridge_id,
            ZoneInfo(settings.timezone),
            scan_s=settings.scan_s,
            sync_interval_s=settings.sync_interval_s,
        )
        the_bridge = Bridge(config, store, stack, courier=courier)
        if once:
            task = asyncio.get_running_loop().create_task(courier.run())
            for report in await the_bridge.sync_all():
                click.echo(f"{report.serial or report.address}: {report.readings} new readings")
            await courier.drained()
            task.cancel()
            return
        await the_bridge.run(asyncio.Event())

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    finally:
        uplink.close()
        store.close()
