"""Landing files parsed into rows of strings (CSV) or JSON values (JSON lines), with their row numbers. Pure.

Any byte sequence ends as a parsed file or a `MalformedFileError` naming why: a line or row
that cannot be a record is kept as an unreadable row, never a crash that stops other files.

Two readers, one outcome. A *plain* file (the usual export: no quotes, no carriage return, no
blank line; JSON lines that are each one flat object with no escape, tab or control character,
`NaN` or `Infinity`) is read by Arrow's C++ readers, which are ~10x faster than Python's `csv`
and `json`; anything else, and any plain file Arrow refuses (a ragged row, a JSON value of
another type than the contract's column, two objects on a line), is read by the strict Python
parsers, which name the row and the rule. Both give the same rows, row numbers and values (the
fast path keeps text as Arrow-backed strings, which validation reads without a copy):
`tests/unit/ingest/test_parsing_paths.py` checks it on generated files.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import zlib
from collections import Counter
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from crm.core.contracts import Entity
from crm.ingest.landing import LandingFile
from crm.ingest.validation import cut_text as _cut

# A field may be as long as the file: the csv module's default (131,072) turned one long
# field into a crash. Memory is bounded by the file itself, which is already in memory.
csv.field_size_limit(2**31 - 1)

JSON_WHITESPACE = " \t\r"


class MalformedFileError(ValueError):
    """A landing file that cannot be read as its contract says."""


class ParsedFile(NamedTuple):
    """A landing file's records, their 1-based row numbers, rows unreadable as records, and rows as received."""

    frame: pd.DataFrame
    row_numbers: np.ndarray
    unreadable: pd.DataFrame
    # JSON lines: each record's line as received (quarantine keeps it); None for CSV (rebuilt from the frame).
    received: list[str] | None


def parse_landing_file(data: bytes, landing_file: LandingFile) -> ParsedFile:
    """Rows of a landing file (CSV: strings; JSON lines: JSON values), row numbers and unreadable rows."""
    if landing_file.compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise MalformedFileError(f"not a gzip file: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedFileError(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    if "\x00" in text:
        raise MalformedFileError("binary content (NUL bytes) in a text file")
    raw = data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data  # the bytes of `text`
    if landing_file.entity.file_format == "csv":
        return _read_plain_csv(text, raw) or _parse_csv(text)
    entity = landing_file.entity
    return _read_plain_jsonl(text, raw, entity) or _parse_jsonl(text, entity.column_names)


def _plain_csv(raw: bytes) -> bool:
    """Whether a CSV file needs none of the strict parser's care: no quoting, no carriage return, no blank line."""
    return not (raw.startswith(b"\n") or b'"' in raw or b"\r" in raw or b"\n\n" in raw)


def _read_plain_csv(text: str, raw: bytes) -> ParsedFile | None:
    """A plain CSV file read by Arrow (every field a string, as the strict parser gives it); None when not plain."""
    if not raw or not _plain_csv(raw):
        return None
    first, _, rest = text.partition("\n")
    header = [name.strip() for name in first.split(",")]  # no quotes: a field is what lies between its commas
    if len(set(header)) < len(header):
        return None  # the strict parser names the repeated columns
    if not rest:  # a header and no row (which Arrow calls an empty file)
        return ParsedFile(
            pd.DataFrame(columns=header, dtype=object), np.arange(0, dtype=np.int64), _unreadable([]), None
        )
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(raw),
            read_options=pa_csv.ReadOptions(skip_rows=1, column_names=header, use_threads=False),
            parse_options=pa_csv.ParseOptions(quote_char=False, newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False, check_utf8=False
            ),
        )
    except pa.ArrowInvalid:  # a row of another width than the header: the strict parser keeps it as unreadable
        return None
    frame = pd.DataFrame({name: _strings(table.column(i)) for i, name in enumerate(header)}, columns=header)
    return ParsedFile(frame, np.arange(1, len(frame) + 1, dtype=np.int64), _unreadable([]), None)


def _strings(column: pa.ChunkedArray) -> pd.Series:
    """An Arrow string column as a pandas string Series over the same buffers."""
    return column.to_pandas()  # pandas 3: the `str` dtype, Arrow-backed


# Whatever Python's strict `json` and Arrow's reader could read differently stays with `json`: escapes (NUL,
# surrogates), raw control characters and tabs, NaN / Infinity (Arrow takes them), nesting, carriage returns.
_JSON_ARROW_TYPES = {"int": pa.int64(), "money": pa.int64(), "bool": pa.bool_()}


