"""Churn features, eligibility and labels: pure, vectorised pandas over one chunk of customers.

One function (`compute_features`) builds the features for training and for scoring, from the
rows as they stood at the end of `as_of` (read through the warehouse history), so the two
cannot drift apart. Every data kind may be missing (a retail chain has no loans, no app or
message events): its features are then empty and training leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from crm.churn.config import ActivityKind, ChurnConfig
from crm.core.contracts import CHANNELS, LoanStatus, OrderStatus, PaymentType
from crm.core.dates import end_of

# Columns read per data kind (the frames `compute_features` expects; any may be empty).
FRAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "registered_at", "signup_channel", "is_technical"),
    "loans": ("customer_id", "issued_at", "principal_minor", "due_on", "status", "closed_at"),
    "payments": ("customer_id", "paid_at", "payment_type", "amount_minor"),
    "loan_applications": ("customer_id", "created_at", "status"),
    "orders": ("customer_id", "ordered_at", "amount_minor", "status"),
    "app_events": ("customer_id", "occurred_at"),
    "message_events": ("customer_id", "channel", "event_type", "occurred_at"),
    "loyalty": ("customer_id", "tier"),
}
DATA_KINDS: tuple[str, ...] = tuple(FRAME_COLUMNS)
# The activity that ends a churn spell, and the time column that dates it.
ACTIVITY_SOURCES: dict[ActivityKind, tuple[str, str]] = {
    ActivityKind.LOAN: ("loans", "issued_at"),
    ActivityKind.APPLICATION: ("loan_applications", "created_at"),
    ActivityKind.PURCHASE: ("orders", "ordered_at"),
}
RECENCY_FEATURE = "days_since_last_activity"
# The business time of each dated kind.
TIME_COLUMNS = {
    "customers": "registered_at",
    "loans": "issued_at",
    "payments": "paid_at",
    "loan_applications": "created_at",
    "orders": "ordered_at",
    "app_events": "occurred_at",
    "message_events": "occurred_at",
}
OPEN_LOAN = (str(LoanStatus.ACTIVE), str(LoanStatus.OVERDUE))


@dataclass
class Frames:
    """The rows of one chunk of customers as they stood at the end of a day, per data kind."""

    by_kind: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> pd.DataFrame:
        frame = self.by_kind.get(kind)
        if frame is None:
            return empty_frame(kind)
        return frame

    def known_by(self, end: pd.Timestamp) -> Frames:
        """Only rows dated before `end` (the reader gives no others; a guard for hand-built frames)."""
        out = {}
        for kind, frame in self.by_kind.items():
            column = TIME_COLUMNS.get(kind)
            if frame is not None and column and len(frame):
                frame = frame[pd.to_datetime(frame[column]) < end]
            out[kind] = frame
        return Frames(out)

    def present(self) -> set[str]:
        """Data kinds with at least one row."""
        return {k for k, f in self.by_kind.items() if f is not None and len(f)}


def empty_frame(kind: str) -> pd.DataFrame:
    """An empty frame of a data kind with its columns."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in FRAME_COLUMNS[kind]})


def _days(ref: pd.Timestamp, times: pd.Series) -> pd.Series:
    return (ref - pd.to_datetime(times)) / pd.Timedelta(days=1)


def _by_customer(values: pd.Series, ids: pd.Series, how: str) -> pd.Series:
    return getattr(values.groupby(ids.to_numpy()), how)()


def _window_features(
    out: pd.DataFrame, ids: pd.Series, age: pd.Series, windows: list[int], name: str, amount: pd.Series | None = None
) -> None:
    """n_<name>_<w>d (and <name>_amount_<w>d) for each window, into `out` (0 when none)."""
    for w in windows:
        inside = (age >= 0) & (age < w)
        out[f"n_{name}_{w}d"] = _by_customer(inside.astype(np.int64), ids, "sum")
        if amount is not None:
            out[f"{name}_amount_{w}d"] = _by_customer(amount.where(inside, 0).astype(float), ids, "sum")


def _gap_features(out: pd.DataFrame, ids: pd.Series, age: pd.Series, name: str) -> None:
    """Count, recency and mean gap between events (days) of one kind."""
    grouped = age.groupby(ids.to_numpy())
    count, newest, oldest = grouped.count(), grouped.min(), grouped.max()
    out[f"n_{name}_total"] = count
    out[f"days_since_last_{name}"] = newest
    out[f"mean_gap_{name}_days"] = ((oldest - newest) / (count - 1)).where(count > 1)


