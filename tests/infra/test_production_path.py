"""The production path of infra/README.md, for real: a Prefect server on PostgreSQL, the warehouse on
PostgreSQL, landing and reports on S3, `infra/prefect-setup.sh`, `prefect deploy --all` from
prefect.yaml, a process worker, and the nightly deployment triggered for a simulated day, checked
through the Prefect API (flow run, subflow runs, artifacts, names and states)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port, _postgres_database
from tests.simulated import simulate_company

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# The subflows a night runs, by flow name, and the artifacts the night must leave.
NIGHT_SUBFLOWS = {"ingest", "quality", "reconcile", "delivery-reports", "segments", "loyalty", "campaigns", "dispatch"}
NIGHT_ARTIFACTS = {"send-gate", "night-summary", "ingest-summary", "reconciliation-summary", "segments-summary"}

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _healthy(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_nightly_runs_from_its_deployment_on_a_worker_against_postgres_and_s3(tmp_path, s3_bucket, httpserver):
    prefect_db, warehouse, source = _postgres_database(), _postgres_database(), _postgres_database()
    prefect_url, warehouse_url, source_url = next(prefect_db), next(warehouse), next(source)
    landing = f"s3://{s3_bucket('landing')}/exports"
    reports = f"s3://{s3_bucket('reports')}/crm"
    summary = simulate_company(source_url, landing, customers=200, days=5)
    day = summary.last_day.isoformat()

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CRM_"))},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_url.replace("+psycopg", "+asyncpg"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "CRM_REPO_DIR": str(ROOT),
        "CRM_HOME": str(tmp_path / "home"),
        "CRM_WAREHOUSE_URL": warehouse_url,
        "CRM_SOURCE_URL": source_url,
        "CRM_LANDING_URL": landing,
        "CRM_REPORTS_URL": reports,
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        _wait(lambda: _healthy(api), 180, "the Prefect server")
        _run(["bash", "infra/prefect-setup.sh"], env)
        _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env)
        httpserver.expect_request("/alerts", method="POST").respond_with_data("ok")
        _run([sys.executable, "infra/notifications.py"], env | {"CRM_ALERT_WEBHOOK_URL": httpserver.url_for("/alerts")})
        out = _run([str(BIN / "prefect"), "deployment", "run", "nightly/nightly", "--param", f"as_of={day}"], env)
        run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "crm-process", "--limit", "1"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def finished():
            state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state"]
            return state if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

        state = _wait(finished, 600, "the nightly flow run")
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()
        assert state["type"] == "COMPLETED", state
        assert run["name"] == f"nightly {day}"

        children = httpx.post(
            f"{api}/flow_runs/filter",
            json={"flow_runs": {"parent_flow_run_id": {"operator": "and_", "any_": [run_id]}}},
            timeout=10,
        ).json()
        flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}, timeout=10).json()}
        by_flow = {flows[c["flow_id"]]: c for c in children}
        assert set(by_flow) >= NIGHT_SUBFLOWS, sorted(by_flow)
        for name in NIGHT_SUBFLOWS:
            assert by_flow[name]["state"]["type"] == "COMPLETED", (name, by_flow[name]["state"])
            assert day in by_flow[name]["name"], by_flow[name]["name"]

        run_ids = [run_id, *[c["id"] for c in children]]
        artifacts = httpx.post(
            f"{api}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": run_ids}}}, timeout=10
        ).json()
        assert {a["key"] for a in artifacts} >= NIGHT_ARTIFACTS, sorted({a["key"] for a in artifacts})

        task_runs = httpx.post(
            f"{api}/task_runs/filter", json={"task_runs": {"flow_run_id": {"any_": run_ids}}}, timeout=10
        ).json()
        unreadable = [t["name"] for t in task_runs if re.search(r"-[0-9a-f]{3}$", t["name"])]
        assert task_runs and not unreadable, unreadable
        assert not httpserver.log, "a completed night sent an alert"

        # A run the day guard refuses fails; the automation calls the webhook with its one-line reason.
        _run([str(BIN / "prefect"), "deployment", "run", "ingest/ingest", "--param", "as_of=2099-01-01"], env)
        _wait(lambda: httpserver.log, 240, "the failure alert on the webhook")
        alert = httpserver.log[0][0].get_json()
        assert "ingest 2099-01-01" in alert["text"] and "Failed" in alert["subject"], alert
    finally:
        for process in (worker, server):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        for gen in (prefect_db, warehouse, source):
            gen.close()
