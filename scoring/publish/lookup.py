"""Personal look-up: codes, hashed file names, encrypted per-person files.

How it fits together (SPEC §9):

* Every subject has a **personal code** derived from the scheme secret:
  ``base32(HMAC-SHA256(secret, "gridcredit-code:" + subject id))`` cut to 80
  bits and shown as ``XXXX-XXXX-XXXX-XXXX``. The same secret always gives the
  same code, so a code handed out once stays valid month after month.
  Codes are written only to a private CSV outside the site
  (:func:`write_private_codes`) for distribution to residents.
* The site publishes one **global salt** (derived from the secret) and the
  PBKDF2 iteration count. From a code alone the browser derives
  ``master = PBKDF2-HMAC-SHA256(normalised code, salt, iterations)`` with Web
  Crypto, then ``file = HMAC(master, "file")`` (first 16 bytes, hex) names the
  person's data file ``lookup/<file[:2]>/<file>.js`` (256 sub-folders, so
  no folder holds tens of thousands of files) and ``HMAC(master, "enc")`` /
  ``HMAC(master, "mac")`` are the keys that decrypt and authenticate it.
* The data file is JSONP-style (``gridcreditLookup("<file>", "<base64>")``) so
  that a ``<script>`` tag loads it from any static host and from ``file://``,
  where ``fetch()`` is refused.
* The payload is encrypted with HMAC-SHA256 in counter mode plus an HMAC tag
  (encrypt-then-MAC); only the standard library is needed here and only
  ``crypto.subtle`` HMAC/PBKDF2 in the browser. The nonce is derived from the
  key and the plaintext, so the same data gives the same file (publishing is
  deterministic) and nothing but equality of two identical payloads leaks.

Security: without a code the published files reveal neither who they belong
to nor what they hold. The iteration count (:data:`ITERATIONS`, 5,000) is
set by the code's entropy, not by password habits: a code is 80 random bits
(no human picks it), so an attacker who has the whole site (the salt and
every file name) and tests each guess against all N files at once still
needs 2**80 / N guesses for one hit: with N = 20,000 about 2**65.7 guesses,
each 5,000 iterations of HMAC-SHA256 (10,000 SHA-256 blocks, 2**13.3), so
about 2**79 SHA-256 blocks: two million years for a GPU doing 10**10 a
second. The count only has to make the file names useless as a guessing
oracle; at 5,000 the first publish of 20,000 residents derives all keys in
about 15 s on two cores, and a phone derives one key in well under a second. Do not go below 5,000; raise the
count (the key cache and the look-up page follow it) if codes ever get
shorter than 80 bits.

Also here: the scheme's look-up key (:func:`lookup_secret`, kept in
``<private dir>/lookup.key`` and the ledger's state), the look-up page and the
per-person records the encrypted files hold (:func:`lookup_records`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import os
import secrets
import unicodedata
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from ..errors import InputError
from ..ledger import get_state, set_state
from .data import HISTORY_MONTHS, LookupEntry, LookupMonth
from .files import write_atomic
from .markup import h, month_label

if TYPE_CHECKING:
    from .pages import MonthSite

ITERATIONS = 5_000
CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CONFUSABLE = str.maketrans({"0": "O", "1": "I", "8": "B"})


def person_code(secret: bytes, subject_id: str) -> str:
    """The subject's personal look-up code, ``XXXX-XXXX-XXXX-XXXX`` (80 bits)."""
    digest = hmac.new(secret, b"gridcredit-code:" + subject_id.encode("utf-8"), "sha256").digest()
    text = base64.b32encode(digest[:10]).decode("ascii")  # 10 bytes = 80 bits = 16 chars
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def normalize_code(code: str) -> str:
    """NFKC (full-width ＡＢ１ from a Chinese keyboard → AB1), upper-case, drop spaces
    and dashes of any width, map look-alike digits (0→O, 1→I, 8→B). Mirrors ``lookup.js``."""
    text = unicodedata.normalize("NFKC", code).upper().translate(_CONFUSABLE)
    return "".join(c for c in text if c in CODE_ALPHABET)


