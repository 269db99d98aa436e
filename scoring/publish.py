"""Monthly site pages and open data (SPEC §9).

The publisher is the last pipeline stage. It takes one month's figures as a
:class:`MonthData` (filled from the ledger by the driver) and writes

* ``site/months/<YYYY-MM>/``: the month at a glance, rankings per group,
  per community (with in-grid ranks), grid rankings, assessment results,
  the public lists, the rules in plain Chinese, the catalog, open-data page;
* ``site/data/<YYYY-MM>/``: CSV and JSON downloads and ``manifest.json``
  with the month's content hash;
* ``site/months/index.md`` (archive), ``site/index.md`` (home, when this is
  the latest month), ``site/lookup/`` (look-up page and encrypted files),
  ``site/assets/`` (CSS and JS shipped with the package).

Rules of the output:

* **Deterministic**: the same input gives byte-identical files: no
  timestamps, sorted keys, stable ordering, fixed number formats.
* **Escaped**: every string that comes from input goes through :func:`md`
  (Markdown context) or :func:`h` (HTML/SVG context). A subject called
  ``<script>`` or ``*x*`` shows as that text.
* **Private**: person names are masked (:func:`mask_name`, overridable via
  the ``mask_name`` hook), organisation credit codes are masked
  (:func:`mask_code`); subject ids, phone numbers and look-up codes are never
  written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from scoring import charts
from scoring.errors import InputError
from scoring.lookup import ITERATIONS, LookupKeys, lookup_salt, write_lookup_files

TOP_N = 100  # rows on a group ranking page; the CSV has everyone
HISTORY_MONTHS = 12  # published months of entries in a person's look-up file
ASSETS = ("gridcredit.css", "lookup.js", "iframe-worker-shim.js")
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

# --------------------------------------------------------------------------
# The data contract
# --------------------------------------------------------------------------


@dataclass
class TierInfo:
    id: str
    title: str
    min: int | None = None
    max: int | None = None


@dataclass
class GroupInfo:
    id: str
    title: str
    kind: str = "person"  # person | organization
    tiers: list[TierInfo] = field(default_factory=list)  # ordered high → low


@dataclass
class GridInfo:
    id: str
    name: str
    community: str
    community_name: str
    street: str
    street_name: str


@dataclass
class RankRow:
    """One subject-group account in the month's ranking of its group."""

    subject: str  # never published; used only to join look-up data
    name: str
    grid: str
    score: int
    tier: str
    rank: int  # competition ranking within the group ("1224")
    previous_rank: int | None = None  # None: not ranked last month (新)
    earned: int = 0  # points earned in the month
    wallet: int = 0
    kind: str = "person"
    code: str | None = None  # unified social credit code (organisations)
    community: str = ""  # filled from the grid when empty
    street: str = ""
    note: str = ""  # e.g. 直接判级 (grade held), shown beside the tier


@dataclass
class GridRank:
    grid: str
    name: str
    community: str
    mean_score: float
    residents: int
    rank: int
    previous_rank: int | None = None


@dataclass
class Selection:
    scope: str  # grid / community / subject id
    name: str
    value: float
    rank: int
    kind: str = "grid"  # grid | community | person | organization
    unit: str = ""  # name of the ranking unit (e.g. the community) when not the whole scheme
    grid: str = ""  # grid id of a person or organisation, shown beside the masked name


@dataclass
class AssessmentResult:
    id: str
    title: str
    badge: str
    period: str  # e.g. 2024-Q1
    selected: list[Selection] = field(default_factory=list)
    metric: str = ""  # plain Chinese description of the metric


@dataclass
class ListReason:
    text: str
    since: str | None = None  # YYYY-MM-DD
    until: str | None = None
    objection: bool = False  # 异议标注: an objection is under review


@dataclass
class ListMember:
    subject: str
    name: str
    group: str
    reasons: list[ListReason] = field(default_factory=list)
    kind: str = "organization"
    code: str | None = None
    grid: str = ""


@dataclass
class PublicList:
    id: str
    title: str
    members: list[ListMember] = field(default_factory=list)
    description: str = ""


@dataclass
class RuleText:
    id: str
    title: str
    text: str  # plain Chinese from render.py; lines are kept
    adopted: str = ""


@dataclass
class RulePackText:
    title: str
    group: str
    rules: list[RuleText] = field(default_factory=list)
    adopted: str = ""
    version: str = ""


@dataclass
class CatalogItem:
    id: str
    title: str
    cost: int
    min_tier: str | None = None
    groups: list[str] = field(default_factory=list)  # group titles
    stock: int | None = None
    available: str = ""
    partner: str = ""


@dataclass
class TrendPoint:
    month: str
    group: str
    mean_score: float
    subjects: int = 0
    tier_counts: dict[str, int] = field(default_factory=dict)


@dataclass
class LookupEntry:
    date: str  # YYYY-MM-DD
    rule: str  # rule title
    points: int
    wallet: int = 0
    flag: str = ""  # e.g. 异议审核中
    month: str = ""  # YYYY-MM the entry was posted in (a late event posts in a later month)


@dataclass
class LookupMonth:
    """A person's month-end figures of one published month."""

    month: str
    score: int
    tier: str
    wallet: int = 0


@dataclass
class LookupAccount:
    subject: str
    group: str
    score: int
    wallet: int
    tier: str
    entries: list[LookupEntry] = field(default_factory=list)  # this month's, or the history's
    name: str = ""
    kind: str = "person"
    note: str = ""
    history: list[LookupMonth] = field(default_factory=list)  # earlier published months


@dataclass
class ArchiveMonth:
    month: str
    content_hash: str


@dataclass
class MonthData:
    title: str  # scheme title
    month: str  # YYYY-MM
    groups: list[GroupInfo]
    grids: list[GridInfo]
    rankings: dict[str, list[RankRow]]  # group id → all rows
    grid_rankings: list[GridRank] = field(default_factory=list)
    assessments: list[AssessmentResult] = field(default_factory=list)
    lists: list[PublicList] = field(default_factory=list)
    rules: list[RulePackText] = field(default_factory=list)
    catalog: list[CatalogItem] = field(default_factory=list)
    trends: list[TrendPoint] = field(default_factory=list)
    lookup: list[LookupAccount] = field(default_factory=list)
    archive: list[ArchiveMonth] = field(default_factory=list)
    late_events: int = 0  # late events posted into this month


