"""The bridge's BlueZ pairing agent on a private D-Bus bus (a real `dbus-daemon`), called as
BlueZ calls an agent: the test owns the name `org.bluez`, serves `org.bluez.AgentManager1`
on /org/bluez, learns the agent from its `RegisterAgent` call (the caller's unique name and
the object path), then calls `org.bluez.Agent1` methods on it with BlueZ's signatures
(BlueZ doc/org.bluez.Agent.rst, doc/org.bluez.AgentManager.rst): `RequestPasskey(o) -> u`,
`DisplayPasskey(o, u, q)`, `RequestConfirmation(o, u)`, `Cancel()`, answered with
`org.bluez.Error.Rejected` / `org.bluez.Error.Canceled` where the person says no or BlueZ
withdraws the question."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusStr
from dbus_fast.service import ServiceInterface, dbus_method

from device.pairing_agent import (
    AGENT_INTERFACE,
    AGENT_PATH,
    BLUEZ,
    BLUEZ_PATH,
    CANCELED,
    CAPABILITY,
    REJECTED,
    NoReply,
    bluez_agent,
)

METER = "/org/bluez/hci0/dev_C0_00_00_00_00_01"  # how BlueZ names a device object
ANSWER_TIMEOUT_S = 10.0

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def private_bus(tmp_path: Path) -> Iterator[str]:
    """A private dbus-daemon for this test; its address."""
    binary = shutil.which("dbus-daemon")
    assert binary, "dbus-daemon not found: run scripts/bootstrap (apt-get install dbus-daemon)"
    config = tmp_path / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=tmp_path / "bus"))
    daemon = subprocess.Popen(
        [binary, f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # a private daemon may not raise its fd limit: harmless
        text=True,
    )
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().strip()
        assert address.startswith("unix:"), address
        yield address
    finally:
        daemon.terminate()
        daemon.wait(10)
        if daemon.stdout is not None:
            daemon.stdout.close()


class _AgentManager(ServiceInterface):
    """BlueZ's org.bluez.AgentManager1, recording what agents ask of it."""

    def __init__(self) -> None:
        super().__init__("org.bluez.AgentManager1")
        self.calls: list[tuple[str, list[object]]] = []

    @dbus_method()
    def RegisterAgent(self, agent: DBusObjectPath, capability: DBusStr) -> NoReply:
        self.calls.append(("RegisterAgent", [agent, capability]))

    @dbus_method()
    def RequestDefaultAgent(self, agent: DBusObjectPath) -> NoReply:
        self.calls.append(("RequestDefaultAgent", [agent]))

    @dbus_method()
    def UnregisterAgent(self, agent: DBusObjectPath) -> NoReply:
        self.calls.append(("UnregisterAgent", [agent]))


class _Person:
    """The person at the bridge's terminal, scripted."""

    def __init__(self) -> None:
        self.typed: int | None = 123456
        self.same_number = True
        self.shown: list[tuple[str, int, int]] = []
        self.asked = asyncio.Event()
        self.never_answers = False

    async def ask_passkey(self, device: str) -> int:
        self.asked.set()
        if self.never_answers:
            await asyncio.Event().wait()
        assert self.typed is not None
        return self.typed

    async def show_passkey(self, device: str, passkey: int, entered: int) -> None:
        self.shown.append((device, passkey, entered))

    async def confirm_passkey(self, device: str, passkey: int) -> bool:
        return self.same_number


class _BlueZ:
    """The test's side of the bus: the name org.bluez, the agent manager, and calls into the
    agent at the unique name it registered from."""

    def __init__(self, bus: MessageBus, manager: _AgentManager) -> None:
        self.bus = bus
        self.manager = manager
        self.agent_sender: str | None = None

    @classmethod
    async def start(cls, address: str) -> _BlueZ:
        bus = await MessageBus(bus_address=address).connect()
        manager = _AgentManager()
        bus.export(BLUEZ_PATH, manager)
        await bus.request_name(BLUEZ)
        found = cls(bus, manager)

        def remember_sender(msg: Message) -> None:
            if msg.member == "RegisterAgent" and msg.message_type is MessageType.METHOD_CALL:
                found.agent_sender = msg.sender

        bus.add_message_handler(remember_sender)
        return found

    async def call(self, member: str, signature: str = "", *body: object) -> Message:
        assert self.agent_sender is not None, "no agent registered"
        message = Message(
            destination=self.agent_sender,
            path=AGENT_PATH,
            interface=AGENT_INTERFACE,
            member=member,
            signature=signature,
            body=list(body),
        )
        reply = await asyncio.wait_for(self.bus.call(message), ANSWER_TIMEOUT_S)
        assert reply is not None
        return reply


def test_the_agent_registers_and_answers_as_bluez_asks(private_bus: str) -> None:
    async def scenario() -> None:
        bluez = await _BlueZ.start(private_bus)
        person = _Person()
        async with bluez_agent(person, private_bus):
            assert bluez.manager.calls == [
                ("RegisterAgent", [AGENT_PATH, CAPABILITY]),
                ("RequestDefaultAgent", [AGENT_PATH]),
            ]
            passkey = await bluez.call("RequestPasskey", "o", METER)
            assert (passkey.message_type, passkey.signature, passkey.body) == (
                MessageType.METHOD_RETURN,
                "u",
                [123456],
            )
            shown = await bluez.call("DisplayPasskey", "ouq", METER, 654321, 2)
            assert shown.message_type is MessageType.METHOD_RETURN
            assert person.shown == [(METER, 654321, 2)]
            same = await bluez.call("RequestConfirmation", "ou", METER, 111222)
            assert same.message_type is MessageType.METHOD_RETURN
            person.same_number = False
            different = await bluez.call("RequestConfirmation", "ou", METER, 111222)
            assert (different.message_type, different.error_name) == (MessageType.ERROR, REJECTED)
            person.typed = 1_000_000  # seven digits: not a passkey
            too_long = await bluez.call("RequestPasskey", "o", METER)
            assert too_long.error_name == REJECTED
            just_works = await bluez.call("RequestAuthorization", "o", METER)
            assert just_works.error_name == REJECTED
        assert bluez.manager.calls[-1] == ("UnregisterAgent", [AGENT_PATH])
        bluez.bus.disconnect()

    asyncio.run(scenario())


def test_cancel_withdraws_the_question_and_bluez_hears_canceled(private_bus: str) -> None:
    async def scenario() -> None:
        bluez = await _BlueZ.start(private_bus)
        person = _Person()
        person.never_answers = True  # the person walked away from the terminal
        async with bluez_agent(person, private_bus) as agent:
            pending = asyncio.ensure_future(bluez.call("RequestPasskey", "o", METER))
            await asyncio.wait_for(person.asked.wait(), ANSWER_TIMEOUT_S)
            cancelled = await bluez.call("Cancel")
            assert cancelled.message_type is MessageType.METHOD_RETURN
            reply = await pending
            assert (reply.message_type, reply.error_name) == (MessageType.ERROR, CANCELED)
            assert agent.cancelled == 1
            # The agent answers the next question as before.
            person.never_answers = False
            again = await bluez.call("RequestPasskey", "o", METER)
            assert again.body == [123456]
        bluez.bus.disconnect()

    asyncio.run(scenario())