def lookup_salt(secret: bytes) -> str:
    """The scheme-wide salt the look-up page publishes (hex, 128 bits)."""
    return hmac.new(secret, b"gridcredit-lookup-salt", "sha256").hexdigest()[:32]


def derive_keys(code: str, salt: str, iterations: int = ITERATIONS) -> tuple[str, bytes, bytes]:
    """``(file id, encryption key, MAC key)`` for a code; mirrors ``lookup.js``."""
    master = hashlib.pbkdf2_hmac(
        "sha256", normalize_code(code).encode("ascii"), salt.encode("ascii"), iterations, 32
    )
    file_id = hmac.new(master, b"file", "sha256").hexdigest()[:32]
    return (
        file_id,
        hmac.new(master, b"enc", "sha256").digest(),
        hmac.new(master, b"mac", "sha256").digest(),
    )


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    base = hmac.new(key, nonce, "sha256")  # the key schedule once, then copy per block
    blocks = []
    for counter in range((length + 31) // 32):
        mac = base.copy()
        mac.update(counter.to_bytes(4, "big"))
        blocks.append(mac.digest())
    return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    if not data:
        return b""
    n = len(data)
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream[:n], "big")).to_bytes(n, "big")


def encrypt(enc_key: bytes, mac_key: bytes, plaintext: bytes) -> str:
    """``base64(nonce[16] || ciphertext || tag[16])``; deterministic for equal input."""
    nonce = hmac.new(enc_key, b"nonce" + plaintext, "sha256").digest()[:16]
    ct = _xor(plaintext, _keystream(enc_key, nonce, len(plaintext)))
    tag = hmac.new(mac_key, nonce + ct, "sha256").digest()[:16]
    return base64.b64encode(nonce + ct + tag).decode("ascii")


def decrypt(enc_key: bytes, mac_key: bytes, payload: str) -> bytes:
    """Inverse of :func:`encrypt`; raises ``ValueError`` on a wrong key or damaged data."""
    raw = base64.b64decode(payload)
    nonce, ct, tag = raw[:16], raw[16:-16], raw[-16:]
    if not hmac.compare_digest(tag, hmac.new(mac_key, nonce + ct, "sha256").digest()[:16]):
        raise ValueError("look-up payload does not match this code")
    return _xor(ct, _keystream(enc_key, nonce, len(ct)))


def _derive_chunk(
    secret: bytes, subjects: list[str], salt: str, iterations: int
) -> dict[str, tuple[str, bytes, bytes]]:
    return {sid: derive_keys(person_code(secret, sid), salt, iterations) for sid in subjects}


