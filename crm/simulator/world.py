"""A seeded, deterministic, vectorised simulation of a consumer lender with a jewellery shop.

The world advances one day at a time; each day is a handful of numpy operations over all
customers (never a loop over customers). It writes the back end's tables into the source
database and the day's export files (app events, provider reports) into the landing zone.
Its state is pickled into the source database, so a later call continues the same world.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine, bindparam, select, update

from crm.core.contracts import (
    APP_EVENTS,
    APPLICATION_STATUSES,
    CHANNELS,
    ENTITIES,
    LOAN_STATUSES,
    MESSAGE_EVENTS,
    PRODUCT_GROUPS,
    ApplicationStatus,
    Channel,
    LoanStatus,
    MessageEventType,
)
from crm.core.db import write_frame
from crm.core.storage import ObjectStore
from crm.ingest import landing_file_key
from crm.simulator.config import FaultConfig, SimulationConfig
from crm.simulator.inbox import read_received
from models import source as src

DEFAULT_START = date(2026, 1, 1)
SECONDS_PER_DAY = 86_400
# Statuses are stored as small integer codes: their position in the contract's lists.
APP_STATUS_NAMES = np.array(APPLICATION_STATUSES, dtype=object)
STARTED, SUBMITTED, APPROVED, REJECTED, ABANDONED, ISSUED, EXPIRED = (
    APPLICATION_STATUSES.index(s)
    for s in (
        ApplicationStatus.STARTED,
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.APPROVED,
        ApplicationStatus.REJECTED,
        ApplicationStatus.ABANDONED,
        ApplicationStatus.ISSUED,
        ApplicationStatus.EXPIRED,
    )
)
LOAN_STATUS_NAMES = np.array(LOAN_STATUSES, dtype=object)
ACTIVE, OVERDUE, REPAID, WRITTEN_OFF = (
    LOAN_STATUSES.index(s) for s in (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.REPAID, LoanStatus.WRITTEN_OFF)
)
ON_TIME, LATE, DEFAULT = range(3)
# A message's reports, in the order they are written, and how many seconds after sending each comes.
REPORT_DELAYS: tuple[tuple[MessageEventType, int], ...] = (
    (MessageEventType.SENT, 0),
    (MessageEventType.DELIVERED, 30),
    (MessageEventType.FAILED, 60),
    (MessageEventType.OPENED, 1800),
    (MessageEventType.CLICKED, 1900),
    (MessageEventType.UNSUBSCRIBED, 2000),
)
UNSUBSCRIBE_DELAY = dict(REPORT_DELAYS)[MessageEventType.UNSUBSCRIBED]


def report_masks(n: int, delivered, opened, clicked, unsubscribed) -> dict[MessageEventType, np.ndarray]:
    """Which of `n` messages get each report: every one is sent; the undelivered ones failed."""
    return {
        MessageEventType.SENT: np.ones(n, bool),
        MessageEventType.DELIVERED: delivered,
        MessageEventType.FAILED: ~delivered,
        MessageEventType.OPENED: opened,
        MessageEventType.CLICKED: clicked,
        MessageEventType.UNSUBSCRIBED: unsubscribed,
    }


LEAD, BORROWER, RETAIL = range(3)
CHANNEL_NAMES = np.array(CHANNELS, dtype=object)
PROVIDERS = {"push": "push-service", "email": "email-service", "sms": "sms-gateway"}


@dataclass
class SimulationSummary:
    """What one call of `simulate` wrote."""

    first_day: date
    last_day: date
    customers_total: int
    rows_written: dict[str, int] = field(default_factory=dict)
    files_written: int = 0
    fault_counts: dict[str, int] = field(default_factory=dict)
    lost_status_loan_ids: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        rows = ", ".join(f"{k} {v:,}" for k, v in self.rows_written.items())
        text = (
            f"simulated {self.first_day}..{self.last_day}: {self.customers_total:,} customers in all; "
            f"rows written: {rows}; files: {self.files_written}"
        )
        if self.fault_counts:
            text += "; faults: " + ", ".join(f"{k} {v:,}" for k, v in self.fault_counts.items())
        if self.lost_status_loan_ids:
            text += f"; loans whose status change never reached the export: {len(self.lost_status_loan_ids):,}"
        return text


class Table:
    """Growable columns of one entity, with a mask of rows changed since the last flush."""

    def __init__(self, **dtypes: str) -> None:
        self.n = 0
        self.cols = {name: np.empty(1024, dtype=dt) for name, dt in dtypes.items()}
        self.dirty = np.zeros(1024, dtype=bool)

    def append(self, **values) -> np.ndarray:
        """Add rows; return their indexes."""
        k = len(next(iter(values.values())))
        if self.n + k > len(self.dirty):
            size = max(len(self.dirty) * 2, self.n + k)
            for name, arr in self.cols.items():
                grown = np.empty(size, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self.cols[name] = grown
            grown = np.zeros(size, dtype=bool)
            grown[: self.n] = self.dirty[: self.n]
            self.dirty = grown
        idx = np.arange(self.n, self.n + k)
        for name, arr in self.cols.items():
            arr[idx] = values[name]
        self.dirty[idx] = True
        self.n += k
        return idx

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name][: self.n]

    def set(self, name: str, idx: np.ndarray, value) -> None:
        self.cols[name][idx] = value
        self.dirty[idx] = True

    def take_dirty(self) -> np.ndarray:
        idx = np.flatnonzero(self.dirty[: self.n])
        self.dirty[:] = False
        return idx


def _ts(day0: np.datetime64, days: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    return day0 + (days.astype("int64") * SECONDS_PER_DAY + seconds).astype("timedelta64[s]")


class World:
    """The whole simulated company: customers, applications, loans, orders, and their clocks."""

    def __init__(self, seed: int, start: date, config: SimulationConfig) -> None:
        self.seed = seed
        self.start = start
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.next_day = 0  # day index relative to start
        self.customers = Table(
            reg_day="i4",
            reg_sec="i4",
            kind="i1",
            shops="?",
            bad_credit="?",
            churned="?",
            last_active="i4",
            app="i8",
            loan="i8",
            n_apps="i4",
            last_repaid="i4",
            rejected="?",
            has_push="?",
            has_email="?",
            has_sms="?",
            ok_push="?",
            ok_email="?",
            ok_sms="?",
        )
        self.apps = Table(
            customer="i8",
            created="M8[s]",
            amount="i8",
            status="i1",
            updated="M8[s]",
            next_day="i4",
            take="?",
            delay="i4",
            null_status="?",
        )
        self.changes = 0
        self.loans = Table(
            customer="i8",
            app="i8",
            issued_day="i4",
            issued="M8[s]",
            principal="i8",
            rate="i8",
            term="i4",
            status="i1",
            closed="M8[s]",
            updated="M8[s]",
            fate="i1",
            late="i4",
            last_interest_day="i4",
            lost="?",
            lost_changed="?",
        )
        self.orders = Table(
            customer="i8",
            ordered="M8[s]",
            amount="i8",
            group="i1",
            online="?",
            status="i1",
            updated="M8[s]",
            return_day="i4",
        )
        self.payments = 0
        self.app_events = 0
        self.message_events = 0
        # Conversions caused by campaign messages, waiting for their day (see `Simulator.react`).
        self.caused = _empty_caused()

    # ------------------------------------------------------------------ persistence
    def dumps(self) -> bytes:
        state = {k: v for k, v in self.__dict__.items() if k not in ("rng", "config")}
        state["rng_state"] = self.rng.bit_generator.state
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, blob: bytes, config: SimulationConfig) -> World:
        state = pickle.loads(blob)
        world = cls.__new__(cls)
        rng_state = state.pop("rng_state")
        world.__dict__.update(state)
        world.config = config
        world.__dict__.setdefault("caused", _empty_caused())  # a world saved before campaigns existed
        world.rng = np.random.default_rng(0)
        world.rng.bit_generator.state = rng_state
        return world


def _empty_caused() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "message_id": pd.Series(dtype=object),
            "customer": pd.Series(dtype="int64"),
            "day": pd.Series(dtype="int64"),
            "deadline": pd.Series(dtype="int64"),
            "apply": pd.Series(dtype=bool),
        }
    )


@dataclass
class DayOutput:
    """Rows created on one day, before they are written."""

    status_changes: list[pd.DataFrame] = field(default_factory=list)
    payments: list[pd.DataFrame] = field(default_factory=list)
    contacts: list[pd.DataFrame] = field(default_factory=list)
    customers: list[pd.DataFrame] = field(default_factory=list)
    reactions: list[pd.DataFrame] = field(default_factory=list)
    conversions: list[pd.DataFrame] = field(default_factory=list)


class Simulator:
    """Runs days of a `World` and writes what happens."""

    def __init__(
        self,
        world: World,
        source: Engine,
        landing: ObjectStore,
        faults: FaultConfig | None,
        inbox: ObjectStore | None = None,
    ) -> None:
        self.inbox = inbox
        self.w = world
        self.c = world.config
        self.rng = world.rng
        self.source = source
        self.landing = landing
        self.faults = faults
        self.pending = DayOutput()
        self.summary_rows: dict[str, int] = {}
        self.fault_counts: dict[str, int] = {}
        self.files = 0
        self.day0 = np.datetime64(world.start.isoformat(), "s")

    def count_fault(self, kind: str, n: int) -> None:
        if n:
            self.fault_counts[kind] = self.fault_counts.get(kind, 0) + int(n)

    # ------------------------------------------------------------------ one day
    def run_day(self, t: int, new_customers: int, malformed: bool) -> None:
        day = self.w.start + timedelta(days=t)
        self.register(t, new_customers)
        app_events = [self.registration_events(t)]
        self.advance_applications(t)
        self.advance_loans(t)
        reactions = self.react(t, day)
        apply_now, buy_now = self.due_conversions(t)
        app_events.append(self.start_applications(t, forced=apply_now))
        self.churn(t)
        self.shop(t, forced=buy_now)
        app_events.append(self.browse(t))
        reminders = self.remind(t)
        parts = [m for m in (reminders, reactions) if len(m)]
        messages = pd.concat(parts, ignore_index=True) if len(parts) > 1 else reminders if len(reminders) else reactions
        self.write_app_events(day, pd.concat(app_events, ignore_index=True), malformed)
        self.write_messages(day, messages)

    def sec(self, n: int) -> np.ndarray:
        # Up to 20 minutes before midnight, so follow-ups "a few minutes later" stay on the same day.
        return self.rng.integers(0, SECONDS_PER_DAY - 1200, n)

    def register(self, t: int, n: int) -> None:
        if n == 0:
            return
        c, r = self.c, self.rng
        first_id = self.w.customers.n + 1
        u = r.random(n)
        kind = np.where(
            u < c.lead_share, LEAD, np.where(u < c.lead_share + c.retail_only_share, RETAIL, BORROWER)
        ).astype("i1")
        shops = (kind == RETAIL) | ((kind == BORROWER) & (r.random(n) < c.borrower_shopper_share))
        has = {ch: r.random(n) < getattr(c, f"share_{ch}") for ch in CHANNELS}
        ok = {ch: has[ch] & (r.random(n) < c.consent_share) for ch in has}
        seconds = self.rng.integers(120, SECONDS_PER_DAY - 3600, n)  # install before, welcome after: same day
        idx = self.w.customers.append(
            reg_day=np.full(n, t),
            reg_sec=seconds,
            kind=kind,
            shops=shops,
            bad_credit=r.random(n) < c.bad_credit_share,
            churned=np.zeros(n, bool),
            last_active=np.full(n, t),
            app=np.full(n, -1),
            loan=np.full(n, -1),
            n_apps=np.zeros(n),
            last_repaid=np.full(n, -1),
            rejected=np.zeros(n, bool),
            has_push=has["push"],
            has_email=has["email"],
            has_sms=has["sms"],
            ok_push=ok["push"],
            ok_email=ok["email"],
            ok_sms=ok["sms"],
        )
        ids = idx + 1
        registered = _ts(self.day0, np.full(n, t), seconds)
        age_days = r.integers(18 * 365, 70 * 365, n)
        birth = (np.datetime64(self.w.start.isoformat(), "D") - age_days.astype("timedelta64[D]")).astype(
            "datetime64[s]"
        )
        self.pending.customers.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "registered_at": registered,
                    "birth_date": birth,
                    "signup_channel": np.where(r.random(n) < c.online_signup_share, "online", "offline").astype(object),
                    "is_technical": r.random(n) < c.technical_share,
                    "updated_at": registered,
                }
            )
        )
        for ch in CHANNELS:
            sel = np.flatnonzero(has[ch])
            cid = ids[sel]
            if not len(cid):  # numpy's string functions fail on empty arrays
                continue
            if ch == Channel.SMS:
                address = np.char.add("+38067", np.char.zfill(cid.astype(str), 7))
            elif ch == Channel.EMAIL:
                address = np.char.add(np.char.add("user", cid.astype(str)), "@example.com")
            else:
                address = np.array([f"{(i * 2654435761) % 2**64:016x}{i:016x}" for i in cid.tolist()], dtype=object)
            self.pending.contacts.append(
                pd.DataFrame(
                    {
                        "customer_id": cid,
                        "channel": ch,
                        "address": address.astype(object),
                        "is_consented": ok[ch][sel],
                        "updated_at": registered[sel],
                    }
                )
            )
        self.w.customers.dirty[:] = False  # customer rows are written from `pending`, not from state
        del first_id

    def registration_events(self, t: int) -> pd.DataFrame:
        cu = self.w.customers
        new = np.flatnonzero(cu["reg_day"] == t)
        app = new[cu["has_push"][new]]
        when = _ts(self.day0, np.full(len(app), t), cu["reg_sec"][app])
        installs = pd.DataFrame(
            {"customer_id": app + 1, "event_type": "app_install", "occurred_at": when - np.timedelta64(60, "s")}
        )
        regs = pd.DataFrame(
            {
                "customer_id": new + 1,
                "event_type": "registration",
                "occurred_at": _ts(self.day0, np.full(len(new), t), cu["reg_sec"][new]),
            }
        )
        frame = pd.concat([installs, regs], ignore_index=True)
        frame["platform"] = np.where(np.isin(frame.customer_id - 1, app), "android", "web")
        return frame

    # ------------------------------------------------------------------ applications
    def change_status(self, t: int, app_idx: np.ndarray, status: int, when: np.ndarray | None = None) -> None:
        if len(app_idx) == 0:
            return
        if when is None:
            when = _ts(self.day0, np.full(len(app_idx), t), self.sec(len(app_idx)))
        self.w.apps.set("status", app_idx, status)
        self.w.apps.set("updated", app_idx, when)
        first = self.w.changes + 1
        self.w.changes += len(app_idx)
        self.pending.status_changes.append(
            pd.DataFrame(
                {
                    "change_id": np.arange(first, first + len(app_idx)),
                    "application_id": app_idx + 1,
                    "status": APP_STATUS_NAMES[status],
                    "changed_at": when,
                }
            )
        )

    def advance_applications(self, t: int) -> None:
        a, c, r = self.w.apps, self.c, self.rng
        due = np.flatnonzero((a["next_day"] == t) & np.isin(a["status"], (SUBMITTED, APPROVED)))
        status = a["status"][due]
        # Submitted yesterday: decided today.
        submitted = due[status == SUBMITTED]
        customers = a["customer"][submitted] - 1
        reject = self.w.customers["bad_credit"][customers] | (r.random(len(submitted)) < c.random_reject_share)
        self.change_status(t, submitted[reject], REJECTED)
        self.release(submitted[reject], rejected=True)
        approved = submitted[~reject]
        self.change_status(t, approved, APPROVED)
        take = r.random(len(approved)) < c.take_share
        delay = r.integers(0, c.approval_valid_days + 1, len(approved))
        a.cols["take"][approved] = take
        a.cols["next_day"][approved] = np.where(take, t + delay, t + c.approval_valid_days)
        # Approved ones reaching their day: issue a loan today, or expire.
        for group in (approved[take & (delay == 0)], due[status == APPROVED]):
            if len(group) == 0:
                continue
            takers = group[a["take"][group]]
            # Issued after the approval: same-day takers a few minutes after it, others later that day.
            when = np.maximum(
                a["updated"][takers] + np.timedelta64(600, "s"),
                _ts(self.day0, np.full(len(takers), t), self.sec(len(takers))),
            )
            self.change_status(t, takers, ISSUED, when)
            self.issue_loans(t, takers)
            expired = group[~a["take"][group]]
            self.change_status(t, expired, EXPIRED)
            self.release(expired)
        # Abandoned: started yesterday and never submitted.
        started = np.flatnonzero((a["next_day"] == t) & (a["status"] == STARTED))
        self.change_status(t, started, ABANDONED)
        self.release(started)

    def release(self, app_idx: np.ndarray, *, rejected: bool = False) -> None:
        customers = self.w.customers
        cust = self.w.apps["customer"][app_idx] - 1
        customers.cols["app"][cust] = -1
        if rejected:
            customers.cols["rejected"][cust] = True

    def start_applications(self, t: int, forced: np.ndarray | None = None) -> pd.DataFrame:
        cu, c, r = self.w.customers, self.c, self.rng
        free = (cu["kind"] == BORROWER) & ~cu["churned"] & (cu["app"] < 0) & (cu["loan"] < 0)
        since_repaid = t - cu["last_repaid"]
        hazard = np.where(
            cu["n_apps"] == 0,
            c.first_apply_hazard,
            np.where(
                cu["last_repaid"] >= 0,
                c.return_apply_hazard * np.exp(-since_repaid / c.return_decay_days),
                c.reapply_after_reject_hazard,
            ),
        )
        who = np.flatnonzero(free & (r.random(cu.n) < hazard))
        if forced is not None and len(forced):
            # Persuaded by a campaign: a lead becomes a borrower, a churned customer comes back.
            cu.cols["kind"][forced] = BORROWER
            cu.cols["churned"][forced] = False
            who = np.union1d(who, forced)
        n = len(who)
        if n == 0:
            return pd.DataFrame(columns=["customer_id", "event_type", "occurred_at", "platform"])
        when = _ts(self.day0, np.full(n, t), self.rng.integers(0, SECONDS_PER_DAY - 600, n))  # submitted the same day
        abandon = r.random(n) < c.abandon_share
        amount = (r.integers(c.principal_min_uah // 100, c.principal_max_uah // 100 + 1, n) * 100 * 100).astype("i8")
        idx = self.w.apps.append(
            customer=who + 1,
            created=when,
            amount=amount,
            status=np.full(n, STARTED),
            updated=when,
            next_day=np.full(n, t + 1),
            take=np.zeros(n, bool),
            delay=np.zeros(n),
            null_status=np.zeros(n, bool),
        )
        cu.cols["app"][who] = idx
        cu.cols["n_apps"][who] += 1
        cu.cols["last_active"][who] = t
        self.changes_for_new(t, idx, when, abandon)
        return pd.DataFrame(
            {
                "customer_id": who + 1,
                "event_type": "application_started",
                "occurred_at": when,
                "platform": np.where(cu["has_push"][who], "android", "web"),
            }
        )

    def changes_for_new(self, t: int, idx: np.ndarray, when: np.ndarray, abandon: np.ndarray) -> None:
        first = self.w.changes + 1
        self.w.changes += len(idx)
        self.pending.status_changes.append(
            pd.DataFrame(
                {
                    "change_id": np.arange(first, first + len(idx)),
                    "application_id": idx + 1,
                    "status": "started",
                    "changed_at": when,
                }
            )
        )
        submit = idx[~abandon]
        submit_when = when[~abandon] + np.timedelta64(300, "s")
        first = self.w.changes + 1
        self.w.changes += len(submit)
        self.pending.status_changes.append(
            pd.DataFrame(
                {
                    "change_id": np.arange(first, first + len(submit)),
                    "application_id": submit + 1,
                    "status": "submitted",
                    "changed_at": submit_when,
                }
            )
        )
        self.w.apps.set("status", submit, SUBMITTED)
        self.w.apps.set("updated", submit, submit_when)

    # ------------------------------------------------------------------ loans
    def issue_loans(self, t: int, app_idx: np.ndarray) -> None:
        n = len(app_idx)
        if n == 0:
            return
        c, r = self.c, self.rng
        customers = self.w.apps["customer"][app_idx]
        when = self.w.apps["updated"][app_idx]
        u = r.random(n)
        fate = np.where(
            u < c.on_time_share, ON_TIME, np.where(u < c.on_time_share + c.late_share, LATE, DEFAULT)
        ).astype("i1")
        lost = r.random(n) < (self.faults.dropped_status_share if self.faults else 0.0)
        idx = self.w.loans.append(
            customer=customers,
            app=app_idx + 1,
            issued_day=np.full(n, t),
            issued=when,
            principal=self.w.apps["amount"][app_idx],
            rate=r.integers(c.daily_rate_bp_min, c.daily_rate_bp_max + 1, n),
            term=r.integers(c.term_days_min, c.term_days_max + 1, n),
            status=np.full(n, ACTIVE),
            closed=np.full(n, np.datetime64("NaT"), dtype="M8[s]"),
            updated=when,
            fate=fate,
            late=r.integers(1, c.late_days_max + 1, n),
            last_interest_day=np.full(n, t),
            lost=lost,
            lost_changed=np.zeros(n, bool),
        )
        self.w.customers.cols["loan"][customers - 1] = idx

    def loan_status(self, t: int, idx: np.ndarray, status: int, *, closed: bool = False) -> np.ndarray:
        when = _ts(self.day0, np.full(len(idx), t), self.sec(len(idx)))
        lo = self.w.loans
        lo.set("status", idx, status)
        if closed:
            lo.set("closed", idx, when)
        lost = lo["lost"][idx]
        lo.cols["updated"][idx[~lost]] = when[~lost]  # the lender's bug: lost loans keep their old updated_at
        lo.cols["lost_changed"][idx[lost]] = True
        return when

    def pay(self, t: int, loan_idx: np.ndarray, kind: str, amount: np.ndarray) -> None:
        if len(loan_idx) == 0:
            return
        lo = self.w.loans
        when = _ts(self.day0, np.full(len(loan_idx), t), self.sec(len(loan_idx)))
        first = self.w.payments + 1
        self.w.payments += len(loan_idx)
        self.pending.payments.append(
            pd.DataFrame(
                {
                    "payment_id": np.arange(first, first + len(loan_idx)),
                    "loan_id": loan_idx + 1,
                    "customer_id": lo["customer"][loan_idx],
                    "paid_at": when,
                    "payment_type": kind,
                    "amount_minor": amount.astype("i8"),
                    "updated_at": when,
                }
            )
        )
        self.w.customers.cols["last_active"][lo["customer"][loan_idx] - 1] = t

    def interest(self, loan_idx: np.ndarray, days: np.ndarray) -> np.ndarray:
        lo = self.w.loans
        return lo["principal"][loan_idx] * lo["rate"][loan_idx] * days // 10_000

    def advance_loans(self, t: int) -> None:
        lo = self.w.loans
        if lo.n == 0:
            return
        open_ = np.isin(lo["status"], (ACTIVE, OVERDUE))
        due_day = lo["issued_day"] + lo["term"]
        # Weekly interest while the loan runs.
        weekly = np.flatnonzero(open_ & (t - lo["last_interest_day"] >= 7) & (t < due_day) & (lo["status"] == ACTIVE))
        self.pay(t, weekly, "interest", self.interest(weekly, np.full(len(weekly), 7)))
        lo.cols["last_interest_day"][weekly] = t
        repay_day = np.where(lo["fate"] == LATE, due_day + lo["late"], due_day)
        closing = np.flatnonzero(open_ & (lo["fate"] != DEFAULT) & (repay_day == t))
        self.pay(t, closing, "interest", self.interest(closing, t - lo["last_interest_day"][closing]))
        self.pay(t, closing, "principal", lo["principal"][closing])
        self.loan_status(t, closing, REPAID, closed=True)
        self.finish(t, closing, repaid=True)
        overdue = np.flatnonzero(open_ & (lo["status"] == ACTIVE) & (lo["fate"] != ON_TIME) & (due_day == t))
        self.loan_status(t, overdue, OVERDUE)
        written = np.flatnonzero(open_ & (lo["fate"] == DEFAULT) & (due_day + self.c.write_off_after_days == t))
        self.loan_status(t, written, WRITTEN_OFF, closed=True)
        self.finish(t, written, repaid=False)

    def finish(self, t: int, loan_idx: np.ndarray, *, repaid: bool) -> None:
        cu = self.w.customers
        cust = self.w.loans["customer"][loan_idx] - 1
        cu.cols["loan"][cust] = -1
        if repaid:
            cu.cols["last_repaid"][cust] = t
        else:
            cu.cols["churned"][cust] = True

    # ------------------------------------------------------------------ churn, retail, app use
    def churn(self, t: int) -> None:
        cu, c = self.w.customers, self.c
        inactive = t - cu["last_active"]
        at_risk = ~cu["churned"] & (cu["loan"] < 0) & (cu["app"] < 0)
        hazard = c.churn_hazard * (1 + inactive / c.churn_growth_days)
        cu.cols["churned"][: cu.n] |= at_risk & (self.rng.random(cu.n) < hazard)

    def shop(self, t: int, forced: np.ndarray | None = None) -> None:
        cu, c, r, o = self.w.customers, self.c, self.rng, self.w.orders
        shoppers = np.flatnonzero(cu["shops"] & ~cu["churned"])
        buyers = shoppers[r.random(len(shoppers)) < c.orders_per_day]
        if forced is not None and len(forced):
            # Persuaded by a campaign: an extra purchase (a churned shopper comes back).
            cu.cols["churned"][forced] = False
            cu.cols["shops"][forced] = True
            buyers = np.concatenate([buyers, forced])
        n = len(buyers)
        if n:
            when = _ts(self.day0, np.full(n, t), self.sec(n))
            amount = (np.exp(r.normal(np.log(c.order_median_uah), 0.6, n)) * 100).astype("i8")
            returns = r.random(n) < c.return_share
            o.append(
                customer=buyers + 1,
                ordered=when,
                amount=amount,
                group=r.integers(0, len(PRODUCT_GROUPS), n),
                online=r.random(n) < 0.4,
                status=np.zeros(n),
                updated=when,
                return_day=np.where(returns, t + r.integers(1, 15, n), -1),
            )
            cu.cols["last_active"][buyers] = t
        if o.n:
            back = np.flatnonzero(o["return_day"] == t)
            o.set("status", back, 1)
            o.set("updated", back, _ts(self.day0, np.full(len(back), t), self.sec(len(back))))

    def browse(self, t: int) -> pd.DataFrame:
        cu, c, r = self.w.customers, self.c, self.rng
        live = ~cu["churned"] & (cu["kind"] != LEAD)
        app_users = np.flatnonzero(live & cu["has_push"])
        opens = app_users[r.random(len(app_users)) < c.app_open_probability]
        logins = app_users[r.random(len(app_users)) < c.app_login_probability]
        web = np.flatnonzero(live & ~cu["has_push"])
        visits = web[r.random(len(web)) < c.web_visit_probability]
        parts = [
            pd.DataFrame(
                {
                    "customer_id": opens + 1,
                    "event_type": "app_open",
                    "platform": np.where(opens % 3 == 0, "ios", "android"),
                }
            ),
            pd.DataFrame(
                {
                    "customer_id": logins + 1,
                    "event_type": "login",
                    "platform": np.where(logins % 3 == 0, "ios", "android"),
                }
            ),
            pd.DataFrame({"customer_id": visits + 1, "event_type": "login", "platform": "web"}),
        ]
        frame = pd.concat(parts, ignore_index=True)
        frame["occurred_at"] = _ts(self.day0, np.full(len(frame), t), self.sec(len(frame)))
        return frame

    # ------------------------------------------------------------------ messages
    def remind(self, t: int) -> pd.DataFrame:
        """Transactional messages (welcome on registration, payment reminder before the due date)
        on the cheapest consented channel, with the providers' delivery and engagement reports."""
        lo, cu, c, r = self.w.loans, self.w.customers, self.c, self.rng
        welcome = np.flatnonzero(cu["reg_day"] == t)
        due = (
            np.flatnonzero((lo["status"] == ACTIVE) & (lo["issued_day"] + lo["term"] - c.reminder_days_before_due == t))
            if lo.n
            else np.array([], dtype=int)
        )
        cust = np.concatenate([welcome, lo["customer"][due] - 1]).astype(np.int64)
        campaign = np.concatenate(
            [np.full(len(welcome), "welcome", dtype=object), np.full(len(due), "payment-reminder", dtype=object)]
        )
        ok = np.stack([cu["ok_push"][cust], cu["ok_email"][cust], cu["ok_sms"][cust]], axis=1)
        reachable = ok.any(axis=1)
        cust, campaign, channel = cust[reachable], campaign[reachable], np.argmax(ok[reachable], axis=1)
        n = len(cust)
        if n == 0:
            return pd.DataFrame()
        send_second = np.where(campaign == "welcome", cu["reg_sec"][cust] + 120, 10 * 3600 + r.integers(0, 3600, n))
        sent_at = _ts(self.day0, np.full(n, t), send_second)
        message_id = np.char.add(f"msg-{t}-", np.arange(n).astype(str)).astype(object)
        delivered = r.random(n) < c.delivered_share
        open_share = np.select([channel == 0, channel == 1], [c.opened_share_push, c.opened_share_email], 0.0)
        opened = delivered & (r.random(n) < open_share)
        clicked = opened & (r.random(n) < c.clicked_share)
        unsub = np.where(channel == 2, delivered, opened & (channel == 1)) & (r.random(n) < c.unsubscribe_share)
        rows = []
        masks = report_masks(n, delivered, opened, clicked, unsub)
        for event, delay in REPORT_DELAYS:
            sel = np.flatnonzero(masks[event])
            rows.append(
                pd.DataFrame(
                    {
                        "message_id": message_id[sel],
                        "customer_id": cust[sel] + 1,
                        "channel": CHANNEL_NAMES[channel[sel]],
                        "event_type": event.value,
                        "occurred_at": sent_at[sel] + np.timedelta64(delay, "s"),
                        "campaign_id": campaign[sel],
                    }
                )
            )
        self.unsubscribe(cust, channel, sent_at + np.timedelta64(UNSUBSCRIBE_DELAY, "s"), unsub)
        frame = pd.concat(rows, ignore_index=True)
        frame["provider"] = frame["channel"].map(PROVIDERS)
        return frame

    def unsubscribe(self, cust: np.ndarray, channel: np.ndarray, when: np.ndarray, mask: np.ndarray) -> None:
        """Withdraw consent on the message's channel; the back end records it (contact row, no address change)."""
        if not mask.any():
            return
        cu = self.w.customers
        sel = np.flatnonzero(mask)
        for ch_code, ch in enumerate(CHANNEL_NAMES):
            on_channel = sel[channel[sel] == ch_code]
            if len(on_channel) == 0:
                continue
            who = cust[on_channel]
            cu.cols[f"ok_{ch}"][who] = False
            # Unchanged address: filled in from the stored contact row when flushed.
            self.pending.contacts.append(
                pd.DataFrame(
                    {
                        "customer_id": who + 1,
                        "channel": ch,
                        "address": None,
                        "is_consented": False,
                        "updated_at": when[on_channel],
                    }
                )
            )

    # ------------------------------------------------------------------ campaign messages: the world reacts
    def react(self, t: int, day: date) -> pd.DataFrame:
        """Customers react to the campaign messages providers received for the day before: delivery reports,
        engagement, unsubscribes, and conversions caused on the following days (the configured true effect)."""
        if self.inbox is None or t == 0:
            return pd.DataFrame()
        cu, c, r = self.w.customers, self.c, self.rng
        received = read_received(self.inbox, day - timedelta(days=1))
        received = received[(received["customer_id"] >= 1) & (received["customer_id"] <= cu.n)]
        received = received[received["channel"].isin(CHANNELS)].reset_index(drop=True)
        n = len(received)
        if n == 0:
            return pd.DataFrame()
        cust = received["customer_id"].to_numpy(np.int64) - 1
        channel = np.array([CHANNELS.index(ch) for ch in received["channel"]], dtype=np.int64)
        segment = np.where(cu["kind"][cust] == LEAD, "lead", np.where(cu["churned"][cust], "churned", "active")).astype(
            object
        )
        p = np.zeros((n, 5))
        keys = pd.DataFrame({"campaign": received["campaign_id"], "channel": received["channel"], "segment": segment})
        for (campaign, ch, seg), rows in keys.groupby(["campaign", "channel", "segment"], sort=True).indices.items():
            rule = c.reaction_for(campaign, ch, seg)
            p[rows] = (rule.delivered, rule.opened, rule.clicked, rule.unsubscribed, rule.conversion_uplift)
        u = r.random((n, 5))
        delivered = u[:, 0] < p[:, 0]
        opened = delivered & (u[:, 1] < p[:, 1])
        # SMS has no opens: its clicks are on the link, among the delivered.
        clicked = np.where(channel == CHANNELS.index(Channel.SMS), delivered, opened) & (u[:, 2] < p[:, 2])
        unsub = delivered & (u[:, 3] < p[:, 3])
        converts = delivered & (u[:, 4] < p[:, 4])
        after = r.integers(1, c.effect_days + 1, n)
        sent_at = _ts(self.day0, np.full(n, t), r.integers(9 * 3600, 12 * 3600, n))
        rows = []
        masks = report_masks(n, delivered, opened, clicked, unsub)
        for event, delay in REPORT_DELAYS:
            sel = np.flatnonzero(masks[event])
            rows.append(
                pd.DataFrame(
                    {
                        "message_id": received["message_id"].to_numpy(object)[sel],
                        "customer_id": cust[sel] + 1,
                        "channel": CHANNEL_NAMES[channel[sel]],
                        "event_type": event.value,
                        "occurred_at": sent_at[sel] + np.timedelta64(delay, "s"),
                        "campaign_id": received["campaign_id"].to_numpy(object)[sel],
                    }
                )
            )
        self.unsubscribe(cust, channel, sent_at + np.timedelta64(UNSUBSCRIBE_DELAY, "s"), unsub)
        sel = np.flatnonzero(converts)
        if len(sel):
            caused = pd.DataFrame(
                {
                    "message_id": received["message_id"].to_numpy(object)[sel],
                    "customer": cust[sel],
                    "day": t + after[sel],
                    "deadline": np.full(len(sel), t + c.effect_days),
                    "apply": cu["kind"][cust[sel]] != RETAIL,
                }
            )
            self.w.caused = pd.concat([self.w.caused, caused], ignore_index=True)
        start = np.datetime64(self.w.start.isoformat(), "D")
        conversion_on = np.where(
            converts, (start + (t + after).astype("timedelta64[D]")).astype("datetime64[s]"), np.datetime64("NaT")
        )
        self.pending.reactions.append(
            pd.DataFrame(
                {
                    "message_id": received["message_id"].to_numpy(object),
                    "customer_id": cust + 1,
                    "campaign_id": received["campaign_id"].to_numpy(object),
                    "channel": received["channel"].to_numpy(object),
                    "segment": segment,
                    "sent_on": pd.Timestamp(day - timedelta(days=1)),
                    "reacted_on": pd.Timestamp(day),
                    "delivered": delivered,
                    "opened": opened,
                    "clicked": clicked,
                    "unsubscribed": unsub,
                    "conversion_on": conversion_on,
                }
            )
        )
        frame = pd.concat(rows, ignore_index=True)
        frame["provider"] = frame["channel"].map(PROVIDERS)
        return frame

    def due_conversions(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Customers whose caused conversion falls today: (to apply, to buy). A customer busy with an application
        or a loan tries again the next day, until the effect window closes (then it is absorbed)."""
        caused = self.w.caused
        empty = np.array([], dtype=np.int64)
        if caused.empty:
            return empty, empty
        today = caused["day"].to_numpy() == t
        if not today.any():
            return empty, empty
        due = caused[today]
        cu = self.w.customers
        cust = due["customer"].to_numpy(np.int64)
        free = (cu["app"][cust] < 0) & (cu["loan"][cust] < 0)
        first = ~pd.Series(cust).duplicated().to_numpy()  # one conversion per customer a day
        go = first & (free | ~due["apply"].to_numpy(bool))
        done = due[go]
        later = due[~go].assign(day=lambda f: f["day"] + 1)
        absorbed = later[later["day"] > later["deadline"]]
        self.w.caused = pd.concat([caused[~today], later[later["day"] <= later["deadline"]]], ignore_index=True)
        start = np.datetime64(self.w.start.isoformat(), "D")
        self.pending.conversions.append(
            pd.DataFrame(
                {
                    "message_id": pd.concat([done["message_id"], absorbed["message_id"]], ignore_index=True),
                    "converted": [True] * len(done) + [False] * len(absorbed),
                    "converted_on": [pd.Timestamp(start + np.timedelta64(t, "D"))] * len(done) + [None] * len(absorbed),
                }
            )
        )
        apply = done["apply"].to_numpy(bool)
        return done["customer"].to_numpy(np.int64)[apply], done["customer"].to_numpy(np.int64)[~apply]

    # ------------------------------------------------------------------ files
    def inject_file_faults(self, frame: pd.DataFrame, time_column: str) -> pd.DataFrame:
        f = self.faults
        if f is None or f.rate <= 0 or frame.empty:
            return frame
        frame = frame.astype({"customer_id": object, time_column: object}).copy()
        n = len(frame)
        picks = self.rng.permutation(n)
        k = max(1, round(n * f.rate)) if n >= 20 else 0
        slots = [picks[i * k : (i + 1) * k] for i in range(5)]
        if f.nulls:
            frame.loc[frame.index[slots[0]], "customer_id"] = None
            self.count_fault("file_nulls", len(slots[0]))
        if f.wrong_types:
            frame.loc[frame.index[slots[1]], "customer_id"] = "abc"
            frame.loc[frame.index[slots[2]], time_column] = "not-a-date"
            self.count_fault("file_wrong_types", len(slots[1]) + len(slots[2]))
        if f.future_dates:
            future = pd.to_datetime(frame.loc[frame.index[slots[3]], time_column]) + pd.Timedelta(days=365)
            frame.loc[frame.index[slots[3]], time_column] = future.dt.strftime("%Y-%m-%dT%H:%M:%S")
            self.count_fault("file_future_dates", len(slots[3]))
        if f.unknown_customers:
            frame.loc[frame.index[slots[4]], "customer_id"] = 10**12 + np.arange(len(slots[4]))
            self.count_fault("file_unknown_customers", len(slots[4]))
        if f.duplicates and k:
            frame = pd.concat([frame, frame.iloc[picks[-k:]]], ignore_index=True)
            self.count_fault("file_duplicates", k)
        return frame

    def write_app_events(self, day: date, frame: pd.DataFrame, malformed: bool) -> None:
        t = (day - self.w.start).days
        frame = frame.sort_values(["occurred_at", "customer_id"], kind="stable", ignore_index=True)
        first = self.w.app_events
        self.w.app_events += len(frame)
        frame.insert(0, "event_id", [f"ae-{t}-{i}" for i in range(first, first + len(frame))])
        frame["occurred_at"] = pd.to_datetime(frame["occurred_at"]).dt.strftime("%Y-%m-%dT%H:%M:%S")
        frame = self.inject_file_faults(frame[APP_EVENTS.column_names], "occurred_at")
        key = landing_file_key(APP_EVENTS, "app_events", day)
        if malformed:
            self.landing.write_bytes(key, b"\x00\x01PK\x03\x04 this is not a CSV export\n")
            self.count_fault("malformed_files", 1)
        else:
            self.landing.write_bytes(key, frame.to_csv(index=False).encode())
        self.files += 1
        self.summary_rows["app_events (file)"] = self.summary_rows.get("app_events (file)", 0) + len(frame)

    def write_messages(self, day: date, frame: pd.DataFrame) -> None:
        t = (day - self.w.start).days
        for channel, provider in PROVIDERS.items():
            part = (
                frame[frame["channel"] == channel] if len(frame) else pd.DataFrame(columns=MESSAGE_EVENTS.column_names)
            )
            part = (
                part.sort_values(["occurred_at", "message_id"], kind="stable", ignore_index=True) if len(part) else part
            )
            first = self.w.message_events
            self.w.message_events += len(part)
            part = part.assign(event_id=[f"me-{t}-{i}" for i in range(first, first + len(part))])
            if len(part):
                part["occurred_at"] = pd.to_datetime(part["occurred_at"]).dt.strftime("%Y-%m-%dT%H:%M:%S")
            part = self.inject_file_faults(part[MESSAGE_EVENTS.column_names], "occurred_at")
            buffer = io.StringIO()
            for record in part.to_dict("records"):
                buffer.write(json.dumps(record, default=str) + "\n")
            self.landing.write_bytes(landing_file_key(MESSAGE_EVENTS, provider, day), buffer.getvalue().encode())
            self.files += 1
            self.summary_rows["message_events (file)"] = self.summary_rows.get("message_events (file)", 0) + len(part)

    # ------------------------------------------------------------------ database
    def flush(self) -> None:
        """Write what changed since the last flush into the source database."""
        w, p = self.w, self.pending
        frames: dict[str, pd.DataFrame] = {}
        if p.customers:
            frames["customers"] = pd.concat(p.customers, ignore_index=True)
        if p.contacts:
            contacts = pd.concat(p.contacts, ignore_index=True)
            frames["customer_contacts"] = contacts
        idx = w.apps.take_dirty()
        if len(idx):
            status = APP_STATUS_NAMES[w.apps["status"][idx]].astype(object)
            status[w.apps["null_status"][idx]] = None
            frames["loan_applications"] = pd.DataFrame(
                {
                    "application_id": idx + 1,
                    "customer_id": w.apps["customer"][idx],
                    "created_at": w.apps["created"][idx],
                    "requested_amount_minor": w.apps["amount"][idx],
                    "status": status,
                    "updated_at": w.apps["updated"][idx],
                }
            )
        if p.status_changes:
            frames["application_status_changes"] = pd.concat(p.status_changes, ignore_index=True)
        idx = w.loans.take_dirty()
        if len(idx):
            lo = w.loans
            due = (
                np.datetime64(w.start.isoformat(), "D")
                + (lo["issued_day"][idx] + lo["term"][idx]).astype("timedelta64[D]")
            ).astype("M8[s]")
            frames["loans"] = pd.DataFrame(
                {
                    "loan_id": idx + 1,
                    "application_id": lo["app"][idx],
                    "customer_id": lo["customer"][idx],
                    "issued_at": lo["issued"][idx],
                    "principal_minor": lo["principal"][idx],
                    "daily_rate_bp": lo["rate"][idx],
                    "term_days": lo["term"][idx],
                    "due_on": due,
                    "status": LOAN_STATUS_NAMES[lo["status"][idx]].astype(object),
                    "closed_at": lo["closed"][idx],
                    "updated_at": lo["updated"][idx],
                }
            )
        if p.payments:
            frames["payments"] = pd.concat(p.payments, ignore_index=True)
        idx = w.orders.take_dirty()
        if len(idx):
            o = w.orders
            frames["orders"] = pd.DataFrame(
                {
                    "order_id": idx + 1,
                    "customer_id": o["customer"][idx],
                    "ordered_at": o["ordered"][idx],
                    "amount_minor": o["amount"][idx],
                    "product_group": np.array(PRODUCT_GROUPS, dtype=object)[o["group"][idx]],
                    "sales_channel": np.where(o["online"][idx], "online", "store").astype(object),
                    "status": np.where(o["status"][idx] == 1, "returned", "completed").astype(object),
                    "updated_at": o["updated"][idx],
                }
            )
        self.inject_db_faults(frames)
        reactions, conversions = p.reactions, p.conversions
        self.pending = DayOutput()
        with self.source.begin() as conn:
            self.write_reactions(conn, reactions, conversions)
            if "customer_contacts" in frames:
                frames["customer_contacts"] = self.fill_addresses(conn, frames["customer_contacts"])
            for name in src.tables:
                frame = frames.get(name)
                if frame is None or frame.empty:
                    continue
                immutable = ENTITIES[name].immutable
                write_frame(conn, src.tables[name], frame, on_conflict="ignore" if immutable else "update")
                self.summary_rows[name] = self.summary_rows.get(name, 0) + len(frame)

    def write_reactions(self, conn, reactions: list[pd.DataFrame], conversions: list[pd.DataFrame]) -> None:
        """The ground truth of campaign reactions, and the caused conversions that happened (or were absorbed)."""
        if reactions:
            frame = pd.concat(reactions, ignore_index=True)
            write_frame(conn, src.simulated_reactions, frame, on_conflict="ignore")
            self.summary_rows["simulated_reactions"] = self.summary_rows.get("simulated_reactions", 0) + len(frame)
        done = [f for f in conversions if len(f)]
        if done:
            frame = pd.concat(done, ignore_index=True)
            table = src.simulated_reactions
            stmt = (
                update(table)
                .where(table.c.message_id == bindparam("b_id"))
                .values(converted=bindparam("b_converted"), converted_on=bindparam("b_on"))
            )
            conn.execute(
                stmt,
                [
                    {
                        "b_id": m,
                        "b_converted": bool(ok),
                        "b_on": None if on is None or pd.isna(on) else pd.Timestamp(on).date(),
                    }
                    for m, ok, on in zip(frame["message_id"], frame["converted"], frame["converted_on"], strict=True)
                ],
            )

    def fill_addresses(self, conn, contacts: pd.DataFrame) -> pd.DataFrame:
        """Consent changes carry no address: take it from the stored (or same-batch) contact row."""
        missing = contacts["address"].isna()
        if not missing.any():
            return contacts.drop_duplicates(["customer_id", "channel"], keep="last")
        known = contacts[~missing].drop_duplicates(["customer_id", "channel"], keep="first")
        need = contacts.loc[missing, ["customer_id", "channel"]].drop_duplicates()
        table = src.tables["customer_contacts"]
        stored = pd.DataFrame(
            conn.execute(
                select(table.c.customer_id, table.c.channel, table.c.address).where(
                    table.c.customer_id.in_(need["customer_id"].astype(int).tolist())
                )
            ).all(),
            columns=["customer_id", "channel", "address"],
        )
        lookup = pd.concat([known[["customer_id", "channel", "address"]], stored]).drop_duplicates(
            ["customer_id", "channel"], keep="first"
        )
        filled = contacts.merge(lookup, on=["customer_id", "channel"], how="left", suffixes=("", "_known"))
        filled["address"] = filled["address"].fillna(filled.pop("address_known"))
        return filled.drop_duplicates(["customer_id", "channel"], keep="last").reset_index(drop=True)

    def inject_db_faults(self, frames: dict[str, pd.DataFrame]) -> None:
        f, r = self.faults, self.rng
        if f is None or f.rate <= 0:
            return

        def pick(frame: pd.DataFrame) -> np.ndarray:
            k = int(np.ceil(len(frame) * f.rate))
            return np.sort(r.choice(len(frame), size=k, replace=False)) if k else np.array([], dtype=int)

        if f.negative_amounts and "payments" in frames:
            sel = pick(frames["payments"])
            frames["payments"].loc[sel, "amount_minor"] *= -1
            self.count_fault("db_negative_amounts", len(sel))
        if f.future_dates and "payments" in frames:
            sel = pick(frames["payments"])
            frames["payments"].loc[sel, "paid_at"] += np.timedelta64(365, "D")
            self.count_fault("db_future_dates", len(sel))
        if f.unknown_customers and "orders" in frames:
            sel = pick(frames["orders"])
            frames["orders"].loc[sel, "customer_id"] = 10**12 + sel
            self.count_fault("db_unknown_customers", len(sel))
        if f.nulls and "loan_applications" in frames:
            sel = pick(frames["loan_applications"])
            frames["loan_applications"].loc[sel, "status"] = None
            self.count_fault("db_null_statuses", len(sel))


def _load_world(source: Engine, seed: int, start: date | None, config: SimulationConfig) -> World:
    src.metadata.create_all(source)
    with source.connect() as conn:
        row = conn.execute(select(src.simulator_state)).first()
    if row is None:
        return World(seed, start or DEFAULT_START, config)
    return World.loads(row.state_blob, config)


def simulate(
    source: Engine,
    landing: ObjectStore,
    *,
    customers: int = 1000,
    days: int = 30,
    seed: int = 42,
    start: date | None = None,
    faults: FaultConfig | None = None,
    config: SimulationConfig | None = None,
    inbox: ObjectStore | None = None,
) -> SimulationSummary:
    """Advance the simulated company by `days`, registering `customers` new customers evenly over them.

    A first call starts a world at `start` (default 2026-01-01) with `seed`; later calls on the
    same source database continue it (their seed and start are ignored). Same calls, same bytes.
    With `inbox` (where providers' received lists are: the file export's folder, or a local
    provider's), customers react on each day to the campaign messages received for the day before.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    config = config or SimulationConfig()
    world = _load_world(source, seed, start, config)
    sim = Simulator(world, source, landing, faults, inbox)
    first = world.next_day
    per_day = np.full(days, customers // days)
    per_day[: customers % days] += 1
    malformed_day = first + days - 1 if faults and faults.malformed_file else None
    for offset in range(days):
        t = first + offset
        sim.run_day(t, int(per_day[offset]), malformed=t == malformed_day)
        if (offset + 1) % config.flush_every_days == 0:
            sim.flush()
    sim.flush()
    world.next_day = first + days
    with source.begin() as conn:
        conn.execute(src.simulator_state.delete())
        conn.execute(
            src.simulator_state.insert().values(
                state_id=1,
                last_day=world.start + timedelta(days=world.next_day - 1),
                seed=world.seed,
                config_json=config.model_dump_json(),
                state_blob=world.dumps(),
            )
        )
    lost = np.flatnonzero(world.loans["lost_changed"]) + 1 if world.loans.n else np.array([], dtype=int)
    return SimulationSummary(
        first_day=world.start + timedelta(days=first),
        last_day=world.start + timedelta(days=world.next_day - 1),
        customers_total=world.customers.n,
        rows_written=sim.summary_rows,
        files_written=sim.files,
        fault_counts=sim.fault_counts,
        lost_status_loan_ids=lost.tolist(),
    )
