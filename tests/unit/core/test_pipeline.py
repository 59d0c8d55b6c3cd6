"""The loader's pipeline: writes one at a time, in order, behind the caller; a failed write stops the rest."""

from __future__ import annotations

import threading
import time

import pytest

from crm.core.pipeline import WriteBehind


def test_writes_run_one_at_a_time_in_order_and_results_come_back_in_submission_order():
    written: list[int] = []
    running = threading.Semaphore(1)

    def write(n: int) -> int:
        assert running.acquire(blocking=False), "two writes at once"
        time.sleep(0.002 * (n % 3))  # later writes sometimes quicker than earlier ones
        written.append(n)
        running.release()
        return n * 10

    seen = []
    with WriteBehind[int, int]() as writer:
        for n in range(12):
            if n % 4 == 3:
                writer.done(n, -n)  # nothing to write: reported in its place
            else:
                writer.submit(n, write, n)
            seen += list(writer.completed())
        seen += list(writer.results())
    assert written == [n for n in range(12) if n % 4 != 3]
    assert seen == [(n, -n if n % 4 == 3 else n * 10) for n in range(12)]


def test_the_caller_prepares_the_next_batch_while_one_is_written():
    started, release = threading.Event(), threading.Event()

    def slow_write() -> str:
        started.set()
        release.wait(5)
        return "written"

    with WriteBehind[str, str]() as writer:
        writer.submit("first", slow_write)
        assert started.wait(5)
        assert list(writer.completed()) == []  # the write is under way and the caller goes on
        release.set()
        assert list(writer.results()) == [("first", "written")]


def test_a_failed_write_raises_at_the_next_submission_and_nothing_after_it_is_written():
    written: list[int] = []

    def write(n: int) -> None:
        if n == 1:
            raise RuntimeError("connection lost")
        written.append(n)

    with pytest.raises(RuntimeError, match="connection lost"), WriteBehind[int, None]() as writer:
        for n in range(4):
            writer.submit(n, write, n)
    assert written == [0]


def test_leaving_the_block_on_an_error_of_the_caller_waits_for_the_write_under_way():
    finished = threading.Event()

    def write() -> None:
        time.sleep(0.05)
        finished.set()

    with pytest.raises(ValueError, match="bad batch"), WriteBehind[int, None]() as writer:
        writer.submit(1, write)
        raise ValueError("bad batch")
    assert finished.is_set(), "the transaction under way was left running"


def test_the_last_writes_error_is_raised_when_the_block_ends():
    def write() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"), WriteBehind[int, None]() as writer:
        writer.submit(1, write)


def test_inline_writes_run_in_the_callers_thread_in_order_with_the_same_results():
    threads: set[int] = set()

    def write(n: int) -> int:
        threads.add(threading.get_ident())
        return n + 1

    with WriteBehind[int, int](threaded=False) as writer:
        writer.submit(0, write, 0)
        writer.done(1, 0)
        writer.submit(2, write, 2)
        assert list(writer.completed()) == [(0, 1), (1, 0), (2, 3)]
        assert list(writer.results()) == []
    assert threads == {threading.get_ident()}
