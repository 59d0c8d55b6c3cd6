"""Segments: lifecycle states, RFM, reachability and channel preference, with membership history.

Audiences are read with `segment_snapshot(as_of)` (one row per customer) and `segment_changes`
(who entered or left a segment on a day). `refresh_segments` computes and stores a day.
"""

from crm.segments.config import RfmCell, RfmConfig, SegmentsConfig, load_segments_config
from crm.segments.derive import (
    AGGREGATE_COLUMNS,
    MEMBERSHIP_COLUMNS,
    SEGMENT_COLUMNS,
    derive_segments,
    diff_memberships,
    lifecycle,
    memberships,
    preferred_channel,
    recheck_on,
    rfm,
    rule_texts,
    typed_aggregates,
)
from crm.segments.io import SegmentRun, last_computed_day, plan_run, read_day, refresh_segments, write_report
from crm.segments.queries import (
    SNAPSHOT_COLUMNS,
    aggregate_statement,
    changed_customers,
    customers_to_refresh,
    due_for_recheck,
    memberships_valid_on,
    open_segments,
    segment_changes,
    segment_snapshot,
    valid_on,
)
from crm.segments.reports import (
    LABELS,
    flows_png,
    previous_positions,
    sizes_table,
    summary_markdown,
    transition_matrix,
    transitions,
)
from crm.segments.states import LifecycleState, LifecycleSubstate, RunMode, SegmentChange, SegmentKind

__all__ = [
    "AGGREGATE_COLUMNS",
    "LABELS",
    "MEMBERSHIP_COLUMNS",
    "SEGMENT_COLUMNS",
    "SNAPSHOT_COLUMNS",
    "LifecycleState",
    "LifecycleSubstate",
    "RfmCell",
    "RfmConfig",
    "RunMode",
    "SegmentChange",
    "SegmentKind",
    "SegmentRun",
    "SegmentsConfig",
    "aggregate_statement",
    "changed_customers",
    "customers_to_refresh",
    "derive_segments",
    "diff_memberships",
    "due_for_recheck",
    "flows_png",
    "last_computed_day",
    "lifecycle",
    "load_segments_config",
    "memberships",
    "memberships_valid_on",
    "open_segments",
    "plan_run",
    "preferred_channel",
    "previous_positions",
    "read_day",
    "recheck_on",
    "refresh_segments",
    "rfm",
    "rule_texts",
    "segment_changes",
    "segment_snapshot",
    "sizes_table",
    "summary_markdown",
    "transition_matrix",
    "transitions",
    "typed_aggregates",
    "valid_on",
    "write_report",
]
