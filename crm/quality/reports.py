"""The quality run's artifacts: a table per suite, the day's summary and integration health, as markdown."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from crm.core.markdown import Col, cell, markdown_table, num, shorten
from crm.quality.health import HealthStatus
from crm.quality.suites import Severity
from crm.quality.verdict import QualityVerdict


def _examples(row: dict) -> str:
    return "; ".join(json.loads(row["unexpected_examples"] or "[]"))


def readable_check(expectation: str) -> str:
    """What an expectation checks, in words: `expect_column_values_to_be_between(column=x, ...)` ->
    `column values to be between`."""
    name = expectation.split("(", 1)[0]
    return name.removeprefix("expect_").replace("_", " ")


EXAMPLES_SHOWN = 3


def suite_table(rows: list[dict], suite: str) -> list[dict]:
    """The rows of one suite as a Prefect table artifact: failures first, the outcome and rule first,
    counts with thousands separators, a few short examples (all of them in `quality_results`)."""
    mine = [r for r in rows if r["suite"] == suite]
    mine.sort(key=lambda r: (r["success"], r["severity"] != Severity.CRITICAL, r["rule"], r["expectation"]))
    out = []
    for r in mine:
        examples = json.loads(r["unexpected_examples"] or "[]")
        shown = "; ".join(shorten(e, 60) for e in examples[:EXAMPLES_SHOWN])
        if len(examples) > EXAMPLES_SHOWN:
            shown += f" (+{len(examples) - EXAMPLES_SHOWN} more)"
        out.append(
            {
                "outcome": "passed" if r["success"] else "FAILED",
                "severity": r["severity"],
                "rule": r["rule"],
                "column": r["column_name"] or "",
                "unexpected": "" if r["unexpected_count"] is None else f"{int(r['unexpected_count']):,}",
                "examples": shown,
                "check": readable_check(r["expectation"]),
            }
        )
    return out


def quality_markdown(rows: list[dict], verdict: QualityVerdict, as_of: date, docs_url: str | None) -> str:
    """The day's quality summary for the Prefect UI: verdict, per-suite counts, failures with examples."""
    columns = ["suite", "success", "severity"]
    frame = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    per_suite = []
    for suite, group in frame.groupby("suite", sort=True):
        passed = group["success"].astype(bool)
        failed = group[~passed]
        per_suite.append(
            {
                "suite": suite,
                "expectations": len(group),
                "passed": int(passed.sum()),
                "critical": int((failed["severity"] == Severity.CRITICAL).sum()),
                "warnings": int((failed["severity"] != Severity.CRITICAL).sum()),
            }
        )
    fit = "Fit for sending" if verdict.fit_for_sending else "NOT fit for sending"
    lines = [f"# Data quality {as_of}", "", f"**{fit}**: {cell(verdict.summary)}", ""]
    lines += markdown_table(
        per_suite, ["suite", num("expectations"), num("passed"), num("critical", "critical failed"), num("warnings")]
    )
    failures = sorted(
        (r for r in rows if not r["success"]),
        key=lambda r: (r["severity"] != Severity.CRITICAL, r["suite"], r["expectation"]),
    )
    if failures:
        shown = [{**r, "column": r["column_name"] or "", "examples": _examples(r)} for r in failures]
        lines += ["", "## Failed expectations", ""]
        lines += markdown_table(
            shown, ["suite", "rule", "column", "severity", num("unexpected_count", "unexpected"), "examples"]
        )
    if docs_url:
        lines += ["", f"Great Expectations Data Docs: `{docs_url}`"]
    return "\n".join(lines)


BADGES = {HealthStatus.OK: "ok", HealthStatus.PROBLEMS: "⚠️ problems", HealthStatus.MANY_ERRORS: "❌ many errors"}


def integration_health_markdown(health: pd.DataFrame, as_of: date) -> str:
    """The morning read for a CRM manager: one line per integration, worst first."""
    counts = health["status"].value_counts() if len(health) else pd.Series(dtype=int)
    rows = [
        {
            **r,
            "status": BADGES[HealthStatus(r["status"])],
            "top_reasons": "<br>".join(cell(n) for n in r["top_reasons"]) if r["top_reasons"] else "",
        }
        for r in health.to_dict("records")
    ]
    lines = [
        f"# Integration health {as_of}",
        "",
        ", ".join(f"**{int(counts.get(s, 0))}** {s}" for s in HealthStatus),
        "",
    ]
    lines += markdown_table(
        rows,
        [
            "integration",
            "status",
            num("rows_read", "read"),
            num("rows_loaded", "loaded"),
            num("rows_quarantined", "quarantined"),
            num("rows_duplicate", "duplicates"),
            Col("top_reasons", "top reasons", fmt=str),
        ],
    )
    lines += [
        "",
        "Status: **many errors** when a file was rejected or misplaced or more than the configured share of rows was "
        "quarantined; **problems** above a smaller share or when a daily feed sent nothing. "
        "Every quarantined row is in `quarantined_rows` with its rule and reason.",
    ]
    return "\n".join(lines)
