"""A private Mosquitto with the dynamic security plugin: the one broker set-up of `make
test`, `make demo` and production, generated from the role table in `core.broker_roles`.

The plugin's initial JSON holds the shared roles and the service users (the API's admin,
ingest workers `ingest-0` ... `ingest-{n-1}`, the alerts worker); bridges and home displays
are provisioned at run time through the admin (`api.broker_admin`), as the API does. The
plugin saves every change to that file, so a restarted broker keeps them.
"""

from __future__ import annotations

import getpass
import glob
import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from api.broker_admin import BrokerAdmin
from core.broker_roles import (
    ADMIN_USER,
    ALERTS_USER,
    INGEST_USER,
    ServicePasswords,
    initial_config,
)
from stack.proc import StackError, free_port, port_open, spawn, stop, wait_until

# Messages kept for an offline persistent session (a restarted ingest worker). Mosquitto's
# default of 1,000 would drop most of a sync backlog; the bridges' outboxes re-send beyond it.
MAX_QUEUED_MESSAGES = 1_000_000
# Ingest worker users the private broker starts with (`ingest-0` ...): the demo runs one,
# tests up to two at once; more are provisioned on demand (`Services.ingest_url`).
LOCAL_INGEST_WORKERS = 4


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise StackError(f"{name} not found: run scripts/bootstrap (or apt-get install mosquitto)")
    return found


# Mosquitto's dynamic security plugin. Debian installs it in the architecture's library
# directory (/usr/lib/<multiarch>/); other builds put it under lib/ of their prefix. An
# operator names another place with GLUCOBRIDGE_MOSQUITTO_DYNSEC_PLUGIN.
DYNSEC_PLUGIN_VARIABLE = "GLUCOBRIDGE_MOSQUITTO_DYNSEC_PLUGIN"
DYNSEC_PLUGIN_NAME = "mosquitto_dynamic_security.so"
_PLUGIN_PATTERNS = ("/usr/lib/*/", "/usr/lib/", "/usr/local/lib/*/", "/usr/local/lib/")


def dynsec_plugin() -> Path:
    """The dynamic security plugin of the installed Mosquitto, found at run time."""
    configured = os.environ.get(DYNSEC_PLUGIN_VARIABLE)
    if configured:
        if not Path(configured).is_file():
            raise StackError(f"{DYNSEC_PLUGIN_VARIABLE}={configured}: no such file")
        return Path(configured)
    for pattern in _PLUGIN_PATTERNS:
        found = sorted(glob.glob(pattern + DYNSEC_PLUGIN_NAME))
        if found:
            return Path(found[0])
    raise StackError(
        f"{DYNSEC_PLUGIN_NAME} not found: run scripts/bootstrap (apt-get install mosquitto) "
        f"or set {DYNSEC_PLUGIN_VARIABLE}"
    )


def write_dynsec_config(path: Path, passwords: ServicePasswords, *, ingest_workers: int) -> None:
    """The plugin's initial JSON, readable by its owner only (it holds password hashes)."""
    draft = path.with_suffix(".new")
    draft.touch(mode=0o600)
    draft.write_text(json.dumps(initial_config(passwords, ingest_workers=ingest_workers), indent=2))
    os.replace(draft, path)


def broker_url(user: str, password: str, port: int, host: str = "127.0.0.1") -> str:
    return f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}"


@dataclass
class Mosquitto:
    """One private broker under `root`, with passwords generated for this run."""

    root: Path
    port: int = field(default_factory=free_port)
    max_queued_messages: int = MAX_QUEUED_MESSAGES
    ingest_workers: int = LOCAL_INGEST_WORKERS
    passwords: ServicePasswords = field(default_factory=ServicePasswords.generate)
    # Bridges provisioned through `add_user`, so `url(bridge_id)` can name them.
    bridges: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    # Written by this instance: a restart keeps what was provisioned since, while a first
    # start replaces a file an earlier run left under the same root (other passwords).
    written: bool = False

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def log(self) -> Path:
        return self.root / "mosquitto.log"

    @property
    def dynsec_file(self) -> Path:
        return self.root / "dynamic-security.json"

    @property
    def admin_url(self) -> str:
        return broker_url(ADMIN_USER, self.passwords.admin, self.port)

    @property
    def ingest_url(self) -> str:
        """The ingest workers' URL: worker i signs in as `ingest-i` with its password."""
        return broker_url(INGEST_USER, self.passwords.ingest, self.port)

    @property
    def alerts_url(self) -> str:
        return broker_url(ALERTS_USER, self.passwords.alerts, self.port)

    def admin(self) -> BrokerAdmin:
        return BrokerAdmin(self.admin_url)

    def url(self, user: str = INGEST_USER) -> str:
        """The URL of a service user or of a bridge provisioned with `add_user`."""
        if user == INGEST_USER:
            return self.ingest_url
        if user == ALERTS_USER:
            return self.alerts_url
        if user == ADMIN_USER:
            return self.admin_url
        return broker_url(user, self.bridges[user], self.port)

    def add_user(self, bridge_id: str) -> str:
        """Provision a bridge on the running broker (made afresh if it exists); returns its
        password."""
        credentials = self.admin().replace_bridge_sync(bridge_id)
        self.bridges[bridge_id] = credentials.password
        return credentials.password

    def _write_config(self) -> Path:
        (self.root / "data").mkdir(exist_ok=True)
        if not self.written:
            write_dynsec_config(
                self.dynsec_file, self.passwords, ingest_workers=self.ingest_workers
            )
            self.written = True
        conf = self.root / "mosquitto.conf"
        conf.write_text(
            f"""\
# Generated by glucobridge's stack; changes are overwritten at the next start.
user {getpass.getuser()}
listener {self.port} 127.0.0.1
allow_anonymous false
plugin {dynsec_plugin()}
plugin_opt_config_file {self.dynsec_file}
persistence true
persistence_location {self.root / "data"}/
max_queued_messages {self.max_queued_messages}
log_dest stdout
log_type error
log_type warning
log_type notice
connection_messages false
"""
        )
        return conf

    def start(self) -> None:
        conf = self._write_config()
        self.proc = spawn(
            [_binary("mosquitto"), "-c", str(conf)], log=self.log, stop_signal=signal.SIGTERM
        )
        wait_until(lambda: port_open(self.port), self.proc, "mosquitto", self.log)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGTERM)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
