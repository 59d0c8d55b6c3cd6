"""Pure derivation: per-customer aggregates in, segments out (lifecycle, RFM, reachability, preference).

Vectorised pandas on one row per customer, no database: the rules are tested on hand-built
frames (`tests/unit/segments`). Days are business days: "N days after X" is X's day + N.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crm.core.contracts import CHANNELS
from crm.segments.config import SegmentsConfig
from crm.segments.states import LifecycleState as S
from crm.segments.states import LifecycleSubstate as Sub
from crm.segments.states import SegmentChange, SegmentKind

DATE_COLUMNS = (
    "registered_on",
    "last_approved_on",
    "last_abandoned_on",
    "last_expired_on",
    "last_loan_on",
    "last_repaid_on",
    "last_order_on",
    "first_window_activity_on",
    "last_reaction_on",
)
COUNT_COLUMNS = (
    "apps",
    "apps_pending",
    "apps_rejected",
    "apps_issued",
    "loans",
    "loans_open",
    "loans_repaid",
    "orders",
    "window_loans",
    "window_orders",
    "window_interest_minor",
    "window_order_minor",
    *[f"delivered_{c}" for c in CHANNELS],
    *[f"reactions_{c}" for c in CHANNELS],
)
# is_purged: out of the active base (campaigns' purge, not restored) at the end of the day before.
FLAG_COLUMNS = ("is_technical", "has_login", *[f"contact_{c}" for c in CHANNELS], "is_purged")
AGGREGATE_COLUMNS = ("customer_id", *FLAG_COLUMNS[:2], *COUNT_COLUMNS, *DATE_COLUMNS, *FLAG_COLUMNS[2:])

# Counted from app and message events alone (immutable facts, no window): a stored row plus the day's facts.
FACT_COLUMNS = (
    "has_login",
    *[f"delivered_{c}" for c in CHANNELS],
    *[f"reactions_{c}" for c in CHANNELS],
    "last_reaction_on",
)

SEGMENT_COLUMNS = (
    "customer_id",
    "lifecycle_state",
    "lifecycle_substate",
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_cell",
    "reachable_push",
    "reachable_email",
    "reachable_sms",
    "preferred_channel",
    "retail_active",
    "is_intersection",
    "is_technical",
)
MEMBERSHIP_COLUMNS = ("customer_id", "kind", "segment", "rule")


def typed_aggregates(frame: pd.DataFrame, columns: tuple[str, ...] = AGGREGATE_COLUMNS) -> pd.DataFrame:
    """Aggregates as read from a database, with days as datetime64, counts as int64 and flags as bool.

    `columns` (with `customer_id`): those read, in `AGGREGATE_COLUMNS`' order (all of them by default).
    """
    out = pd.DataFrame({"customer_id": frame["customer_id"].astype("int64")})
    for name in FLAG_COLUMNS:
        if name in columns:
            out[name] = frame[name].fillna(False).astype(bool)
    for name in COUNT_COLUMNS:
        if name in columns:
            out[name] = pd.to_numeric(frame[name]).fillna(0).astype("int64")
    for name in DATE_COLUMNS:
        if name in columns:
            out[name] = _days(frame[name])
    return out[[c for c in AGGREGATE_COLUMNS if c in columns]]


def add_fact_deltas(
    stored: pd.DataFrame, messages: pd.DataFrame, logins: pd.DataFrame, interest: pd.DataFrame
) -> pd.DataFrame:
    """Typed aggregates after a day's new facts: `stored` (typed) plus the day's rows (raw, as `fact_deltas` reads them).

    Only valid for customers with no new version, unsubscribe or threshold that day (those are
    aggregated again from the history): no counted row left the RFM window since `stored`.
    `messages`: per customer and channel, deliveries and reactions and the latest reaction;
    `logins`: ids; `interest`: the window's interest paid and the earliest payment time.
    `stored` may hold only the `FACT_COLUMNS` (the interest is then left out).
    """
    out = stored.copy()
    ids = out["customer_id"].to_numpy()

    def aligned(frame: pd.DataFrame, column: str) -> pd.Series:
        values = frame.set_index(frame["customer_id"].astype("int64"))[column] if len(frame) else pd.Series()
        return values.reindex(ids).reset_index(drop=True)

    def add(column: str, frame: pd.DataFrame) -> None:
        delta = pd.to_numeric(aligned(frame, column)).fillna(0).astype("int64").to_numpy()
        out[column] = out[column].to_numpy() + delta

    def latest(column: str, frame: pd.DataFrame, pick) -> None:
        both = pd.DataFrame({"stored": out[column].to_numpy(), "day": _days(aligned(frame, column)).to_numpy()})
        out[column] = pick(both).astype("datetime64[s]").to_numpy()

    for channel in CHANNELS:
        add(f"delivered_{channel}", messages)
        add(f"reactions_{channel}", messages)
    latest("last_reaction_on", messages, lambda both: both.max(axis=1))
    out["has_login"] = out["has_login"].to_numpy(bool) | np.isin(ids, logins["customer_id"].astype("int64"))
    if "window_interest_minor" in out:
        add("window_interest_minor", interest)
        latest("first_window_activity_on", interest, lambda both: both.min(axis=1))
    return out[[c for c in AGGREGATE_COLUMNS if c in out]]


def _days(values: pd.Series) -> pd.Series:
    """Timestamps (datetimes, or text as SQLite returns it) as their day, datetime64[s]."""
    if (
        values.dtype == object
        and len(values)
        and isinstance(values.dropna().iloc[0] if values.notna().any() else None, str)
    ):
        # "YYYY-MM-DD HH:MM:SS[.ffffff]": the day is the first ten characters.
        values = pd.to_datetime(values.str.slice(0, 10), format="%Y-%m-%d")
    return pd.to_datetime(values).dt.normalize().astype("datetime64[s]")


def _days_since(column: pd.Series, day: pd.Timestamp) -> pd.Series:
    """Whole days from the column's day to `day` (NaN when null)."""
    return (day - column).dt.days


