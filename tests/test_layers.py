"""The layering (docs/design.md, "Layers") holds: ``lint-imports`` keeps every contract
of ``[tool.importlinter]`` in pyproject.toml, and a contract the code breaks fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "importlinter"
]


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    command = str(exe) if exe.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [command, "--no-cache", "--no-logo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layering_contracts_are_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in result.stdout


def test_the_contracts_guard_what_the_design_says():
    """Nobody drops a contract or a forbidden module to make the check pass."""
    contracts = {c["id"]: c for c in CONFIG["contracts"]}
    assert set(contracts) == {
        "pure-core",
        "ledger-below-stages",
        "evaluate-below-publish",
        "cli-on-top",
        "layers",
    }
    assert CONFIG["include_external_packages"] is True
    core = contracts["pure-core"]
    assert "scoring.evaluate.core" in core["source_modules"]
    assert {
        "scoring.ledger",
        "scoring.publish",
        "scoring.cli",
        "scoring.pipeline",
        "scoring.ingest",
        "sqlite3",
        "sqlite_utils",
        "apsw",
        "multiprocessing",
    } <= set(core["forbidden_modules"])
    assert contracts["ledger-below-stages"]["forbidden_modules"] == [
        "scoring.evaluate",
        "scoring.publish",
        "scoring.cli",
    ]
    assert {"scoring.publish", "scoring.cli", "scoring.pipeline"} <= set(
        contracts["evaluate-below-publish"]["forbidden_modules"]
    )
    assert contracts["cli-on-top"]["protected_modules"] == ["scoring.cli"]
    assert contracts["cli-on-top"]["allowed_importers"] == []


def test_a_broken_contract_fails(tmp_path):
    """The check can fail: the SQLite runner does import the ledger, so a contract
    forbidding that is reported broken, with the import that breaks it."""
    config = tmp_path / "importlinter.toml"
    config.write_text(
        "[tool.importlinter]\n"
        'root_package = "scoring"\n'
        "exclude_type_checking_imports = true\n\n"
        "[[tool.importlinter.contracts]]\n"
        'name = "runner without ledger"\n'
        'type = "forbidden"\n'
        'source_modules = ["scoring.evaluate.runner"]\n'
        'forbidden_modules = ["scoring.ledger"]\n',
        encoding="utf-8",
    )
    result = lint_imports(str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "runner without ledger BROKEN" in result.stdout
    assert "scoring.evaluate.runner -> scoring.ledger" in result.stdout
