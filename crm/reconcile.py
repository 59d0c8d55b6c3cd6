"""Reconciliation: top-level figures of the source of truth against the warehouse, and id diffs.

For a business day `as_of` both sides are read as "every row whose last change (`updated_at`)
lies before the end of `as_of`" — the source directly (read only), the warehouse through the
`updated_at` its `stg_` tables carry — so a past day can be reconciled after later days were
ingested. Rows the source has changed since the day (their new version is not comparable) are
left out of both sides: the warehouse may still hold their older version when it is behind the
live source, and that is lag, not loss.

Figures (counts per status, integer money sums) are aggregated in SQL, one scan per entity and
side, for the `day` (business time on `as_of`) and `cumulative` scopes. When an entity's figure
diverges beyond the threshold its id lists are diffed chunk by chunk in key order (key, status
and amount only), so memory stays bounded at millions of rows.

Pure logic (metrics, comparison, diff, summaries) is separate from the IO edges at the bottom.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, Select, Table, and_, case, delete, func, literal, select, tuple_

from crm.config import load_config
from crm.contracts import ENTITIES, SOURCE_ENTITIES, Entity
from crm.dates import end_of
from crm.db import write_frame
from crm.gate import record_verdict
from models import source as source_model
from models import warehouse as wh

SCOPES = ("day", "cumulative")
MISMATCH_KINDS = ("missing", "quarantined", "extra", "different_status", "different_amount")
FIGURE_COLUMNS = ["entity", "metric", "scope", "source_value", "warehouse_value", "divergence", "threshold", "passed"]
MISMATCH_COLUMNS = ["entity", "record_id", "kind", "source_value", "warehouse_value"]
AGGREGATE_COLUMNS = ["grp", "rows_cumulative", "rows_day", "amount_cumulative", "amount_day"]
# Bound parameters per `IN (...)` list (SQLite allows 32,766 per statement).
IN_LIST_SIZE = 5_000


# --------------------------------------------------------------------------- configuration

class EntityCheck(BaseModel):
    """What is reconciled for one source entity."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    business_time: str | None = Field(None, description="Column whose date puts a row in the `day` scope; none: cumulative only.")
    status: str | None = Field(None, description="Column counted per value and compared id by id (final status, payment type).")
    amount: str | None = Field(None, description="Integer money column summed and compared id by id.")
    amount_by_status: bool = Field(False, description="Also sum `amount` per `status` value.")


def _default_entities() -> dict[str, EntityCheck]:
    return {
        "customers": EntityCheck(business_time="registered_at"),
        "customer_contacts": EntityCheck(status="is_consented"),
        "loan_applications": EntityCheck(business_time="created_at", status="status", amount="requested_amount_minor"),
        "application_status_changes": EntityCheck(business_time="changed_at", status="status"),
        "loans": EntityCheck(business_time="issued_at", status="status", amount="principal_minor"),
        "payments": EntityCheck(business_time="paid_at", status="payment_type", amount="amount_minor", amount_by_status=True),
        "orders": EntityCheck(business_time="ordered_at", status="status", amount="amount_minor"),
    }


