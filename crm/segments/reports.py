"""Segments' reports: sizes and their change since the day before, the lifecycle transition matrix, a PNG of the flows."""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crm.core.markdown import Col, markdown_table, num, number
from crm.segments.states import SUBSTATES_OF, LifecycleState, RunMode, SegmentChange, SegmentKind

NEW = "(new)"
# Lifecycle labels in reading order: the sub-state, or the state when it has none (rejected).
LABELS: tuple[str, ...] = tuple(str(label) for state, subs in SUBSTATES_OF.items() for label in (subs or (state,)))
_STATE_OF = {str(label): str(state) for state, subs in SUBSTATES_OF.items() for label in (subs or (state,))}


def transitions(lifecycle_events: pd.DataFrame) -> pd.DataFrame:
    """Customers who moved between lifecycle positions on the day, per (from, to), from the day's events."""
    if lifecycle_events.empty:
        return pd.DataFrame(columns=["from", "to", "customers"])
    e = lifecycle_events
    pick = {}
    for kind in (SegmentKind.LIFECYCLE, SegmentKind.LIFECYCLE_SUBSTATE):
        for change in (SegmentChange.ENTERED.value, SegmentChange.LEFT.value):
            rows = e[(e["kind"] == kind.value) & (e["change"] == change)]
            pick[(kind.value, change)] = rows.set_index("customer_id")["segment"]
    ids = pd.Index(e["customer_id"].unique())

    def side(change: str) -> pd.Series:
        sub = pick[(SegmentKind.LIFECYCLE_SUBSTATE.value, change)].reindex(ids)
        state = pick[(SegmentKind.LIFECYCLE.value, change)].reindex(ids)
        return sub.where(sub.notna(), state)

    frame = pd.DataFrame({"from": side(SegmentChange.LEFT).fillna(NEW), "to": side(SegmentChange.ENTERED)})
    frame = frame[frame["to"].notna()]
    return frame.groupby(["from", "to"]).size().rename("customers").reset_index()


def previous_positions(sizes: pd.DataFrame, day: date) -> pd.Series:
    """Members per lifecycle label at the end of `day` (from `segment_sizes`)."""
    s = sizes[pd.to_datetime(sizes["as_of"]).dt.date == day]
    subs = s[s["kind"] == SegmentKind.LIFECYCLE_SUBSTATE.value].set_index("segment")["customers"]
    states = s[(s["kind"] == SegmentKind.LIFECYCLE.value) & (s["segment"] == LifecycleState.REJECTED.value)]
    return pd.concat([subs, states.set_index("segment")["customers"]]).astype("int64")


def transition_matrix(moves: pd.DataFrame, before: pd.Series) -> pd.DataFrame:
    """From (rows) x to (columns) counts with those who stayed on the diagonal; labels in lifecycle order."""
    present = set(moves["from"]) | set(moves["to"]) | set(before[before > 0].index)
    order = [NEW, *LABELS, *sorted(present - set(LABELS) - {NEW})]
    labels = [label for label in order if label in present]
    matrix = pd.DataFrame(0, index=labels, columns=[label for label in labels if label != NEW], dtype="int64")
    for row in moves.itertuples(index=False):
        matrix.loc[row[0], row[1]] += int(row[2])
    for label, members in before.items():
        if label in matrix.columns:
            moved_out = int(moves.loc[moves["from"] == label, "customers"].sum())
            matrix.loc[label, label] = max(int(members) - moved_out, 0)
    return matrix


def sizes_table(sizes: pd.DataFrame, as_of: date) -> list[dict]:
    """One row per (kind, segment): members today and the day before, the change, entered and left today."""
    day = pd.to_datetime(sizes["as_of"]).dt.date
    today = sizes[day == as_of].set_index(["kind", "segment"])
    before = sizes[day == as_of - timedelta(days=1)].set_index(["kind", "segment"])["customers"]
    rows = []
    kinds = [k.value for k in SegmentKind]
    for (kind, segment), row in sorted(
        today.iterrows(), key=lambda item: (kinds.index(item[0][0]) if item[0][0] in kinds else 99, item[0][1])
    ):
        previous = before.get((kind, segment))
        rows.append(
            {
                "kind": kind,
                "segment": segment,
                "customers": int(row["customers"]),
                "previous": "" if previous is None else int(previous),
                "change": "" if previous is None else f"{int(row['customers']) - int(previous):+,}",
                "entered": int(row["entered"]),
                "left": int(row["left"]),
            }
        )
    return rows


