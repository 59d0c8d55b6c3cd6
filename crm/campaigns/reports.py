"""Markdown and PNG charts for the campaign artifacts: the plan of a day, the scenario funnel, spend and the
SMS the cascade saved, uplift with its interval, and the share of applications that came from CRM."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd

from crm.campaigns.io import PlanResult
from crm.core.markdown import Col, markdown_table, money, num, pct


def _fraction(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value:+.4f}"


def plan_markdown(result: PlanResult) -> str:
    """What a day's planning did, or why it refused."""
    if result.refused:
        lines = [f"# Campaigns {result.as_of}: REFUSED (send gate closed)", ""]
        lines += [f"- {r}" for r in result.gate_reasons]
        lines += [
            "",
            "Nothing was planned. `crm run campaigns --as-of D --force` plans anyway (recorded in campaign_runs).",
        ]
        return "\n".join(lines)
    head = f"# Campaigns {result.as_of}" + (" (send gate CLOSED, forced)" if result.forced else "")
    lines = [head, ""]
    lines.append(
        f"Planned **{result.planned:,}** messages ({result.enqueued:,} new in the outbox), skipped {result.skipped:,}, "
        f"purged {result.purged:,} customers"
        + (f" (archive `{result.archive_key}`)" if result.archive_key else "")
        + "."
    )
    entered = [{"campaign": k, "entered": v} for k, v in sorted(result.entered.items())]
    if entered:
        lines += ["", "## Entered today", "", *markdown_table(entered, ["campaign", num("entered")])]
    exited = [{"campaign_exit": k, "customers": v} for k, v in sorted(result.exited.items())]
    if exited:
        lines += [
            "",
            "## Left today",
            "",
            *markdown_table(exited, [Col("campaign_exit", "campaign: reason"), num("customers")]),
        ]
    return "\n".join(lines)


DECISION_COLUMNS = [
    Col("campaign_id", "campaign"),
    num("step"),
    num("entered"),
    num("control", "in control"),
    num("skipped_no_consent", "no consent"),
    num("skipped_unsubscribed", "unsubscribed"),
    num("skipped_no_address", "no address"),
    num("skipped_capped", "capped"),
    num("skipped_outranked", "outranked"),
    num("skipped_engaged_earlier", "opened earlier"),
]
DELIVERY_COLUMNS = [
    Col("campaign_id", "campaign"),
    num("step"),
    num("planned_push", "push"),
    num("planned_email", "e-mail"),
    num("planned_sms", "SMS"),
    num("sent"),
    num("delivered"),
    num("opened"),
    num("clicked"),
    num("converted"),
    Col("cost_minor", "spend", right=True, fmt=money),
]


def funnel_markdown(start: date, end: date, funnel: pd.DataFrame, saving: dict, sms_price: int) -> str:
    """The scenario funnel per campaign and step, spend per channel, cost per conversion, the SMS saving."""
    lines = [f"# Campaign funnel {start} .. {end}", ""]
    if funnel.empty:
        return "\n".join([*lines, "No campaign planned anything in these days."])
    records = funnel.to_dict("records")
    lines += ["## Who entered, and why messages were skipped", "", *markdown_table(records, DECISION_COLUMNS)]
    lines += [
        "",
        "## Planned per channel, then what the providers reported",
        "",
        *markdown_table(records, DELIVERY_COLUMNS),
    ]
    spend = funnel.groupby("campaign_id")[
        [c for c in funnel.columns if c.startswith("spend_") or c == "converted"]
    ].sum()
    rows = []
    for campaign_id, r in spend.iterrows():
        total = int(sum(v for k, v in r.items() if k.startswith("spend_")))
        conv = int(r.get("converted", 0))
        rows.append(
            {
                "campaign": campaign_id,
                **{k: r[k] for k in r.index if k.startswith("spend_")},
                "total": total,
                "per_conversion": total // conv if conv else None,
            }
        )
    spend_cols = [Col("campaign")] + [
        Col(c, c.replace("spend_", ""), right=True, fmt=money) for c in spend.columns if c.startswith("spend_")
    ]
    spend_cols += [Col("total", right=True, fmt=money), Col("per_conversion", "per conversion", right=True, fmt=money)]
    lines += ["", "## Spend per channel and cost per conversion", "", *markdown_table(rows, spend_cols)]
    lines += [
        "",
        "## SMS the cascade saved",
        "",
        f"SMS to everyone reachable by SMS would have been **{saving['baseline_sms']:,}** messages; the cascade "
        f"planned **{saving['cascade_sms']:,}**: {saving['saved_sms']:,} fewer, saving **{money(saving['saved_minor'])}** "
        f"at {money(sms_price)} per SMS"
        + (f" ({saving['saving_share']:.1%})." if saving["saving_share"] is not None else "."),
    ]
    return "\n".join(lines)


