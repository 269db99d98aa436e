"""Durations, local calendar arithmetic and period keys.

Every period boundary is local time in the scheme's time zone; instants are
stored as integer UTC epoch seconds.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

_DURATION = re.compile(
    r"^\s*(\d+)\s*(d|days?|w|weeks?|m|months?|y|years?|天|日|周|个月|月|年)\s*$", re.IGNORECASE
)
_UNITS = {
    "d": "days", "day": "days", "days": "days", "天": "days", "日": "days",
    "w": "weeks", "week": "weeks", "weeks": "weeks", "周": "weeks",
    "m": "months", "month": "months", "months": "months", "个月": "months", "月": "months",
    "y": "years", "year": "years", "years": "years", "年": "years",
}  # fmt: skip

PERIOD_KINDS = ("day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class Duration:
    """A calendar duration: ``n`` days, weeks, months or years."""

    n: int
    unit: str  # days | weeks | months | years

    def __str__(self) -> str:
        return f"{self.n} {self.unit}"

    def chinese(self) -> str:
        word = {"days": "天", "weeks": "周", "months": "个月", "years": "年"}[self.unit]
        return f"{self.n}{word}"


def parse_duration(text: str | int) -> Duration:
    """Parse ``365d``, ``12 months``, ``3 years``; raise ValueError with a hint."""
    if isinstance(text, int) and not isinstance(text, bool):
        d = Duration(text, "days")
        if text < 0:
            raise ValueError(f"duration {text!r} is negative; write a number of days from 1 up")
        _check_span(text, d)
        return d
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(
            f"cannot read duration {text!r}: write a number and a unit, e.g. '365d', '12 months', '3 years'"
        )
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > 9:  # past any span (and Python's 4300-digit limit on int())
        shown = f"{digits[:12]}… {m.group(2)}"
        _check_span(shown, Duration(10**9, _UNITS[m.group(2).lower()]))
    d = Duration(int(digits), _UNITS[m.group(2).lower()])
    _check_span(text, d)
    return d


# The longest duration a rule may name: 100 years (the calendar ends at year 9999).
_LONGEST = {"days": 36_525, "weeks": 5_218, "months": 1_200, "years": 100}


def _check_span(text: str | int, d: Duration) -> None:
    if d.n == 0:
        raise ValueError(
            f"duration {text!r} is zero, so it never lasts; write at least 1 (e.g. '1 month'),"
            " or leave the key out"
        )
    if d.n > _LONGEST[d.unit]:
        raise ValueError(
            f"duration {text!r} is longer than 100 years; write at most '100 years'"
            " (for no end at all, leave the key out: e.g. without 'expires' points never expire)"
        )


def add_months(d: datetime, months: int) -> datetime:
    y, mo = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, mo + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return d.replace(year=year, month=month, day=day)


class Clock:
    """Converts between epoch seconds and local calendar values for one time zone."""

    def __init__(self, tz: str = "Asia/Shanghai"):
        self.tzname = tz
        self.tz = ZoneInfo(tz)
        self._month_cache: dict[int, str] = {}
        self._add_cache: dict[tuple[int, Duration], int] = {}

    def local(self, ts: int) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def epoch(self, dt: datetime) -> int:
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.tz)
        return int(dt.timestamp())

    def parse_time(self, text: str) -> int:
        """ISO 8601 date or date-time; without offset it is local time."""
        text = text.strip()
        if len(text) == 10:
            dt = datetime.fromisoformat(text)
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return self.epoch(dt)

    def day_start(self, d: date) -> int:
        return self.epoch(datetime(d.year, d.month, d.day))

    def end_of_day(self, d: date | str) -> int:
        """``--as-of DATE``: the end of that local day, as the last second of it."""
        if isinstance(d, str):
            d = date.fromisoformat(d)
        return self.day_start(d + timedelta(days=1)) - 1

    def add(self, ts: int, dur: Duration) -> int:
        """``ts`` plus a calendar duration in local time.

        Memoised per 15-minute bucket: UTC offsets and their changes fall on
        quarter hours, so every instant in a bucket moves by the same seconds.
        """
        bucket = ts - ts % 900
        key = (bucket, dur)
        delta = self._add_cache.get(key)
        if delta is None:
            delta = self._add_cache[key] = self._add(bucket, dur) - bucket
        return ts + delta

    def _add(self, ts: int, dur: Duration) -> int:
        dt = self.local(ts)
        if dur.unit == "days":
            dt = dt + timedelta(days=dur.n)
        elif dur.unit == "weeks":
            dt = dt + timedelta(weeks=dur.n)
        elif dur.unit == "months":
            dt = add_months(dt, dur.n)
        else:
            dt = add_months(dt, 12 * dur.n)
        return self.epoch(dt.replace(tzinfo=None))

    def sub(self, ts: int, dur: Duration) -> int:
        return self.add(ts, Duration(-dur.n, dur.unit))

    def month(self, ts: int) -> str:
        """Local month key ``YYYY-MM``.

        Cached per 15-minute bucket (every UTC offset is a multiple of 15
        minutes, so no bucket straddles a local month boundary): this sits on
        the per-event hot path.
        """
        bucket = ts // 900
        key = self._month_cache.get(bucket)
        if key is None:
            key = self._month_cache[bucket] = self.local(ts).strftime("%Y-%m")
        return key

    def period(self, ts: int, kind: str) -> str:
        dt = self.local(ts)
        return period_key(dt.date(), kind)

    def period_bounds(self, key: str) -> tuple[int, int]:
        """Start (inclusive) and end (exclusive) epoch seconds of a period key."""
        start, end = period_dates(key)
        return self.day_start(start), self.day_start(end)


def period_key(d: date, kind: str) -> str:
    if kind == "day":
        return d.isoformat()
    if kind == "week":
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"
    if kind == "month":
        return f"{d.year}-{d.month:02d}"
    if kind == "quarter":
        return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
    if kind == "year":
        return str(d.year)
    raise ValueError(f"unknown period kind {kind!r}; use one of {', '.join(PERIOD_KINDS)}")


# The years an event's time may fall in (ingest refuses others), so the years of periods.
FIRST_YEAR, LAST_YEAR = 1970, 2099
_PERIOD = re.compile(r"^(\d{4})(?:-(Q[1-4]|W\d{2}|\d{2})(?:-(\d{2}))?)?$")


def period_kind(key: str) -> str:
    m = _PERIOD.match(key)
    if not m:
        raise ValueError(
            f"cannot read period {key!r}: write 2024, 2024-Q1, 2024-03, 2024-W09 or 2024-03-05"
        )
    year, part = int(m.group(1)), m.group(2)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(
            f"cannot read period {key!r}: the year must be {FIRST_YEAR} to {LAST_YEAR},"
            " the years events can have"
        )
    if part is not None and part[0] not in "QW" and not 1 <= int(part) <= 12:
        raise ValueError(f"cannot read period {key!r}: the month must be 01 to 12")
    if m.group(3):
        if part[0] in "QW":
            raise ValueError(f"cannot read period {key!r}: a day is written 2024-03-05")
        try:
            date.fromisoformat(key)
        except ValueError:
            raise ValueError(f"cannot read period {key!r}: there is no such day") from None
        return "day"
    if part is None:
        return "year"
    if part.startswith("Q"):
        return "quarter"
    if part.startswith("W"):
        try:
            date.fromisocalendar(year, int(part[1:]), 1)
        except ValueError:
            raise ValueError(f"cannot read period {key!r}: {year} has no week {part[1:]}") from None
        return "week"
    return "month"


@lru_cache(maxsize=4096)
def period_dates(key: str) -> tuple[date, date]:
    """First day (inclusive) and day after the last (exclusive) of a period key."""
    kind = period_kind(key)
    year = int(key[:4])
    if kind == "year":
        return date(year, 1, 1), date(year + 1, 1, 1)
    if kind == "quarter":
        q = int(key[-1])
        start = date(year, 3 * q - 2, 1)
        end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
        return start, end
    if kind == "month":
        month = int(key[5:7])
        if not 1 <= month <= 12:
            raise ValueError(f"cannot read period {key!r}: month must be 01 to 12")
        end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return date(year, month, 1), end
    if kind == "week":
        start = date.fromisocalendar(year, int(key[6:8]), 1)
        return start, start + timedelta(days=7)
    d = date.fromisoformat(key)
    return d, d + timedelta(days=1)


def months_between(first: str, last: str) -> list[str]:
    """Month keys from ``first`` to ``last`` inclusive."""
    y, m = int(first[:4]), int(first[5:7])
    out = []
    while f"{y}-{m:02d}" <= last:
        out.append(f"{y}-{m:02d}")
        m += 1
        if m == 13:
            y, m = y + 1, 1
    return out


def next_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y + 1}-01" if m == 12 else f"{y}-{m + 1:02d}"


def previous_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"


def parse_as_of(scheme: Any, as_of: str | None) -> int | None:
    """``--as-of DATE``: the end of that local day (SPEC §4), or ``None`` for no date."""
    from .errors import UsageError

    if not as_of:
        return None
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        raise UsageError(
            f"--as-of {as_of!r}: write a date as YYYY-MM-DD, e.g. 2024-03-31"
        ) from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise UsageError(
            f"--as-of {as_of!r}: the year must be {FIRST_YEAR} to {LAST_YEAR}, the years events can have"
        )
    return scheme.clock.end_of_day(day)
