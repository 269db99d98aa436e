"""The event reader: a forked child process that reads a big score run's events,
in (time, id) order, and hands them to the scorer as orjson batches."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from itertools import islice
from typing import Any

import orjson

from ..errors import GridcreditError
from . import bulk

READ_EVERY = 5000  # events read at a time


class EventReader:
    """A child process that reads a big run's events, in order, for the scorer.

    Reading a row from SQLite into Python objects costs the scorer about three
    times what decoding the same row from orjson does, and a sort by (time, id)
    happens before the first row: the child runs the query on a connection of its
    own and sends batches of ``READ_EVERY`` rows through a pipe, while the scorer
    sets up, evaluates and hands entries to the writer. The query names the seqs
    it reads (``scoring.evaluate.runner.NEW``), so its snapshot reads the same events as this process.
    """

    def __init__(self, path: str, sql: str, params: list[Any]):
        ctx = multiprocessing.get_context("fork")
        self.recv, send = ctx.Pipe(duplex=False)
        bulk.pipe_size(send)
        self.proc = ctx.Process(
            target=_read_events,
            args=(path, sql, params, send, self.recv),
            name="gridcredit-event-reader",
            daemon=True,
        )
        self.proc.start()
        send.close()  # so EOF arrives when the child is gone

    def __iter__(self) -> Iterator[list]:
        loads = orjson.loads
        while True:
            try:
                rows = loads(self.recv.recv_bytes())
            except (EOFError, OSError):
                raise bulk.helper_died("event reader", self.proc) from None
            if rows.__class__ is dict:
                raise GridcreditError(f"event reader: {rows['error']}; nothing was written")
            if not rows:
                return
            yield rows

    def close(self) -> None:
        self.recv.close()  # a child still sending gets a broken pipe and stops
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join()


def _read_events(
    path: str, sql: str, params: list[Any], out: Any, parent_recv: Any
) -> None:  # pragma: no cover - runs in the child process (exercised by the bulk tests)
    parent_recv.close()
    dumps = orjson.dumps
    try:
        conn = bulk.child_connection(path)
        try:
            cur = conn.execute(sql, params)
            while rows := list(islice(cur, READ_EVERY)):
                out.send_bytes(dumps(rows))
            out.send_bytes(b"[]")
        finally:
            conn.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the scorer stopped reading: it has failed or been stopped itself
    except BaseException as e:
        try:
            out.send_bytes(dumps({"error": f"{type(e).__name__}: {e}"}))
        except OSError:
            pass
    finally:
        out.close()
