"""Shared fixtures: small named ones, tmp-path SQLite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from scoring import ledger
from scoring.loader import load_scheme

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


# the Spark tests share one SparkSession (local mode: the executors live in the
# driver's JVM); the suite's largest county needs more than the runner's default
os.environ.setdefault("GRIDCREDIT_SPARK_DRIVER_MEMORY", "4g")


@pytest.fixture
def fresh_db():
    """An empty, migrated in-memory ledger."""
    return ledger.memory_db()


@pytest.fixture
def reference_scheme():
    """The reference scheme in rules/."""
    return load_scheme(ROOT / "rules")


@pytest.fixture
def engine_scheme(tmp_path):
    """Build a scheme from tests/fixtures/engine plus the rules a test gives.

    ``engine_scheme(residents=[rule, ...], merchants=[...])`` returns the
    loaded Scheme; the packs are written as YAML, so they go through the
    same loader and validator as policy staff's files.
    """

    def make(plugins: Any = None, **packs: list[dict[str, Any]]):
        root = tmp_path / "scheme"
        if root.exists():
            shutil.rmtree(root)
        shutil.copytree(FIXTURES / "engine", root)
        for group, rules in packs.items():
            pack = {"pack": group, "version": "1", "group": group, "rules": rules}
            (root / "rules" / "packs" / f"{group}.yaml").write_text(
                yaml.safe_dump(pack, allow_unicode=True, sort_keys=False), encoding="utf-8"
            )
        return load_scheme(root, plugins=plugins)

    return make


PEOPLE = [
    {"id": "P1", "groups": ["residents"], "name": "张三丰", "grid": "G1"},
    {"id": "P2", "groups": ["residents"], "name": "李四", "grid": "G1"},
    {"id": "P3", "groups": ["residents"], "name": "王五", "grid": "G1"},
    {"id": "M1", "groups": ["merchants"], "name": "鑫源超市", "grid": "G1",
     "links": {"legal_representative": "P2"}},
]  # fmt: skip


def put(db, scheme, events: list[dict[str, Any]] | None = None, subjects: list[dict] | None = None):
    """Ingest subjects (default: PEOPLE) and events through the real ingest path."""
    from scoring.ingest import ingest_records

    if subjects is None and not db.execute("SELECT 1 FROM subjects LIMIT 1").fetchone():
        subjects = PEOPLE
    if subjects:
        ingest_records(db, scheme, subjects, file="subjects", kind="subjects")
    if events:
        ingest_records(db, scheme, events, file="events", kind="events")


def ev(eid: str, etype: str, subject: str, at: str, **attrs: Any) -> dict[str, Any]:
    return {"id": eid, "type": etype, "subject": subject, "at": at, "attrs": attrs}


@pytest.fixture(autouse=True)
def _spark_cache_dropped(request):
    """Every Spark test leaves the one SparkSession with no cached tables: a run
    stopped midway on purpose (the kill tests) never unpersists its own, and the
    session's memory is shared by the whole suite."""
    yield
    if request.node.get_closest_marker("spark") is None:
        return
    import sys

    if "pyspark" not in sys.modules:
        return
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.catalog.clearCache()


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: pip install -e '.[spark]' (python3 dev.py test does)"
    if shutil.which("java") is None:
        return "Java is not installed: apt-get install openjdk-17-jre-headless (dev.py test does)"
    return None


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the test session, on local[2] (the Spark tests' files share it)."""
    why = _spark_missing()
    if why:
        pytest.skip(why)
    from scoring.spark.session import get_session

    session = get_session("local[2]")
    yield session
    session.stop()
