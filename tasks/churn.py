"""Churn tasks: training snapshots, fit and register, promotion, scoring chunks, scores and reports."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from crm.churn import (
    ChurnConfig,
    TaskRunnerKind,
    add_counts,
    build_snapshot,
    calibration_png,
    customer_ranges,
    deciles,
    drift_table,
    fit_and_compare,
    importance_png,
    lift_png,
    open_registry,
    plan_snapshots,
    promotion_decision,
    score_range,
    scoring_markdown,
    training_markdown,
    usable,
    write_report_files,
    write_scores,
)
from crm.core.settings import get_settings, warehouse_engine
from tasks.common import retry_transient

_READ = {
    "retries": 2,
    "retry_delay_seconds": [10, 60],
    "retry_condition_fn": retry_transient,
    "cache_policy": NO_CACHE,
}


@task(name="plan-training-snapshots", task_run_name="plan churn training snapshots {as_of}", **_READ)
def plan_training_snapshots(as_of: date, config: ChurnConfig) -> dict:
    """The past days whose labels are known by `as_of` and that fit the warehouse's history."""
    plan = plan_snapshots(warehouse_engine(), as_of, config)
    logger = get_run_logger()
    logger.info(
        "%d of %d snapshots fit: %s; data kinds: %s",
        len(plan.used),
        len(plan.wanted),
        ", ".join(d.isoformat() for d in plan.used),
        ", ".join(plan.kinds),
    )
    return {
        "used": [d.isoformat() for d in plan.used],
        "wanted": [d.isoformat() for d in plan.wanted],
        "skipped": plan.skipped,
        "kinds": plan.kinds,
    }


@task(name="build-training-snapshot", task_run_name="build churn snapshot {snapshot} (labels by {as_of})", **_READ)
def build_training_snapshot(snapshot: date, as_of: date, config: ChurnConfig) -> pd.DataFrame:
    """Eligible customers of one past day: features known then, label known by `as_of`."""
    frame = build_snapshot(warehouse_engine(), snapshot, as_of, config)
    if len(frame):
        get_run_logger().info(
            "%s: %d eligible customers, churn rate %.3f", snapshot, len(frame), frame["churned"].mean()
        )
    return frame


@task(name="train-and-register", task_run_name="train churn model {as_of}", cache_policy=NO_CACHE)
def train_and_register(as_of: date, config: ChurnConfig, plan: dict, snapshots: list[pd.DataFrame]) -> dict:
    """Fit the pipelines on the older snapshots, compare them on the newest, register the challenger, promote if it wins."""
    logger = get_run_logger()
    kept = []
    for frame, day in zip(snapshots, plan["used"], strict=True):
        why = usable(frame, config) if len(frame) else "no eligible customer"
        if why:
            plan["skipped"][day] = why
            logger.warning("snapshot %s left out: %s", day, why)
        else:
            kept.append(frame)
    plan["used"] = [d for d in plan["used"] if d not in plan["skipped"]]
    if not kept:
        from crm.churn import NotEnoughHistory

        raise NotEnoughHistory(
            f"cannot train a churn model on {as_of}: no usable snapshot ({'; '.join(f'{d}: {r}' for d, r in plan['skipped'].items())})"
        )
    settings = get_settings()
    registry = open_registry(config, settings)
    champion = None
    try:
        model, entry, refusals = registry.load_serving()
        champion = (model, entry)
        for line in refusals:
            logger.warning("%s", line)
    except Exception as exc:  # no champion yet (or none verifies): the challenger competes with recency alone
        logger.info("no champion to compare with: %s", exc)
    result = fit_and_compare(pd.concat(kept, ignore_index=True), plan["kinds"], config, champion)
    entry = registry.register(
        result.challenger,
        {
            "as_of": as_of.isoformat(),
            "model_kind": str(result.challenger_kind),
            "features": result.features,
            "metrics": result.metrics,
            "training_window": plan["used"],
            "snapshots_wanted": len(plan["wanted"]),
            "snapshots_used": len(plan["used"]),
            "validation_snapshot": result.validation_snapshot,
            "split": result.split,
            "train_rows": result.train_rows,
            "valid_rows": result.valid_rows,
            "horizon_days": config.horizon_days,
            "data_kinds": plan["kinds"],
            "data_fingerprint": result.fingerprint,
            "reference": result.reference,
            "importance": result.importance.head(30).to_dict("records"),
            "config": config.model_dump(mode="json"),
        },
    )
    promote, reason = promotion_decision(result, config, champion[1] if champion else None)
    if promote and config.promotion.automatic:
        registry.promote(entry["version"], as_of, reason)
    else:
        if promote:
            reason += " (automatic promotion is off: promote it with `crm models promote`)"
        registry.update_entry(entry["version"], decision=reason)
    promoted = promote and config.promotion.automatic
    (logger.info if promoted else logger.warning)("model %s: %s", entry["version"], reason)
    return {"entry": entry, "result": result, "promoted": promoted, "reason": reason, "plan": plan}


