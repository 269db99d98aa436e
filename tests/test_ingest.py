"""Ingest: accounting (SPEC §5), exact reject reasons, formats, subjects, grids."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import apsw
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scoring import ingest, ledger
from scoring.builtin import formats as builtin_formats
from scoring.errors import InputError
from scoring.hookspecs import hookimpl
from scoring.ingest import (
    BatchSummary,
    InputFormat,
    ingest_file,
    ingest_files,
    ingest_records,
    summary_line,
    sync_grids,
    time_parser,
    uscc_problem,
)
from scoring.loader import load_scheme
from scoring.plugins import build_plugins

MINI = Path(__file__).parent / "fixtures" / "mini" / "rules"


@pytest.fixture(scope="module")
def scheme():
    return load_scheme(MINI, check=False)


@pytest.fixture
def db(tmp_path):
    return ledger.connect(tmp_path / "ledger.db")


def pm_with(*plugins):
    """The built-in plugins and the given ones (no scheme folder, so no local plugins)."""
    return build_plugins(None, extra=plugins)


def ev(eid, typ="volunteer_service", subject="P1", at="2024-03-05T10:00:00", **attrs):
    return {"id": eid, "type": typ, "subject": subject, "at": at, "attrs": attrs}


def jl(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)


def events_table(db):
    return db.execute(
        "SELECT id, type, subject, at, attrs, amends FROM events ORDER BY id"
    ).fetchall()


def rejects(db, batch):
    return [
        (line, reason)
        for line, reason in db.execute(
            "SELECT line, reason FROM rejects WHERE batch = ? ORDER BY line", [batch]
        )
    ]


MIXED = jl(
    ev("E1", hours=2, activity="清扫楼道"),                                      # 1 accepted
    {"id": "E2", "type": "council_meeting", "subject": "P2",
     "at": "2024-03-06T09:30:00+08:00", "role": "speaker"},                      # 2 accepted (top-level attr)
    b'{"at": "2024-03-05T10:00:00", "attrs": {"activity": "\xe6\xb8\x85\xe6\x89\xab\xe6\xa5\xbc\xe9\x81\x93",'
    b' "hours": 2.0}, "subject": "P1", "type": "volunteer_service", "id": "E1"}',  # 3 duplicate of 1
    {"id": "E2", "type": "council_meeting", "subject": "P2",
     "at": "2024-03-06T09:30:00+08:00", "role": "attendee"},                     # 4 conflicting with 2
    b'{"id": "E5", "type": "volunteer_service",, }',                              # 5 bad JSON
    {"id": "E6", "type": "volunteer_service", "at": "2024-03-05T10:00:00", "attrs": {"hours": 1}},  # 6
    ev("E7", hours="two"),                                                       # 7 wrong type
    ev("E8", hours=30),                                                          # 8 out of range
    ev("E9", typ="volunteer_servic", hours=1),                                   # 9 unknown type
    ev("E10", at="05/03/2024 10:00", hours=1),                                   # 10 bad time
    b"   ",                                                                      # 11 blank: not a record
    ev("E12", hours=1, hourz=2),                                                 # 12 unknown attribute
    ev("E13", typ="council_meeting", role="chair"),                              # 13 value not allowed
    b"[1, 2]",                                                                   # 14 not an object
    ev("E15", subject="NOBODY-YET", typ="garbage_sorting_check", result="pass"), # 15 accepted
    ev("E16", typ="council_meeting"),                                            # 16 missing required attr
)  # fmt: skip

EXPECTED_REJECTS = [
    (4, ("conflicts with event 'E2' accepted earlier at {file}:2: same id, different content."
        " Give this event a new id, or send a correction with its own id and amends: E2")),
    (5, "invalid JSON at column 42: unexpected character, expected a string key"),
    (6, "missing required field 'subject' (an event needs id, type, subject and at)"),
    (7, "attribute 'hours' of 'volunteer_service' must be a number, got the string 'two'"),
    (8, "attribute 'hours' of 'volunteer_service' = 30 is out of range; allowed 0 to 24 小时"),
    (9, ("unknown event type 'volunteer_servic'; did you mean 'volunteer_service'? Declared types:"
        " council_meeting, counterfeit_goods, garbage_sorting_check, illegal_parking, objection,"
        " pet_violation, redeem, survey, volunteer_service, withdraw")),
    (10, ("cannot read time '05/03/2024 10:00' in 'at': write ISO 8601, e.g. 2024-03-05T14:30:00"
         " (scheme-local time) or 2024-03-05T06:30:00Z")),
    (12, ("unknown attribute 'hourz' for event type 'volunteer_service'; declared attributes:"
         " activity, hours")),
    (13, ("attribute 'role' of 'council_meeting' = 'chair' is not allowed; allowed values:"
         " attendee, speaker, organizer")),
    (14, "a record must be an object with id, type, subject and at, got [1,2]"),
    (16, "missing required attribute 'role' (参会身份) for event type 'council_meeting'"),
]  # fmt: skip


def test_accounting_and_exact_reasons(db, scheme, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(MIXED)
    s = ingest_file(db, scheme, path, progress=False)
    assert (s.kind, s.read, s.accepted, s.duplicates, s.rejected, s.conflicting) == (
        "events",
        15,
        3,
        1,
        11,
        1,
    )
    assert s.read == s.accepted + s.duplicates + s.rejected
    assert summary_line(s) == (
        f"{path}: read 15 = accepted 3 + duplicates 1 + rejected 11 (1 conflicting)"
    )
    assert db.execute(
        "SELECT file, kind, read, accepted, duplicates, conflicting, rejected FROM batches"
    ).fetchall() == [(str(path), "events", 15, 3, 1, 1, 11)]
    assert rejects(db, s.batch) == [(n, r.format(file=path)) for n, r in EXPECTED_REJECTS]
    # the raw line is kept with every reject, and the JSON column in the problem
    raw = db.execute("SELECT raw FROM rejects WHERE line = 5").fetchone()[0]
    assert raw == '{"id": "E5", "type": "volunteer_service",, }'
    assert str(s.problems[1]) == (
        f"{path}:5:42: invalid JSON at column 42: unexpected character, expected a string key"
    )
    # stored form: UTC epoch, compact sorted attrs; a local time and +08:00 agree
    rows = {r[0]: r for r in events_table(db)}
    assert set(rows) == {"E1", "E2", "E15"}
    assert rows["E1"][3] == int(datetime(2024, 3, 5, 2, 0, tzinfo=UTC).timestamp())
    assert rows["E1"][4] == '{"activity":"清扫楼道","hours":2}'
    assert rows["E2"][3] == int(datetime(2024, 3, 6, 1, 30, tzinfo=UTC).timestamp())
    assert rows["E2"][4] == '{"role":"speaker"}'


def test_reingest_changes_nothing(db, scheme, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(MIXED)
    first = ingest_file(db, scheme, path, progress=False)
    before = events_table(db)
    again = ingest_file(db, scheme, path, progress=False)
    assert events_table(db) == before
    assert (again.read, again.accepted, again.duplicates, again.rejected) == (15, 0, 4, 11)
    # E2's second occurrence (line 4) still conflicts with line 2 of the first batch
    assert again.conflicting == 1
    assert first.batch != again.batch


def test_split_files_equal_one_file(tmp_path, scheme):
    recs = [
        ev(f"E{i}", hours=i % 5, at=f"2024-0{1 + i % 9}-0{1 + i % 9}T0{i % 10}:15:00")
        for i in range(60)
    ]
    recs += recs[:10]  # duplicates across the split
    whole = tmp_path / "all.jsonl"
    whole.write_bytes(jl(*recs))
    parts = [tmp_path / f"part{k}.jsonl" for k in range(3)]
    for k, p in enumerate(parts):
        p.write_bytes(jl(*recs[k * 25 : (k + 1) * 25]))
    one = ledger.connect(tmp_path / "one.db")
    split = ledger.connect(tmp_path / "split.db")
    ingest_file(one, scheme, whole, progress=False)
    sums = ingest_files(split, scheme, parts, progress=False, plugins=pm_with())
    assert sum(s.accepted for s in sums) == 60
    assert sum(s.duplicates for s in sums) == 10
    assert events_table(one) == events_table(split)


CSV_EVENTS = (
    "\ufeffid,type,subject,at,amends,hours,activity,role,result\n"
    "E1,volunteer_service,P1,2024-03-05T10:00:00,,2,清扫楼道,,\n"
    "E2,council_meeting,P2,2024-03-06T09:30:00+08:00,,,,speaker,\n"
    "E3,garbage_sorting_check,P3,2024-03-07,E1,,,,pass\n"
)


def test_csv_and_jsonl_are_equivalent(db, scheme, tmp_path):
    j = tmp_path / "events.jsonl"
    j.write_bytes(
        jl(
            ev("E1", hours=2, activity="清扫楼道"),
            {"id": "E2", "type": "council_meeting", "subject": "P2", "at": "2024-03-06T01:30:00Z",
             "attrs": {"role": "speaker"}},
            {"id": "E3", "type": "garbage_sorting_check", "subject": "P3", "at": "2024-03-07T00:00:00",
             "amends": "E1", "result": "pass"},
        )
    )  # fmt: skip
    c = tmp_path / "events.csv"
    c.write_text(CSV_EVENTS, encoding="utf-8")
    other = ledger.connect(tmp_path / "other.db")
    sj = ingest_file(db, scheme, j, progress=False)
    sc = ingest_file(other, scheme, c, progress=False)
    assert (sj.accepted, sc.accepted, sc.kind) == (3, 3, "events")
    assert events_table(db) == events_table(other)
    # and the CSV into the JSONL database: all duplicates
    again = ingest_file(db, scheme, c, progress=False)
    assert (again.duplicates, again.accepted, again.rejected) == (3, 0, 0)


def test_csv_types_and_bad_rows(db, scheme, tmp_path):
    c = tmp_path / "events.csv"
    c.write_text(
        "id,type,subject,at,hours,quantity,item\n"
        "E1,volunteer_service,P1,2024-03-05T10:00:00,1.5,,\n"
        "E2,redeem,P1,2024-03-05T10:00:00,,2,rice\n"
        "E3,redeem,P1,2024-03-05T10:00:00,,2.5,rice\n"
        "E4,redeem,P1,2024-03-05T10:00:00,,2\n"
        'E5,volunteer_service,P1,2024-03-05T10:00:00,"1,5",,\n',
        encoding="utf-8",
    )
    s = ingest_file(db, scheme, c, progress=False)
    assert (s.accepted, s.rejected) == (2, 3)
    assert rejects(db, s.batch) == [
        (4, "attribute 'quantity' of 'redeem' must be a whole number, got '2.5'"),
        (5, "row has 6 fields but the header has 7; quote values that contain commas"),
        (6, "attribute 'hours' of 'volunteer_service' must be a number, got '1,5'"),
    ]
    attrs = dict(db.execute("SELECT id, attrs FROM events").fetchall())
    assert attrs == {"E1": '{"hours":1.5}', "E2": '{"item":"rice","quantity":2}'}


def test_an_unclosed_quote_in_csv_rejects_its_line_and_not_the_rest(db, scheme, tmp_path):
    """A quote that is never closed would make one row of the rest of the file: its
    line is rejected and every line after it is read as a row of its own."""
    c = tmp_path / "events.csv"
    c.write_text(
        "id,type,subject,at,hours,activity\n"
        "E1,volunteer_service,P1,2024-03-05T10:00:00,1,\n"
        'E2,volunteer_service,P1,"2024-03-05T11:00:00,1,\n'
        "E3,volunteer_service,P1,2024-03-05T12:00:00,1,\n"
        'E4,volunteer_service,P1,2024-03-05T13:00:00,2,"清扫\n'
        '楼道"\n'
        "E5,volunteer_service,P1,2024-03-05T14:00:00,1,\n",
        encoding="utf-8",
    )
    s = ingest_file(db, scheme, c, progress=False)
    assert (s.read, s.accepted, s.rejected) == (5, 4, 1)
    assert rejects(db, s.batch) == [
        (3, "a quote opened in this row is never closed on its line (the row ran on to line 5);"
            " close the quote or remove it"),
    ]  # fmt: skip
    (raw,) = db.execute("SELECT raw FROM rejects").fetchone()
    assert raw == 'E2,volunteer_service,P1,"2024-03-05T11:00:00,1,'
    # a quoted value over two lines, in a row of the right width, is one value
    attrs = dict(db.execute("SELECT id, attrs FROM events").fetchall())
    assert sorted(attrs) == ["E1", "E3", "E4", "E5"]
    assert orjson.loads(attrs["E4"])["activity"] == "清扫\n楼道"


@pytest.mark.parametrize(
    ("name", "encoding", "workers"),
    [
        ("events.jsonl", "utf-16", None),
        ("events.jsonl", "utf-16-be", 2),  # no byte-order mark; checked by workers otherwise
        ("events.jsonl", "utf-32", 2),
        ("events.csv", "utf-16", None),
    ],
)
def test_a_utf16_file_is_refused_as_a_whole_with_what_to_do(
    db, scheme, tmp_path, name, encoding, workers
):
    """Read as UTF-8, every line of a UTF-16 file was rejected as invalid JSON or
    CSV, with no word of why."""
    path = tmp_path / name
    if name.endswith(".csv"):
        text = "id,type,subject,at,hours\nE1,volunteer_service,P1,2024-03-05T10:00:00,1\n"
    else:
        text = jl(ev("E1", hours=1), ev("E2", hours=2)).decode()
    path.write_text(text, encoding=encoding)
    with pytest.raises(InputError, match=rf"{name}:1: the file is UTF-16 or UTF-32 text, not UTF-8;"
                       r" nothing was read\. Save it as UTF-8"):  # fmt: skip
        ingest_file(db, scheme, path, progress=False, kind="events", workers=workers)
    assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM rejects").fetchone() == (0,)


@pytest.mark.parametrize("first", [b"\x00", b"\x00\n\x00", b"\x00\x01\x00\x02"])
def test_a_first_line_of_garbage_with_nuls_is_one_rejected_record(db, scheme, tmp_path, first):
    """A NUL among a file's first four bytes made the whole file "UTF-16" (found by
    the accounting-identity property): now only text that reads as UTF-16 is."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(first + b"\n" + jl(ev("E1", hours=1)))
    s = ingest_file(db, scheme, path, progress=False)
    assert (s.read, s.accepted, s.rejected) == (first.count(b"\n") + 2, 1, first.count(b"\n") + 1)


