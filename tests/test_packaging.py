"""The wheel carries what an installed gridcredit needs without this repository."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_schemas_and_entry_points(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("gridcredit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = {p.name for p in (ROOT / "schemas").glob("*.schema.json")}
    assert schemas and {f"scoring/schemas/{n}" for n in schemas} <= names
    assert "scoring/py.typed" in names
    assert not any(n.startswith(("rules/", "tests/", "site/")) for n in names)
    meta = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "gridcredit = scoring.cli:main" in text
    assert "[pytest11]" in text and "scoring.testing.pytest_plugin" in text
