"""Static inline SVG charts for the monthly site.

Charts are drawn once, at publish time, as plain SVG text that the pages
embed directly: no JavaScript library, no web font, no network request. Each
chart scales to the width of its container (``viewBox`` and ``width=100%``)
so it stays readable on a phone. Colours come from CSS classes
(``gridcredit.css``) so light and dark palettes both work.

Every piece of text that may come from input (group, tier, grid names) is
escaped with :func:`html.escape`. Numbers are formatted with fixed precision
so the same data always gives byte-identical SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH = 360  # viewBox width; a phone screen is about this many CSS pixels wide
FONT = 11
SERIES_CLASSES = 8  # .s0 … .s7 in gridcredit.css


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(value: float) -> str:
    """Format a coordinate: at most one decimal, no trailing zeros, no ``-0``."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _svg(title: str, height: float, body: list[str], *, desc: str = "") -> str:
    label = _e(title)
    parts = [
        (
            f'<svg class="gc-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} '
            f'{_n(height)}" width="100%" role="img" aria-label="{label}">'
        ),
        f"<title>{label}</title>",
    ]
    if desc:
        parts.append(f"<desc>{_e(desc)}</desc>")
    parts.extend(body)
    parts.append("</svg>")
    # One line per element and no blank line: Markdown keeps the block raw.
    return "\n".join(parts)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nice_step(span: float, target: int = 5) -> float:
    """A round axis step (1, 2, 5 × 10^n) giving about ``target`` ticks over ``span``."""
    if span <= 0:
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return float(mult * power)
    return float(10 * power)


def _empty(title: str) -> str:
    return _svg(
        title,
        40,
        [
            (
                f'<text class="gc-muted" x="{WIDTH // 2}" y="24" text-anchor="middle" '
                f'font-size="{FONT}">暂无数据</text>'
            )
        ],
    )


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    unit: str = "",
    decimals: int = 0,
    label_width: int = 110,
) -> str:
    """Horizontal bars, one row per label; suits tier counts and grid means.

    Bars start at the smallest value minus a margin when all values are far
    from zero (grid means around 1000 would otherwise look identical); the
    chart then says so under the bars, with the value the bars start from, so
    a 0.4 % gap is not read as four times as much.
    """
    if not values:
        return _empty(title)
    row, top = 22, 8
    height = top + row * len(values) + 8
    lo, hi = min(values), max(values)
    base = 0.0
    if lo > 0 and hi > 0 and (hi - lo) < 0.5 * hi:
        step = nice_step(hi - lo or 1)
        base = max(0.0, math.floor((lo - step) / step) * step)
    note = ""
    if base > 0:
        note = f"注：横条从 {_n(base)} 起画，不从 0 起，长短只表示高出 {_n(base)} 的部分。"
        height += 22
    span = (hi - base) or 1.0
    x0 = label_width + 4
    avail = WIDTH - x0 - 52
    body: list[str] = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        w = max(1.0, (value - base) / span * avail)
        shown = f"{value:.{decimals}f}{unit}"
        body.append(
            f'<text x="{label_width}" y="{_n(y + 14)}" text-anchor="end" '
            f'font-size="{FONT}">{_e(_truncate(str(label), 10))}</text>'
        )
        body.append(
            f'<rect class="gc-bar s{i % SERIES_CLASSES if len(values) <= 8 else 0}" '
            f'x="{x0}" y="{_n(y + 3)}" width="{_n(w)}" height="15" rx="2"/>'
        )
        body.append(
            f'<text x="{_n(x0 + w + 4)}" y="{_n(y + 14)}" font-size="{FONT}">{_e(shown)}</text>'
        )
    if note:
        body.append(
            f'<text class="gc-muted" x="4" y="{height - 8}" font-size="{FONT}">{_e(note)}</text>'
        )
    desc = "；".join(f"{lab}：{val:.{decimals}f}{unit}" for lab, val in zip(labels, values))
    return _svg(title, height, body, desc=desc + (f"。{note}" if note else ""))


