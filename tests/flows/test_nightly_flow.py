"""The `nightly` chain and `backfill`: ingest, quality, reconcile, and the send gate they decide."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.settings import make_engine
from crm.simulator import FaultConfig
from flows.backfill import backfill
from flows.ingest import ingest
from flows.nightly import nightly
from models.gate import day_verdicts
from models.ingest import ingest_batches
from tests.flows.conftest import simulate_company


def test_a_clean_night_opens_the_send_gate(sqlite_backend):
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=250, days=10)
    result = nightly(as_of=summary.last_day)
    assert result["ingest"] == "Completed"
    assert result["send_gate_open"], result["reasons"]


def test_lost_loan_statuses_close_the_gate_of_the_night(sqlite_backend):
    # The source holds current state only: ingest mid-way, then let statuses change unseen.
    faults = FaultConfig(rate=0.0, dropped_status_share=0.3)
    first = simulate_company(
        sqlite_backend.source_url, sqlite_backend.landing_url, customers=300, days=15, faults=faults
    )
    ingest(as_of=first.last_day)
    summary = simulate_company(
        sqlite_backend.source_url, sqlite_backend.landing_url, customers=300, days=15, faults=faults
    )
    state = nightly(as_of=summary.last_day, force=True, return_state=True)  # 15 days after the last ingest
    assert state.name == "GateClosed"
    result = state.result()
    assert not result["send_gate_open"]
    assert any(reason.startswith("reconciliation") for reason in result["reasons"])


def test_a_backfill_runs_every_day_of_the_range_once(sqlite_backend):
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=150, days=4)
    start = summary.last_day - timedelta(days=1)
    outcomes = backfill(job="ingest", start=start, end=summary.last_day)
    assert [o["as_of"] for o in outcomes] == [start.isoformat(), summary.last_day.isoformat()]
    with make_engine(sqlite_backend.warehouse_url).connect() as conn:
        days = set(conn.execute(select(ingest_batches.c.as_of).distinct()).scalars())
    assert days == {start, summary.last_day}


@pytest.mark.slow
def test_the_demo_runs_the_nightly_chain_on_the_embedded_default(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli import app

    for name in ("CRM_WAREHOUSE_URL", "CRM_SOURCE_URL", "CRM_LANDING_URL", "CRM_REPORTS_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("CRM_HOME", str(home))
    result = CliRunner().invoke(app, ["demo", "--customers", "300", "--days", "12", "--nights", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("send gate OPEN") == 2
    assert (home / "warehouse.db").exists() and (home / "source.db").exists()
    assert list((home / "reports" / "data-docs").rglob("index.html"))
    last_day = result.output.split("nightly ")[-1].split(":")[0]
    report = CliRunner().invoke(app, ["report", "--as-of", last_day])
    assert report.exit_code == 0 and "db:payments" in report.output and f"send gate {last_day}: OPEN" in report.output


def test_misplaced_files_close_the_gate_and_the_night_exits_2(sqlite_backend):
    # Issue 8: a misnamed file made `nightly` exit 1 while both verdicts said fit.
    from typer.testing import CliRunner

    from cli import app
    from crm.core.storage import open_store

    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=150, days=4)
    zone = open_store(sqlite_backend.landing_url)
    day = summary.last_day.isoformat()
    zone.write_bytes("app_events/events-final(2).csv", b"event_id\n")
    zone.write_bytes(f"app_event/app_events_{day}.csv", b"event_id\n")

    result = CliRunner().invoke(app, ["run", "nightly", "--as-of", day])
    assert result.exit_code == 2, result.output
    assert "send gate closed" in result.output and "failed_files" in result.output
    with make_engine(sqlite_backend.warehouse_url).connect() as conn:
        verdicts = dict(conn.execute(select(day_verdicts.c.check_name, day_verdicts.c.fit_for_sending)).all())
    assert verdicts == {"quality": False, "reconciliation": True}
