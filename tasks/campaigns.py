"""Campaign tasks: plan the day (entries, decisions, outbox), publish the funnel, uplift and KPI reports."""

from __future__ import annotations

from datetime import date, timedelta

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from crm.campaigns import (
    PlanResult,
    campaign_funnel,
    crm_share_of_applications,
    funnel_markdown,
    kpi_chart_png,
    kpi_markdown,
    load_campaigns,
    load_campaigns_config,
    plan_campaigns,
    plan_markdown,
    sms_saving,
    uplift_chart_png,
    uplift_markdown,
    uplift_table,
)
from crm.core.settings import get_settings, warehouse_engine
from crm.core.storage import open_store
from crm.sending import load_sending_config
from tasks.common import retry_transient


@task(
    name="plan-campaigns",
    task_run_name="plan campaigns {as_of}",
    # One transaction: a failed try left nothing, and a re-run of the day gives the same plan.
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def plan_campaigns_task(as_of: date, force: bool) -> PlanResult:
    """Entries, exits, the purge, a decision with its reason per candidate message, the outbox (refuses a closed gate)."""
    result = plan_campaigns(warehouse_engine(), as_of, force=force, campaigns=load_campaigns())
    logger = get_run_logger()
    if result.refused:
        logger.warning("campaigns %s refused: send gate closed: %s", as_of, "; ".join(result.gate_reasons))
    elif result.forced:
        logger.warning("send gate CLOSED for %s, planning anyway (forced, recorded)", as_of)
    logger.info(
        "campaigns %s: %d entered, %d planned, %d skipped, %d purged",
        as_of,
        sum(result.entered.values()),
        result.planned,
        result.skipped,
        result.purged,
    )
    create_markdown_artifact(key="campaigns-plan", markdown=plan_markdown(result), description=f"Campaigns {as_of}")
    return result


def _chart_url(key: str, png: bytes) -> str:
    """Write a chart to the reports location; return where it is (a path or an s3:// URL)."""
    base = get_settings().reports
    open_store(base).write_bytes(key, png)
    return f"{base.rstrip('/')}/{key}"


@task(name="publish-campaign-reports", task_run_name="publish campaign reports {as_of}", cache_policy=NO_CACHE)
def publish_campaign_reports(as_of: date, days: int = 30) -> dict:
    """Funnel, spend, SMS saving, uplift with intervals and the CRM share of applications, as artifacts and PNG charts."""
    config = load_campaigns_config()
    sms_price = load_sending_config().prices().get("sms", 0)
    start = as_of - timedelta(days=days - 1)
    u = config.uplift
    with warehouse_engine().connect() as conn:
        funnel = campaign_funnel(conn, start, as_of)
        saving = sms_saving(conn, start, as_of, sms_price)
        uplift = uplift_table(
            conn,
            as_of,
            window_days=u.attribution_window_days,
            alpha=u.alpha,
            power=u.power,
            minimum_effect=u.minimum_effect,
            since=as_of - timedelta(days=u.report_days),
        )
        kpi = crm_share_of_applications(conn, start, as_of, u.attribution_window_days)
    uplift_url = _chart_url(f"campaigns/{as_of}/uplift.png", uplift_chart_png(uplift)) if not uplift.empty else None
    kpi_url = _chart_url(f"campaigns/{as_of}/crm-share.png", kpi_chart_png(kpi)) if not kpi.empty else None
    create_markdown_artifact(
        key="campaign-funnel",
        markdown=funnel_markdown(start, as_of, funnel, saving, sms_price),
        description=f"Funnel {as_of}",
    )
    create_markdown_artifact(
        key="campaign-uplift", markdown=uplift_markdown(as_of, uplift, uplift_url), description=f"Uplift {as_of}"
    )
    create_markdown_artifact(key="crm-share", markdown=kpi_markdown(kpi, kpi_url), description=f"CRM share {as_of}")
    return {"saving": saving, "uplift_chart": uplift_url, "kpi_chart": kpi_url}
