"""Where the shipped data lives (see README.md here): the demo's patients, the files the
tests and benchmarks read. Found relative to this package, so an installed wheel has it too."""

from __future__ import annotations

import os
from pathlib import Path

# The package's own copy; a user's own data (same layout) is named by this variable.
DATA_DIR_VARIABLE = "GLUCOBRIDGE_DATA_DIR"
SHIPPED = Path(__file__).resolve().parent


class DataNotFoundError(FileNotFoundError):
    """The data folder (shipped or configured) lacks a file the caller needs."""


def data_dir() -> Path:
    """The configured data folder (`GLUCOBRIDGE_DATA_DIR`), else the shipped one."""
    configured = os.environ.get(DATA_DIR_VARIABLE)
    return Path(configured) if configured else SHIPPED


def shipped(*parts: str) -> Path:
    """A file of the shipped data, whatever the configuration (tests compare against it)."""
    path = SHIPPED.joinpath(*parts)
    if not path.is_file():
        raise DataNotFoundError(f"{path} is not in the shipped data (see {SHIPPED / 'README.md'})")
    return path