def lifecycle(agg: pd.DataFrame, as_of: date, config: SegmentsConfig) -> tuple[np.ndarray, np.ndarray]:
    """The lifecycle state and sub-state of each customer (DOMAIN.md), in rule priority order."""
    day = pd.Timestamp(as_of)
    since_repaid = _days_since(agg["last_repaid_on"], day)
    since_reaction = _days_since(agg["last_reaction_on"], day).fillna(np.inf)
    since_approved = _days_since(agg["last_approved_on"], day)
    since_order = _days_since(agg["last_order_on"], day)
    repeat = agg["loans_repaid"] > 0
    first_loan = ~repeat & ((agg["loans"] > 0) | (agg["apps_issued"] > 0))
    applied = agg["apps"] > 0
    lapsed_on = agg[["last_expired_on", "last_approved_on"]].max(axis=1)
    abandoned_later = agg["last_abandoned_on"].notna() & (lapsed_on.isna() | (agg["last_abandoned_on"] >= lapsed_on))
    retail = ~applied & (agg["loans"] == 0) & (agg["orders"] > 0)
    deep = (since_repaid >= config.deep_churn_days) & (since_reaction >= config.deep_churn_no_reaction_days)
    rules = [
        (repeat & (agg["loans_open"] > 0), S.REPEAT, Sub.ACTIVE),
        (repeat & deep, S.REPEAT, Sub.DEEP_CHURN),
        (repeat & (since_repaid >= config.pre_churn_days), S.REPEAT, Sub.CHURN),
        (repeat, S.REPEAT, Sub.PRE_CHURN),
        (first_loan, S.NEWBIE, Sub.FIRST_LOAN),
        (applied & (agg["apps_pending"] > 0), S.NEWBIE, Sub.APPLYING),
        (applied & (since_approved < config.approval_valid_days), S.NEWBIE, Sub.APPROVED_NOT_TAKEN),
        (applied & (agg["apps_rejected"] == agg["apps"]), S.REJECTED, None),
        (applied & abandoned_later, S.NEWBIE, Sub.ABANDONED_APPLICATION),
        (applied, S.NEWBIE, Sub.APPROVAL_EXPIRED),
        (retail & (since_order < config.retail_active_days), S.RETAIL, Sub.ACTIVE_BASE),
        (retail, S.RETAIL, Sub.LAPSED),
        (agg["has_login"], S.LEAD, Sub.NEVER_APPLIED),
    ]
    conditions = [c.fillna(False).to_numpy(bool) for c, _, _ in rules]
    state = np.select(conditions, [str(s) for _, s, _ in rules], default=str(S.LEAD)).astype(object)
    substate = np.select(
        conditions, [None if b is None else str(b) for _, _, b in rules], default=str(Sub.NEVER_AUTHORISED)
    ).astype(object)
    substate[substate == "None"] = None
    return state, substate