def histogram(title: str, values: Sequence[int], *, bins: int = 12) -> str:
    """Score distribution: vertical bars over equal-width, round-numbered score bands."""
    if not values:
        return _empty(title)
    lo, hi = min(values), max(values)
    step = max(1, int(nice_step(hi - lo + 1, bins)))
    start = math.floor(lo / step) * step
    nbins = max(1, math.floor((hi - start) / step) + 1)
    counts = [0] * nbins
    for v in values:
        counts[min(nbins - 1, int((v - start) // step))] += 1  # points may be fractional
    height, left, bottom, top = 190, 34, 40, 14
    plot_w, plot_h = WIDTH - left - 8, height - top - bottom
    cmax = max(counts)
    ystep = max(1, int(nice_step(cmax, 4)))
    ymax = math.ceil(cmax / ystep) * ystep
    bw = plot_w / nbins
    body: list[str] = []
    for t in range(0, ymax + 1, ystep):
        y = top + plot_h - t / ymax * plot_h
        body.append(
            f'<line class="gc-grid" x1="{left}" y1="{_n(y)}" x2="{WIDTH - 8}" y2="{_n(y)}"/>'
        )
        body.append(
            f'<text x="{left - 4}" y="{_n(y + 4)}" text-anchor="end" font-size="10">{t}</text>'
        )
    label_every = max(1, math.ceil(nbins / 6))
    for i, c in enumerate(counts):
        x = left + i * bw
        h = c / ymax * plot_h
        if c:
            body.append(
                f'<rect class="gc-bar s0" x="{_n(x + 1)}" y="{_n(top + plot_h - h)}" '
                f'width="{_n(max(1.0, bw - 2))}" height="{_n(h)}"/>'
            )
        if i % label_every == 0:
            body.append(
                f'<text x="{_n(x)}" y="{_n(top + plot_h + 14)}" font-size="10">'
                f"{start + i * step}</text>"
            )
    body.append(
        f'<text class="gc-muted" x="{WIDTH // 2}" y="{height - 6}" text-anchor="middle" '
        f'font-size="10">信用积分（每档 {step} 分）· 纵轴：人数</text>'
    )
    desc = "；".join(
        f"{start + i * step}–{start + (i + 1) * step - 1}分：{c}" for i, c in enumerate(counts)
    )
    return _svg(title, height, body, desc=desc)


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    decimals: int = 1,
) -> str:
    """Month-on-month trend, one line per series (``None`` leaves a gap)."""
    points = [v for _, vals in series for v in vals if v is not None]
    if not x_labels or not points:
        return _empty(title)
    legend_rows = math.ceil(len(series) / 3)
    lo, hi = min(points), max(points)
    step = nice_step((hi - lo) or max(1.0, abs(hi) * 0.1), 4)
    ymin = math.floor(lo / step) * step
    # an axis that does not start at zero says so (a small rise must not look steep)
    note = f"注：纵轴从 {_n(ymin)} 起，不从 0 起。" if ymin > 0 else ""
    left, right, top, bottom = 44, 12, 12 + 16 * legend_rows, 28 + (18 if note else 0)
    height = 200 + 16 * legend_rows + (18 if note else 0)
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    ymax = math.ceil(hi / step) * step
    if ymax == ymin:
        ymax = ymin + step
    n = len(x_labels)

    def px(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def py(v: float) -> float:
        return top + plot_h - (v - ymin) / (ymax - ymin) * plot_h

    body: list[str] = []
    ticks = round((ymax - ymin) / step)
    for t in range(ticks + 1):
        tick = ymin + t * step
        y = py(tick)
        body.append(
            f'<line class="gc-grid" x1="{left}" y1="{_n(y)}" x2="{WIDTH - right}" y2="{_n(y)}"/>'
        )
        body.append(
            f'<text x="{left - 4}" y="{_n(y + 4)}" text-anchor="end" font-size="10">{_n(tick)}</text>'
        )
    label_every = max(1, math.ceil(n / 6))
    for i, lab in enumerate(x_labels):
        if i % label_every == 0 or i == n - 1:
            body.append(
                f'<text x="{_n(px(i))}" y="{height - bottom + 18}" text-anchor="middle" '
                f'font-size="10">{_e(lab)}</text>'
            )
    if note:
        body.append(
            f'<text class="gc-muted" x="4" y="{height - 6}" font-size="10">{_e(note)}</text>'
        )
    for k, (name, vals) in enumerate(series):
        cls = f"s{k % SERIES_CLASSES}"
        segs: list[list[str]] = [[]]
        for i, v in enumerate(vals):
            if v is None:
                segs.append([])
                continue
            segs[-1].append(f"{_n(px(i))},{_n(py(v))}")
            body.append(f'<circle class="gc-dot {cls}" cx="{_n(px(i))}" cy="{_n(py(v))}" r="2.5"/>')
        for seg in segs:
            if len(seg) > 1:
                body.append(f'<polyline class="gc-line {cls}" points="{" ".join(seg)}"/>')
        lx = 8 + (k % 3) * 116
        ly = 4 + (k // 3) * 16
        body.append(f'<rect class="gc-bar {cls}" x="{lx}" y="{ly + 2}" width="10" height="10"/>')
        body.append(
            f'<text x="{lx + 14}" y="{ly + 11}" font-size="10">{_e(_truncate(name, 8))}</text>'
        )
    desc = note + "；".join(
        f"{name}："
        + "，".join(
            f"{lab} {'—' if v is None else f'{v:.{decimals}f}'}" for lab, v in zip(x_labels, vals)
        )
        for name, vals in series
    )
    return _svg(title, height, body, desc=desc)
