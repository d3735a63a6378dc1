"""The uplink keeps a bounded number of confirmations: a bridge running for months does not
grow without limit, and the newest are the ones kept (what `wait_confirmed` waits for)."""

from __future__ import annotations

import uuid

import paho.mqtt.client as mqtt

from core.contract import BatchAck, Confirmations, acks_topic
from device.uplink import MAX_KEPT_ACKS, Uplink

BRIDGE = "home-acks"


def _confirmation(batch_ids: list[uuid.UUID]) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(topic=acks_topic(BRIDGE).encode())
    message.payload = Confirmations(
        batches=[BatchAck(batch_id=b, stored=1, duplicates=0, rejected=0) for b in batch_ids]
    ).to_json()
    return message


def test_confirmations_kept_are_bounded_and_the_newest_stay() -> None:
    uplink = Uplink(f"mqtt://{BRIDGE}:x@127.0.0.1:1", BRIDGE)  # never started: no network
    seen: list[BatchAck] = []
    uplink.on_ack = seen.append
    sent = [uuid.uuid4() for _ in range(MAX_KEPT_ACKS + 500)]
    for start in range(0, len(sent), 250):
        uplink._on_message(uplink.client, None, _confirmation(sent[start : start + 250]))
    assert len(uplink.acks) == MAX_KEPT_ACKS
    assert list(uplink.acks) == sent[-MAX_KEPT_ACKS:]
    assert len(seen) == len(sent)  # every one handed on to the courier all the same
    newest = sent[-3:]
    assert sorted(a.batch_id for a in uplink.wait_confirmed(newest, 0.1)) == sorted(newest)
