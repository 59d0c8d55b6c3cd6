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


def _is_count(name: str) -> bool:
    """Counts and sums are 0 for a customer without rows; recencies, gaps and shares stay unknown (NaN)."""
    return (
        name.startswith(("n_", "interest_paid", "unsubscribed_", "has_open_loan"))
        or "_amount_" in name
        or name.endswith("_recent")
        or name == "activity_trend"
    )


# ----------------------------------------------------------------------------- per-customer aggregates
# The features are computed in two steps: per-customer aggregates of each data kind (counts per
# window, sums, first and last times, ...), then the features from those aggregates. The
# aggregates are declared once here (`measures`) and evaluated either in SQL in the warehouse
# (`queries.kind_aggregates`: one GROUP BY per kind, the path of training and scoring) or in
# pandas over row frames (`aggregate_frames`: hand-built frames in tests); the features
# themselves (`features_from_aggregates`) are one function for both.


@dataclass(frozen=True)
class Measure:
    """One aggregate per customer over the rows of a kind known at the end of the day.

    `how` is count, sum, min or max; `value` a column or a derived value (`late_days`,
    `tier_rank`); `within` keeps rows dated after `ref - within` days; `when` names the row
    conditions: "column=value", "column in a|b", or a derived one (`early`, `late_known`,
    `closed_known`).
    """

    name: str
    how: str
    value: str | None = None
    within: int | None = None
    when: tuple[str, ...] = ()


def activity_windows(config: ChurnConfig) -> list[int]:
    """Windows counted for every activity kind: the feature windows and the trend's two periods."""
    t = config.features.trend_days
    return sorted(set(config.features.windows_days) | {t, 2 * t})


def short_windows(config: ChurnConfig) -> list[int]:
    """Windows of the app events (at most 90 days)."""
    windows = config.features.windows_days
    return [w for w in windows if w <= 90] or windows[:1]


def measures(config: ChurnConfig) -> dict[str, list[Measure]]:
    """The aggregates each data kind (but customers) needs, per customer."""
    windows = config.features.windows_days
    e = config.eligibility

    def dated(kind: str, amount: str | None = None) -> list[Measure]:
        time = TIME_COLUMNS[kind]
        out = [Measure(f"n_{w}", "count", within=w) for w in activity_windows(config)]
        if amount:
            out += [Measure(f"amount_{w}", "sum", amount, within=w) for w in windows]
        return [*out, Measure("n_total", "count"), Measure("first_at", "min", time), Measure("last_at", "max", time)]

    def status(*values: str) -> str:
        return "status in " + "|".join(values)

    return {
        "loans": [
            *dated("loans", "principal_minor"),
            Measure("n_open", "count", when=(status(*OPEN_LOAN),)),
            Measure("n_overdue", "count", when=(status(str(LoanStatus.OVERDUE)),)),
            Measure("n_written_off", "count", when=(status(str(LoanStatus.WRITTEN_OFF)),)),
            Measure("n_repaid", "count", when=(status(str(LoanStatus.REPAID)),)),
            Measure("last_repaid_at", "max", "closed_at", when=(status(str(LoanStatus.REPAID)), "closed_known")),
            Measure("late_max", "max", "late_days", when=("late_known",)),
            Measure("late_sum", "sum", "late_days", when=("late_known",)),
            Measure("late_n", "count", when=("late_known",)),
            Measure("n_early", "count", when=("early",)),
        ],
        "payments": [
            Measure("interest_total", "sum", "amount_minor", when=(f"payment_type={PaymentType.INTEREST}",)),
            Measure(
                "interest_longest",
                "sum",
                "amount_minor",
                within=windows[-1],
                when=(f"payment_type={PaymentType.INTEREST}",),
            ),
            Measure("n_90", "count", within=90),
        ],
        "loan_applications": [
            *dated("loan_applications"),
            Measure("n_rejected", "count", when=("status=rejected",)),
            Measure("n_abandoned", "count", when=("status=abandoned",)),
        ],
        "orders": [
            *dated("orders", "amount_minor"),
            Measure("n_returned", "count", when=(f"status={OrderStatus.RETURNED}",)),
            Measure("amount_total", "sum", "amount_minor"),
            Measure(
                "n_completed_active", "count", within=e.retail_active_days, when=(f"status={OrderStatus.COMPLETED}",)
            ),
        ],
        "app_events": [
            *[Measure(f"n_{w}", "count", within=w) for w in short_windows(config)],
            Measure("last_at", "max", "occurred_at"),
        ],
        "message_events": [
            m
            for ch in CHANNELS
            for m in (
                *[
                    Measure(
                        f"{event}_{ch}",
                        "count",
                        within=config.features.engagement_days,
                        when=(f"channel={ch}", f"event_type={event}"),
                    )
                    for event in ("delivered", "opened", "clicked")
                ],
                Measure(f"unsubscribed_{ch}", "count", when=(f"channel={ch}", "event_type=unsubscribed")),
            )
        ],
        "loyalty": [Measure("tier_rank", "max", "tier_rank")],
    }


