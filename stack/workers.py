"""`glucobridge ingest --workers N`: N worker processes on one machine, restarted if one dies.

Each worker is a separate process (Python runs one thread of bytecode at a time, and a
worker is CPU-bound on validation), joining the same shared subscription as worker i.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

from core.backoff import backoff_delay

log = logging.getLogger("glucobridge.ingest")

# How long workers get to finish the batch in hand before they are killed.
STOP_TIMEOUT_S = 15.0
# How often the supervisor looks at its workers.
POLL_S = 0.5


def _spawn(index: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "stack", "ingest", "--index", str(index)])


def supervise(count: int) -> None:
    """Run `count` workers until interrupted; a worker that exits is started again."""
    workers = {i: _spawn(i) for i in range(count)}
    restarts = dict.fromkeys(workers, 0)
    try:
        while True:
            time.sleep(POLL_S)
            for index, proc in workers.items():
                if proc.poll() is not None:
                    delay = backoff_delay(restarts[index])
                    log.error(
                        "worker %d exited with %s; restarting in %.1f s",
                        index,
                        proc.returncode,
                        delay,
                    )
                    time.sleep(delay)
                    restarts[index] += 1
                    workers[index] = _spawn(index)
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in workers.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