@task(name="publish-training-report", task_run_name="publish churn training report {as_of}", cache_policy=NO_CACHE)
def publish_training_report(as_of: date, trained: dict) -> str:
    """Plots as PNG in the reports location, the report as a markdown artifact linking them."""
    result, entry = trained["result"], trained["entry"]
    plots = {
        "calibration.png": calibration_png(result.calibration),
        "lift.png": lift_png(result.lift),
        "feature-importance.png": importance_png(result.importance),
    }
    links = write_report_files(get_settings().reports, f"churn/training/{as_of}/{entry['version']}", plots)
    markdown = training_markdown(
        as_of.isoformat(), trained["plan"], result, entry, trained["promoted"], trained["reason"], links
    )
    create_markdown_artifact(key="churn-training", markdown=markdown, description=f"Churn model training {as_of}")
    return markdown


@task(name="load-serving-model", task_run_name="verify the serving churn model", **_READ)
def load_serving_model(config: ChurnConfig) -> dict:
    """The champion's entry (verified by hash and trusted types), or the previous champion's when it is refused."""
    _model, entry, refusals = open_registry(config, get_settings()).load_serving()
    for line in refusals:
        get_run_logger().error("%s", line)
    return {"version": entry["version"], "entry": entry, "refusals": refusals}


@task(name="plan-scoring-chunks", task_run_name="plan churn scoring chunks {as_of}", **_READ)
def plan_scoring_chunks(as_of: date, config: ChurnConfig) -> list[tuple[int, int]]:
    """Customer id ranges of about `chunk_customers` each."""
    with warehouse_engine().connect() as conn:
        return customer_ranges(conn, as_of, config.scoring.chunk_customers)


@task(name="score-chunk", task_run_name="score churn {as_of} customers {lo}..{hi}", **_READ)
def score_chunk(as_of: date, lo: int, hi: int, version: str, config: ChurnConfig) -> dict:
    """Features and probabilities of the eligible customers lo..hi (the model verified again in this worker)."""
    model, entry = open_registry(config, get_settings()).load(version)
    scores, counts = score_range(warehouse_engine(), as_of, lo, hi, model, entry, config)
    return {"scores": scores, "counts": counts}


@task(
    name="write-churn-scores",
    task_run_name="write churn scores {as_of}",
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def write_churn_scores(as_of: date, chunks: list[dict], version: str) -> dict:
    """Deciles over the whole day, then replace the day's rows of `churn_scores` in one transaction."""
    parts = [c["scores"] for c in chunks if len(c["scores"])]
    scores = (
        pd.concat(parts, ignore_index=True).sort_values("customer_id", kind="stable")
        if parts
        else pd.DataFrame({"customer_id": pd.Series(dtype="int64"), "probability": pd.Series(dtype="float64")})
    )
    scores["decile"] = deciles(scores["probability"].to_numpy(), scores["customer_id"].to_numpy())
    scores["model_version"] = version
    written = write_scores(warehouse_engine(), as_of, scores)
    summary = (
        scores.groupby("decile")
        .agg(customers=("customer_id", "size"), mean_probability=("probability", "mean"))
        .reset_index()
    )
    get_run_logger().info("%d customers scored on %s with %s", written, as_of, version)
    return {"scored": written, "deciles": summary}


@task(name="publish-scoring-report", task_run_name="publish churn scoring report {as_of}", cache_policy=NO_CACHE)
def publish_scoring_report(as_of: date, config: ChurnConfig, served: dict, chunks: list[dict], written: dict) -> dict:
    """PSI of the score and features against training (warning above the threshold) and the deciles, as an artifact."""
    counts: dict = {}
    for chunk in chunks:
        add_counts(counts, chunk["counts"])
    entry = served["entry"]
    drift = (
        drift_table(counts, entry["reference"], config.scoring.psi_warning)
        if counts
        else pd.DataFrame(columns=["name", "psi", "warning"])
    )
    warned = drift[drift["warning"].astype(bool)]
    if len(warned):
        get_run_logger().warning(
            "drift: PSI above %s for %s", config.scoring.psi_warning, ", ".join(warned["name"].head(10))
        )
    markdown = scoring_markdown(
        as_of.isoformat(),
        entry,
        written["scored"],
        drift,
        config.scoring.psi_warning,
        served["refusals"],
        written["deciles"],
    )
    create_markdown_artifact(key="churn-scoring", markdown=markdown, description=f"Churn scores {as_of}")
    return {
        "drift_warnings": warned["name"].tolist(),
        "score_psi": float(drift.loc[drift["name"] == "score", "psi"].iloc[0]) if len(drift) else None,
    }


def scoring_task_runner(config: ChurnConfig):
    """Threads of this process by default; prefect-dask's DaskTaskRunner when `scoring.task_runner: dask`.

    With `dask_address` the chunks go to an existing cluster (its workers need this repo and the
    same CRM_* settings); without it a local cluster of `max_workers` in-process workers starts.
    """
    s = config.scoring
    if s.task_runner == TaskRunnerKind.DASK:
        from prefect_dask import DaskTaskRunner

        if s.dask_address:
            return DaskTaskRunner(address=s.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": s.max_workers,
                "processes": False,
                "threads_per_worker": 1,
                "dashboard_address": None,
            }
        )
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=s.max_workers)
