"""The read-ahead process: batches come back converted, in order, failures and all."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metamodel.errors import CrmError, InvalidDocument, Problem
from records import read_ahead


def numbered(count: int, size: int = 3):
    return ([(line, [str(line)]) for line in range(start, start + size)] for start in range(count))


def doubled(batch):
    # What the child computed, and in which process, to show where it ran.
    return [(line, int(cells[0]) * 2, os.getpid()) for line, cells in batch]


@pytest.mark.parametrize("parallel", [False, True])
def test_every_batch_comes_back_converted_in_order(parallel):
    with read_ahead.converted_batches(numbered(50), doubled, parallel=parallel) as batches:
        got = list(batches)
    assert [[value for _, value, _ in batch] for batch in got] == [
        [2 * n for n in range(start, start + 3)] for start in range(50)
    ]
    pids = {pid for batch in got for _, _, pid in batch}
    assert (pids == {os.getpid()}) is not parallel
    assert multiprocessing.active_children() == []


def failing(error: BaseException, after: int):
    def batches():
        yield from numbered(after)
        raise error

    return batches()


def test_a_product_error_in_the_child_is_raised_again_after_the_batches_before_it():
    error = CrmError("surveys.csv, line 9: cannot read: bad quote", path="/rows/9")
    got = []
    with (
        pytest.raises(CrmError) as raised,
        read_ahead.converted_batches(failing(error, 4), doubled, parallel=True) as batches,
    ):
        got.extend(batches)
    assert len(got) == 4
    assert type(raised.value) is CrmError
    assert (raised.value.message, raised.value.path) == (error.message, error.path)


def test_an_error_that_does_not_travel_comes_back_as_its_traceback():
    # InvalidDocument takes problems, not a message: it cannot be rebuilt from its args.
    error = InvalidDocument([Problem("/x", "is wrong")])
    with (
        pytest.raises(RuntimeError, match=r"(?s)reading process failed.*InvalidDocument"),
        read_ahead.converted_batches(failing(error, 1), doubled, parallel=True) as batches,
    ):
        list(batches)
    with (
        pytest.raises(RuntimeError, match=r"(?s)ZeroDivisionError"),
        read_ahead.converted_batches(numbered(3), lambda batch: 1 / 0, parallel=True) as batches,
    ):
        list(batches)


def test_a_child_that_dies_is_reported_not_waited_for(monkeypatch):
    monkeypatch.setattr(read_ahead, "POLL_SECONDS", 0.05)

    def dies(batch):
        if batch[0][0] >= 6:
            os._exit(3)
        return doubled(batch)

    with (
        pytest.raises(RuntimeError, match=r"reading process stopped \(exit code 3\)"),
        read_ahead.converted_batches(numbered(10), dies, parallel=True) as batches,
    ):
        list(batches)


def test_leaving_early_ends_the_child():
    endless = ([(n, [str(n)])] for n in iter(int, 1))
    with read_ahead.converted_batches(endless, doubled, parallel=True) as batches:
        assert next(batches)[0][1] == 0
        assert len(multiprocessing.active_children()) == 1
    assert multiprocessing.active_children() == []


def test_only_files_big_enough_are_read_ahead_on_linux(tmp_path, monkeypatch):
    monkeypatch.setattr(read_ahead, "MIN_BYTES", 10)
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    small.write_text("name\n")
    big.write_text("name\n" + "x\n" * 10)
    assert not read_ahead.worth_it(small)
    assert read_ahead.worth_it(big)
    assert not read_ahead.worth_it(tmp_path / "gone.csv")
    monkeypatch.setattr(read_ahead.sys, "platform", "darwin")
    assert not read_ahead.worth_it(big)


def test_the_child_ends_on_sigterm_though_the_parent_keeps_running_on_it():
    # A web server's worker finishes its request on SIGTERM; the child must not.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        handlers = lambda batch: [signal.getsignal(signal.SIGTERM)]  # noqa: E731
        with read_ahead.converted_batches(numbered(1), handlers, parallel=True) as batches:
            assert list(batches) == [[signal.SIG_DFL]]
    finally:
        signal.signal(signal.SIGTERM, previous)


ORPHANED = """
import os, sys
from records import read_ahead
read_ahead.POLL_SECONDS = 0.05
endless = ([(n, [str(n)])] for n in iter(int, 1))
with read_ahead.converted_batches(endless, lambda batch: batch, parallel=True) as batches:
    next(batches)
    (child,) = read_ahead.multiprocessing.active_children()
    print(child.pid, flush=True)
    os.kill(os.getpid(), 9)  # the importer dies without leaving the context
"""


def test_a_child_whose_importer_died_ends_itself():
    importer = subprocess.run(
        [sys.executable, "-c", ORPHANED], capture_output=True, text=True, timeout=60
    )
    assert importer.returncode == -signal.SIGKILL, importer.stderr
    child = int(importer.stdout)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists()
