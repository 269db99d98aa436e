"""The SparkSession of a run: its master, the workers' Python, and Java.

``pyspark`` is imported here, inside functions, so that importing the package
costs nothing when Spark is not used.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from ..errors import GridcreditError

_JAVA_FIX = (
    "install Java 17 (Debian: sudo apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
)


class SparkMissing(GridcreditError):
    """pyspark or Java is not installed."""


def check_java() -> None:
    """Raise :class:`SparkMissing` with the fix when no ``java`` is found."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "java")):
        return
    if shutil.which("java") is None:
        raise SparkMissing(f"the Spark runner needs Java and none was found; {_JAVA_FIX}")


def ensure_java() -> str:
    """The ``java`` binary, installing Debian's ``openjdk-17-jre-headless`` with
    apt-get when missing (as ``scoring.testing.browser`` installs Chromium).

    Raises :class:`SparkMissing` with the reason and the manual fix when it
    cannot be installed (not root, no apt-get, no network to the mirror).
    """
    import subprocess

    home = os.environ.get("JAVA_HOME")
    if home and os.path.isfile(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    found = shutil.which("java")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise SparkMissing(f"Java is not installed and apt-get is not available; {_JAVA_FIX}")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise SparkMissing(f"Java is not installed and installing it needs root; {_JAVA_FIX}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "openjdk-17-jre-headless"],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise SparkMissing(
                f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{tail}\n{_JAVA_FIX}"
            )
    found = shutil.which("java")
    if not found:
        raise SparkMissing(
            f"apt-get installed openjdk-17-jre-headless but no java is on PATH; {_JAVA_FIX}"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m scoring.spark.session ensure``: install Java for the Spark tests if missing."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["ensure"]:
        print("usage: python -m scoring.spark.session ensure", file=sys.stderr)
        return 2
    try:
        path = ensure_java()
    except SparkMissing as e:
        print(f"the Spark tests need Java 17: {e}", file=sys.stderr)
        return 1
    print(f"java: {path}")
    return 0


def get_session(master: str | None = None, app: str = "gridcredit") -> Any:
    """The active SparkSession, or a new one on ``master`` (``None``: what
    ``spark-submit`` set, else ``local[*]``). The workers run this Python
    (``PYSPARK_PYTHON``) unless the environment says otherwise."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkMissing(
            "the Spark runner needs pyspark; install it with: pip install 'gridcredit[spark]'"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None and (master is None or active.sparkContext.master == master):
        return active
    check_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if master is not None:
        builder = builder.master(master)
    elif "spark.master" not in os.environ.get("SPARK_CONF", "") and not os.environ.get(
        "SPARK_ENV_LOADED"
    ):
        builder = builder.master("local[*]")
    spark = (
        builder.config("spark.sql.session.timeZone", "UTC")
        # "2024-03" in a partition folder stays a string
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # local mode runs the executors in the driver's JVM: its memory is theirs
        .config("spark.driver.memory", os.environ.get("GRIDCREDIT_SPARK_DRIVER_MEMORY", "3g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("GRIDCREDIT_SPARK_PARTITIONS", "8"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


if __name__ == "__main__":
    raise SystemExit(main())
