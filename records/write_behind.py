"""Writing one batch of an import while Python prepares the next.

On PostgreSQL the server checks, indexes and logs each row in a process of its
own. An import that waits for it after every batch keeps one core busy at a
time: Python converts while the server idles, then the server writes while
Python waits. ``WriteBehind`` runs a batch's writes on a second thread instead,
which spends its time waiting on the socket with the GIL released, so the next
batch is converted meanwhile.

One batch at most is in flight, and the caller takes the connection through
:meth:`WriteBehind.settle`, which waits for it first: the connection is never
used by two threads at once, and the rows go in, in order, in the import's one
transaction.

SQLite works inside this process and takes the GIL back between rows, so a
second thread would only take turns with the first: there, writes run inline.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection


class WriteBehind:
    def __init__(self, conn: Connection):
        self._conn = conn
        self._executor = (
            ThreadPoolExecutor(1, thread_name_prefix="crm-import-write")
            if conn.dialect.name == "postgresql"
            else None
        )
        self._pending: Future | None = None
        self._then: Callable[[Any], None] | None = None

    def submit(self, write: Callable[[Connection], Any], then: Callable[[Any], None]) -> None:
        """Run ``write(conn)``, then ``then(its result)`` on this thread, by the next settle."""
        self.settle()
        if self._executor is None:
            then(write(self._conn))
            return
        self._pending = self._executor.submit(write, self._conn)
        self._then = then

    def settle(self) -> Connection:
        """Wait for the batch in flight and run its follow-up; the connection, free to use."""
        pending, then = self._pending, self._then
        if pending is not None:
            self._pending = self._then = None
            then(pending.result())
        return self._conn

    def close(self) -> None:
        """Wait for any write still running (its outcome no longer matters), then stop."""
        if self._executor is None:
            return
        pending, self._pending, self._then = self._pending, None, None
        if pending is not None:
            # The transaction is about to end either way; the write must not outlive it.
            pending.exception()
        self._executor.shutdown(wait=True)
