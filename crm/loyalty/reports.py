"""Loyalty's reports: liability, flows per day, tiers and their migration, the intersection share; a PNG chart."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd

from crm.core.markdown import Col, markdown_table, money, num, pct
from crm.loyalty.rules import EntryKind


def flows_table(flows: pd.DataFrame) -> pd.DataFrame:
    """One row per posting day: accrued, redeemed, expired, reversed (signed sums) and the net."""
    if flows.empty:
        return pd.DataFrame(columns=["as_of", "accrual", "redemption", "expiry", "reversal", "net"])
    wide = flows.pivot_table(index="as_of", columns="kind", values="amount_minor", aggfunc="sum", fill_value=0)
    kinds = [kind.value for kind in EntryKind]
    for kind in kinds:
        if kind not in wide.columns:
            wide[kind] = 0
    wide["net"] = wide[kinds].sum(axis=1)
    return wide.reset_index().sort_values("as_of")


def flows_rows(flows: pd.DataFrame) -> list[dict]:
    """`flows_table` as amounts with two decimals and thousands separators (the report and its table artifact)."""
    return [
        {k: (money(v) if k != "as_of" else str(v)) for k, v in r.items()} for r in flows_table(flows).to_dict("records")
    ]


def report_markdown(
    day: date,
    *,
    liability: int,
    expiring_30: int,
    flows: pd.DataFrame,
    tiers: pd.DataFrame,
    migration: pd.DataFrame,
    intersection: tuple[int, int],
    result: dict,
    chart_url: str | None,
    tier_order: list[str],
    span_days: int,
) -> str:
    """The loyalty report of a day as markdown (readable at 1600 px)."""
    both, either = intersection
    lines = [
        f"# Loyalty {day}",
        "",
        f"Ledger: {result.get('entries_added', 0):,} entries added, {result.get('entries_of_day', 0):,} posted on the day, "
        f"{result.get('members_touched', 0):,} members touched, {result.get('joined', 0):,} joined, "
        f"{result.get('tier_changes', 0):,} tier changes. Invariants: "
        + ("all hold." if not result.get("violations") else "VIOLATED: " + "; ".join(result["violations"])),
        "",
        "## Liability",
        *markdown_table(
            [
                {"what": "outstanding cashback", "amount": money(liability)},
                {"what": "expiring in the next 30 days", "amount": money(expiring_30)},
            ],
            [Col("what"), Col("amount", right=True)],
        ),
        "",
        f"## Per day (last {span_days} days)",
    ]
    lines += markdown_table(
        flows_rows(flows),
        [Col("as_of", "day")] + [Col(k, right=True) for k in ("accrual", "redemption", "expiry", "reversal", "net")],
    )
    if chart_url:
        lines += ["", f"![accrued, redeemed and expired per day]({chart_url})", f"[chart (PNG)]({chart_url})"]
    total = int(tiers["members"].sum()) if len(tiers) else 0
    tier_rows = [
        {
            "tier": t,
            "members": int(tiers.set_index("tier")["members"].get(t, 0)),
            "share": (int(tiers.set_index("tier")["members"].get(t, 0)) / total if total else None),
        }
        for t in tier_order
    ]
    lines += ["", "## Tiers", *markdown_table(tier_rows, [Col("tier"), num("members"), pct("share")])]
    if len(migration):
        matrix = migration.assign(from_tier=migration["from_tier"].fillna("(new)")).pivot_table(
            index="from_tier", columns="to_tier", values="members", aggfunc="sum", fill_value=0
        )
        order = [t for t in ["(new)", *tier_order] if t in matrix.index]
        matrix = matrix.reindex(index=order, columns=[t for t in tier_order if t in matrix.columns], fill_value=0)
        records = [{"from": idx, **{c: int(v) for c, v in row.items()}} for idx, row in matrix.iterrows()]
        lines += [
            "",
            f"## Tier migration ({span_days} days ago -> today)",
            *markdown_table(records, [Col("from")] + [num(c) for c in matrix.columns]),
        ]
    lines += [
        "",
        "## Intersection customers (loans or pawn tickets and retail)",
        *markdown_table(
            [{"both": both, "either": either, "share": both / either if either else None}],
            [num("both"), num("either"), pct("share")],
        ),
    ]
    return "\n".join(lines) + "\n"


def flows_chart(flows: pd.DataFrame, day: date) -> bytes:
    """A PNG bar chart of accrued, redeemed and expired cashback per day (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = flows_table(flows)
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=100)
    if len(table):
        x = pd.to_datetime(table["as_of"])
        ax.bar(x, table["accrual"] / 100, label="accrued", color="#2a9d8f")
        ax.bar(x, table["redemption"] / 100, label="redeemed", color="#e9c46a")
        ax.bar(x, table["expiry"] / 100, bottom=table["redemption"] / 100, label="expired", color="#e76f51")
        ax.plot(x, table["net"] / 100, color="#264653", label="net", linewidth=1.5)
    ax.axhline(0, color="#999", linewidth=0.8)
    ax.set_title(f"Cashback per day to {day}")
    ax.set_ylabel("amount")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def whatif_markdown(start: date, end: date, real: dict, scenario: dict, tier_order: list[str], rules: str) -> str:
    """The what-if's comparison: liability and tier distribution at the end, real rules next to the changed ones."""
    rows = [
        {"figure": "outstanding cashback", "real": money(real["liability"]), "what-if": money(scenario["liability"])},
        {
            "figure": "expiring in the next 30 days",
            "real": money(real["expiring_30"]),
            "what-if": money(scenario["expiring_30"]),
        },
        {"figure": "accrued in the range", "real": money(real["accrued"]), "what-if": money(scenario["accrued"])},
        {"figure": "redeemed in the range", "real": money(real["redeemed"]), "what-if": money(scenario["redeemed"])},
        {"figure": "expired in the range", "real": money(real["expired"]), "what-if": money(scenario["expired"])},
    ]
    for tier in tier_order:
        rows.append(
            {
                "figure": f"members in {tier}",
                "real": f"{int(real['tiers'].get(tier, 0)):,}",
                "what-if": f"{int(scenario['tiers'].get(tier, 0)):,}",
            }
        )
    return (
        "\n".join(
            [
                f"# Loyalty what-if {start} .. {end}",
                "",
                f"Rules: {rules}. The scenario was replayed into a scratch ledger; the real ledger is untouched.",
                "",
                *markdown_table(rows, [Col("figure"), Col("real", right=True), Col("what-if", right=True)]),
            ]
        )
        + "\n"
    )
