"""The `campaigns` flow through Prefect and the CLI, on SQLite and PostgreSQL: it plans a day into the outbox and
publishes its reports (a chart in the reports location), refuses a closed gate (exit 2), records a forced plan,
and `crm campaigns restore` brings a purged customer back."""

from __future__ import annotations

import json
from datetime import date, timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from typer.testing import CliRunner

from cli import app
from flows.campaigns import campaigns
from models.campaigns import campaign_runs, purged_customers
from models.sending import outbox
from tests.campaigns import seed_customers, table, write_campaigns
from tests.sending import set_gate, warehouse

D0 = date(2026, 3, 2)


def _artifacts(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data if isinstance(a.data, str) else json.dumps(a.data) for a in found}


def test_campaigns_flow_plans_reports_refuses_and_records_a_force(backend, tmp_path, monkeypatch):
    engine = warehouse(backend.warehouse_url)
    seed_customers(engine, range(1, 41), registered_at="2026-03-01 10:00", day=D0)
    folder = write_campaigns(
        tmp_path / "campaigns",
        {
            "id": "hello",
            "holdout_share": 0.25,
            "audience": {"trigger": "registered", "days_after": 1},
            "steps": [{"day": 0, "cascade": ["push", "email", "sms"], "template_id": "hello-1"}],
        },
    )
    monkeypatch.setenv("CRM_CAMPAIGNS_DIR", str(folder))
    set_gate(engine, D0)
    state = campaigns(as_of=D0, return_state=True)
    outcome = state.result()
    assert state.is_completed() and outcome["planned"] > 20 and not outcome["refused"]
    assert len(table(engine, outbox)) == outcome["planned"]
    found = _artifacts(state.state_details.flow_run_id)
    assert {"campaigns-plan", "campaign-funnel", "campaign-uplift", "crm-share"} <= set(found)
    assert "@example.com" not in "".join(found.values())  # no address in any artifact
    assert "SMS the cascade saved" in found["campaign-funnel"]

    runner = CliRunner()
    closed_day = D0 + timedelta(days=1)
    set_gate(engine, closed_day, fit=False)
    closed = runner.invoke(app, ["run", "campaigns", "--as-of", closed_day.isoformat()])
    assert closed.exit_code == 2, closed.output
    assert "send gate closed" in closed.output and "nothing planned" in closed.output
    forced = runner.invoke(app, ["run", "campaigns", "--as-of", closed_day.isoformat(), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "forced" in forced.output
    runs = table(engine, campaign_runs).sort_values("started_at")
    assert runs["refused"].tolist() == [False, True, False] and runs["forced"].tolist() == [False, False, True]

    # Restore from the command line (a purge row as a deep-churn run would leave it).
    with engine.begin() as conn:
        conn.execute(
            purged_customers.insert().values(
                customer_id=5, purged_on=D0, reason="deep_churn_no_response", campaign_id="x", archive_key="k"
            )
        )
    restored = runner.invoke(app, ["campaigns", "restore", "--as-of", closed_day.isoformat(), "--customer", "5"])
    assert restored.exit_code == 0, restored.output
    assert "restored 1 customer" in restored.output
    assert table(engine, purged_customers)["restored_on"].notna().all()