def test_jsonl_is_strict_about_types(db, scheme):
    s = ingest_records(
        db, scheme, [ev("E1", hours="2"), ev("E2", hours=True), ev("E3", hours=None)]
    )
    assert [p.message for p in s.problems] == [
        "attribute 'hours' of 'volunteer_service' must be a number, got the string '2'",
        "attribute 'hours' of 'volunteer_service' must be a number, got true",
        "missing required attribute 'hours' (服务时长) for event type 'volunteer_service'",
    ]


def test_chunk_boundaries(db, scheme, monkeypatch):
    """Duplicates and conflicts are found across chunks and inside one chunk alike."""
    monkeypatch.setattr(ingest.records, "CHUNK", 3)
    ingest_records(db, scheme, [ev("A", hours=1)])
    recs = [
        ev("A", hours=2),  # conflicts with the database
        ev("A", hours=1),  # duplicate of the database row, in the same chunk
        ev("B", hours=1),
        ev("B", hours=3),  # next chunk: conflicts with B from the previous chunk
        ev("C", hours=1),
        ev("C", hours=1),
        ev("A", hours=2),  # conflicts with the database again
    ]
    s = ingest_records(db, scheme, recs, file="mix")
    assert (s.read, s.accepted, s.duplicates, s.conflicting, s.rejected) == (7, 2, 2, 3, 3)
    assert [(p.line, p.message.split(":")[0]) for p in s.problems] == [
        (1, "conflicts with event 'A' accepted earlier at <records>"),
        (4, "conflicts with event 'B' accepted earlier at mix"),
        (7, "conflicts with event 'A' accepted earlier at <records>"),
    ]


