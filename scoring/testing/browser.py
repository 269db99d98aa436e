"""Locate or install the Chromium used by the site tests.

The browser tests drive Debian's ``chromium`` package through Playwright
(``executable_path``), not Playwright's downloaded browser builds, so no
download from outside the distribution's package mirror is needed. The dev
tooling calls :func:`ensure_chromium` before running the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from scoring.errors import GridcreditError

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class BrowserMissing(GridcreditError):
    """Chromium is not installed and could not be installed."""


def find_chromium() -> Path | None:
    """The Chromium binary: ``$GRIDCREDIT_CHROMIUM``, then the usual Debian paths, then PATH."""
    env = os.environ.get("GRIDCREDIT_CHROMIUM")
    if env:
        return Path(env) if Path(env).is_file() else None
    for cand in CANDIDATES:
        if Path(cand).is_file() and os.access(cand, os.X_OK):
            return Path(cand)
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def ensure_chromium() -> Path:
    """Return the Chromium binary, installing Debian's ``chromium`` with apt-get if missing.

    Raises :class:`BrowserMissing` with the reason and the manual fix when it
    cannot be installed (not root, no apt-get, no network to the mirror).
    """
    found = find_chromium()
    if found:
        return found
    fix = "install it with: sudo apt-get update && sudo apt-get install -y chromium"
    if shutil.which("apt-get") is None:
        raise BrowserMissing(f"chromium is not installed and apt-get is not available; {fix}")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise BrowserMissing(f"chromium is not installed and installing needs root; {fix}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # the font makes Chinese readable in the screenshots the browser tests write
    packages = ["chromium", "fonts-wqy-microhei"]
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise BrowserMissing(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{tail}\n{fix}"
            )
    found = find_chromium()
    if not found:
        raise BrowserMissing(f"apt-get installed chromium but no binary was found in {CANDIDATES}")
    return found


def launch(playwright, extra_args: list[str] | None = None, **kwargs):  # type: ignore[no-untyped-def]
    """Launch headless Chromium through a Playwright instance with the test flags.

    ``extra_args`` adds Chromium switches, e.g.
    ``--host-resolver-rules=MAP county.example 127.0.0.1`` to open a site served on
    127.0.0.1 under a county host name (a non-secure context, as over plain http).
    """
    return playwright.chromium.launch(
        executable_path=str(ensure_chromium()),
        args=[*LAUNCH_ARGS, *(extra_args or [])],
        headless=True,
        **kwargs,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m scoring.testing.browser ensure``: install Chromium for the browser tests if missing."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args != ["ensure"]:
        print("usage: python -m scoring.testing.browser ensure", file=sys.stderr)
        return 2
    try:
        path = ensure_chromium()
    except BrowserMissing as e:
        print(f"browser tests need Chromium: {e}", file=sys.stderr)
        return 1
    print(f"chromium: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
