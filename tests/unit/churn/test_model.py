"""Metrics, deciles, drift, the promotion guard and permutation importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.churn import ChurnConfig, ModelKind, bin_counts, deciles, evaluate, psi
from crm.churn.config import load_churn_config
from crm.churn.model import TreeScores, booster_of, fit_model
from crm.churn.training import permutation_importance_table


def test_evaluate_gives_auc_lift_and_capture():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)
    m = evaluate(y, p)
    assert m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["lift_top10"] == pytest.approx(5.0) and m["capture_top20"] == 1.0
    assert m["rows"] == 10 and m["churn_rate"] == pytest.approx(0.2)


def test_deciles_rank_highest_risk_first_and_break_ties_by_customer():
    p = np.array([0.1, 0.9, 0.5, 0.5] * 5)
    ids = np.arange(20)
    d = deciles(p, ids)
    assert d[1] == 1 and d[16] == 10 and d[0] < d[16]
    assert sorted(np.bincount(d)[1:]) == [2] * 10
    assert (deciles(p, ids) == d).all()


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=5000)
    edges = list(np.quantile(ref, np.linspace(0, 1, 11)[1:-1]))
    same = psi(bin_counts(ref, edges), bin_counts(rng.normal(size=5000), edges))
    shifted = psi(bin_counts(ref, edges), bin_counts(rng.normal(1.0, size=5000), edges))
    assert same < 0.02 and shifted > 0.2


def test_missing_values_have_their_own_bin():
    counts = bin_counts(np.array([np.nan, 1.0, 5.0]), [2.0])
    assert counts.tolist() == [1, 1, 1]


def test_an_invalid_config_names_the_file_and_the_field(tmp_path, monkeypatch):
    (tmp_path / "churn.yaml").write_text("horizon_days: 0\nscoring:\n  task_runner: spark\n")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ValueError) as error:
        load_churn_config()
    message = str(error.value)
    assert "churn.yaml" in message and "horizon_days" in message and "scoring.task_runner" in message


def test_the_repo_config_is_the_defaults():
    assert load_churn_config() == ChurnConfig()


def _result(mine: float, recency: float, champion: float | None = None):
    from types import SimpleNamespace

    metrics = {"gradient_boosting": {"roc_auc": mine}, "recency": {"roc_auc": recency}}
    if champion is not None:
        metrics["champion v1"] = {"roc_auc": champion}
    return SimpleNamespace(metrics=metrics, challenger_kind="gradient_boosting")


def test_promotion_needs_the_margin_over_the_champion_and_a_first_model_must_beat_recency():
    from crm.churn import promotion_decision

    config = ChurnConfig()
    champion = {"version": "v1"}
    assert promotion_decision(_result(0.80, 0.70), config, None)[0]
    promoted, reason = promotion_decision(_result(0.69, 0.70), config, None)
    assert not promoted and "recency" in reason
    assert promotion_decision(_result(0.806, 0.70, 0.80), config, champion)[0]
    promoted, reason = promotion_decision(_result(0.804, 0.70, 0.80), config, champion)
    assert not promoted and "margin" in reason and "v1" in reason


@pytest.fixture(autouse=True)
def _one_thread():
    """One OpenMP thread (as training runs): on a shared machine more are much slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _booster_data(rows: int = 2000):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 4))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 3] = 1.0  # constant: no tree can split on it
    y = (rng.random(rows) < 1 / (1 + np.exp(-2 * np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 1])))).astype(int)
    return x, y


def test_tree_scores_reuse_the_trees_a_shuffled_feature_does_not_reach_and_give_the_full_prediction():
    x, y = _booster_data()
    config = ChurnConfig()
    config.training.max_iter = 30
    model = fit_model(ModelKind.GRADIENT_BOOSTING, config.training, x, y)
    booster = booster_of(model)
    assert TreeScores.usable(booster)
    trees = TreeScores(booster, x)
    np.testing.assert_allclose(trees.total, booster.decision_function(x), atol=1e-9)
    order = np.random.default_rng(0).permutation(len(y))
    for column in range(3):
        moved = x.copy()
        moved[:, column] = x[order, column]
        np.testing.assert_allclose(trees.shuffled(column, order), booster.decision_function(moved), atol=1e-9)
    assert 3 not in trees.uses and trees.shuffled(3, order) is trees.total
    np.testing.assert_array_equal(np.isnan(trees.x), np.isnan(x))  # the rows are left as they were


@pytest.mark.parametrize("kind", [ModelKind.GRADIENT_BOOSTING, ModelKind.LOGISTIC])
def test_permutation_importance_ranks_the_informative_features_first_for_both_models(kind):
    x, y = _booster_data()
    config = ChurnConfig()
    config.training.max_iter = 30
    model = fit_model(kind, config.training, x, y)
    features = ["strong", "weak", "noise", "constant"]
    valid = pd.DataFrame(x, columns=features).assign(churned=y)
    table = permutation_importance_table(model, valid, features, rows=1500, seed=1)
    assert list(table["feature"][:2]) == ["strong", "weak"]
    assert table.set_index("feature").loc["constant", "importance"] == 0
    again = permutation_importance_table(model, valid, features, rows=1500, seed=1)
    pd.testing.assert_frame_equal(table, again)  # seeded: the report is reproducible
