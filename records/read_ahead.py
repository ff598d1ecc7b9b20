"""Reading and converting an import's file in a second process.

An import is Python work from end to end: parsing the file, checking every cell
with its field type, then resolving references, computing and writing each
batch. One process uses one core. Here a forked child reads the file and
converts its cells, a batch at a time, while the importer writes the batches
before: the two halves of the work run side by side.

The child needs no database and shares nothing with the importer but the file
(it reads on from where the importer read the header) and what the importer
knew when it forked (the columns and their converters). Converted batches come
back in order through a queue of at most ``QUEUE_BATCHES``, so memory stays flat
however long the file. A reading error in the child (a bad byte, a broken
quote) is raised in the importer once the batches before it are written, as it
would be without the child.

Only on Linux (forking) and only for files of at least ``MIN_BYTES``: a small
file is read before a child would have started. A child is never left behind:
leaving the context ends it, and a child whose importer died ends itself.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue as queues
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metamodel.errors import CrmError

# Files smaller than this are read and converted inline (about 17,000 short rows).
MIN_BYTES = 1 << 20
# Converted batches waiting for the importer, at most.
QUEUE_BATCHES = 4
# How often a side kept waiting checks that the other still runs: the importer waiting
# for a batch, the child waiting for room in the queue.
POLL_SECONDS = 1.0
# How long a child asked to stop may take before it is killed.
STOP_SECONDS = 5.0

Batch = list[tuple[int, list[Any]]]


class _End:
    """The child read the whole file."""


class _Failed:
    """The child stopped on an error: a CrmError is raised again as it was."""

    def __init__(self, error: BaseException):
        self.error = error if isinstance(error, CrmError) and _travels(error) else None
        self.text = "".join(traceback.format_exception(error))


def _travels(error: BaseException) -> bool:
    """Whether the error comes out of pickling as it went in (its class may take other
    arguments than its message)."""
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return type(copy) is type(error) and str(copy) == str(error)


def worth_it(path: str | Path) -> bool:
    """Whether a file is big enough, and this platform able, to read ahead (Linux:
    elsewhere forking a process with threads is not safe, or not possible)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return os.path.getsize(path) >= MIN_BYTES
    except OSError:
        return False


@contextmanager
def converted_batches(
    batches: Iterator[Batch], convert: Callable[[Batch], Any], *, parallel: bool
) -> Iterator[Iterator[Any]]:
    """``convert(batch)`` for each batch, in order: in a child process when ``parallel``."""
    if not parallel:
        yield (convert(batch) for batch in batches)
        return
    context = multiprocessing.get_context("fork")
    channel = context.Queue(QUEUE_BATCHES)
    child = context.Process(
        target=_convert_all,
        args=(batches, convert, channel, os.getpid()),
        name="crm-import-read",
        daemon=True,
    )
    child.start()
    try:
        yield _received(channel, child)
    finally:
        if child.is_alive():
            child.terminate()
            child.join(STOP_SECONDS)
            if child.is_alive():
                child.kill()
        child.join()
        channel.close()
        channel.join_thread()


def _convert_all(
    batches: Iterator[Batch], convert: Callable[[Batch], Any], channel, parent: int
) -> None:
    _own_signals()
    try:
        for batch in batches:
            _put(channel, convert(batch), parent)
        _put(channel, _End(), parent)
    except BaseException as error:
        _put(channel, _Failed(error), parent)


def _put(channel, item: Any, parent: int) -> None:
    """Put, waiting for room while the importer lives: if it died (killed, say),
    nobody will make room, and this process ends rather than wait for ever."""
    while True:
        try:
            channel.put(item, timeout=POLL_SECONDS)
            return
        except queues.Full:
            if os.getppid() != parent:
                os._exit(1)


def _own_signals() -> None:
    """Forget the handlers the parent installed (a web server's worker keeps running on
    SIGTERM, to finish its request): the importer ends this process with SIGTERM. Ctrl-C
    is the importer's to handle; it ends this process on its way out."""
    signal.set_wakeup_fd(-1)
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGABRT"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _received(channel, child) -> Iterator[Any]:
    while True:
        try:
            item = channel.get(timeout=POLL_SECONDS)
        except queues.Empty:
            if not child.is_alive() and channel.empty():
                raise RuntimeError(
                    f"the import's reading process stopped (exit code {child.exitcode})"
                ) from None
            continue
        if isinstance(item, _End):
            return
        if isinstance(item, _Failed):
            if item.error is not None:
                raise item.error
            raise RuntimeError(f"the import's reading process failed:\n{item.text}")
        yield item
