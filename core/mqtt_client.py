"""Closing a paho-mqtt client completely.

paho-mqtt 2.x wakes its network loop through a pair of loopback TCP sockets that it opens on
`loop_start()` or the first `loop()`, and that neither `disconnect()` nor `loop_stop()`
closes: only the client's `__del__` does (paho 2.2, client.py `_reset_sockets`). A client
held in a reference cycle (every client whose callbacks are bound methods of its owner) is
freed by the garbage collector, which may finalize the two sockets before the client, and
then Python reports them as leaked. Every owner of a client calls `release` once it has
disconnected and stopped the client's loop.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt


def release(client: mqtt.Client) -> None:
    """Close the client's network socket and its wake-up socket pair (idempotent)."""
    client._reset_sockets()
