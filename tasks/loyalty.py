"""Loyalty tasks: post each business day into the ledger, check its invariants, publish the report."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from crm.core.settings import get_settings, warehouse_engine
from crm.loyalty import (
    LedgerInvariantViolated,
    LoyaltyConfig,
    days_to_post,
    flows_chart,
    flows_rows,
    post_loyalty_day,
    read_report,
    report_markdown,
    write_report_file,
)
from tasks.common import retry_transient


@task(name="plan-loyalty-days", task_run_name="plan loyalty days to {as_of}", cache_policy=NO_CACHE)
def plan_loyalty_days(as_of: date) -> list[date]:
    """The days this run posts: the days missed since the last run, then `as_of` (a past day: only it)."""
    days = days_to_post(warehouse_engine(), as_of)
    if len(days) > 1:
        get_run_logger().info("catching up %d day(s): %s .. %s", len(days), days[0], days[-1])
    return days


@task(
    name="post-loyalty-day",
    task_run_name="post loyalty ledger {day}",
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_transient,  # one transaction, deterministic keys: a retry adds nothing twice
    cache_policy=NO_CACHE,
)
def post_loyalty_day_task(day: date, config: LoyaltyConfig) -> dict:
    """Post one day: ledger entries, allocations, status account, tiers, events, promotion decisions."""
    engine = warehouse_engine()
    result = post_loyalty_day(engine, engine, day, config)
    get_run_logger().info(
        "%s: %d entries added (%d of the day), %d members touched, %d joined, %d tier changes, %d events",
        day,
        result.entries_added,
        result.entries_of_day,
        result.members_touched,
        result.joined,
        result.tier_changes,
        result.events,
    )
    return asdict(result)


@task(name="check-ledger-invariants", task_run_name="check ledger invariants {day}", cache_policy=NO_CACHE)
def check_ledger_invariants(day: date, result: dict) -> None:
    """Fail the run (a finding) when the day's members break an invariant of the ledger."""
    if result["violations"]:
        raise LedgerInvariantViolated(f"loyalty ledger {day}: invariants violated: " + "; ".join(result["violations"]))


@task(name="publish-loyalty-report", task_run_name="publish loyalty report {as_of}", cache_policy=NO_CACHE)
def publish_loyalty_report(as_of: date, config: LoyaltyConfig, result: dict) -> dict:
    """Liability, flows per day (with a PNG chart), tiers, migration matrix and intersection share as artifacts."""
    settings = get_settings()
    engine = warehouse_engine(settings)
    figures = read_report(engine, engine, as_of, config)
    try:
        chart = write_report_file(
            settings.reports, f"loyalty/{as_of}/cashback-per-day.png", flows_chart(figures["flows"], as_of)
        )
    except Exception as exc:  # the figures matter more than their picture
        get_run_logger().error("the loyalty chart could not be written to %s: %s", settings.reports, exc)
        chart = None
    markdown = report_markdown(
        as_of,
        liability=figures["liability"],
        expiring_30=figures["expiring_30"],
        flows=figures["flows"],
        tiers=figures["tiers"],
        migration=figures["migration"],
        intersection=figures["intersection"],
        result=result,
        chart_url=chart,
        tier_order=config.tier_names,
        span_days=config.report_days,
    )
    create_markdown_artifact(key="loyalty-report", markdown=markdown, description=f"Loyalty {as_of}")
    create_table_artifact(
        key="loyalty-flows",
        table=flows_rows(figures["flows"]),
        description=f"Cashback per day, {config.report_days} days to {as_of}",
    )
    return {"liability_minor": figures["liability"], "expiring_30_minor": figures["expiring_30"], "chart": chart}
