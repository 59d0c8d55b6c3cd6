"""Render the landing-file contract (docs/landing-files.md) from the entity contracts."""

from __future__ import annotations

from crm.core.contracts import LANDING_ENTITIES, SOURCE_ENTITIES, Entity

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
  the landing root. The date is the **business day** the file reports; the stem names the
  producer (for message events: the provider, e.g. `sms-gateway`). A file whose name breaks this
  pattern is reported as failed and never loaded silently.
- **Encoding**: UTF-8 (a BOM is accepted). Lines end with `\\n` (or `\\r\\n`).
- **CSV**: comma-separated, first line a header with the column names below (any order; extra
  columns are ignored), fields quoted with `"` when they contain commas or quotes.
- **JSON lines**: one JSON object per line with the keys below; numbers may be JSON numbers or strings.
- **Writing**: write to a temporary name ending in `.part` and rename, or upload in one PUT to
  S3, so that a half-written file is never read.
- **Delivery**: a file is loaded once. Re-sending the same bytes is a no-op; re-sending a
  *changed* file under the same name is detected by its SHA-256 and reported as `changed`; its rows
  whose key was already loaded count as duplicates, new keys load. Late files (dated before the
  run's day) are picked up by the next run.

## What happens to a bad row
Each row is checked against the rules below. A row that breaks one is **quarantined** (table
`quarantined_rows`: file, 1-based data-row number, rule, readable reason, the row as received);
the good rows of the same file still load. A row whose key repeats an earlier row is counted as
a duplicate. A file that cannot be read at all (not UTF-8, binary, no header, a required column
missing, no JSON line) fails by name and does not stop the other files.

| rule | meaning |
|---|---|
| `malformed_row` | a CSV row with the wrong number of fields, or a line that is not a JSON object |
| `required` | a required column is empty |
| `type` | a value does not parse as its type |
| `allowed_values` | a value outside the listed values |
| `non_negative` | a negative amount |
| `max_length` | text longer than allowed |
| `not_in_future` | the event time lies after the business day being loaded |
| `known_reference` | the id it references (e.g. `customer_id`) is not in the warehouse |
"""


def _entity_section(entity: Entity, *, heading: str) -> list[str]:
    lines = [f"{heading} `{entity.name}`", "", entity.description, ""]
    if entity.file_format:
        stem = "<provider>" if entity.name == "message_events" else entity.name
        lines += [f"File: `{entity.name}/{stem}_YYYY-MM-DD.{entity.file_format}`. Key: `{', '.join(entity.key)}`.", ""]
    else:
        lines += [f"Key: `{', '.join(entity.key)}`; pulled by watermark on `{entity.updated_column}`.", ""]
    lines += ["| column | type | required | allowed values / notes |", "|---|---|---|---|"]
    for column in entity.columns:
        notes = ", ".join(f"`{v}`" for v in column.allowed) if column.allowed else column.description
        if column.name in entity.references:
            notes = (notes + "; " if notes else "") + f"must be a known `{entity.references[column.name]}` id"
        lines.append(f"| `{column.name}` | {_TYPES[column.kind]} | {'yes' if column.required else 'no'} | {notes} |")
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