def test_savepoint_inside_a_callers_transaction(db, scheme):
    db.conn.execute("BEGIN")
    ingest_records(db, scheme, [ev("E1", hours=1)])
    assert db.conn.in_transaction
    db.conn.execute("ROLLBACK")
    assert events_table(db) == []


# --- subjects and jurisdictions --------------------------------------------------------

VALID_CODE = "91350100M000100Y43"


def test_gb32100_check():
    assert uscc_problem(VALID_CODE) is None
    assert uscc_problem(VALID_CODE[:-1] + "4") == (
        "unified social credit code '91350100M000100Y44' fails the GB 32100 check: the last"
        " character should be '3'; check the code for typing errors"
    )
    assert "has 17 characters" in uscc_problem(VALID_CODE[:-1])
    assert "contains 'I'" in uscc_problem("I1350100M000100Y43")


def test_subjects(db, scheme, tmp_path):
    path = tmp_path / "subjects.jsonl"
    path.write_bytes(
        jl(
            {"id": "P1", "groups": ["residents"], "name": "张三丰", "grid": "S01C01G01",
             "tags": ["党员", "志愿者"], "links": {"household_head": "P2"}},
            {"id": "M1", "groups": ["merchants"], "name": "鑫源超市", "grid": "S01C01G02",
             "code": VALID_CODE},
            {"id": "M2", "groups": ["merchants"], "name": "老王烧烤", "code": VALID_CODE[:-1] + "4"},
            {"id": "P3", "groups": ["resident"], "name": "王五"},
            {"id": "P4", "groups": ["residents"], "name": "赵六", "grid": "S09C01G01"},
            {"id": "P5", "groups": ["residents", "merchants"]},
            {"id": "P1", "groups": ["residents"], "name": "张三"},
            {"name": "无名"},
        )
    )  # fmt: skip
    s = ingest_file(db, scheme, path, progress=False)
    assert (s.kind, s.read, s.accepted, s.rejected, s.conflicting, s.warnings) == (
        "subjects",
        8,
        3,
        5,
        1,
        1,
    )
    assert db.execute(
        "SELECT line, reason FROM rejects WHERE batch = ? ORDER BY line", [s.batch]
    ).fetchall() == [
        (3, ("warning: unified social credit code '91350100M000100Y44' fails the GB 32100 check:"
            " the last character should be '3'; check the code for typing errors")),
        (4, ("unknown group 'resident'; did you mean 'residents'? the scheme's groups are:"
            " merchants, residents")),
        (5, ("unknown grid 'S09C01G01'; did you mean 'S01C01G01', 'S01C02G01', 'S01C01G02'?"
            " Grids come from"
            " jurisdictions.yaml or an ingested jurisdictions file")),
        (6, "groups merchants, residents mix persons and organisations; a subject is one or the other"),
        (7, (f"conflicts with subject 'P1' at {path}:1: same id, different content in one file."
            " Keep one of the two records")),
        (8, "missing required field 'id' (a subject needs id and groups)"),
    ]  # fmt: skip
    assert db.execute("SELECT id, kind, name, grid, tags, code, links FROM subjects ORDER BY id").fetchall() == [
        ("M1", "organization", "鑫源超市", "S01C01G02", "[]", VALID_CODE, "{}"),
        ("M2", "organization", "老王烧烤", None, "[]", VALID_CODE[:-1] + "4", "{}"),
        ("P1", "person", "张三丰", "S01C01G01", '["党员","志愿者"]', None, '{"household_head":"P2"}'),
    ]  # fmt: skip
    assert db.execute("SELECT subject, grp FROM memberships ORDER BY subject").fetchall() == [
        ("M1", "merchants"), ("M2", "merchants"), ("P1", "residents"),
    ]  # fmt: skip
    assert summary_line(s).endswith("rejected 5 (1 conflicting); 1 warning")


def test_subject_update_is_accepted_and_reported(db, scheme, tmp_path):
    csv1 = tmp_path / "subjects.csv"
    csv1.write_text(
        "id,groups,name,grid,tags,code,links\n"
        "P1,residents,张三丰,S01C01G01,志愿者|党员,,household_head=P2\n"
        "P2,residents,李四,S01C01G01,,,\n",
        encoding="utf-8",
    )
    a = ingest_file(db, scheme, csv1, progress=False)
    assert (a.accepted, a.updated) == (2, 0)
    # the same content as JSON Lines: duplicates
    same = ingest_records(
        db, scheme,
        [{"id": "P1", "groups": ["residents"], "name": "张三丰", "grid": "S01C01G01",
          "tags": ["党员", "志愿者"], "links": {"household_head": "P2"}}],
    )  # fmt: skip
    assert (same.duplicates, same.accepted) == (1, 0)
    csv1.write_text(
        "id,groups,name,grid\nP1,residents|merchants,张三丰,S01C01G02\nP2,residents,李四,S01C01G02\n",
        encoding="utf-8",
    )
    b = ingest_file(db, scheme, csv1, progress=False)
    assert b.rejected == 1  # residents|merchants mixes kinds
    assert (b.accepted, b.updated) == (1, 1)
    assert "(1 updated)" in summary_line(b)
    assert db.execute("SELECT grid FROM subjects WHERE id = 'P2'").fetchone() == ("S01C01G02",)


def test_jurisdictions_then_subjects(db, scheme, tmp_path):
    j = tmp_path / "grids.csv"
    j.write_text(
        "street_id,street,community_id,community,grid_id,grid\n"
        "S02,果里镇,S02C01,西王社区,S02C01G01,西王第一网格\n"
        "S02,果里镇,S02C01,西王社区,S02C01G01,西王第一网格\n"
        "S02,果里镇,S02C01,西王社区,,缺编号\n",
        encoding="utf-8",
    )
    s = ingest_file(db, scheme, j, progress=False)
    assert (s.kind, s.accepted, s.duplicates, s.rejected) == ("jurisdictions", 1, 1, 1)
    assert db.execute("SELECT * FROM grids").fetchall() == [
        ("S02C01G01", "西王第一网格", "S02C01", "西王社区", "S02", "果里镇")
    ]
    sub = ingest_records(db, scheme, [{"id": "P9", "groups": "residents", "grid": "S02C01G01"}])
    assert sub.accepted == 1


def test_sync_grids(db, scheme):
    assert sync_grids(db, scheme) == len(scheme.grids) == 4
    assert db.execute("SELECT * FROM grids WHERE id = 'S01C01G01'").fetchone()[1:] == (
        scheme.grids["S01C01G01"].name,
        "S01C01",
        scheme.grids["S01C01G01"].community_name,
        "S01",
        scheme.grids["S01C01G01"].street_name,
    )


# --- formats, plugins and files ------------------------------------------------------


class TsvPlugin:
    """A third-party input format, registered through the hook."""

    calls: ClassVar[list[str]] = []

    @hookimpl
    def register_input_formats(self):
        def read(path):
            lines = Path(path).read_text(encoding="utf-8").splitlines()
            head = lines[0].split("\t")
            for n, line in enumerate(lines[1:], 2):
                yield n, dict(zip(head, line.split("\t")))

        return [InputFormat("tsv", (".tsv",), read, text_values=True)]

    @hookimpl
    def before_ingest(self, files):
        self.calls.append(f"before {len(files)}")

    @hookimpl
    def after_ingest(self, batches):
        self.calls.append(f"after {batches[0]['accepted']}")


def test_input_format_plugin(db, scheme, tmp_path):
    p = tmp_path / "events.tsv"
    p.write_text(
        "id\ttype\tsubject\tat\thours\nE1\tvolunteer_service\tP1\t2024-03-05\t3\n", encoding="utf-8"
    )
    plugin = TsvPlugin()
    TsvPlugin.calls = []
    [s] = ingest_files(db, scheme, [p], progress=False, plugins=pm_with(plugin))
    assert (s.accepted, s.kind) == (1, "events")
    assert TsvPlugin.calls == ["before 1", "after 1"]
    assert db.execute("SELECT attrs FROM events").fetchone() == ('{"hours":3}',)


