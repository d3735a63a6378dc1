"""The repository stands alone: the data it uses is inside it, an installed wheel carries what
the demo reads, and no file names a path outside the checkout."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stack.data import SHIPPED, shipped
from stack.demo import DEMO_PATIENTS

ROOT = Path(__file__).resolve().parents[1]
# Paths of one machine: another checkout beside this one, or an absolute data or home path.
_OUTSIDE = re.compile(r"\.\./shared|/work/|/home/\w|/root/|/Users/\w")


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_no_file_names_a_path_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_files():
        if path.suffix in (".csv", ".png") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if _OUTSIDE.search(line) and path != Path(__file__):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_shipped_file_is_described_in_the_data_readme() -> None:
    readme = (SHIPPED / "README.md").read_text()
    data_files = [p for p in SHIPPED.rglob("*.csv")]
    assert data_files, "no data shipped"
    for path in data_files:
        assert path.name in readme, f"{path.relative_to(SHIPPED)} is not in the data README"
    for patient in DEMO_PATIENTS:
        assert shipped("shanghai", *patient.source.split("/")).is_file()
    for licence in ("CC BY 4.0", "GPL-2"):
        assert licence in readme


@pytest.mark.slow
def test_an_installed_wheel_carries_the_demo_data(tmp_path: Path) -> None:
    # Built from the tracked files alone (a copy, so the build leaves nothing in the checkout).
    source = tmp_path / "source"
    for path in _tracked_files():
        if path.is_file():
            copy = source / path.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, copy)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("glucobridge-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "stack/data/README.md" in names
    for patient in DEMO_PATIENTS:
        assert f"stack/data/shanghai/{patient.source}" in names
    # Installed on its own, away from the checkout, the demo finds its patients in the wheel.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "-t", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "from stack.demo import DEMO_PATIENTS, demo_file\n"
        "print('\\n'.join(str(demo_file(p)) for p in DEMO_PATIENTS))"
    )
    found = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n{probe}"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(found) == len(DEMO_PATIENTS)
    assert all(Path(f).is_relative_to(target) and Path(f).is_file() for f in found)
