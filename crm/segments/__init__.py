"""Segments: lifecycle states, RFM, reachability and channel preference, with membership history.

Audiences are read with `segment_snapshot(as_of)` (one row per customer) and `segment_changes`
(who entered or left a segment on a day).
"""

from crm.segments.queries import (
    SNAPSHOT_COLUMNS,
    memberships_valid_on,
    open_segments,
    segment_changes,
    segment_snapshot,
    valid_on,
)
from crm.segments.states import LifecycleState, LifecycleSubstate, RunMode, SegmentChange, SegmentKind

__all__ = [
    "SNAPSHOT_COLUMNS",
    "LifecycleState",
    "LifecycleSubstate",
    "RunMode",
    "SegmentChange",
    "SegmentKind",
    "memberships_valid_on",
    "open_segments",
    "segment_changes",
    "segment_snapshot",
    "valid_on",
]
