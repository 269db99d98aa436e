"""Escaping, masking, labels and the pieces every page and download is made of.

Every string that comes from input goes through :func:`md` (Markdown
context) or :func:`h` (HTML/SVG context); :class:`_Output` collects a
month's files and writes only changed bytes. The underscore names are
private to the ``scoring.publish`` package (its modules share them).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import Selection

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

# --------------------------------------------------------------------------
# Escaping and masking
# --------------------------------------------------------------------------

# bidirectional-override controls would let a name visually reorder the text around it
_BIDI = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_MD_SPECIAL = frozenset("\\`*_{}[]()#+-.!|<>&\"'~=:^$@%")


def md(text: object) -> str:
    """Escape input text for Markdown (also safe inside HTML and table cells).

    Whitespace collapses to single spaces, and every character Markdown or
    HTML could give meaning to becomes a numeric character reference.
    """
    flat = " ".join(str(text).translate(_BIDI).split())
    return "".join(f"&#{ord(c)};" if c in _MD_SPECIAL else c for c in flat)


def h(text: object) -> str:
    """Escape input text for HTML and SVG."""
    return escape(str(text).translate(_BIDI), quote=True)


def tier_is_code(tier: str) -> bool:
    """Grade codes (AAA, A, S5) are shown with their title; word ids (excellent) are not."""
    return len(tier) <= 3 or tier.isupper()


def mask_name(name: str, kind: str) -> str:
    """Public form of a name: persons as 张*明 (张* for two characters).

    Organisations are shown by name. The ``mask_name`` plugin hook overrides
    this; pass its caller as ``mask=`` to :func:`~scoring.publish.writer.write_month_site`.
    """
    name = " ".join(str(name).split())
    if kind != "person":
        return name
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_code(code: str | None) -> str:
    """A unified social credit code as ``913703******1234`` style (first 6, last 4)."""
    if not code:
        return ""
    code = str(code).strip()
    if len(code) <= 10:
        return "*" * len(code)
    return code[:6] + "*" * (len(code) - 10) + code[-4:]


def month_label(month: str) -> str:
    m = MONTH_RE.match(month)
    return f"{m.group(1)}年{int(m.group(2))}月" if m else month


_QUARTERS = "一二三四"


def period_label(period: str) -> str:
    """An assessment period key in words: 2024-Q1 → 2024年第一季度, 2024 → 2024年度."""
    if MONTH_RE.match(period):
        return month_label(period)
    m = re.fullmatch(r"(\d{4})-Q([1-4])", period)
    if m:
        return f"{m.group(1)}年第{_QUARTERS[int(m.group(2)) - 1]}季度"
    m = re.fullmatch(r"(\d{4})-H([12])", period)
    if m:
        return f"{m.group(1)}年{'上' if m.group(2) == '1' else '下'}半年"
    if re.fullmatch(r"\d{4}", period):
        return f"{period}年度"
    return period


def _by_unit(selected: Sequence[Selection]) -> list[Selection]:
    """Selections by ranking unit (in the order the units come), then rank."""
    first: dict[str, int] = {}
    for s in selected:
        first.setdefault(s.unit, len(first))
    return sorted(selected, key=lambda s: (first[s.unit], s.rank, s.scope))


def _number(value: float) -> str:
    """132 for a whole number, 1012.5 otherwise (one decimal)."""
    text = f"{value:.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def _slug(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", value):
        return value
    return "x" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


# Spreadsheet programs (WPS, Excel) run a cell that starts with one of these as a
# formula: a merchant called =HYPERLINK("http://x/","领奖") would become a link.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def csv_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula.

    Text starting with ``= + - @``, a tab or a carriage return gets a leading
    apostrophe (the OWASP advice for CSV injection); numbers, also negative ones
    and ones already formatted as text (``-3``, ``1012.5``), stay numbers.
    Plugins writing their own CSV files should pass every cell through this.
    """
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _neutralise_csv(data: bytes) -> bytes:
    """A plugin's CSV file with formula-like text cells neutralised (unchanged if none)."""
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data[3 if bom else 0 :].decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error):
        return data
    safe = [[csv_cell(c) for c in row] for row in rows]
    if safe == rows:
        return data
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(safe)
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8")