class Publisher(Protocol):
    """A page writer contributed by a plugin through ``register_publishers``."""

    name: str

    def write(self, month: str, data: MonthData, site_dir: Path) -> list[Path]: ...


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
    this; pass its caller as ``mask=`` to :func:`publish_month`.
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


def competition_ranks(scores: Sequence[float]) -> list[int]:
    """Competition ranks ("1224") for scores in any order, highest first."""
    order = sorted(scores, reverse=True)
    first: dict[float, int] = {}
    for i, s in enumerate(order):
        first.setdefault(s, i + 1)
    return [first[s] for s in scores]


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


# --------------------------------------------------------------------------
# The publisher
# --------------------------------------------------------------------------


_HEADING = re.compile(r"#{1,6}\s+(.*)")
_RULE_ID_LINE = re.compile(r"规则编号[：:]\s*`?([^`]*)`?\s*")


def _rule_body(rule: RuleText) -> tuple[str, bool]:
    """A rule's plain-Chinese text as Markdown, every piece of it escaped once.

    ``rule.text`` is what ``render.render_rule`` writes: a heading with the
    title, a ``规则编号：`id``` line, then ``- 项目：内容`` items (or plain
    lines). The page shows the title as its own heading and the id in the
    rule's footer, so those two lines are dropped here; the items become a
    Markdown list and other lines paragraphs, their text escaped with
    :func:`md` (the text comes from the YAML and may hold ``*``, ``<`` or
    ``[``). Returns the Markdown and whether it has an adoption (通过) item.
    """
    items: list[str] = []
    has_adopted = False
    out: list[str] = []
    for raw in rule.text.splitlines():
        line = raw.strip()
        if not line:
            continue
        head = _HEADING.fullmatch(line)
        if head and head.group(1).strip().startswith(rule.title.strip()):
            rest = head.group(1).strip()[len(rule.title.strip()) :].strip()
            if rest:  # e.g. （已停止执行）
                out += [md(rest), ""]
            continue  # the title: the page's own heading shows it
        ident = _RULE_ID_LINE.fullmatch(line)
        if ident and ident.group(1).strip() == rule.id:
            continue  # the rule id: shown in the footer
        if line.startswith(("- ", "* ")):
            text = line[2:].strip()
            has_adopted = has_adopted or text.startswith("通过：")
            label, sep, rest = text.partition("：")
            if sep and 0 < len(label) <= 8:
                items.append(f"- **{md(label)}**：{md(rest)}")
            else:
                items.append(f"- {md(text)}")
            continue
        if items:
            out += ["\n".join(items), ""]
            items = []
        out += [md(head.group(1) if head else line), ""]
    if items:
        out += ["\n".join(items), ""]
    return "\n".join(out).strip(), has_adopted


