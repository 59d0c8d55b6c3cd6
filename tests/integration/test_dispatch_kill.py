"""Exactly-once under SIGKILL: dispatch runs in a separate process, killed at random points, then run to the end.

The proof is taken from the provider's side (what the local HTTP provider and the SMTP server
received), compared with the messages the warehouse saw in flight (`sending`) after each kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from crm.simulator import LocalProvider
from models.sending import outbox
from tests.sending import DAY, SmtpRecorder, free_port, seed_outbox

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 200

# A parent process imports everything once and forks one dispatch child per trial: each trial is a
# separate process killed with SIGKILL, without paying Python's start-up (seconds here) twenty times.
ZYGOTE = textwrap.dedent(
    """
    import json, os, sys
    from datetime import date, datetime
    from crm.core.settings import make_engine
    from crm.sending import (
        HttpProvider, HttpProviderConfig, RetryPolicy, SmtpProvider, SmtpProviderConfig, dispatch_messages,
    )
    url, kind, where, day, channel = sys.argv[1:6]
    retry = RetryPolicy(max_attempts=5, backoff_seconds=0.01, backoff_max_seconds=0.05)

    def dispatch():
        if kind == "http":
            config = HttpProviderConfig(
                url=where + "/messages", batch_url=where + "/messages/batch", batch_size=4, max_concurrency=2,
                rate_per_second=100_000, retry=retry,
            )
            provider = HttpProvider("local", config)
        else:
            host, port = where.split(":")
            config = SmtpProviderConfig(
                host=host, port=int(port), security="none", batch_size=2, max_concurrency=1,
                rate_per_second=100_000, retry=retry,
            )
            provider = SmtpProvider("mail", config)
        engine = make_engine(url)  # made in the child: no connection is shared across the fork
        counts = dispatch_messages(
            engine, provider, date.fromisoformat(day), [channel], chunk_rows=10, now=lambda: datetime(2026, 2, 12, 8)
        )
        provider.close()
        return counts

    print("ready", flush=True)
    for line in sys.stdin:
        child = os.fork()
        if child == 0:
            try:
                dispatch()
            except BaseException as exc:
                print(f"error {exc!r}", flush=True)
                os._exit(1)
            os._exit(0)
        print(f"pid {child}", flush=True)
        _, status = os.waitpid(child, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)
    """
)


class Dispatcher:
    """The forking parent: `run(kill_after)` runs one dispatch process and SIGKILLs it after that many seconds."""

    def __init__(self, tmp_path: Path, url: str, kind: str, where: str, channel: str) -> None:
        script = tmp_path / "zygote.py"
        script.write_text(ZYGOTE)
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, str(script), url, kind, where, DAY.isoformat(), channel],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.lines.get(timeout=120) == "ready"

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def run(self, kill_when: Callable[[], bool] | None = None, then: float = 0.0) -> bool:
        """Run one dispatch process; SIGKILL it `then` seconds after `kill_when()` holds. True if it finished first."""
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        pid = int(self.lines.get(timeout=60).removeprefix("pid "))
        deadline = time.monotonic() + 120
        while kill_when is not None and self.lines.empty() and not kill_when():
            assert time.monotonic() < deadline, "the dispatch neither progressed nor finished"
            time.sleep(0.002)
        if kill_when is not None and self.lines.empty():
            time.sleep(then)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        line = self.lines.get(timeout=120)
        while not line.startswith("exit "):
            assert not line.startswith("error"), line
            line = self.lines.get(timeout=60)
        code = int(line.removeprefix("exit "))
        assert code in (0, -signal.SIGKILL), line
        return code == 0

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def in_flight(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(outbox.c.message_id).where(outbox.c.state == "sending")).scalars())


def final_table(engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as conn:
        return {r.message_id: (r.state, r.attempts) for r in conn.execute(select(outbox))}


def kill_trials(engine, dispatcher: Dispatcher, arrivals: Callable[[], int], trials: int) -> tuple[set[str], int]:
    """Kill `trials` dispatch processes at random points, then run one to the end; the ids in flight at a kill.

    A kill comes a random 0-30 ms after the provider has received a random 0-12 more messages: anywhere
    from start-up to mid-batch, before or after a batch's commit, whatever the machine's speed.
    """
    rng = random.Random(14)
    caught: set[str] = set()
    killed = 0
    for _ in range(trials):
        target = arrivals() + rng.randint(0, 12)
        killed += not dispatcher.run(kill_when=lambda target=target: arrivals() >= target, then=rng.uniform(0, 0.03))
        caught |= in_flight(engine)
    assert dispatcher.run(), "the last run must finish"
    dispatcher.close()
    return caught, killed


@pytest.mark.slow
def test_http_dispatch_killed_twenty_times_delivers_every_message_exactly_once(backend, tmp_path, record_property):
    engine = seed_outbox(backend.warehouse_url, range(1, MESSAGES + 1))
    with LocalProvider(latency_seconds=0.03) as local:
        dispatcher = Dispatcher(tmp_path, backend.warehouse_url, "http", local.url, "sms")
        caught, killed = kill_trials(engine, dispatcher, lambda: local.stats()["arrivals"], 20)
        stats = local.stats()
        arrivals = dict(local.arrivals)
        delivered = set(local.delivered)
    table = final_table(engine)
    assert killed >= 15, "most trials must be killed mid-run for the test to mean anything"
    assert delivered == set(table), "every outbox message reached the provider"
    assert {state for state, _ in table.values()} == {"sent"}
    repeated = {mid for mid, n in arrivals.items() if n > 1}
    # Only messages caught in flight by a kill were ever sent again, always under their own id.
    assert repeated <= caught
    assert {mid for mid, (_, attempts) in table.items() if attempts > 1} == caught
    assert all(arrivals[mid] <= attempts for mid, (_, attempts) in table.items())
    record_property("kills", killed)
    record_property("messages_in_flight_at_kills", len(caught))
    record_property("resent_copies", stats["repeated_arrivals"])
    print(
        f"\n[{backend.name}] HTTP: {killed} kills; {len(caught)} messages in flight at a kill, claimed again; "
        f"{stats['repeated_arrivals']} re-sent copies of {len(repeated)} ids reached the provider, each acknowledged "
        f"as a duplicate of its key, none delivered twice; {stats['requests']} requests for {MESSAGES} messages"
    )


@pytest.mark.slow
def test_smtp_dispatch_killed_resends_only_the_messages_in_flight_at_a_kill(backend, tmp_path, record_property):
    engine = seed_outbox(backend.warehouse_url, range(1, 61), "email")

    class SlowRecorder(SmtpRecorder):
        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(0.03)
            return await super().handle_DATA(server, session, envelope)

    recorder = SlowRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        where = f"{controller.hostname}:{controller.port}"
        dispatcher = Dispatcher(tmp_path, backend.warehouse_url, "smtp", where, "email")
        caught, killed = kill_trials(engine, dispatcher, lambda: sum(recorder.arrivals().values()), 10)
    finally:
        controller.stop()
    arrivals = recorder.arrivals()
    table = final_table(engine)
    assert killed >= 5
    assert set(arrivals) == set(table) and {state for state, _ in table.values()} == {"sent"}
    duplicates = {mid for mid, n in arrivals.items() if n > 1}
    # SMTP has no idempotency key: a duplicate is inherent, but only for a message in flight at a kill.
    assert duplicates <= caught
    assert {mid for mid, (_, attempts) in table.items() if attempts > 1} == caught
    record_property("smtp_duplicates", len(duplicates))
    print(
        f"\n[{backend.name}] SMTP: {killed} kills, {len(caught)} messages in flight at a kill, "
        f"{len(duplicates)} arrived twice (same Message-ID)"
    )
