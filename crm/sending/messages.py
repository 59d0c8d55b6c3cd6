"""Messages as data: the deterministic message id, planned outbox rows, what a provider gets and answers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from crm.core.contracts import CHANNELS
from crm.sending.states import MessageState, SendOutcome, SkipReason

# What campaign planning hands to `enqueue_messages`, one row per message to send.
ENQUEUE_COLUMNS: tuple[str, ...] = (
    "as_of",  # business day planned for
    "campaign_id",
    "step",  # position in the campaign's chain (cascade touch)
    "wave",  # repetition of the campaign for the same customer (a new wave is a new message)
    "customer_id",
    "channel",
    "template_id",
    "params",  # dict or JSON text: the template's parameters (no contact data)
    "consent_decision",  # why planning found the customer reachable, e.g. "consented"
)
OPTIONAL_ENQUEUE_COLUMNS: tuple[str, ...] = (
    "not_before",  # quiet hours: earliest send time (naive, business time zone); null = any time
    "not_after",  # quiet hours: the send window closes then (naive, business time zone); null = never
    "cost_minor",  # price of the message; default: the channel's price in config/sending.yaml
)
ID_LENGTH = 32


def message_id(campaign_id: str, step: int, customer_id: int, wave: int) -> str:
    """The id of a message: a hash of (campaign, step, customer, wave), the same on every re-plan."""
    raw = f"{campaign_id}\x1f{int(step)}\x1f{int(customer_id)}\x1f{int(wave)}".encode()
    return hashlib.sha256(raw).hexdigest()[:ID_LENGTH]


def message_ids(frame: pd.DataFrame) -> list[str]:
    """`message_id` of every row of a frame with campaign_id, step, customer_id and wave."""
    return [
        message_id(c, s, k, w)
        for c, s, k, w in zip(
            frame["campaign_id"].astype(str),
            frame["step"].astype("int64"),
            frame["customer_id"].astype("int64"),
            frame["wave"].astype("int64"),
            strict=True,
        )
    ]


def _params_json(value: Any) -> str:
    if isinstance(value, str):
        value = json.loads(value)  # normalised, so the same parameters always store the same text
    if value is None or (isinstance(value, float) and np.isnan(value)):
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"params must be a JSON object, got {type(value).__name__}")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def plan_outbox_rows(frame: pd.DataFrame, contacts: pd.DataFrame, prices: dict[str, int]) -> pd.DataFrame:
    """Outbox rows for planned messages: ids, the address as of planning, the price; `skipped` when no address.

    `contacts` holds (customer_id, channel, address) as of the planning day. Rows repeating a
    message id keep the first.
    """
    missing = [c for c in ENQUEUE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"enqueue_messages: missing columns {missing}; expected {list(ENQUEUE_COLUMNS)}")
    out = frame[[c for c in ENQUEUE_COLUMNS + OPTIONAL_ENQUEUE_COLUMNS if c in frame.columns]].copy()
    bad = sorted(set(out["channel"].astype(str)) - set(CHANNELS))
    if bad:
        raise ValueError(f"enqueue_messages: unknown channels {bad}; known: {list(CHANNELS)}")
    for column in ("campaign_id", "template_id", "consent_decision"):
        if out[column].isna().any() or (out[column].astype(str).str.len() == 0).any():
            raise ValueError(f"enqueue_messages: {column} must not be empty")
    out["channel"] = out["channel"].astype(str)
    for column in ("step", "wave", "customer_id"):
        out[column] = out[column].astype("int64")
    out["as_of"] = pd.to_datetime(out["as_of"]).dt.normalize()
    out["params"] = [_params_json(v) for v in out["params"]]
    for column in ("not_before", "not_after"):
        if column not in out.columns:
            out[column] = pd.NaT
        out[column] = pd.to_datetime(out[column])
    if "cost_minor" not in out.columns:
        out["cost_minor"] = np.nan
    unpriced = out["cost_minor"].isna() & ~out["channel"].isin(list(prices))
    if unpriced.any():
        raise ValueError(f"enqueue_messages: no price for channels {sorted(set(out.loc[unpriced, 'channel']))}")
    out["cost_minor"] = out["cost_minor"].fillna(out["channel"].map(prices)).astype("int64")
    out.insert(0, "message_id", message_ids(out))
    out = out.drop_duplicates("message_id", keep="first")
    lookup = contacts[["customer_id", "channel", "address"]].astype({"customer_id": "int64", "channel": str})
    out = out.merge(lookup.drop_duplicates(["customer_id", "channel"]), on=["customer_id", "channel"], how="left")
    no_address = out["address"].isna() | (out["address"].astype(str).str.len() == 0)
    out["state"] = np.where(no_address, MessageState.SKIPPED.value, MessageState.PLANNED.value)
    out["skip_reason"] = np.where(no_address, SkipReason.NO_ADDRESS.value, None)
    out["attempts"] = 0
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class OutgoingMessage:
    """One message as a provider gets it (its parameters kept as the outbox's JSON text)."""

    message_id: str
    as_of: date
    campaign_id: str
    step: int
    wave: int
    customer_id: int
    channel: str
    template_id: str
    params_json: str
    address: str
    attempt: int = 1

    @cached_property
    def params(self) -> dict:
        """The template parameters."""
        return json.loads(self.params_json)

    def envelope(self) -> dict:
        """The identifying fields of the message, without its parameters and address."""
        return {
            "message_id": self.message_id,
            "as_of": self.as_of.isoformat(),
            "campaign_id": self.campaign_id,
            "step": self.step,
            "wave": self.wave,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "template_id": self.template_id,
        }

    def payload(self) -> dict:
        """The JSON body of an HTTP provider (the address as `to`)."""
        return self.envelope() | {"params": self.params, "to": self.address}

    def payload_json(self) -> str:
        """`payload()` as JSON text, the stored parameters spliced in as they are (no parse and re-encode)."""
        head = json.dumps(self.envelope() | {"to": self.address})
        return f'{head[:-1]}, "params": {self.params_json}}}'


@dataclass(frozen=True)
class SendResult:
    """What one attempt to send one message ended with."""

    message_id: str
    outcome: SendOutcome
    status_code: int | None = None
    requests: int = 1
    error: str | None = None


@dataclass
class BatchResult:
    """Results of one provider call: per message, the requests beyond the first ones, when it ran (wall clock)."""

    results: list[SendResult] = field(default_factory=list)
    retried_requests: int = 0
    started_at: Any = None
    finished_at: Any = None


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def outgoing_from_rows(rows: Sequence[Sequence[Any]]) -> list[OutgoingMessage]:
    """Provider messages from claimed outbox rows (tuples in the order of `CLAIMED_COLUMNS`), sorted by id."""
    # Plain tuples, no DataFrame: a chunk is thousands of rows and this runs for every one.
    return sorted(
        (
            OutgoingMessage(
                message_id=m,
                as_of=_day(day),
                campaign_id=c,
                step=int(st),
                wave=int(w),
                customer_id=int(k),
                channel=ch,
                template_id=t,
                params_json=p,
                address=a,
                attempt=int(n),
            )
            for m, day, c, st, w, k, ch, t, p, a, n in rows
        ),
        key=lambda message: message.message_id,
    )


EXPORT_COLUMNS: tuple[str, ...] = (
    "message_id",
    "as_of",
    "campaign_id",
    "step",
    "wave",
    "customer_id",
    "channel",
    "template_id",
    "params",
    "to",
)


def export_frame(messages: list[OutgoingMessage]) -> pd.DataFrame:
    """Messages as the rows of a file export (the layout an external platform and the simulator read)."""
    rows = [m.envelope() | {"params": m.params_json, "to": m.address} for m in messages]
    return pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