def test_unknown_suffix_and_missing_file(db, scheme, tmp_path):
    with pytest.raises(
        InputError,
        match=r"events\.xlsx: cannot tell the format from the file name;"
        r" name it with one of \.csv, \.jsonl, \.jsonlines, \.ndjson",
    ):
        ingest_files(db, scheme, [tmp_path / "events.xlsx"], plugins=pm_with())
    with pytest.raises(InputError, match="nope.jsonl: no such file"):
        ingest_file(db, scheme, tmp_path / "nope.jsonl")
    assert db.execute("SELECT COUNT(*) FROM batches").fetchone() == (0,)


def test_explicit_kind_and_bom(db, scheme, tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + jl(ev("E1", hours=1)))
    s = ingest_file(db, scheme, p, kind="events", progress=False)
    assert (s.accepted, s.kind) == (1, "events")
    with pytest.raises(Exception, match="unknown input kind 'event'"):
        ingest_file(db, scheme, p, kind="event", progress=False)


def test_progress_bar_counts_bytes(db, scheme, tmp_path, capsys):
    p = tmp_path / "e.jsonl"
    p.write_bytes(jl(*[ev(f"E{i}", hours=1) for i in range(50)]))
    s = ingest_file(db, scheme, p, progress=True)
    assert s.accepted == 50  # forced on: tqdm writes to stderr without failing the ingest


# --- time --------------------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1)),
    st.sampled_from(["", "Z", "+08:00", "-05:30", "+00:00"]),
)
def test_fast_time_parser_agrees_with_clock(scheme, dt, suffix):
    text = dt.replace(microsecond=0).isoformat() + suffix
    assert time_parser(scheme)(text) == scheme.clock.parse_time(text)


def test_time_parser_rejects_lookalikes(scheme):
    parse = time_parser(scheme)
    for bad in (
        "2024-03-05T10:+5:00",
        "2024-03-05T10:60:00",
        "2024-13-05T10:00:00",
        "2024-03-05T10:00:00+8:000",
    ):
        with pytest.raises(ValueError):
            parse(bad)
    assert parse("2024-03-05 10:00:00") == parse("2024-03-05T02:00:00Z")
    assert parse("2024-03-05") == parse("2024-03-04T16:00:00Z")


# --- the accounting identity, for arbitrary mixes ---------------------------------------

LINE_KINDS = st.one_of(
    st.builds(
        lambda i, h: orjson.dumps(ev(f"E{i}", hours=h)), st.integers(0, 6), st.integers(-2, 30)
    ),
    st.builds(
        lambda i, r: orjson.dumps(ev(f"E{i}", typ="council_meeting", role=r)),
        st.integers(0, 6),
        st.sampled_from(["speaker", "chair", 3]),
    ),
    st.builds(
        lambda i, t: orjson.dumps(ev(f"E{i}", at=t, hours=1)),
        st.integers(0, 6),
        st.sampled_from(["2024-01-01T00:00:00", "2024-01-01T00:00:00Z", "nope", ""]),
    ),
    st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(st.sampled_from(["id", "type", "at", "x"]), st.integers(0, 3)),
    ),
    st.binary(max_size=20).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.just(b'{"id": "E1", "type": "volunteer_service", "subject": "P1"'),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(LINE_KINDS, max_size=25), st.integers(1, 5))
def test_accounting_identity_holds_for_any_mix(scheme, tmp_path, lines, chunk):
    db = ledger.memory_db()
    ingest.records.CHUNK, saved = chunk, ingest.records.CHUNK
    try:
        path = tmp_path / "mix.jsonl"
        path.write_bytes(data := b"\n".join(lines) + b"\n")
        # a file that starts as UTF-16 text does (a byte-order mark, or ASCII between
        # NULs) is refused as a whole, on purpose (see the test of that above)
        assume(not builtin_formats.not_utf8(data[:4]))
        # and so is one that reads as GBK (random bytes now and then do)
        assume(builtin_formats.gbk_refusal(path) is None)
        s1 = ingest_file(db, scheme, path, progress=False)
        s2 = ingest_file(db, scheme, path, progress=False)
    finally:
        ingest.records.CHUNK = saved
    for s, stored in ((s1, s1.rejected), (s2, 0)):  # the second ingest stores no reject again
        assert s.read == s.accepted + s.duplicates + s.rejected
        assert s.conflicting <= s.rejected
        n_rejects = db.execute(
            "SELECT COUNT(*) FROM rejects WHERE batch = ? AND reason NOT LIKE 'warning:%'",
            [s.batch],
        ).fetchone()[0]
        assert n_rejects == stored
    assert s2.rejected == s1.rejected
    assert s2.accepted == 0
    assert s2.read == s1.read
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == s1.accepted


def test_batch_summary_as_dict():
    b = BatchSummary("f.jsonl", "events", read=2, accepted=1, rejected=1)
    d = b.as_dict()
    assert {k: d[k] for k in ("file", "read", "accepted", "duplicates", "conflicting", "rejected")} == {
        "file": "f.jsonl", "read": 2, "accepted": 1, "duplicates": 0, "conflicting": 0, "rejected": 1,
    }  # fmt: skip


@pytest.mark.parametrize("shape", ["lf", "bom-crlf-unterminated"])
@pytest.mark.parametrize("chunk", [3, 20_000])
def test_worker_processes_give_the_same_result(tmp_path, scheme, monkeypatch, chunk, shape):
    """Large JSON Lines event files are checked in worker processes, each reading its
    own byte range of the file: same events, same accounting, same line numbers."""
    monkeypatch.setattr(ingest.records, "CHUNK", chunk)
    path = tmp_path / "events.jsonl"
    content = MIXED + MIXED.replace(b'"E1"', b'"E1b"')
    if shape != "lf":
        content = b"\xef\xbb\xbf" + content.replace(b"\n", b"\r\n").rstrip(b"\r\n")
    path.write_bytes(content)
    results = []
    for workers in (0, 1, 2):
        db = ledger.connect(tmp_path / f"w{workers}.db")
        ingest_records(
            db, scheme, [ev("E15", typ="garbage_sorting_check", result="fail")], file="seed"
        )
        s = ingest_file(db, scheme, path, progress=False, workers=workers)
        results.append((
            (s.read, s.accepted, s.duplicates, s.conflicting, s.rejected),
            [(str(p), p.severity) for p in s.problems],
            events_table(db),
            db.execute("SELECT line, record_id, reason, raw FROM rejects WHERE batch = ? ORDER BY line",
                       [s.batch]).fetchall(),
        ))  # fmt: skip
    assert results[0] == results[1] == results[2]
    assert results[0][0] == (30, 3, 3, 4, 24)


def test_a_worker_checks_only_the_byte_range_it_is_sent(tmp_path, scheme):
    """The parent sends each worker where its lines are, not the lines."""
    lines = [
        orjson.dumps(ev("E1", hours=1)) + b"\n",
        orjson.dumps(ev("E2", hours=2)) + b"\n",
        orjson.dumps(ev("E3", hours=3)) + b"\n",
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(lines))
    ingest.parallel._worker_init(scheme)
    try:
        out = ingest.parallel._worker_chunk(
            (
                2,
                str(path),
                len(lines[0]),
                len(lines[1]),
                str(tmp_path),
                builtin_formats.parse_jsonl_lines,
            )
        )
        stage = ingest.parallel._WORKER["stage"][1]
        stage.close()
    finally:
        ingest.parallel._WORKER.clear()
        gc.enable()
    count, db, lo, hi, repeats, firsts, rejects, order = orjson.loads(out)
    assert (count, lo, hi, repeats, firsts, rejects) == (1, 1, 1, [], [], [])
    assert order[2] is True and order[0] == order[1]  # one row: in order, first = last
    staged = sqlite3.connect(db).execute("SELECT id, line FROM ev").fetchall()
    assert staged == [("E2", 2)]  # id, line: the rows wait in the worker's own database
    assert isinstance(stage, apsw.Connection)  # it binds rows ~3x faster than sqlite3


