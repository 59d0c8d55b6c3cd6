"""The planning rules as vectorised pure functions over frames: no database, no files, no clock.

A day's planning is: entries -> due touches -> cascade candidates (one row per channel of a due
step) -> decisions (control group, reachability, engagement, contact budget and priority) ->
quiet hours. Every function takes and returns DataFrames; `plan` in `io.py` chains them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from crm.campaigns.config import Campaign, ContactBudget, QuietHours
from crm.campaigns.states import Decision, Group, Reason
from crm.core.contracts import Channel

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
REACHABLE = "reachable"
STEP_BASE = 10  # outbox step = step * 10 + touch: every channel of a cascade is its own message id


# --------------------------------------------------------------------------- control group


def _campaign_seed(campaign_id: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.sha256(campaign_id.encode()).digest()[:8], "big"))


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def holdout_draw(customer_ids: Sequence[int] | np.ndarray, campaign_id: str) -> np.ndarray:
    """A uniform number in [0, 1) per customer: a hash of (campaign, customer), the same on every day and re-run."""
    ids = np.asarray(customer_ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        mixed = _splitmix64(ids ^ _campaign_seed(campaign_id))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_groups(customer_ids: Sequence[int] | np.ndarray, campaign_id: str, holdout_share: float) -> np.ndarray:
    """`control` for the campaign's holdout, `treatment` otherwise (deterministic)."""
    control = holdout_draw(customer_ids, campaign_id) < holdout_share
    return np.where(control, Group.CONTROL.value, Group.TREATMENT.value).astype(object)


# --------------------------------------------------------------------------- calendar rules


def birthday_in(birth_dates: pd.Series, as_of: date, days_before: int) -> np.ndarray:
    """Whether each birthday falls exactly `days_before` days after `as_of` (29 February: on 28 February otherwise)."""
    target = as_of + timedelta(days=days_before)
    births = pd.to_datetime(birth_dates, errors="coerce")
    month, day = births.dt.month.to_numpy(), births.dt.day.to_numpy()
    hit = (month == target.month) & (day == target.day)
    leap = target.year % 4 == 0 and (target.year % 100 != 0 or target.year % 400 == 0)
    if target.month == 2 and target.day == 28 and not leap:
        hit |= (month == 2) & (day == 29)
    return np.asarray(hit, dtype=bool)


def schedule_frame(campaigns: Sequence[Campaign]) -> pd.DataFrame:
    """One row per campaign step: its day, cascade, wait, template, parameters and the campaign's priority."""
    rows = [
        {
            "campaign_id": c.id,
            "priority": c.priority,
            "step": i,
            "day": s.day,
            "wait_days": s.wait_days,
            "cascade": tuple(str(ch) for ch in s.cascade),
            "template_id": s.template_id,
            "params": dict(s.params),
        }
        for c in campaigns
        for i, s in enumerate(c.steps, start=1)
    ]
    columns = ["campaign_id", "priority", "step", "day", "wait_days", "cascade", "template_id", "params"]
    return pd.DataFrame(rows, columns=columns)


