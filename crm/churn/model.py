"""Models and metrics: the scikit-learn pipelines, the recency baseline, validation metrics and PSI drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crm.churn.config import ModelKind, Training

RECENCY_MODEL = "recency"
CHAMPION = "champion"
NO_ACTIVITY_DAYS = 10_000.0  # recency of a customer who never had a counted activity


def fit_model(kind: ModelKind, training: Training, x: np.ndarray, y: np.ndarray):
    """Gradient boosting (NaN-aware) fitted once, then calibrated on held-out rows; or a logistic pipeline."""
    if kind != ModelKind.GRADIENT_BOOSTING:
        return make_model(kind, training).fit(x, y)
    rng = np.random.default_rng(training.seed)
    held = rng.random(len(y)) < training.calibration_share
    if len(np.unique(y[held])) < 2 or len(np.unique(y[~held])) < 2:
        held = np.zeros(len(y), dtype=bool)  # too few rows to hold out: calibrate on the training rows
    fit_rows = ~held if held.any() else np.ones(len(y), dtype=bool)
    booster = make_model(kind, training).fit(x[fit_rows], y[fit_rows])
    calibrate_rows = held if held.any() else fit_rows
    return CalibratedClassifierCV(FrozenEstimator(booster), method=training.calibration).fit(
        x[calibrate_rows], y[calibrate_rows]
    )


def make_model(kind: ModelKind, training: Training):
    """An unfitted pipeline: gradient boosting (NaN-aware; `fit_model` calibrates it), or an imputed, scaled logistic."""
    if kind == ModelKind.GRADIENT_BOOSTING:
        return HistGradientBoostingClassifier(
            max_iter=training.max_iter,
            learning_rate=training.learning_rate,
            early_stopping=False,
            random_state=training.seed,
        )
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    )


def make_recency_model():
    """Recency alone: a logistic regression on days since the last counted activity (calibrated to probabilities)."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=NO_ACTIVITY_DAYS, keep_empty_features=True)),
            ("model", LogisticRegression(max_iter=1000)),
        ]
    )


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The model input: `features` in order as float64 (missing columns as NaN)."""
    return frame.reindex(columns=features).to_numpy(dtype=np.float64)


def predict(model, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Churn probabilities of the rows of `frame`."""
    if len(frame) == 0:
        return np.array([], dtype=np.float64)
    return model.predict_proba(matrix(frame, features))[:, 1]


def booster_of(model) -> HistGradientBoostingClassifier | None:
    """The gradient boosting inside a calibrated model (`fit_model`), or the model itself; None for others."""
    inner = getattr(model, "estimator", model)
    inner = getattr(inner, "estimator", inner)  # FrozenEstimator
    return inner if isinstance(inner, HistGradientBoostingClassifier) else None


class TreeScores:
    """A fitted booster's raw scores of some rows, kept tree by tree.

    Shuffling one feature changes only the trees that split on it: `shuffled` re-predicts those
    and reuses the others' contributions (the same scores as predicting every tree, for a few
    times less work in permutation importance). Reads the booster's fitted trees (scikit-learn
    internals, pinned in constraints.txt); `TreeScores.usable` says whether this version has them.
    """

    def __init__(self, booster: HistGradientBoostingClassifier, x: np.ndarray):
        self.x = np.array(booster._preprocess_X(x, reset=False), dtype=np.float64, order="C")
        self.known, self.index = booster._bin_mapper.make_known_categories_bitsets()
        self.trees = [iteration[0] for iteration in booster._predictors]
        self.per_tree = np.vstack([self._predict(tree, self.x) for tree in self.trees])
        self.total = float(np.ravel(booster._baseline_prediction)[0]) + self.per_tree.sum(axis=0)
        self.uses: dict[int, list[int]] = {}
        for i, tree in enumerate(self.trees):
            split = tree.nodes["feature_idx"][~tree.nodes["is_leaf"].astype(bool)]
            for column in np.unique(split):
                self.uses.setdefault(int(column), []).append(i)

    @staticmethod
    def usable(booster: HistGradientBoostingClassifier | None) -> bool:
        """A binary booster whose fitted trees this scikit-learn version exposes as expected."""
        try:
            return (
                booster is not None
                and booster.n_trees_per_iteration_ == 1
                and hasattr(booster._predictors[0][0], "nodes")
                and hasattr(booster, "_bin_mapper")
            )
        except (AttributeError, IndexError):
            return False

    def _predict(self, tree, x: np.ndarray) -> np.ndarray:
        return tree.predict(x, self.known, self.index, 1)

    def shuffled(self, column: int, order: np.ndarray) -> np.ndarray:
        """Raw scores with `column` reordered by `order` (the other columns as they are)."""
        trees = self.uses.get(column)
        if not trees:
            return self.total  # no tree splits on it: nothing changes
        original = self.x[:, column].copy()
        self.x[:, column] = original[order]
        try:
            return (
                self.total - self.per_tree[trees].sum(axis=0) + sum(self._predict(self.trees[i], self.x) for i in trees)
            )
        finally:
            self.x[:, column] = original


