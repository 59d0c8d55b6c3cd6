"""The `segments` flow and `crm run segments` end to end on a simulated company, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from typer.testing import CliRunner

from cli import app
from crm.core.contracts import CUSTOMER_CONTACTS
from crm.core.db import read_frame
from crm.core.gate import Check, record_verdict
from crm.core.settings import make_engine
from crm.ingest import record_versions
from crm.segments import segment_snapshot
from flows.segments import segments
from tests.flows.conftest import START, simulate_company
from tests.simulated import ingest_days


def artifacts(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data if isinstance(a.data, str) else json.dumps(a.data) for a in found}


def test_segments_flow_reports_sizes_transitions_and_says_when_data_is_suspect(backend):
    simulate_company(backend.source_url, backend.landing_url, customers=200, days=6)
    last = START + timedelta(days=5)
    ingest_days(START, last)
    day = last - timedelta(days=1)

    state = segments(as_of=day, return_state=True)  # no checks ran for the day: the gate is closed
    first = state.result()
    assert first["mode"] == "full" and first["customers_computed"] > 100 and not first["gate_open"]
    summary = artifacts(state.state_details.flow_run_id)["segments-summary"]
    assert "DATA SUSPECT" in summary and "| lifecycle_substate | never_authorised |" in summary

    engine = make_engine(backend.warehouse_url)
    with engine.begin() as conn:
        for check in Check:
            record_verdict(conn, last, check, fit_for_sending=True, summary="ok")
    state = segments(as_of=last, return_state=True)
    second = state.result()
    assert second["mode"] == "incremental" and second["gate_open"]
    summary = artifacts(state.state_details.flow_run_id)["segments-summary"]
    assert "DATA SUSPECT" not in summary and "Lifecycle transitions" in summary and "day before" in summary
    assert second["chart"] and Path(second["chart"]).read_bytes()[:4] == b"\x89PNG"

    # A stored day again: recomputed and compared, nothing written (exit 0 when identical).
    result = CliRunner().invoke(app, ["run", "segments", "--as-of", day.isoformat()])
    assert result.exit_code == 0, result.output
    assert f"segments {day} recheck" in result.output

    # A correction loaded later for that day (a push token with consent) makes the recheck a finding.
    with engine.connect() as conn:
        snap = read_frame(conn, segment_snapshot(day))
    who = int(snap[~snap["reachable_push"] & ~snap["is_technical"]]["customer_id"].iloc[0])
    contact = {"customer_id": who, "channel": "push", "address": "token", "is_consented": True}
    with engine.begin() as conn:
        record_versions(conn, CUSTOMER_CONTACTS, pd.DataFrame([{**contact, "updated_at": pd.Timestamp(day)}]), last)
    result = CliRunner().invoke(app, ["run", "segments", "--as-of", day.isoformat()])
    assert result.exit_code == 2, result.output
    assert "1 customers differ from the stored day" in result.output
