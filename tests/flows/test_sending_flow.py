"""The `dispatch` flow through Prefect, on SQLite and PostgreSQL: it sends a day once under the provider's
concurrency limit, refuses a closed gate or a past day (CLI exits 2 and 3), records a forced send."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.concurrency.sync import concurrency
from sqlalchemy import select
from typer.testing import CliRunner

from cli import app
from crm.simulator import LocalProvider
from flows.sending import delivery_reports, dispatch
from models.sending import dispatch_runs
from tasks.sending import ensure_provider_limits
from tests.flows.test_ui import _logs
from tests.sending import DAY, mark_ingested, seed_outbox, set_gate


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    """A local HTTP provider every channel is configured to send through, with its Prefect limit."""
    with LocalProvider() as local:
        config_dir = tmp_path / "config"
        config_dir.mkdir()
        (config_dir / "sending.yaml").write_text(
            "providers:\n"
            "  local-gw:\n"
            "    kind: http\n"
            f"    url: {local.url}/messages\n"
            f"    batch_url: {local.url}/messages/batch\n"
            "    batch_size: 8\n"
            "channels:\n"
            "  push: {provider: local-gw, cost_minor: 1}\n"
            "  email: {provider: local-gw, cost_minor: 3}\n"
            "  sms: {provider: local-gw, cost_minor: 150}\n"
        )
        monkeypatch.setenv("CRM_CONFIG_DIR", str(config_dir))
        assert ensure_provider_limits() == ["provider-local-gw"]
        yield local


def artifacts(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data if isinstance(a.data, str) else json.dumps(a.data) for a in found}


def test_dispatch_sends_the_day_once_and_publishes_a_summary_without_addresses(backend, gateway):
    engine = seed_outbox(backend.warehouse_url, range(1, 21))
    state = dispatch(as_of=DAY, return_state=True)
    outcome = state.result()
    assert state.is_completed() and state.name == "Completed"
    assert (outcome["sent"], outcome["failed"], outcome["skipped"], outcome["refused"]) == (20, 0, 0, None)
    assert gateway.stats()["delivered"] == 20
    published = artifacts(state.state_details.flow_run_id)
    assert {"dispatch-summary", "delivery-reports"} <= set(published)
    summary = published["dispatch-summary"]
    assert "# Dispatch 2026-02-10: 20 sent, 0 failed, 0 skipped" in summary
    assert "| reactivation | 1 | sms | 20 | 20 | 0 | 0 | 0 | 30.00 |" in summary
    assert "+38067" not in summary

    again = dispatch(as_of=DAY)
    assert again["sent"] == 0 and gateway.stats()["delivered"] == 20
    with engine.connect() as conn:
        runs = conn.execute(select(dispatch_runs.c.provider, dispatch_runs.c.sent)).all()
    assert sorted(sent for _, sent in runs) == [0, 20] and {p for p, _ in runs} == {"local-gw"}


def test_a_run_waits_while_another_holds_the_providers_slot(sqlite_backend, gateway):
    seed_outbox(sqlite_backend.warehouse_url, range(1, 4))
    outcome = {}
    with concurrency("provider-local-gw", occupy=1, strict=True):  # another dispatch is sending
        worker = threading.Thread(target=lambda: outcome.update(dispatch(as_of=DAY)))
        worker.start()
        time.sleep(4)
        assert worker.is_alive() and gateway.stats()["requests"] == 0
    worker.join(timeout=120)
    assert outcome["sent"] == 3 and gateway.stats()["delivered"] == 3
    # Leave the slot free for the next test (a release is processed by the server a moment later).
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while client.read_global_concurrency_limit_by_name("provider-local-gw").active_slots:
            assert time.monotonic() < deadline, "the slot was never released"
            time.sleep(0.2)


def test_a_closed_gate_refuses_and_a_forced_send_is_recorded(sqlite_backend, gateway, logs_to_the_api):
    engine = seed_outbox(sqlite_backend.warehouse_url, range(1, 6))
    set_gate(engine, DAY, fit=False)
    refused = dispatch(as_of=DAY, return_state=True)
    assert refused.name == "Refused" and refused.result()["refused"] == "gate_closed"
    assert gateway.stats()["requests"] == 0
    assert "REFUSED (gate_closed)" in artifacts(refused.state_details.flow_run_id)["dispatch-summary"]
    warnings = [log.message for log in _logs(refused.state_details.flow_run_id)]
    assert any("refused (gate_closed)" in m for m in warnings), warnings  # a WARNING line, not only a state

    forced = dispatch(as_of=DAY, force_closed_gate=True, return_state=True)
    assert forced.is_completed() and forced.result()["sent"] == 5 and forced.result()["forced_closed_gate"]
    assert "Sent although the send gate was closed" in artifacts(forced.state_details.flow_run_id)["dispatch-summary"]
    with engine.connect() as conn:
        assert conn.execute(select(dispatch_runs.c.forced_closed_gate)).scalars().all() == [True]


def test_the_cli_exits_2_on_a_closed_gate_3_on_a_past_day_and_0_when_sent(sqlite_backend, gateway):
    engine = seed_outbox(sqlite_backend.warehouse_url, range(1, 4))
    runner = CliRunner()
    set_gate(engine, DAY, fit=False)
    closed = runner.invoke(app, ["run", "dispatch", "--as-of", DAY.isoformat()])
    assert closed.exit_code == 2, closed.output
    assert "send gate closed: quality: test: broken" in closed.output
    set_gate(engine, DAY)
    mark_ingested(engine, DAY + timedelta(days=1))
    past = runner.invoke(app, ["run", "dispatch", "--as-of", DAY.isoformat()])
    assert past.exit_code == 3, past.output
    assert "before the newest ingested day" in past.output
    assert gateway.stats()["requests"] == 0
    asked = runner.invoke(app, ["run", "dispatch", "--as-of", DAY.isoformat(), "--send-past-days"])
    assert asked.exit_code == 0, asked.output
    assert "dispatch 2026-02-10: 3 sent, 0 failed, 0 skipped" in asked.output
    assert gateway.stats()["delivered"] == 3


def test_a_provider_without_its_concurrency_limit_fails_at_once_instead_of_sending_unguarded(
    sqlite_backend, tmp_path, monkeypatch
):
    seed_outbox(sqlite_backend.warehouse_url, range(1, 3))
    config_dir = tmp_path / "nolimit"
    config_dir.mkdir()
    (config_dir / "sending.yaml").write_text(
        "providers:\n  unguarded: {kind: file}\nchannels:\n  sms: {provider: unguarded, cost_minor: 150}\n"
    )
    monkeypatch.setenv("CRM_CONFIG_DIR", str(config_dir))
    state = dispatch(as_of=DAY, return_state=True)
    assert state.is_failed()
    assert "unguarded" in state.message


def test_delivery_reports_flow_runs_for_a_day(sqlite_backend):
    seed_outbox(sqlite_backend.warehouse_url, range(1, 3))
    counts = delivery_reports(as_of=DAY)
    assert counts == {"sent": 0, "delivered": 0, "failed": 0, "opened": 0, "clicked": 0, "unsubscribed": 0, "states": 0}


def test_the_gateway_token_comes_from_a_prefect_secret_block_and_a_missing_block_is_named(
    sqlite_backend, tmp_path, monkeypatch
):
    seed_outbox(sqlite_backend.warehouse_url, range(1, 4))
    with LocalProvider(bearer_token="tok-from-block") as local:
        config_dir = tmp_path / "secret"
        config_dir.mkdir()
        (config_dir / "sending.yaml").write_text(
            "providers:\n"
            "  guarded-gw:\n"
            "    kind: http\n"
            f"    url: {local.url}/messages\n"
            "    token: {secret_block: gw-token-test}\n"
            "channels:\n"
            "  sms: {provider: guarded-gw, cost_minor: 150}\n"
        )
        monkeypatch.setenv("CRM_CONFIG_DIR", str(config_dir))
        ensure_provider_limits()
        missing = dispatch(as_of=DAY, return_state=True)
        assert missing.is_failed()
        assert "provider guarded-gw: token not found in the Secret block gw-token-test" in missing.message
        assert local.stats()["requests"] == 0

        Secret(value="tok-from-block").save("gw-token-test", overwrite=True)
        sent = dispatch(as_of=DAY, return_state=True)
        assert sent.is_completed() and sent.result()["sent"] == 3
        stats = local.stats()
        assert (stats["delivered"], stats["faults"]) == (3, {})  # never refused: the token was sent
