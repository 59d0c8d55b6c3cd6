"""Training and scoring steps without Prefect: snapshots, time split, fit, compare, promote; score a chunk."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from crm.churn.config import ChurnConfig, ModelKind
from crm.churn.features import RECENCY_FEATURE, features_for_kinds, labels_from_returning
from crm.churn.io import history_start, present_kinds, read_features, returning_customers
from crm.churn.model import (
    CHAMPION,
    RECENCY_MODEL,
    TreeScores,
    booster_of,
    calibration_curve_points,
    drift_counts,
    drift_reference,
    evaluate,
    fit_model,
    make_recency_model,
    matrix,
    predict,
)
from crm.core.errors import OperatorError


class NotEnoughHistory(OperatorError):
    """No past snapshot has both its features' history and its label's horizon inside the warehouse."""


@dataclass
class SnapshotPlan:
    """The past days whose customers make the training set, and those left out with the reason."""

    as_of: date
    wanted: list[date]
    used: list[date]
    skipped: dict[str, str] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)


def plan_snapshots(engine: Engine, as_of: date, config: ChurnConfig) -> SnapshotPlan:
    """Snapshots `horizon_days` or more before `as_of` (labels known), spaced, that fit the warehouse's history."""
    t = config.training
    newest = as_of - timedelta(days=config.horizon_days)
    wanted = [newest - timedelta(days=i * t.snapshot_spacing_days) for i in range(t.snapshots)]
    with engine.connect() as conn:
        start = history_start(conn, as_of)
        kinds = sorted(present_kinds(conn, as_of))
    plan = SnapshotPlan(as_of, wanted, [], kinds=kinds)
    for day in wanted:
        if start is None or day < start + timedelta(days=t.min_history_days):
            plan.skipped[day.isoformat()] = f"before {t.min_history_days} days of history (history starts {start})"
        else:
            plan.used.append(day)
    plan.used.sort()
    if not plan.used:
        raise NotEnoughHistory(
            f"cannot train a churn model on {as_of}: no snapshot with {t.min_history_days} days of history before it "
            f"and its {config.horizon_days}-day label known by {as_of} (history starts {start}); "
            f"use a later --as-of or lower training.min_history_days / horizon_days in churn.yaml"
        )
    return plan


def build_snapshot(engine: Engine, snapshot: date, label_as_of: date, config: ChurnConfig) -> pd.DataFrame:
    """Eligible customers of `snapshot` with their features (known then) and label (known by `label_as_of`).

    Set-based over the whole population: one aggregate statement per data kind, and one for the labels.
    """
    with engine.connect() as conn:
        features = read_features(conn, snapshot, config, eligible_only=True)
        features = features[features["is_eligible"]]
        if features.empty:
            return pd.DataFrame()
        returned = returning_customers(conn, snapshot, label_as_of, config)
    features["churned"] = labels_from_returning(returned, features.index)
    features["snapshot"] = pd.Timestamp(snapshot)
    return features.drop(columns="is_eligible").reset_index()


def usable(frame: pd.DataFrame, config: ChurnConfig) -> str | None:
    """Why a snapshot cannot be used (too few rows, one class only), or None."""
    if len(frame) < config.training.min_rows:
        return f"{len(frame)} eligible customers (fewer than training.min_rows {config.training.min_rows})"
    if frame["churned"].nunique() < 2:
        return "every customer has the same label"
    return None


