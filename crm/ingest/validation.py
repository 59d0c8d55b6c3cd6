"""Row-level validation of an entity batch against its contract: pure, vectorised, no IO.

A text column (CSV fields, JSON strings, database text) is checked on one Arrow array: blank,
integer, allowed-value and length rules read the same trimmed array, in Arrow's C++ kernels.

Every input row ends in exactly one place: `valid` (typed, one row per key), `rejected`
(with the first rule it broke and a readable reason) or `duplicates` (its key repeats an
earlier row of the same batch).

Values are checked by where they come from: typed database columns, CSV text, or JSON values.
CSV and JSON are strict: an integer is decimal digits with an optional minus (or a JSON
integer, kept exact beyond 2^53), never `true`, `10.0`, `1e1` or `+10`; text is a JSON string
(or integer), never an object, array, boolean or float; timestamps are ISO 8601 strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm.core.contracts import Column, Entity, record_keys

REJECTED_COLUMNS = ["row_number", "record_key", "rule", "reason", "record"]
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}
ValueOrigin = Literal["database", "csv", "json"]
# No business in DOMAIN.md predates 1970: an earlier timestamp is a broken export, not history.
DEFAULT_PLAUSIBLE_SINCE = date(1970, 1, 1)
RECEIVED_MAX_CHARS = 65_536  # a quarantined row keeps at most this much of what was received
_INT64 = (-(2**63), 2**63 - 1)
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}
_JSON_EXPECTED = {
    "int": "a JSON integer or a string of digits",
    "money": "a JSON integer or a string of digits",
    "str": "a JSON string",
    "timestamp": "an ISO 8601 string",
    "date": "an ISO 8601 string",
    "bool": "true or false",
}


def cut_text(text: str) -> str:
    """`text`, or its first `RECEIVED_MAX_CHARS` characters and a marker."""
    return text if len(text) <= RECEIVED_MAX_CHARS else text[:RECEIVED_MAX_CHARS] + "…(cut)"


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
    origin: ValueOrigin = "database",
    plausible_since: date = DEFAULT_PLAUSIBLE_SINCE,
    received: Sequence[str] | None = None,
) -> ValidationResult:
    """Type and check `raw` (typed database values, CSV strings or JSON values, per `origin`) against `entity`.

    A required column absent from the batch makes it unusable (`MissingColumnsError`); an optional
    one is null. `received` (JSON lines as they arrived) is what quarantine keeps of a rejected row.
    """
    missing = [c.name for c in entity.columns if c.name not in raw.columns and c.required]
    if missing:
        found = ", ".join(cut_text(str(c))[:64] for c in raw.columns[:50])
        raise MissingColumnsError(f"missing columns {', '.join(missing)} (found: {found or 'none'})")
    raw = raw.reset_index(drop=True)
    checker = _Checker(len(raw))
    typed: dict[str, pd.Series] = {}
    for column in entity.columns:
        values = raw[column.name] if column.name in raw.columns else pd.Series(None, index=raw.index, dtype=object)
        typed[column.name] = _check_column(checker, values, column, origin, plausible_since)

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
        unknown = values.notna().to_numpy(bool) & ~_is_known(values, known)
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
            "record": (
                [cut_text(received[i]) for i in rejected_idx]
                if received is not None
                else _records_json(raw.iloc[rejected_idx])
            ),
        },
        columns=REJECTED_COLUMNS,
    )
    return ValidationResult(
        valid=good[~repeated].reset_index(drop=True), rejected=rejected, duplicates=int(repeated.sum())
    )


def _is_known(values: pd.Series, known: pd.Index) -> np.ndarray:
    """Whether each value is one of `known` (a null never is)."""
    if isinstance(values.dtype, pd.Int64Dtype) and known.dtype == np.int64 and known.is_unique:
        # The index's own hash table: built once per index, so once for every file and chunk of a run.
        return (known.get_indexer(values.to_numpy(np.int64, na_value=0)) >= 0) & values.notna().to_numpy(bool)
    return values.isin(known).to_numpy(bool)


class _Checker:
    """Keeps, per row, the first rule it broke."""

    def __init__(self, n: int) -> None:
        self.rule = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)
        self.failed = np.zeros(n, dtype=bool)

    def fail(self, mask: np.ndarray, rule: str, reasons) -> None:
        new = np.flatnonzero(mask & ~self.failed)
        if len(new) == 0:
            return
        self.failed[new] = True
        self.rule[new] = rule
        text = reasons(new) if callable(reasons) else reasons
        self.reason[new] = text.to_numpy(object) if isinstance(text, pd.Series) else text


# Values whose text is never blank: a column of them is blank only where it is null.
_NEVER_BLANK = {"integer", "floating", "decimal", "boolean", "datetime", "datetime64", "date", "time", "timedelta"}


def _is_blank(series: pd.Series) -> pd.Series:
    blank = series.isna()
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in _NEVER_BLANK:
        return blank  # e.g. dates from the database: no need to write each one as text
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        # Arrow strips in C++: a Python regex over every cell cost a tenth of a load.
        blank |= series.astype("string[pyarrow]").str.strip().eq("").fillna(False).astype(bool)
    return blank


def _check_column(
    checker: _Checker, series: pd.Series, column: Column, origin: ValueOrigin, plausible_since: date
) -> pd.Series:
    text, wrong = series, None
    if origin == "json":
        text, wrong = _json_as_text(series, column)
        if isinstance(text.dtype, pd.Int64Dtype):  # JSON integers of an integer column, already typed
            blank = series.isna().to_numpy(bool)
            checker.fail(blank & column.required, "required", f"{column.name} is required but empty")
            return _check_value(checker, series, text, blank, column, plausible_since)
    # One Arrow array per text column: blank, integer, allowed-value and length rules all read it.
    arrow = _text_array(text)
    if arrow is not None and (wrong is None or not wrong.any()):
        trimmed = pc.utf8_trim_whitespace(arrow)
        blank = pc.fill_null(pc.equal(trimmed, ""), True).to_numpy(zero_copy_only=False)
    else:  # typed database values, or JSON values of the wrong type (whose text is null, not blank)
        arrow = trimmed = None
        blank = _is_blank(series).to_numpy(bool)
    if column.required:
        checker.fail(blank, "required", f"{column.name} is required but empty")
    if wrong is not None:
        checker.fail(
            wrong & ~blank,
            "type",
            lambda idx: pd.Series(
                [
                    f"{column.name} must be {_JSON_EXPECTED[column.kind]}, not a JSON {_json_type(v)}: "
                    f"{json.dumps(v, default=str)[:40]}"
                    for v in series.iloc[idx]
                ],
                dtype=object,
            ),
        )
    if trimmed is not None and column.kind == "str":
        return _check_text(checker, series, trimmed, blank, column)
    if trimmed is not None and column.kind in ("int", "money") and origin != "database":
        value = _integers(trimmed, series.index)
    else:
        present_text = text.where(~blank)
        value = (_parse if origin == "database" else _parse_text)(present_text, column)[0]
    return _check_value(checker, series, value, blank, column, plausible_since)


def _shown(series: pd.Series, idx: np.ndarray) -> pd.Series:
    """The first 40 characters of the values received at `idx` (only for the few rows that fail)."""
    return series.iloc[idx].astype("string").str.slice(0, 40)


def _check_value(
    checker: _Checker,
    series: pd.Series,
    value: pd.Series,
    blank: np.ndarray,
    column: Column,
    plausible_since: date,
) -> pd.Series:
    """The type rule (a present value that did not parse) and the rules on typed values."""
    present = value.notna()
    checker.fail(
        ~blank & ~present.to_numpy(bool),
        "type",
        lambda idx: f"{column.name} '" + _shown(series, idx) + f"' is not a valid {column.kind}",
    )
    if column.kind == "timestamp":
        floor = pd.Timestamp(plausible_since)
        checker.fail(
            (present & (value < floor)).fillna(False).to_numpy(bool),
            "plausible_date",
            lambda idx: f"{column.name} " + value.iloc[idx].astype(str) + f" is before {plausible_since} (implausible)",
        )
    if column.allowed:
        outside = (present & ~value.isin(column.allowed)).to_numpy(bool)
        checker.fail(
            outside,
            "allowed_values",
            lambda idx: f"{column.name} '" + _shown(series, idx) + f"' is not one of {', '.join(column.allowed)}",
        )
    if column.kind == "money":
        checker.fail(
            (present & (value < 0)).fillna(False).to_numpy(bool),
            "non_negative",
            lambda idx: f"{column.name} " + _shown(series, idx) + " is negative",
        )
    if column.kind == "str":
        checker.fail(
            (present & (value.str.len() > column.max_length)).fillna(False).to_numpy(bool),
            "max_length",
            f"{column.name} is longer than {column.max_length} characters",
        )
    return value


def _check_text(
    checker: _Checker, series: pd.Series, trimmed: pa.Array, blank: np.ndarray, column: Column
) -> pd.Series:
    """The rules of a text column on its trimmed Arrow array; its values as Python strings (None when blank)."""
    present = ~blank
    if column.allowed:
        allowed = pc.is_in(trimmed, value_set=pa.array(column.allowed, type=trimmed.type))
        checker.fail(
            present & ~pc.fill_null(allowed, False).to_numpy(zero_copy_only=False),
            "allowed_values",
            lambda idx: f"{column.name} '" + _shown(series, idx) + f"' is not one of {', '.join(column.allowed)}",
        )
    too_long = pc.greater(pc.utf8_length(trimmed), column.max_length)
    checker.fail(
        present & pc.fill_null(too_long, False).to_numpy(zero_copy_only=False),
        "max_length",
        f"{column.name} is longer than {column.max_length} characters",
    )
    values = pc.if_else(pa.array(blank), pa.scalar(None, trimmed.type), trimmed)
    return pd.Series(values.to_numpy(zero_copy_only=False), index=series.index, dtype=object)


def _text_array(text: pd.Series) -> pa.Array | None:
    """`text` as one Arrow string array when it holds only strings and nulls, else None (typed values)."""
    if isinstance(text.dtype, pd.StringDtype):
        return pa.array(text.array)
    if text.dtype == object and pd.api.types.infer_dtype(text, skipna=True) in ("string", "empty"):
        return pa.array(text.to_numpy(object), type=pa.string(), from_pandas=True)
    return None


def _integers(trimmed: pa.Array, index: pd.Index) -> pd.Series:
    """Decimal digits (an optional minus, trimmed) as exact Int64; anything else null."""
    numbers = np.zeros(len(trimmed), dtype=np.int64)
    missing = np.ones(len(trimmed), dtype=bool)
    short = pc.fill_null(pc.match_substring_regex(trimmed, r"^-?[0-9]{1,18}$"), False)  # fits int64, cast in C
    if pc.any(short).as_py():
        mask = short.to_numpy(zero_copy_only=False)
        # Numpy arrays, not a masked Series assignment: pandas routes that through float64 (2^53).
        numbers[mask] = pc.cast(trimmed.filter(short), pa.int64()).to_numpy()
        missing[mask] = False
    long = pc.fill_null(pc.match_substring_regex(trimmed, r"^-?[0-9]{19,}$"), False)
    for position in np.flatnonzero(long.to_numpy(zero_copy_only=False)):  # rare: exact ints, kept if BIGINT
        number = int(trimmed[position].as_py())
        if _INT64[0] <= number <= _INT64[1]:
            numbers[position], missing[position] = number, False
    return pd.Series(pd.arrays.IntegerArray(numbers, missing), index=index)


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _json_as_text(series: pd.Series, column: Column) -> tuple[pd.Series, np.ndarray | None]:
    """JSON values as the text the CSV rules parse, and a mask of values of the wrong JSON type.

    A column of JSON integers only (and nulls) for an integer column comes back typed (Int64), with no mask.

    Strings pass as they are; integers (exact Python ints) as their digits, for integer and text
    columns; booleans only for boolean columns. Floats, objects and arrays are never accepted.
    """
    numeric_ok = column.kind in ("int", "money", "str")
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("string", "empty"):  # the common case, checked in C
        return series, np.zeros(len(series), dtype=bool)
    if inferred == "integer" and numeric_ok:
        if column.kind != "str":
            try:  # exact Python ints straight to Int64 (never through float64)
                return pd.Series(pd.array(series.to_numpy(object), dtype="Int64"), index=series.index), None
            except OverflowError:
                pass  # beyond BIGINT: through their digits, which the integer rule refuses
        return series.map(lambda v: None if v is None else str(v), na_action="ignore"), np.zeros(len(series), bool)
    values = series.to_numpy(object)
    out = np.full(len(values), None, dtype=object)
    wrong = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        kind = type(v)
        if v is None or kind is str:
            out[i] = v
        elif kind is int and numeric_ok:
            out[i] = str(v)
        elif kind is bool and column.kind == "bool":
            out[i] = "true" if v else "false"
        else:
            wrong[i] = True
    return pd.Series(out, index=series.index, dtype=object), wrong


def _parse_text(series: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """Typed values of text (CSV fields, JSON strings) and a mask of present values that are not valid."""
    present = series.notna()
    if column.kind in ("int", "money"):
        value = _integers(pc.utf8_trim_whitespace(pa.array(series.astype("string[pyarrow]").array)), series.index)
        return value, present & value.isna()
    if column.kind in ("timestamp", "date", "bool"):
        return _parse(series, column)
    value = series.astype("string").str.strip()
    return value.astype(object).where(value.notna(), None), pd.Series(False, index=series.index)


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
            value = _iso_timestamps(series)
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


def _iso_timestamps(series: pd.Series) -> pd.Series:
    """ISO 8601 values as naive UTC microsecond timestamps (NaT where a value does not parse).

    pandas picks the resolution from the whole batch: one value with nanoseconds makes it ns, and a
    year outside 1677-2262 then fails to parse, so a row's rule (`type` or `plausible_date`) would
    depend on its neighbours. The values that failed are parsed again on their own.
    """
    parsed = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
    value = parsed.dt.tz_localize(None).astype("datetime64[us]")
    again = series.notna() & value.isna()
    if again.any() and again.sum() < len(series):
        alone = pd.to_datetime(series[again], errors="coerce", utc=True, format="ISO8601")
        value[again] = alone.dt.tz_localize(None).astype("datetime64[us]")
    return value


def _records_json(rows: pd.DataFrame) -> list[str]:
    if rows.empty:
        return []
    cleaned = rows.astype(object).where(rows.notna(), None)
    return [cut_text(json.dumps(r, default=str, ensure_ascii=False)) for r in cleaned.to_dict("records")]
