"""`train-churn` and `score-churn` end to end: report and plots, scores, Dask gives the same scores, refusal."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from crm.churn import load_churn_config, open_registry, read_scores
from crm.core.settings import get_settings, warehouse_engine
from flows.churn import score_churn, train_churn
from tests.churn_world import ingest_every, simulate_history
from tests.simulated import START

pytestmark = pytest.mark.slow


def write_config(folder: Path, **scoring) -> None:
    folder.mkdir(exist_ok=True)
    config = {
        "training": {"max_iter": 40, "importance_rows": 1000},
        "scoring": {"chunk_customers": 250, **scoring},
    }
    (folder / "churn.yaml").write_text(yaml.safe_dump(config))


def test_train_score_on_threads_and_on_dask_then_refuse_a_tampered_champion(sqlite_backend, tmp_path, monkeypatch):
    last = simulate_history(customers=800, register_days=30, days=190)
    ingest_every(START + timedelta(days=14), last, 15)
    config_dir = tmp_path / "config"
    write_config(config_dir)
    monkeypatch.setenv("CRM_CONFIG_DIR", str(config_dir))

    trained = train_churn(as_of=last)
    assert trained["promoted"] and trained["roc_auc"] > trained["recency_roc_auc"]
    reports = Path(get_settings().reports) / "churn" / "training" / last.isoformat() / trained["version"]
    assert {p.name for p in reports.iterdir()} == {"calibration.png", "lift.png", "feature-importance.png"}

    day = last - timedelta(days=3)
    scored = score_churn(as_of=day)
    assert scored["version"] == trained["version"] and scored["chunks"] >= 3 and scored["scored"] > 100
    with warehouse_engine().connect() as conn:
        on_threads = read_scores(conn, day)
    assert sorted(on_threads["decile"].unique()) == list(range(1, 11))

    write_config(config_dir, task_runner="dask", max_workers=2)
    on_dask = score_churn(as_of=day)
    assert on_dask["scored"] == scored["scored"]
    with warehouse_engine().connect() as conn:
        assert read_scores(conn, day).equals(on_threads)

    # A newer champion whose file was changed is refused; the previous champion scores the day.
    first = trained["version"]
    registry = open_registry(load_churn_config(), get_settings())
    model, entry = registry.load(first)
    entry = {k: v for k, v in entry.items() if k not in ("version", "file", "sha256", "status", "decision")}
    second = registry.register(model, {**entry, "as_of": date(2026, 6, 9).isoformat()})["version"]
    registry.promote(second, last, "by hand, for the test")
    data = bytearray(registry.store.read_bytes(f"churn/{second}/model.skops"))
    data[100] ^= 0x01
    registry.store.write_bytes(f"churn/{second}/model.skops", bytes(data))

    outcome = score_churn(as_of=last)
    assert outcome["version"] == first
    assert len(outcome["refusals"]) == 1 and second in outcome["refusals"][0] and "SHA-256" in outcome["refusals"][0]
    with warehouse_engine().connect() as conn:
        assert set(read_scores(conn, last)["model_version"]) == {first}

    # The command line says so in one line on stderr and exits 2 (a finding), after scoring with the previous one.
    result = CliRunner().invoke(app, ["run", "score-churn", "--as-of", last.isoformat()])
    assert result.exit_code == 2, result.output
    refusal = [line for line in result.stderr.splitlines() if not line.startswith("127.0.0.1 - - [")]
    assert len(refusal) == 1 and second in refusal[0] and "SHA-256" in refusal[0], result.stderr
    assert f"with {first}" in result.stdout


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_train_then_score_on_postgresql_and_rescoring_a_day_gives_the_same_scores(backend, tmp_path, monkeypatch):
    last = simulate_history(customers=400, register_days=20, days=110)
    ingest_every(START + timedelta(days=14), last, 15)
    config_dir = tmp_path / "config"
    write_config(config_dir)
    config = yaml.safe_load((config_dir / "churn.yaml").read_text())
    config["promotion"] = {"require_beating_recency": False}  # the subject is the engine, not the model's quality
    (config_dir / "churn.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("CRM_CONFIG_DIR", str(config_dir))

    trained = train_churn(as_of=last)
    assert trained["snapshots_used"] >= 1
    scored = score_churn(as_of=last)
    assert scored["version"] == trained["version"] and scored["scored"] > 20
    with warehouse_engine().connect() as conn:
        first = read_scores(conn, last)
    score_churn(as_of=last)
    with warehouse_engine().connect() as conn:
        assert read_scores(conn, last).equals(first)