def due_touches(entries: pd.DataFrame, schedule: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The touches due on `as_of` for open entries: step `day` + touch x `wait_days` after entering.

    `entries`: campaign_id, customer_id, wave, entered_on, group. Returns one row per (entry, step)
    with the touch number (0 = the cascade's first reachable channel).
    """
    columns = [*list(entries.columns), "priority", "step", "touch", "cascade", "template_id", "params"]
    if entries.empty or schedule.empty:
        return pd.DataFrame(columns=columns)
    due = entries.merge(schedule, on="campaign_id", how="inner")
    elapsed = (pd.Timestamp(as_of) - pd.to_datetime(due["entered_on"])).dt.days.to_numpy() - due["day"].to_numpy()
    wait = due["wait_days"].to_numpy()
    touch = np.where(elapsed >= 0, elapsed // wait, -1)
    lengths = due["cascade"].map(len).to_numpy()
    keep = (elapsed >= 0) & (elapsed % wait == 0) & (touch < lengths)
    due = due.loc[keep].assign(touch=touch[keep].astype("int64"))
    return due[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- reachability and cascades


def reachability(
    customer_ids: np.ndarray, contacts: pd.DataFrame, unsubscribes: pd.DataFrame, channels: Sequence[str]
) -> pd.DataFrame:
    """Per customer and channel: `reachable`, `no_address`, `no_consent` or `unsubscribed` at the end of the day.

    `contacts`: customer_id, channel, address, is_consented, updated_at (as of the day);
    `unsubscribes`: customer_id, channel, occurred_at of providers' unsubscribe reports known by then.
    An unsubscribe newer than the contact row wins (the back end has not caught up yet).
    """
    ids = np.unique(np.asarray(customer_ids, dtype=np.int64))
    grid = pd.DataFrame(
        {"customer_id": np.repeat(ids, len(channels)), "channel": np.tile(np.asarray(channels, dtype=object), len(ids))}
    )
    c = contacts[["customer_id", "channel", "address", "is_consented", "updated_at"]]
    grid = grid.merge(c, on=["customer_id", "channel"], how="left")
    if not unsubscribes.empty:
        last = unsubscribes.groupby(["customer_id", "channel"], as_index=False)["occurred_at"].max()
        grid = grid.merge(last, on=["customer_id", "channel"], how="left")
    else:
        grid["occurred_at"] = pd.NaT
    no_address = grid["address"].isna() | (grid["address"].astype(str).str.len() == 0)
    consented = grid["is_consented"].fillna(False).astype(bool)
    unsub = grid["occurred_at"].notna() & (
        grid["updated_at"].isna() | (pd.to_datetime(grid["occurred_at"]) > pd.to_datetime(grid["updated_at"]))
    )
    grid["status"] = np.select(
        [no_address, ~consented, unsub],
        [Reason.NO_ADDRESS.value, Reason.NO_CONSENT.value, Reason.UNSUBSCRIBED.value],
        default=REACHABLE,
    )
    return grid[["customer_id", "channel", "status", "address"]]


def cascade_candidates(due: pd.DataFrame, reach: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate message: each due touch's channel, plus (on a step's first day) the unreachable ones.

    The touch-th reachable channel of the cascade is the candidate (`decision` still open); on the
    first touch, each unreachable channel of the cascade is recorded as skipped with its status.
    A first touch that lands on SMS although the cascade had cheaper channels is `no_free_channel`.
    """
    if due.empty:
        return due.assign(channel=[], position=[], decision=[], reason=[]).astype({"position": "int64"})
    rows = due.assign(channel=due["cascade"].map(list)).explode("channel")
    rows["position"] = rows.groupby(level=0).cumcount().to_numpy()
    rows = rows.reset_index(drop=True).merge(reach[["customer_id", "channel", "status"]], on=["customer_id", "channel"])
    rows = rows.sort_values(["campaign_id", "customer_id", "wave", "step", "position"], kind="stable")
    ok = rows["status"].to_numpy() == REACHABLE
    key = ["campaign_id", "customer_id", "wave", "step"]
    rows["rank"] = rows.assign(_ok=ok.astype(int)).groupby(key)["_ok"].cumsum().to_numpy() - 1
    chosen = ok & (rows["rank"].to_numpy() == rows["touch"].to_numpy())
    unreachable = ~ok & (rows["touch"].to_numpy() == 0)
    out = rows.loc[chosen | unreachable].copy()
    is_chosen = chosen[chosen | unreachable]
    out["decision"] = np.where(is_chosen, "", Decision.SKIPPED.value)
    free = (out["channel"] == Channel.SMS.value) & (out["position"] > 0) & (out["touch"] == 0)
    out["reason"] = np.where(
        is_chosen, np.where(free, Reason.NO_FREE_CHANNEL.value, Reason.CONSENTED.value), out["status"]
    )
    return out.drop(columns=["rank", "status", "cascade"]).reset_index(drop=True)


def decide_control_and_engagement(candidates: pd.DataFrame, engaged: pd.DataFrame) -> pd.DataFrame:
    """Skip the control group's messages, and later cascade touches of a step whose earlier message was opened or clicked.

    `engaged`: campaign_id, customer_id, wave, step of steps with an opened or clicked message.
    """
    out = candidates.copy()
    open_ = out["decision"] == ""
    control = open_ & (out["group"] == Group.CONTROL.value)
    out.loc[control, ["decision", "reason"]] = [Decision.SKIPPED.value, Reason.CONTROL.value]
    if not engaged.empty:
        marks = engaged[["campaign_id", "customer_id", "wave", "step"]].drop_duplicates().assign(_engaged=True)
        flag = out.merge(marks, on=["campaign_id", "customer_id", "wave", "step"], how="left")["_engaged"]
        hit = (out["decision"] == "") & (out["touch"] > 0) & flag.fillna(False).astype(bool).to_numpy()
        out.loc[hit, ["decision", "reason"]] = [Decision.SKIPPED.value, Reason.ENGAGED_EARLIER.value]
    return out


def apply_budget(candidates: pd.DataFrame, used: pd.DataFrame, budget: ContactBudget) -> pd.DataFrame:
    """The contact budget across campaigns, the most important campaign first: the rest are `capped` or `outranked`.

    `used`: customer_id, channel, messages already planned in the budget window before the day.
    A candidate over a limit is `capped` when earlier days had used it up, `outranked` when a
    higher-priority campaign (or an earlier step) of the same day took the last slot.
    """
    out = candidates.copy()
    open_idx = out.index[out["decision"] == ""]
    if len(open_idx) == 0:
        return out
    rows = out.loc[open_idx].sort_values(
        ["customer_id", "priority", "campaign_id", "step", "touch", "position"], kind="stable"
    )
    per_customer = used.groupby("customer_id")["messages"].sum() if not used.empty else pd.Series(dtype="int64")
    per_channel = used.set_index(["customer_id", "channel"])["messages"] if not used.empty else pd.Series(dtype="int64")
    used_total = rows["customer_id"].map(per_customer).fillna(0).astype("int64").to_numpy()
    keys = pd.MultiIndex.from_arrays([rows["customer_id"], rows["channel"]])
    used_channel = (
        pd.Series(per_channel.reindex(keys).to_numpy(), index=rows.index).fillna(0).astype("int64").to_numpy()
        if len(per_channel)
        else np.zeros(len(rows), dtype="int64")
    )
    limits = {str(k): v for k, v in budget.per_channel.items()}
    channel_limit = rows["channel"].map(limits).fillna(np.iinfo(np.int32).max).astype("int64").to_numpy()
    k_channel = rows.groupby(["customer_id", "channel"]).cumcount().to_numpy()
    channel_ok = used_channel + k_channel < channel_limit
    k_total = np.full(len(rows), -1, dtype="int64")
    k_total[channel_ok] = rows.loc[channel_ok].groupby("customer_id").cumcount().to_numpy()
    total_ok = channel_ok & (used_total + k_total < budget.messages) & (k_total < budget.per_day)
    capped = np.where(
        ~channel_ok, used_channel >= channel_limit, (used_total >= budget.messages) | (budget.per_day == 0)
    )
    decision = np.where(total_ok, Decision.PLANNED.value, Decision.SKIPPED.value)
    reason = np.where(
        total_ok, rows["reason"].to_numpy(), np.where(capped, Reason.CAPPED.value, Reason.OUTRANKED.value)
    )
    out.loc[rows.index, "decision"] = decision
    out.loc[rows.index, "reason"] = reason
    return out


# --------------------------------------------------------------------------- quiet hours and time zones


def timezone_of(
    customer_ids: np.ndarray, sms_contacts: pd.DataFrame, by_prefix: dict[str, str], default: str
) -> pd.Series:
    """Each customer's time zone: by the country code of the SMS contact (longest prefix first), else `default`."""
    ids = pd.Index(np.unique(np.asarray(customer_ids, dtype=np.int64)), name="customer_id")
    phones = sms_contacts.drop_duplicates("customer_id").set_index("customer_id")["address"].reindex(ids)
    phones = phones.fillna("").astype(str)
    zones = pd.Series(default, index=ids, dtype=object)
    for prefix in sorted(by_prefix, key=len):  # longer prefixes overwrite shorter ones
        zones[phones.str.startswith(prefix).to_numpy()] = by_prefix[prefix]
    return zones


def in_quiet_hours(local: time, quiet: QuietHours) -> bool:
    """Whether a local time of day falls in the quiet hours (which may span midnight)."""
    if quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def send_instant(as_of: date, quiet: QuietHours) -> datetime:
    """When the night's dispatch of `as_of` sends (naive, business time zone)."""
    return datetime.combine(as_of + timedelta(days=1), quiet.send_at)


def not_before_for(zones: pd.Series, as_of: date, quiet: QuietHours, business_zone: str) -> pd.Series:
    """Per customer: the end of the quiet hours in their zone (naive, business time zone), or NaT if sending is fine.

    The message waits (it is planned with `not_before`), it is never dropped.
    """
    return send_window_for(zones, as_of, quiet, business_zone)["not_before"]


def send_window_for(zones: pd.Series, as_of: date, quiet: QuietHours, business_zone: str) -> pd.DataFrame:
    """Per customer, when the night's message may go: `not_before` (NaT: at the send instant) and `not_after`.

    The window opens at the send instant, or at the end of the quiet hours in the customer's zone
    if the instant falls in them, and closes when the quiet hours begin again (NaT without quiet
    hours). Times are naive, in the business time zone, like the outbox's.
    """
    instant = send_instant(as_of, quiet).replace(tzinfo=ZoneInfo(business_zone))
    opens, closes = {}, {}
    for zone in pd.unique(zones):
        tz = ZoneInfo(zone)
        local = instant.astimezone(tz)
        start = local
        if in_quiet_hours(local.time().replace(tzinfo=None), quiet):
            day = local.date() if local.time().replace(tzinfo=None) < quiet.end else local.date() + timedelta(days=1)
            start = datetime.combine(day, quiet.end, tzinfo=tz)
            opens[zone] = _business_naive(start, business_zone)
        else:
            opens[zone] = pd.NaT
        if quiet.start == quiet.end:
            closes[zone] = pd.NaT
            continue
        close = datetime.combine(start.date(), quiet.start, tzinfo=tz)
        if close <= start:
            close = datetime.combine(start.date() + timedelta(days=1), quiet.start, tzinfo=tz)
        closes[zone] = _business_naive(close, business_zone)
    return pd.DataFrame(
        {"not_before": pd.to_datetime(zones.map(opens)), "not_after": pd.to_datetime(zones.map(closes))},
        index=zones.index,
    )


def _business_naive(moment: datetime, business_zone: str) -> pd.Timestamp:
    return pd.Timestamp(moment.astimezone(ZoneInfo(business_zone)).replace(tzinfo=None))


# --------------------------------------------------------------------------- outbox rows


def outbox_step(step: pd.Series | np.ndarray, touch: pd.Series | np.ndarray) -> np.ndarray:
    """The outbox's step number of a cascade touch: step x 10 + touch + 1 (11, 12, 13 for step 1)."""
    return np.asarray(step, dtype="int64") * STEP_BASE + np.asarray(touch, dtype="int64") + 1


def campaign_step(outbox_steps: pd.Series | np.ndarray) -> np.ndarray:
    """The campaign step of an outbox step number."""
    return np.asarray(outbox_steps, dtype="int64") // STEP_BASE
