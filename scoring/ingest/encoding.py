"""Text encodings of input files: UTF-8 only, and a clear refusal of UTF-16/32 and GBK.

Shared by the readers (``scoring.builtin.formats``) and the worker path
(:mod:`scoring.ingest.parallel`), so neither imports the other.
"""

from __future__ import annotations

import codecs
import io
import re
from pathlib import Path

from ..errors import InputError

BOM = b"\xef\xbb\xbf"
NOT_UTF8 = "not UTF-8 text"  # how the reason of a record that is not UTF-8 starts


def not_utf8(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first bytes) is UTF-16 or UTF-32
    text (Excel's "Unicode text", Notepad's "Unicode"): a byte-order mark of
    those, or two printable ASCII characters in UTF-16 (``{\\0"\\0``,
    ``\\0{\\0"``) or one in UTF-32. A first line of garbage with NULs in it is
    not that: the line is rejected on its own, like any bad record."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # never the start of UTF-8 text
    if len(head) < 4:
        return False
    # each byte: NUL (0), printable ASCII (1), or other (2)
    kinds = tuple(0 if b == 0 else 1 if 0x20 <= b < 0x7F else 2 for b in head[:4])
    return kinds in (
        (1, 0, 1, 0),  # UTF-16 LE
        (0, 1, 0, 1),  # UTF-16 BE
        (1, 0, 0, 0),  # UTF-32 LE
        (0, 0, 0, 1),  # UTF-32 BE
    )


# CJK ideographs (with extension A and the compatibility block)
_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff]")


def gbk_refusal(path: str | Path) -> InputError | None:
    """The refusal of a file in GBK/GB18030 (Excel's "CSV" and Notepad's "ANSI" on
    Chinese Windows), or None when it is not that.

    Read as UTF-8, most of its lines are rejected and the rest (whose Chinese
    happens to be valid UTF-8) are accepted as garbled text, so the file is refused
    as a whole. It is GBK when every line reads as GB18030, at least half of the
    Chinese characters it reads as are common ones (GB2312: a Latin-1 é read as
    GBK gives a rare one), and

    some lines are not UTF-8, and they outnumber the lines that read as UTF-8
    with Chinese in them (a UTF-8 file with a few corrupt lines loses only
    those lines), and some line that is not ASCII reads as UTF-8 (would be
    accepted garbled): when the rest is plain ASCII, only the lines that are
    not UTF-8 are rejected. A file whose every line is UTF-8 is never refused: text in
    Greek or IPA letters (``μg/m³``) is what a short GBK file with luckily
    valid bytes would read as too, and refusing real UTF-8 would be worse than
    such a rare garbled name (found in review).
    """
    bad = utf8_chinese = utf8_other = chinese = common = 0
    first: tuple[int, str] | None = None  # the first line that is not UTF-8: number and text
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if n == 1 and line.startswith(BOM):
                line = line[3:]
            if line.isascii():
                continue
            try:
                gb = line.decode("gb18030")
            except UnicodeDecodeError:
                return None
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                bad += 1
                if first is None:
                    first = (n, gb)
            else:
                if _CJK.search(text):
                    utf8_chinese += 1
                else:
                    utf8_other += 1
            hanzi = "".join(_CJK.findall(gb))
            chinese += len(hanzi)
            common += len(hanzi) - hanzi.encode("gb2312", "replace").count(b"?")
    if first is None or not chinese or common * 2 < chinese:
        return None
    if not bad > utf8_chinese:
        return None
    if not utf8_chinese and not utf8_other:
        # every other line is plain ASCII: nothing would be read as garbled text, so
        # only the lines that are not UTF-8 are rejected, each with its reason (found
        # in review: one GBK line refused a whole ASCII file)
        return None
    n, text = first[0], first[1].strip()
    at = next((i for i, c in enumerate(text) if not c.isascii()), 0)
    text = text[max(0, at - 20) : at + 40]  # around its first Chinese
    return InputError(
        f'{path}:{n}: the file is GBK/GB18030 text (Excel\'s "CSV" or Notepad\'s "ANSI" on'
        f" Chinese Windows), not UTF-8; nothing was read. Line {n} reads in GBK as {text!r}."
        ' Save it as UTF-8 (CSV UTF-8 in Excel; Notepad: encoding "UTF-8"), or convert it'
        f" with: iconv -f GB18030 -t UTF-8, and ingest it again"
    )


def check_utf8(path: str | Path, f: io.BufferedReader) -> None:
    """Refuse a UTF-16, UTF-32 or GBK file as a whole: read as UTF-8, every line of
    it would be rejected (or, in GBK, garbled) with a message that does not say
    why. GBK is looked for here when the first bytes are not UTF-8 (see
    :func:`gbk_refusal`), and by the readers when a line is not UTF-8."""
    head = f.peek(4)
    if not_utf8(head[:4]):
        raise InputError(
            f"{path}:1: the file is UTF-16 or UTF-32 text, not UTF-8; nothing was read."
            ' Save it as UTF-8 (Excel: "CSV UTF-8"; Notepad: encoding "UTF-8")'
            " and ingest it again"
        )
    if head.isascii():
        return
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)  # a cut last character waits
    except UnicodeDecodeError:
        refusal = gbk_refusal(path)
        if refusal is not None:
            raise refusal from None