def _score_at_least(values: pd.Series, bounds: list[int]) -> np.ndarray:
    return 1 + sum((values >= b).to_numpy(int) for b in bounds)


def rfm(agg: pd.DataFrame, as_of: date, config: SegmentsConfig) -> pd.DataFrame:
    """Recency, frequency and monetary scores 1-5 and the named cell; null for customers with no loan or purchase."""
    day = pd.Timestamp(as_of)
    last = agg[["last_loan_on", "last_order_on"]].max(axis=1)
    since = _days_since(last, day)
    recency = 1 + sum((since <= b).to_numpy(int) for b in config.rfm.recency_days)
    frequency = _score_at_least(agg["window_loans"] + agg["window_orders"], config.rfm.frequency)
    monetary = _score_at_least(agg["window_interest_minor"] + agg["window_order_minor"], config.rfm.monetary_minor)
    cell = np.full(len(agg), None, dtype=object)
    for rule in reversed(config.rfm.cells):  # the first matching cell wins: apply it last
        match = (recency >= rule.recency[0]) & (recency <= rule.recency[1])
        match &= (frequency >= rule.frequency[0]) & (frequency <= rule.frequency[1])
        cell[match] = rule.name
    active = last.notna().to_numpy()
    out = pd.DataFrame(
        {
            "rfm_recency": pd.array(np.where(active, recency, 0), dtype="Int64"),
            "rfm_frequency": pd.array(np.where(active, frequency, 0), dtype="Int64"),
            "rfm_monetary": pd.array(np.where(active, monetary, 0), dtype="Int64"),
            "rfm_cell": np.where(active, cell, None),
        },
        index=agg.index,
    )
    out.loc[~active, ["rfm_recency", "rfm_frequency", "rfm_monetary"]] = pd.NA
    return out


def preferred_channel(agg: pd.DataFrame, config: SegmentsConfig) -> np.ndarray:
    """The channel with the most opens + clicks per delivered message (ties: the cheaper); null without reactions."""
    rates = np.column_stack(
        [
            np.where(
                agg[f"delivered_{c}"] >= config.preference_min_delivered,
                agg[f"reactions_{c}"] / agg[f"delivered_{c}"].clip(lower=1),
                0.0,
            )
            for c in CHANNELS
        ]
    )
    best = rates.argmax(axis=1)  # the first maximum: channels are listed cheapest first
    out = np.array(CHANNELS, dtype=object)[best]
    out[rates.max(axis=1) <= 0] = None
    return out


