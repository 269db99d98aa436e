"""Writing the site so that a kill or a full disk never leaves it broken.

* :func:`write_atomic`: every file goes through a temporary name in its own
  folder (``.<name>.gc-tmp``) and a rename, so a reader (MkDocs, a web server,
  the next run) sees the old bytes or the new ones, never a truncated or
  empty file. The rename also gives a changed file a new inode, so a file
  hard-linked into a built site (:func:`scoring.publish.link_files`) is never
  altered in place.
* :func:`publish_lock`: one ``publish`` at a time per site folder; a second
  one is refused with the pid of the first.
* The publish marker ``<site>/.gridcredit-publish.json`` names the month
  being written. It is written before the first page and removed only when
  every page, look-up file and the private codes file are in place (and on
  disk: :func:`sync_folders`). While it is there the month is not published:
  ``gridcredit publish MONTH`` completes it (the same bytes an uninterrupted
  run writes) and ``gridcredit build`` refuses the site.

Dot files are never part of the built site (MkDocs excludes them), so the
marker, the lock and a temporary file left by a kill are never published.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import GridcreditError

MARKER = ".gridcredit-publish.json"
LOCK = ".gridcredit-publish.lock"
TMP_SUFFIX = ".gc-tmp"
KILL_ENV = "GRIDCREDIT_TEST_KILL_AT"

_hits: dict[str, int] = {}
# read once: the look-up files pass a checkpoint each, tens of thousands a run
_KILL_AT = os.environ.get(KILL_ENV) or ""


def checkpoint(name: str) -> None:
    """Test hook: ``GRIDCREDIT_TEST_KILL_AT=<name>[:<n>]`` kills this process with
    SIGKILL at the n-th (default first) time it passes ``name``, as a crash or the
    OOM killer would; ``stop:<name>[:<n>]`` stops it there (SIGSTOP) until the
    test continues it. The crash tests use it to stop ``publish`` at named points."""
    if not _KILL_AT:
        return
    sig, want = signal.SIGKILL, _KILL_AT
    if want.startswith("stop:"):
        sig, want = signal.SIGSTOP, want[5:]
    point, _, nth = want.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), sig)


def tmp_path(path: Path) -> Path:
    """The temporary name ``path`` is written under: a dot file in the same folder."""
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_atomic(
    path: Path, data: bytes, *, mode: int = 0o666, fsync: bool = False, point: str = ""
) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    ``mode`` is the temporary file's mode from its creation (the umask applies),
    so a private file (0o600) is never readable by others, not even empty.
    ``fsync`` flushes the file and its folder before returning (for the look-up
    key; the site's many files are flushed once at the end, :func:`sync_folders`).
    ``point`` names a :func:`checkpoint` between writing and renaming.
    An ``OSError`` (a full disk) removes the temporary file and names ``path``.
    """
    target = os.fspath(path)
    head, name = os.path.split(target)
    tmp = os.path.join(head, f".{name}{TMP_SUFFIX}")
    try:
        try:
            fd = os.open(tmp, _CREATE, mode)
        except FileExistsError:  # left by a kill; its mode may be wrong: make it anew
            os.unlink(tmp)
            fd = os.open(tmp, _CREATE, mode)
        try:
            n = os.write(fd, data)
            if n < len(data):  # pragma: no cover - a short write (a signal, a full disk)
                view = memoryview(data)[n:]
                while view:
                    view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if point and _KILL_AT:
            checkpoint(point)
        os.replace(tmp, target)
        if fsync:
            _fsync_dir(Path(head))
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if e.filename is None or e.filename == tmp:
            e.filename = target  # os.write names no file; say which one failed
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folders(*folders: Path | None) -> None:
    """Put everything written so far on disk: one ``syncfs`` per file system of
    ``folders`` (``sync`` where there is none), instead of an fsync per file."""
    import ctypes

    seen: set[int] = set()
    for folder in folders:
        if folder is None or not Path(folder).is_dir():
            continue
        dev = os.stat(folder).st_dev
        if dev in seen:
            continue
        seen.add(dev)
        fd = os.open(folder, os.O_RDONLY)
        try:
            syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
            if syncfs is None or syncfs(fd) != 0:  # pragma: no cover - not Linux
                os.sync()
        except OSError:  # pragma: no cover - no libc to load
            os.sync()
        finally:
            os.close(fd)


def remove_leftovers(*folders: Path | None) -> int:
    """Remove the temporary files a killed publish left under ``folders``."""
    n = 0
    for folder in folders:
        if folder is None or not Path(folder).is_dir():
            continue
        for tmp in Path(folder).rglob(f".*{TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
            n += 1
    return n


# --------------------------------------------------------------------------
# The publish marker and lock
# --------------------------------------------------------------------------


def unfinished_publish(site_dir: Path) -> str | None:
    """The month whose publish into ``site_dir`` started and did not finish, if any."""
    marker = Path(site_dir) / MARKER
    try:
        month = json.loads(marker.read_text("utf-8"))["month"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return "?"  # unreadable, but there: a publish did not finish
    return str(month)


def begin_publish(site_dir: Path, month: str) -> None:
    """Mark ``month`` as being published into ``site_dir`` (before its first file)."""
    site_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"month": month}, sort_keys=True).encode("utf-8") + b"\n"
    write_atomic(site_dir / MARKER, data, fsync=True)


def finish_publish(site_dir: Path, *private: Path | None) -> None:
    """Every file of the month is written: flush them to disk, then drop the marker."""
    sync_folders(site_dir, *private)
    (site_dir / MARKER).unlink(missing_ok=True)
    _fsync_dir(site_dir)


def unfinished_message(site_dir: Path, month: str) -> str:
    what = f"the publish of {month}" if month != "?" else "a publish"
    rerun = f"gridcredit publish {month}" if month != "?" else "gridcredit publish MONTH"
    return (
        f"{what} into {site_dir} did not finish (stopped, killed or out of disk space), so the"
        f" site is incomplete. Run `{rerun}` again: it completes the month with the same files"
        f" ({site_dir / MARKER} marks the unfinished publish)"
    )


_held: dict[Path, int] = {}


@contextmanager
def publish_lock(site_dir: Path) -> Iterator[None]:
    """Hold the site's publish lock; a second ``publish`` of the same site is refused.

    Re-entrant within one process (the CLI holds it across score, close and
    publish; :func:`scoring.pipeline.publish_month` takes it again). The lock is
    an ``flock`` on ``<site>/.gridcredit-publish.lock``, which the kernel drops
    when the holder dies, so a kill never leaves the site locked. The holder
    removes the file when done, so a finished site carries no lock file.
    """
    site_dir = Path(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    path = (site_dir / LOCK).resolve()
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise GridcreditError(
                f"another `gridcredit publish`{who} is writing the site {site_dir} now; wait"
                " for it to finish, then run this command again if it is still needed"
            ) from None
        # the previous holder may have removed the file after we opened it: then the
        # lock we hold is on a file nobody else sees; take the one that is there
        try:
            st = os.stat(path)
            mine = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:  # a full disk: the pid is only a courtesy
        pass
    _held[path] = 1
    try:
        yield
    finally:
        del _held[path]
        try:
            os.unlink(path)  # while still holding it (see the check above)
        except OSError:
            pass
        os.close(fd)  # releases the flock
