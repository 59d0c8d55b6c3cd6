"""Reconciliation figures: counts per status and integer money sums per side, compared. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

import numpy as np
import pandas as pd

from crm.core.contracts import Entity
from crm.reconcile.config import EntityCheck


class Scope(StrEnum):
    """Which rows a figure counts: those of the business day, or all up to its end."""

    DAY = "day"
    CUMULATIVE = "cumulative"


FIGURE_COLUMNS = ["entity", "metric", "scope", "source_value", "warehouse_value", "divergence", "threshold", "passed"]
AGGREGATE_COLUMNS = ["grp", "rows_cumulative", "rows_day", "amount_cumulative", "amount_day"]


def label(value) -> str:
    """A status value as text: booleans as true/false, missing as null."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


def divergence(source_value: int, warehouse_value: int) -> float:
    """|source - warehouse| / max(|source|, 1): 0 when equal, 1 when the warehouse has nothing."""
    return abs(int(source_value) - int(warehouse_value)) / max(abs(int(source_value)), 1)


def empty_aggregates() -> pd.DataFrame:
    """An aggregate frame with no groups."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c != "grp" else object) for c in AGGREGATE_COLUMNS})


def combine_aggregates(frames: Sequence[pd.DataFrame], *, sign: Sequence[int] | None = None) -> pd.DataFrame:
    """Add (or, with sign -1, subtract) aggregate frames group by group."""
    sign = sign or [1] * len(frames)
    parts = []
    for frame, s in zip(frames, sign, strict=False):
        if frame.empty:
            continue
        part = frame.copy()
        part["grp"] = part["grp"].map(label)
        for c in AGGREGATE_COLUMNS[1:]:
            part[c] = part[c].map(int) * s  # PostgreSQL sums arrive as Decimal: exact ints
        parts.append(part)
    if not parts:
        return empty_aggregates()
    out = pd.concat(parts, ignore_index=True).groupby("grp", sort=True, as_index=False)[AGGREGATE_COLUMNS[1:]].sum()
    return out[AGGREGATE_COLUMNS]


def entity_metrics(entity: Entity, check: EntityCheck, aggregates: pd.DataFrame) -> dict[tuple[str, str], int]:
    """The figures of one side of one entity: {(metric, scope): value}.

    Every allowed status value gets its figure even when zero, so a status that vanished
    from one side shows up as a figure instead of a silently missing row.
    """
    agg = combine_aggregates([aggregates])
    scopes = tuple(Scope) if check.business_time else (Scope.CUMULATIVE,)
    out: dict[tuple[str, str], int] = {}
    for scope in scopes:
        out[("rows", scope)] = int(agg[f"rows_{scope}"].sum())
    if check.status:
        allowed = entity.column(check.status).allowed or ()
        values = list(allowed) + sorted(set(agg["grp"]) - set(allowed))
        by_value = agg.set_index("grp")
        for value in values:
            for scope in scopes:
                out[(f"rows[{check.status}={value}]", scope)] = int(by_value[f"rows_{scope}"].get(value, 0))
    if check.amount:
        for scope in scopes:
            out[(f"sum({check.amount})", scope)] = int(agg[f"amount_{scope}"].sum())
        if check.amount_by_status:
            for value in values:
                for scope in scopes:
                    out[(f"sum({check.amount})[{check.status}={value}]", scope)] = int(
                        by_value[f"amount_{scope}"].get(value, 0)
                    )
    return out


def compare_metrics(
    entity_name: str, source: Mapping[tuple[str, str], int], warehouse: Mapping[tuple[str, str], int], threshold: float
) -> pd.DataFrame:
    """One row per figure: both values, the divergence and whether it is within `threshold`."""
    keys = list(source) + [k for k in warehouse if k not in source]
    rows = []
    for metric, scope in keys:
        s, w = int(source.get((metric, scope), 0)), int(warehouse.get((metric, scope), 0))
        d = divergence(s, w)
        rows.append((entity_name, metric, scope, s, w, d, threshold, d <= threshold))
    frame = pd.DataFrame(rows, columns=FIGURE_COLUMNS)
    return frame.astype(
        {"source_value": "int64", "warehouse_value": "int64", "divergence": "float64", "passed": "bool"}
    )


def entities_to_diff(figures: pd.DataFrame, diff_when: str = "over_threshold") -> list[str]:
    """Entities with a figure beyond the threshold (or with any difference), in figure order."""
    if figures.empty:
        return []
    bad = ~figures["passed"] if diff_when == "over_threshold" else figures["source_value"] != figures["warehouse_value"]
    return list(dict.fromkeys(figures.loc[bad, "entity"]))
