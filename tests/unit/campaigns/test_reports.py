"""Campaign report markdown: readable tables, money in major units, no contact data."""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.campaigns import PlanResult, funnel_markdown, kpi_chart_png, plan_markdown, uplift_chart_png, uplift_markdown


def test_funnel_markdown_splits_decisions_and_delivery_and_says_the_saving():
    funnel = pd.DataFrame(
        [
            {
                "campaign_id": "welcome",
                "step": 1,
                "entered": 100,
                "control": 10,
                "skipped_no_consent": 4,
                "planned_email": 50,
                "planned_sms": 20,
                "sent": 70,
                "delivered": 66,
                "converted": 7,
                "cost_minor": 3150,
                "spend_email": 150,
                "spend_sms": 3000,
            },
        ]
    )
    saving = {"baseline_sms": 60, "cascade_sms": 20, "saved_sms": 40, "saved_minor": 6000, "saving_share": 40 / 60}
    text = funnel_markdown(date(2026, 1, 1), date(2026, 1, 30), funnel, saving, 150)
    assert "| welcome | 1 | 100 | 10 | 4 |" in text
    assert "31.50" in text and "4.50" in text  # spend and spend per conversion (3150 / 7 = 450 minor)
    assert "40 fewer, saving **60.00**" in text and "(66.7%)" in text
    assert max(len(line) for line in text.splitlines()) < 200


def test_refused_plan_says_why_and_how_to_force():
    result = PlanResult(
        as_of=date(2026, 1, 5),
        run_id="r",
        gate_open=False,
        forced=False,
        refused=True,
        gate_reasons=["quality: 2 critical expectations failed"],
    )
    text = plan_markdown(result)
    assert "REFUSED" in text and "quality: 2 critical" in text and "--force" in text


def test_uplift_markdown_and_charts():
    uplift = pd.DataFrame(
        [
            {
                "campaign_id": "c",
                "step": 0,
                "treated": 900,
                "control": 100,
                "treated_rate": 0.2,
                "control_rate": 0.1,
                "uplift": 0.1,
                "ci_low": 0.03,
                "ci_high": 0.17,
                "p_value": 0.01,
                "revenue_uplift": 1234.0,
                "needed_per_group": 800,
            },
        ]
    )
    text = uplift_markdown(date(2026, 1, 30), uplift, "reports/campaigns/2026-01-30/uplift.png")
    assert "[+0.0300, +0.1700]" in text and "12.34" in text and "uplift.png" in text
    png = uplift_chart_png(uplift)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    kpi = pd.DataFrame({"day": pd.to_datetime(["2026-01-01", "2026-01-02"]), "share": [0.03, 0.05]})
    assert kpi_chart_png(kpi)[:4] == b"\x89PNG"
