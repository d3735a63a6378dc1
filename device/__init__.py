"""The BLE bridge: GLS codec, sync session, per-meter checkpoints, outbox and MQTT publisher."""