class LookupKeys:
    """The look-up keys of many subjects, derived in background threads.

    Start it early (publish starts it before writing the month's pages);
    :meth:`result` waits for the keys. hashlib's PBKDF2 releases the GIL, so
    the threads use every core while the main thread renders pages. Keys
    found in ``cache`` (a private file outside the site) are not derived
    again; new ones are added to it.
    """

    CHUNK = 64

    def __init__(
        self,
        secret: bytes,
        subjects: Iterable[str],
        *,
        iterations: int = ITERATIONS,
        cache: Path | None = None,
    ):
        self.secret, self.iterations, self.cache = secret, iterations, cache
        self.salt = lookup_salt(secret)
        self.keys = _load_cache(cache, secret, self.salt, iterations)
        missing = sorted(set(subjects) - set(self.keys))
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[dict[str, tuple[str, bytes, bytes]]]] = []
        if len(missing) < self.CHUNK:
            self.keys.update(_derive_chunk(secret, missing, self.salt, iterations))
            self._dirty = bool(missing)
            return
        self._dirty = True
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
        self._futures = [
            self._pool.submit(
                _derive_chunk, secret, missing[i : i + self.CHUNK], self.salt, iterations
            )
            for i in range(0, len(missing), self.CHUNK)
        ]

    def result(self) -> dict[str, tuple[str, bytes, bytes]]:
        """Subject id → ``(file id, encryption key, MAC key)``; waits for the threads."""
        try:
            for fut in self._futures:
                self.keys.update(fut.result())
        finally:
            self.close()
        if self._dirty:
            _save_cache(self.cache, self.secret, self.salt, self.iterations, self.keys)
            self._dirty = False
        return self.keys

    def close(self) -> None:
        """Stop the threads (keys not derived yet are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures = []


def _cache_tag(secret: bytes, salt: str, iterations: int) -> str:
    return hmac.new(secret, f"cache:{salt}:{iterations}".encode(), "sha256").hexdigest()[:16]


def _load_cache(
    cache: Path | None, secret: bytes, salt: str, iterations: int
) -> dict[str, tuple[str, bytes, bytes]]:
    if cache is None or not cache.is_file():
        return {}
    try:
        data = json.loads(cache.read_text("utf-8"))
        if data.get("tag") != _cache_tag(secret, salt, iterations):
            return {}
        return {
            sid: (v[0], bytes.fromhex(v[1]), bytes.fromhex(v[2])) for sid, v in data["keys"].items()
        }
    except (ValueError, KeyError, TypeError, IndexError):
        return {}


def _save_cache(
    cache: Path | None,
    secret: bytes,
    salt: str,
    iterations: int,
    keys: dict[str, tuple[str, bytes, bytes]],
) -> None:
    if cache is None:
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "tag": _cache_tag(secret, salt, iterations),
        "keys": {sid: [k[0], k[1].hex(), k[2].hex()] for sid, k in sorted(keys.items())},
    }
    # The keys decrypt the look-up files: created readable by the owner only.
    tmp = cache.with_name(cache.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data))
    os.replace(tmp, cache)


def write_lookup_files(
    lookup_dir: Path,
    people: dict[str, dict],
    *,
    secret: bytes,
    iterations: int = ITERATIONS,
    cache: Path | None = None,
    keys: LookupKeys | None = None,
) -> list[Path]:
    """Write ``lookup_dir/<id[:2]>/<file id>.js`` per subject and remove stale ones.

    ``people`` maps subject id → the JSON-able record the page shows. The
    subject id itself is never written. ``cache`` (a private file, never in
    the site) keeps the derived keys so later months skip the slow PBKDF2
    work; ``keys`` is a :class:`LookupKeys` started earlier for ``people``.
    The MkDocs build hard-links these files into the built site, so a changed
    file that has other links is replaced (new inode), never rewritten in
    place: publishing never alters an already built site.
    """
    lookup_dir.mkdir(parents=True, exist_ok=True)
    if keys is None:
        keys = LookupKeys(secret, people, iterations=iterations, cache=cache)
    derived = keys.result()
    written: list[Path] = []
    made: set[Path] = set()
    for sid in sorted(people):
        file_id, enc_key, mac_key = derived[sid]
        plain = json.dumps(people[sid], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        payload = encrypt(enc_key, mac_key, plain.encode("utf-8"))
        path = lookup_dir / file_id[:2] / f"{file_id}.js"
        if path.parent not in made:
            path.parent.mkdir(exist_ok=True)
            made.add(path.parent)
        data = f'gridcreditLookup("{file_id}","{payload}");\n'.encode("ascii")
        try:
            same = path.read_bytes() == data
        except FileNotFoundError:
            same = None
        if not same:  # a new inode: a file hard-linked into a built site never changes
            write_atomic(path, data, point="lookup-file")
        written.append(path)
    keep = set(written)
    # stale files, and the flat lookup/<id>.js layout of earlier versions
    for old in [*lookup_dir.glob("*.js"), *lookup_dir.glob("*/*.js")]:
        if old not in keep:
            old.unlink()
    for sub in lookup_dir.iterdir():
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    return written


def private_codes_path(db_path: Path, month: str) -> Path:
    """Where the codes for ``month`` go: ``<db dir>/private/codes-<month>.csv``."""
    return Path(db_path).resolve().parent / "private" / f"codes-{month}.csv"


def write_private_codes(
    path: Path,
    secret: bytes,
    subjects: Iterable[tuple[str, str]],
    *,
    site_dir: Path | None = None,
) -> Path:
    """Write ``subject,name,code`` rows for distribution to residents.

    This file holds what the site must never hold; it refuses to write inside
    ``site_dir``.
    """
    path = Path(path).resolve()
    if site_dir is not None:
        site = Path(site_dir).resolve()
        if path == site or site in path.parents:
            raise ValueError(f"refusing to write personal codes inside the site folder {site}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["subject", "name", "code"])
    for sid, name in sorted(subjects):
        w.writerow([sid, name, person_code(secret, sid)])
    # readable by its owner only from the first byte; complete or absent, never cut short
    write_atomic(path, buf.getvalue().encode("utf-8-sig"), mode=0o600, point="codes-file")
    return path


KEY_FILE = "lookup.key"


def lookup_secret(
    db: sqlite_utils.Database, private_dir: Path | None = None, site_dir: Path | None = None
) -> bytes:
    """The scheme's private key for personal look-up codes, made once.

    Kept in ``<private_dir>/lookup.key`` (beside the ledger, never in the site)
    and in the ledger's state: a ledger rebuilt from the same inputs finds the
    key file, so residents' codes stay valid and the site's files are the same
    bytes. A ledger that already has another key is refused, never changed: the
    codes handed out depend on it. The site never holds the key, only slow
    salted hashes of the codes.
    """
    path = Path(private_dir) / KEY_FILE if private_dir is not None else None
    if (
        path is not None
        and site_dir is not None
        and Path(site_dir).resolve() in path.resolve().parents
    ):
        raise InputError(
            f"publish: the private folder {private_dir} is inside the site folder {site_dir};"
            " the look-up key would be published. Keep the ledger outside the site"
        )
    stored = value = get_state(db, "lookup_secret")
    if path is not None and path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        try:
            if len(bytes.fromhex(text)) != 32:
                raise ValueError
        except ValueError:
            raise InputError(
                f"{path}: not a look-up key (64 hexadecimal characters); restore it from a"
                " backup: every personal code handed out depends on it"
            ) from None
        if value is not None and value != text:
            raise InputError(
                f"{path} is not the look-up key this ledger published with: the personal codes"
                " handed out depend on the ledger's own key. Publish this ledger with its own"
                " private folder (--db in a folder of its own), or move that file away if"
                " another ledger (a trial) made it; gridcredit then writes this ledger's key there"
            )
        value = text
    else:
        value = value or secrets.token_hex(32)
        if path is not None:
            write_key(path, value)
    if stored != value:
        set_state(db, "lookup_secret", value)
    return bytes.fromhex(value)


def write_key(path: Path, value: str) -> None:
    """Write a key file readable by its owner only, from the moment it exists.

    Atomic and durable (a temporary file, fsync, rename): a kill or a power cut
    leaves the whole key or none, never an empty file that every later publish
    would refuse as a damaged key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (value + "\n").encode("ascii"), mode=0o600, fsync=True, point="key-file")


