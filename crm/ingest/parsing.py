"""Landing files parsed into rows of strings (CSV) or JSON values (JSON lines), with their row numbers. Pure.

Any byte sequence ends as a parsed file or a `MalformedFileError` naming why: a line or row
that cannot be a record is kept as an unreadable row, never a crash that stops other files.
"""

from __future__ import annotations

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
    if landing_file.entity.file_format == "csv":
        return _parse_csv(text)
    return _parse_jsonl(text, landing_file.entity.column_names)


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