class ReconciliationConfig(BaseModel):
    """`config/reconciliation.yaml`: threshold, figures per entity, diff limits."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.001, ge=0, description="Largest divergence |source - warehouse| / max(|source|, 1) that passes.")
    diff_when: Literal["over_threshold", "any_difference"] = "over_threshold"
    max_stored_ids: int = Field(100_000, gt=0, description="Mismatching ids stored per entity and kind (counts stay exact).")
    chunk_rows: int = Field(100_000, gt=0, description="Rows per side read at once when diffing ids.")
    examples: int = Field(5, ge=0, description="Example ids per entity and kind in the summary artifact.")
    trend_days: int = Field(30, gt=0, description="Days of divergence history in the trend artifact.")
    entities: dict[str, EntityCheck] = Field(default_factory=_default_entities)

    @model_validator(mode="after")
    def _known_columns(self) -> ReconciliationConfig:
        source_names = {e.name for e in SOURCE_ENTITIES}
        for name, check in self.entities.items():
            if name not in source_names:
                raise ValueError(f"entities.{name}: not a source-database entity ({', '.join(sorted(source_names))})")
            entity = ENTITIES[name]
            for role in ("business_time", "status", "amount"):
                column = getattr(check, role)
                if column is not None and column not in entity.column_names:
                    raise ValueError(f"entities.{name}.{role}: {name} has no column {column!r}")
            if check.status:
                column = entity.column(check.status)
                if not (column.allowed or column.kind == "bool"):
                    # Statuses are shown in artifacts and logs: only closed lists, never free text (contacts).
                    raise ValueError(f"entities.{name}.status: {check.status!r} is not a closed list of values")
            if check.amount and entity.column(check.amount).kind != "money":
                raise ValueError(f"entities.{name}.amount: {check.amount!r} is not a money column")
            if check.amount_by_status and not (check.amount and check.status):
                raise ValueError(f"entities.{name}.amount_by_status needs both amount and status")
        return self

    def checked(self) -> list[tuple[Entity, EntityCheck]]:
        """Enabled entities with their checks, in the contract's load order."""
        return [(e, self.entities[e.name]) for e in SOURCE_ENTITIES if e.name in self.entities and self.entities[e.name].enabled]


def load_reconciliation_config() -> ReconciliationConfig:
    """The reconciliation configuration (`config/reconciliation.yaml`, defaults when absent)."""
    return load_config("reconciliation", ReconciliationConfig)


# --------------------------------------------------------------------------- pure: figures

def day_bounds(as_of: date) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of the business day, as the naive timestamps the tables hold."""
    end = end_of(as_of)
    return end - timedelta(days=1), end


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


def aggregate_statement(table: Table, entity: Entity, check: EntityCheck, as_of: date) -> Select:
    """One scan of `table`: rows and amount sums per status value, whole and for the business day.

    Result columns: grp, rows_cumulative, rows_day, amount_cumulative, amount_day.
    """
    start, end = day_bounds(as_of)
    grp = table.c[check.status] if check.status else literal(None)
    amount = table.c[check.amount] if check.amount else literal(0)
    if check.business_time:
        when = table.c[check.business_time]
        on_day = and_(when >= start, when < end)
        rows_day = func.coalesce(func.sum(case((on_day, 1), else_=0)), 0)
        amount_day = func.coalesce(func.sum(case((on_day, amount), else_=0)), 0)
    else:
        rows_day = amount_day = literal(0)
    stmt = select(
        grp.label("grp"),
        func.count().label("rows_cumulative"),
        rows_day.label("rows_day"),
        func.coalesce(func.sum(amount), 0).label("amount_cumulative"),
        amount_day.label("amount_day"),
    ).where(table.c[entity.updated_column] < end)
    if check.status:
        stmt = stmt.group_by(grp)
    return stmt


def empty_aggregates() -> pd.DataFrame:
    """An aggregate frame with no groups."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c != "grp" else object) for c in AGGREGATE_COLUMNS})


def combine_aggregates(frames: Sequence[pd.DataFrame], *, sign: Sequence[int] | None = None) -> pd.DataFrame:
    """Add (or, with sign -1, subtract) aggregate frames group by group."""
    sign = sign or [1] * len(frames)
    parts = []
    for frame, s in zip(frames, sign):
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
    scopes = SCOPES if check.business_time else ("cumulative",)
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
                    out[(f"sum({check.amount})[{check.status}={value}]", scope)] = int(by_value[f"amount_{scope}"].get(value, 0))
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
    return frame.astype({"source_value": "int64", "warehouse_value": "int64", "divergence": "float64", "passed": "bool"})


def entities_to_diff(figures: pd.DataFrame, diff_when: str = "over_threshold") -> list[str]:
    """Entities with a figure beyond the threshold (or with any difference), in figure order."""
    if figures.empty:
        return []
    bad = ~figures["passed"] if diff_when == "over_threshold" else figures["source_value"] != figures["warehouse_value"]
    return list(dict.fromkeys(figures.loc[bad, "entity"]))