def lookup_page(secret: bytes, iterations: int, month: str) -> str:
    # No input has a name and the form is disabled until lookup.js enables it:
    # without the script nothing can be submitted, so a code never reaches a
    # URL or a server log (the look-up is computed on the page only).
    return "\n".join(
        [
            "# 个人积分查询",
            "",
            "输入网格员发放的16位查询码，查看本人的信用积分、等级、可用积分和历月积分明细。",
            "",
            (
                f'<div id="gc-lookup" class="gc-lookup" data-salt="{h(lookup_salt(secret))}" '
                f'data-iterations="{iterations}" data-month="{h(month)}" data-base="./" '
                f'data-catalog="../months/{h(month)}/catalog.html" '
                'data-objection="../about.html#objection">'
            ),
            '<form autocomplete="off" action="#gc-lookup">',
            "<fieldset disabled>",
            (
                '<input type="text" inputmode="text" autocapitalize="characters" autocorrect="off" '
                'spellcheck="false" placeholder="XXXX-XXXX-XXXX-XXXX" aria-label="查询码" '
                'maxlength="40">'
            ),
            '<button type="submit">查询</button>',
            "</fieldset>",
            "</form>",
            (
                '<noscript><p class="gc-message gc-error">个人查询需要开启 JavaScript（脚本）：'
                "查询码只在本机计算和解密，不会发送出去。请在浏览器设置中允许本站运行脚本后刷新本页，"
                "或换用手机自带的浏览器打开。</p></noscript>"
            ),
            '<div class="gc-lookup-result" aria-live="polite"></div>',
            "</div>",
            # only this page needs the script (sites whose mkdocs.yml still lists it in
            # extra_javascript load it twice; lookup.js then runs once)
            '<script src="../assets/lookup.js"></script>',
            "",
            '!!! info "查询在您的手机上完成"',
            (
                "    查询码不会发送到任何服务器：页面在本机根据查询码算出数据文件名并解密。"
                "网站上只有加密文件，没有查询码，也没有姓名与文件的对应关系。"
                "查询码请妥善保管，不要告诉他人；遗失可向所在网格员申请补发。"
            ),
            "",
            (
                f"数据截至{month_label(month)}末，含近{HISTORY_MONTHS}个月已公示月份的积分明细。"
                "对积分有异议的，可在公示期内向所在社区提出异议申请。"
            ),
            "",
        ]
    )


