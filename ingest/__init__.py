"""MQTT consumer workers: validate, deduplicate and store readings in TimescaleDB."""
