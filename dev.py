#!/usr/bin/env python3
"""Set up and run gridcredit on a fresh machine that has only python3 (3.11+).

    python3 dev.py demo    # install into .venv, run the demo county end to end, build the site
    python3 dev.py test    # install into .venv (with the Spark extra; Chromium for the browser
                           # tests and Java 17 for the Spark tests when missing), run every test

Anything after the command is passed on (``python3 dev.py test -k ledger``).
Uses only the standard library; installs are skipped when nothing changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".gridcredit-installed"


def run(*cmd: str | Path) -> None:
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT)
    if code:
        sys.exit(code)


def install(extras: str = "test") -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (dev.py may be started by an older python3)
        sys.exit(f"gridcredit needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() + f" [{extras}]"
    if STAMP.exists() and extras == "test" and STAMP.read_text().startswith(want[:64]):
        return  # a demo after a test install: the extras installed already cover it
    if STAMP.exists() and STAMP.read_text() == want:
        return
    print("installing gridcredit and its dependencies into .venv ...", flush=True)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "-e", f".[{extras}]")  # fmt: skip
    STAMP.write_text(want)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("demo", "test"):
        sys.exit(__doc__)
    command, rest = argv[0], argv[1:]
    install("test" if command == "demo" else "test,spark")
    if command == "demo":
        run(BIN / "gridcredit", "demo", *rest)
    else:
        run(BIN / "python", "-m", "scoring.testing.browser", "ensure")
        run(BIN / "python", "-m", "scoring.spark.session", "ensure")  # Java 17 for the Spark tests
        run(BIN / "python", "-m", "pytest", *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
