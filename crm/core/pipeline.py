"""A loader's pipeline: the next batch is read, parsed and validated while the previous one is written.

Reading and validating are the client's work; on PostgreSQL a write is mostly the server's (`COPY`,
index upkeep), so a writer thread lets the server work while the client prepares the next batch
(-19% wall time for a 200k-customer initial load). On SQLite the engine runs inside this process and
its writes are mostly Python binding values under the interpreter's lock: a thread only adds lock
contention (+30% CPU measured), so there the writes run inline (`threaded=False`). Either way one
write at a time, in the order submitted: each batch keeps its own transaction and commits before the
next one starts, so what a crash leaves (and what a re-run resumes from) is the same.

On SQLite an initial load turns the pipeline around (`read_ahead`): a worker process reads, parses
and validates the next batches while this process writes, so the two halves of the work, each
Python under its own interpreter lock, run on two cores (a 20M-row load: 295.5 s -> 243.3 s).
The worker only reads; every write, and so every transaction, stays in this process, in order.
`ahead_on_thread` is the same hand-over on a thread, for a producer that mostly waits on a server.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue as queues
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine

from crm.core.settings import engine_url, sqlite_path

T = TypeVar("T")
R = TypeVar("R")


class WriteBehind(Generic[T, R]):
    """Write jobs run one at a time on a thread of their own while the caller prepares the next.

    `submit(item, job)` first waits for the job before it (at most one write runs while the caller
    works, so at most two batches are in memory), raising that job's error: nothing more is written
    after a failed write. `results()` yields (item, result) in submission order as they complete,
    including items given with `done(item, result)` (no write needed), so callers report in order.
    Leaving the `with` block waits for the write under way, whatever ended the block.
    """

    def __init__(self, name: str = "writer", *, threaded: bool = True) -> None:
        # Inline (`threaded=False`): each job runs in `submit`, in the caller's thread.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) if threaded else None
        self._running: Future | None = None
        self._queue: deque[tuple[T, Future | R]] = deque()

    def __enter__(self) -> WriteBehind[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._wait()  # the last write's error is the block's error
        finally:  # on the caller's error the pool still waits for the write under way
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, item: T, job: Callable[..., R], *args: Any, **kwargs: Any) -> None:
        """Wait for the write under way (raising its error), then start `job(*args, **kwargs)` for `item`."""
        self._wait()
        if self._pool is None:
            self._queue.append((item, job(*args, **kwargs)))
            return
        self._running = self._pool.submit(job, *args, **kwargs)
        self._queue.append((item, self._running))

    def done(self, item: T, result: R) -> None:
        """An item that needed no write, reported in its place among the others."""
        self._queue.append((item, result))

    def completed(self) -> Iterator[tuple[T, R]]:
        """(item, result) of the items at the head of the queue whose write has finished, in order."""
        while self._queue and not (isinstance(self._queue[0][1], Future) and not self._queue[0][1].done()):
            item, outcome = self._queue.popleft()
            yield item, outcome.result() if isinstance(outcome, Future) else outcome

    def results(self) -> Iterator[tuple[T, R]]:
        """Every remaining (item, result) in order, waiting for the last write."""
        self._wait()
        yield from self.completed()

    def _wait(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            running.result()


def writes_behind(engine: Engine) -> bool:
    """Whether a loader into `engine` writes on a thread of its own (PostgreSQL) or inline (SQLite)."""
    return engine.dialect.name == "postgresql"


class ReaderDied(RuntimeError):
    """The process reading ahead ended without saying why (killed, out of memory)."""


_ITEM, _END, _ERROR = "item", "end", "error"
# How often a side waiting on the other checks that the other is still there (seconds).
_PATIENCE = 1.0


@contextmanager
def read_ahead(
    produce: Callable[..., Iterator[T]],
    *args: Any,
    in_process: bool,
    depth: int = 2,
    name: str = "reader",
    preload: bool = True,
) -> Iterator[Iterator[T]]:
    """The items of `produce(*args)`, made in a worker process up to `depth` items ahead of the caller.

    For an initial load on SQLite: the worker reads, parses and validates while the caller writes.
    `produce` must be a module-level function and its arguments picklable (engine URLs, not engines);
    its items come back pickled. Without `in_process`, `produce(*args)` runs here, item by item.
    An error in the worker is raised here, when its item would have come, with the worker's traceback
    as a note; leaving the block early stops the worker. A worker killed from outside raises
    `ReaderDied`; a worker whose caller is gone stops by itself.

    `preload`: the first worker of this process starts a fork server that imports the producer's
    module once for every later worker (the caller waits for that import, ~1 s). Without it the
    worker imports the module itself, while the caller goes on: for a one-off worker.
    """
    if not in_process or multiprocessing.current_process().daemon:  # a daemonic process may not start one
        yield produce(*args)
        return
    # forkserver: a clean single-threaded parent to fork from (this process runs Prefect's threads,
    # which `fork` must not copy), started once per process; it imports the producer's module once.
    context = multiprocessing.get_context("forkserver")
    # (Preloads only if the server is not running yet; an empty list: not even `__main__`, e.g. a CLI.)
    context.set_forkserver_preload([produce.__module__] if preload else [])
    items = context.Queue(maxsize=depth)
    worker = context.Process(target=_produce, args=(produce, args, items, os.getpid()), name=name, daemon=True)
    worker.start()
    try:
        yield _received(items, worker)
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()
        items.close()
        items.cancel_join_thread()  # what the worker left unread is dropped


@contextmanager
def ahead_on_thread(produce: Callable[..., Iterator[T]], *args: Any, name: str = "reader") -> Iterator[Iterator[T]]:
    """The items of `produce(*args)`, made on a thread of its own as fast as it can while the caller goes on.

    For a producer that mostly waits on a database server (its queries run while the caller works).
    Its error is raised here when its item would have come. Leaving the block waits for the thread,
    which stops at its next item.
    """
    items: queues.Queue = queues.Queue()
    stop = False

    def run() -> None:
        try:
            for item in produce(*args):
                if stop:
                    return
                items.put((_ITEM, item))
            items.put((_END, None))
        except BaseException as exc:  # the caller raises it
            items.put((_ERROR, exc))

    def received() -> Iterator[T]:
        while True:
            kind, value = items.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        pool.submit(run)
        try:
            yield received()
        finally:
            stop = True


def _received(items: Any, worker: Any) -> Iterator[Any]:
    while True:
        try:
            kind, value = items.get(timeout=_PATIENCE)
        except queues.Empty:
            if not worker.is_alive() and items.empty():
                raise ReaderDied(f"{worker.name}: the reading process ended (exit code {worker.exitcode})") from None
            continue
        if kind == _END:
            return
        if kind == _ERROR:
            raise value
        yield value


def _produce(produce: Callable[..., Iterator[Any]], args: tuple, items: Any, caller: int) -> None:
    try:
        for item in produce(*args):
            _put(items, (_ITEM, item), caller)
        _put(items, (_END, None), caller)
    except _CallerGone:
        items.cancel_join_thread()  # nobody will read what is queued: exit without flushing it
        return
    except BaseException as exc:  # every error goes to the caller, which raises it
        _put(items, (_ERROR, _portable(exc)), caller)


class _CallerGone(Exception):
    pass


def _put(items: Any, message: tuple, caller: int) -> None:
    while True:
        try:
            items.put(message, timeout=_PATIENCE)
            return
        except queues.Full:
            if not _alive(caller):
                raise _CallerGone from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling (its type is what retries look at), else a RuntimeError saying what it was;
    either way with the worker's traceback as a note."""
    where = "".join(traceback.format_exception(exc)).rstrip()
    try:
        copy = pickle.loads(pickle.dumps(exc))
        if not isinstance(copy, BaseException) or str(copy) != str(exc):
            raise TypeError("not the same after pickling")
    except Exception:  # many exceptions cannot be pickled (e.g. some drivers')
        copy = RuntimeError(f"{type(exc).__name__}: {exc}")
    copy.add_note(f"in the reading process:\n{where}")
    return copy


def reads_in_process(warehouse: Engine, *engines: Engine) -> bool:
    """Whether a load into `warehouse` reads ahead in a worker process (`read_ahead`): SQLite, where this process
    does all the work, and only if every database involved can be opened again by its URL (not in memory)."""
    return warehouse.dialect.name == "sqlite" and all(
        e.dialect.name != "sqlite" or sqlite_path(engine_url(e)) is not None for e in (warehouse, *engines)
    )
