"""The loader's pipeline: writes one at a time, in order, behind the caller; a failed write stops the rest."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from crm.core.pipeline import ReaderDied, WriteBehind, ahead_on_thread, read_ahead, reads_in_process
from crm.core.settings import make_engine


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


# read_ahead: producers are module-level, as a worker process imports them by name.


def _numbers_with_pid(n: int):
    for i in range(n):
        yield i, os.getpid()


def _fails_after(n: int):
    yield from range(n)
    raise KeyError("row 3: bad key")


class _Unpicklable(Exception):
    def __init__(self, message: str, handle: object) -> None:
        super().__init__(message)
        self.handle = handle


def _fails_unpicklably():
    yield 0
    raise _Unpicklable("driver broke", threading.Lock())


def _endless():
    i = 0
    while True:
        yield os.getpid(), i
        i += 1


def test_read_ahead_gives_the_producers_items_in_order_made_in_another_process():
    with read_ahead(_numbers_with_pid, 50, in_process=True, depth=2) as items:
        got = list(items)
    assert [i for i, _ in got] == list(range(50))
    assert {pid for _, pid in got} != {os.getpid()} and len({pid for _, pid in got}) == 1


def test_read_ahead_without_a_process_runs_the_producer_here():
    with read_ahead(_numbers_with_pid, 3, in_process=False) as items:
        assert list(items) == [(0, os.getpid()), (1, os.getpid()), (2, os.getpid())]


def test_an_error_in_the_reading_process_is_raised_in_its_place_with_its_type_and_where_it_happened():
    got = []
    with (
        pytest.raises(KeyError, match="row 3: bad key") as raised,
        read_ahead(_fails_after, 3, in_process=True) as items,
    ):
        got.extend(items)
    assert got == [0, 1, 2]
    assert any("in the reading process" in note and "_fails_after" in note for note in raised.value.__notes__)


def test_an_error_that_cannot_cross_processes_is_raised_as_a_runtime_error_naming_it():
    with (
        pytest.raises(RuntimeError, match="_Unpicklable: driver broke"),
        read_ahead(_fails_unpicklably, in_process=True) as items,
    ):
        list(items)


def test_leaving_the_block_early_stops_the_reading_process():
    with read_ahead(_endless, in_process=True, depth=1) as items:
        worker_pid, _ = next(items)
    assert not _running(worker_pid)


def test_a_reading_process_killed_from_outside_is_reported_not_waited_for_forever():
    with (
        pytest.raises(ReaderDied, match="reading process ended"),
        read_ahead(_endless, in_process=True, depth=1) as items,
    ):
        worker_pid, _ = next(items)
        os.kill(worker_pid, signal.SIGKILL)
        for _ in items:  # what it had queued, then the report
            pass


def test_ahead_on_thread_makes_the_items_on_another_thread_before_the_caller_asks_for_them():
    made = []

    def produce(n):
        for i in range(n):
            made.append(i)
            yield i, threading.get_ident()

    with ahead_on_thread(produce, 3) as items:
        deadline = time.monotonic() + 5
        while len(made) < 3 and time.monotonic() < deadline:  # nobody has asked yet
            time.sleep(0.01)
        assert made == [0, 1, 2]
        got = list(items)
    assert [i for i, _ in got] == [0, 1, 2] and {t for _, t in got} != {threading.get_ident()}


def test_ahead_on_thread_raises_the_producers_error_in_its_place():
    got = []
    with pytest.raises(KeyError, match="row 3: bad key"), ahead_on_thread(_fails_after, 3) as items:
        got.extend(items)
    assert got == [0, 1, 2]


def test_leaving_ahead_on_thread_early_stops_the_producer_at_its_next_item():
    made = []

    def produce():
        for i in range(1000):
            made.append(i)
            time.sleep(0.002)
            yield i

    with ahead_on_thread(produce) as items:
        next(items)
    assert len(made) < 1000
    stopped_at = len(made)
    time.sleep(0.05)
    assert len(made) == stopped_at  # the thread ended with the block


def _running(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        stat = f"/proc/{pid}/stat"
        if os.path.exists(stat) and Path(stat).read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # ended, not yet reaped by its parent (the fork server)
        time.sleep(0.05)
    return True


def test_only_loads_into_sqlite_whose_databases_can_be_opened_again_read_in_a_worker_process(tmp_path):
    file_db = make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    postgres = make_engine("postgresql+psycopg://crm@127.0.0.1:5432/warehouse")  # never connected
    assert reads_in_process(file_db, make_engine(f"sqlite:///{tmp_path / 'source.db'}"))
    assert reads_in_process(file_db, postgres)  # a source on a server is reached from any process
    assert not reads_in_process(file_db, make_engine("sqlite://"))  # an in-memory source lives in this process only
    assert not reads_in_process(make_engine("sqlite://"))
    assert not reads_in_process(postgres, file_db)  # PostgreSQL writes on a thread instead (`WriteBehind`)