def recheck_on(agg: pd.DataFrame, as_of: date, config: SegmentsConfig) -> pd.Series:
    """The first day after `as_of` on which a threshold would move the customer without new input (NaT: never)."""
    day = pd.Timestamp(as_of)
    last_activity = agg[["last_loan_on", "last_order_on"]].max(axis=1)
    candidates = [
        agg["last_approved_on"] + pd.Timedelta(days=config.approval_valid_days),
        agg["last_repaid_on"] + pd.Timedelta(days=config.pre_churn_days),
        agg["last_repaid_on"] + pd.Timedelta(days=config.deep_churn_days),
        agg["last_reaction_on"] + pd.Timedelta(days=config.deep_churn_no_reaction_days),
        agg["last_order_on"] + pd.Timedelta(days=config.retail_active_days),
        agg["last_loan_on"] + pd.Timedelta(days=config.retail_active_days),
        agg["first_window_activity_on"] + pd.Timedelta(days=config.rfm.window_days),
        *[last_activity + pd.Timedelta(days=b + 1) for b in config.rfm.recency_days],
    ]
    frame = pd.concat(candidates, axis=1)
    return frame.where(frame > day).min(axis=1)


def derive_segments(agg: pd.DataFrame, as_of: date, config: SegmentsConfig) -> pd.DataFrame:
    """Every customer's segments for `as_of` (`SEGMENT_COLUMNS`, one row per customer) from typed aggregates."""
    state, substate = lifecycle(agg, as_of, config)
    scores = rfm(agg, as_of, config)
    technical = agg["is_technical"].to_numpy(bool)
    # A purged customer left the active base: only the state says so, no other segment holds them.
    purged = agg["is_purged"].to_numpy(bool)
    state = np.where(purged, S.PURGED.value, np.asarray(state, dtype=object))
    substate = np.where(purged, None, np.asarray(substate, dtype=object))
    scores = scores.copy()
    scores.loc[purged, ["rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_cell"]] = pd.NA
    retail_active = (
        (agg["orders"] > 0)
        & (_days_since(agg["last_order_on"], pd.Timestamp(as_of)) < config.retail_active_days)
        & ~purged
    )
    recent_loan = (agg["loans_open"] > 0) | (
        _days_since(agg["last_loan_on"], pd.Timestamp(as_of)) < config.retail_active_days
    )
    out = pd.DataFrame(
        {
            "customer_id": agg["customer_id"].to_numpy(),
            "lifecycle_state": state,
            "lifecycle_substate": substate,
        }
    )
    for name in scores.columns:
        out[name] = scores[name].array  # keeps Int64 (scores) and object (cell) as they are
    for channel in CHANNELS:
        out[f"reachable_{channel}"] = agg[f"contact_{channel}"].to_numpy(bool) & ~technical & ~purged
    out["preferred_channel"] = np.where(purged, None, preferred_channel(agg, config))
    out["retail_active"] = retail_active.fillna(False).to_numpy(bool)
    out["is_intersection"] = (retail_active & recent_loan).fillna(False).to_numpy(bool)
    out["is_technical"] = technical
    return out[list(SEGMENT_COLUMNS)]


