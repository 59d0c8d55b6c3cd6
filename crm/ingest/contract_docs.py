"""Render the landing-file contract (docs/landing-files.md) from the entity contracts."""

from __future__ import annotations

from crm.core.contracts import LANDING_ENTITIES, SOURCE_ENTITIES, Entity
from crm.core.markdown import markdown_table

_TYPES = {
    "int": "integer",
    "money": "integer, minor units (kopecks/cents), >= 0",
    "str": "text",
    "timestamp": "ISO 8601 timestamp (`2026-01-05T13:45:12`, UTC unless an offset is given)",
    "date": "ISO 8601 date (`2026-01-05`)",
    "bool": "`true`/`false` (also `1`/`0`, `yes`/`no`)",
}

_INTRO = """\
# Landing-file contract

<!-- Generated from crm/core/contracts.py by `crm docs landing-contract`; do not edit by hand. -->

Systems that cannot be read through the source database (the website/app event tracker, the
message providers) drop **daily export files** into the landing zone: a local folder or an S3
prefix (`CRM_LANDING_URL`). The nightly `ingest` flow loads them. This page is what a producer
must follow.

## Files
- **Path**: `<entity>/<stem>_<YYYY-MM-DD>.<format>` or the same with `.gz` (gzip), relative to
  the landing root, directly in the entity's folder. The date is the **business day** the file
  reports; the stem names the producer (for message events: the provider, e.g. `sms-gateway`),
  in lowercase letters, digits, `-` and `_`. The path is at most 500 characters.
- **Every file under the landing root is accounted for**: loaded, rejected, or *misplaced*.
  A file at the root, in an unknown or nested folder, misnamed, with the other entity's format
  or an impossible date is recorded in `landing_files` with status `misplaced` and the reason,
  by the run that first sees it, and closes that day's send gate; it is never loaded. A file
  (misplaced or not) dated after the run's day is not due yet and waits. Files ending in
  `.part` are being written and are skipped.
- **Encoding**: UTF-8 (a BOM is accepted). Lines end with `\\n` (or `\\r\\n`).
- **CSV**: comma-separated, first line a header with the column names below (any order; extra
  columns are ignored; a name may not repeat), fields quoted with `"` when they contain commas,
  quotes or line breaks. A field may be of any length (an over-long value quarantines its row).
- **JSON lines**: one JSON object per line with the keys below; lines end with `\\n` only, so
  U+2028, U+0085 and other Unicode separators are ordinary characters inside strings. An
  optional key may be absent (it is null). Types are checked strictly:
  - *integer*: a JSON integer (exact at any size up to 64 bits; never through a float) or a
    string of decimal digits with an optional leading `-`; `true`, `10.0`, `1e1` and `"+10"`
    are not integers;
  - *text*: a JSON string, or a JSON integer (written as its digits); a float, boolean, object
    or array is not text;
  - *timestamp* and *date*: an ISO 8601 string;
  - `NaN`, `Infinity`, strings holding `\\u0000` or an unpaired surrogate (`\\ud800`) make the
    line unreadable (`malformed_row`): no database can store them.
- **Writing**: write to a temporary name ending in `.part` and rename, or upload in one PUT to
  S3, so that a half-written file is never read.
- **Delivery**: a file is loaded once. Re-sending the same bytes is a no-op; re-sending a
  *changed* file under the same name is detected by its SHA-256 and reported as `changed`; its rows
  whose key was already loaded count as duplicates, new keys load. Late files (dated before the
  run's day) are picked up by the next run.

## What happens to a bad row
Each row is checked against the rules below. A row that breaks one is **quarantined** (table
`quarantined_rows`: file, 1-based data-row number (CSV: the record after the header; JSON
lines: the line), rule, readable reason, the row as received, cut at 65,536 characters); the
good rows of the same file still load. A key longer than `quarantined_rows.record_key` (256) is
stored cut, ending in `…(truncated)`. A row whose key repeats an earlier row is counted as a
duplicate.

| rule | meaning |
|---|---|
| `malformed_row` | a CSV row with the wrong number of fields, or a line that is not a JSON object (or holds `NaN`, a NUL or an unpaired surrogate) |
| `required` | a required column is empty |
| `type` | a value does not parse as its type, or a JSON value of the wrong JSON type |
| `plausible_date` | a timestamp before `plausible_since` (1970-01-01, `config/ingest.yaml`) |
| `allowed_values` | a value outside the listed values |
| `non_negative` | a negative amount |
| `max_length` | text longer than allowed |
| `not_in_future` | the event time lies after the business day being loaded |
| `known_reference` | the id it references (e.g. `customer_id`) is not in the warehouse |

## What happens to a bad file
A file that cannot be read at all (not gzip though named `.gz`, not UTF-8, binary, no header, a
repeated header name, a required column missing, no line that is a JSON object) is **rejected**
by name with the reason: status `failed` in `landing_files`. It never stops the other files or
later runs, and it closes the day's send gate (`crm run ingest` exits 2). Its bytes are not
read again by later runs (they count it as `already_rejected`): deliver a fixed file under a new
name, or fix it in place (new bytes are a new file), or run `crm landing retry <file>` to have
the next ingest read it again.

| `landing_files.status` | meaning |
|---|---|
| `loaded` | its rows were loaded (bad rows quarantined) |
| `failed` | rejected whole; `error` says why; not read again until `crm landing retry` |
| `misplaced` | outside the naming contract; `error` says why; reported once |
| `retry` | an operator asked for it to be read again by the next ingest |
"""


def _entity_section(entity: Entity, *, heading: str) -> list[str]:
    lines = [f"{heading} `{entity.name}`", "", entity.description, ""]
    if entity.file_format:
        stem = "<provider>" if entity.name == "message_events" else entity.name
        lines += [f"File: `{entity.name}/{stem}_YYYY-MM-DD.{entity.file_format}`. Key: `{', '.join(entity.key)}`.", ""]
    else:
        lines += [f"Key: `{', '.join(entity.key)}`; pulled by watermark on `{entity.updated_column}`.", ""]
    rows = []
    for column in entity.columns:
        notes = ", ".join(f"`{v}`" for v in column.allowed) if column.allowed else column.description
        if column.name in entity.references:
            notes = (notes + "; " if notes else "") + f"must be a known `{entity.references[column.name]}` id"
        rows.append(
            {
                "column": f"`{column.name}`",
                "type": _TYPES[column.kind],
                "required": "yes" if column.required else "no",
                "allowed values / notes": notes,
            }
        )
    lines += markdown_table(rows, ["column", "type", "required", "allowed values / notes"])
    return [*lines, ""]


def landing_contract_markdown() -> str:
    """The full contract as Markdown."""
    lines = [_INTRO, "## Entities", ""]
    for entity in LANDING_ENTITIES:
        lines += _entity_section(entity, heading="###")
    lines += [
        "## Source-database tables (for reference)",
        "",
        "The back end's tables are read through SQLAlchemy (`CRM_SOURCE_URL`) by watermark, with the",
        "same rules. Each must have the columns below and an index on (updated column, key).",
        "",
    ]
    for entity in SOURCE_ENTITIES:
        lines += _entity_section(entity, heading="###")
    return "\n".join(lines).rstrip() + "\n"