# A linked entry (联奖联罚) says whose deed it is, from the receiver's side; a link
# name not listed here reads as the plain 关联主体.
LINK_WORDS = {
    "legal_representative": "所经营商户",
    "owner": "所经营商户",
    "operator": "所经营商户",
    "employer": "所在单位",
    "household": "同户成员",
}


def entry_text(e: LookupEntry) -> str:
    """What a look-up row says: a reversal, a repair and a linked entry say what they are,
    so ``+3`` beside a deduction's title never reads as points earned for it."""
    if e.kind == "reversal":
        undo = "退回原扣分" if e.points > 0 else ("收回原加分" if e.points < 0 else "")
        return f"撤销：{e.rule}（异议成立或记录更正{'，' + undo if undo else ''}）"
    if e.kind == "repair":
        return f"信用修复：{e.rule}（完成信用修复，按规定恢复扣分）"
    if e.kind == "linked":
        word = LINK_WORDS.get(e.link, "")
        return f"因关联主体（{word}）连带：{e.rule}" if word else f"因关联主体连带：{e.rule}"
    return e.rule


def _lookup_entry(e: LookupEntry) -> dict[str, Any]:
    rec: dict[str, Any] = {"date": e.date, "rule": entry_text(e), "points": e.points}
    # empty fields are left out: the file of a resident with years of entries stays small
    if e.wallet:
        rec["wallet"] = e.wallet
    if e.flag:
        rec["flag"] = e.flag
    if e.month:
        rec["month"] = e.month
    return rec


def lookup_records(site: MonthSite) -> dict[str, dict]:
    people: dict[str, dict] = {}
    for acc in sorted(
        site.d.lookup,
        key=lambda a: (
            a.subject,
            site.group_order.index(a.group) if a.group in site.group_order else 99,
            a.group,
        ),
    ):
        rec = people.setdefault(
            acc.subject,
            {
                "name": site.mask(acc.name, acc.kind) if acc.name else "",
                "month": site.month,
                "month_label": site.label,
                "accounts": [],
            },
        )
        if acc.grid and "grid" not in rec:  # their own grid, as its public page names it
            rec["grid"] = site.grid_name(acc.grid)
        history = sorted(
            [h for h in acc.history if h.month != site.month]
            + [LookupMonth(site.month, acc.score, acc.tier, acc.wallet)],
            key=lambda h: h.month,
            reverse=True,
        )
        rec["accounts"].append(
            {
                "group": site._group(acc.group).title,
                "score": acc.score,
                "wallet": acc.wallet,
                "tier": acc.tier,
                "tier_title": site.tier_title(acc.group, acc.tier),
                "note": acc.note,
                "months": [
                    {
                        "month": h.month,
                        "label": month_label(h.month),
                        "score": h.score,
                        "tier": site.tier_text(acc.group, h.tier),
                    }
                    for h in history
                ],
                # newest first; a late event shows in the month it was posted in
                "entries": [
                    _lookup_entry(e)
                    for e in sorted(
                        acc.entries, key=lambda e: (e.month or site.month, e.date), reverse=True
                    )
                ],
            }
        )
    return people
