"""Domain types, the MQTT contract, clinical metrics, settings and the database schema."""
