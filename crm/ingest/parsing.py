"""Landing files parsed into rows of strings (CSV) or JSON values (JSON lines), with their row numbers. Pure."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json

import numpy as np
import pandas as pd

from crm.ingest.landing import LandingFile


class MalformedFileError(ValueError):
    """A landing file that cannot be read as its contract says."""


def parse_landing_file(data: bytes, landing_file: LandingFile) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Rows of a landing file as strings, their 1-based row numbers, and rows unreadable as records."""
    if landing_file.compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise MalformedFileError(f"not a gzip file: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedFileError(f"not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    if "\x00" in text:
        raise MalformedFileError("binary content (NUL bytes) in a text file")
    if landing_file.entity.file_format == "csv":
        return _parse_csv(text)
    frame, numbers, unreadable = _parse_jsonl(text)
    if frame.empty and len(frame.columns) == 0:  # a provider with nothing to report that day
        frame = pd.DataFrame(columns=landing_file.entity.column_names, dtype=object)
    return frame, numbers, unreadable


def _unreadable(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["row_number", "reason", "record"])


def _parse_csv(text: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise MalformedFileError("empty file: no header row")
    header = [h.strip() for h in header]
    width = len(header)
    good, numbers, bad = [], [], []
    try:
        for number, row in enumerate(reader, start=1):
            if len(row) == width:
                good.append(row)
                numbers.append(number)
            elif row:  # a blank line is not a row
                bad.append(
                    (number, f"has {len(row)} fields, the header has {width}", json.dumps(row, ensure_ascii=False))
                )
    except csv.Error as exc:
        raise MalformedFileError(f"CSV syntax error near data row {reader.line_num}: {exc}") from exc
    frame = pd.DataFrame(good, columns=header, dtype=object)
    return frame, np.asarray(numbers, dtype=np.int64), _unreadable(bad)


def _parse_jsonl(text: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    records, numbers, bad = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((number, f"not valid JSON: {exc.msg} at column {exc.colno}", json.dumps(line[:2000])))
            continue
        if not isinstance(record, dict):
            bad.append((number, "a JSON line must be an object", json.dumps(line[:2000])))
            continue
        records.append(record)
        numbers.append(number)
    if bad and not records:
        raise MalformedFileError(f"no line is a JSON object (first error, line {bad[0][0]}: {bad[0][1]})")
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    # Keep values as they came (numbers stay numbers); validation types them.
    return frame.astype(object), np.asarray(numbers, dtype=np.int64), _unreadable(bad)


def file_checksum(data: bytes) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(data).hexdigest()
