"""The model registry: skops files and JSON entries in a folder or S3 prefix, verified on every load.

A pickle is code: models are stored with skops, which rebuilds scikit-learn objects without
executing anything, and a file is loaded only if its SHA-256 matches the registry entry and it
contains nothing beyond the types in `TRUSTED_TYPES`. Layout under the registry root:

    churn/<version>/model.skops   the fitted estimator
    churn/<version>/entry.json    metrics, features, training window, data fingerprint, versions, sha256
    churn/champion.json           the serving version and every promotion / refusal before it
"""

from __future__ import annotations

import hashlib
import json
import platform
import threading
from datetime import date
from typing import Any

from crm.core.errors import Finding, OperatorError
from crm.core.storage import ObjectStore

PREFIX = "churn"
# Types skops does not trust by default that our pipelines need; anything else is refused.
TRUSTED_TYPES = [
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "numpy.dtype",
]


class ModelRefused(Finding):
    """A model file that does not match its entry or holds untrusted content (never loaded)."""


class NoChampion(OperatorError):
    """No model can serve: none was promoted yet, or every promoted one was refused."""


def sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions that must match for a model to behave as it was validated."""
    import numpy
    import pandas
    import sklearn
    import skops

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }


def dump_model(model) -> bytes:
    """The skops bytes of a fitted estimator."""
    import skops.io

    return skops.io.dumps(model)


# skops parses with `ast`; CPython 3.11 fails ("AST constructor recursion depth mismatch") when
# two threads do it at once, as scoring chunks on threads do: one load at a time per process.
_LOAD_LOCK = threading.Lock()


def load_model_bytes(data: bytes, version: str):
    """Rebuild an estimator from skops bytes, trusting only `TRUSTED_TYPES` (raises `ModelRefused`)."""
    with _LOAD_LOCK:
        return _load_model_bytes(data, version)


def _load_model_bytes(data: bytes, version: str):
    import zipfile

    import skops.io

    try:
        untrusted = set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ModelRefused(f"model {version} refused: not a skops file ({type(exc).__name__}: {exc})") from exc
    if untrusted:
        raise ModelRefused(f"model {version} refused: untrusted types in the file: {', '.join(sorted(untrusted))}")
    try:
        return skops.io.loads(data, trusted=TRUSTED_TYPES)
    except Exception as exc:  # a file skops cannot rebuild is refused the same way
        raise ModelRefused(f"model {version} refused: skops cannot load it ({type(exc).__name__}: {exc})") from exc


class ModelRegistry:
    """Versions of the churn model in an object store, and which one is champion."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    # -------------------------------------------------------------- writing
    def register(self, model, entry: dict[str, Any]) -> dict[str, Any]:
        """Store a fitted model and its entry; returns the entry with version, file and sha256."""
        data = dump_model(model)
        digest = sha256(data)
        version = f"{entry['as_of'].replace('-', '')}-{entry['model_kind'][:3]}-{digest[:10]}"
        entry = {
            **entry,
            "version": version,
            "file": f"{PREFIX}/{version}/model.skops",
            "sha256": digest,
            "size_bytes": len(data),
            "libraries": library_versions(),
            "status": "registered",
        }
        self.store.write_bytes(entry["file"], data)
        self._write_entry(entry)
        return entry

    def _write_entry(self, entry: dict[str, Any]) -> None:
        self.store.write_bytes(f"{PREFIX}/{entry['version']}/entry.json", _json(entry))

    def update_entry(self, version: str, **changes: Any) -> dict[str, Any]:
        """Record a decision (status, reason) on a version's entry."""
        entry = {**self.entry(version), **changes}
        self._write_entry(entry)
        return entry

    def promote(self, version: str, as_of: date, reason: str) -> None:
        """Make `version` the champion (its file must verify first); the previous one stays in the history."""
        self.load(version)  # a file that does not verify is never promoted
        state = self.champion_state()
        history = state.get("history", [])
        history.append({"version": version, "as_of": as_of.isoformat(), "reason": reason})
        self.store.write_bytes(f"{PREFIX}/champion.json", _json({"champion": version, "history": history}))
        self.update_entry(version, status="champion", decision=reason)
        if state.get("champion") and state["champion"] != version:
            self.update_entry(state["champion"], status="retired", decision=f"replaced by {version} on {as_of}")

    # -------------------------------------------------------------- reading
    def entry(self, version: str) -> dict[str, Any]:
        """The registry entry of a version."""
        try:
            return json.loads(self.store.read_bytes(f"{PREFIX}/{version}/entry.json"))
        except (FileNotFoundError, KeyError) as exc:
            raise OperatorError(f"no model version {version!r} in the registry {self.store.url}") from exc
        except Exception as exc:
            if type(exc).__name__ == "NoSuchKey":
                raise OperatorError(f"no model version {version!r} in the registry {self.store.url}") from exc
            raise

    def entries(self) -> list[dict[str, Any]]:
        """Every registered version's entry, oldest first."""
        keys = [k for k, _ in self.store.list_keys(PREFIX) if k.endswith("/entry.json")]
        entries = [json.loads(self.store.read_bytes(k)) for k in keys]
        return sorted(
            entries, key=lambda e: (e.get("registered_as_of", e["as_of"]), e.get("trained_at_seq", 0), e["version"])
        )

    def champion_state(self) -> dict[str, Any]:
        """`{"champion": version or None, "history": [...]}`."""
        if not any(k == f"{PREFIX}/champion.json" for k, _ in self.store.list_keys(PREFIX)):
            return {"champion": None, "history": []}
        return json.loads(self.store.read_bytes(f"{PREFIX}/champion.json"))

    def load(self, version: str):
        """The verified estimator and entry of `version` (`ModelRefused` when hash or content is wrong)."""
        entry = self.entry(version)
        try:
            data = self.store.read_bytes(entry["file"])
        except Exception as exc:
            raise ModelRefused(f"model {version} refused: its file {entry['file']} cannot be read ({exc})") from exc
        digest = sha256(data)
        if digest != entry["sha256"]:
            raise ModelRefused(
                f"model {version} refused: SHA-256 of {entry['file']} is {digest[:16]}..., "
                f"the registry entry says {entry['sha256'][:16]}... (the file was changed)"
            )
        return load_model_bytes(data, version), entry

    def load_serving(self) -> tuple[Any, dict[str, Any], list[str]]:
        """The champion, or when its file is refused the newest earlier champion that verifies.

        Returns (estimator, entry, refusals): each refusal's one line (a finding to report).
        """
        state = self.champion_state()
        if not state.get("champion"):
            raise NoChampion(
                f"no champion churn model in {self.store.url}; train one first: crm run train-churn --as-of DATE"
            )
        candidates = [state["champion"]] + [
            h["version"] for h in reversed(state.get("history", [])) if h["version"] != state["champion"]
        ]
        refusals: list[str] = []
        for version in dict.fromkeys(candidates):
            try:
                model, entry = self.load(version)
            except ModelRefused as exc:
                refusals.append(str(exc))
                continue
            return model, entry, refusals
        raise NoChampion("every champion model was refused: " + "; ".join(refusals))


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode()