# --------------------------------------------------------------------------- pure: id diff

def record_ids(keys: pd.DataFrame) -> list[str]:
    """Keys as JSON lists, the format of `quarantined_rows.record_key` (e.g. `[42]`, `[7, "sms"]`)."""
    if keys.empty:
        return []
    return [json.dumps(list(k), default=str) for k in keys.astype(object).itertuples(index=False, name=None)]


def _labels(series: pd.Series) -> pd.Series:
    return series.astype(object).map(label)


def _describe(frame: pd.DataFrame, status: str | None, amount: str | None, suffix: str) -> list[str]:
    parts = []
    if status:
        parts.append(f"{status}=" + _labels(frame[status + suffix]))
    if amount:
        parts.append(f"{amount}=" + _labels(frame[amount + suffix]))
    if not parts:
        return [None] * len(frame)
    text = parts[0]
    for p in parts[1:]:
        text = text + "; " + p
    return text.tolist()


def diff_rows(
    source: pd.DataFrame, warehouse: pd.DataFrame, *, key: Sequence[str], status: str | None = None, amount: str | None = None
) -> pd.DataFrame:
    """Mismatching ids between two frames of the same key range.

    Kinds: `missing` (only in the source), `extra` (only in the warehouse), `different_status`,
    `different_amount` (a row can be both). Columns: record_id, kind, source_value,
    warehouse_value; sorted by key, then kind.
    """
    key = list(key)
    compared = [c for c in (status, amount) if c]
    s = source[key + compared].rename(columns={c: c + "_s" for c in compared})
    w = warehouse[key + compared].rename(columns={c: c + "_w" for c in compared})
    if amount:  # nullable integers: an outer merge would turn int64 into float64 (1000 -> "1000.0")
        s[amount + "_s"] = s[amount + "_s"].astype("Int64")
        w[amount + "_w"] = w[amount + "_w"].astype("Int64")
    for k in key:  # an empty side carries no dtype, and merge refuses int64 against object
        if s.empty and not w.empty:
            s = s.astype({k: w[k].dtype})
        elif w.empty and not s.empty:
            w = w.astype({k: s[k].dtype})
    merged = s.merge(w, on=key, how="outer", indicator=True, sort=True)
    parts = []

    only_s = merged[merged["_merge"] == "left_only"]
    if len(only_s):
        parts.append(pd.DataFrame({
            "order": only_s.index, "record_id": record_ids(only_s[key]), "kind": "missing",
            "source_value": _describe(only_s, status, amount, "_s"), "warehouse_value": None,
        }))
    only_w = merged[merged["_merge"] == "right_only"]
    if len(only_w):
        parts.append(pd.DataFrame({
            "order": only_w.index, "record_id": record_ids(only_w[key]), "kind": "extra",
            "source_value": None, "warehouse_value": _describe(only_w, status, amount, "_w"),
        }))
    both = merged[merged["_merge"] == "both"]
    for column, kind in ((status, "different_status"), (amount, "different_amount")):
        if not column or both.empty:
            continue
        a, b = both[column + "_s"], both[column + "_w"]
        same = (a == b).fillna(False).to_numpy(bool) | (a.isna() & b.isna()).to_numpy(bool)
        differ = both[~same]
        if len(differ):  # labels only for the few that differ: mapping every row is the slow part
            parts.append(pd.DataFrame({
                "order": differ.index, "record_id": record_ids(differ[key]), "kind": kind,
                "source_value": _labels(differ[column + "_s"]).tolist(),
                "warehouse_value": _labels(differ[column + "_w"]).tolist(),
            }))
    if not parts:
        return pd.DataFrame(columns=["record_id", "kind", "source_value", "warehouse_value"])
    out = pd.concat(parts, ignore_index=True)
    out["kind_order"] = out["kind"].map(MISMATCH_KINDS.index)
    out = out.sort_values(["order", "kind_order"], kind="stable", ignore_index=True)
    return out[["record_id", "kind", "source_value", "warehouse_value"]]


