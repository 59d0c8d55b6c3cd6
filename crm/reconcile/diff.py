"""Id diffs: which keys are missing, extra, quarantined or different between source and warehouse. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd

from crm.core.contracts import record_keys
from crm.reconcile.figures import label


class MismatchKind(StrEnum):
    """Why an id does not match, in the order reports list them."""

    MISSING = "missing"
    QUARANTINED = "quarantined"
    EXTRA = "extra"
    DIFFERENT_STATUS = "different_status"
    DIFFERENT_AMOUNT = "different_amount"


MISMATCH_KINDS = tuple(MismatchKind)
MISMATCH_COLUMNS = ["entity", "record_id", "kind", "source_value", "warehouse_value"]


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
    source: pd.DataFrame,
    warehouse: pd.DataFrame,
    *,
    key: Sequence[str],
    status: str | None = None,
    amount: str | None = None,
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
        parts.append(
            pd.DataFrame(
                {
                    "order": only_s.index,
                    "record_id": record_keys(only_s, key),
                    "kind": MismatchKind.MISSING,
                    "source_value": _describe(only_s, status, amount, "_s"),
                    "warehouse_value": None,
                }
            )
        )
    only_w = merged[merged["_merge"] == "right_only"]
    if len(only_w):
        parts.append(
            pd.DataFrame(
                {
                    "order": only_w.index,
                    "record_id": record_keys(only_w, key),
                    "kind": MismatchKind.EXTRA,
                    "source_value": None,
                    "warehouse_value": _describe(only_w, status, amount, "_w"),
                }
            )
        )
    both = merged[merged["_merge"] == "both"]
    for column, kind in ((status, MismatchKind.DIFFERENT_STATUS), (amount, MismatchKind.DIFFERENT_AMOUNT)):
        if not column or both.empty:
            continue
        a, b = both[column + "_s"], both[column + "_w"]
        same = (a == b).fillna(False).to_numpy(bool) | (a.isna() & b.isna()).to_numpy(bool)
        differ = both[~same]
        if len(differ):  # labels only for the few that differ: mapping every row is the slow part
            parts.append(
                pd.DataFrame(
                    {
                        "order": differ.index,
                        "record_id": record_keys(differ, key),
                        "kind": kind,
                        "source_value": _labels(differ[column + "_s"]).tolist(),
                        "warehouse_value": _labels(differ[column + "_w"]).tolist(),
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=["record_id", "kind", "source_value", "warehouse_value"])
    out = pd.concat(parts, ignore_index=True)
    out["kind_order"] = out["kind"].map(list(MismatchKind).index)
    out = out.sort_values(["order", "kind_order"], kind="stable", ignore_index=True)
    return out[["record_id", "kind", "source_value", "warehouse_value"]]


def mark_quarantined(mismatches: pd.DataFrame, quarantine_rules: Mapping[str, str]) -> pd.DataFrame:
    """Turn `missing` ids that ingestion rejected on purpose into `quarantined`, naming the rule."""
    if mismatches.empty or not quarantine_rules:
        return mismatches
    out = mismatches.copy()
    rules = out["record_id"].map(quarantine_rules)
    hit = (out["kind"] == MismatchKind.MISSING) & rules.notna()
    out.loc[hit, "kind"] = MismatchKind.QUARANTINED
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