def time_split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Older snapshots train, the newest validates; with one snapshot, a seeded 80/20 split of its customers."""
    snapshots = sorted(frame["snapshot"].unique())
    if len(snapshots) >= 2:
        newest = snapshots[-1]
        return frame[frame["snapshot"] < newest], frame[frame["snapshot"] == newest], "time"
    rng = np.random.default_rng(seed)
    valid = rng.random(len(frame)) < 0.2
    return frame[~valid], frame[valid], "customers (one snapshot only)"


def fingerprint(frame: pd.DataFrame, features: list[str]) -> str:
    """SHA-256 of the training data (rows in a stable order): the same data gives the same fingerprint."""
    import hashlib

    ordered = frame.sort_values(["snapshot", "customer_id"], kind="stable")[
        ["snapshot", "customer_id", "churned", *features]
    ]
    hashed = pd.util.hash_pandas_object(ordered, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


@dataclass
class TrainingResult:
    """Fitted models and their comparison on the same validation window."""

    challenger: Any
    challenger_kind: ModelKind
    features: list[str]
    metrics: dict[str, dict[str, float]]
    split: str
    validation_snapshot: str
    train_rows: int
    valid_rows: int
    calibration: dict[str, pd.DataFrame]
    lift: dict[str, pd.DataFrame]
    importance: pd.DataFrame
    reference: dict
    fingerprint: str


def choose_features(train: pd.DataFrame, kinds: list[str], config: ChurnConfig) -> list[str]:
    """Features of the data kinds the company has, minus those with no value at all in the training rows."""
    candidates = features_for_kinds(config, set(kinds))
    return [f for f in candidates if f in train and train[f].notna().any()]


def fit_and_compare(
    frame: pd.DataFrame, kinds: list[str], config: ChurnConfig, champion: tuple[Any, dict] | None
) -> TrainingResult:
    """Fit the challenger, the other pipeline and recency alone on the older snapshots; compare all on the newest."""
    from threadpoolctl import threadpool_limits

    t = config.training
    train, valid, split = time_split(frame, t.seed)
    sampled = len(train) > t.max_train_rows
    if sampled:
        train = train.sample(n=t.max_train_rows, random_state=t.seed).sort_index()
    features = choose_features(train, kinds, config)
    y_train, y_valid = train["churned"].to_numpy(), valid["churned"].to_numpy()
    models: dict[str, Any] = {}
    with threadpool_limits(t.threads):
        for kind in (t.model, *(k for k in ModelKind if k != t.model)):
            models[str(kind)] = fit_model(kind, t, matrix(train, features), y_train)
        predictions = {name: predict(m, valid, features) for name, m in models.items()}
        recency_features = [RECENCY_FEATURE] if RECENCY_FEATURE in features else features[:1]
        recency = make_recency_model().fit(matrix(train, recency_features), y_train)
        predictions[RECENCY_MODEL] = predict(recency, valid, recency_features)
        if champion is not None:
            model, entry = champion
            predictions[f"{CHAMPION} {entry['version']}"] = predict(model, valid, entry["features"])
    metrics = {name: evaluate(y_valid, p) for name, p in predictions.items()}
    calibration = {name: calibration_curve_points(y_valid, p) for name, p in predictions.items()}
    lift = {name: lift_curve(y_valid, p) for name, p in predictions.items()}
    challenger = models[str(t.model)]
    importance = permutation_importance_table(challenger, valid, features, t.importance_rows, t.seed)
    reference = drift_reference(valid, features, predictions[str(t.model)], config.scoring.psi_bins)
    return TrainingResult(
        challenger=challenger,
        challenger_kind=t.model,
        features=features,
        metrics=metrics,
        split=split + (f", training rows sampled to {t.max_train_rows:,}" if sampled else ""),
        validation_snapshot=pd.Timestamp(valid["snapshot"].max()).date().isoformat(),
        train_rows=len(train),
        valid_rows=len(valid),
        calibration=calibration,
        lift=lift,
        importance=importance,
        reference=reference,
        fingerprint=fingerprint(frame, features),
    )


def lift_curve(y: np.ndarray, p: np.ndarray, points: int = 20) -> pd.DataFrame:
    """Cumulative lift and capture at each share of customers ranked by score."""
    order = np.argsort(-p, kind="stable")
    ys = np.asarray(y)[order]
    n, positives, rate = len(ys), max(ys.sum(), 1), max(ys.mean(), 1e-12)
    rows = []
    for i in range(1, points + 1):
        k = max(1, round(n * i / points))
        rows.append({"share": i / points, "lift": ys[:k].mean() / rate, "capture": ys[:k].sum() / positives})
    return pd.DataFrame(rows)


def permutation_importance_table(
    model, valid: pd.DataFrame, features: list[str], rows: int, seed: int, repeats: int = 2
) -> pd.DataFrame:
    """Drop in ROC-AUC when each feature is shuffled (on a sample of the validation rows), `repeats` shuffles each.

    For the gradient boosting, on the booster's own scores (its calibration is monotone: it only
    adds ties), re-predicting only the trees that split on the shuffled feature (`TreeScores`).
    """
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    sample = valid.sample(n=min(rows, len(valid)), random_state=seed) if len(valid) > rows else valid
    y = sample["churned"].to_numpy()
    if len(np.unique(y)) < 2:
        return pd.DataFrame({"feature": features, "importance": np.nan})
    x = matrix(sample, features)
    booster = booster_of(model)
    rng = np.random.default_rng(seed)
    importance = []
    # Many small predictions: one OpenMP thread each is several times faster on a shared machine.
    with threadpool_limits(1):
        if TreeScores.usable(booster):
            trees = TreeScores(booster, x)
            base, shuffled = trees.total, trees.shuffled
        else:
            base = model.predict_proba(x)[:, 1]

            def shuffled(column: int, order: np.ndarray) -> np.ndarray:
                moved = x.copy()
                moved[:, column] = x[order, column]
                return model.predict_proba(moved)[:, 1]

        auc = roc_auc_score(y, base)
        for column in range(len(features)):
            drops = [auc - roc_auc_score(y, shuffled(column, rng.permutation(len(y)))) for _ in range(repeats)]
            importance.append(float(np.mean(drops)))
    table = pd.DataFrame({"feature": features, "importance": importance})
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def promotion_decision(result: TrainingResult, config: ChurnConfig, champion_entry: dict | None) -> tuple[bool, str]:
    """Whether the challenger may become champion, and why (the margin over the champion on the same window)."""
    p = config.promotion
    mine = result.metrics[str(result.challenger_kind)][p.metric]
    recency = result.metrics[RECENCY_MODEL][p.metric]
    if not np.isfinite(mine):
        return False, f"{p.metric} undefined on the validation window"
    if champion_entry is None:
        if p.require_beating_recency and not mine > recency:
            return False, f"first model, but {p.metric} {mine:.4f} does not beat recency alone ({recency:.4f})"
        return True, f"first model; {p.metric} {mine:.4f} vs recency alone {recency:.4f}"
    theirs = result.metrics[f"{CHAMPION} {champion_entry['version']}"][p.metric]
    if mine >= theirs + p.margin:
        return True, f"{p.metric} {mine:.4f} beats champion {champion_entry['version']} ({theirs:.4f}) by >= {p.margin}"
    return False, (
        f"{p.metric} {mine:.4f} does not beat champion {champion_entry['version']} ({theirs:.4f}) by the margin {p.margin}"
    )


# ------------------------------------------------------------------------------------------- scoring
def score_range(engine: Engine, as_of: date, lo: int, hi: int, model, entry: dict, config: ChurnConfig):
    """Probabilities of the eligible customers lo..hi on `as_of`, and their drift counts in the reference bins."""
    with engine.connect() as conn:
        features = read_features(conn, as_of, config, lo, hi, eligible_only=True)
    features = features[features["is_eligible"]]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(config.training.threads):
        probability = predict(model, features, entry["features"])
    scores = pd.DataFrame({"customer_id": features.index.to_numpy(dtype=np.int64), "probability": probability})
    counts = drift_counts(features, probability, entry["reference"]) if len(features) else {}
    return scores, counts
