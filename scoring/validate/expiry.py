"""Pass 2 for ``expires`` (rules and assessment awards): durations that parse, size bands
from the smallest up with only the last one open, so every entry falls in one band."""

from __future__ import annotations

from typing import Any

from .messages import Path_


class _ExpiryChecks:
    # provided by the checker class this mixes into (validate.base._Checks)
    add: Any
    check_duration: Any
    pt: Any  # a point value as written (scoring.precision)

    def check_expires(self, f: str, p: Any, path: Path_, expires: Any, where: str) -> None:
        if not isinstance(expires, dict):
            return
        self.check_duration(f, p, (*path, "after"), expires.get("after"), where, bare=True)
        bands = expires.get("by_size")
        if not isinstance(bands, list):
            return
        prev = None
        for k, band in enumerate(bands):
            if not isinstance(band, dict):
                continue
            self.check_duration(
                f, p, (*path, "by_size", k, "after"), band.get("after"), where, bare=True
            )
            upto = band.get("upto")
            last = k == len(bands) - 1
            if upto is None and not last:
                self.add(f, p, (*path, "by_size", k),
                         f"size band {k + 1} of the validity of {where} has no 'upto' but band"
                         f" {k + 2} follows it; only the last band may be open: give band"
                         f" {k + 1} an 'upto' (e.g. upto: 40)")  # fmt: skip
            elif upto is not None and last:
                self.add(f, p, (*path, "by_size", k, "upto"),
                         f"the last size band of the validity of {where} stops at {self.pt(upto)}, so an"
                         f" entry of more than {self.pt(upto)} points would never expire; remove 'upto'"
                         " from the last band")  # fmt: skip
            if isinstance(upto, int) and not isinstance(upto, bool):
                if prev is not None and upto <= prev:
                    self.add(f, p, (*path, "by_size", k, "upto"),
                             f"size band {k + 1} of the validity of {where} has upto: {self.pt(upto)}, not"
                             f" above the band before it ({self.pt(prev)}); write the bands from the"
                             " smallest up")  # fmt: skip
                prev = upto
