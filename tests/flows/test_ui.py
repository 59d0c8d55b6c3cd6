"""Issue 9: what the Prefect UI shows, read back through the Prefect API: run and task states, the
state messages, the artifacts' keys and descriptions, and the log lines at WARNING and ERROR."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from prefect.runtime import flow_run
from prefect.states import Scheduled

from crm.core.storage import open_store
from crm.simulator import FaultConfig
from flows.ingest import ingest
from flows.nightly import nightly
from flows.quality import quality
from tasks.common import run_name
from tests.flows.conftest import simulate_company

# These tests read the runs' logs back from the server (the suite leaves shipping them off).
pytestmark = pytest.mark.usefixtures("logs_to_the_api")


def _artifacts(flow_run_id) -> dict:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found if a.key}


def _task_states(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: r.state for r in runs}


def _logs(flow_run_id, min_level: int = 30) -> list:
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log for log in logs if log.level >= min_level]


def test_a_rejected_file_fails_its_loading_task_and_a_closed_gate_names_quality(sqlite_backend):
    summary = simulate_company(
        sqlite_backend.source_url,
        sqlite_backend.landing_url,
        customers=150,
        days=4,
        faults=FaultConfig(rate=0.0, malformed_file=True),
    )
    day = summary.last_day
    state = ingest(as_of=day, return_state=True)
    run_id = state.state_details.flow_run_id
    assert state.is_failed() and "rejected" in state.message
    tasks = _task_states(run_id)
    assert tasks["load app_events landing files"].is_failed()  # red where the fault is
    assert all(not name.endswith(tuple("0123456789abcdef")) or name[-4] != "-" for name in tasks), tasks  # no hash
    assert {"ingest-counts", "ingest-summary", "ingest-progress"} <= set(_artifacts(run_id))
    counts = _artifacts(run_id)["ingest-counts"]
    first = counts.data if isinstance(counts.data, str) else str(counts.data)
    assert "binary content" in first  # the reason column is there

    checked = quality(as_of=day, return_state=True)
    assert checked.name == "GateClosed" and "send gate closed" in checked.message
    warnings = [log.message for log in _logs(checked.state_details.flow_run_id)]
    assert any("failed_files" in m for m in warnings), warnings
    assert {"quality-summary", "quality-ingestion", "integration-health"} <= set(
        _artifacts(checked.state_details.flow_run_id)
    )


def test_heavy_quarantine_and_a_misplaced_file_name_the_tasks_that_met_them(sqlite_backend):
    summary = simulate_company(
        sqlite_backend.source_url, sqlite_backend.landing_url, customers=150, days=2, faults=FaultConfig(rate=0.05)
    )
    day = summary.last_day
    open_store(sqlite_backend.landing_url).write_bytes(f"app_event/app_events_{day}.csv", b"x\n")  # no such folder
    state = ingest(as_of=day, return_state=True)
    run_id = state.state_details.flow_run_id
    assert state.is_failed() and "misplaced" in state.message
    tasks = _task_states(run_id)
    found = tasks[f"find landing files up to {day}"]
    assert found.name == "Misplaced" and "app_event/app_events_" in found.message
    heavy = {name: s for name, s in tasks.items() if s.name == "Quarantined"}
    assert heavy, {name: s.name for name, s in tasks.items()}  # not green where rows were quarantined
    assert all("quarantine above the warning share" in s.message for s in heavy.values())
    warnings = [log.message for log in _logs(run_id) if log.task_run_id is not None]
    assert any("quarantine above the warning share" in m for m in warnings), warnings
    assert any("misplaced" in m for m in warnings), warnings


def test_a_scheduled_run_without_a_day_is_named_by_the_business_day_before_its_start(sqlite_backend, monkeypatch):
    from prefect.flow_engine import run_flow

    @flow(name="probe-run-name", flow_run_name=run_name("probe"))
    def probe(as_of: date | None = None) -> str:
        return flow_run.name

    # 01:30 on 2 March in the business zone (UTC+5) is 20:30 UTC on 1 March: its business day is 1 March.
    monkeypatch.setenv("CRM_BUSINESS_TIMEZONE", "Asia/Yekaterinburg")
    start = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)
    with get_client(sync_client=True) as client:
        created = client.create_flow_run(probe, parameters={}, state=Scheduled(scheduled_time=start))
        assert run_flow(probe, flow_run=created) == "probe 2026-03-01"
        assert client.read_flow_run(created.id).name == "probe 2026-03-01"
    given = probe(as_of=date(2026, 2, 14), return_state=True)
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(given.state_details.flow_run_id).name == "probe 2026-02-14"


@pytest.mark.slow
def test_the_nightly_run_shows_the_gate_once_and_links_the_subflows_artifacts(sqlite_backend):
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=150, days=4)
    state = nightly(as_of=summary.last_day, return_state=True)
    assert state.name == "Completed" and state.message.startswith(f"send gate OPEN for {summary.last_day}")
    card = _artifacts(state.state_details.flow_run_id)["send-gate"]
    assert card.description.startswith("send gate OPEN")
    assert "# Send gate" in card.data and "OPEN" in card.data
    for key in ("ingest-summary", "quality-summary", "reconciliation-summary"):
        assert key in card.data  # reachable from the nightly run
    night = _artifacts(state.state_details.flow_run_id)["night-summary"]
    for key in ("ingest-summary", "quality-summary", "segments-summary", "loyalty-report", "campaigns-plan"):
        assert key in night.data  # every step's first artifact, next to its run

    # A bug in a later job: one ERROR line in the nightly's own log, no nested traceback.
    @flow(name="quality")
    def broken_quality(as_of=None):
        raise RuntimeError("boom in quality")

    import flows.nightly as nightly_module

    original = nightly_module.quality
    nightly_module.quality = broken_quality
    try:
        failed = nightly(as_of=summary.last_day, return_state=True)
    finally:
        nightly_module.quality = original
    assert failed.is_failed() and "quality failed: boom in quality" in failed.message
    errors = _logs(failed.state_details.flow_run_id, min_level=40)
    mine = [log for log in errors if log.task_run_id is None]
    assert [log.message for log in mine] == [failed.message], [log.message for log in mine]  # one line, no traceback
    assert failed.message.startswith(f"nightly {summary.last_day}: quality failed: boom in quality")


def test_a_closed_night_says_closed_and_why_once(sqlite_backend):
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=150, days=4)
    from crm.core.storage import open_store

    open_store(sqlite_backend.landing_url).write_bytes(f"app_event/app_events_{summary.last_day}.csv", b"x\n")
    state = nightly(as_of=summary.last_day, return_state=True)
    assert state.name == "GateClosed" and state.message.startswith("send gate CLOSED")
    card = _artifacts(state.state_details.flow_run_id)["send-gate"]
    assert card.description.startswith(f"send gate CLOSED for {summary.last_day}: quality:")
    reason = state.result()["reasons"][0]
    assert card.data.count(reason) == 1  # the reasons once, not repeated by the jobs' summaries


def test_a_backfill_through_a_deployment_creates_top_level_runs_and_a_summary(sqlite_backend, monkeypatch):
    import tasks.backfill as backfill_tasks
    from flows.backfill import backfill

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("nightly")
        client.create_deployment(flow_id=flow_id, name="nightly-ui-test")
    real = backfill_tasks.run_deployment
    # No worker in tests: create the runs and return at once (they stay Scheduled).
    monkeypatch.setattr(backfill_tasks, "run_deployment", lambda **kw: real(**kw, timeout=0))
    last = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=100, days=3).last_day
    start = last - timedelta(days=1)
    state = backfill(
        job="nightly",
        start=start,
        end=last,
        deployment="nightly/nightly-ui-test",
        return_state=True,
    )
    assert state.message.startswith("0 of 2 days")  # scheduled, not run: the state says so
    backfill_run = state.state_details.flow_run_id
    card = _artifacts(backfill_run)["backfill-nightly"]
    assert card.description.startswith("0 of 2 days") and start.isoformat() in card.data
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(), limit=200)
    days = [r for r in runs if r.deployment_id and r.parameters.get("as_of") in (start.isoformat(), last.isoformat())]
    mine = [r for r in days if r.idempotency_key and r.idempotency_key.startswith("backfill:nightly/nightly-ui-test")]
    assert len(mine) == 2 and all(r.parent_task_run_id is None for r in mine)  # not subflows