def top_share(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """Lift and capture of the `share` highest scores (ties broken by order, deterministic)."""
    n = len(y)
    k = max(1, round(n * share))
    order = np.argsort(-p, kind="stable")[:k]
    positives = y.sum()
    rate = y.mean() if n else 0.0
    top_rate = y[order].mean()
    lift = float(top_rate / rate) if rate > 0 else float("nan")
    capture = float(y[order].sum() / positives) if positives > 0 else float("nan")
    return lift, capture


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier score, lift and capture in the top 10% and 20%, churn rate and rows."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    both = len(np.unique(y)) == 2
    metrics = {
        "rows": len(y),
        "churn_rate": float(y.mean()) if len(y) else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
    }
    for share in (0.1, 0.2):
        lift, capture = top_share(y, p, share)
        metrics[f"lift_top{int(share * 100)}"] = lift
        metrics[f"capture_top{int(share * 100)}"] = capture
    return metrics


def calibration_curve_points(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed churn per quantile bin of the predictions."""
    frame = pd.DataFrame({"y": y, "p": p})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(bins, max(1, len(frame))), labels=False)
    return frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), rows=("y", "size")).reset_index()


def deciles(probabilities: np.ndarray, customer_ids: np.ndarray) -> np.ndarray:
    """Risk decile 1..10 (1 = highest risk) by rank among the day's scores; ties by customer id (deterministic)."""
    n = len(probabilities)
    if n == 0:
        return np.array([], dtype=np.int16)
    order = np.lexsort((customer_ids, -probabilities))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return (rank * 10 // n + 1).astype(np.int16)


# ---------------------------------------------------------------- drift (population stability index)
def reference_bins(values: np.ndarray, bins: int) -> list[float]:
    """Inner quantile edges of a training distribution (NaN has its own bin)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(e) for e in edges]


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin: len(edges) + 1 finite bins, then the NaN bin (mergeable across chunks)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values[finite], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)
    return np.append(counts, int((~finite).sum()))


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index between two count vectors over the same bins."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.sum() == 0 or a.sum() == 0:
        return float("nan")
    e = np.clip(e / e.sum(), eps, None)
    a = np.clip(a / a.sum(), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_reference(frame: pd.DataFrame, features: list[str], scores: np.ndarray, bins: int) -> dict:
    """Bins and counts of the training features and of the validation scores, kept with the model."""
    ref: dict[str, dict] = {}
    for name in features:
        values = frame[name].to_numpy(dtype=np.float64)
        edges = reference_bins(values, bins)
        ref[name] = {"edges": edges, "counts": bin_counts(values, edges).tolist()}
    edges = reference_bins(scores, bins)
    return {"features": ref, "score": {"edges": edges, "counts": bin_counts(scores, edges).tolist()}}


def drift_counts(frame: pd.DataFrame, scores: np.ndarray, reference: dict) -> dict[str, list[int]]:
    """Counts of one chunk in the reference bins (sum them over chunks, then `drift_table`)."""
    out = {"__score__": bin_counts(scores, reference["score"]["edges"]).tolist()}
    for name, ref in reference["features"].items():
        values = frame[name].to_numpy(dtype=np.float64) if name in frame else np.full(len(frame), np.nan)
        out[name] = bin_counts(values, ref["edges"]).tolist()
    return out


def add_counts(total: dict[str, list[int]], part: dict[str, list[int]]) -> dict[str, list[int]]:
    """Merge chunk counts."""
    for name, counts in part.items():
        total[name] = (np.asarray(total[name]) + np.asarray(counts)).tolist() if name in total else list(counts)
    return total


def drift_table(counts: dict[str, list[int]], reference: dict, warning: float) -> pd.DataFrame:
    """PSI of the score and of every feature against training, largest first, with the warning flag."""
    rows = [{"name": "score", "psi": psi(reference["score"]["counts"], counts["__score__"])}]
    for name, ref in reference["features"].items():
        rows.append({"name": name, "psi": psi(ref["counts"], counts[name])})
    table = pd.DataFrame(rows)
    table["warning"] = table["psi"] > warning
    return table.sort_values("psi", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