def _is_count(name: str) -> bool:
    """Counts and sums are 0 for a customer without rows; recencies, gaps and shares stay unknown (NaN)."""
    return (
        name.startswith(("n_", "interest_paid", "unsubscribed_", "has_open_loan"))
        or "_amount_" in name
        or name.endswith("_recent")
        or name == "activity_trend"
    )


def compute_features(frames: Frames, as_of: date, config: ChurnConfig) -> pd.DataFrame:
    """Features and eligibility of every (non-technical) customer in `frames`, known at the end of `as_of`.

    Index: customer_id. Columns: `is_eligible` and the features of `feature_names(config)`
    (float; counts are 0 and recencies NaN where a customer has no rows of a kind).
    """
    ref = pd.Timestamp(end_of(as_of))
    frames = frames.known_by(ref)
    windows = config.features.windows_days
    customers = frames["customers"]
    customers = customers[~customers["is_technical"].astype(bool)] if len(customers) else customers
    index = pd.Index(customers["customer_id"].astype("int64").to_numpy(), name="customer_id")
    out = pd.DataFrame(index=index)
    out["tenure_days"] = _days(ref, customers["registered_at"]).to_numpy() if len(customers) else []
    out["is_online_signup"] = (customers["signup_channel"] == "online").astype(float).to_numpy()

    parts: dict[str, pd.Series] = {}

    def put(name: str, values: pd.Series) -> None:
        parts[name] = values

    def block(ids: pd.Series | None = None) -> pd.DataFrame:
        values = np.unique(ids.to_numpy()) if ids is not None else np.array([], dtype=np.int64)
        return pd.DataFrame(index=pd.Index(values, dtype="int64"))

    # Loans: frequency, amounts, gaps, behaviour (days late, early repayment, open and overdue loans).
    loans = frames["loans"]
    b = block()
    if len(loans):
        ids = loans["customer_id"].astype("int64")
        b = block(ids)
        age = _days(ref, loans["issued_at"])
        _window_features(b, ids, age, windows, "loans", loans["principal_minor"].astype(float))
        _gap_features(b, ids, age, "loans")
        status = loans["status"].astype(str)
        due = pd.to_datetime(loans["due_on"])
        closed = pd.to_datetime(loans["closed_at"])
        repaid = status == str(LoanStatus.REPAID)
        b["has_open_loan"] = _by_customer(status.isin(OPEN_LOAN).astype(float), ids, "max")
        b["n_overdue_loans"] = _by_customer((status == str(LoanStatus.OVERDUE)).astype(np.int64), ids, "sum")
        b["n_written_off_loans"] = _by_customer((status == str(LoanStatus.WRITTEN_OFF)).astype(np.int64), ids, "sum")
        b["n_repaid_loans"] = _by_customer(repaid.astype(np.int64), ids, "sum")
        b["days_since_last_repayment"] = _by_customer(_days(ref, closed.where(repaid)), ids, "min")
        late = np.where(
            repaid,
            (closed.dt.normalize() - due) / pd.Timedelta(days=1),
            np.where(
                status.isin(OPEN_LOAN), (ref.normalize() - pd.Timedelta(days=1) - due) / pd.Timedelta(days=1), np.nan
            ),
        )
        late = pd.Series(late, index=loans.index).clip(lower=0)
        b["max_days_late"] = _by_customer(late, ids, "max")
        b["mean_days_late"] = _by_customer(late, ids, "mean")
        early = (repaid & (closed.dt.normalize() < due)).astype(float)
        b["early_repayment_share"] = _by_customer(early.where(repaid), ids, "mean")
    put("loans", b)

    payments = frames["payments"]
    b = block()
    if len(payments):
        ids = payments["customer_id"].astype("int64")
        b = block(ids)
        age = _days(ref, payments["paid_at"])
        interest = (payments["payment_type"].astype(str) == str(PaymentType.INTEREST)) & (age >= 0)
        amount = payments["amount_minor"].astype(float)
        b["interest_paid_total"] = _by_customer(amount.where(interest, 0), ids, "sum")
        longest = windows[-1]
        b[f"interest_paid_{longest}d"] = _by_customer(amount.where(interest & (age < longest), 0), ids, "sum")
        b["n_payments_90d"] = _by_customer(((age >= 0) & (age < 90)).astype(np.int64), ids, "sum")
    put("payments", b)

    apps = frames["loan_applications"]
    b = block()
    if len(apps):
        ids = apps["customer_id"].astype("int64")
        b = block(ids)
        age = _days(ref, apps["created_at"])
        _window_features(b, ids, age, windows, "applications")
        _gap_features(b, ids, age, "applications")
        status = apps["status"].astype(str)
        b["n_rejected_applications"] = _by_customer((status == "rejected").astype(np.int64), ids, "sum")
        b["n_abandoned_applications"] = _by_customer((status == "abandoned").astype(np.int64), ids, "sum")
    put("loan_applications", b)

    orders = frames["orders"]
    b = block()
    if len(orders):
        ids = orders["customer_id"].astype("int64")
        b = block(ids)
        age = _days(ref, orders["ordered_at"])
        amount = orders["amount_minor"].astype(float)
        _window_features(b, ids, age, windows, "orders", amount)
        _gap_features(b, ids, age, "orders")
        returned = orders["status"].astype(str) == str(OrderStatus.RETURNED)
        b["n_returned_orders"] = _by_customer(returned.astype(np.int64), ids, "sum")
        b["mean_order_amount"] = _by_customer(amount, ids, "mean")
    put("orders", b)

    events = frames["app_events"]
    b = block()
    if len(events):
        ids = events["customer_id"].astype("int64")
        b = block(ids)
        age = _days(ref, events["occurred_at"])
        _window_features(b, ids, age, [w for w in windows if w <= 90] or windows[:1], "app_events")
        b["days_since_last_app_event"] = _by_customer(age, ids, "min")
    put("app_events", b)

    messages = frames["message_events"]
    b = block()
    if len(messages):
        ids = messages["customer_id"].astype("int64")
        b = block(ids)
        age = _days(ref, messages["occurred_at"])
        recent = (age >= 0) & (age < config.features.engagement_days)
        kind = messages["event_type"].astype(str)
        channel = messages["channel"].astype(str)
        for ch in CHANNELS:
            on = channel == ch
            for event in ("delivered", "opened", "clicked"):
                b[f"{event}_{ch}_recent"] = _by_customer((on & recent & (kind == event)).astype(np.int64), ids, "sum")
            b[f"unsubscribed_{ch}"] = _by_customer((on & (kind == "unsubscribed")).astype(float), ids, "max")
    put("message_events", b)

    loyalty = frames["loyalty"]
    b = block()
    if len(loyalty):
        rank = {name: i + 1 for i, name in enumerate(config.features.loyalty_tiers)}
        ids = loyalty["customer_id"].astype("int64")
        b = block(ids)
        b["loyalty_tier_rank"] = _by_customer(loyalty["tier"].map(rank).astype(float), ids, "max")
    put("loyalty", b)

    # Any counted activity: recency (the baseline's one feature), windows and trend.
    times = [
        frames[kind][["customer_id", column]].rename(columns={column: "at"})
        for kind, column in ACTIVITY_SOURCES.values()
        if len(frames[kind])
    ]
    b = block()
    if times:
        activity = pd.concat(times, ignore_index=True)
        ids = activity["customer_id"].astype("int64")
        b = block(ids)
        age = _days(ref, activity["at"])
        _window_features(b, ids, age, windows, "activity")
        b[RECENCY_FEATURE] = _by_customer(age.where(age >= 0), ids, "min")
        t = config.features.trend_days
        last = ((age >= 0) & (age < t)).astype(np.int64)
        before = ((age >= t) & (age < 2 * t)).astype(np.int64)
        b["activity_trend"] = _by_customer(last - before, ids, "sum")
    put("activity", b)

    kinds = feature_kinds(config)
    for kind, b in parts.items():
        expected = [n for n in feature_names(config) if kinds[n] == kind]
        b = b.reindex(index=out.index, columns=expected)
        counts = [c for c in expected if _is_count(c)]
        b[counts] = b[counts].fillna(0)
        out = out.join(b)

    out["is_eligible"] = eligible(frames, as_of, config).reindex(out.index, fill_value=False).to_numpy()
    return out.astype({c: "float32" for c in out.columns if c != "is_eligible"})