def mark_quarantined(mismatches: pd.DataFrame, quarantine_rules: Mapping[str, str]) -> pd.DataFrame:
    """Turn `missing` ids that ingestion rejected on purpose into `quarantined`, naming the rule."""
    if mismatches.empty or not quarantine_rules:
        return mismatches
    out = mismatches.copy()
    rules = out["record_id"].map(quarantine_rules)
    hit = (out["kind"] == "missing") & rules.notna()
    out.loc[hit, "kind"] = "quarantined"
    out.loc[hit, "warehouse_value"] = "quarantined: " + rules[hit]
    return out


@dataclass
class MismatchCollector:
    """Exact mismatch counts per kind, and the first `cap` ids of each kind (in key order)."""

    cap: int
    counts: dict[str, int] = field(default_factory=dict)
    kept: list[pd.DataFrame] = field(default_factory=list)

    def add(self, mismatches: pd.DataFrame) -> None:
        """Count a chunk's mismatches and keep what still fits under the cap."""
        for kind, rows in mismatches.groupby("kind", sort=False):
            stored = min(self.counts.get(kind, 0), self.cap)
            self.counts[kind] = self.counts.get(kind, 0) + len(rows)
            room = self.cap - stored
            if room > 0:
                self.kept.append(rows.iloc[:room])

    def frame(self) -> pd.DataFrame:
        """The kept ids, in key order within each kind."""
        if not self.kept:
            return pd.DataFrame(columns=["record_id", "kind", "source_value", "warehouse_value"])
        return pd.concat(self.kept, ignore_index=True)


# --------------------------------------------------------------------------- pure: summaries

