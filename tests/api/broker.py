"""A private Mosquitto with the dynamic security plugin: the broker configuration this issue
asks of stack/mosquitto.py, prototyped here for the tests until the stack adopts it."""

from __future__ import annotations

import getpass
import json
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from api.broker_admin import dynsec_config
from stack.mosquitto import dynsec_plugin
from stack.proc import free_port, port_open, spawn, stop, wait_until

ADMIN_USER = "api"
INGEST_USER = "ingest"


@dataclass
class DynsecMosquitto:
    root: Path
    port: int = field(default_factory=free_port)
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    ingest_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.root / "mosquitto.log"

    def url(self, user: str, password: str) -> str:
        return f"mqtt://{quote(user)}:{quote(password)}@127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return self.url(ADMIN_USER, self.admin_password)

    @property
    def ingest_url(self) -> str:
        return self.url(INGEST_USER, self.ingest_password)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        dynsec = self.root / "dynamic-security.json"
        dynsec.write_text(
            json.dumps(
                dynsec_config(
                    admin_user=ADMIN_USER,
                    admin_password=self.admin_password,
                    ingest_user=INGEST_USER,
                    ingest_password=self.ingest_password,
                ),
                indent=2,
            )
        )
        dynsec.chmod(0o600)
        conf = self.root / "mosquitto.conf"
        conf.write_text(
            f"""\
user {getpass.getuser()}
listener {self.port} 127.0.0.1
allow_anonymous false
plugin {dynsec_plugin()}
plugin_opt_config_file {dynsec}
persistence false
log_dest stdout
log_type error
log_type warning
log_type all
connection_messages true
"""
        )
        self.proc = spawn(["mosquitto", "-c", str(conf)], log=self.log, stop_signal=signal.SIGTERM)
        wait_until(lambda: port_open(self.port), self.proc, "mosquitto (dynsec)", self.log)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM)
            self.proc = None
