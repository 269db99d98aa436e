"""Setting up the Spark runner: Java found or installed with apt-get, or a message that
says what to do (no pyspark or Java needed to run these)."""

from __future__ import annotations

import subprocess

import pytest

from scoring.spark import session


def test_ensure_java_finds_java_on_path(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(session.shutil, "which", lambda name: f"/opt/bin/{name}")
    assert session.ensure_java() == "/opt/bin/java"


def test_ensure_java_without_root_says_how_to_install(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(
        session.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None
    )
    monkeypatch.setattr(session.os, "geteuid", lambda: 1000)
    with pytest.raises(session.SparkMissing, match="needs root.*openjdk-17-jre-headless"):
        session.ensure_java()


def test_ensure_java_reports_a_failed_apt_get(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(
        session.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None
    )
    monkeypatch.setattr(session.os, "geteuid", lambda: 0)
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 100, "", "E: Unable to locate package")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(
        session.SparkMissing, match=r"(?s)apt-get update -q` failed \(exit 100\).*Unable to locate"
    ):
        session.ensure_java()
    assert calls == [["apt-get", "update", "-q"]]
    assert session.main(["ensure"]) == 1


def test_ensure_java_installs_the_debian_package(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    installed = []
    monkeypatch.setattr(
        session.shutil, "which",
        lambda name: "/usr/bin/apt-get" if name == "apt-get" else ("/usr/bin/java" if installed else None),
    )  # fmt: skip
    monkeypatch.setattr(session.os, "geteuid", lambda: 0)

    def fake_run(cmd, **kw):
        if cmd[:2] == ["apt-get", "install"]:
            installed.append(cmd[-1])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert session.ensure_java() == "/usr/bin/java"
    assert installed == ["openjdk-17-jre-headless"]


def test_the_runner_without_pyspark_says_how_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pyspark(name, *a, **k):
        if name.startswith("pyspark"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    with pytest.raises(session.SparkMissing, match=r"pip install 'gridcredit\[spark\]'"):
        session.get_session("local[1]")
