"""The one markdown helper every capability's reports use: cells, numbers, money, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.core.markdown import Col, cell, markdown_table, money, num, number, pct, percent, shorten


def test_a_cell_escapes_pipes_and_stays_on_one_line():
    assert cell("a|b\r\nc") == "a\\|b  c"


def test_numbers_get_thousands_separators_and_blanks_stay_blank():
    assert number(1234567) == "1,234,567"
    assert number(None) == "" and number("") == ""
    assert number("n/a") == "n/a"


@pytest.mark.parametrize(
    ("minor", "shown"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (-5, "-0.05"),
        (15000, "150.00"),
        (-123456, "-1,234.56"),
        (np.int64(99), "0.99"),
        (1234.9, "12.34"),  # a fraction of a minor unit is cut, never rounded up
        (2**62 + 1, f"{(2**62 + 1) // 100:,}.{(2**62 + 1) % 100:02d}"),  # exact beyond a float's 53 bits
    ],
)
def test_money_shows_minor_units_as_major_units_exactly(minor, shown):
    assert money(minor) == shown


@pytest.mark.parametrize("blank", [None, "", float("nan"), np.nan, pd.NA])
def test_money_leaves_a_blank_blank(blank):
    assert money(blank) == ""


def test_shorten_keeps_one_line_and_cuts_with_an_ellipsis_at_the_limit():
    assert shorten("a  b\nc", 10) == "a b c"
    assert shorten("x" * 10, 10) == "x" * 10
    assert shorten("x" * 11, 10) == "x" * 9 + "…"
    assert shorten(42, 10) == "42"


def test_percent_turns_huge_ratios_into_a_multiple():
    assert percent(0.0519) == "5.19%"
    assert percent(12.4) == "12x"
    assert percent(None) == ""


def test_a_table_has_headers_alignment_formatted_and_escaped_cells():
    rows = [{"name": "a|b", "count": 1234, "share": 0.5}, {"name": None, "count": None}]
    lines = markdown_table(rows, [Col("name", "who"), num("count"), pct("share", "part")])
    assert lines == [
        "| who | count | part |",
        "|---|---:|---:|",
        "| a\\|b | 1,234 | 50.00% |",
        "|  |  |  |",
    ]


@pytest.mark.parametrize("blank", [None, "", float("nan"), pd.NA])
def test_percent_leaves_a_blank_blank(blank):
    assert percent(blank) == ""
