"""Markdown for Prefect artifacts: tables with escaped cells and formatted numbers, readable at 1600 px."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


def _blank(value: Any) -> bool:
    """None, an empty string, NaN or pd.NA: a figure that has no value."""
    if value is None or isinstance(value, str):
        return value is None or not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array is not a blank
        return False


def cell(value: Any) -> str:
    """Text safe inside a markdown table cell (pipes escaped, one line)."""
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def number(value: Any) -> str:
    """An integer with thousands separators; blanks stay blank."""
    if value is None or value == "":
        return ""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return cell(value)


def money(minor: Any) -> str:
    """An amount in minor units as major units with two decimals and thousands separators (-123456 -> -1,234.56).

    Exact for any integer (no float division); a fraction of a minor unit is cut; blanks and NaN stay blank.
    """
    if _blank(minor):
        return ""
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"


def shorten(text: Any, limit: int) -> str:
    """`text` on one line (runs of white space as one space), cut to `limit` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def percent(value: float | None, digits: int = 2) -> str:
    """A share as a percentage (0.0519 -> 5.19%); huge ratios as a multiple; blanks and NaN stay blank."""
    if _blank(value):
        return ""
    return f"{value:.{digits}%}" if value < 10 else f"{value:.0f}x"


@dataclass(frozen=True)
class Col:
    """One column of a markdown table: the row field, its header, alignment and formatter."""

    key: str
    header: str | None = None
    right: bool = False
    fmt: Callable[[Any], str] | None = None


def num(key: str, header: str | None = None) -> Col:
    """A right-aligned integer column with thousands separators."""
    return Col(key, header, right=True, fmt=number)


def pct(key: str, header: str | None = None) -> Col:
    """A right-aligned percentage column."""
    return Col(key, header, right=True, fmt=percent)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Col | str]) -> list[str]:
    """The lines of a markdown table of `rows` (dicts) with `columns` in order."""
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    lines = [
        "| " + " | ".join(c.header or c.key for c in cols) + " |",
        "|" + "|".join("---:" if c.right else "---" for c in cols) + "|",
    ]
    for row in rows:
        cells = []
        for c in cols:
            value = row.get(c.key, "")
            cells.append(c.fmt(value) if c.fmt else cell("" if value is None else value))
        lines.append("| " + " | ".join(cells) + " |")
    return lines
