"""A private RabbitMQ cluster: three nodes on loopback, the clustered transport
(`GLUCOBRIDGE_BROKER=rabbitmq`), for `glucobridge cluster`, the cluster tests and anyone
trying the shape of a multi-machine deployment on one machine.

Every node has its own ports (AMQP, MQTT, Erlang distribution), all nodes share a private
epmd on a port of their own and an Erlang cookie of this run, and keep their files under
`root`: a RabbitMQ installed as a system service (5672, 25672, epmd on 4369) is never
touched. Each node has an absolute memory limit and Erlang flags that keep an idle node
from spinning its schedulers (`+sbwt none`), so three nodes sit quietly on a small machine.

What the deployment needs from the broker, set before any bridge connects:

- `mqtt.durable_queue_type = quorum`: a bridge's MQTT session queue (its acks) is a quorum
  queue too, so a bridge whose node dies finds its session on the node it fails over to.
- The readings land in the quorum queue `glucobridge.readings` (3 replicas) bound to
  `amq.topic` for every bridge's readings topic; the MQTT plugin sends PUBACK only once that
  queue has the message on a majority of nodes. Ingest workers consume it over AMQP
  (`ingest.amqp_worker`) and publish confirmations to `amq.topic`, which the MQTT plugin
  delivers to the bridge's acks subscription.
- Bridges' status heartbeats land in `glucobridge.status` (bounded); ingest records when it
  last heard each bridge (`bridges.last_seen_at`): retained messages and last wills are per
  node on RabbitMQ, so online status cannot rest on them.
- An alternate exchange on `amq.topic` (`glucobridge.unroutable`, its own quorum queue,
  bounded): a publish that matches no binding would otherwise be PUBACKed and dropped.
- Users and permissions from the same trust rules as Mosquitto's (core.broker_roles): a
  bridge publishes only its own readings and status, and reads only its own acks (topic
  permissions with `{username}` templates); ingest users consume the readings queue and
  publish acks; the admin user (this module) provisions.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from core.broker_roles import ALERTS_USER, INGEST_USER, worker_user
from core.contract import TOPIC_ROOT
from core.rabbit_roles import (
    EXCHANGE,
    NOTHING,
    VHOST,
    bridge_definitions,
    routing_key,
)
from core.rabbit_roles import permission as _permission
from core.rabbit_roles import topic_permission as _topic_permission
from core.rabbit_roles import user_entry as _user
from ingest.amqp_worker import READINGS_QUEUE, STATUS_QUEUE
from stack.proc import StackError, free_port, port_open, spawn, stop, tail

# Debian's package puts the server's scripts here; the wrapper in /usr/sbin insists on
# running as the system's `rabbitmq` user with the system's files, which we must not use.
_SBIN_PATTERNS = ("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin",)
SBIN_VARIABLE = "GLUCOBRIDGE_RABBITMQ_SBIN"

NODES = 3
# Per node: the measurements saw 130-185 MiB resident per idle-to-busy node.
MEMORY_LIMIT_MIB = 384
# Quiet schedulers: no busy-waiting, one scheduler thread (three nodes share two cores).
ERL_ARGS = "+sbwt none +sbwtdcpu none +sbwtdio none +S 1:1 +SDio 2 +A 4"
# Node boot takes a few seconds here; joining a cluster a few more on a loaded machine.
NODE_START_TIMEOUT_S = 90.0
CLI_TIMEOUT_S = 60.0

UNROUTABLE_EXCHANGE: Final = "glucobridge.unroutable"
UNROUTABLE_QUEUE: Final = "glucobridge.unroutable"
# Unroutable publishes kept (acks for a bridge never connected, status with no reader):
# enough to see what went wrong, bounded so a quiet mistake cannot fill the disk.
UNROUTABLE_MAX = 100_000
ADMIN_USER: Final = "glucobridge-admin"


_ROOT_KEY = re.escape(routing_key(TOPIC_ROOT))
READINGS_BINDING: Final = f"{routing_key(TOPIC_ROOT)}.bridges.*.readings"
STATUS_BINDING: Final = f"{routing_key(TOPIC_ROOT)}.bridges.*.status"
# Heartbeats kept while no worker reads them: only the newest matter.
STATUS_MAX = 10_000


# The same rules as Mosquitto's service roles, on routing keys (the bridges' and displays'
# are in core.rabbit_roles, which the API provisions with).
# Ingest publishes confirmations to any bridge and binds nothing of its own on amq.topic.
INGEST_TOPIC_WRITE: Final = rf"^{_ROOT_KEY}\.bridges\.[^.]+\.acks$"
ALERTS_TOPIC_WRITE: Final = rf"^{_ROOT_KEY}\.patients\.[^.]+\.alerts$"


def service_definitions(
    admin_password: str, ingest_password: str, alerts_password: str, *, ingest_workers: int
) -> dict[str, Any]:
    """The admin, ingest workers and alerts users; the readings queue, the alternate
    exchange and its queue, their bindings and policies. Imported once all nodes have
    joined, so the quorum queues start with a member on every node."""
    consumed = f"{re.escape(READINGS_QUEUE)}|{re.escape(STATUS_QUEUE)}"
    workers = [worker_user(INGEST_USER, i) for i in range(ingest_workers)]
    quorum = {"x-queue-type": "quorum", "x-quorum-initial-group-size": NODES}
    return {
        "users": [
            _user(ADMIN_USER, admin_password, ["administrator"]),
            *(_user(w, ingest_password) for w in workers),
            _user(ALERTS_USER, alerts_password),
        ],
        "vhosts": [{"name": VHOST}],
        "permissions": [
            _permission(ADMIN_USER, ".*", ".*", ".*"),
            *(_permission(w, NOTHING, r"^amq\.topic$", f"^({consumed})$") for w in workers),
            _permission(ALERTS_USER, NOTHING, r"^amq\.topic$", NOTHING),
        ],
        "topic_permissions": [
            *(_topic_permission(w, INGEST_TOPIC_WRITE, NOTHING) for w in workers),
            _topic_permission(ALERTS_USER, ALERTS_TOPIC_WRITE, NOTHING),
        ],
        "exchanges": [
            {
                "name": UNROUTABLE_EXCHANGE,
                "vhost": VHOST,
                "type": "fanout",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "queues": [
            {
                "name": name,
                "vhost": VHOST,
                "durable": True,
                "auto_delete": False,
                "arguments": arguments,
            }
            for name, arguments in (
                (READINGS_QUEUE, quorum),
                (UNROUTABLE_QUEUE, {**quorum, "x-max-length": UNROUTABLE_MAX}),
                (
                    STATUS_QUEUE,
                    {**quorum, "x-max-length": STATUS_MAX, "x-overflow": "drop-head"},
                ),
            )
        ],
        "bindings": [
            {
                "source": EXCHANGE,
                "vhost": VHOST,
                "destination": READINGS_QUEUE,
                "destination_type": "queue",
                "routing_key": READINGS_BINDING,
                "arguments": {},
            },
            {
                "source": EXCHANGE,
                "vhost": VHOST,
                "destination": STATUS_QUEUE,
                "destination_type": "queue",
                "routing_key": STATUS_BINDING,
                "arguments": {},
            },
            {
                "source": UNROUTABLE_EXCHANGE,
                "vhost": VHOST,
                "destination": UNROUTABLE_QUEUE,
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {},
            },
        ],
        "policies": [
            {
                "vhost": VHOST,
                "name": "glucobridge-alternate",
                "pattern": r"^amq\.topic$",
                "apply-to": "exchanges",
                "definition": {"alternate-exchange": UNROUTABLE_EXCHANGE},
                "priority": 0,
            }
        ],
    }


def amqp_url(user: str, password: str, ports: Iterable[int], host: str = "127.0.0.1") -> str:
    """`amqp://user:password@host:p1,host:p2,...`: every node, tried in order."""
    hosts = ",".join(f"{host}:{p}" for p in ports)
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{hosts}"


def mqtt_url(user: str, password: str, ports: Iterable[int], host: str = "127.0.0.1") -> str:
    """A bridge's URL naming every node's MQTT listener, tried in order."""
    hosts = ",".join(f"{host}:{p}" for p in ports)
    return f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@{hosts}"


def _sbin() -> Path:
    configured = os.environ.get(SBIN_VARIABLE)
    if configured:
        return Path(configured)
    import glob

    for pattern in _SBIN_PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[-1])
    raise StackError(
        "rabbitmq-server not found: run scripts/bootstrap (apt-get install rabbitmq-server) "
        f"or set {SBIN_VARIABLE}"
    )


@dataclass
class RabbitNode:
    index: int
    root: Path
    amqp_port: int = field(default_factory=free_port)
    mqtt_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)  # the management HTTP API
    proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"glucobridge{self.index}@localhost"

    @property
    def log(self) -> Path:
        return self.root / "console.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class RabbitCluster:
    """`size` nodes under `root`, passwords generated for this run."""

    root: Path
    size: int = NODES
    memory_limit_mib: int = MEMORY_LIMIT_MIB
    ingest_workers: int = 4
    epmd_port: int = field(default_factory=free_port)
    cookie: str = field(default_factory=lambda: secrets.token_hex(20))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    ingest_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    alerts_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    nodes: list[RabbitNode] = field(default_factory=list)
    bridges: dict[str, str] = field(default_factory=dict)
    epmd: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sbin = _sbin()
        self.home = self.root / "home"  # the Erlang cookie lives in $HOME of nodes and CLI
        if not self.nodes:
            self.nodes = [RabbitNode(i, self.root / f"node{i}") for i in range(self.size)]

    # -- endpoints ---------------------------------------------------------------------
    @property
    def amqp_ports(self) -> list[int]:
        return [n.amqp_port for n in self.nodes]

    @property
    def mqtt_ports(self) -> list[int]:
        return [n.mqtt_port for n in self.nodes]

    @property
    def ingest_url(self) -> str:
        """The ingest workers' URL: worker i signs in as `ingest-i` with its password."""
        return amqp_url(INGEST_USER, self.ingest_password, self.amqp_ports)

    @property
    def admin_url(self) -> str:
        return amqp_url(ADMIN_USER, self.admin_password, self.amqp_ports)

    @property
    def management_url(self) -> str:
        """The API's provisioning URL (GLUCOBRIDGE_RABBITMQ_ADMIN_URL): the management HTTP
        API of every node, tried in order."""
        hosts = ",".join(f"127.0.0.1:{n.http_port}" for n in self.nodes)
        user, password = quote(ADMIN_USER, safe=""), quote(self.admin_password, safe="")
        return f"http://{user}:{password}@{hosts}"

    def bridge_url(self, bridge_id: str, *, first: int = 0) -> str:
        """The bridge's URL with every node, starting at node `first`."""
        ports = self.mqtt_ports[first:] + self.mqtt_ports[:first]
        return mqtt_url(bridge_id, self.bridges[bridge_id], ports)

    # -- files ---------------------------------------------------------------------------
    def _write_files(self) -> None:
        self.home.mkdir(exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.touch(mode=0o600)
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)
        else:
            self.cookie = cookie.read_text().strip()
        peers = "\n".join(
            f"cluster_formation.classic_config.nodes.{n.index + 1} = {n.name}" for n in self.nodes
        )
        for node in self.nodes:
            node.root.mkdir(parents=True, exist_ok=True)
            # The management plugin: its HTTP API is how the API provisions bridges.
            (node.root / "enabled_plugins").write_text("[rabbitmq_mqtt,rabbitmq_management].\n")
            (node.root / "rabbitmq.conf").write_text(
                f"""\
# Generated by glucobridge's stack; changes are overwritten at the next start.
listeners.tcp.default = 127.0.0.1:{node.amqp_port}
loopback_users = none
default_user = {ADMIN_USER}
default_pass = {self.admin_password}
default_user_tags.administrator = true
vm_memory_high_watermark.absolute = {self.memory_limit_mib}MiB
disk_free_limit.absolute = 50MB
cluster_partition_handling = pause_minority
cluster_formation.peer_discovery_backend = classic_config
cluster_formation.randomized_startup_delay_range.min = 0
cluster_formation.randomized_startup_delay_range.max = 0
{peers}
log.console = false
log.file.level = warning
mqtt.listeners.tcp.default = 127.0.0.1:{node.mqtt_port}
mqtt.allow_anonymous = false
mqtt.vhost = {VHOST}
mqtt.exchange = {EXCHANGE}
mqtt.durable_queue_type = quorum
management.tcp.ip = 127.0.0.1
management.tcp.port = {node.http_port}
"""
            )

    def _env(self, node: RabbitNode | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(self.home),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # Neither the system's rabbitmq-env.conf nor its rabbitmq.conf.
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            # A VM that dies at start-up (a CLI tool's too) writes its crash dump here, not in
            # whatever directory we were started from.
            "ERL_CRASH_DUMP": str(self.root / "erl_crash.dump"),
        }
        if node is None:
            return env
        return {
            **env,
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_CONFIG_FILE": str(node.root / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.root / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.root / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(node.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.root / "log"),
            "RABBITMQ_PID_FILE": str(node.root / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                f"{ERL_ARGS} -kernel inet_dist_use_interface {{127,0,0,1}}"
            ),
        }

    # -- processes -----------------------------------------------------------------------
    def start(self) -> None:
        """Start epmd and every node (the first alone, the others joining it), then the
        definitions: users, the readings queue with a replica on each node, the alternate
        exchange."""
        self._write_files()
        try:
            self._start_epmd()
            fresh = not (self.nodes[0].root / "mnesia").exists()
            self.start_node(0)
            for node in self.nodes[1:]:
                self.start_node(node.index)
            self.ctl(0, "await_online_nodes", str(len(self.nodes)))
            if fresh:
                self.import_definitions(
                    service_definitions(
                        self.admin_password,
                        self.ingest_password,
                        self.alerts_password,
                        ingest_workers=self.ingest_workers,
                    )
                )
        except BaseException:
            self.stop()
            raise

    def _start_epmd(self) -> None:
        epmd = shutil.which("epmd") or "/usr/bin/epmd"
        self.epmd = spawn(
            [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            log=self.root / "epmd.log",
            stop_signal=signal.SIGTERM,
        )
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while not port_open(self.epmd_port):
            if self.epmd.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"epmd did not start:\n{tail(self.root / 'epmd.log')}")
            time.sleep(0.05)

    def start_node(self, index: int) -> None:
        node = self.nodes[index]
        node.proc = spawn(
            [str(self.sbin / "rabbitmq-server")],
            log=node.log,
            stop_signal=signal.SIGTERM,
            env=self._env(node),
        )
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        ports = (node.mqtt_port, node.amqp_port, node.http_port)
        while not all(port_open(p) for p in ports):
            if node.proc.poll() is not None:
                raise StackError(
                    f"RabbitMQ node {node.name} exited with {node.proc.returncode}:\n"
                    f"{tail(node.log)}\n{self._log_tail(node)}"
                )
            if time.monotonic() > deadline:
                raise StackError(f"RabbitMQ node {node.name} did not start:\n{tail(node.log)}")
            time.sleep(0.1)

    def _log_tail(self, node: RabbitNode) -> str:
        logs = sorted((node.root / "log").glob("*.log"))
        return "\n".join(tail(p) for p in logs)

    def kill(self, index: int) -> None:
        """SIGKILL a node (its whole process group): a machine lost, no goodbye."""
        node = self.nodes[index]
        if node.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait()
            node.proc = None

    def stop_node(self, index: int) -> None:
        node = self.nodes[index]
        if node.proc is not None:
            stop(node.proc, signal.SIGTERM)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc = None

    def stop(self) -> None:
        for node in reversed(self.nodes):
            self.stop_node(node.index)
        if self.epmd is not None:
            stop(self.epmd, signal.SIGTERM)
            self.epmd = None

    # -- administration ------------------------------------------------------------------
    def ctl(self, index: int, *args: str, tool: str = "rabbitmqctl") -> str:
        """Run a CLI tool against node `index` (our cookie, our epmd)."""
        node = self.nodes[index]
        result = subprocess.run(
            [str(self.sbin / tool), "-n", node.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"{tool} {' '.join(args)} on {node.name} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def any_running(self) -> int:
        for node in self.nodes:
            if node.running:
                return node.index
        raise StackError("no RabbitMQ node is running")

    def import_definitions(self, definitions: dict[str, Any]) -> None:
        path = self.root / f"definitions-{secrets.token_hex(4)}.json"
        path.touch(mode=0o600)
        try:
            path.write_text(json.dumps(definitions))
            self.ctl(self.any_running(), "import_definitions", str(path))
        finally:
            path.unlink(missing_ok=True)

    def add_bridges(self, bridge_ids: Iterable[str]) -> dict[str, str]:
        """Provision bridges (one CLI call for all); returns their passwords."""
        made = {b: secrets.token_urlsafe(24) for b in bridge_ids}
        merged: dict[str, list[Any]] = {"users": [], "permissions": [], "topic_permissions": []}
        for bridge_id, password in made.items():
            for key, values in bridge_definitions(bridge_id, password).items():
                merged[key] += values
        self.import_definitions(merged)
        self.bridges.update(made)
        return made

    def quorum_leader(self, queue: str = READINGS_QUEUE) -> int:
        """Which node leads the queue's Raft group now."""
        out = self.ctl(
            self.any_running(),
            "list_queues",
            "name",
            "leader",
            "--quiet",
            "--no-table-headers",
        )
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                for node in self.nodes:
                    if node.name == parts[1]:
                        return node.index
        raise StackError(f"no leader for {queue}:\n{out}")

    def queue_depth(self, queue: str) -> int:
        out = self.ctl(
            self.any_running(), "list_queues", "name", "messages", "--quiet", "--no-table-headers"
        )
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return int(parts[1])
        raise StackError(f"no queue {queue}:\n{out}")