def split_condition(condition: str) -> tuple[str, list[str]]:
    """("column", [values]) of "column=value" or "column in a|b"."""
    if " in " in condition:
        column, values = condition.split(" in ", 1)
        return column, values.split("|")
    column, value = condition.split("=", 1)
    return column, [value]


def _late_days(frame: pd.DataFrame, ref: pd.Timestamp) -> pd.Series:
    """Days a loan was (repaid) or is (open, at the end of the day) past its due date, 0 if not late; NaN otherwise."""
    status = frame["status"].astype(str)
    due = pd.to_datetime(frame["due_on"])
    closed = pd.to_datetime(frame["closed_at"])
    late = np.where(
        status == str(LoanStatus.REPAID),
        (closed.dt.normalize() - due) / pd.Timedelta(days=1),
        np.where(status.isin(OPEN_LOAN), (ref.normalize() - pd.Timedelta(days=1) - due) / pd.Timedelta(days=1), np.nan),
    )
    return pd.Series(late, index=frame.index).clip(lower=0)


def _frame_condition(frame: pd.DataFrame, condition: str, ref: pd.Timestamp) -> pd.Series:
    if condition == "late_known":
        status = frame["status"].astype(str)
        repaid = (status == str(LoanStatus.REPAID)) & pd.to_datetime(frame["closed_at"]).notna()
        return repaid | status.isin(OPEN_LOAN)
    if condition == "closed_known":
        return pd.to_datetime(frame["closed_at"]) < ref
    if condition == "early":
        repaid = frame["status"].astype(str) == str(LoanStatus.REPAID)
        return repaid & (pd.to_datetime(frame["closed_at"]).dt.normalize() < pd.to_datetime(frame["due_on"]))
    column, values = split_condition(condition)
    return frame[column].astype(str).isin(values)


def aggregate_frames(frames: Frames, as_of: date, config: ChurnConfig) -> dict[str, pd.DataFrame]:
    """The `measures` of each kind from row frames (pandas; the warehouse computes the same in SQL)."""
    ref = pd.Timestamp(end_of(as_of))
    frames = frames.known_by(ref)
    out = {}
    for kind, kind_measures in measures(config).items():
        frame = frames[kind]
        if not len(frame):
            continue
        ids = frame["customer_id"].astype("int64").to_numpy()
        time = TIME_COLUMNS.get(kind)
        at = pd.to_datetime(frame[time]) if time else None
        derived = {"late_days": _late_days(frame, ref)} if kind == "loans" else {}
        if kind == "loyalty":
            rank = {name: i + 1 for i, name in enumerate(config.features.loyalty_tiers)}
            derived["tier_rank"] = frame["tier"].map(rank).astype(float)
        block = pd.DataFrame(index=pd.Index(np.unique(ids), name="customer_id"))
        for m in kind_measures:
            keep = pd.Series(True, index=frame.index)
            if m.within is not None:
                keep &= at > ref - pd.Timedelta(days=m.within)
            for condition in m.when:
                keep &= _frame_condition(frame, condition, ref)
            if m.how == "count":
                block[m.name] = keep.astype(np.int64).groupby(ids).sum().astype(float)
            else:
                value = derived[m.value] if m.value in derived else frame[m.value]
                if m.how == "sum":
                    block[m.name] = value.astype(float).where(keep, 0).groupby(ids).sum()
                else:
                    block[m.name] = getattr(value.where(keep).groupby(ids), m.how)()
        out[kind] = block
    return out