def sizes_artifact(sizes: pd.DataFrame, as_of: date) -> list[dict]:
    """`sizes_table` for a Prefect table artifact: counts with thousands separators (the change is signed already)."""
    counts = ("customers", "previous", "entered", "left")
    return [{k: (number(v) if k in counts else v) for k, v in row.items()} for row in sizes_table(sizes, as_of)]


def summary_markdown(run: dict, sizes: pd.DataFrame, matrix: pd.DataFrame, chart: str | None) -> str:
    """The `segments-summary` artifact: how the day was computed, the data's state, sizes, transitions."""
    as_of = date.fromisoformat(str(run["as_of"]))
    lines = [f"# Segments {as_of}", ""]
    if not run["gate_open"]:
        lines += [
            "**DATA SUSPECT**: the send gate of this day is closed "
            f"({'; '.join(run.get('gate_reasons') or []) or 'checks have not passed'}). Segments were computed "
            "anyway; campaigns will not send on this day's data.",
            "",
        ]
    mode = run["mode"]
    lines.append(
        f"Mode **{mode}**: {run['customers_computed']:,} customers computed, {run['customers_changed']:,} changed, "
        f"{run['events']:,} membership events."
    )
    if run.get("baseline"):
        lines += [
            "",
            "First day of segments: every membership starts here as the **baseline**; no entries are recorded "
            "(nobody *entered* a segment today), so campaigns triggered by a segment entry start tomorrow.",
        ]
    if mode == RunMode.RECHECK:
        lines += [
            "",
            f"Recheck of a stored day: **{run['differences']:,}** customers differ from what was stored"
            + (f" (e.g. ids {', '.join(map(str, run['difference_examples']))})" if run["differences"] else "")
            + ". Nothing was written; `--rewrite` replaces the history from this day on.",
        ]
    lines += ["", "## Sizes (change since the day before)", ""]
    lines += markdown_table(
        sizes_table(sizes, as_of),
        [
            Col("kind"),
            Col("segment"),
            num("customers", "members"),
            num("previous", "day before"),
            Col("change", right=True),
            num("entered"),
            num("left"),
        ],
    )
    lines += ["", "## Lifecycle transitions (rows: the day before, columns: today)", ""]
    if matrix.empty:
        lines.append("No lifecycle position yet.")
    else:
        rows = [{"from": label, **{c: int(matrix.loc[label, c]) for c in matrix.columns}} for label in matrix.index]
        lines += markdown_table(rows, [Col("from", "from \\ to"), *[num(c) for c in matrix.columns]])
    if chart:
        lines += ["", f"Picture of the flows between states: [{chart}]({chart})"]
    return "\n".join(lines) + "\n"


def _tick(label: str, sep: str) -> str:
    state = _STATE_OF.get(label)
    return label if state in (None, label) else f"{label}{sep}({state})"


def flows_png(matrix: pd.DataFrame, as_of: date) -> bytes:
    """A heat map of the transition matrix (moves in colour, the diagonal of stayers in grey), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = matrix.to_numpy(dtype=float)
    moves = values.copy()
    stays = np.zeros_like(values, dtype=bool)
    for i, label in enumerate(matrix.index):
        if label in matrix.columns:
            j = list(matrix.columns).index(label)
            stays[i, j] = True
            moves[i, j] = np.nan
    fig, ax = plt.subplots(
        figsize=(max(8, 0.9 * len(matrix.columns) + 3), max(5, 0.55 * len(matrix.index) + 2)), dpi=110
    )
    shown = np.where(moves > 0, np.log10(np.where(moves > 0, moves, 1)), np.nan)
    ax.imshow(np.where(stays, 1.0, np.nan), cmap="Greys", vmin=0, vmax=4, aspect="auto")  # light grey
    image = ax.imshow(
        shown, cmap="OrRd", aspect="auto", vmin=-0.5, vmax=max(1.0, np.nanmax(shown) if np.isfinite(shown).any() else 1)
    )
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if values[i, j] > 0:
                ax.text(j, i, f"{int(values[i, j]):,}", ha="center", va="center", fontsize=8, color="black")
    ax.set_xticks(
        range(len(matrix.columns)), [_tick(c, "\n") for c in matrix.columns], rotation=45, ha="right", fontsize=8
    )
    ax.set_yticks(range(len(matrix.index)), [_tick(r, " ") for r in matrix.index], fontsize=8)
    ax.set_xlabel(f"lifecycle position at the end of {as_of}")
    ax.set_ylabel(f"the day before ({as_of - timedelta(days=1)})")
    ax.set_title(f"Lifecycle flows on {as_of}: customers who moved (colour, log scale); grey = stayed")
    fig.colorbar(image, ax=ax, label="log10(customers moved)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
