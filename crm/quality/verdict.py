"""The quality half of the send gate: fit for sending unless a critical expectation failed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from crm.quality.suites import Severity


@dataclass(frozen=True)
class QualityVerdict:
    """Whether the day's data may drive sends, with a one-paragraph reason."""

    fit_for_sending: bool
    summary: str
    critical_failures: int
    warning_failures: int


def _failure_text(row: dict) -> str:
    column = f" on {row['column_name']}" if row.get("column_name") and row.get("rule") not in ("schema",) else ""
    count = f", {row['unexpected_count']:,} rows" if row.get("unexpected_count") else ""
    examples = json.loads(row.get("unexpected_examples") or "[]")
    example = f", e.g. {examples[0]}" if examples else ""
    return f"{row['suite']}: {row['rule']}{column}{count}{example}"


def quality_verdict(rows: list[dict], as_of: date, *, shown: int = 5) -> QualityVerdict:
    """Fit for sending unless a critical expectation failed; the summary names the failures by rule."""
    failed = [r for r in rows if not r["success"]]
    critical = [r for r in failed if r["severity"] == Severity.CRITICAL]
    warnings = [r for r in failed if r["severity"] != Severity.CRITICAL]
    suites = len({r["suite"] for r in rows})
    if not rows:
        return QualityVerdict(False, f"no expectation ran for {as_of}", 0, 0)
    if critical:
        listed = "; ".join(_failure_text(r) for r in critical[:shown])
        more = f"; and {len(critical) - shown} more" if len(critical) > shown else ""
        tail = f" ({len(warnings)} warning(s) too)" if warnings else ""
        summary = f"{len(critical)} critical expectation(s) failed for {as_of}: {listed}{more}{tail}."
        return QualityVerdict(False, summary, len(critical), len(warnings))
    if warnings:
        listed = "; ".join(_failure_text(r) for r in warnings[:shown])
        more = f"; and {len(warnings) - shown} more" if len(warnings) > shown else ""
        summary = f"No critical failure in {len(rows)} expectations of {suites} suites for {as_of}; {len(warnings)} warning(s): {listed}{more}."
        return QualityVerdict(True, summary, 0, len(warnings))
    return QualityVerdict(True, f"All {len(rows)} expectations of {suites} suites passed for {as_of}.", 0, 0)
