"""Reconciliation: the source of truth against the warehouse, figure by figure, and id diffs where they diverge."""

from crm.reconcile.config import EntityCheck, ReconciliationConfig, load_reconciliation_config
from crm.reconcile.diff import (
    MISMATCH_COLUMNS,
    MISMATCH_KINDS,
    MismatchCollector,
    MismatchKind,
    diff_rows,
    mark_quarantined,
)
from crm.reconcile.figures import (
    FIGURE_COLUMNS,
    Scope,
    combine_aggregates,
    compare_metrics,
    divergence,
    entities_to_diff,
    entity_metrics,
    label,
)
from crm.reconcile.io import (
    EntityDiff,
    EntityFigures,
    diff_entity_ids,
    read_divergence_history,
    read_entity_figures,
    record_reconciliation,
)
from crm.reconcile.queries import aggregate_statement, day_bounds
from crm.reconcile.reports import figures_table, summary_markdown, trend_markdown, trend_table, verdict_summary

__all__ = [
    "FIGURE_COLUMNS",
    "MISMATCH_COLUMNS",
    "MISMATCH_KINDS",
    "EntityCheck",
    "EntityDiff",
    "EntityFigures",
    "MismatchCollector",
    "MismatchKind",
    "ReconciliationConfig",
    "Scope",
    "aggregate_statement",
    "combine_aggregates",
    "compare_metrics",
    "day_bounds",
    "diff_entity_ids",
    "diff_rows",
    "divergence",
    "entities_to_diff",
    "entity_metrics",
    "figures_table",
    "label",
    "load_reconciliation_config",
    "mark_quarantined",
    "read_divergence_history",
    "read_entity_figures",
    "record_reconciliation",
    "summary_markdown",
    "trend_markdown",
    "trend_table",
    "verdict_summary",
]
