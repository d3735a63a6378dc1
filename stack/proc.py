"""Child processes the stack owns: free ports, waiting for readiness, stopping cleanly."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Services come up in well under a second here; this much covers a loaded CI machine.
STARTUP_TIMEOUT_S = 30.0
# How long a service gets to stop cleanly before it is killed.
STOP_TIMEOUT_S = 15.0
_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """A local service could not be set up, started or stopped."""


# Ports for our servers are drawn from this many below the kernel's ephemeral range.
_LISTEN_SPAN = 12_000
# Ports this process has handed out: never handed out twice.
_handed_out: set[int] = set()
_handed_lock = threading.Lock()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port on 127.0.0.1 free now, for a server that starts a moment later.

    It lies below the kernel's ephemeral range: every outgoing connection on the machine
    takes its local port from that range, so a port chosen there (as binding to port 0
    does) can be taken by some client before the server binds it ("Address already in
    use", seen in a full test run)."""
    rng = random.SystemRandom()
    high = _ephemeral_low()
    low = max(1024, high - _LISTEN_SPAN)
    for _ in range(500):
        port = rng.randrange(low, high)
        with _handed_lock:
            if port in _handed_out:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    raise StackError(f"no free port on 127.0.0.1 between {low} and {high}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def _on_main_thread() -> bool:
    """PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process:
    a server started from a short-lived thread would die with it. Only the main thread's
    children get the tie; the others rely on being stopped explicitly."""
    return threading.current_thread() is threading.main_thread()


def _die_with_parent(sig: int) -> Callable[[], None]:
    """A child that outlives a SIGKILLed parent would hold ports and files: tie it to us."""

    def preexec() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return preexec


@dataclass(frozen=True)
class RunAs:
    """The unprivileged OS user a server runs as when we are root."""

    name: str
    uid: int
    gid: int

    @classmethod
    def for_server(cls, preferred: Sequence[str]) -> RunAs | None:
        if os.geteuid() != 0:
            return None
        for name in preferred:
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(name, entry.pw_uid, entry.pw_gid)
        raise StackError(f"running as root, but none of the users {list(preferred)} exists")

    def can_reach(self, path: Path) -> bool:
        """Whether this user can traverse every directory down to `path`."""
        probe = path
        while not probe.exists():
            probe = probe.parent
        result = subprocess.run(
            ["runuser", "-u", self.name, "--", "test", "-x", str(probe)],
            check=False,
            capture_output=True,
        )
        return result.returncode == 0


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    stop_signal: signal.Signals,
    run_as: RunAs | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            # only prctl in the child: safe after fork
            preexec_fn=_die_with_parent(stop_signal) if _on_main_thread() else None,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
            env=env,
        )


def wait_until(
    ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with {proc.returncode} at start-up:\n{tail(log)}")
        if ready():
            return
        time.sleep(0.05)
    stop(proc, signal.SIGKILL)
    raise StackError(
        f"{what} did not accept connections in {STARTUP_TIMEOUT_S:.0f} s:\n{tail(log)}"
    )


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