def compute_features(frames: Frames, as_of: date, config: ChurnConfig) -> pd.DataFrame:
    """Features and eligibility of every (non-technical) customer in `frames` (rows), known at the end of `as_of`.

    The warehouse path (`io.read_features`) computes the same aggregates in SQL; this one is for row frames.
    """
    ref = pd.Timestamp(end_of(as_of))
    customers = frames.known_by(ref)["customers"]
    return features_from_aggregates(customers, aggregate_frames(frames, as_of, config), as_of, config)


def features_from_aggregates(
    customers: pd.DataFrame, aggregates: dict[str, pd.DataFrame], as_of: date, config: ChurnConfig
) -> pd.DataFrame:
    """Features and eligibility of every (non-technical) customer from the per-customer aggregates of each kind.

    Index: customer_id. Columns: `is_eligible` and the features of `feature_names(config)`
    (float32; counts are 0 and recencies NaN where a customer has no rows of a kind).
    """
    ref = pd.Timestamp(end_of(as_of))
    windows = config.features.windows_days
    customers = customers[~customers["is_technical"].astype(bool)] if len(customers) else customers
    index = pd.Index(customers["customer_id"].astype("int64").to_numpy(), name="customer_id")
    out = pd.DataFrame(index=index)
    out["tenure_days"] = _days(ref, customers["registered_at"]).to_numpy() if len(customers) else []
    out["is_online_signup"] = (customers["signup_channel"] == "online").astype(float).to_numpy()

    def agg(kind: str) -> pd.DataFrame:
        frame = aggregates.get(kind)
        if frame is None:
            frame = pd.DataFrame({m.name: pd.Series(dtype=float) for m in measures(config)[kind]})
            frame.index = pd.Index([], dtype="int64", name="customer_id")
        return frame

    def since(times: pd.Series) -> pd.Series:
        return _days(ref, times)

    def ratio(num: pd.Series, den: pd.Series) -> pd.Series:
        return (num.astype(float) / den.astype(float)).where(den > 0)

    def dated(b: pd.DataFrame, a: pd.DataFrame, name: str, amount: bool = False, ws=windows) -> None:
        for w in ws:
            b[f"n_{name}_{w}d"] = a[f"n_{w}"]
            if amount:
                b[f"{name}_amount_{w}d"] = a[f"amount_{w}"]

    def gaps(b: pd.DataFrame, a: pd.DataFrame, name: str) -> None:
        count = a["n_total"].astype(float)
        b[f"n_{name}_total"] = count
        b[f"days_since_last_{name}"] = since(a["last_at"])
        span = (pd.to_datetime(a["last_at"]) - pd.to_datetime(a["first_at"])) / pd.Timedelta(days=1)
        b[f"mean_gap_{name}_days"] = (span / (count - 1)).where(count > 1)

    parts: dict[str, pd.DataFrame] = {}
    a = agg("loans")
    b = pd.DataFrame(index=a.index)
    dated(b, a, "loans", amount=True)
    gaps(b, a, "loans")
    b["has_open_loan"] = (a["n_open"] > 0).astype(float)
    b["n_overdue_loans"] = a["n_overdue"]
    b["n_written_off_loans"] = a["n_written_off"]
    b["n_repaid_loans"] = a["n_repaid"]
    b["days_since_last_repayment"] = since(a["last_repaid_at"])
    b["max_days_late"] = a["late_max"].astype(float)
    b["mean_days_late"] = ratio(a["late_sum"], a["late_n"])
    b["early_repayment_share"] = ratio(a["n_early"], a["n_repaid"])
    parts["loans"] = b

    a = agg("payments")
    b = pd.DataFrame(index=a.index)
    b["interest_paid_total"] = a["interest_total"]
    b[f"interest_paid_{windows[-1]}d"] = a["interest_longest"]
    b["n_payments_90d"] = a["n_90"]
    parts["payments"] = b

    a = agg("loan_applications")
    b = pd.DataFrame(index=a.index)
    dated(b, a, "applications")
    gaps(b, a, "applications")
    b["n_rejected_applications"] = a["n_rejected"]
    b["n_abandoned_applications"] = a["n_abandoned"]
    parts["loan_applications"] = b

    a = agg("orders")
    b = pd.DataFrame(index=a.index)
    dated(b, a, "orders", amount=True)
    gaps(b, a, "orders")
    b["n_returned_orders"] = a["n_returned"]
    b["mean_order_amount"] = ratio(a["amount_total"], a["n_total"])
    parts["orders"] = b

    a = agg("app_events")
    b = pd.DataFrame(index=a.index)
    dated(b, a, "app_events", ws=short_windows(config))
    b["days_since_last_app_event"] = since(a["last_at"])
    parts["app_events"] = b

    a = agg("message_events")
    b = pd.DataFrame(index=a.index)
    for ch in CHANNELS:
        for event in ("delivered", "opened", "clicked"):
            b[f"{event}_{ch}_recent"] = a[f"{event}_{ch}"]
        b[f"unsubscribed_{ch}"] = (a[f"unsubscribed_{ch}"] > 0).astype(float)
    parts["message_events"] = b

    a = agg("loyalty")
    b = pd.DataFrame(index=a.index)
    b["loyalty_tier_rank"] = a["tier_rank"].astype(float)
    parts["loyalty"] = b

    # Any counted activity (loans, applications, orders): recency (the baseline's one feature), windows and trend.
    kinds = [agg(kind) for kind, _ in ACTIVITY_SOURCES.values()]
    ids = pd.Index(np.unique(np.concatenate([k.index.to_numpy(dtype=np.int64) for k in kinds])), name="customer_id")
    b = pd.DataFrame(index=ids)
    if len(ids):
        aligned = [k.reindex(ids) for k in kinds]

        def total(column: str) -> pd.Series:
            return sum(k[column].astype(float).fillna(0) for k in aligned)

        for w in windows:
            b[f"n_activity_{w}d"] = total(f"n_{w}")
        last = pd.concat([pd.to_datetime(k["last_at"]) for k in aligned], axis=1).max(axis=1)
        b[RECENCY_FEATURE] = since(last)
        t = config.features.trend_days
        b["activity_trend"] = 2 * total(f"n_{t}") - total(f"n_{2 * t}")
    parts["activity"] = b

    feature_kind = feature_kinds(config)
    names = feature_names(config)
    for kind, b in parts.items():
        expected = [n for n in names if feature_kind[n] == kind]
        b = b.reindex(index=out.index, columns=expected)
        counts = [c for c in expected if _is_count(c)]
        b[counts] = b[counts].astype(float).fillna(0)
        out = out.join(b)

    out["is_eligible"] = (
        eligible_from_aggregates(aggregates, as_of, config).reindex(out.index, fill_value=False).to_numpy()
    )
    return out.astype({c: "float32" for c in out.columns if c != "is_eligible"})