def test_conflicts_from_workers_split_their_chunk_once(tmp_path, scheme, monkeypatch):
    """A resent file whose every line conflicts quotes each raw line from the chunk the
    parent kept; it splits that chunk once, not once per conflict (150k conflicts took
    112 s that way, against 2 s)."""
    first = [ev(f"E{i}", hours=1) for i in range(50)]
    again = [ev(f"E{i}", hours=2) for i in range(50)]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(jl(*first))
    b.write_bytes(jl(*again))
    splits = []
    split = ingest.parallel._chunk_lines
    monkeypatch.setattr(
        ingest.parallel, "_chunk_lines", lambda data: splits.append(1) or split(data)
    )
    db = ledger.connect(tmp_path / "c.db")
    ingest_file(db, scheme, a, progress=False, workers=1)
    s = ingest_file(db, scheme, b, progress=False, workers=1)
    assert (s.read, s.conflicting, s.rejected) == (50, 50, 50)
    raws = [
        r[0] for r in db.execute("SELECT raw FROM rejects WHERE batch = ? ORDER BY line", [s.batch])
    ]
    assert raws == [orjson.dumps(e).decode() for e in again]
    assert len(splits) == 1  # in this process; the worker splits its own copy


@pytest.mark.parametrize(
    ("cores", "load", "expected"),
    [(2, 0.0, 2), (2, 1.7, 2), (2, 2.5, 0), (1, 0.0, 0), (8, 3.0, 4)],
)
def test_default_workers_reads_the_load_against_the_cores(monkeypatch, cores, load, expected):
    """A load average of 1.7 on two cores is mostly this process's own work just
    before (the demo's generator): it still gets a worker per core, since this
    process only waits while they check. Only an oversubscribed machine (load above
    the cores) or a single core checks records in-process."""
    monkeypatch.setattr(ingest.parallel.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(ingest.parallel.os, "getloadavg", lambda: (load, load, load))
    assert ingest.parallel.default_workers() == expected


def test_a_new_ledger_has_8_kb_pages_and_an_old_one_keeps_its_own(tmp_path):
    """8 KB pages: a 1M-entry run's writer inserted, indexed and checkpointed in
    3.97-4.75 s against 4.30-7.31 s with 4 KB; ``explain`` read no slower."""
    assert ledger.connect(tmp_path / "new.db").execute("PRAGMA page_size").fetchone() == (8192,)
    with sqlite3.connect(tmp_path / "old.db") as old:
        old.execute("CREATE TABLE before_gridcredit (x)")  # a database made with 4 KB pages
    db = ledger.connect(tmp_path / "old.db")
    assert db.execute("PRAGMA page_size").fetchone() == (4096,)
    assert "entries" in db.table_names()


@pytest.mark.parametrize(("mb", "expected"), [(3.5, 0), (4.5, 2)])
def test_events_files_from_4_mb_are_checked_by_workers(tmp_path, mb, expected):
    """A month of a 100k-event county (~5 MB) goes to the workers: with them the
    county ingests in 0.97-1.05 s against 1.22-1.47 s in-process (threshold 16 MB
    before); a small file stays in-process, where it is done before a pool starts."""
    from scoring.builtin.formats import JSONL

    line = orjson.dumps(ev("E1", hours=1)) + b"\n"
    path = tmp_path / "events.jsonl"
    path.write_bytes(line * int(mb * 2**20 / len(line)))
    assert ingest.parallel._workers_for(path, JSONL, None, None, lambda: 2) == expected


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(2023, 12, 31, 20), max_value=datetime(2024, 1, 1, 4)),
            st.sampled_from(["+08:00", "-05:30", "+00:00", "+14:00"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_ingest_hot_loop_times_with_offsets_agree_with_clock(scheme, times):
    """The ingest loop caches each (hour, offset) it has seen: the same hour under
    another offset, and every minute and second of it, must still come out exact."""
    from scoring.ingest.events import _EventIngest

    texts = [dt.replace(microsecond=0).isoformat() + off for dt, off in times]
    items = [
        (
            n,
            {
                "id": f"E{n}",
                "type": "council_meeting",
                "subject": "P1",
                "at": t,
                "attrs": {"role": "speaker"},
            },
            None,
        )
        for n, t in enumerate(texts * 2, 1)  # twice: the second round reads the cache
    ]
    rows, _, rejects = _EventIngest(scheme, False).prepare(items, 1)
    assert not rejects
    assert [r[3] for r in rows] == [scheme.clock.parse_time(t) for t in texts * 2]


def test_workers_stage_rows_in_their_own_databases_and_the_scratch_goes(
    tmp_path, scheme, monkeypatch
):
    """With workers, no event row passes through this process: each chunk is copied
    from the worker's scratch database by one INSERT ... SELECT. The scratch folder
    beside the ledger is gone afterwards, and one a killed ingest left behind (its
    process no longer exists) is removed by the next."""
    monkeypatch.setattr(ingest.records, "CHUNK", 4)
    path = tmp_path / "events.jsonl"
    path.write_bytes(jl(*[ev(f"E{i}", hours=i % 20) for i in range(30)]))
    stale = tmp_path / f"{ingest.parallel._STAGE_PREFIX}999999999-x"
    stale.mkdir()
    (stale / "worker-1.db").write_bytes(b"left by a killed run")
    bound = []
    monkeypatch.setattr(ingest.events._EventIngest, "store", lambda *a: bound.append(a))
    db = ledger.connect(tmp_path / "l.db")
    s = ingest_file(db, scheme, path, progress=False, workers=2)
    assert (s.read, s.accepted) == (30, 30)
    assert bound == []
    assert db.execute("SELECT count(*), min(line), max(line) FROM events").fetchone() == (30, 1, 30)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert {r[1] for r in db.execute("PRAGMA database_list")} <= {"main", "temp"}  # detached


_REAL_CHUNK = ingest.parallel._worker_chunk


def _flaky_chunk(args):  # module level: the worker pool pickles it by name
    if args[0] > 10:
        raise OSError("disk full")
    return _REAL_CHUNK(args)


def test_a_failing_worker_leaves_no_batch_and_no_scratch(tmp_path, scheme, monkeypatch):
    """A worker that dies mid-file (here: its chunk raises) fails the ingest before
    the batch's transaction: nothing is written and the scratch folder is removed."""
    monkeypatch.setattr(ingest.records, "CHUNK", 4)
    path = tmp_path / "events.jsonl"
    path.write_bytes(jl(*[ev(f"E{i}", hours=1) for i in range(30)]))
    monkeypatch.setattr(ingest.parallel, "_worker_chunk", _flaky_chunk)
    db = ledger.connect(tmp_path / "l.db")
    with pytest.raises(InputError, match="disk full"):
        ingest_file(db, scheme, path, progress=False, workers=2)
    assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM batches").fetchone() == (0,)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _killed_chunk(args):  # module level: the workers find it by name
    if args[0] > 10:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    return _REAL_CHUNK(args)


def test_a_killed_worker_is_an_input_error_not_a_hang(tmp_path, scheme, monkeypatch):
    """A worker killed from outside (the OOM killer) ends the file's batch with a
    message saying what happened and what to do; nothing is written, no scratch is
    left, and the next ingest of the file works."""
    monkeypatch.setattr(ingest.records, "CHUNK", 4)
    path = tmp_path / "events.jsonl"
    path.write_bytes(jl(*[ev(f"E{i}", hours=1) for i in range(30)]))
    monkeypatch.setattr(ingest.parallel, "_worker_chunk", _killed_chunk)
    db = ledger.connect(tmp_path / "l.db")
    with pytest.raises(InputError, match="a worker process checking this file died"):
        ingest_file(db, scheme, path, progress=False, workers=2)
    assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    monkeypatch.setattr(ingest.parallel, "_worker_chunk", _REAL_CHUNK)
    assert ingest_file(db, scheme, path, progress=False, workers=2).accepted == 30


def test_the_workers_check_the_next_file_while_this_one_is_stored(tmp_path, scheme, monkeypatch):
    """``ingest_files`` hands file N+1 to the workers before storing file N (and the
    first events file before a subjects file): checking and storing overlap. Each
    file is still one batch, stored in order, as ingested one by one; a missing
    file fails in its turn, after the files before it are stored, and leaves no
    scratch behind."""
    monkeypatch.setattr(ingest.records, "CHUNK", 4)
    paths = []
    for n in range(3):
        path = tmp_path / f"e{n}.jsonl"
        path.write_bytes(jl(*[ev(f"E{n}-{i:02d}", at=_at(i), hours=1) for i in range(20)]))
        paths.append(path)
    log = []
    real_submit, real_store = ingest.parallel._Staged.submit, ingest.parallel._Staged.store
    monkeypatch.setattr(
        ingest.parallel._Staged,
        "submit",
        lambda st, pool: log.append(("submit", st.path.name)) or real_submit(st, pool),
    )
    monkeypatch.setattr(
        ingest.parallel._Staged,
        "store",
        lambda st, b: log.append(("store", st.path.name)) or real_store(st, b),
    )
    db = ledger.connect(tmp_path / "a.db")
    got = ingest_files(db, scheme, paths, progress=False, workers=2)
    assert log == [
        ("submit", "e0.jsonl"), ("submit", "e1.jsonl"), ("store", "e0.jsonl"),
        ("submit", "e2.jsonl"), ("store", "e1.jsonl"), ("store", "e2.jsonl"),
    ]  # fmt: skip
    one = ledger.connect(tmp_path / "b.db")
    for path in paths:
        ingest_file(one, scheme, path, progress=False, workers=0)
    table = "SELECT * FROM events ORDER BY seq"
    assert db.execute(table).fetchall() == one.execute(table).fetchall()
    assert [b.accepted for b in got] == [20, 20, 20]

    db = ledger.connect(tmp_path / "c.db")
    with pytest.raises(InputError, match="no such file") as err:
        ingest_files(db, scheme, [paths[0], tmp_path / "gone.jsonl", paths[2]], workers=2)
    # one missing file does not stop the batch: the files after it are read too
    assert db.execute("SELECT count(*) FROM batches").fetchone() == (2,)
    assert [s.file for s in err.value.summaries] == [str(paths[0]), str(paths[2])]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _flaky_second_file(args):  # module level: the worker pool pickles it by name
    if args[1].endswith("e1.jsonl"):
        raise OSError("disk full")
    return _REAL_CHUNK(args)


def test_a_worker_failing_on_the_next_file_fails_it_in_its_turn(tmp_path, scheme, monkeypatch):
    """The next file is checked while this one is stored; a worker failing on it
    does not touch this file's batch, and fails that file when its turn comes."""
    monkeypatch.setattr(ingest.records, "CHUNK", 4)
    monkeypatch.setattr(ingest.parallel, "_worker_chunk", _flaky_second_file)
    paths = []
    for n in range(2):
        path = tmp_path / f"e{n}.jsonl"
        path.write_bytes(jl(*[ev(f"E{n}-{i:02d}", at=_at(i), hours=1) for i in range(20)]))
        paths.append(path)
    db = ledger.connect(tmp_path / "l.db")
    with pytest.raises(InputError, match="disk full"):
        ingest_files(db, scheme, paths, progress=False, workers=2)
    assert db.execute("SELECT file, accepted FROM batches").fetchall() == [(str(paths[0]), 20)]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _at(i: int) -> str:
    return f"2024-03-05T{10 + i // 60:02d}:{i % 60:02d}:00"


@pytest.mark.parametrize(
    ("files", "workers", "recorded", "in_order"),
    [
        ([range(0, 30), range(30, 60)], 2, True, True),  # in order, chunk to chunk, file to file
        ([[*range(0, 12), 40, *range(12, 30)]], 2, True, False),  # one event late in the file
        ([range(30, 60), range(0, 30)], 2, True, False),  # the second file goes back in time
        ([range(0, 30)], 0, False, True),  # checked in this process: nothing recorded, a scan
    ],
)
def test_the_scorer_reads_the_new_events_order_from_what_ingest_recorded(
    tmp_path, scheme, monkeypatch, files, workers, recorded, in_order
):
    """Workers note whether each chunk's rows are in (at, id) order; a batch records
    its seqs and whether they all are. The scorer then knows whether the new events
    are in order, and the first of them, without a pass over them in Python; it
    falls back to that pass when a batch recorded nothing."""
    from scoring.evaluate import Engine

    monkeypatch.setattr(ingest.records, "CHUNK", 4)
    db = ledger.connect(tmp_path / "l.db")
    for n, minutes in enumerate(files):
        path = tmp_path / f"e{n}.jsonl"
        path.write_bytes(jl(*[ev(f"E{i:03d}", at=_at(i), hours=1) for i in minutes]))
        ingest_file(db, scheme, path, progress=False, workers=workers)
    (top,) = db.execute("SELECT MAX(seq) FROM events").fetchone()
    engine = Engine(db, scheme)
    queries: list[str] = []
    db.conn.set_trace_callback(queries.append)
    found = engine._recorded_order(0, top)
    db.conn.set_trace_callback(None)
    scanned = db.execute("SELECT at, id FROM events ORDER BY at, id LIMIT 1").fetchone()
    assert found == ((tuple(scanned), in_order) if recorded else None)
    assert engine._scan_new(0, top) == (tuple(scanned), in_order)
    # the first new event comes from the batches' records: no pass over the events
    assert not [q for q in queries if "ORDER BY at, id" in q]


def test_a_recorded_first_event_stored_before_is_not_taken_for_the_first_new_one(
    tmp_path, scheme, monkeypatch
):
    """A batch records the first of the events it read; one of them stored already
    (a duplicate) is not new, so the first new event is looked up instead."""
    from scoring.evaluate import Engine

    monkeypatch.setattr(ingest.records, "CHUNK", 4)
    db = ledger.connect(tmp_path / "l.db")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_bytes(jl(*[ev(f"E{i:03d}", at=_at(i), hours=1) for i in range(0, 30)]))
    two.write_bytes(jl(*[ev(f"E{i:03d}", at=_at(i), hours=1) for i in (45, 40, 0, 50)]))
    ingest_file(db, scheme, one, progress=False, workers=2)
    (done,) = db.execute("SELECT MAX(seq) FROM events").fetchone()
    ingest_file(db, scheme, two, progress=False, workers=2)
    (top,) = db.execute("SELECT MAX(seq) FROM events").fetchone()
    assert (
        db.execute("SELECT first_at, first_id FROM batches ORDER BY id").fetchall()[1][1] == "E000"
    )
    engine = Engine(db, scheme)
    first = db.execute("SELECT at, id FROM events WHERE id = 'E040'").fetchone()
    assert engine._recorded_order(done, top) == (tuple(first), False)


# --- messy real-world files (a reviewer's findings) ---------------------------------------

GBK_CASES = {
    # every GBK byte pair of 郑伟 is valid UTF-8 too: read as UTF-8 it was accepted as ֣ΰ;
    # 张三丰 is not UTF-8 (a file of 郑伟 alone is read as UTF-8: see the next test)
    "subjects.csv": (
        "id,groups,name,grid,tags\nK900,residents,郑伟,S01C01G01,\n"
        "K901,residents,张三丰,S01C01G01,\n"
    ),
    # 扫雪 is UTF-8 as well (ɨѩ); the other lines are not
    "events.csv": (
        "id,type,subject,at,hours,activity\n"
        "E1,volunteer_service,P1,2024-03-05T10:00:00,2,扫雪\n"
        "E2,volunteer_service,P1,2024-03-05T11:00:00,1,清扫楼道\n"
        "E3,volunteer_service,P1,2024-03-05T12:00:00,1,\n"
    ),
    "events.jsonl": jl(
        ev("E1", hours=1),
        ev("E2", hours=2, activity="扫雪"),
        ev("E3", hours=1, activity="清扫楼道"),
    ).decode(),
}


@pytest.mark.parametrize(
    ("name", "workers"),
    [("subjects.csv", None), ("events.csv", None), ("events.jsonl", None), ("events.jsonl", 2)],
)
def test_a_gbk_file_is_refused_as_a_whole_with_what_to_do(db, scheme, tmp_path, name, workers):
    """A GBK file (Excel's "CSV" in China) was partly accepted as garbled text: about
    one GBK character in seven is valid UTF-8 as well."""
    path = tmp_path / name
    path.write_bytes(GBK_CASES[name].encode("gbk"))
    with pytest.raises(InputError) as err:
        ingest_file(db, scheme, path, progress=False, workers=workers,
                    kind="events" if workers else None)  # fmt: skip
    msg = str(err.value)
    # the first line that is not UTF-8 (else the first with Chinese), as it reads in GBK
    line, text = (3, "张三丰") if name == "subjects.csv" else (3, "清扫楼道")
    assert msg.startswith(
        f'{path}:{line}: the file is GBK/GB18030 text (Excel\'s "CSV" or Notepad\'s "ANSI" on'
        f" Chinese Windows), not UTF-8; nothing was read. Line {line} reads in GBK as"
    )
    assert text in msg
    assert msg.endswith(
        'Save it as UTF-8 (CSV UTF-8 in Excel; Notepad: encoding "UTF-8"), or convert it with:'
        " iconv -f GB18030 -t UTF-8, and ingest it again"
    )
    for table in ("events", "subjects", "rejects", "batches"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_utf8_text_in_greek_or_ipa_letters_is_never_taken_for_gbk(db, scheme, tmp_path):
    """Found in review: μ or Ω in a file without Chinese read as what a GBK file
    would look like, and a valid UTF-8 file was refused whole."""
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(
        "id,groups,name,grid,tags\nK1,residents,Ωmega Li,S01C01G01,\n", encoding="utf-8"
    )
    events = tmp_path / "events.jsonl"
    events.write_bytes(jl(ev("E1", hours=1, activity="PM2.5 50μg/m³ ɐ")))
    assert builtin_formats.gbk_refusal(subjects) is None
    assert builtin_formats.gbk_refusal(events) is None
    s = ingest_file(db, scheme, subjects, progress=False)
    e = ingest_file(db, scheme, events, progress=False)
    assert (s.accepted, e.accepted) == (1, 1)
    assert db.execute("SELECT name FROM subjects WHERE id = 'K1'").fetchone() == ("Ωmega Li",)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_utf8_file_with_a_corrupt_line_loses_only_that_line(db, scheme, tmp_path, suffix):
    """GBK is told by the whole file: a UTF-8 file with a line of GBK (or any bad
    bytes) pasted into it loses only that line, which says where it is not UTF-8."""
    path = tmp_path / f"events{suffix}"
    bad = "清扫".encode("gbk")
    if suffix == ".csv":
        path.write_bytes(
            "id,type,subject,at,hours,activity\n"
            "E1,volunteer_service,P1,2024-03-05T10:00:00,2,清扫楼道\n".encode()
            + b"E2,volunteer_service,P1,2024-03-05T11:00:00,1," + bad + b"\n"
            + b"E3,volunteer_service,P1,2024-03-05T12:00:00,1,\xff\n"
            + "E4,volunteer_service,P1,2024-03-05T13:00:00,1,扫雪\n".encode()
        )  # fmt: skip
        expected = [
            (3, "not UTF-8 text at line 3, byte 47: save the file as UTF-8"),
            (4, "not UTF-8 text at line 4, byte 47: save the file as UTF-8"),
        ]
    else:
        path.write_bytes(
            jl(ev("E1", hours=2, activity="清扫楼道"))
            + jl(ev("E2", hours=1, activity="x")).replace(b'"x"', b'"' + bad + b'"')
            + jl(ev("E3", hours=1, activity="x")).replace(b'"x"', b'"\xff"')
            + jl(ev("E4", hours=1, activity="扫雪"))
        )
        expected = [
            (2, "not UTF-8 text at byte 112 (column 112): save the file as UTF-8"),
            (3, "not UTF-8 text at byte 112 (column 112): save the file as UTF-8"),
        ]
    s = ingest_file(db, scheme, path, progress=False)
    assert (s.read, s.accepted, s.rejected) == (4, 2, 2)
    assert rejects(db, s.batch) == expected
    assert [r[0] for r in events_table(db)] == ["E1", "E4"]


def test_a_closed_multiline_quoted_value_with_an_extra_field_is_one_rejected_row(
    db, scheme, tmp_path
):
    """A quoted value over several lines, properly closed, in a row with a field too
    many was taken for a quote never closed: its lines were read again as rows of
    their own, and an event copied into the value was accepted."""
    c = tmp_path / "events.csv"
    c.write_text(
        "id,type,subject,at,hours,activity\n"
        'Q1,volunteer_service,P1,2024-03-05T10:00:00,2,"清扫\n楼道\n门口",extra\n'
        "Q2,volunteer_service,P1,2024-03-05T11:00:00,1,\n"
        'Q3,volunteer_service,P1,2024-03-05T12:00:00,2,"see\n'
        "Q9,volunteer_service,P1,2024-03-05T13:00:00,8,copied\n"
        '",extra\n'
        "Q4,volunteer_service,P1,2024-03-05T14:00:00,1,\n",
        encoding="utf-8",
    )
    s = ingest_file(db, scheme, c, progress=False)
    assert (s.read, s.accepted, s.rejected) == (4, 2, 2)
    assert rejects(db, s.batch) == [
        (2, "row has 7 fields but the header has 6; quote values that contain commas"),
        (6, "row has 7 fields but the header has 6; quote values that contain commas"),
    ]
    assert [r[0] for r in events_table(db)] == ["Q2", "Q4"]  # no Q9
    raw = db.execute("SELECT raw FROM rejects WHERE line = 2").fetchone()[0]
    assert raw == 'Q1,volunteer_service,P1,2024-03-05T10:00:00,2,"清扫\n楼道\n门口",extra'


def test_csv_with_lone_cr_line_endings_is_read_line_by_line(db, scheme, tmp_path):
    """Old Excel for Mac ends lines with CR alone: the file was one bad row with
    Python's "universal-newline mode?" for a reason."""
    c = tmp_path / "events.csv"
    c.write_bytes(
        b"id,type,subject,at,hours,activity\r"
        b"C1,volunteer_service,P1,2024-03-05T10:00:00,2,\r"
        b'C2,volunteer_service,P1,2024-03-05T11:00:00,1,"a\rb"\r'
        b"C3,volunteer_service,P1,2024-03-05T12:00:00,x,\r"
    )
    s = ingest_file(db, scheme, c, progress=False)
    assert (s.read, s.accepted, s.rejected) == (3, 2, 1)
    assert rejects(db, s.batch) == [
        (5, "attribute 'hours' of 'volunteer_service' must be a number, got 'x'")
    ]
    attrs = dict(db.execute("SELECT id, attrs FROM events").fetchall())
    assert orjson.loads(attrs["C2"]) == {"hours": 1, "activity": "a\rb"}


def test_csv_with_cr_cr_lf_line_endings_keeps_its_line_numbers(db, scheme, tmp_path):
    """Found in review: CR CR LF (text written in text mode on Windows) was read as
    two lines each, so rejects cited line 5 for line 3."""
    c = tmp_path / "events.csv"
    c.write_bytes(
        b"id,type,subject,at,hours,activity\r\r\n"
        b"C1,volunteer_service,P1,2024-03-05T10:00:00,2,\r\r\n"
        b"C2,volunteer_service,P1,2024-03-05T12:00:00,x,\r\r\n"
    )
    s = ingest_file(db, scheme, c, progress=False)
    assert (s.read, s.accepted, s.rejected) == (2, 1, 1)
    assert rejects(db, s.batch) == [
        (3, "attribute 'hours' of 'volunteer_service' must be a number, got 'x'")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id;type;subject;at;hours\nE1;volunteer_service;P1;2024-03-05T10:00:00;1\n",
         "the header uses ';' (semicolons) as separator, not commas; save the file as"
         ' comma-separated (Excel: "CSV UTF-8 (Comma delimited)") and ingest it again'),
        ("id\ttype\tsubject\tat\nE1\tvolunteer_service\tP1\t2024-03-05T10:00:00\n",
         "the header uses tabs as separator, not commas"),
        ("id,name,grid,tags\nK1,张三,S01C01G01,\n",
         "the header (id, name, grid, tags) looks like a subjects file but has no column"
         " 'groups': a subjects file needs id and groups; add the column and ingest the file"
         " again"),
        ("ID,Group,Name\nK1,residents,张三\n",
         "the header (ID, Group, Name) looks like a subjects file but has no column 'groups':"
         " a subjects file needs id and groups; column 'Group' should be 'groups'"),
        ("id,type,at,hours\nE1,volunteer_service,2024-03-05T10:00:00,1\n",
         "the header (id, type, at, hours) looks like an events file but has no column"
         " 'subject': an events file needs id, type, subject and at"),
        ("编号,类型,时间\nE1,volunteer_service,2024-03-05T10:00:00\n",
         "the header (编号, 类型, 时间) names none of the columns ingest reads: events need id,"
         " type, subject and at; subjects need id and groups; jurisdictions need street_id,"
         " community_id and grid_id. The first row of a CSV file must name its columns"),
        ("id,type,subject,at,ID\nE1,volunteer_service,P1,2024-03-05T10:00:00,E1\n",
         "column 'id' appears twice in the header (as 'ID'); give every column a distinct name"),
    ],
)  # fmt: skip
def test_a_csv_header_problem_is_one_diagnosis_for_the_file(db, scheme, tmp_path, text, message):
    """A semicolon-separated file, or one whose header lacks a required column, had
    every row rejected for a "missing required field" (a subjects file without
    groups as an events file): now the header is diagnosed once, at line 1."""
    c = tmp_path / "input.csv"
    c.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        ingest_file(db, scheme, c, progress=False)
    assert str(err.value).startswith(f"{c}:1: {message}")
    assert db.execute("SELECT count(*) FROM batches").fetchone() == (0,)


def test_csv_header_names_are_read_in_any_letter_case(db, scheme, tmp_path):
    """Excel users capitalise headings: ``ID, Type`` are ``id, type`` (attribute
    names keep their case: a scheme may declare ``orgName``)."""
    c = tmp_path / "events.csv"
    c.write_text(
        " ID ,Type,SUBJECT,At,hours\nE1,volunteer_service,P1,2024-03-05T10:00:00,1\n",
        encoding="utf-8",
    )
    s = ingest_file(db, scheme, c, progress=False)
    assert (s.kind, s.accepted, s.rejected) == ("events", 1, 0)
    subjects = tmp_path / "subjects.csv"
    subjects.write_text("Id,Groups,Name\nK1,residents,张三\n", encoding="utf-8")
    assert ingest_file(db, scheme, subjects, progress=False).accepted == 1


def test_excel_empty_columns_and_rows_are_no_data(db, scheme, tmp_path):
    """Excel's trailing empty columns (``hours,,``) refused the whole file with
    "column '' appears twice"; rows of empty cells were rejected rows. Now empty
    columns at the end are ignored, a column with no name elsewhere is ignored
    where it is empty, and rows of empty cells are skipped like blank lines: no
    records, not counted."""
    c = tmp_path / "events.csv"
    c.write_text(
        "id,type,,subject,at,hours,,\n"
        "E1,volunteer_service,,P1,2024-03-05T10:00:00,1,,\n"
        ",,,,,,,\n"
        "\n"
        "E2,volunteer_service,,P1,2024-03-05T11:00:00,2,,\n"
        "E3,volunteer_service,note,P1,2024-03-05T12:00:00,2,,\n"
        "E4,volunteer_service,,P1,2024-03-05T13:00:00,2,,x\n"
        " , ,,,,,,\n",
        encoding="utf-8",
    )
    s = ingest_file(db, scheme, c, progress=False)
    assert (s.read, s.accepted, s.duplicates, s.rejected) == (4, 2, 0, 2)
    assert rejects(db, s.batch) == [
        (6, "column 3 has no name in the header, but this row has 'note' in it; name the"
            " column or clear the value"),
        (7, "row has 8 fields but the header has 6; quote values that contain commas"),
    ]  # fmt: skip
    assert [r[0] for r in events_table(db)] == ["E1", "E2"]


def test_ingesting_a_bad_file_again_stores_no_reject_twice(db, scheme, tmp_path):
    """Each ingest of the same bad file added all its rejects again (57, 82, 107
    rows): the second batch still counts them, but stores only what is new."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(MIXED)
    first = ingest_file(db, scheme, path, progress=False)
    stored = db.execute("SELECT file, line, record_id, reason, raw FROM rejects").fetchall()
    assert len(stored) == first.rejected == 11
    again = ingest_file(db, scheme, path, progress=False)
    assert (again.read, again.rejected) == (15, 11)
    assert db.execute("SELECT file, line, record_id, reason, raw FROM rejects").fetchall() == stored
    # a changed line is a new reject; the others are still not stored again
    path.write_bytes(MIXED.replace(b'"hours":30', b'"hours":31'))
    third = ingest_file(db, scheme, path, progress=False)
    assert third.rejected == 11
    assert rejects(db, third.batch) == [
        (8, "attribute 'hours' of 'volunteer_service' = 31 is out of range; allowed 0 to 24 小时")
    ]
    # warnings of accepted records too
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(f"id,groups,code\nM1,merchants,{VALID_CODE[:-1]}4\n", encoding="utf-8")
    ingest_file(db, scheme, subjects, progress=False)
    subjects.write_text(f"id,groups,code,name\nM1,merchants,{VALID_CODE[:-1]}4,x\n", "utf-8")
    assert ingest_file(db, scheme, subjects, progress=False).warnings == 1  # updated: warned
    n = db.execute("SELECT count(*) FROM rejects WHERE reason LIKE 'warning:%'").fetchone()
    assert n == (2,)  # a new raw line; the same one again would not be stored


def test_reasons_say_the_range_the_column_the_byte_and_the_record(db, scheme, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        jl(
            ev("T1", at="1900-03-05T10:00:00", hours=1),
            ev("T2", at="2100-01-01T00:00:00", hours=1),
            ev("T3", at="9999-03-05T10:00:00+08:00", hours=1),
            ev("T4", at="2024-02-30T10:00:00", hours=1),
            {"id": "T5", "type": "volunteer_service", "at": "2024-03-05T10:00:00"},
            b'{"id": "T6", "type": "volunteer_service", "subj',
            b'{"id": "T7", "type": "volunteer_service", "subject": "P\xff1"}',
        )
        + b'{"id": "T8", "type": "volu'
    )
    s = ingest_file(db, scheme, path, progress=False)
    outside = (
        "in 'at': it is outside the supported range 1970-01-01 to 2099-12-31"
        " (scheme-local time); check the year"
    )
    cut = "the line ends before the record does (is it cut short?)"
    assert db.execute("SELECT line, record_id, reason FROM rejects ORDER BY line").fetchall() == [
        (1, "T1", f"cannot read time '1900-03-05T10:00:00' {outside}"),
        (2, "T2", f"cannot read time '2100-01-01T00:00:00' {outside}"),
        (3, "T3", f"cannot read time '9999-03-05T10:00:00+08:00' {outside}"),
        (4, "T4", "cannot read time '2024-02-30T10:00:00' in 'at': write ISO 8601, e.g."
                  " 2024-03-05T14:30:00 (scheme-local time) or 2024-03-05T06:30:00Z"),
        (5, "T5", "missing required field 'subject' (an event needs id, type, subject and at)"),
        (6, None, f"invalid JSON at column 48: {cut}"),
        (7, None, "not UTF-8 text at byte 56 (column 56): save the file as UTF-8"),
        (8, None, f"invalid JSON at column 27: {cut}"),
    ]  # fmt: skip
    assert [p.col for p in s.problems][5:] == [48, 56, 27]


def test_a_long_csv_value_is_read(db, scheme, tmp_path):
    """Python's csv stops at 131,072 characters a value ("field larger than field limit")."""
    c = tmp_path / "events.csv"
    c.write_text(
        "id,type,subject,at,hours,activity\n"
        f"E1,volunteer_service,P1,2024-03-05T10:00:00,1,{'扫' * 200_000}\n",
        encoding="utf-8",
    )
    s = ingest_file(db, scheme, c, progress=False)
    assert (s.accepted, s.rejected) == (1, 0)


def test_a_latin1_line_is_not_taken_for_gbk(db, scheme, tmp_path):
    """é (Latin-1) before a letter reads as a (rare) Chinese character in GBK: a
    file with such a line is not GBK, and loses that line only."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        jl(ev("E1", hours=1))
        + jl(ev("E2", hours=1, activity="x")).replace(b'"x"', b'"Ren\xe9e"')
        + jl(ev("E3", hours=1))
    )
    s = ingest_file(db, scheme, path, progress=False)
    assert (s.read, s.accepted, s.rejected) == (3, 2, 1)
    assert builtin_formats.gbk_refusal(path) is None