def _plain_jsonl(raw: bytes) -> bool:
    """Whether every line of a JSON-lines file is one flat object Arrow's reader and `json` read alike."""
    if b"NaN" in raw or b"Infinity" in raw:
        return False
    # What is left of the bytes once all but braces, brackets, backslashes and controls are gone: one `{` and
    # its line feed per line means no blank line, no nesting, no escape, no raw control (`json` refuses those).
    left = raw.translate(None, _ORDINARY)
    if not left.endswith(b"\n"):
        left += b"\n"
    return left == b"{\n" * (len(left) // 2)


_ORDINARY = bytes(b for b in range(256) if b >= 32 and b not in b"{[\\")


def _read_plain_jsonl(text: str, raw: bytes, entity: Entity) -> ParsedFile | None:
    """A plain JSON-lines file read by Arrow, as the strict parser's frame (the contract's columns seen in the
    file, integers as exact Python ints); None when not plain or when Arrow refuses a value's type."""
    if not raw or not _plain_jsonl(raw):
        return None
    schema = pa.schema([(c.name, _JSON_ARROW_TYPES.get(c.kind, pa.string())) for c in entity.columns])
    try:
        table = pa_json.read_json(
            pa.py_buffer(raw),
            read_options=pa_json.ReadOptions(use_threads=False),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=False
            ),
        )
    except pa.ArrowInvalid:  # a value of another type, a duplicate key, bad syntax: the strict parser decides
        return None
    received = text.split("\n")
    if received[-1] == "":
        received.pop()
    if table.num_rows != len(received):  # two objects on one line: `json` refuses that line
        return None
    frame = {}
    for column in entity.columns:
        values = table.column(column.name)
        if values.null_count and column.name in entity.key:
            return None  # a quarantined row's key tells a null (`[null]`) from a missing key (`[NaN]`): `json` does
        if values.null_count == len(values) and f'"{column.name}"'.encode() in raw:
            return None  # null everywhere, or absent? only the strict parser tells
        if values.null_count == len(values):
            continue  # no line has the key: the column is absent, as the strict parser leaves it
        if pa.types.is_string(values.type):
            frame[column.name] = _strings(values)
        else:  # exact Python ints (and bools), as `json` gives them
            frame[column.name] = pd.Series(values.to_pylist(), dtype=object)
    frame = pd.DataFrame(frame) if frame else pd.DataFrame(index=range(len(received)))
    return ParsedFile(frame, np.arange(1, len(received) + 1, dtype=np.int64), _unreadable([]), received)


def _unreadable(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["row_number", "reason", "record"])


def _parse_csv(text: str) -> ParsedFile:
    reader = csv.reader(io.StringIO(text, newline=""))
    good, numbers, bad = [], [], []
    number, header = 0, None
    try:
        header = next(reader, None)
        if not header:
            raise MalformedFileError("empty file: no header row")
        header = [h.strip() for h in header]
        repeated = [name for name, n in Counter(header).items() if n > 1]
        if repeated:
            raise MalformedFileError(
                "the header repeats column(s) " + ", ".join(repr(_cut(name)[:64]) for name in repeated)
            )
        width = len(header)
        rows = list(reader)
        if all(len(row) == width for row in rows):  # the usual file: every row a record, no blank line
            frame = pd.DataFrame(rows, columns=header, dtype=object)
            return ParsedFile(frame, np.arange(1, len(rows) + 1, dtype=np.int64), _unreadable([]), None)
        for number, row in enumerate(rows, start=1):
            if len(row) == width:
                good.append(row)
                numbers.append(number)
            elif row:  # a blank line is not a row
                bad.append(
                    (
                        number,
                        f"has {len(row)} fields, the header has {width}",
                        _cut(json.dumps(row, ensure_ascii=False)),
                    )
                )
    except csv.Error as exc:
        if header is not None:  # which record broke: count the records read before it
            number = sum(1 for _ in _records_until_error(text))
        where = "in the header" if header is None else f"at data row {number + 1}"
        raise MalformedFileError(f"CSV syntax error {where}: {exc}") from exc
    frame = pd.DataFrame(good, columns=header, dtype=object)
    return ParsedFile(frame, np.asarray(numbers, dtype=np.int64), _unreadable(bad), None)


def _records_until_error(text: str):
    """The data records of a CSV text up to its first syntax error."""
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    try:
        yield from reader
    except csv.Error:
        return


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


# One decoder for every line: `json.loads` with arguments builds a new one per call (twice as slow).
_JSON = json.JSONDecoder(parse_constant=_no_constant)


def _storable(value: object) -> bool:
    """False when a decoded string holds a NUL or an unpaired surrogate (no database stores them)."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def _parse_jsonl(text: str, column_names: list[str]) -> ParsedFile:
    records, numbers, received, bad = [], [], [], []
    # JSON lines end with \n only: U+2028, U+0085 and friends are valid inside a JSON string.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip(JSON_WHITESPACE):
            continue
        try:
            record = _JSON.decode(line)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, 4,300-digit integers, deep nesting
            message = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            bad.append((number, f"not valid JSON: {message[:200]}", _cut(json.dumps(line))))
            continue
        if not isinstance(record, dict):
            bad.append((number, "a JSON line must be an object", _cut(json.dumps(line))))
            continue
        if "\\u" in line and not _storable(record):
            bad.append(
                (number, "a string holds a NUL or an unpaired surrogate (\\u0000, \\ud800)", _cut(json.dumps(line)))
            )
            continue
        records.append(record)
        numbers.append(number)
        received.append(line)  # cut only if it is quarantined
    if bad and not records:
        raise MalformedFileError(f"no line is a JSON object (first error, line {bad[0][0]}: {bad[0][1]})")
    # Only the contract's columns are kept (a file with a million distinct keys stays small), as the
    # Python values json gave: ints stay exact ints (never through float64), validation checks types.
    seen = set().union(*records) if records else set(column_names)
    present = [name for name in column_names if name in seen]
    frame = pd.DataFrame(records, columns=present, dtype=object) if records else pd.DataFrame(columns=present)
    frame = frame.astype(object)
    return ParsedFile(frame, np.asarray(numbers, dtype=np.int64), _unreadable(bad), received)


def file_checksum(data: bytes) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(data).hexdigest()
