"""The personal look-up over plain http under a county host name (issue #18).

Browsers give Web Crypto (``crypto.subtle``) only to secure contexts: https,
localhost and file://. A county that serves the site over plain http at its own
address gets none, so ``lookup.js`` carries a small pure-JavaScript
SHA-256/HMAC/PBKDF2 that must give exactly the bytes Python's hashlib gives
(the published file names and keys). Chromium maps ``county.example`` to
127.0.0.1 (``--host-resolver-rules``), so the page is a real non-secure context.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sitekit import Server, Visit, fixture_site, launch_browser
from test_publish import HOSTILE, SECRET, subjects

from scoring.publish import lookup, mask_name

pytestmark = pytest.mark.browser
HOST = "county.example"


@pytest.fixture(scope="module")
def county():
    server = Server(fixture_site())
    with launch_browser([f"--host-resolver-rules=MAP {HOST} 127.0.0.1"]) as browser:
        yield browser, f"http://{HOST}:{server.port}"
    server.close()


@pytest.fixture
def visit(county):
    browser, base = county
    v = Visit(browser, base, hosts=(HOST,))
    yield v
    v.close()


def _open_lookup(visit):
    page = visit.go("/lookup/index.html")
    # the premise of these tests: no Web Crypto here, the plain-JS path runs
    assert page.evaluate("window.isSecureContext") is False
    assert page.evaluate("!!(window.crypto && window.crypto.subtle)") is False
    assert page.evaluate("window.gridcreditCrypto.backend") == "plain"
    assert page.locator("#gc-lookup fieldset").is_enabled()
    return page


def test_plain_js_crypto_matches_hashlib(visit):
    page = _open_lookup(visit)
    for text in ("", "abc", "x" * 55, "y" * 56, "z" * 64, "w" * 200):
        assert page.evaluate("t => gridcreditCrypto.sha256Hex(t)", text) == (
            hashlib.sha256(text.encode()).hexdigest()
        ), len(text)
    for key in ("k", "K" * 64, "L" * 100):
        assert page.evaluate("a => gridcreditCrypto.hmacHex(a[0], a[1])", [key, "file"]) == (
            hmac.new(key.encode(), b"file", "sha256").hexdigest()
        )
    salt = lookup.lookup_salt(SECRET)
    got = page.evaluate(
        "a => gridcreditCrypto.pbkdf2Hex(a[0], a[1], a[2])", ["ABCDEFGHIJKLMNOP", salt, 5000]
    )
    want = hashlib.pbkdf2_hmac("sha256", b"ABCDEFGHIJKLMNOP", salt.encode(), 5000, 32).hex()
    assert got == want


@pytest.mark.parametrize("form", ["plain", "full-width"])
def test_lookup_over_http_with_a_valid_code(visit, form):
    person = subjects()[0]
    page = _open_lookup(visit)
    code = lookup.person_code(SECRET, person["id"])
    if form == "full-width":  # what a Chinese keyboard in full-width mode types
        code = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else "－" for c in code.lower())
    page.fill("#gc-lookup input", code)
    page.press("#gc-lookup input", "Enter")
    page.locator(".gc-lookup-result .gc-card").first.wait_for(timeout=15000)
    text = page.locator(".gc-lookup-result").inner_text()
    assert mask_name(person["name"], "person") in text
    assert "1200" in text and HOSTILE in text and "历月积分" in text
    assert page.url.endswith("/lookup/index.html")  # the code never reaches the address
    sent = [u for u in visit.requests if "/lookup/" in u and u.endswith(".js")]
    assert len(sent) == 1 and "?" not in sent[0]  # one hashed file name, no code in it
    assert lookup.normalize_code(code) not in sent[0].upper()
    if form == "plain":
        visit.shot("lookup-http")
    assert visit.errors == []


def test_lookup_over_http_rejects_a_wrong_code(visit):
    page = _open_lookup(visit)
    page.fill("#gc-lookup input", "ABCD-EFGH-IJKL-MNOP")
    page.click("#gc-lookup button")
    msg = page.locator(".gc-lookup-result .gc-error")
    msg.wait_for(timeout=15000)
    assert "查询码不正确" in msg.inner_text()
    assert [e for e in visit.errors if "404" not in e and "Failed to load" not in e] == []
