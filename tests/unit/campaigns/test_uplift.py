"""The uplift estimator against a textbook two-sample comparison computed independently (plain math)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import t as student_t

from crm.campaigns.uplift import attribute_last_click, estimate_uplift, experiment_table


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _experiment(n1, c1, n0, c0, revenue1=None, revenue0=None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "group": ["treatment"] * n1 + ["control"] * n0,
            "converted": [True] * c1 + [False] * (n1 - c1) + [True] * c0 + [False] * (n0 - c0),
        }
    )
    if revenue1 is not None:
        frame["revenue"] = list(revenue1) + list(revenue0)
    return frame


def test_conversion_uplift_matches_the_textbook_two_proportion_comparison():
    # Treated 120 of 1,000 converted, control 45 of 500 (a 2:1 split).
    n1, c1, n0, c0 = 1000, 120, 500, 45
    p1, p0 = c1 / n1, c0 / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)  # unpooled: the interval
    z975 = 1.959963984540054
    pooled = (c1 + c0) / (n1 + n0)
    z = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))  # pooled: the test
    p_value = 2 * (1 - _normal_cdf(abs(z)))

    est = estimate_uplift(_experiment(n1, c1, n0, c0), revenue=None)
    assert est.treated == n1 and est.control == n0
    assert est.uplift == pytest.approx(0.03)
    assert est.relative_uplift == pytest.approx(0.03 / 0.09)
    assert est.ci_low == pytest.approx(p1 - p0 - z975 * se, abs=1e-9)
    assert est.ci_high == pytest.approx(p1 - p0 + z975 * se, abs=1e-9)
    assert est.p_value == pytest.approx(p_value, rel=1e-6)
    # Hand-checked figures of this example: interval [-0.00217, 0.06217], z = 1.7505, p = 0.0800.
    assert (round(est.ci_low, 5), round(est.ci_high, 5)) == (-0.00217, 0.06217)
    assert round(est.p_value, 3) == 0.080


def test_revenue_uplift_is_welchs_comparison():
    t = [0, 0, 100, 300, 500, 0, 200, 0]
    c = [0, 100, 0, 0, 200, 0]
    est = estimate_uplift(_experiment(len(t), 0, len(c), 0, t, c))
    m1, m0 = sum(t) / len(t), sum(c) / len(c)
    v1 = sum((x - m1) ** 2 for x in t) / (len(t) - 1)
    v0 = sum((x - m0) ** 2 for x in c) / (len(c) - 1)
    se = math.sqrt(v1 / len(t) + v0 / len(c))
    df = se**4 / ((v1 / len(t)) ** 2 / (len(t) - 1) + (v0 / len(c)) ** 2 / (len(c) - 1))
    assert est.revenue_uplift == pytest.approx(m1 - m0)
    half = est.revenue_ci_high - est.revenue_uplift
    assert est.revenue_uplift - est.revenue_ci_low == pytest.approx(half)
    assert half == pytest.approx(student_t.ppf(0.975, df) * se, rel=1e-9)  # Welch-Satterthwaite df


def test_sample_size_for_the_minimum_effect():
    # Control rate 10%, detect +2 points at alpha 0.05 and power 0.8, equal groups: Cohen's h formula.
    est = estimate_uplift(_experiment(1000, 100, 1000, 100), revenue=None, minimum_effect=0.02)
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.10))
    # Var(2 asin sqrt(p)) = 1/n per group, so the difference needs n = 2 (z_alpha/2 + z_power)^2 / h^2 per group.
    expected = 2 * ((1.959963984540054 + 0.8416212335729143) / h) ** 2
    assert est.needed_per_group == math.ceil(expected)


def test_experiment_table_counts_conversions_inside_the_window():
    entries = pd.DataFrame(
        {
            "campaign_id": "c",
            "customer_id": [1, 2, 3],
            "wave": 1,
            "entered_on": pd.to_datetime(["2026-01-01"] * 3),
            "group": ["treatment", "treatment", "control"],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "at": pd.to_datetime(["2026-01-05 00:00", "2026-02-10 00:00", "2026-01-01 10:00"]),
            "revenue_minor": [500, 700, 0],
        }
    )
    table = experiment_table(entries, events, window_days=30)
    assert table["converted"].tolist() == [True, False, False]
    assert table["revenue"].tolist() == [500, 0, 0]


def test_last_click_attribution_within_the_window():
    conversions = pd.DataFrame(
        {"customer_id": [1, 1, 2], "at": pd.to_datetime(["2026-01-10", "2026-03-01", "2026-01-10"])}
    )
    clicks = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "clicked_at": pd.to_datetime(["2026-01-02", "2026-01-08", "2026-01-11"]),
            "campaign_id": ["a", "b", "c"],
        }
    )
    out = attribute_last_click(conversions, clicks, window_days=30)
    assert out["campaign_id"].tolist() == ["b", None, None]