def feature_kinds(config: ChurnConfig) -> dict[str, str]:
    """Every feature and the data kind it comes from ("customers", "loans", ..., "activity")."""
    windows = config.features.windows_days
    short = [w for w in windows if w <= 90] or windows[:1]
    kinds: dict[str, str] = {"tenure_days": "customers", "is_online_signup": "customers"}

    def add(kind: str, names: list[str]) -> None:
        kinds.update(dict.fromkeys(names, kind))

    def windowed(name: str, ws: list[int], amount: bool = False) -> list[str]:
        out = []
        for w in ws:
            out.append(f"n_{name}_{w}d")
            if amount:
                out.append(f"{name}_amount_{w}d")
        return out

    def gaps(name: str) -> list[str]:
        return [f"n_{name}_total", f"days_since_last_{name}", f"mean_gap_{name}_days"]

    add(
        "loans",
        windowed("loans", windows, True)
        + gaps("loans")
        + [
            "has_open_loan",
            "n_overdue_loans",
            "n_written_off_loans",
            "n_repaid_loans",
            "days_since_last_repayment",
            "max_days_late",
            "mean_days_late",
            "early_repayment_share",
        ],
    )
    add("payments", ["interest_paid_total", f"interest_paid_{windows[-1]}d", "n_payments_90d"])
    add(
        "loan_applications",
        windowed("applications", windows)
        + gaps("applications")
        + ["n_rejected_applications", "n_abandoned_applications"],
    )
    add("orders", windowed("orders", windows, True) + gaps("orders") + ["n_returned_orders", "mean_order_amount"])
    add("app_events", [*windowed("app_events", short), "days_since_last_app_event"])
    add(
        "message_events",
        [f"{e}_{ch}_recent" for ch in CHANNELS for e in ("delivered", "opened", "clicked")]
        + [f"unsubscribed_{ch}" for ch in CHANNELS],
    )
    add("loyalty", ["loyalty_tier_rank"])
    add("activity", [*windowed("activity", windows), RECENCY_FEATURE, "activity_trend"])
    return kinds