def eligible_from_aggregates(aggregates: dict[str, pd.DataFrame], as_of: date, config: ChurnConfig) -> pd.Series:
    """Customers scored on `as_of` (True per customer_id): borrowers holding a loan, active repeat, active retail."""
    e = config.eligibility
    ref = pd.Timestamp(end_of(as_of))
    chosen: list[np.ndarray] = []
    loans = aggregates.get("loans")
    if loans is not None and len(loans):
        if e.borrowers_with_open_loan:
            chosen.append(loans.index[loans["n_open"] > 0].to_numpy())
        if e.active_repeat:
            age = _days(ref, loans["last_repaid_at"])
            chosen.append(loans.index[(age >= 0) & (age <= e.pre_churn_days)].to_numpy())
    orders = aggregates.get("orders")
    if e.retail and orders is not None and len(orders):
        chosen.append(orders.index[orders["n_completed_active"] > 0].to_numpy())
    ids = np.unique(np.concatenate(chosen)).astype(np.int64) if chosen else np.array([], dtype=np.int64)
    return pd.Series(True, index=pd.Index(ids, name="customer_id"), dtype=bool)


def eligible(frames: Frames, as_of: date, config: ChurnConfig) -> pd.Series:
    """Customers scored on `as_of` (True per customer_id), from row frames."""
    return eligible_from_aggregates(aggregate_frames(frames, as_of, config), as_of, config)


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
    return labels_from_returning(back, customer_ids)


def labels_from_returning(returned: np.ndarray, customer_ids: pd.Index) -> pd.Series:
    """1 = churned for the customers not among those who `returned` within the horizon (0 otherwise)."""
    return pd.Series((~customer_ids.isin(returned)).astype(np.int8), index=customer_ids, name="churned")
