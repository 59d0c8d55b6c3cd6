"""Loyalty's IO: post a business day into the ledger (one transaction), tiers, events, invariants.

The source rows come from the warehouse (`source`), the ledger lives in `ledger` (the warehouse
itself, or a scratch database for a what-if). Reads decide from the ledger as it stood before
the day; writes only add rows with deterministic keys (`ON CONFLICT DO NOTHING`), so posting a
day twice leaves every ledger table byte-for-byte as it was.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Column, Connection, Engine, String, Table, select, update

from crm.core.contracts import OrderStatus
from crm.core.db import id_chunks, read_frame, temporary_table, with_sqlite_hint, write_frame
from crm.core.errors import OperatorError
from crm.loyalty import queries as q
from crm.loyalty.config import LoyaltyConfig
from crm.loyalty.invariants import InvariantCheck, LedgerInvariantViolated, check_invariants
from crm.loyalty.ledger import LOT_COLUMNS, allocate_fifo, post_day
from crm.loyalty.plan import day_events, qualifying_window, select_day_inputs, tier_changes
from crm.loyalty.rules import (
    ENTRY_COLUMNS,
    EntryKind,
    SourceKind,
    birthday_in,
    days_after,
    entry_id,
    entry_ids,
    qualifying_ids,
)
from models.loyalty import (
    loyalty_allocations,
    loyalty_events,
    loyalty_ledger,
    loyalty_qualifying,
    loyalty_runs,
    loyalty_tiers,
    promotion_decisions,
)

LEDGER_TABLES = (
    loyalty_ledger,
    loyalty_allocations,
    loyalty_qualifying,
    loyalty_tiers,
    loyalty_events,
    promotion_decisions,
    loyalty_runs,
)
# Members posted at a time (a first run: ~3 purchases and ~2 interest payments a member a year), and
# whose whole ledger the invariant check reads at a time (~6 entries a member a year: ~0.3 M rows).
CHUNK_MEMBERS = 50_000
_INTS = ("customer_id", "amount_minor", "order_id", "payment_id", "remaining_minor", "qualifying_minor")


@dataclass
class DayResult:
    """What posting a day did."""

    as_of: date
    entries_added: int = 0
    entries_of_day: int = 0
    allocations_added: int = 0
    members_touched: int = 0
    joined: int = 0
    tier_changes: int = 0
    events: int = 0
    decisions: int = 0
    tiers_written: bool = True
    violations: list[str] = field(default_factory=list)
    amounts: dict[str, int] = field(default_factory=dict)


def _temp(conn: Connection, column: str, sql_type, values) -> Table:
    """A temporary one-column table holding `values` (for set-based joins)."""
    table = temporary_table(conn, f"_loyalty_{column}", Column(column, sql_type, primary_key=True))
    frame = pd.DataFrame({column: pd.Series(list(values)).drop_duplicates()})
    if len(frame):
        write_frame(conn, table, frame, on_conflict="error")
    return table


def _read(conn: Connection, stmt) -> pd.DataFrame:
    frame = read_frame(conn, with_sqlite_hint(conn, stmt))
    for c in frame.columns:
        if c in _INTS and len(frame):
            frame[c] = frame[c].astype("int64")
    return frame


def _ids(conn: Connection, ids: pd.Series) -> Table:
    return _temp(conn, "entry_id", String(32), ids)


def check_members(
    conn: Connection,
    customer_ids,
    chunk_members: int = CHUNK_MEMBERS,
    limit: int = 5,
    check: InvariantCheck | None = None,
) -> list[str]:
    """The invariants of these members' whole ledger, read and checked `chunk_members` members at a time
    (added to `check` when given: members in increasing order across calls)."""
    check = check if check is not None else InvariantCheck(limit)
    for ids in id_chunks(customer_ids, chunk_members):
        chunk = _temp(conn, "customer_id", BigInteger(), ids)
        e_stmt, a_stmt = q.touched_entries(chunk)
        check.add(_read(conn, e_stmt), _read(conn, a_stmt))
        chunk.drop(conn)
    return check.lines()


def post_loyalty_day(
    source: Engine,
    ledger: Engine,
    day: date,
    config: LoyaltyConfig,
    chunk_members: int = CHUNK_MEMBERS,
) -> DayResult:
    """Post one business day: ledger entries, allocations, status account, tiers, events, decisions; check the
    invariants of every member with an entry of the day.

    Every step concerns one member at a time, so the members the day concerns are posted
    `chunk_members` at a time (ranges of customer ids, in order) in the one transaction: a first run
    that posts a year at once holds one chunk's frames, not the population's. A night touches fewer
    members than a chunk and runs as one.
    """
    if chunk_members < 1:
        raise ValueError(f"chunk_members must be at least 1, not {chunk_members}")
    result = DayResult(day)
    check = InvariantCheck()
    with source.connect() as src, ledger.begin() as led:
        prev = led.execute(q.previous_run(day)).scalar()
        newest = led.execute(q.last_run()).scalar()
        result.tiers_written = newest is None or day >= newest
        day_rows = _DayRows(
            orders=_read(src, q.candidates("orders", day, prev, _ORDER_COLUMNS)),
            payments=_read(src, q.candidates("payments", day, prev, _PAYMENT_COLUMNS)),
            customers=_read(src, q.candidates("customers", day, prev, _CUSTOMER_COLUMNS)),
            celebrating=_read(src, q.birthdays(day, birthday_in(day, config.leap_birthday_on))),
            technical=_read(src, q.technical_customers(day))["customer_id"],
            downgraded=_read(src, q.downgraded(day, config.downgrade_days))["customer_id"],
            left=_read(src, q.left_downgrade(day, config.downgrade_days))["customer_id"],
            # Qualifying activity leaving the window today, and every lot due by the day.
            falling=_read(led, q.posted_on(qualifying_window(day, config)[0] - timedelta(days=1)))["customer_id"],
            due=_read(led, q.lots_before(day, due_after=prev)),
        )
        for lo, hi in _id_ranges(day_rows.customer_ids(), chunk_members):
            _post_members(led, day, config, day_rows.between(lo, hi), (lo, hi), result, check, launch=prev is None)
        result.violations = check.lines()

        run = {
            "as_of": day,
            "rules_hash": config.rules_hash(),
            "entries_added": result.entries_added,
            "entries_of_day": result.entries_of_day,
            "members_touched": result.members_touched,
            "tier_changes": result.tier_changes,
        }
        write_frame(led, loyalty_runs, pd.DataFrame([run]), on_conflict="update")
    return result


_ORDER_COLUMNS = ("order_id", "customer_id", "amount_minor", "product_group", "sales_channel", "status")
_PAYMENT_COLUMNS = ("payment_id", "customer_id", "amount_minor", "payment_type")
_CUSTOMER_COLUMNS = ("customer_id", "signup_channel", "registered_at")


@dataclass
class _DayRows:
    """The day's candidate source rows and the population-wide facts, all of them or one range of members'."""

    orders: pd.DataFrame
    payments: pd.DataFrame
    customers: pd.DataFrame
    celebrating: pd.DataFrame
    technical: pd.Series
    downgraded: pd.Series
    left: pd.Series
    falling: pd.Series
    due: pd.DataFrame

    def customer_ids(self) -> pd.Series:
        """Every member the day may concern (the technical accounts only mark others)."""
        frames = (self.orders, self.payments, self.customers, self.celebrating, self.due)
        series = [f["customer_id"] for f in frames if len(f)] + [self.downgraded, self.left, self.falling]
        return pd.concat([s.astype("int64") for s in series if len(s)] or [pd.Series(dtype="int64")])

    def between(self, lo: int | None, hi: int | None) -> _DayRows:
        """The rows of members lo <= customer_id < hi (None: unbounded)."""
        if lo is None and hi is None:
            return self

        def keep(frame):
            if not len(frame):
                return frame
            ids = (frame["customer_id"] if isinstance(frame, pd.DataFrame) else frame).astype("int64").to_numpy()
            mask = np.ones(len(ids), dtype=bool)
            if lo is not None:
                mask &= ids >= lo
            if hi is not None:
                mask &= ids < hi
            return frame[mask]

        return _DayRows(**{name: keep(value) for name, value in vars(self).items()})


def _id_ranges(customer_ids: pd.Series, size: int) -> list[tuple[int | None, int | None]]:
    """Half-open ranges [lo, hi) of customer ids covering every id, with at most `size` of `customer_ids` each."""
    cuts = [int(chunk[0]) for chunk in id_chunks(customer_ids, size)[1:]]
    bounds = [None, *cuts, None]
    return list(itertools.pairwise(bounds))


def _post_members(
    led: Connection,
    day: date,
    config: LoyaltyConfig,
    rows: _DayRows,
    span: tuple[int | None, int | None],
    result: DayResult,
    check: InvariantCheck,
    launch: bool = False,
) -> None:
    """Post the day for the members in `rows` (a range of customer ids): add what it did to `result`, check them.

    `launch`: no run before the day (the programme's first): customers registered before it are enrolled."""
    orders, payments, customers, celebrating = rows.orders, rows.payments, rows.customers, rows.celebrating
    technical, downgraded, left = set(rows.technical.tolist()), set(rows.downgraded.tolist()), set(rows.left.tolist())

    # The ledger rows that concern the candidates, as they stood before the day.
    okeys = orders["order_id"].astype(str)
    pkeys = payments["payment_id"].astype(str)
    qids = pd.concat(
        [
            qualifying_ids(SourceKind.ORDER, okeys),
            qualifying_ids(SourceKind.ORDER_RETURN, okeys),
            qualifying_ids(SourceKind.INTEREST_PAYMENT, pkeys),
        ]
    )
    known_q = _read(led, q.qualifying_by_id(_ids(led, qids), day))
    del qids
    returned = orders[orders["status"] == OrderStatus.RETURNED.value]["order_id"].astype(str)
    eids = pd.concat(
        [
            entry_ids(EntryKind.ACCRUAL, SourceKind.ORDER, returned),
            entry_ids(EntryKind.REDEMPTION, SourceKind.ORDER, returned),
            entry_ids(EntryKind.ACCRUAL, SourceKind.ORDER_PROMOTION, returned),
            entry_ids(EntryKind.ACCRUAL, SourceKind.BIRTHDAY, celebrating["customer_id"].astype(str) + f":{day.year}"),
            entry_ids(EntryKind.REDEMPTION, SourceKind.REPAYMENT, pkeys)
            if config.repayment_redemption_limit_bp
            else pd.Series(dtype=object),
        ]
    )
    known = _read(led, q.entries_by_id(_ids(led, eids), day))
    if len(known):
        reversed_ids = entry_ids(EntryKind.REVERSAL, SourceKind.ENTRY, known["entry_id"])
        known = pd.concat([known, _read(led, q.entries_by_id(_ids(led, reversed_ids), day))], ignore_index=True)
    people = pd.concat(
        [orders["customer_id"], payments["customer_id"], customers["customer_id"], celebrating["customer_id"]]
    )
    people_table = _temp(led, "customer_id", BigInteger(), people)
    tiers_start = _read(led, q.tiers_valid_on(day - timedelta(days=1), people_table))
    tiers = tiers_start.set_index("customer_id")["tier"] if len(tiers_start) else pd.Series(dtype=object)
    paying = payments["customer_id"] if config.repayment_redemption_limit_bp else pd.Series(dtype="int64")
    debtors = _temp(led, "customer_id", BigInteger(), pd.concat([orders["customer_id"], paying]))
    lots = pd.concat([_read(led, q.lots_before(day, debtors)), rows.due], ignore_index=True)
    lots = lots.drop_duplicates("entry_id") if len(lots) else pd.DataFrame(columns=LOT_COLUMNS)
    lots = lots[lots["remaining_minor"] > 0] if len(lots) else lots

    inputs = select_day_inputs(
        day,
        config,
        orders=orders,
        payments=payments,
        customers=customers,
        birthdays=celebrating,
        known_entries=known,
        known_qualifying=known_q,
        members=set(tiers.index),
        technical=technical,
        tiers=tiers,
        lots=lots,
        launch=launch,
    )
    del known, known_q, lots
    posting = post_day(day, inputs, config)
    entries = posting.entries

    result.entries_added += write_frame(led, loyalty_ledger, entries, on_conflict="ignore")
    result.allocations_added += write_frame(led, loyalty_allocations, posting.allocations, on_conflict="ignore")
    write_frame(led, loyalty_qualifying, posting.qualifying, on_conflict="ignore")
    result.decisions += write_frame(led, promotion_decisions, posting.decisions, on_conflict="ignore")
    result.entries_of_day += len(entries)
    for kind, amount in entries.groupby("kind")["amount_minor"].sum().items() if len(entries) else ():
        result.amounts[str(kind)] = result.amounts.get(str(kind), 0) + int(amount)

    # Tiers of every member whose window, downgrade or membership moved today.
    first, last = qualifying_window(day, config)
    joiners = inputs.joiners["customer_id"]
    look = pd.Index(
        sorted(
            set(posting.qualifying["customer_id"].tolist())
            | set(rows.falling.tolist())
            | downgraded
            | left
            | set(joiners.tolist())
        )
    ).difference(pd.Index(list(technical)) if not config.include_internal_accounts else pd.Index([]))
    del posting
    look_table = _temp(led, "customer_id", BigInteger(), look)
    sums = _read(led, q.qualifying_sums(look_table, first, last))
    sums = pd.concat(
        [
            sums,
            pd.DataFrame({"customer_id": look.difference(pd.Index(sums["customer_id"])), "qualifying_minor": 0}),
        ],
        ignore_index=True,
    )
    current_rows = _read(led, q.tiers_valid_on(day - timedelta(days=1), look_table))
    current = current_rows.set_index("customer_id")["tier"] if len(current_rows) else pd.Series(dtype=object)
    changes = tier_changes(config, sums, downgraded, current, joiners)
    if result.tiers_written and len(changes):
        _write_tier_changes(led, day, changes)
    result.tier_changes += int(changes["old"].notna().sum())
    result.joined += len(joiners)

    expiring = _read(led, q.lots_due_on(day + timedelta(days=config.expiring_notice_days), day, span))
    events = day_events(day, entries, changes, inputs.joiners, expiring)
    result.events += write_frame(led, loyalty_events, events, on_conflict="ignore")

    touched = pd.concat([entries["customer_id"], joiners])
    result.members_touched += int(touched.nunique())
    check_members(led, entries["customer_id"], check=check)


class AdjustmentRefused(OperatorError):
    """An adjustment the ledger cannot take: the operator fixes the command (exit 3)."""


@dataclass
class Adjustment:
    """What `post_adjustment` did."""

    entry_id: str
    added: bool
    balance_minor: int


def post_adjustment(
    ledger: Engine, day: date, customer_id: int, amount_minor: int, reason: str, reference: str, config: LoyaltyConfig
) -> Adjustment:
    """An operator's correction: one `adjustment` entry keyed by the operator's `reference` (a ticket id).

    Posted on the newest posted loyalty day, after its night (an earlier day would change what later
    nights already consumed or expired; a later one would be read by a night that has not run yet).
    A credit is a lot with the standard expiry; a debit consumes lots first in, first out and is
    refused beyond the member's balance. The same reference again adds nothing (it must carry the
    same customer and amount); its `rule` column keeps the reason.
    """
    if amount_minor == 0:
        raise AdjustmentRefused("--amount: an adjustment of 0 changes nothing")
    reference, reason = reference.strip(), reason.strip()
    if not reference or len(reference) > 64:
        raise AdjustmentRefused("--reference: 1 to 64 characters (a ticket or rule id that traces the adjustment)")
    if not reason:
        raise AdjustmentRefused("--reason: say why (kept in the entry's rule)")
    eid = entry_id(EntryKind.ADJUSTMENT, SourceKind.RULE, reference)
    with ledger.begin() as led:
        newest = led.execute(q.last_run()).scalar()
        if newest is None or pd.Timestamp(newest).date() != day:
            raise AdjustmentRefused(
                f"--as-of {day}: adjustments go on the newest posted loyalty day ({newest or 'none yet'}), after its night"
            )
        who = _temp(led, "customer_id", BigInteger(), [customer_id])
        e_stmt, a_stmt = q.touched_entries(who)
        entries = _read(led, e_stmt)
        balance = int(entries["amount_minor"].sum()) if len(entries) else 0
        same = entries[entries["entry_id"] == eid] if len(entries) else entries
        if len(same):
            if int(same["amount_minor"].iloc[0]) != amount_minor:
                raise AdjustmentRefused(f"--reference {reference!r} was used for another amount")
            return Adjustment(eid, added=False, balance_minor=balance)
        if _read(led, select(loyalty_ledger.c.customer_id).where(loyalty_ledger.c.entry_id == eid)).shape[0]:
            raise AdjustmentRefused(f"--reference {reference!r} was used for another customer")
        if _read(led, q.tiers_valid_on(day, who)).empty:
            raise AdjustmentRefused(f"--customer {customer_id}: not a member of the programme on {day}")
        if balance + amount_minor < 0:
            raise AdjustmentRefused(
                f"--amount {amount_minor}: would make the balance negative (balance {balance} on {day})"
            )
        entry = pd.DataFrame(
            [
                {
                    "entry_id": eid,
                    "customer_id": customer_id,
                    "as_of": day,
                    "kind": EntryKind.ADJUSTMENT.value,
                    "amount_minor": amount_minor,
                    "source_kind": SourceKind.RULE.value,
                    "source_key": reference,
                    "expires_on": days_after(day, config.expiry_days) if amount_minor > 0 else None,
                    "rule": f"operator adjustment: {reason}"[:128],
                }
            ],
            columns=ENTRY_COLUMNS,
        )
        write_frame(led, loyalty_ledger, entry, on_conflict="error")
        if amount_minor < 0:
            lots = _read(led, q.lots_before(day + timedelta(days=1), who))
            lots = lots[lots["remaining_minor"] > 0] if len(lots) else pd.DataFrame(columns=LOT_COLUMNS)
            debit = pd.DataFrame({"customer_id": [customer_id], "entry_id": [eid], "amount_minor": [-amount_minor]})
            allocations, _ = allocate_fifo(lots, debit, day)
            write_frame(led, loyalty_allocations, allocations, on_conflict="error")
        violations = check_invariants(_read(led, e_stmt), _read(led, a_stmt))
        if violations:
            raise LedgerInvariantViolated("; ".join(violations))  # the transaction rolls back
    return Adjustment(eid, added=True, balance_minor=balance + amount_minor)


def _write_tier_changes(conn: Connection, day: date, changes: pd.DataFrame) -> None:
    """Close each changed member's current tier row at `day` and open the new one (set-based)."""
    t = loyalty_tiers
    moved = _temp(conn, "customer_id", BigInteger(), changes.loc[changes["old"].notna(), "customer_id"])

    conn.execute(
        update(t)
        .where(t.c.customer_id.in_(select(moved.c.customer_id)), t.c.valid_to.is_(None), t.c.valid_from < day)
        .values(valid_to=day)
    )
    rows = changes.assign(valid_from=day, valid_to=None)[["customer_id", "valid_from", "valid_to", "tier", "rule"]]
    write_frame(conn, t, rows, on_conflict="ignore")


def create_ledger_tables(engine: Engine) -> None:
    """Create the ledger tables in a scratch database (a what-if), never in the warehouse (Alembic does that)."""
    from models.base import metadata

    metadata.create_all(engine, tables=list(LEDGER_TABLES))


def ledger_snapshot(engine: Engine) -> dict[str, pd.DataFrame]:
    """Every ledger table's rows in key order (tests: byte-for-byte comparisons)."""

    out = {}
    with engine.connect() as conn:
        for table in LEDGER_TABLES:
            if table is loyalty_runs:
                continue
            order = list(table.primary_key.columns)
            out[table.name] = pd.DataFrame(
                conn.execute(select(table).order_by(*order)).all(), columns=[c.name for c in table.columns]
            )
    return out


def days_to_post(ledger: Engine, as_of: date) -> list[date]:
    """The days a run for `as_of` posts: the days missed since the last run, then `as_of` (a past day alone)."""
    with ledger.connect() as conn:
        newest = conn.execute(q.last_run()).scalar()
    if newest is None or as_of <= newest:
        return [as_of]
    return [newest + timedelta(days=i) for i in range(1, (as_of - newest).days + 1)]


def read_report(source: Engine, ledger: Engine, day: date, config: LoyaltyConfig) -> dict:
    """The figures of the loyalty report of a day."""
    with source.connect() as src, ledger.connect() as led:
        with_loan, with_order = (set(_read(src, s)["customer_id"].tolist()) for s in q.intersection_customers(day))
        return {
            "liability": int(led.execute(q.outstanding(day)).scalar() or 0),
            "expiring_30": int(
                led.execute(q.expiring_between(day + timedelta(days=1), day + timedelta(days=30), day)).scalar() or 0
            ),
            "flows": _read(led, q.flows_per_day(day - timedelta(days=config.report_days - 1), day)),
            "tiers": _read(led, q.tier_counts(day)),
            "migration": _read(led, q.tier_migration(day - timedelta(days=config.report_days), day)),
            "intersection": (len(with_loan & with_order), len(with_loan | with_order)),
        }


def summarise(ledger: Engine, start: date, end: date) -> dict:
    """Liability, expiring, flows over [start, end] and the tier distribution at `end` (what-if comparisons)."""
    with ledger.connect() as led:
        flows = _read(led, q.flows_per_day(start, end))
        tiers = _read(led, q.tier_counts(end))
        by_kind = flows.groupby("kind")["amount_minor"].sum() if len(flows) else pd.Series(dtype="int64")
        return {
            "liability": int(led.execute(q.outstanding(end)).scalar() or 0),
            "expiring_30": int(
                led.execute(q.expiring_between(end + timedelta(days=1), end + timedelta(days=30), end)).scalar() or 0
            ),
            "accrued": int(by_kind.get("accrual", 0)),
            "redeemed": int(-by_kind.get("redemption", 0)),
            "expired": int(-by_kind.get("expiry", 0)),
            "tiers": tiers.set_index("tier")["members"].to_dict() if len(tiers) else {},
        }


def what_if(source: Engine, real_ledger: Engine, scratch: Engine, rules: LoyaltyConfig, start: date, end: date) -> dict:
    """Replay `rules` over [start, end] into the scratch ledger (emptied first); the real ledger is only read.

    The scratch's first day posts everything ingested by then, like the programme's first run did:
    start the range on the programme's first day for figures comparable with the real ledger.
    """
    if str(scratch.url) == str(real_ledger.url):
        raise ValueError("the what-if scratch ledger must not be the warehouse")
    from models.base import metadata

    metadata.drop_all(scratch, tables=list(LEDGER_TABLES))
    create_ledger_tables(scratch)
    posted = []
    day = start
    while day <= end:
        posted.append(post_loyalty_day(source, scratch, day, rules))
        day += timedelta(days=1)
    return {
        "days": len(posted),
        "violations": [v for r in posted for v in r.violations],
        "scenario": summarise(scratch, start, end),
        "real": summarise(real_ledger, start, end),
    }


def write_report_file(reports_url: str, key: str, data: bytes) -> str:
    """Write a report file (the chart) to the reports location; return its address for the artifact's link."""
    from pathlib import Path

    from crm.core.storage import open_store

    open_store(reports_url).write_bytes(key, data)
    if reports_url.startswith("s3://"):
        return f"{reports_url.rstrip('/')}/{key}"
    return f"file://{Path(reports_url.removeprefix('file://')).expanduser().resolve()}/{key}"