class _MonthSite:
    def __init__(self, month: str, data: MonthData, out: _Output, mask: Callable[[str, str], str]):
        self.month = month
        self.d = data
        self.out = out
        self.mask = mask
        self.label = month_label(month)
        self.base = f"months/{month}"
        self.data_base = f"data/{month}"
        self.grids = {g.id: g for g in data.grids}
        self.groups = {g.id: g for g in data.groups}
        self.group_order = [g.id for g in data.groups if g.id in data.rankings]
        self.group_order += sorted(k for k in data.rankings if k not in self.groups)
        self.rows: dict[str, list[RankRow]] = {}
        for gid in self.group_order:
            rows = [self._fill(r) for r in data.rankings[gid]]
            rows.sort(key=lambda r: (r.rank, -r.score, self._name(r), r.grid, r.subject))
            self.rows[gid] = rows
        self.community_order: list[tuple[str, int]] = []
        self.communities: dict[str, tuple[str, str, str]] = {}
        for g in data.grids:
            self.communities[g.community] = (g.community_name, g.street, g.street_name)

    # helpers ------------------------------------------------------------
    def _fill(self, r: RankRow) -> RankRow:
        g = self.grids.get(r.grid)
        if g and (not r.community or not r.street):
            r = RankRow(
                **{
                    **asdict(r),
                    "community": r.community or g.community,
                    "street": r.street or g.street,
                }
            )
        return r

    def _group(self, gid: str) -> GroupInfo:
        return self.groups.get(gid) or GroupInfo(id=gid, title=gid)

    def _name(self, r: RankRow | ListMember) -> str:
        return self.mask(r.name, r.kind)

    def grid_name(self, gid: str) -> str:
        g = self.grids.get(gid)
        return g.name if g else gid

    def community_name(self, cid: str) -> str:
        c = self.communities.get(cid)
        return c[0] if c else cid

    def tier_title(self, gid: str, tier: str) -> str:
        for t in self._group(gid).tiers:
            if t.id == tier:
                return t.title
        return ""

    def name_cell(self, r: RankRow, org: bool) -> str:
        """Name, then (smaller) masked credit code and grid: one column fits a phone."""
        extra = [md(mask_code(r.code))] if org and r.code else []
        extra.append(md(self.grid_name(r.grid)))
        return f'{md(self._name(r))}<br><span class="gc-sub">{" · ".join(extra)}</span>'

    def tier_text(self, gid: str, tier: str) -> str:
        """A tier as residents read it: 优秀 for a word id, AAA 诚信模范 for a grade code."""
        title = self.tier_title(gid, tier)
        if not title:
            return tier
        return title if not tier_is_code(tier) else f"{tier} {title}"

    def tier_cell(self, gid: str, r: RankRow) -> str:
        title = self.tier_title(gid, r.tier)
        if title and not tier_is_code(r.tier):
            text = md(title)
        else:
            text = md(r.tier) + (f'<br><span class="gc-sub">{md(title)}</span>' if title else "")
        if r.note:
            text += f'<span class="gc-flag">{md(r.note)}</span>'
        return text

    def tier_counts(self, gid: str) -> list[tuple[str, int]]:
        counts = Counter(r.tier for r in self.rows[gid])
        order = [t.id for t in self._group(gid).tiers]
        order += sorted(t for t in counts if t not in order)
        return [(t, counts.get(t, 0)) for t in order]

    def trend(self, gid: str) -> tuple[list[str], list[float | None]]:
        points = {p.month: p.mean_score for p in self.d.trends if p.group == gid}
        if self.rows[gid]:
            points.setdefault(self.month, _mean([r.score for r in self.rows[gid]]))
        months = sorted(m for m in points if m <= self.month)[-12:]
        return months, [points[m] for m in months]

    def page(self, rel: str, body: str, *, search: bool = True) -> None:
        front = "" if search else "---\nsearch:\n  exclude: true\n---\n\n"
        self.out.text(f"{self.base}/{rel}", front + body)

    # pages --------------------------------------------------------------
    def group_page(self, gid: str) -> None:
        g = self._group(gid)
        rows = self.rows[gid]
        org = g.kind == "organization"
        scores = [r.score for r in rows]
        rank_count = Counter(r.rank for r in rows)
        tiers = self.tier_counts(gid)
        months, means = self.trend(gid)
        parts = [
            f"# {md(g.title)}信用积分排名",
            "",
            f'<p class="gc-muted">{self.label}公示 · 共 {len(rows)} 个{"单位" if org else "人"}参与排名</p>',
            "",
            _stats_cards(
                [
                    ("参与排名", len(rows)),
                    ("平均分", f"{_mean(scores):.1f}"),
                    ("最高分", max(scores) if scores else "—"),
                    ("最低分", min(scores) if scores else "—"),
                ]
            ),
            "",
            (
                "名次为并列排名：同分同名次，其后名次顺延（如 1、2、2、4）。"
                "“变化”为与上月名次相比：↑ 上升，↓ 下降，— 持平，新 表示上月未参与排名。"
            ),
            "",
            f"## 前 {TOP_N} 名" if len(rows) > TOP_N else "## 排名",
            "",
        ]
        if len(rows) > TOP_N:
            parts += [
                (
                    f"下表列出前 {TOP_N} 名（含并列）。完整名单见"
                    f"[开放数据：rankings-{_slug(gid)}.csv](../../../{self.data_base}/rankings-{_slug(gid)}.csv)，"
                    "各社区全部名单见本月各社区排名页。"
                ),
                "",
            ]
        header = ["名次", "变化", "名称" if org else "姓名", "积分", "等级", "本月"]
        table_rows = []
        for r in rows:
            if r.rank > TOP_N:
                break
            table_rows.append(
                [
                    _rank_cell(r.rank, rank_count[r.rank] > 1),
                    _movement(r.rank, r.previous_rank),
                    self.name_cell(r, org),
                    f"<strong>{r.score}</strong>",
                    self.tier_cell(gid, r),
                    f"{r.earned:+d}" if r.earned else "0",
                ]
            )
        parts += [_html_table(header, table_rows) if table_rows else "本月暂无排名数据。", ""]
        parts += [
            "## 等级分布",
            "",
            _chart(
                charts.bar_chart(
                    f"{g.title}等级分布（{self.label}）",
                    [self.tier_text(gid, t) for t, _ in tiers],
                    [c for _, c in tiers],
                    unit="",
                )
            ),
            "",
            "## 积分分布",
            "",
            _chart(charts.histogram(f"{g.title}信用积分分布（{self.label}）", scores)),
            "",
            "## 平均分走势",
            "",
            _chart(
                charts.line_chart(
                    f"{g.title}平均分走势", [m[2:] for m in months], [(g.title, means)]
                )
            ),
            "",
        ]
        self.page(f"rankings/{_slug(gid)}.md", "\n".join(parts))

    def community_page(self, cid: str, members: dict[str, list[RankRow]]) -> None:
        cname, _, street_name = self.communities.get(cid, (cid, "", ""))
        parts = [
            f"# {md(cname)}排名",
            "",
            f'<p class="gc-muted">{self.label}公示 · {md(street_name)}</p>',
            "",
            (
                "本页按信用积分列出本社区参与排名的全部主体。“社区名次”“网格名次”为本社区、"
                "本网格内的并列排名；全县名次见各群体排名页。"
            ),
            "",
        ]
        for gid in self.group_order:
            rows = members.get(gid)
            if not rows:
                continue
            g = self._group(gid)
            org = g.kind == "organization"
            comm_rank = competition_ranks([r.score for r in rows])
            tie = Counter(comm_rank)
            by_grid: dict[str, list[int]] = defaultdict(list)
            for i, r in enumerate(rows):
                by_grid[r.grid].append(i)
            grid_rank: dict[int, tuple[int, bool]] = {}
            for idxs in by_grid.values():
                ranks = competition_ranks([rows[i].score for i in idxs])
                c = Counter(ranks)
                for i, rk in zip(idxs, ranks):
                    grid_rank[i] = (rk, c[rk] > 1)
            header = ["社区名次", "名称" if org else "姓名", "网格名次", "积分", "等级"]
            table_rows = [
                [
                    _rank_cell(comm_rank[i], tie[comm_rank[i]] > 1),
                    self.name_cell(r, org),
                    _rank_cell(*grid_rank[i]),
                    str(r.score),
                    self.tier_cell(gid, r),
                ]
                for i, r in enumerate(rows)
            ]
            parts += [
                f"## {md(g.title)}",
                "",
                f"共 {len(rows)} 个。",
                "",
                _html_table(header, table_rows),
                "",
            ]
        self.page(f"communities/{_slug(cid)}.md", "\n".join(parts), search=False)

    def communities_pages(self) -> list[tuple[str, int]]:
        per: dict[str, dict[str, list[RankRow]]] = defaultdict(lambda: defaultdict(list))
        for gid in self.group_order:
            for r in self.rows[gid]:
                per[r.community or "-"][gid].append(r)
        for members in per.values():
            for rows in members.values():
                rows.sort(key=lambda r: (-r.score, self._name(r), r.grid, r.subject))
        order = sorted(per, key=lambda c: (self.communities.get(c, ("", "", ""))[1], c))
        for cid in order:
            self.community_page(cid, per[cid])
        self.community_order = [(cid, sum(len(v) for v in per[cid].values())) for cid in order]
        return self.community_order

    def grids_page(self) -> None:
        rows = sorted(self.d.grid_rankings, key=lambda r: (r.rank, -r.mean_score, r.grid))
        tie = Counter(r.rank for r in rows)
        parts = [
            "# 网格排名",
            "",
            f'<p class="gc-muted">{self.label}公示 · 按网格内居民平均信用积分排名</p>',
            "",
            "平均分为网格内全部居民信用积分的算术平均，保留一位小数；名次为并列排名。",
            "",
            _html_table(
                ["名次", "变化", "网格", "社区", "平均分", "居民人数"],
                [
                    [
                        _rank_cell(r.rank, tie[r.rank] > 1),
                        _movement(r.rank, r.previous_rank),
                        md(r.name or self.grid_name(r.grid)),
                        md(self.community_name(r.community)),
                        f"{r.mean_score:.1f}",
                        str(r.residents),
                    ]
                    for r in rows
                ],
            )
            if rows
            else "本月暂无网格排名。",
            "",
        ]
        if rows:
            parts += [
                "## 各网格平均分",
                "",
                _chart(
                    charts.bar_chart(
                        "各网格居民平均信用积分",
                        [r.name for r in rows],
                        [r.mean_score for r in rows],
                        decimals=1,
                    )
                ),
                "",
            ]
        self.page("grids.md", "\n".join(parts))

    def assessments_page(self) -> None:
        parts = ["# 考评结果", "", f'<p class="gc-muted">{self.label}公示</p>', ""]
        if not self.d.assessments:
            parts.append("本月没有考评结果。")
        for a in sorted(self.d.assessments, key=lambda a: (a.period, a.id)):
            parts += [
                f"## {md(a.title)}",
                "",
                f'<span class="gc-badge">{md(a.badge)}</span> 考评期：{md(period_label(a.period))}',
                "",
            ]
            if a.metric:
                parts += [f"考评指标：{md(a.metric)}", ""]
            if a.selected:
                sel = _by_unit(a.selected)
                by_unit = any(s.unit for s in sel)
                if by_unit:
                    parts += ["名次为在所列范围内（如本社区内）的排名。", ""]
                rows = []
                for s in sel:
                    who = md(self._selection_name(s))
                    if s.grid:
                        who += f'<br><span class="gc-sub">{md(self.grid_name(s.grid))}</span>'
                    rows.append(
                        ([md(s.unit or "—")] if by_unit else [])
                        + [str(s.rank), who, _number(s.value)]
                    )
                header = (["排名范围"] if by_unit else []) + ["名次", "获评对象", "指标值"]
                parts += [_html_table(header, rows), ""]
            else:
                parts += ["本期无获评对象。", ""]
        self.page("assessments.md", "\n".join(parts))

    def _selection_name(self, s: Selection) -> str:
        return self.mask(s.name, s.kind) if s.kind in ("person", "organization") else s.name

    def list_page(self, lst: PublicList) -> None:
        parts = [
            f"# {md(lst.title)}",
            "",
            f'<p class="gc-muted">{self.label}公示 · 共 {len(lst.members)} 个</p>',
            "",
        ]
        if lst.description:
            parts += [md(lst.description), ""]
        parts += [
            (
                "每个上榜对象列出上榜原因及公示期限。标注“异议审核中”的记录，当事人已提出异议，"
                "正在复核，结果以复核结论为准。"
            ),
            "",
        ]
        members = sorted(lst.members, key=lambda m: (m.group, self._name(m), m.subject))
        if not members:
            parts.append("本月无上榜对象。")
        else:
            rows = []
            for m in members:
                reasons = []
                for r in m.reasons:
                    text = md(r.text)
                    window = ""
                    if r.since and r.until:
                        window = f"（{md(r.since)} 至 {md(r.until)}）"
                    elif r.since:
                        window = f"（自 {md(r.since)} 起）"
                    elif r.until:
                        window = f"（公示至 {md(r.until)}）"
                    flag = '<span class="gc-flag">异议审核中</span>' if r.objection else ""
                    reasons.append(text + window + flag)
                name = md(self._name(m))
                if m.code:
                    name += f'<br><span class="gc-muted">{md(mask_code(m.code))}</span>'
                rows.append([name, md(self._group(m.group).title), "<br>".join(reasons) or "—"])
            parts.append(_html_table(["名称", "类别", "上榜原因"], rows))
        self.page(f"lists/{_slug(lst.id)}.md", "\n".join(parts) + "\n")

    def rules_page(self) -> None:
        parts = [
            "# 积分规则",
            "",
            f'<p class="gc-muted">{self.label}执行的规则（试行规则只测算、不计入积分，不在此列出）</p>',
            "",
        ]
        anchors: set[str] = set()
        if not self.d.rules:
            parts.append("暂无规则。")
        for pack in self.d.rules:
            parts += [f"## {md(pack.title)}", ""]
            meta = [f"适用群体：{md(self._group(pack.group).title)}"]
            if pack.version:
                meta.append(f"版本：{md(pack.version)}")
            if pack.adopted:
                meta.append(f"通过：{md(pack.adopted)}")
            parts += ["　".join(meta), ""]
            for rule in pack.rules:
                anchor = f"rule-{_slug(rule.id)}"
                n = 1
                while anchor in anchors:  # two versions of a rule in force this month
                    n += 1
                    anchor = f"rule-{_slug(rule.id)}-{n}"
                anchors.add(anchor)
                parts += [f"### {md(rule.title)} {{#{anchor}}}", ""]
                body, has_adopted = _rule_body(rule)
                parts += [body, ""] if body else []
                foot = f'<span class="gc-muted">规则编号 {md(rule.id)}'
                if rule.adopted and not has_adopted:
                    foot += f"　通过：{md(rule.adopted)}"
                parts += [foot + "</span>", ""]
        self.page("rules.md", "\n".join(parts))

    def catalog_page(self) -> None:
        parts = [
            "# 积分兑换目录",
            "",
            f'<p class="gc-muted">{self.label}公示 · 兑换使用“可用积分”，不影响信用积分和等级</p>',
            "",
        ]
        if not self.d.catalog:
            parts.append("暂无可兑换物品。")
        else:
            parts.append(
                _table(
                    ["物品", "所需积分", "最低等级", "适用群体", "库存", "兑换时间", "合作商户"],
                    [
                        [
                            md(c.title),
                            str(c.cost),
                            md(c.min_tier or "不限"),
                            md("、".join(c.groups) or "全部个人"),
                            "不限" if c.stock is None else str(c.stock),
                            md(c.available or "长期"),
                            md(c.partner or "—"),
                        ]
                        for c in sorted(self.d.catalog, key=lambda c: (c.cost, c.id))
                    ],
                )
            )
        self.page("catalog.md", "\n".join(parts))

    # open data ------------------------------------------------------------
    def open_data(self) -> list[tuple[str, str]]:
        files: list[tuple[str, str]] = []
        for gid in self.group_order:
            g = self._group(gid)
            org = g.kind == "organization"
            name = f"rankings-{_slug(gid)}.csv"
            self.out.csv(
                f"{self.data_base}/{name}",
                [
                    "名次",
                    "上月名次",
                    "名称" if org else "姓名（已脱敏）",
                    "统一社会信用代码（已脱敏）",
                    "网格编号",
                    "网格",
                    "社区",
                    "街道",
                    "信用积分",
                    "等级",
                    "本月获得积分",
                ],
                (
                    [
                        r.rank,
                        r.previous_rank,
                        self._name(r),
                        mask_code(r.code) if org else "",
                        r.grid,
                        self.grid_name(r.grid),
                        self.community_name(r.community),
                        self.communities.get(r.community, ("", "", ""))[2],
                        r.score,
                        self.tier_text(gid, r.tier),
                        r.earned,
                    ]
                    for r in self.rows[gid]
                ),
            )
            files.append((name, f"{md(g.title)}排名（全部）"))
        self.out.csv(
            f"{self.data_base}/grids.csv",
            ["名次", "上月名次", "网格编号", "网格", "社区", "居民平均信用积分", "居民人数"],
            (
                [
                    r.rank,
                    r.previous_rank,
                    r.grid,
                    r.name,
                    self.community_name(r.community),
                    f"{r.mean_score:.1f}",
                    r.residents,
                ]
                for r in sorted(self.d.grid_rankings, key=lambda r: (r.rank, r.grid))
            ),
        )
        files.append(("grids.csv", "网格排名"))
        summary = {
            "scheme": self.d.title,
            "month": self.month,
            "late_events": self.d.late_events,
            "groups": [
                {
                    "id": gid,
                    "title": self._group(gid).title,
                    "kind": self._group(gid).kind,
                    "subjects": len(self.rows[gid]),
                    "mean_score": round(_mean([r.score for r in self.rows[gid]]), 1),
                    "tiers": [
                        {"tier": self.tier_text(gid, t), "count": n}
                        for t, n in self.tier_counts(gid)
                    ],
                }
                for gid in self.group_order
            ],
            # page order of the navigation (site_nav) and the month's index
            "lists": [
                {"id": lst.id, "title": lst.title, "members": len(lst.members)}
                for lst in self.d.lists
            ],
            "communities": [
                {"id": c, "title": self.community_name(c), "subjects": n}
                for c, n in self.community_order
            ],
        }
        self.out.json(f"{self.data_base}/summary.json", summary)
        files.append(("summary.json", "本月概况（人数、平均分、等级分布）"))
        self.out.json(
            f"{self.data_base}/lists.json",
            [
                {
                    "id": lst.id,
                    "title": lst.title,
                    "members": [
                        {
                            "name": self._name(m),
                            "code": mask_code(m.code),
                            "group": self._group(m.group).title,
                            "reasons": [asdict(r) for r in m.reasons],
                        }
                        for m in sorted(
                            lst.members, key=lambda m: (m.group, self._name(m), m.subject)
                        )
                    ],
                }
                for lst in self.d.lists
            ],
        )
        files.append(("lists.json", "红灰榜及上榜原因"))
        self.out.json(
            f"{self.data_base}/assessments.json",
            [
                {
                    "id": a.id,
                    "title": a.title,
                    "badge": a.badge,
                    "period": a.period,
                    "period_title": period_label(a.period),
                    "selected": [
                        {
                            "name": self._selection_name(s),
                            "scope": s.scope if s.kind not in ("person", "organization") else "",
                            "grid": self.grid_name(s.grid) if s.grid else "",
                            "rank_within": s.unit,
                            "value": round(s.value, 3),
                            "rank": s.rank,
                        }
                        for s in _by_unit(a.selected)
                    ],
                }
                for a in sorted(self.d.assessments, key=lambda a: (a.period, a.id))
            ],
        )
        files.append(("assessments.json", "考评结果"))
        self.out.json(f"{self.data_base}/rules.json", [asdict(p) for p in self.d.rules])
        files.append(("rules.json", "积分规则"))
        self.out.json(f"{self.data_base}/catalog.json", [asdict(c) for c in self.d.catalog])
        files.append(("catalog.json", "兑换目录"))
        return files

    def data_page(self, files: list[tuple[str, str]]) -> None:
        parts = [
            "# 开放数据",
            "",
            f'<p class="gc-muted">{self.label} · CSV 为 UTF-8 编码，可用 WPS、Excel 直接打开</p>',
            "",
            (
                "开放数据不含身份证号、手机号、主体编号和个人查询码；个人姓名已脱敏，"
                "单位统一社会信用代码仅显示前6位和后4位。"
            ),
            "",
            (
                "为防止表格软件把名称当作公式执行，CSV 中以 =、+、-、@ 开头的文字前加了一个单引号 '"
                "（如 '=某某商店），阅读时忽略该单引号即可；数字（包括负数）不受影响。"
            ),
            "",
            _table(
                ["文件", "内容"],
                [[f"[{n}](../../{self.data_base}/{n})", t] for n, t in files]
                + [
                    [
                        f"[manifest.json](../../{self.data_base}/manifest.json)",
                        "各文件 SHA-256 校验值及本月内容校验值",
                    ]
                ],
            ),
            "",
        ]
        self.page("data.md", "\n".join(parts))

    def index_page(
        self, communities: list[tuple[str, int]], extra: Sequence[tuple[str, str]] = ()
    ) -> None:
        """The month at a glance; ``extra`` = (title, path) of plugin pages (其他)."""
        d = self.d
        parts = [f"# {self.label}信用积分公示", "", f'<p class="gc-muted">{md(d.title)}</p>', ""]
        total = sum(len(self.rows[g]) for g in self.group_order)
        listed = {lst.title: len(lst.members) for lst in d.lists}
        parts += [
            _stats_cards(
                [("参与排名", total), ("网格", len(d.grid_rankings) or len(d.grids))]
                + [(md(k), v) for k, v in listed.items()]
            ),
            "",
        ]
        if d.late_events:
            parts += [
                (
                    f'!!! note "迟到事件"\n    本月有 {d.late_events} 条属于已公示月份的事件迟到上报，'
                    "按规定计入本月，已公示月份的数据不作更改。"
                ),
                "",
            ]
        links = [
            (f"{md(self._group(g).title)}排名", f"rankings/{_slug(g)}.md") for g in self.group_order
        ]
        links += [("网格排名", "grids.md"), ("考评结果", "assessments.md")]
        links += [(md(lst.title), f"lists/{_slug(lst.id)}.md") for lst in d.lists]
        links += [("积分规则", "rules.md"), ("兑换目录", "catalog.md"), ("开放数据", "data.md")]
        parts += ["## 本月公示内容", "", _links(links), ""]
        if extra:
            parts += ["## 其他", "", _links(list(extra)), ""]
        parts += [
            "## 各群体概况",
            "",
            _table(
                ["群体", "人数", "平均分", "最高分"],
                [
                    [
                        f"[{md(self._group(g).title)}](rankings/{_slug(g)}.md)",
                        len(self.rows[g]),
                        f"{_mean([r.score for r in self.rows[g]]):.1f}",
                        max((r.score for r in self.rows[g]), default="—"),
                    ]
                    for g in self.group_order
                ],
            ),
            "",
        ]
        if self.group_order:
            first = self.group_order[0]
            g = self._group(first)
            tiers = self.tier_counts(first)
            months, means = self.trend(first)
            parts += [
                f"## {md(g.title)}等级分布",
                "",
                _chart(
                    charts.bar_chart(
                        f"{g.title}等级分布（{self.label}）",
                        [self.tier_text(first, t) for t, _ in tiers],
                        [c for _, c in tiers],
                    )
                ),
                "",
                f"## {md(g.title)}平均分走势",
                "",
                _chart(
                    charts.line_chart(
                        f"{g.title}平均分走势", [m[2:] for m in months], [(g.title, means)]
                    )
                ),
                "",
            ]
        if communities:
            parts += [
                "## 各社区排名",
                "",
                _table(
                    ["社区", "街道", "参与排名"],
                    [
                        [
                            f"[{md(self.community_name(c))}](communities/{_slug(c)}.md)",
                            md(self.communities.get(c, ("", "", c))[2]),
                            n,
                        ]
                        for c, n in communities
                    ],
                ),
                "",
            ]
        self.page("index.md", "\n".join(parts))