# --------------------------------------------------------------------------
# Output collection
# --------------------------------------------------------------------------


class _Output:
    """Collects files, writes only changed bytes, removes stale files."""

    def __init__(self, site_dir: Path):
        self.site_dir = site_dir
        self.files: dict[Path, bytes] = {}

    def text(self, rel: str, content: str) -> None:
        if not content.endswith("\n"):
            content += "\n"
        self.files[self.site_dir / rel] = content.encode("utf-8")

    def json(self, rel: str, obj: Any) -> None:
        self.text(rel, json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=1))

    def csv(self, rel: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([csv_cell(c) for c in header])
        w.writerows([csv_cell(v) for v in row] for row in rows)
        # BOM: spreadsheet programs then read the Chinese text as UTF-8
        self.files[self.site_dir / rel] = b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")

    def flush(self, clean: Sequence[Path]) -> list[Path]:
        for path, data in sorted(self.files.items()):
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_bytes() != data:
                path.write_bytes(data)
        for folder in clean:
            if folder.is_dir():
                for old in sorted(folder.rglob("*"), reverse=True):
                    if old.is_file() and old not in self.files:
                        old.unlink()
                    elif old.is_dir() and not any(old.iterdir()):
                        old.rmdir()
        return sorted(self.files)


# --------------------------------------------------------------------------
# Page pieces
# --------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table: for small tables whose cells hold Markdown links."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# Large tables and charts are written as finished HTML between these markers.
# The MkDocs hook (site/overrides/hooks.py) lifts such blocks out before
# Markdown runs and puts them back into the page afterwards, so thousands of
# table rows cost no Markdown parsing; without the hook they are ordinary raw
# HTML blocks and render the same. Cells hold only escaped text and our own
# tags, never Markdown (links in them would not be checked or rewritten).
RAW_OPEN = "<!-- gc:html -->"
RAW_CLOSE = "<!-- /gc:html -->"
_RAW_BLOCK = re.compile(re.escape(RAW_OPEN) + r"\n\n(.*?)\n\n" + re.escape(RAW_CLOSE), re.DOTALL)
_RAW_MARK = re.compile(r"<p>gc:rawhtml:(\d+):</p>")  # ':' never survives md()


def _raw(html: str) -> str:
    return f"{RAW_OPEN}\n\n{html}\n\n{RAW_CLOSE}"


def _html_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A large table as raw HTML (same markup as a Markdown table)."""
    parts = ["<table>", "<thead>", "<tr>" + "".join(f"<th>{c}</th>" for c in header) + "</tr>"]
    parts += ["</thead>", "<tbody>"]
    parts += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    parts += ["</tbody>", "</table>"]
    return _raw("\n".join(parts))


def stash_raw_html(markdown: str) -> tuple[str, list[str]]:
    """Replace every raw block by a placeholder paragraph; returns the blocks.

    Called from the MkDocs hook ``on_page_markdown``; :func:`restore_raw_html`
    undoes it in ``on_page_content``.
    """
    blocks: list[str] = []

    def keep(m: re.Match[str]) -> str:
        blocks.append(m.group(1))
        return f"\n\ngc:rawhtml:{len(blocks) - 1}:\n\n"

    return _RAW_BLOCK.sub(keep, markdown), blocks


def restore_raw_html(html: str, blocks: Sequence[str]) -> str:
    """Put the blocks of :func:`stash_raw_html` back into the rendered page."""
    if not blocks:
        return html

    def put(m: re.Match[str]) -> str:
        i = int(m.group(1))
        return blocks[i] if i < len(blocks) else m.group(0)

    return _RAW_MARK.sub(put, html)


def _rank_cell(rank: int, tied: bool) -> str:
    return f'{rank}<span class="gc-tie">并列</span>' if tied else str(rank)


def _movement(rank: int, previous: int | None) -> str:
    if previous is None:
        return '<span class="gc-new" title="上月未参与排名">新</span>'
    if previous > rank:
        return (
            f'<span class="gc-up" title="较上月上升{previous - rank}名">↑{previous - rank}</span>'
        )
    if previous < rank:
        return (
            f'<span class="gc-down" title="较上月下降{rank - previous}名">↓{rank - previous}</span>'
        )
    return '<span class="gc-muted" title="与上月持平">—</span>'


def _chart(svg: str) -> str:
    return _raw(f'<div class="gc-figure">\n{svg}\n</div>')


def _stats_cards(pairs: Sequence[tuple[str, object]]) -> str:
    cells = "".join(
        f'<div class="gc-stat"><span class="gc-stat-label">{label}</span>'
        f'<span class="gc-stat-value">{value}</span></div>'
        for label, value in pairs
    )
    return f'<div class="gc-stats">{cells}</div>'


def _links(pairs: Sequence[tuple[str, str]]) -> str:
    """Link buttons; Markdown links inside (md_in_html) so MkDocs checks them."""
    return (
        '<div class="gc-links" markdown>\n'
        + "\n".join(f"[{text}]({href})" for text, href in pairs)
        + "\n</div>"
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


_ROOT_URL = re.compile(r'\b(href|src)="/(?!/)')
_ASSET_TAG = re.compile(
    r'<link\b[^>]*\bhref="assets/[^"]*"[^>]*>|<script src="assets/[^"]*"[^>]*></script>'
)
_MD_SCOPE = '__md_scope=new URL("/",location)'


def relocatable_404(html: str, top: Sequence[str]) -> str:
    """The 404 page of a site built without ``site_url``, working under any sub-path.

    The server returns it at any address, so MkDocs writes its links from the host's
    root (``/assets/…``): under ``https://host/xinyong/`` the page loses its styles
    and links. Here the links become relative to a ``<base>`` that a first script
    works out from the address: the part before the first of the site's top-level
    folders (``top``: ``months``, ``assets`` …), else ``/`` as before (a missing
    top-level page under a sub-path still needs ``site_url``). Material's ``base``
    (search, local storage) follows it.
    """
    names = "|".join(re.escape(t) for t in sorted(top))
    find = (
        "<script>(function(){var p=location.pathname,"
        f"m=p.match(/^(.*?\\/)(?:{names})\\//),r=m?m[1]:'/';"
        "window.__gcRoot=r;var b=document.createElement('base');b.setAttribute('href',r);"
        "document.head.appendChild(b);})();</script>"
    )
    out = html.replace("<head>", "<head>\n" + find, 1)
    out = _ROOT_URL.sub(r'\1="', out)

    # a stylesheet or script written in the page would be fetched early by the browser's
    # preload scanner from the address's folder (a 404 each, the <base> not yet known):
    # the page writes those tags itself, after the <base>
    def written(m: re.Match[str]) -> str:
        tag = json.dumps(m.group(0)).replace("</", "<\\/")
        return f"<script>document.write({tag})</script>"

    out = _ASSET_TAG.sub(written, out)
    out = out.replace(_MD_SCOPE, "__md_scope=new URL(window.__gcRoot||'/',location)")
    config = (
        "<script>(function(){var c=document.getElementById('__config');if(!c||!window.__gcRoot)"
        "return;var r=window.__gcRoot,d=JSON.parse(c.textContent);d.base=r;"
        "if(/^\\/(?!\\/)/.test(d.search||''))d.search=r+d.search.slice(1);"
        "c.textContent=JSON.stringify(d);})();</script>\n"
    )
    at = out.find('<script>document.write("<script src=\\"assets/javascripts/bundle')
    return out if at < 0 else out[:at] + config + out[at:]


def relocate_404_page(site_dir: Path) -> bool:
    """Rewrite ``site_dir/404.html`` with :func:`relocatable_404`; False when absent."""
    page = Path(site_dir) / "404.html"
    if not page.is_file():
        return False
    top = [
        p.name for p in Path(site_dir).iterdir() if p.is_dir() and re.fullmatch(r"[\w.-]+", p.name)
    ]
    page.write_text(relocatable_404(page.read_text("utf-8"), top), "utf-8")
    return True
