"""The `quality` flow end to end on a simulated company, on SQLite and PostgreSQL, Data Docs to a folder and to S3."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from crm.core.contracts import SOURCE_ENTITIES
from crm.core.gate import read_send_gate
from crm.core.settings import get_settings, make_engine
from crm.simulator import FaultConfig
from flows.ingest import ingest
from flows.quality import quality
from models.ingest import landing_files
from models.quality import quality_results
from tests.simulated import START, ingest_days, simulate_company

CUSTOMERS, DAYS = 250, 11


def ingest_history(until: date) -> None:
    """Ingest every day from START to `until` one by one, without Prefect (fast), like nightly runs would."""
    ingest_days(START, until)


def simulate_and_ingest(backend, faults=None) -> date:
    """A simulated company with every day but the last ingested quietly, and the last by the `ingest` flow."""
    summary = simulate_company(backend.source_url, backend.landing_url, customers=CUSTOMERS, days=DAYS, faults=faults)
    day = summary.last_day
    ingest_history(day - timedelta(days=1))
    ingest(as_of=day, return_state=True)  # a rejected file fails the ingest run; quality still judges the day
    return day


def stored_results(url: str, day: date) -> list[dict]:
    with make_engine(url).connect() as conn:
        return [dict(r) for r in conn.execute(select(quality_results).where(quality_results.c.as_of == day)).mappings()]


def test_a_clean_day_passes_every_suite_and_is_fit_for_sending(backend):
    day = simulate_and_ingest(backend)

    out = quality(as_of=day)

    assert out["failures"] == [], json.dumps(out["failures"], indent=1, default=str)
    assert out["fit_for_sending"] and out["critical_failures"] == 0 and out["warning_failures"] == 0
    rows = stored_results(backend.warehouse_url, day)
    assert len(rows) == out["expectations"] > 100 and all(r["success"] for r in rows)
    assert {r["suite"] for r in rows} == {e.name for e in SOURCE_ENTITIES} | {
        "app_events",
        "message_events",
        "ingestion",
    }
    assert any(r["expectation"].startswith("expect_table_row_count_to_be_between(rule=volume") for r in rows)
    with make_engine(backend.warehouse_url).connect() as conn:
        gate = read_send_gate(conn, day)
    assert not any(reason.startswith("quality") for reason in gate.reasons)

    docs = Path(out["data_docs"])
    assert docs == Path(get_settings().reports).resolve() / "data-docs" / day.isoformat() / "index.html"
    assert docs.exists() and list((docs.parent / "validations").rglob("*.html"))
    health = {h["integration"]: h for h in out["integration_health"]}
    assert {f"db:{e.name}" for e in SOURCE_ENTITIES} <= set(health)
    assert any(name.startswith("file:message_events/") for name in health)
    assert all(h["status"] != "many errors" for h in health.values())

    again = quality(as_of=day)  # a re-run replaces the day's rows
    assert len(stored_results(backend.warehouse_url, day)) == again["expectations"] == out["expectations"]


def test_a_faulty_day_fails_by_rule_with_examples_and_closes_the_gate(backend):
    day = simulate_and_ingest(backend, faults=FaultConfig(rate=0.03, malformed_file=True))

    out = quality(as_of=day)

    assert not out["fit_for_sending"] and out["critical_failures"] > 0
    failures = {(f["suite"], f["rule"]): f for f in out["failures"]}
    quarantine = failures[("ingestion", "quarantine_share_critical")]
    assert quarantine["severity"] == "critical" and quarantine["examples"]
    shown = " ".join(quarantine["examples"])
    assert "rule=" in shown and "example=" in shown
    quarantine_rules = set(re.findall(r"rule=(\w+)", shown))
    assert quarantine_rules & {"required", "type", "not_in_future", "known_reference", "non_negative"}, shown
    failed_file = failures[("ingestion", "failed_files")]
    with make_engine(backend.warehouse_url).connect() as conn:
        rejected = (
            conn.execute(select(landing_files.c.file_key).where(landing_files.c.status == "failed")).scalars().all()
        )
        gate = read_send_gate(conn, day)
    assert rejected and any(key in " ".join(failed_file["examples"]) for key in rejected)

    rows = stored_results(backend.warehouse_url, day)
    bad = [r for r in rows if not r["success"]]
    assert bad and all(json.loads(r["unexpected_examples"]) for r in bad)
    # quality_results keeps each result's rule: the stored failures are the reported ones, by rule name.
    assert {(r["suite"], r["rule"]) for r in bad} == set(failures)
    assert not gate.is_open and any(
        reason.startswith("quality: ") and "quarantine_share_critical" in reason for reason in gate.reasons
    )
    health = {h["integration"]: h for h in out["integration_health"]}
    assert any(h["status"] == "many errors" and h["top_reasons"] for h in health.values())


def test_data_docs_are_written_to_s3(sqlite_backend, s3_bucket, monkeypatch):
    import boto3

    bucket = s3_bucket("reports")
    monkeypatch.setenv("CRM_REPORTS_URL", f"s3://{bucket}/crm")
    summary = simulate_company(sqlite_backend.source_url, sqlite_backend.landing_url, customers=150, days=4)
    day = summary.last_day
    ingest_history(day)

    out = quality(as_of=day)

    assert out["data_docs"] == f"s3://{bucket}/crm/data-docs/{day}/index.html"
    keys = [
        o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"crm/data-docs/{day}/")["Contents"]
    ]
    assert f"crm/data-docs/{day}/index.html" in keys
    assert any(k.startswith(f"crm/data-docs/{day}/validations/") and k.endswith(".html") for k in keys)
    page = boto3.client("s3").get_object(Bucket=bucket, Key=f"crm/data-docs/{day}/index.html")["Body"].read()
    assert b"<html" in page.lower()