UPLIFT_COLUMNS = [
    Col("campaign_id", "campaign"),
    Col("step", "step (0 = all)", right=True),
    num("treated"),
    num("control"),
    pct("treated_rate", "treated conv."),
    pct("control_rate", "control conv."),
    Col("uplift", "uplift", right=True, fmt=_fraction),
    Col("ci", "95% interval", right=True),
    Col("p", "p-value", right=True),
    Col("revenue_uplift", "revenue / customer", right=True, fmt=money),
    num("needed_per_group", "n needed"),
]


def uplift_markdown(as_of: date, uplift: pd.DataFrame, chart_url: str | None) -> str:
    """Uplift per campaign and step with the interval, p-value and the sample size needed for the minimum effect."""
    lines = [f"# Campaign uplift as of {as_of}", ""]
    if uplift.empty:
        return "\n".join([*lines, "No entries yet."])
    rows = []
    for r in uplift.to_dict("records"):
        r["ci"] = "" if r["ci_low"] is None or pd.isna(r["ci_low"]) else f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
        r["p"] = "" if r["p_value"] is None or pd.isna(r["p_value"]) else f"{r['p_value']:.4f}"
        rows.append(r)
    lines += markdown_table(rows, UPLIFT_COLUMNS)
    lines += [
        "",
        "Treated minus control conversion (any application, loan or purchase) within the attribution window after "
        "entering (or after the step's first touch); Wald interval, pooled z-test, Welch for revenue (statsmodels).",
    ]
    if chart_url:
        lines += ["", f"Chart: [uplift with 95% intervals]({chart_url})"]
    return "\n".join(lines)


def kpi_markdown(per_day: pd.DataFrame, chart_url: str | None) -> str:
    """The share of loan applications that came from the CRM channel (last click within the window), by day."""
    lines = ["# Share of loan applications from CRM (last click)", ""]
    if per_day.empty:
        return "\n".join([*lines, "No applications in the period."])
    rows = per_day.assign(day=per_day["day"].dt.date.astype(str)).to_dict("records")
    lines += markdown_table(rows, ["day", num("applications"), num("from_crm", "from CRM"), pct("share")])
    if chart_url:
        lines += ["", f"Chart: [share over time]({chart_url})"]
    return "\n".join(lines)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def kpi_chart_png(per_day: pd.DataFrame) -> bytes:
    """A line chart of the CRM share of applications by day (PNG, 1600 px wide)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(16, 5))
    try:
        ax.plot(per_day["day"], per_day["share"] * 100, marker="o")
        ax.set_ylabel("% of applications from CRM")
        ax.set_title("Share of loan applications that came from the CRM channel (last click)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return _png(fig)
    finally:
        plt.close(fig)


def uplift_chart_png(uplift: pd.DataFrame) -> bytes:
    """Uplift per campaign (all steps) with its 95% interval (PNG, 1600 px wide)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    whole = uplift[uplift["step"] == 0].dropna(subset=["ci_low"])
    fig, ax = plt.subplots(figsize=(16, 5))
    try:
        y = range(len(whole))
        ax.errorbar(
            whole["uplift"] * 100,
            list(y),
            xerr=[(whole["uplift"] - whole["ci_low"]) * 100, (whole["ci_high"] - whole["uplift"]) * 100],
            fmt="o",
            capsize=4,
        )
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(list(y), whole["campaign_id"])
        ax.set_xlabel("conversion uplift, percentage points (95% interval)")
        ax.set_title("Uplift per campaign: treated minus control conversion")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return _png(fig)
    finally:
        plt.close(fig)
