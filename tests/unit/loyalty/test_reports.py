"""Loyalty's per-day flows as the report and the `loyalty-flows` table artifact show them: amounts, not minor units."""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.loyalty import flows_rows, report_markdown

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)


def flows() -> pd.DataFrame:
    rows = [
        (D1, "accrual", 123_456_78),
        (D1, "redemption", -1_000_00),
        (D2, "accrual", 5),
        (D2, "expiry", -250),
        (D2, "reversal", -1_999),
    ]
    return pd.DataFrame(rows, columns=["as_of", "kind", "amount_minor"])


def test_flows_rows_are_signed_amounts_with_two_decimals_and_thousands_separators():
    first, second = flows_rows(flows())
    assert first == {
        "as_of": "2026-03-01",
        "accrual": "123,456.78",
        "redemption": "-1,000.00",
        "expiry": "0.00",
        "reversal": "0.00",
        "adjustment": "0.00",
        "net": "122,456.78",
    }
    assert (second["accrual"], second["expiry"], second["reversal"], second["net"]) == (
        "0.05",
        "-2.50",
        "-19.99",
        "-22.44",
    )
    assert flows_rows(flows().iloc[0:0]) == []


def test_the_report_shows_the_same_amounts():
    text = report_markdown(
        D2,
        liability=12_345_00,
        expiring_30=0,
        flows=flows(),
        tiers=pd.DataFrame(columns=["tier", "members"]),
        migration=pd.DataFrame(columns=["from_tier", "to_tier", "members"]),
        intersection=(0, 0),
        result={},
        chart_url=None,
        tier_order=["base"],
        span_days=30,
    )
    assert "| 2026-03-01 | 123,456.78 | -1,000.00 | 0.00 | 0.00 | 122,456.78 |" in text
    assert "12,345.00" in text
