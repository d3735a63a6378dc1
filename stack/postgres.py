"""A private PostgreSQL cluster with TimescaleDB preloaded.

As root, the server runs as an unprivileged OS user (PostgreSQL refuses root), so its data
directory and socket must sit where that user can reach them: under the checkout when it
can, else under the system's temporary directory (a checkout inside /root is not reachable).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from stack.proc import RunAs, StackError, free_port, spawn, stop, tail, wait_until

DATABASE = "glucobridge"
SUPERUSER = "glucobridge"
# OS users that may own the cluster when we are root, in order of preference.
SERVER_USERS = ("postgres", "nobody")
# Small and fixed: tests and the demo want a fast start, not a tuned server.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "shared_preload_libraries": "timescaledb",
    "timescaledb.telemetry_level": "off",
    "max_connections": "100",
    "shared_buffers": "256MB",
    "log_min_messages": "warning",
}


def _bin_dir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4])
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise StackError("PostgreSQL server binaries not found: run scripts/bootstrap")


@dataclass
class Postgres:
    """One private cluster; `root` is the preferred place for its files."""

    root: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    proc: subprocess.Popen[bytes] | None = None
    # Settings beyond SERVER_SETTINGS (a primary's synchronous standby, a standby's primary).
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bin = _bin_dir()
        self.run_as = RunAs.for_server(SERVER_USERS)
        self.home = self._home()
        self.data = self.home / "data"
        self.socket_dir = self.home / "socket"
        self.log = self.home / "postgres.log"

    def _home(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.run_as is None or self.run_as.can_reach(self.root):
            return self.root
        digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
        fallback = Path(tempfile.gettempdir()) / f"glucobridge-pg-{digest}"
        fallback.mkdir(mode=0o700, exist_ok=True)
        return fallback

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _own(self, path: Path) -> None:
        if self.run_as is not None:
            os.chown(path, self.run_as.uid, self.run_as.gid)

    def _run(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        result = subprocess.run(
            argv,
            check=False,
            capture_output=True,
            env=env,
            user=self.run_as.uid if self.run_as else None,
            group=self.run_as.gid if self.run_as else None,
            extra_groups=[] if self.run_as else None,
            cwd=self.home,
        )
        if result.returncode != 0:
            raise StackError(f"{argv[0]} failed: {result.stderr.decode(errors='replace')}")

    def _initdb(self) -> None:
        for path in (self.home, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            self._own(path)
        pwfile = self.home / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._own(pwfile)
        try:
            self._run(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink()

    def start(self) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)
        self._initdb()
        self._launch()
        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def _launch(self) -> None:
        self.log.touch()
        self._own(self.log)
        argv = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-c", f"unix_socket_directories={self.socket_dir}"]
        for key, value in {**SERVER_SETTINGS, **self.settings}.items():
            argv += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's fast shutdown: roll back clients, checkpoint, exit.
        self.proc = spawn(argv, log=self.log, stop_signal=signal.SIGINT, run_as=self.run_as)
        wait_until(self._accepts, self.proc, "postgres", self.log)

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(
                self.url.rsplit("/", 1)[0] + "/postgres", connect_timeout=1
            ) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, signal.SIGINT)
            self.proc = None

    def restart(self) -> None:
        """Stop and start the same cluster, data kept (for outage tests)."""
        self.stop()
        self._launch()

    def kill(self) -> None:
        """SIGKILL the server and its backends: a machine lost, no checkpoint."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None


# The standby's name on its primary: `synchronous_standby_names` names it.
STANDBY_NAME = "standby1"
STANDBY_TIMEOUT_S = 60.0
# WAL streamed alongside the copy; a fast checkpoint to start from (the default, spread over
# the checkpoint interval, would keep the copy waiting for minutes).
BASEBACKUP_ARGS = ("-X", "stream", "--checkpoint=fast")


def replicated_pair(root: Path) -> tuple[Postgres, Postgres]:
    """A primary and a standby of it, neither started: `primary.start()`, then
    `start_standby(standby, primary)`, which makes the primary synchronous."""
    primary = Postgres(root / "primary", settings={"wal_level": "replica"})
    standby = Postgres(root / "standby", password=primary.password)
    return primary, standby


def start_standby(standby: Postgres, primary: Postgres) -> None:
    """Copy the primary with pg_basebackup, start streaming from it (hot: read-only queries
    allowed), then make the primary wait for it at every commit.

    `synchronous_commit = on` with the standby named: a commit returns once the standby has
    its WAL on disk, so a batch ingest confirmed survives losing the primary. `remote_apply`
    would also wait for the standby to replay it, which only a read from the standby right
    after a write needs; a user's reads right after their own write go to the primary, so
    `on` is enough and costs less."""
    for path in (standby.home, standby.socket_dir):
        path.mkdir(parents=True, exist_ok=True)
        standby._own(path)
    if standby.data.exists():
        shutil.rmtree(standby.data)
    source = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", SUPERUSER]
    standby._run(
        [str(standby.bin / "pg_basebackup"), *source, "-D", str(standby.data), *BASEBACKUP_ARGS],
        env={**os.environ, "PGPASSWORD": primary.password},
    )
    conninfo = (
        f"host=127.0.0.1 port={primary.port} user={SUPERUSER} "
        f"password={primary.password} application_name={STANDBY_NAME}"
    )
    with (standby.data / "postgresql.auto.conf").open("a") as auto:
        auto.write(f"primary_conninfo = '{conninfo}'\nhot_standby = on\n")
    (standby.data / "standby.signal").touch()
    standby._own(standby.data / "standby.signal")
    standby._launch()
    with psycopg.connect(primary.url, autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ({STANDBY_NAME})'")
        conn.execute("ALTER SYSTEM SET synchronous_commit = 'on'")
        conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + STANDBY_TIMEOUT_S
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                (STANDBY_NAME,),
            ).fetchone()
            if row is not None and row[0] == "sync":
                return
            time.sleep(0.1)
    raise StackError(f"the standby did not become synchronous:\n{tail(standby.log)}")


def promote(standby: Postgres) -> None:
    """The failover procedure's one step on the standby: it becomes the primary."""
    with psycopg.connect(standby.url, autocommit=True) as conn:
        conn.execute("SELECT pg_promote(wait => true)")


def failover_url(*servers: Postgres) -> str:
    """One connection string naming every server; libpq connects to the first that accepts
    writes (`target_session_attrs=read-write`), so workers and the API follow a promotion."""
    first = servers[0]
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in servers)
    return (
        f"postgresql://{SUPERUSER}:{first.password}@{hosts}/{DATABASE}"
        "?target_session_attrs=read-write&connect_timeout=2"
    )
