"""What the providers received: the lists the world reads to react to campaign messages.

The layout is the file export's (`exports/<as_of>/<channel or provider>.csv`, one row per
message with at least message_id, campaign_id, customer_id and channel); the local HTTP provider
writes the same layout, so the world reacts to whatever reached either.
"""

from __future__ import annotations

import io
from datetime import date

import pandas as pd

from crm.core.storage import ObjectStore

EXPORTS = "exports"
RECEIVED_COLUMNS = ("message_id", "campaign_id", "customer_id", "channel")


def received_key(as_of: date, name: str) -> str:
    """Key of one received list: `exports/<as_of>/<name>.csv`."""
    return f"{EXPORTS}/{as_of.isoformat()}/{name}.csv"


def read_received(store: ObjectStore, as_of: date) -> pd.DataFrame:
    """Every message received for `as_of` (all lists of the day, each message once)."""
    prefix = f"{EXPORTS}/{as_of.isoformat()}/"
    frames = []
    for key, _size in store.list_keys(prefix):
        rest = key[len(prefix) :]
        if "/" in rest or not rest.endswith(".csv"):
            continue  # the file export's parts are in a subfolder: only finished lists count
        frame = pd.read_csv(io.BytesIO(store.read_bytes(key)), dtype=str, keep_default_na=False)
        if len(frame):
            frames.append(frame[list(RECEIVED_COLUMNS)])
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "customer_id" else object) for c in RECEIVED_COLUMNS})
    received = pd.concat(frames, ignore_index=True).drop_duplicates("message_id")
    received["customer_id"] = pd.to_numeric(received["customer_id"], errors="coerce")
    received = received.dropna(subset=["customer_id"]).astype({"customer_id": "int64"})
    return received.sort_values("message_id", kind="stable", ignore_index=True)