def rule_texts(config: SegmentsConfig) -> dict[tuple[str, str], str]:
    """The rule behind each (kind, segment) value, with the configured thresholds (stored with memberships and events)."""
    c = config
    sub = {
        Sub.NEVER_AUTHORISED: "lead: registered, never logged in, never applied",
        Sub.NEVER_APPLIED: "lead: logged in, never applied",
        Sub.APPLYING: "newbie: an application started or waiting for approval",
        Sub.APPROVED_NOT_TAKEN: f"newbie: approved less than {c.approval_valid_days} days ago, loan not taken",
        Sub.ABANDONED_APPLICATION: "newbie: application started and abandoned",
        Sub.APPROVAL_EXPIRED: f"newbie: approval not taken within {c.approval_valid_days} days",
        Sub.FIRST_LOAN: "newbie: a first loan issued, none repaid",
        Sub.ACTIVE: "repeat: a loan repaid and an open loan",
        Sub.PRE_CHURN: f"repeat: no open loan, last repayment less than {c.pre_churn_days} days ago",
        Sub.CHURN: f"repeat: no open loan, last repayment {c.pre_churn_days} days ago or more",
        Sub.DEEP_CHURN: (
            f"repeat: last repayment {c.deep_churn_days} days ago or more, "
            f"no opened or clicked message for {c.deep_churn_no_reaction_days} days"
        ),
        Sub.ACTIVE_BASE: f"retail: a purchase in the last {c.retail_active_days} days, never applied",
        Sub.LAPSED: f"retail: no purchase in the last {c.retail_active_days} days, never applied",
    }
    texts = {(SegmentKind.LIFECYCLE_SUBSTATE.value, str(k)): v for k, v in sub.items()}
    texts[(SegmentKind.LIFECYCLE.value, str(S.REJECTED))] = "rejected: every application refused"
    texts[(SegmentKind.LIFECYCLE.value, str(S.PURGED))] = (
        "purged: archived out of the active base by a campaign's purge, not restored"
    )
    texts[(SegmentKind.TECHNICAL.value, "technical")] = "internal account: never contacted"
    texts[(SegmentKind.RETAIL.value, "active_base")] = f"a completed purchase in the last {c.retail_active_days} days"
    texts[(SegmentKind.INTERSECTION.value, "intersection")] = (
        f"a purchase and a loan (or pawn ticket) in the last {c.retail_active_days} days"
    )
    for channel in CHANNELS:
        texts[(SegmentKind.REACHABLE.value, channel)] = (
            f"{channel}: address, consent, no newer unsubscribe, not technical"
        )
        texts[(SegmentKind.PREFERRED_CHANNEL.value, channel)] = f"most opens + clicks per delivered on {channel}"
    for cell in c.rfm.cells:
        texts[(SegmentKind.RFM_CELL.value, cell.name)] = (
            f"recency {cell.recency[0]}-{cell.recency[1]}, frequency {cell.frequency[0]}-{cell.frequency[1]}"
        )
    return texts


def rule_of(kind: str, segment: str, texts: dict[tuple[str, str], str], config: SegmentsConfig) -> str:
    """The rule text of one (kind, segment) value."""
    if kind == SegmentKind.RFM:
        return f"RFM scores over the last {config.rfm.window_days} days: {segment}"
    return texts.get((kind, segment), f"{kind}: {segment}")


def memberships(segments: pd.DataFrame, config: SegmentsConfig) -> pd.DataFrame:
    """The long form of `derive_segments`: one (customer_id, kind, segment, rule) row per membership."""
    texts = rule_texts(config)
    ids = segments["customer_id"].to_numpy()
    parts: list[pd.DataFrame] = []

    def add(kind: SegmentKind, mask: np.ndarray, values) -> None:
        if not mask.any():
            return
        chosen = np.asarray(values, dtype=object)[mask] if not isinstance(values, str) else values
        parts.append(pd.DataFrame({"customer_id": ids[mask], "kind": kind.value, "segment": chosen}))

    substate = segments["lifecycle_substate"].to_numpy(object)
    add(SegmentKind.LIFECYCLE, np.ones(len(ids), bool), segments["lifecycle_state"].to_numpy(object))
    add(SegmentKind.LIFECYCLE_SUBSTATE, pd.notna(substate), substate)
    has_rfm = segments["rfm_recency"].notna().to_numpy()
    if has_rfm.any():
        code = (
            "r"
            + segments["rfm_recency"].astype("string")
            + "f"
            + segments["rfm_frequency"].astype("string")
            + "m"
            + segments["rfm_monetary"].astype("string")
        )
        add(SegmentKind.RFM, has_rfm, code.to_numpy(object))
        add(SegmentKind.RFM_CELL, has_rfm, segments["rfm_cell"].to_numpy(object))
    for channel in CHANNELS:
        add(SegmentKind.REACHABLE, segments[f"reachable_{channel}"].to_numpy(bool), channel)
    preferred = segments["preferred_channel"].to_numpy(object)
    add(SegmentKind.PREFERRED_CHANNEL, pd.notna(preferred), preferred)
    add(SegmentKind.RETAIL, segments["retail_active"].to_numpy(bool), "active_base")
    add(SegmentKind.INTERSECTION, segments["is_intersection"].to_numpy(bool), "intersection")
    add(SegmentKind.TECHNICAL, segments["is_technical"].to_numpy(bool), "technical")
    if not parts:
        return pd.DataFrame(columns=list(MEMBERSHIP_COLUMNS))
    long = pd.concat(parts, ignore_index=True)
    long["segment"] = long["segment"].astype(str)
    # One rule per distinct (kind, segment), joined back: never a Python loop over customers.
    pairs = long[["kind", "segment"]].drop_duplicates()
    pairs["rule"] = [rule_of(k, s, texts, config) for k, s in zip(pairs["kind"], pairs["segment"], strict=False)]
    long = long.merge(pairs, on=["kind", "segment"], how="left")
    # Lifecycle states are moved by the rule of their sub-state (rejected has none).
    sub_rules = {s: t for (k, s), t in texts.items() if k == SegmentKind.LIFECYCLE_SUBSTATE.value}
    by_customer = pd.Series(pd.Series(substate, dtype=object).map(sub_rules).to_numpy(), index=ids)
    is_state = (long["kind"] == SegmentKind.LIFECYCLE.value).to_numpy()
    from_sub = by_customer.reindex(long.loc[is_state, "customer_id"].to_numpy()).to_numpy(object)
    long.loc[is_state, "rule"] = np.where(pd.notna(from_sub), from_sub, long.loc[is_state, "rule"].to_numpy(object))
    return long[list(MEMBERSHIP_COLUMNS)]