def feature_names(config: ChurnConfig) -> list[str]:
    """Every feature `compute_features` returns, in a stable order."""
    return list(feature_kinds(config))


def features_for_kinds(config: ChurnConfig, kinds: set[str]) -> list[str]:
    """The features a company with these data kinds has ("activity" needs loans, applications or orders)."""
    present = set(kinds) | {"customers"}
    if present & {"loans", "loan_applications", "orders"}:
        present.add("activity")
    return [name for name, kind in feature_kinds(config).items() if kind in present]


def eligible(frames: Frames, as_of: date, config: ChurnConfig) -> pd.Series:
    """Customers scored on `as_of` (True per customer_id): borrowers holding a loan, active repeat, active retail."""
    e = config.eligibility
    ref = pd.Timestamp(end_of(as_of))
    chosen: list[pd.Index] = []
    loans = frames["loans"]
    if len(loans):
        status = loans["status"].astype(str)
        ids = loans["customer_id"].astype("int64")
        if e.borrowers_with_open_loan:
            chosen.append(pd.Index(ids[status.isin(OPEN_LOAN)].unique()))
        if e.active_repeat:
            repaid_age = _days(ref, loans["closed_at"]).where(status == str(LoanStatus.REPAID))
            chosen.append(pd.Index(ids[(repaid_age >= 0) & (repaid_age <= e.pre_churn_days)].unique()))
    orders = frames["orders"]
    if e.retail and len(orders):
        age = _days(ref, orders["ordered_at"])
        completed = orders["status"].astype(str) == str(OrderStatus.COMPLETED)
        chosen.append(
            pd.Index(
                orders["customer_id"].astype("int64")[completed & (age >= 0) & (age < e.retail_active_days)].unique()
            )
        )
    ids = chosen[0].append(chosen[1:]).unique() if chosen else pd.Index([], dtype="int64")
    return pd.Series(True, index=ids, dtype=bool)


def compute_labels(activity: Frames, snapshot: date, config: ChurnConfig, customer_ids: pd.Index) -> pd.Series:
    """1 = churned: no counted activity in the `horizon_days` after the end of `snapshot` (0 otherwise)."""
    start = pd.Timestamp(end_of(snapshot))
    stop = pd.Timestamp(end_of(snapshot + timedelta(days=config.horizon_days)))
    came_back: list[np.ndarray] = []
    for kind in config.activity_kinds:
        frame_kind, column = ACTIVITY_SOURCES[kind]
        frame = activity[frame_kind]
        if len(frame):
            at = pd.to_datetime(frame[column])
            came_back.append(frame["customer_id"].astype("int64")[(at >= start) & (at < stop)].to_numpy())
    back = np.unique(np.concatenate(came_back)) if came_back else np.array([], dtype=np.int64)
    return pd.Series((~customer_ids.isin(back)).astype(np.int8), index=customer_ids, name="churned")


def label_known_by(snapshot: date, config: ChurnConfig) -> date:
    """The first day whose data knows the label of `snapshot`."""
    return snapshot + timedelta(days=config.horizon_days)
