"""Simulated meters: real patients replayed now; the GLS GATT peripheral comes with BLE."""
