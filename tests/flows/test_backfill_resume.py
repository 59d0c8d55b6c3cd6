"""A backfill killed half way (SIGKILL) and run again resumes from the first day not completed and
leaves the warehouse an uninterrupted backfill leaves; no message is sent for a past day."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, inspect, select

from crm.core.settings import make_engine
from flows.backfill import backfill
from models.gate import backfill_days
from models.sending import outbox
from tests.flows.conftest import simulate_company, warehouse_snapshot

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

# Columns stamped with the wall clock or a run's id: they differ between any two runs by design.
WALL_CLOCK = {
    "loaded_at", "started_at", "finished_at", "claimed_at", "sent_at", "skipped_at", "failed_at", "recorded_at",
    "created_at", "computed_at", "run_id", "flow_run_id", "duration_seconds", "seconds", "posted_at", "planned_at",
    "version",  # a landing file's modification time: the two runs read two copies of the same files
}  # fmt: skip


def comparable(url: str) -> dict[str, pd.DataFrame]:
    snapshot = warehouse_snapshot(url)
    out = {}
    for name, frame in snapshot.items():
        if name in ("backfill_days", "alembic_version"):
            continue
        keep = [c for c in frame.columns if c not in WALL_CLOCK and not c.endswith(("_run_id", "_at_wall"))]
        out[name] = frame[keep].sort_values(keep).reset_index(drop=True) if keep else frame
    return out


def test_a_killed_backfill_resumes_and_ends_like_an_uninterrupted_one(tmp_path, sqlite_backend, prefect_server):
    reference = sqlite_backend
    home = tmp_path / "interrupted"
    home.mkdir()
    interrupted_url = f"sqlite:///{home / 'warehouse.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CRM_"))}
    env.update(
        CRM_HOME=str(home),
        CRM_WAREHOUSE_URL=interrupted_url,
        CRM_SOURCE_URL=f"sqlite:///{home / 'source.db'}",
        CRM_LANDING_URL=str(home / "landing"),
        PYTHONPATH=str(ROOT),
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_API_URL=prefect_server,  # the session's server: no ephemeral server started (and killed) per run
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    summary = simulate_company(reference.source_url, reference.landing_url, customers=120, days=5)
    simulate_company(env["CRM_SOURCE_URL"], env["CRM_LANDING_URL"], customers=120, days=5)  # the same company
    first, last = summary.last_day - timedelta(days=1), summary.last_day

    outcomes = backfill(job="nightly", start=first, end=last)
    assert [o["state"] for o in outcomes] in (["Completed", "Completed"], ["GateClosed", "GateClosed"]), outcomes

    command = [
        str(Path(sys.executable).parent / "crm"),
        "backfill",
        "nightly",
        "--start",
        str(first),
        "--end",
        str(last),
    ]
    killed = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    engine = make_engine(interrupted_url)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and killed.poll() is None:
        if inspect(engine).has_table("backfill_days"):
            with engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(backfill_days)).scalar_one() >= 1:
                    break
        time.sleep(0.5)
    assert killed.poll() is None, "the backfill ended before it could be killed: make the range longer"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    # Any child of the killed backfill would outlive the test: end them too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(killed.pid, signal.SIGKILL)
    engine.dispose()

    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode in (0, 2), resumed.stdout + resumed.stderr
    with engine.connect() as conn:
        done = conn.execute(select(backfill_days.c.as_of)).scalars().all()
        sent = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_not(None))).scalar_one()
    assert sorted(done) == [first, last]
    assert sent == 0, "a backfill sent messages for a past day"

    expected, got = comparable(reference.warehouse_url), comparable(interrupted_url)
    assert set(expected) == set(got)
    differ = [name for name in expected if not expected[name].equals(got[name])]
    assert not differ, f"tables that differ from the uninterrupted backfill: {differ}"
