"""Reconciliation's words and tables: the verdict paragraph, the summary artifact and the trend."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import pandas as pd

from crm.core.markdown import Col, markdown_table, num, pct, percent
from crm.reconcile.diff import MISMATCH_COLUMNS, MISMATCH_KINDS


def verdict_summary(
    as_of: date,
    figures: pd.DataFrame,
    mismatch_counts: Mapping[str, Mapping[str, int]],
    threshold: float,
    *,
    in_flight: Mapping[str, int] | None = None,
    shown: int = 5,
) -> str:
    """One paragraph a CRM manager can read: the verdict, the failing figures, the mismatching ids."""
    total = len(figures)
    failed = figures[~figures["passed"]] if total else figures
    moved = sum((in_flight or {}).values())
    tail = (
        f" {moved:,} row(s) the source changed after {as_of} were left out of both sides (not ingested yet)."
        if moved
        else ""
    )
    if total == 0:
        return f"Reconciliation {as_of}: no figures were compared (no entity is configured), so the day is not vouched for."
    if failed.empty:
        worst = figures.loc[figures["divergence"].idxmax()]
        largest = (
            f"largest divergence {percent(worst.divergence)} in {worst.entity} {worst.metric} ({worst.scope})"
            if worst.divergence > 0
            else "every figure matches exactly"
        )
        return f"Reconciliation {as_of}: all {total} figures are within {percent(threshold)} of the source; {largest}.{tail}"
    listed = [
        f"{r.entity} {r.metric} ({r.scope}) source {r.source_value:,} vs warehouse {r.warehouse_value:,} ({percent(r.divergence)})"
        for r in failed.sort_values("divergence", ascending=False, kind="stable").head(shown).itertuples()
    ]
    more = f" and {len(failed) - shown} more" if len(failed) > shown else ""
    entities = list(dict.fromkeys(failed["entity"]))
    ids = [
        f"{entity} " + ", ".join(f"{n:,} {kind.replace('_', ' ')}" for kind, n in counts.items() if n)
        for entity, counts in mismatch_counts.items()
        if any(counts.values())
    ]
    id_text = f" Mismatching ids: {'; '.join(ids)}." if ids else ""
    return (
        f"Reconciliation {as_of}: {len(failed)} of {total} figures diverge from the source by more than "
        f"{percent(threshold)} ({', '.join(entities)}): {'; '.join(listed)}{more}.{id_text}{tail} "
        f"The warehouse does not match the source of truth, so the day is not fit for sending."
    )


def trend_table(history: pd.DataFrame, as_of: date, days: int) -> pd.DataFrame:
    """Largest divergence per day (rows) and entity (columns) over the last `days` days; NaN where none."""
    dates = [as_of - timedelta(days=i) for i in range(days - 1, -1, -1)]
    if history.empty:
        return pd.DataFrame(index=pd.Index(dates, name="as_of"))
    frame = history.copy()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    table = frame.pivot_table(index="as_of", columns="entity", values="divergence", aggfunc="max")
    table = table.reindex(dates)
    table.index.name = "as_of"
    return table


def trend_markdown(history: pd.DataFrame, as_of: date, days: int, threshold: float) -> str:
    """The trend as a markdown table: days that were reconciled, largest divergence per entity."""
    table = trend_table(history, as_of, days).dropna(how="all")
    lines = [f"# Reconciliation trend, {days} days to {as_of}", ""]
    if table.empty or table.columns.empty:
        return "\n".join([*lines, "No reconciliation results in this period yet."])
    lines += [
        f"Largest divergence per entity and day (threshold {percent(threshold)}; ✗ marks a failed day, "
        "blank: not reconciled).",
        "",
    ]
    rows = [
        {"day": day, **{e: "" if pd.isna(v) else percent(v) + (" ✗" if v > threshold else "") for e, v in row.items()}}
        for day, row in table.iterrows()
    ]
    lines += markdown_table(rows, ["day", *[Col(e, right=True) for e in table.columns]])
    return "\n".join(lines)


def summary_markdown(
    as_of: date,
    fit_for_sending: bool,
    summary: str,
    figures: pd.DataFrame,
    mismatch_counts: Mapping[str, Mapping[str, int]],
    examples: Mapping[str, pd.DataFrame],
    *,
    stored_cap: int,
) -> str:
    """The summary artifact: verdict, failing figures, mismatch counts by kind, example ids."""
    verdict = "fit for sending" if fit_for_sending else "NOT fit for sending (send gate closed)"
    failed = figures[~figures["passed"]] if len(figures) else figures
    lines = [f"# Reconciliation {as_of}: {verdict}", "", summary, ""]
    lines.append(f"- figures compared: **{len(figures)}**, diverging: **{len(failed)}**")
    if len(failed):
        lines += ["", "## Diverging figures", ""]
        lines += markdown_table(
            failed.to_dict("records"),
            [
                "entity",
                "metric",
                "scope",
                num("source_value", "source"),
                num("warehouse_value", "warehouse"),
                pct("divergence"),
            ],
        )
    if mismatch_counts:
        rows = []
        for entity, counts in mismatch_counts.items():
            sample = examples.get(entity, pd.DataFrame(columns=MISMATCH_COLUMNS))
            if not any(counts.values()):
                rows.append(
                    {
                        "entity": entity,
                        "kind": "(none)",
                        "ids": 0,
                        "stored": 0,
                        "examples": "figures differ but every id matches",
                    }
                )
            for kind in MISMATCH_KINDS:
                n = counts.get(kind, 0)
                if not n:
                    continue
                shown = ", ".join(
                    f"{r.record_id}"
                    + (f" ({r.source_value} → {r.warehouse_value})" if kind.startswith("different") else "")
                    for r in sample[sample["kind"] == kind].itertuples()
                )
                rows.append({"entity": entity, "kind": kind, "ids": n, "stored": min(n, stored_cap), "examples": shown})
        lines += ["", "## Mismatching ids by kind", ""]
        lines += markdown_table(rows, ["entity", "kind", num("ids"), num("stored"), "examples"])
        lines += [
            "",
            "Ids are stored in `reconciliation_mismatches` (record_id is the key as JSON, like `quarantined_rows.record_key`).",
        ]
    return "\n".join(lines)


def figures_table(figures: pd.DataFrame) -> list[dict]:
    """Every figure as a Prefect table artifact: diverging first, the outcome and divergence next to the
    metric, values with thousands separators and divergence as a percentage (like the summary)."""
    if figures.empty:
        return []
    ordered = figures.sort_values(["passed", "entity", "scope", "metric"], kind="stable")
    return [
        {
            "outcome": "ok" if r.passed else "DIVERGES",
            "entity": r.entity,
            "scope": r.scope,
            "metric": r.metric,
            "divergence": percent(float(r.divergence)),
            "source": f"{int(r.source_value):,}",
            "warehouse": f"{int(r.warehouse_value):,}",
        }
        for r in ordered.itertuples()
    ]
