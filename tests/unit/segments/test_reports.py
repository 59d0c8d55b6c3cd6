"""Segments' reports on hand-built events and sizes: transitions, the matrix with stayers, sizes with change."""

from __future__ import annotations

from datetime import date

import pandas as pd

from crm.segments import (
    flows_png,
    previous_positions,
    sizes_artifact,
    sizes_table,
    summary_markdown,
    transition_matrix,
    transitions,
)

D, BEFORE = date(2026, 3, 2), date(2026, 3, 1)


def events() -> pd.DataFrame:
    rows = [
        (1, "lifecycle_substate", "pre_churn", "left"),
        (1, "lifecycle_substate", "churn", "entered"),
        (2, "lifecycle", "newbie", "left"),
        (2, "lifecycle_substate", "applying", "left"),
        (2, "lifecycle", "rejected", "entered"),
        (3, "lifecycle", "lead", "entered"),
        (3, "lifecycle_substate", "never_authorised", "entered"),
        (4, "lifecycle", "rejected", "left"),
        (4, "lifecycle", "newbie", "entered"),
        (4, "lifecycle_substate", "applying", "entered"),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "kind", "segment", "change"])


def sizes() -> pd.DataFrame:
    rows = [
        (BEFORE, "lifecycle_substate", "pre_churn", 5, 0, 0),
        (BEFORE, "lifecycle_substate", "applying", 3, 0, 0),
        (BEFORE, "lifecycle", "rejected", 2, 0, 0),
        (D, "lifecycle_substate", "pre_churn", 4, 0, 1),
        (D, "lifecycle_substate", "churn", 1, 1, 0),
        (D, "lifecycle_substate", "applying", 3, 1, 1),
        (D, "lifecycle", "rejected", 2, 1, 1),
    ]
    return pd.DataFrame(rows, columns=["as_of", "kind", "segment", "customers", "entered", "left"])


def test_transitions_pair_what_each_customer_left_and_entered():
    moves = transitions(events()).set_index(["from", "to"])["customers"].to_dict()
    assert moves == {
        ("pre_churn", "churn"): 1,
        ("applying", "rejected"): 1,
        ("(new)", "never_authorised"): 1,
        ("rejected", "applying"): 1,
    }


def test_the_matrix_puts_stayers_on_the_diagonal_and_sizes_show_the_change():
    matrix = transition_matrix(transitions(events()), previous_positions(sizes(), BEFORE))
    assert matrix.loc["pre_churn", "pre_churn"] == 4 and matrix.loc["pre_churn", "churn"] == 1
    assert matrix.loc["applying", "applying"] == 2 and matrix.loc["rejected", "rejected"] == 1
    assert matrix.loc["(new)", "never_authorised"] == 1 and "(new)" not in matrix.columns
    table = {(r["kind"], r["segment"]): r for r in sizes_table(sizes(), D)}
    assert table[("lifecycle_substate", "pre_churn")]["change"] == "-1"
    assert table[("lifecycle_substate", "churn")]["previous"] == ""
    run = {
        "as_of": D,
        "mode": "incremental",
        "customers_computed": 4,
        "customers_changed": 4,
        "events": 10,
        "gate_open": False,
        "gate_reasons": ["quality: 2 critical expectations failed"],
        "differences": None,
        "difference_examples": [],
    }
    text = summary_markdown(run, sizes(), matrix, "/reports/segments/2026-03-02/lifecycle-flows.png")
    assert "**DATA SUSPECT**" in text and "quality: 2 critical expectations failed" in text
    assert "| lifecycle_substate | pre_churn | 4 | 5 | -1 | 0 | 1 |" in text
    assert flows_png(matrix, D)[:4] == b"\x89PNG"


def test_the_sizes_table_artifact_shows_counts_with_thousands_separators():
    big = sizes().assign(customers=lambda f: f["customers"] * 1_000, entered=1_234, left=0)
    row = {(r["kind"], r["segment"]): r for r in sizes_artifact(big, D)}[("lifecycle_substate", "pre_churn")]
    assert row == {
        "kind": "lifecycle_substate",
        "segment": "pre_churn",
        "customers": "4,000",
        "previous": "5,000",
        "change": "-1,000",
        "entered": "1,234",
        "left": "0",
    }
    assert {(r["kind"], r["segment"]): r for r in sizes_artifact(big, D)}[("lifecycle_substate", "churn")][
        "previous"
    ] == ""
