"""Markdown for the dispatch artifacts: what was sent, skipped and why, retries, spend; never an address."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd

from crm.core.markdown import Col, markdown_table, money, num
from crm.sending.io import DispatchDecision


def refusal_markdown(decision: DispatchDecision) -> str:
    """Why a dispatch sent nothing for its day."""
    lines = [f"# Dispatch {decision.as_of}: REFUSED ({decision.refusal})", ""]
    lines += [f"- {reason}" for reason in decision.reasons]
    lines += [
        "",
        "Nothing was sent. A closed gate opens when quality and reconciliation pass for the day "
        "(`--force-closed-gate` sends anyway and is recorded); a past day sends only with `--send-past-days`.",
    ]
    return "\n".join(lines)


def dispatch_markdown(
    decision: DispatchDecision,
    runs: Sequence[dict],
    funnel: pd.DataFrame,
    skips: pd.DataFrame,
) -> str:
    """The run's summary: per provider what was claimed, re-sent, sent, failed, skipped; per campaign step the funnel."""
    sent = sum(r["sent"] for r in runs)
    failed = sum(r["failed"] for r in runs)
    skipped = sum(sum(r["skipped"].values()) for r in runs)
    lines = [f"# Dispatch {decision.as_of}: {sent:,} sent, {failed:,} failed, {skipped:,} skipped", ""]
    if decision.forced_closed_gate:
        lines += ["**Sent although the send gate was closed** (forced; recorded in `dispatch_runs`):", ""]
        lines += [f"- {reason}" for reason in decision.reasons] + [""]
    else:
        lines += ["Send gate: OPEN.", ""]
    rows = [
        r
        | {
            "channels": ", ".join(r["channels"]),
            "skipped_total": sum(r["skipped"].values()),
        }
        for r in runs
    ]
    lines += markdown_table(
        rows,
        [
            "provider",
            "channels",
            num("claimed"),
            num("resent", "re-sent after a kill (same id)"),
            num("sent"),
            num("rejected"),
            num("unavailable"),
            num("retried_requests", "retried requests"),
            num("skipped_total", "skipped"),
            num("waiting", "waiting (quiet hours)"),
        ],
    )
    if len(skips):
        by_reason = skips.groupby(["channel", "skip_reason"], as_index=False)["messages"].sum()
        lines += ["", "## Skipped, by reason", ""]
        lines += markdown_table(
            by_reason.to_dict("records"), ["channel", Col("skip_reason", "reason"), num("messages")]
        )
    if len(funnel):
        lines += ["", f"## Messages planned for {decision.as_of}, by campaign step", ""]
        lines += markdown_table(
            funnel.to_dict("records"),
            [
                Col("campaign_id", "campaign"),
                num("step"),
                "channel",
                num("messages"),
                num("sent"),
                num("failed"),
                num("skipped"),
                num("planned", "still planned"),
                Col("cost_minor", "spend", right=True, fmt=money),
            ],
        )
    return "\n".join(lines)


def delivery_reports_markdown(as_of: date, counts: dict[str, int]) -> str:
    """How many outbox messages each kind of delivery report touched."""
    rows = [{"report": k, "messages": v} for k, v in counts.items() if k != "states"]
    lines = [f"# Delivery reports applied to the outbox, {as_of}", ""]
    lines += markdown_table(rows, ["report", num("messages")])
    lines += ["", f"Messages whose state moved forward: {counts.get('states', 0):,}."]
    return "\n".join(lines)
