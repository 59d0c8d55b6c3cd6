"""The churn model registry on a local folder and on S3 (moto server): verified loads, refusals, fallback."""

from __future__ import annotations

import json
import pickle
from datetime import date

import numpy as np
import pytest

from crm.churn import ChurnConfig, ModelKind, ModelRefused, ModelRegistry, NoChampion
from crm.churn.model import fit_model
from crm.core.storage import open_store

FEATURES = ["a", "b", "c"]


def fitted(kind: ModelKind = ModelKind.GRADIENT_BOOSTING, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((300, 3))
    x[::5, 1] = np.nan
    y = (rng.random(300) < x[:, 0]).astype(int)
    training = ChurnConfig().training.model_copy(update={"max_iter": 20})
    return fit_model(kind, training, x, y), x


def entry(as_of: str, kind: ModelKind = ModelKind.GRADIENT_BOOSTING) -> dict:
    return {"as_of": as_of, "model_kind": str(kind), "features": FEATURES, "training_window": [as_of]}


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path, s3_bucket) -> ModelRegistry:
    if request.param == "local":
        return ModelRegistry(open_store(str(tmp_path / "models")))
    return ModelRegistry(open_store(f"s3://{s3_bucket('models')}/registry"))


def test_a_registered_model_loads_verified_and_predicts_the_same(registry):
    model, x = fitted()
    registered = registry.register(model, entry("2026-05-01"))
    assert len(registered["sha256"]) == 64 and registered["libraries"]["scikit-learn"]
    loaded, stored = registry.load(registered["version"])
    assert (loaded.predict_proba(x) == model.predict_proba(x)).all()
    assert stored["features"] == FEATURES
    with pytest.raises(NoChampion, match="train one first"):
        registry.load_serving()
    registry.promote(registered["version"], date(2026, 5, 1), "first model")
    assert registry.champion_state()["champion"] == registered["version"]
    assert [e["status"] for e in registry.entries()] == ["champion"]


def test_changed_bytes_or_a_planted_pickle_are_refused_and_the_previous_champion_serves(registry):
    first, x = fitted(seed=1)
    second, _ = fitted(ModelKind.LOGISTIC, seed=2)
    old = registry.register(first, entry("2026-05-01"))
    registry.promote(old["version"], date(2026, 5, 1), "first model")
    new = registry.register(second, entry("2026-05-08", ModelKind.LOGISTIC))
    registry.promote(new["version"], date(2026, 5, 8), "beats the champion")

    # Changed bytes: the hash no longer matches.
    data = bytearray(registry.store.read_bytes(new["file"]))
    data[len(data) // 2] ^= 0xFF
    registry.store.write_bytes(new["file"], bytes(data))
    with pytest.raises(ModelRefused, match="SHA-256"):
        registry.load(new["version"])
    model, serving, refusals = registry.load_serving()
    assert serving["version"] == old["version"] and "SHA-256" in refusals[0]
    assert (model.predict_proba(x) == first.predict_proba(x)).all()

    # A pickle planted with a matching hash in the entry: not a skops file, never unpickled.
    planted = pickle.dumps(second)
    registry.store.write_bytes(new["file"], planted)
    forged = {**registry.entry(new["version"]), "sha256": __import__("hashlib").sha256(planted).hexdigest()}
    registry.store.write_bytes(f"churn/{new['version']}/entry.json", json.dumps(forged).encode())
    with pytest.raises(ModelRefused, match="not a skops file"):
        registry.load(new["version"])
    _, serving, refusals = registry.load_serving()
    assert serving["version"] == old["version"] and "not a skops file" in refusals[0]


def test_a_file_with_untrusted_types_is_refused(registry):
    import hashlib

    import skops.io

    from crm.churn import load_model_bytes

    data = skops.io.dumps({"f": np.random.default_rng(0).random, "m": fitted()[0]})
    with pytest.raises(ModelRefused, match="untrusted types"):
        load_model_bytes(data, "v")
    assert hashlib.sha256(data).hexdigest()  # the hash alone would not have caught it
