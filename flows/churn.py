"""`train-churn` and `score-churn`: the churn model's weekly training and nightly scoring for a business day."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger
from prefect.states import Completed

from crm.churn import ChurnConfig, load_churn_config
from tasks.churn import (
    build_training_snapshot,
    load_serving_model,
    plan_scoring_chunks,
    plan_training_snapshots,
    publish_scoring_report,
    publish_training_report,
    score_chunk,
    scoring_task_runner,
    train_and_register,
    write_churn_scores,
)
from tasks.common import check_preconditions, flow_failure, migrate_warehouse, resolve_as_of


@flow(name="train-churn", flow_run_name="train-churn {as_of}", description="Train, compare and register a churn model.")
def train_churn(as_of: date | None = None) -> dict:
    """Train on past snapshots whose labels are known by `as_of`, compare on the newest, register, promote if it wins."""
    as_of = resolve_as_of(as_of)
    checked = check_preconditions("train-churn", as_of, return_state=True)
    if checked.is_failed():
        return flow_failure(checked)
    config = load_churn_config()
    migrate_warehouse()
    plan = plan_training_snapshots(as_of, config)
    snapshots = [build_training_snapshot(date.fromisoformat(day), as_of, config) for day in plan["used"]]
    trained = train_and_register(as_of, config, plan, snapshots)
    publish_training_report(as_of, trained)
    entry, result = trained["entry"], trained["result"]
    mine = result.metrics[str(result.challenger_kind)]["roc_auc"]
    recency = result.metrics["recency"]["roc_auc"]
    return {
        "as_of": as_of.isoformat(),
        "version": entry["version"],
        "promoted": trained["promoted"],
        "reason": trained["reason"],
        "roc_auc": mine,
        "recency_roc_auc": recency,
        "snapshots_used": len(trained["plan"]["used"]),
        "snapshots_wanted": len(trained["plan"]["wanted"]),
        "features": len(entry["features"]),
    }


@flow(name="score-churn-chunks", flow_run_name="score-churn chunks {as_of}")
def score_churn_chunks(as_of: date, ranges: list[tuple[int, int]], version: str, config: ChurnConfig) -> list[dict]:
    """Score every chunk on this flow's task runner (threads, or a Dask cluster)."""
    futures = [score_chunk.submit(as_of, lo, hi, version, config) for lo, hi in ranges]
    return [f.result() for f in futures]


@flow(
    name="score-churn",
    flow_run_name="score-churn {as_of}",
    description="Score every eligible customer with the champion.",
)
def score_churn(as_of: date | None = None) -> dict:
    """Score the eligible customers of `as_of` with the champion in chunks and write `churn_scores`.

    A champion whose file fails verification is refused and the previous champion serves; the
    run then completes in a state named `ModelRefused` (a finding). PSI drift is reported.
    """
    as_of = resolve_as_of(as_of)
    checked = check_preconditions("score-churn", as_of, return_state=True)
    if checked.is_failed():
        return flow_failure(checked)
    config = load_churn_config()
    migrate_warehouse()
    served = load_serving_model(config)
    ranges = plan_scoring_chunks(as_of, config)
    runner = scoring_task_runner(config)
    chunks = score_churn_chunks.with_options(task_runner=runner)(as_of, ranges, served["version"], config)
    written = write_churn_scores(as_of, chunks, served["version"])
    drift = publish_scoring_report(as_of, config, served, chunks, written)
    outcome = {
        "as_of": as_of.isoformat(),
        "version": served["version"],
        "scored": written["scored"],
        "chunks": len(ranges),
        "refusals": served["refusals"],
        **drift,
    }
    if served["refusals"]:
        message = f"{'; '.join(served['refusals'])}; scored with {served['version']}"
        get_run_logger().error("%s", message)
        return Completed(name="ModelRefused", message=message, data=outcome)
    return outcome


if __name__ == "__main__":
    import sys

    score_churn(date.fromisoformat(sys.argv[1]) if len(sys.argv) > 1 else None)