def _content_hash(files: dict[Path, bytes], roots: Sequence[Path]) -> tuple[str, dict[str, str]]:
    listing: dict[str, str] = {}
    for path, data in files.items():
        for root in roots:
            if root in path.parents:
                listing[path.relative_to(root.parent.parent).as_posix()] = hashlib.sha256(
                    data
                ).hexdigest()
    text = "".join(f"{k}\0{v}\n" for k, v in sorted(listing.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), listing


def _archive_months(
    site_dir: Path, data: MonthData, current: tuple[str, str]
) -> list[tuple[str, str]]:
    """Every month of the archive with the content hash its ``manifest.json`` holds.

    The manifest on disk wins over ``data.archive``: the archive shows what a
    resident can check against the published manifest, and a month's value
    never changes when a later month is published.
    """
    months = {a.month: a.content_hash for a in data.archive}
    data_root = site_dir / "data"
    if data_root.is_dir():
        for manifest in sorted(data_root.glob("*/manifest.json")):
            m = manifest.parent.name
            if MONTH_RE.match(m):
                try:
                    months[m] = json.loads(manifest.read_text("utf-8"))["content_hash"]
                except (ValueError, KeyError, TypeError):
                    continue
    months[current[0]] = current[1]
    return sorted(months.items(), reverse=True)


def _archive_page(site_dir: Path, months: list[tuple[str, str]], title: str) -> str:
    rows = []
    for m, digest in months:
        page = site_dir / "months" / m / "index.md"
        link = f"[{month_label(m)}]({m}/index.md)" if page.exists() else month_label(m)
        data = f"[下载]({m}/data.md)" if (site_dir / "months" / m / "data.md").exists() else "—"
        rows.append([link, data, f'<span class="gc-hash">{md(digest)}</span>'])
    return "\n".join(
        [
            "# 往期公示",
            "",
            f'<p class="gc-muted">{md(title)}</p>',
            "",
            "每月公示后即结账，已公示月份的数据不再更改。",
            "",
            _table(["月份", "开放数据", "内容校验值"], rows),
            "",
            "## 如何核对",
            "",
            (
                "“内容校验值”与该月开放数据中 manifest.json 的 content_hash 相同。"
                "manifest.json 逐个列出该月每个开放数据文件（CSV、JSON）和生成公示页面所用源文件的 SHA-256 校验值，"
                "内容校验值由这份清单算出，清单中任何一个文件改变，内容校验值都会改变。"
            ),
            "",
            (
                "核对下载的文件：算出文件的 SHA-256（Windows 命令行：certutil -hashfile 文件名 SHA256；"
                "苹果电脑或 Linux：shasum -a 256 文件名），与 manifest.json 中该文件的值比较，"
                "再将 manifest.json 的 content_hash 与本页该月的内容校验值比较；两者都一致，"
                "说明下载的数据与公示时相同。"
            ),
            "",
        ]
    )


def _home_page(site: _MonthSite) -> str:
    d = site.d
    m = site.base
    links = [("本月公示", f"{m}/index.md"), ("个人查询", "lookup/index.md")]
    links += [(md(lst.title), f"{m}/lists/{_slug(lst.id)}.md") for lst in d.lists]
    links += [
        ("网格排名", f"{m}/grids.md"),
        ("积分规则", f"{m}/rules.md"),
        ("往期公示", "months/index.md"),
    ]
    parts = [
        f"# {md(d.title)}",
        "",
        (
            f"最新公示：**{site.label}**。积分每月公示一次（一月一公示），公示内容包括各群体排名、"
            "网格排名、考评结果、红灰榜、积分规则和兑换目录。"
        ),
        "",
        _links(links),
        "",
        "## 本月概况",
        "",
        _table(
            ["群体", "人数", "平均分"],
            [
                [
                    f"[{md(site._group(g).title)}]({m}/rankings/{_slug(g)}.md)",
                    len(site.rows[g]),
                    f"{_mean([r.score for r in site.rows[g]]):.1f}",
                ]
                for g in site.group_order
            ],
        ),
        "",
    ]
    if d.grid_rankings:
        top = sorted(d.grid_rankings, key=lambda r: (r.rank, r.grid))[:3]
        parts += [
            "## 网格排名前三",
            "",
            _table(
                ["名次", "网格", "平均分"],
                [[str(r.rank), md(r.name), f"{r.mean_score:.1f}"] for r in top],
            ),
            "",
        ]
    parts += [
        (
            "查询本人积分请使用[个人查询](lookup/index.md)，输入网格员发放的查询码。"
            "了解积分规则如何制定和修改，见[政策人员指南](guide/index.md)；"
            "个人信息如何保护，见[关于与隐私](about.md)。"
        ),
        "",
    ]
    return "\n".join(parts)


def _lookup_page(secret: bytes, iterations: int, month: str) -> str:
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
                f'data-iterations="{iterations}" data-month="{h(month)}" data-base="./">'
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


def _lookup_entry(e: LookupEntry) -> dict[str, Any]:
    rec: dict[str, Any] = {"date": e.date, "rule": e.rule, "points": e.points}
    # empty fields are left out: the file of a resident with years of entries stays small
    if e.wallet:
        rec["wallet"] = e.wallet
    if e.flag:
        rec["flag"] = e.flag
    if e.month:
        rec["month"] = e.month
    return rec


def _lookup_records(site: _MonthSite) -> dict[str, dict]:
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


def _run_publishers(
    publishers: Sequence[Publisher],
    month: str,
    data: MonthData,
    site_dir: Path,
    out: _Output,
    month_roots: Sequence[Path],
) -> list[Path]:
    """Run the plugin publishers; returns the paths they wrote (absolute, sorted).

    Files inside the month's folders are taken into ``out`` so the month's
    clean-up keeps them and the manifest hashes them. A publisher that writes
    outside the site folder is an error.
    """
    root = site_dir.resolve()
    site_dir.mkdir(parents=True, exist_ok=True)
    extra: set[Path] = set()
    for pub in publishers:
        for path in pub.write(month, data, site_dir) or []:
            resolved = Path(path).resolve()
            if root not in resolved.parents:
                raise InputError(
                    f"publisher {getattr(pub, 'name', pub)!r} wrote {path} outside the site "
                    f"folder {root}; write under site_dir (e.g. months/{month}/<name>.md)"
                )
            if not resolved.is_file():
                raise InputError(
                    f"publisher {getattr(pub, 'name', pub)!r} returned {path}, which it did not write"
                )
            local = site_dir / resolved.relative_to(root)
            if local in out.files or (local.parent in month_roots and local.name in _RESERVED):
                raise InputError(
                    f"publisher {getattr(pub, 'name', pub)!r} wrote {path}, a page gridcredit "
                    "writes itself; give the plugin's page its own file name"
                )
            extra.add(local)
            content = local.read_bytes()
            if local.suffix.lower() == ".csv":  # open data: no formulas, whoever wrote it
                safe = _neutralise_csv(content)
                if safe != content:
                    local.write_bytes(safe)
                    content = safe
            if any(r in local.parents for r in month_roots):
                out.files[local] = content
    return sorted(extra)


_RESERVED = frozenset({"index.md", "data.md", "manifest.json"})


def _page_title(content: bytes, fallback: str) -> str:
    """The first ``# `` heading of a Markdown page (already Markdown), else ``fallback`` escaped."""
    for line in content.decode("utf-8", "replace").splitlines():
        if line.startswith("# "):
            return line[2:].strip().replace("[", "&#91;").replace("]", "&#93;")
    return md(fallback)


def write_assets(site_dir: Path) -> list[Path]:
    """Copy the package's CSS and JS into ``site_dir/assets``."""
    target = site_dir / "assets"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ASSETS:
        data = resources.files("scoring").joinpath("assets", name).read_bytes()
        path = target / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    return written


def publish_month(
    month: str,
    data: MonthData,
    site_dir: Path,
    *,
    secret: bytes,
    mask: Callable[[str, str], str] | None = None,
    iterations: int = ITERATIONS,
    publishers: Sequence[Publisher] = (),
    private_dir: Path | None = None,
) -> list[Path]:
    """Write the site pages and open data of ``month`` into ``site_dir``.

    Returns every path written (sorted). ``mask`` replaces :func:`mask_name`
    (pass the ``mask_name`` hook caller); ``publishers`` come from the
    ``register_publishers`` hook and run after the built-in pages but before
    the month's index, data page and ``manifest.json``: their pages under
    ``months/<month>/`` are linked from the index (其他) and the navigation,
    their files under ``data/<month>/`` from the data page, and both count in
    the month's content hash.
    ``private_dir`` (e.g. ``<db dir>/private``, never inside the site) holds
    a cache of look-up keys so later months skip the slow key derivation.
    """
    if not MONTH_RE.match(month):
        raise InputError(f"publish: month {month!r} is not of the form YYYY-MM (e.g. 2024-03)")
    if data.month != month:
        raise InputError(f"publish: the data is for {data.month}, not for {month}")
    if not secret:
        raise InputError("publish: the look-up secret is empty; set one for the scheme")
    site_dir = Path(site_dir)
    mask_fn = mask or mask_name
    out = _Output(site_dir)
    site = _MonthSite(
        month, data, out, lambda name, kind: mask_fn(name, kind) or mask_name(name, kind)
    )

    latest = all(m <= month for m, _ in _archive_months(site_dir, data, (month, "")))
    keys = None
    if latest:
        cache = Path(private_dir) / "lookup-keys.json" if private_dir else None
        if cache and site_dir.resolve() in cache.resolve().parents:
            raise InputError(f"publish: private_dir {private_dir} must be outside the site folder")
        # the slow key derivation runs in threads while the pages are written
        keys = LookupKeys(
            secret, {a.subject for a in data.lookup}, iterations=iterations, cache=cache
        )
    try:
        return _publish(site, site_dir, secret, iterations, publishers, latest, keys)
    finally:
        if keys is not None:
            keys.close()


def _publish(
    site: _MonthSite,
    site_dir: Path,
    secret: bytes,
    iterations: int,
    publishers: Sequence[Publisher],
    latest: bool,
    keys: LookupKeys | None,
) -> list[Path]:
    month, data, out = site.month, site.d, site.out
    for gid in site.group_order:
        site.group_page(gid)
    communities = site.communities_pages()
    site.grids_page()
    site.assessments_page()
    for lst in data.lists:
        site.list_page(lst)
    site.rules_page()
    site.catalog_page()
    files = site.open_data()

    month_dir, data_dir = site_dir / "months" / month, site_dir / "data" / month
    # Plugin publishers run before the index, data page and manifest are made,
    # so their pages are linked (其他) and their files are in the content hash.
    extra = _run_publishers(publishers, month, data, site_dir, out, (month_dir, data_dir))
    extra_pages = [
        (_page_title(out.files[path], path.stem), path.relative_to(month_dir).as_posix())
        for path in extra
        if path.suffix == ".md" and month_dir in path.parents
    ]
    titles = {Path(rel).stem: title for title, rel in extra_pages}
    extra_data = [
        (path.relative_to(data_dir).as_posix(), titles.get(path.stem, "其他数据"))
        for path in extra
        if data_dir in path.parents
    ]
    site.data_page(files + extra_data)
    site.index_page(communities, extra_pages)

    digest, listing = _content_hash(out.files, [month_dir, data_dir])
    out.json(
        f"data/{month}/manifest.json", {"month": month, "content_hash": digest, "files": listing}
    )

    months = _archive_months(site_dir, data, (month, digest))
    if latest:
        out.text("index.md", _home_page(site))
        out.text("lookup/index.md", _lookup_page(secret, iterations, month))

    written = out.flush([month_dir, data_dir])
    written += [p for p in extra if p not in out.files]
    # The archive links only to pages that exist, so write it after the month.
    archive = site_dir / "months" / "index.md"
    archive.write_text(_archive_page(site_dir, months, data.title), encoding="utf-8")
    written.append(archive)
    written += write_assets(site_dir)
    if latest:
        written += write_lookup_files(
            site_dir / "lookup", _lookup_records(site), secret=secret, keys=keys
        )
    return sorted(set(written))


def is_lookup_file(src_uri: str) -> bool:
    """A per-person look-up data file (``lookup/<32 hex>.js``)."""
    return re.fullmatch(r"lookup/[0-9a-f]{32}\.js", src_uri) is not None


def link_files(pairs: Iterable[tuple[str | Path, str | Path]]) -> int:
    """Hard-link each ``(source, destination)``; copy where linking fails.

    The MkDocs hook puts the tens of thousands of look-up files into the
    built site this way instead of copying them. Safe because the publisher
    replaces a changed look-up file (new inode) rather than rewriting it.
    Returns the number of files placed.
    """
    import os
    import shutil

    made: set[Path] = set()
    n = 0
    for src, dest in pairs:
        dest = Path(dest)
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        try:
            os.link(src, dest)
        except FileExistsError:
            dest.unlink()
            os.link(src, dest)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(src, dest)
        n += 1
    return n


# --------------------------------------------------------------------------
# Navigation (called from the MkDocs hook site/overrides/hooks.py)
# --------------------------------------------------------------------------


# The policy staff guide in reading order; other guide pages follow by name.
GUIDE_ORDER = ("index.md", "rules.md", "validate.md", "testing.md", "change-a-rule.md")


def _page_order(summary: Path) -> dict[str, list[str]]:
    """Page file stems in the scheme's order (groups and lists as in scheme.yaml),
    from the month's ``summary.json``; empty lists when it is missing."""
    order: dict[str, list[str]] = {"rankings": [], "lists": [], "communities": []}
    try:
        data = json.loads(summary.read_text("utf-8"))
        order["rankings"] = [_slug(str(g["id"])) for g in data.get("groups", [])]
        order["lists"] = [_slug(str(x["id"])) for x in data.get("lists", [])]
        order["communities"] = [_slug(str(x["id"])) for x in data.get("communities", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return order


def _ordered(pages: Iterable[Path], stems: list[str]) -> list[Path]:
    """``pages`` in the order of ``stems``; pages not named there follow by name."""
    rank = {s: i for i, s in enumerate(stems)}
    return sorted(pages, key=lambda p: (rank.get(p.stem, len(rank)), p.name))


def site_nav(docs_dir: Path) -> list[Any]:
    """The site navigation: home, latest month, archive, look-up, guide, about.

    Built from what exists in ``docs_dir`` so a fresh site (no month
    published yet) and a site with years of months both build in strict mode.
    Older months stay reachable from the archive page.
    """
    docs = Path(docs_dir)
    nav: list[Any] = []

    def have(rel: str) -> bool:
        return (docs / rel).is_file()

    if have("index.md"):
        nav.append({"首页": "index.md"})
    months = (
        sorted(
            (p.name for p in (docs / "months").glob("*") if p.is_dir() and MONTH_RE.match(p.name)),
            reverse=True,
        )
        if (docs / "months").is_dir()
        else []
    )
    months = [m for m in months if have(f"months/{m}/index.md")]
    if months:
        m = months[0]
        base = f"months/{m}"
        section: list[Any] = [{"本月概览": f"{base}/index.md"}]
        page_order = _page_order(docs / "data" / m / "summary.json")
        ranks = _ordered((docs / base / "rankings").glob("*.md"), page_order["rankings"])
        if ranks:
            section.append({"群体排名": [f"{base}/rankings/{p.name}" for p in ranks]})
        for rel, title in (("grids.md", "网格排名"), ("assessments.md", "考评结果")):
            if have(f"{base}/{rel}"):
                section.append({title: f"{base}/{rel}"})
        lists = _ordered((docs / base / "lists").glob("*.md"), page_order["lists"])
        if lists:
            section.append({"红灰榜": [f"{base}/lists/{p.name}" for p in lists]})
        comms = _ordered((docs / base / "communities").glob("*.md"), page_order["communities"])
        if comms:
            section.append({"社区排名": [f"{base}/communities/{p.name}" for p in comms]})
        for rel, title in (
            ("rules.md", "积分规则"),
            ("catalog.md", "兑换目录"),
            ("data.md", "开放数据"),
        ):
            if have(f"{base}/{rel}"):
                section.append({title: f"{base}/{rel}"})
        known = {"index.md", "grids.md", "assessments.md", "rules.md", "catalog.md", "data.md"}
        others = sorted(
            p.relative_to(docs).as_posix()
            for p in (docs / base).rglob("*.md")
            if p.relative_to(docs / base).parts[0] not in ("rankings", "lists", "communities")
            and p.relative_to(docs / base).as_posix() not in known
        )
        if others:
            section.append({"其他": others})
        nav.append({f"{month_label(m)}公示": section})
    if have("months/index.md"):
        nav.append({"往期公示": "months/index.md"})
    if have("lookup/index.md"):
        nav.append({"个人查询": "lookup/index.md"})
    guide = sorted((docs / "guide").glob("*.md")) if (docs / "guide").is_dir() else []
    if guide:
        names = [p.name for p in guide]
        order = [n for n in GUIDE_ORDER if n in names]
        pages = [f"guide/{n}" for n in order + sorted(set(names) - set(order))]
        nav.append({"政策人员指南": pages})
    if have("about.md"):
        nav.append({"关于与隐私": "about.md"})
    return nav
