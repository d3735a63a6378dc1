"""The bridge's own BlueZ pairing agent, over D-Bus: no `bluetoothctl` needed on the Pi.

BlueZ asks a registered agent (interface `org.bluez.Agent1`, BlueZ's doc/org.bluez.Agent.rst)
whenever pairing needs a person: a meter that shows a passkey makes BlueZ call
`RequestPasskey` and the agent answers with the six digits typed on the bridge's terminal;
`DisplayPasskey` and `RequestConfirmation` (numeric comparison) come from devices that need
the other side to show or confirm a number; `Cancel` ends a question BlueZ no longer needs
answered. The agent registers itself with `org.bluez.AgentManager1` (`RegisterAgent` with its
capability, then `RequestDefaultAgent`) for as long as `glucobridge bridge pair` runs.

The questions go to `AgentPrompts` (the command's terminal), so the agent itself is plain
D-Bus and is tested on a private bus against a caller that speaks as BlueZ does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, Final, Protocol

from dbus_fast import BusType, DBusError
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import (
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
    DBusUInt32,
)
from dbus_fast.service import ServiceInterface, dbus_method

log = logging.getLogger(__name__)

BLUEZ: Final = "org.bluez"
BLUEZ_PATH: Final = "/org/bluez"
AGENT_INTERFACE: Final = "org.bluez.Agent1"
AGENT_MANAGER_INTERFACE: Final = "org.bluez.AgentManager1"
AGENT_PATH: Final = "/org/glucobridge/pairing_agent"
# What the bridge can do for a person: read a passkey off the meter and type it, and show a
# number or ask yes/no on its terminal. BlueZ picks the pairing method from this.
CAPABILITY: Final = "KeyboardDisplay"
# BlueZ's errors an agent answers with (org.bluez.Agent.rst).
REJECTED: Final = "org.bluez.Error.Rejected"
CANCELED: Final = "org.bluez.Error.Canceled"
PASSKEY_MAX: Final = 999_999  # six digits
# A method that answers with an empty reply (D-Bus signature ""), written so that it reads
# the same with postponed annotations.
NoReply = Annotated[None, DBusSignature("")]


class AgentPrompts(Protocol):
    """Where the agent's questions go: a person at the bridge."""

    def ask_passkey(self, device: str) -> Awaitable[int]:
        """The passkey the meter shows, as the person types it."""
        ...

    def show_passkey(self, device: str, passkey: int, entered: int) -> Awaitable[None]:
        """Show the passkey to type on the other device (`entered` digits typed so far)."""
        ...

    def confirm_passkey(self, device: str, passkey: int) -> Awaitable[bool]:
        """True when the person sees the same number on the meter."""
        ...


class PairingAgent(ServiceInterface):
    """`org.bluez.Agent1`, answering with what `prompts` gets from the person."""

    def __init__(self, prompts: AgentPrompts) -> None:
        super().__init__(AGENT_INTERFACE)
        self.prompts = prompts
        self.cancelled = 0  # how many questions BlueZ withdrew
        self._question: asyncio.Future[object] | None = None

    async def _ask(self, question: Awaitable[object]) -> object:
        """One question at a time; `Cancel` withdraws it (BlueZ then hears Canceled)."""
        self._question = asyncio.ensure_future(question)
        try:
            return await self._question
        except asyncio.CancelledError:
            raise DBusError(CANCELED, "the question was withdrawn") from None
        finally:
            self._question = None

    # Method names are BlueZ's (org.bluez.Agent1), hence CamelCase.

    @dbus_method()
    def Release(self) -> NoReply:
        log.info("BlueZ released the pairing agent")

    @dbus_method()
    async def RequestPasskey(self, device: DBusObjectPath) -> DBusUInt32:
        passkey = await self._ask(self.prompts.ask_passkey(device))
        if not isinstance(passkey, int) or not 0 <= passkey <= PASSKEY_MAX:
            raise DBusError(REJECTED, "a passkey is six digits")
        return passkey

    @dbus_method()
    async def DisplayPasskey(
        self, device: DBusObjectPath, passkey: DBusUInt32, entered: DBusUInt16
    ) -> NoReply:
        await self.prompts.show_passkey(device, passkey, entered)

    @dbus_method()
    async def RequestConfirmation(self, device: DBusObjectPath, passkey: DBusUInt32) -> NoReply:
        if not await self._ask(self.prompts.confirm_passkey(device, passkey)):
            raise DBusError(REJECTED, "the numbers differ")

    @dbus_method()
    def RequestPinCode(self, device: DBusObjectPath) -> DBusStr:
        # PIN codes are Bluetooth Classic; a glucose meter pairs over LE with a passkey.
        raise DBusError(REJECTED, "glucose meters pair with a passkey, not a PIN code")

    @dbus_method()
    def RequestAuthorization(self, device: DBusObjectPath) -> NoReply:
        # "Just works" with no number to compare: no protection against a man in the middle,
        # which a meter showing a passkey never asks for.
        raise DBusError(REJECTED, "pairing without a passkey is refused")

    @dbus_method()
    def AuthorizeService(self, device: DBusObjectPath, uuid: DBusStr) -> NoReply:
        raise DBusError(REJECTED, "the bridge offers no services to meters")

    @dbus_method()
    def Cancel(self) -> NoReply:
        self.cancelled += 1
        if self._question is not None:
            self._question.cancel()


async def register(bus: MessageBus, agent: PairingAgent) -> None:
    """Export the agent and make it BlueZ's default for this bus."""
    bus.export(AGENT_PATH, agent)
    introspection = await bus.introspect(BLUEZ, BLUEZ_PATH)
    manager = bus.get_proxy_object(BLUEZ, BLUEZ_PATH, introspection).get_interface(
        AGENT_MANAGER_INTERFACE
    )
    await manager.call_register_agent(AGENT_PATH, CAPABILITY)  # type: ignore[attr-defined]
    await manager.call_request_default_agent(AGENT_PATH)  # type: ignore[attr-defined]


async def unregister(bus: MessageBus) -> None:
    introspection = await bus.introspect(BLUEZ, BLUEZ_PATH)
    manager = bus.get_proxy_object(BLUEZ, BLUEZ_PATH, introspection).get_interface(
        AGENT_MANAGER_INTERFACE
    )
    await manager.call_unregister_agent(AGENT_PATH)  # type: ignore[attr-defined]
    bus.unexport(AGENT_PATH)


@contextlib.asynccontextmanager
async def bluez_agent(
    prompts: AgentPrompts, bus_address: str | None = None
) -> AsyncIterator[PairingAgent]:
    """The agent registered with BlueZ on the system bus (or the bus at `bus_address`)
    while the block runs."""
    found = MessageBus(bus_type=BusType.SYSTEM) if bus_address is None else MessageBus(bus_address)
    bus = await found.connect()
    agent = PairingAgent(prompts)
    try:
        await register(bus, agent)
        yield agent
        with contextlib.suppress(DBusError):  # BlueZ may have gone first
            await unregister(bus)
    finally:
        bus.disconnect()