def _percent(value: float) -> str:
    return f"{value:.2%}" if value < 10 else f"{value:.0f}x"


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
        if moved else ""
    )
    if total == 0:
        return f"Reconciliation {as_of}: no figures were compared (no entity is configured), so the day is not vouched for."
    if failed.empty:
        worst = figures.loc[figures["divergence"].idxmax()]
        largest = (
            f"largest divergence {_percent(worst.divergence)} in {worst.entity} {worst.metric} ({worst.scope})"
            if worst.divergence > 0 else "every figure matches exactly"
        )
        return f"Reconciliation {as_of}: all {total} figures are within {_percent(threshold)} of the source; {largest}.{tail}"
    listed = [
        f"{r.entity} {r.metric} ({r.scope}) source {r.source_value:,} vs warehouse {r.warehouse_value:,} ({_percent(r.divergence)})"
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
        f"{_percent(threshold)} ({', '.join(entities)}): {'; '.join(listed)}{more}.{id_text}{tail} "
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
        return "\n".join(lines + ["No reconciliation results in this period yet."])
    lines += [
        f"Largest divergence per entity and day (threshold {_percent(threshold)}; ✗ marks a failed day, "
        "blank: not reconciled).",
        "",
        "| day | " + " | ".join(table.columns) + " |",
        "|---|" + "---:|" * len(table.columns),
    ]
    for day, row in table.iterrows():
        cells = ["" if pd.isna(v) else (_percent(v) + (" ✗" if v > threshold else "")) for v in row]
        lines.append(f"| {day} | " + " | ".join(cells) + " |")
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
        lines += ["", "## Diverging figures", "", "| entity | metric | scope | source | warehouse | divergence |", "|---|---|---|---:|---:|---:|"]
        lines += [
            f"| {r.entity} | {r.metric} | {r.scope} | {r.source_value:,} | {r.warehouse_value:,} | {_percent(r.divergence)} |"
            for r in failed.itertuples()
        ]
    if mismatch_counts:
        lines += ["", "## Mismatching ids by kind", "", "| entity | kind | ids | stored | examples |", "|---|---|---:|---:|---|"]
        for entity, counts in mismatch_counts.items():
            sample = examples.get(entity, pd.DataFrame(columns=MISMATCH_COLUMNS))
            if not any(counts.values()):
                lines.append(f"| {entity} | (none) | 0 | 0 | figures differ but every id matches |")
            for kind in MISMATCH_KINDS:
                n = counts.get(kind, 0)
                if not n:
                    continue
                rows = sample[sample["kind"] == kind]
                shown = ", ".join(
                    f"{r.record_id}" + (f" ({r.source_value} → {r.warehouse_value})" if kind.startswith("different") else "")
                    for r in rows.itertuples()
                )
                lines.append(f"| {entity} | {kind} | {n:,} | {min(n, stored_cap):,} | {shown} |")
        lines += ["", "Ids are stored in `reconciliation_mismatches` (record_id is the key as JSON, like `quarantined_rows.record_key`)."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- IO: figures

def _aggregate(conn: Connection, stmt: Select) -> pd.DataFrame:
    return pd.DataFrame(conn.execute(stmt).all(), columns=AGGREGATE_COLUMNS)


def _key_filter(table: Table, entity: Entity, keys: list[tuple]):
    if len(entity.key) == 1:
        return table.c[entity.key[0]].in_([k[0] for k in keys])
    return tuple_(*[table.c[k] for k in entity.key]).in_(keys)


def iter_changed_since(conn: Connection, entity: Entity, since: datetime, chunk: int = IN_LIST_SIZE) -> Iterator[list[tuple]]:
    """Keys of source rows changed at or after `since`, in chunks (the watermark index serves it)."""
    table = source_model.tables[entity.name]
    updated = table.c[entity.updated_column]
    order = (updated, *[table.c[k] for k in entity.key])
    mark = None
    while True:
        stmt = select(*order).where(updated >= since)
        if mark is not None:
            stmt = stmt.where(tuple_(*order) > tuple_(*mark))
        rows = conn.execute(stmt.order_by(*order).limit(chunk)).all()
        if not rows:
            return
        yield [tuple(r[1:]) for r in rows]
        if len(rows) < chunk:
            return
        mark = tuple(rows[-1])


@dataclass
class EntityFigures:
    """Both sides' figures of one entity."""

    figures: pd.DataFrame
    in_flight: int  # warehouse rows left out: the source changed them after the day


def read_entity_figures(
    source: Engine, warehouse: Engine, entity: Entity, check: EntityCheck, as_of: date, threshold: float
) -> EntityFigures:
    """Aggregate one entity on both sides and compare every figure."""
    _, end = day_bounds(as_of)
    with source.connect() as conn:
        src = _aggregate(conn, aggregate_statement(source_model.tables[entity.name], entity, check, as_of))
    stg = wh.staging[entity.name]
    with warehouse.connect() as conn:
        whs = _aggregate(conn, aggregate_statement(stg, entity, check, as_of))
    corrections = []
    if not entity.immutable:
        # Warehouse rows whose source row has moved on since the day: not comparable, left out.
        with source.connect() as src_conn, warehouse.connect() as wh_conn:
            for keys in iter_changed_since(src_conn, entity, end):
                stmt = aggregate_statement(stg, entity, check, as_of).where(_key_filter(stg, entity, keys))
                corrections.append(_aggregate(wh_conn, stmt))
    in_flight = int(sum(int(c["rows_cumulative"].map(int).sum()) for c in corrections))
    if corrections:
        whs = combine_aggregates([whs, *corrections], sign=[1] + [-1] * len(corrections))
    figures = compare_metrics(entity.name, entity_metrics(entity, check, src), entity_metrics(entity, check, whs), threshold)
    return EntityFigures(figures=figures, in_flight=in_flight)


# --------------------------------------------------------------------------- IO: id diff

@dataclass
class EntityDiff:
    """The id diff of one entity."""

    entity: str
    counts: dict[str, int]
    mismatches: pd.DataFrame  # capped per kind; columns MISMATCH_COLUMNS
    in_flight: int
    source_rows: int
    warehouse_rows: int


def _key_after(table: Table, key: Sequence[str], mark: tuple | None):
    if mark is None:
        return None
    if len(key) == 1:
        return table.c[key[0]] > mark[0]
    return tuple_(*[table.c[k] for k in key]) > tuple_(*mark)


def _key_upto(table: Table, key: Sequence[str], mark: tuple):
    if len(key) == 1:
        return table.c[key[0]] <= mark[0]
    return tuple_(*[table.c[k] for k in key]) <= tuple_(*mark)


def _last_key(frame: pd.DataFrame, key: Sequence[str]) -> tuple:
    """The last row's key as plain Python values (a numpy scalar would bind as a BLOB in SQLite)."""
    return tuple(v.item() if isinstance(v, np.generic) else v for v in frame.iloc[-1][list(key)])


def _read(conn: Connection, stmt: Select, *, integers: Sequence[str] = ()) -> pd.DataFrame:
    """A query's rows as a frame; `integers` columns as exact nullable Int64 (money)."""
    result = conn.execute(stmt)
    columns = list(result.keys())
    rows = result.all()
    # Column by column: building a frame from Row objects probes each row's attributes (10x slower).
    values = list(zip(*rows)) if rows else [()] * len(columns)
    return pd.DataFrame({
        c: pd.array(list(v), dtype="Int64") if c in integers else pd.Series(v, dtype=None if rows else object)
        for c, v in zip(columns, values)
    })


def diff_entity_ids(
    source: Engine,
    warehouse: Engine,
    entity: Entity,
    check: EntityCheck,
    as_of: date,
    *,
    chunk_rows: int = 100_000,
    max_stored_ids: int = 100_000,
) -> EntityDiff:
    """Walk both sides in key order, `chunk_rows` source keys at a time, and classify every mismatching id.

    Source rows changed after the day are read too, only to leave their keys out on both sides.
    Missing ids sitting in `quarantined_rows` become kind `quarantined`.
    """
    _, end = day_bounds(as_of)
    key = list(entity.key)
    compared = [c for c in (check.status, check.amount) if c]
    money = [check.amount] if check.amount else []
    src_t, stg_t = source_model.tables[entity.name], wh.staging[entity.name]
    updated = entity.updated_column
    collector = MismatchCollector(cap=max_stored_ids)
    in_flight = source_rows = warehouse_rows = 0
    quarantine: dict[str, str] | None = None

    def warehouse_range(conn: Connection, lo: tuple | None, hi: tuple | None) -> Iterator[pd.DataFrame]:
        mark = lo
        while True:
            stmt = select(*[stg_t.c[c] for c in key + compared]).where(stg_t.c[updated] < end)
            if (after := _key_after(stg_t, key, mark)) is not None:
                stmt = stmt.where(after)
            if hi is not None:
                stmt = stmt.where(_key_upto(stg_t, key, hi))
            page = _read(conn, stmt.order_by(*[stg_t.c[k] for k in key]).limit(chunk_rows), integers=money)
            if page.empty:
                return
            yield page
            if len(page) < chunk_rows:
                return
            mark = _last_key(page, key)

    def classify(src_part: pd.DataFrame, wh_part: pd.DataFrame) -> None:
        nonlocal quarantine
        mismatches = diff_rows(src_part, wh_part, key=key, status=check.status, amount=check.amount)
        if (mismatches["kind"] == "missing").any():
            if quarantine is None:
                quarantine = _quarantine_rules(warehouse, entity)
            mismatches = mark_quarantined(mismatches, quarantine)
        collector.add(mismatches)

    lo: tuple | None = None
    with source.connect() as src_conn, warehouse.connect() as wh_conn:
        while True:
            # Compared in SQL: parsing every timestamp in Python would double the walk's time.
            # Rows without updated_at were never pulled by the watermark either: not comparable.
            is_current = case((src_t.c[updated] < end, 1), else_=0).label("_current")
            stmt = select(*[src_t.c[c] for c in key + compared], is_current)
            if (after := _key_after(src_t, key, lo)) is not None:
                stmt = stmt.where(after)
            chunk = _read(src_conn, stmt.order_by(*[src_t.c[k] for k in key]).limit(chunk_rows), integers=money)
            if chunk.empty:
                break
            hi = _last_key(chunk, key)
            current_mask = (chunk["_current"] == 1).to_numpy(bool)
            moved = chunk[~current_mask]
            current = chunk[current_mask].drop(columns="_current")
            wh_part = pd.concat(list(warehouse_range(wh_conn, lo, hi)) or [pd.DataFrame(columns=key + compared)], ignore_index=True)
            if len(moved) and len(wh_part):
                gone = wh_part.merge(moved[key].drop_duplicates(), on=key, how="left", indicator=True)["_merge"] == "both"
                in_flight += int(gone.sum())
                wh_part = wh_part[~gone.to_numpy()]
            source_rows += len(current)
            warehouse_rows += len(wh_part)
            classify(current, wh_part)
            lo = hi
            if len(chunk) < chunk_rows:
                break
        # Warehouse keys after the last source key: all extra.
        for page in warehouse_range(wh_conn, lo, None):
            warehouse_rows += len(page)
            classify(page.iloc[0:0], page)

    mismatches = collector.frame().assign(entity=entity.name)[MISMATCH_COLUMNS]
    counts = {kind: collector.counts.get(kind, 0) for kind in MISMATCH_KINDS}
    return EntityDiff(entity.name, counts, mismatches, in_flight, source_rows, warehouse_rows)


def _quarantine_rules(warehouse: Engine, entity: Entity) -> dict[str, str]:
    """record_key -> the rule that last rejected it, for one entity's quarantined rows."""
    q = wh.quarantined_rows
    stmt = (
        select(q.c.record_key, q.c.rule)
        .where(q.c.entity == entity.name, q.c.record_key.is_not(None))
        .order_by(q.c.quarantine_id)
    )
    with warehouse.connect() as conn:
        return {row.record_key: row.rule for row in conn.execute(stmt)}


# --------------------------------------------------------------------------- IO: record and read back

def record_reconciliation(
    warehouse: Engine,
    as_of: date,
    figures: pd.DataFrame,
    mismatches: pd.DataFrame,
    *,
    fit_for_sending: bool,
    summary: str,
) -> None:
    """Replace the day's results, mismatches and verdict in one transaction (other days untouched)."""
    results = figures[FIGURE_COLUMNS].assign(as_of=pd.Timestamp(as_of))
    ids = mismatches[MISMATCH_COLUMNS].assign(as_of=pd.Timestamp(as_of))
    for column in ("source_value", "warehouse_value"):  # String(256) columns
        ids[column] = ids[column].astype(object).where(ids[column].isna(), ids[column].astype(str).str.slice(0, 256))
    with warehouse.begin() as conn:
        conn.execute(delete(wh.reconciliation_mismatches).where(wh.reconciliation_mismatches.c.as_of == as_of))
        conn.execute(delete(wh.reconciliation_results).where(wh.reconciliation_results.c.as_of == as_of))
        write_frame(conn, wh.reconciliation_results, results, on_conflict="error")
        write_frame(conn, wh.reconciliation_mismatches, ids, on_conflict="error")
        record_verdict(conn, as_of, "reconciliation", fit_for_sending=fit_for_sending, summary=summary)


def read_divergence_history(conn: Connection, as_of: date, days: int) -> pd.DataFrame:
    """Stored divergences of the `days` days up to `as_of`: as_of, entity, divergence (largest per entity and day)."""
    r = wh.reconciliation_results
    stmt = (
        select(r.c.as_of, r.c.entity, func.max(r.c.divergence).label("divergence"))
        .where(r.c.as_of > as_of - timedelta(days=days), r.c.as_of <= as_of)
        .group_by(r.c.as_of, r.c.entity)
        .order_by(r.c.as_of, r.c.entity)
    )
    return pd.DataFrame(conn.execute(stmt).all(), columns=["as_of", "entity", "divergence"])
