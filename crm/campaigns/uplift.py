"""Uplift of an experiment: treated versus control, with statsmodels (no hand-written test statistics).

`estimate_uplift(frame)` works on any experiment's table, one row per customer with `group`
(`treatment` / `control`), `converted` (bool) and optionally `revenue` (minor units): an analyst
can run it in a notebook. Attribution (last click within a window) is `attribute_last_click`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from crm.campaigns.states import Group


@dataclass(frozen=True)
class UpliftEstimate:
    """Treated versus control: rates, absolute and relative uplift, interval, p-value, the sample size needed."""

    treated: int
    control: int
    treated_conversions: int
    control_conversions: int
    treated_rate: float
    control_rate: float
    uplift: float  # absolute: treated rate - control rate
    relative_uplift: float | None  # uplift / control rate
    ci_low: float
    ci_high: float
    p_value: float | None
    revenue_per_treated: float | None
    revenue_per_control: float | None
    revenue_uplift: float | None
    revenue_ci_low: float | None
    revenue_ci_high: float | None
    revenue_p_value: float | None
    needed_per_group: int | None  # treated customers needed to detect `minimum_effect` (control in the same ratio)
    alpha: float

    def as_dict(self) -> dict:
        """Plain values."""
        return asdict(self)


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def estimate_uplift(
    frame: pd.DataFrame,
    *,
    group: str = "group",
    converted: str = "converted",
    revenue: str | None = "revenue",
    alpha: float = 0.05,
    power: float = 0.80,
    minimum_effect: float = 0.01,
) -> UpliftEstimate:
    """Two-sample comparison of conversion (Wald interval of the difference, pooled z-test) and revenue (Welch).

    `frame`: one row per customer; `group` holds `treatment` or `control`. The sample size is what
    a two-sided z-test at `alpha` needs to detect an absolute uplift of `minimum_effect` with
    `power`, with the control group in the observed ratio.
    """
    # statsmodels is imported here: planning (which imports this package) does not pay for it.
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    is_treated = frame[group].astype(str).to_numpy() == Group.TREATMENT.value
    is_control = frame[group].astype(str).to_numpy() == Group.CONTROL.value
    conv = frame[converted].astype(bool).to_numpy()
    n1, n0 = int(is_treated.sum()), int(is_control.sum())
    c1, c0 = int(conv[is_treated].sum()), int(conv[is_control].sum())
    p1 = c1 / n1 if n1 else float("nan")
    p0 = c0 / n0 if n0 else float("nan")
    low = high = p_value = float("nan")
    if n1 and n0:
        low, high = confint_proportions_2indep(c1, n1, c0, n0, method="wald", compare="diff", alpha=alpha)
        if 0 < c1 + c0 < n1 + n0:
            _, p_value = proportions_ztest([c1, c0], [n1, n0])
    rev = dict.fromkeys(("t", "c", "d", "lo", "hi", "p"), float("nan"))
    if revenue is not None and revenue in frame.columns and n1 > 1 and n0 > 1:
        r = frame[revenue].fillna(0).astype(float).to_numpy()
        compare = CompareMeans(DescrStatsW(r[is_treated]), DescrStatsW(r[is_control]))
        rev["t"], rev["c"] = r[is_treated].mean(), r[is_control].mean()
        rev["d"] = rev["t"] - rev["c"]
        if compare.std_meandiff_separatevar > 0:
            rev["lo"], rev["hi"] = compare.tconfint_diff(alpha=alpha, usevar="unequal")
            rev["p"] = compare.ttest_ind(usevar="unequal")[1]
    needed = None
    if n1 and n0 and not math.isnan(p0) and 0 < p0 + minimum_effect < 1:
        effect = proportion_effectsize(p0 + minimum_effect, p0)
        if effect != 0:
            needed = math.ceil(
                NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=n0 / n1)
            )
    return UpliftEstimate(
        treated=n1,
        control=n0,
        treated_conversions=c1,
        control_conversions=c0,
        treated_rate=_nan_to_none(p1) or 0.0,
        control_rate=_nan_to_none(p0) or 0.0,
        uplift=_nan_to_none(p1 - p0) or 0.0,
        relative_uplift=_nan_to_none((p1 - p0) / p0) if p0 else None,
        ci_low=_nan_to_none(low) if low is not None else None,
        ci_high=_nan_to_none(high) if high is not None else None,
        p_value=_nan_to_none(p_value),
        revenue_per_treated=_nan_to_none(rev["t"]),
        revenue_per_control=_nan_to_none(rev["c"]),
        revenue_uplift=_nan_to_none(rev["d"]),
        revenue_ci_low=_nan_to_none(rev["lo"]),
        revenue_ci_high=_nan_to_none(rev["hi"]),
        revenue_p_value=_nan_to_none(rev["p"]),
        needed_per_group=needed,
        alpha=alpha,
    )


def experiment_table(entries: pd.DataFrame, conversions: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """One row per entry: group, converted within `window_days` after entering (from the day after), revenue.

    `entries`: campaign_id, customer_id, wave, entered_on, group; `conversions`: customer_id, at,
    revenue_minor (conversion events and revenue, e.g. orders and interest paid).
    """
    table = entries[["campaign_id", "customer_id", "wave", "entered_on", "group"]].copy()
    table["entered_on"] = pd.to_datetime(table["entered_on"])
    table["converted"] = False
    table["revenue"] = 0
    if conversions.empty or table.empty:
        return table
    events = conversions.assign(at=pd.to_datetime(conversions["at"]))
    joined = table.reset_index().merge(events, on="customer_id")
    start = joined["entered_on"] + pd.Timedelta(days=1)
    inside = (joined["at"] >= start) & (joined["at"] < start + pd.Timedelta(days=window_days))
    joined = joined[inside]
    table.loc[joined["index"].unique(), "converted"] = True
    revenue = joined.groupby("index")["revenue_minor"].sum()
    table.loc[revenue.index, "revenue"] = revenue.astype("int64").to_numpy()
    return table


def attribute_last_click(conversions: pd.DataFrame, clicks: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Each conversion with the campaign of the customer's last click before it within `window_days` (or none).

    `conversions`: customer_id, at (and anything else); `clicks`: customer_id, clicked_at, campaign_id.
    """
    out = conversions.copy()
    out["at"] = pd.to_datetime(out["at"])
    out["_order"] = np.arange(len(out))
    if clicks.empty or out.empty:
        return out.assign(campaign_id=None).drop(columns="_order")
    c = clicks[["customer_id", "clicked_at", "campaign_id"]].copy()
    c["clicked_at"] = pd.to_datetime(c["clicked_at"])
    c["customer_id"] = c["customer_id"].astype("int64")
    out["customer_id"] = out["customer_id"].astype("int64")
    merged = pd.merge_asof(
        out.sort_values("at"),
        c.sort_values("clicked_at"),
        left_on="at",
        right_on="clicked_at",
        by="customer_id",
        direction="backward",
        tolerance=pd.Timedelta(days=window_days),
    )
    merged["campaign_id"] = merged["campaign_id"].astype(object).where(merged["campaign_id"].notna(), None)
    return merged.sort_values("_order").drop(columns=["_order", "clicked_at"]).reset_index(drop=True)
