"""Shared pieces of the browser site tests (tests/test_site_*.py).

* :func:`demo_site`: a small demo county (the real scheme, the real pipeline,
  ``gridcredit demo`` with fewer residents and events), built once per test
  process and shared by every test file that measures budgets on it;
* :class:`Server`: serves a folder over plain http on 127.0.0.1 and counts the
  bytes it sends;
* :class:`Visit`: a phone-sized page (390×844) that records console errors,
  dialogs and requests leaving the allowed hosts;
* :func:`launch_browser`: Chromium through Playwright, skipped only when
  ``GRIDCREDIT_NO_BROWSER=1`` says so.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PHONE = {"width": 390, "height": 844}
# The small demo county: every page kind of the real demo, built in well under a minute.
DEMO_RESIDENTS = 4_000
DEMO_EVENTS = 40_000
DEMO_MONTHS = ["2024-02", "2024-03"]


@functools.cache
def demo_county() -> Path:
    """The small demo county's folder (``site/``, ``public/``, ``private/`` …), built once."""
    from scoring.demo import run_demo

    out = Path(tempfile.mkdtemp(prefix="gc-demo-site-"))
    atexit.register(shutil.rmtree, out, True)
    run_demo(
        ROOT,
        out,
        events=DEMO_EVENTS,
        residents=DEMO_RESIDENTS,
        months=DEMO_MONTHS,
        echo=lambda *a, **k: None,
    )
    return out


def demo_site() -> Path:
    """The built site (``public/``) of :func:`demo_county`."""
    county = demo_county()
    for name in ("public", "site-build", "build"):
        if (county / name / "index.html").is_file():
            return county / name
    raise AssertionError(f"the demo county in {county} has no built site")


class _Handler(SimpleHTTPRequestHandler):
    sent: dict[str, int]
    gzip: bool

    def log_message(self, *args):
        pass

    def send_error(self, code, message=None, explain=None):
        # like nginx's `error_page 404 /404.html;` in the deployment page
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.is_file():
            return super().send_error(code, message, explain)
        data = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - the http.server naming
        # gzip like the nginx of the deployment page (gzip on; gzip_types text/css …)
        path = Path(self.translate_path(self.path))
        if (
            not self.gzip
            or "gzip" not in self.headers.get("Accept-Encoding", "")
            or not path.is_file()
            or path.suffix not in (".html", ".css", ".js", ".json", ".svg", ".xml")
        ):
            return super().do_GET()
        data = gzip.compress(path.read_bytes(), mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        key = self.path.split("?")[0]
        self.sent[key] = self.sent.get(key, 0) + len(data)
        self.wfile.write(data)

    def copyfile(self, source, outputfile):  # count what a phone would download
        data = source.read()
        self.sent[self.path.split("?")[0]] = self.sent.get(self.path.split("?")[0], 0) + len(data)
        outputfile.write(data)


class Server:
    """``folder`` over plain http on 127.0.0.1; ``gzip=True`` compresses text files as the
    deployment page's nginx does (the byte budgets are measured uncompressed)."""

    def __init__(self, folder: Path, *, gzip: bool = False):
        self.sent: dict[str, int] = {}
        handler = type("H", (_Handler,), {"sent": self.sent, "gzip": gzip})
        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
        )
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def launch_browser(extra_args: list[str] | None = None) -> Iterator[object]:
    if os.environ.get("GRIDCREDIT_NO_BROWSER") == "1":
        pytest.skip(
            "GRIDCREDIT_NO_BROWSER=1 is set in this environment, so the Chromium site tests"
            " are off; .ci/run never sets it. Unset it to run them (`python3 dev.py test` installs Chromium)"
        )
    from playwright.sync_api import sync_playwright

    from scoring.testing.browser import BrowserMissing, launch

    with sync_playwright() as pw:
        try:
            b = launch(pw, extra_args=extra_args)
        except BrowserMissing as exc:
            pytest.fail(f"Chromium is needed for the site tests and is missing: {exc}")
        try:
            yield b
        finally:
            b.close()


class Visit:
    """A phone-sized page that records console errors, dialogs and outside requests."""

    def __init__(self, browser, base: str, hosts: tuple[str, ...] = ("127.0.0.1",)):
        self.base = base
        self.hosts = hosts
        self.context = browser.new_context(viewport=PHONE, device_scale_factor=1, locale="zh-CN")
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)

    def _route(self, route):
        url = route.request.url
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:")) or host in self.hosts:
            self.requests.append(url)
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def go(self, path: str):
        self.page.goto(self.base + path, wait_until="networkidle")
        return self.page

    def shot(self, name: str, *, full_page: bool = True) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)

    def close(self) -> None:
        assert self.outside == [], f"requests left {self.hosts}: {self.outside}"
        assert self.dialogs == [], f"a dialog opened (escaping failed?): {self.dialogs}"
        self.context.close()


def search(page, query: str, tries: int = 30):
    """Type ``query`` into Material's search box until results (or the tries) run out."""
    page.locator('label.md-header__button[for="__search"]').click()
    box = page.locator("input.md-search__input")
    results = page.locator(".md-search-result__item")
    for _ in range(tries):  # the index loads in a worker; Material ignores an unchanged value
        box.fill("")
        box.press("End")
        box.fill(query)
        box.press("End")
        page.wait_for_timeout(300)
        if results.count():
            break
    return results


@functools.cache
def fixture_site() -> Path:
    """The fixture county of ``test_publish.py`` (two months, hostile names), built once."""
    from test_publish import SECRET, build_site, copy_site_skeleton, month_data

    from scoring.publish import write_month_site

    root = Path(tempfile.mkdtemp(prefix="gc-fixture-site-"))
    atexit.register(shutil.rmtree, root, True)
    copy_site_skeleton(root)
    write_month_site("2024-02", month_data("2024-02"), root / "site", secret=SECRET)
    write_month_site("2024-03", month_data("2024-03"), root / "site", secret=SECRET)
    return build_site(root)
