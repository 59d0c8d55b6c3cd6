"""Row-level validation of an entity batch against its contract: pure, vectorised, no IO.

Every input row ends in exactly one place: `valid` (typed, one row per key), `rejected`
(with the first rule it broke and a readable reason) or `duplicates` (its key repeats an
earlier row of the same batch).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crm.core.contracts import Column, Entity, record_keys

REJECTED_COLUMNS = ["row_number", "record_key", "rule", "reason", "record"]
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


class MissingColumnsError(ValueError):
    """The batch lacks columns the contract requires: the whole file is unusable."""


@dataclass
class ValidationResult:
    """The outcome of validating one batch."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    duplicates: int

    @property
    def rows_read(self) -> int:
        """Rows that came in."""
        return len(self.valid) + len(self.rejected) + self.duplicates


def validate_frame(
    raw: pd.DataFrame,
    entity: Entity,
    *,
    as_of: date,
    known_ids: Mapping[str, pd.Index] | None = None,
    row_numbers: np.ndarray | None = None,
) -> ValidationResult:
    """Type and check `raw` (strings from a file or typed values from a database) against `entity`."""
    missing = [c.name for c in entity.columns if c.name not in raw.columns]
    if missing:
        raise MissingColumnsError(
            f"missing columns {', '.join(missing)} (found: {', '.join(map(str, raw.columns)) or 'none'})"
        )
    raw = raw.reset_index(drop=True)
    checker = _Checker(len(raw))
    typed: dict[str, pd.Series] = {}
    for column in entity.columns:
        typed[column.name] = _check_column(checker, raw[column.name], column)

    if entity.event_time_column:
        when = typed[entity.event_time_column]
        end_of_day = pd.Timestamp(as_of + timedelta(days=1))
        checker.fail(
            (when >= end_of_day).fillna(False).to_numpy(bool),
            "not_in_future",
            lambda idx: (
                f"{entity.event_time_column} " + when.iloc[idx].astype(str) + f" is after the business day {as_of}"
            ),
        )
    for column_name, referenced in entity.references.items():
        known = (known_ids or {}).get(referenced)
        if known is None:
            continue
        values = typed[column_name]
        unknown = (values.notna() & ~values.isin(known)).to_numpy(bool)
        checker.fail(
            unknown,
            "known_reference",
            lambda idx, v=values, c=column_name, r=referenced: (
                f"{c} " + v.iloc[idx].astype(str) + f" is not a known {r}"
            ),
        )

    frame = pd.DataFrame(typed)
    bad = checker.failed
    good = frame[~bad]
    repeated = good.duplicated(subset=list(entity.key), keep="first")
    rejected_idx = np.flatnonzero(bad)
    rejected = pd.DataFrame(
        {
            "row_number": (row_numbers[rejected_idx] if row_numbers is not None else [None] * len(rejected_idx)),
            "record_key": record_keys(raw.iloc[rejected_idx], entity.key),
            "rule": checker.rule[rejected_idx],
            "reason": checker.reason[rejected_idx],
            "record": _records_json(raw.iloc[rejected_idx]),
        },
        columns=REJECTED_COLUMNS,
    )
    return ValidationResult(
        valid=good[~repeated].reset_index(drop=True), rejected=rejected, duplicates=int(repeated.sum())
    )


class _Checker:
    """Keeps, per row, the first rule it broke."""

    def __init__(self, n: int) -> None:
        self.rule = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)

    @property
    def failed(self) -> np.ndarray:
        return self.rule != None  # noqa: E711 - elementwise on an object array

    def fail(self, mask: np.ndarray, rule: str, reasons) -> None:
        new = np.flatnonzero(mask & ~self.failed)
        if len(new) == 0:
            return
        self.rule[new] = rule
        text = reasons(new) if callable(reasons) else reasons
        self.reason[new] = text.to_numpy(object) if isinstance(text, pd.Series) else text


def _is_blank(series: pd.Series) -> pd.Series:
    blank = series.isna()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        # Arrow strips in C++: a Python regex over every cell cost a tenth of a load.
        blank |= series.astype("string[pyarrow]").str.strip().eq("").fillna(False).astype(bool)
    return blank


def _check_column(checker: _Checker, series: pd.Series, column: Column) -> pd.Series:
    blank = _is_blank(series)
    if column.required:
        checker.fail(blank.to_numpy(bool), "required", f"{column.name} is required but empty")
    value, unparsable = _parse(series.where(~blank), column)

    def shown(idx: np.ndarray) -> pd.Series:  # only for the few rows that fail
        return series.iloc[idx].astype("string").str.slice(0, 40)

    checker.fail(
        unparsable.to_numpy(bool),
        "type",
        lambda idx: f"{column.name} '" + shown(idx) + f"' is not a valid {column.kind}",
    )
    present = value.notna()
    if column.allowed:
        outside = (present & ~value.isin(column.allowed)).to_numpy(bool)
        checker.fail(
            outside,
            "allowed_values",
            lambda idx: f"{column.name} '" + shown(idx) + f"' is not one of {', '.join(column.allowed)}",
        )
    if column.kind == "money":
        checker.fail(
            (present & (value < 0)).fillna(False).to_numpy(bool),
            "non_negative",
            lambda idx: f"{column.name} " + shown(idx) + " is negative",
        )
    if column.kind == "str":
        checker.fail(
            (present & (value.str.len() > column.max_length)).fillna(False).to_numpy(bool),
            "max_length",
            f"{column.name} is longer than {column.max_length} characters",
        )
    return value


def _parse(series: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """Typed values and a mask of present values that could not be parsed."""
    present = series.notna()
    if column.kind in ("int", "money"):
        if pd.api.types.is_integer_dtype(series.dtype):
            return series.astype("Int64"), pd.Series(False, index=series.index)
        number = pd.to_numeric(series, errors="coerce")
        integral = number.notna() & (number % 1 == 0) & (number.abs() < 2**62)
        return number.where(integral).astype("Float64").round().astype("Int64"), present & ~integral
    if column.kind in ("timestamp", "date"):
        if pd.api.types.is_datetime64_any_dtype(series.dtype) and getattr(series.dtype, "tz", None) is None:
            value = series.astype("datetime64[us]")
        else:
            value = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
            value = value.dt.tz_localize(None).astype("datetime64[us]")
        if column.kind == "date":
            value = value.dt.normalize()
        return value, present & value.isna()
    if column.kind == "bool":
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.astype("boolean"), pd.Series(False, index=series.index)
        text = series.astype("string").str.strip().str.lower()
        value = pd.Series(pd.NA, index=series.index, dtype="boolean")
        value[text.isin(_TRUE).fillna(False)] = True
        value[text.isin(_FALSE).fillna(False)] = False
        return value, present & value.isna()
    value = series.astype("string").str.strip()
    return value.astype(object).where(value.notna(), None), pd.Series(False, index=series.index)


def _records_json(rows: pd.DataFrame) -> list[str]:
    if rows.empty:
        return []
    cleaned = rows.astype(object).where(rows.notna(), None)
    return [json.dumps(r, default=str, ensure_ascii=False) for r in cleaned.to_dict("records")]
