"""The volume band: how many rows each entity may bring today, from the recent ingested days."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from crm.quality.config import VolumeBand


def volume_bands(history: pd.DataFrame, entities: Iterable[str], band: VolumeBand) -> dict[str, tuple[int, int]]:
    """Per entity, the [min, max] rows expected today: a band around the median of the recent ingested days.

    A day on which ingestion ran but an entity brought nothing counts as 0 rows for it.
    No band (no volume expectation) before `min_history_days` ingested days.
    """
    days = sorted(set(history["as_of"])) if len(history) else []
    if len(days) < band.min_history_days:
        return {}
    out = {}
    for entity in entities:
        counts = history[history["entity"] == entity].set_index("as_of")["rows_loaded"]
        series = pd.Series([int(counts.get(d, 0)) for d in days], dtype="int64")
        median = float(series.median())
        low = max(0, int(median * band.low_factor) - band.slack_rows)
        high = int(median * band.high_factor + 0.5) + band.slack_rows
        out[entity] = (low, high)
    return out