def diff_memberships(
    current: pd.DataFrame, computed: pd.DataFrame, as_of: date
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Compare the open memberships (`current`, with valid_from) with the day's (`computed`).

    Returns (interval rows to write: new ones and closed ones, `segment_events` rows, the ids of
    customers whose memberships changed).
    """
    key = ["customer_id", "kind", "segment"]
    merged = current[[*key, "valid_from", "rule"]].merge(
        computed[[*key, "rule"]], on=key, how="outer", suffixes=("_old", ""), indicator=True
    )
    entered = merged[merged["_merge"] == "right_only"]
    left = merged[merged["_merge"] == "left_only"]
    day = pd.Timestamp(as_of)
    opened = pd.DataFrame(
        {
            **{k: entered[k].to_numpy() for k in key},
            "valid_from": day,
            "valid_to": pd.NaT,
            "rule": entered["rule"].to_numpy(),
        }
    )
    closed = pd.DataFrame(
        {
            **{k: left[k].to_numpy() for k in key},
            "valid_from": pd.to_datetime(left["valid_from"]).to_numpy(),
            "valid_to": day,
            "rule": left["rule_old"].to_numpy(),
        }
    )
    # A customer who left a value of a kind is moved by the rule of the value entered in the same kind.
    successor = entered.drop_duplicates(["customer_id", "kind"]).set_index(["customer_id", "kind"])["rule"]
    left_rule = successor.reindex(pd.MultiIndex.from_frame(left[["customer_id", "kind"]])).to_numpy(object)
    left_rule = np.where(pd.notna(left_rule), left_rule, "no longer: " + left["rule_old"].astype(str).to_numpy(object))
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    "as_of": day,
                    **{k: entered[k].to_numpy() for k in key},
                    "change": SegmentChange.ENTERED.value,
                    "rule": entered["rule"].to_numpy(),
                }
            ),
            pd.DataFrame(
                {
                    "as_of": day,
                    **{k: left[k].to_numpy() for k in key},
                    "change": SegmentChange.LEFT.value,
                    "rule": left_rule,
                }
            ),
        ],
        ignore_index=True,
    )
    events["rule"] = events["rule"].astype(str).str.slice(0, 160)
    intervals = pd.concat([closed, opened], ignore_index=True)
    intervals["rule"] = intervals["rule"].astype(str).str.slice(0, 160)
    changed = np.unique(events["customer_id"].to_numpy()) if len(events) else np.array([], dtype="int64")
    return intervals, events, changed
