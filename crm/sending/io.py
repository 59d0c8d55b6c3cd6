"""Sending against the warehouse: enqueue planned messages, decide whether a day may send, dispatch, apply reports.

The exactly-once protocol of `dispatch_messages`:
1. claim a chunk: one transaction moves up to `chunk_rows` messages from `planned` to `sending`
   under this run's id (attempts + 1);
2. send it in batches (up to `max_concurrency` batches in flight);
3. record each batch's results (`sent` / `failed` and an append-only `dispatch_attempts` row per
   message) in its own transaction as soon as the batch returns;
4. a run killed anywhere leaves only its claimed, unrecorded messages in `sending`; the next run
   for the provider (which holds the provider's lock, so the killed one is gone) claims them
   again first, under the SAME message id, and the provider's idempotency key makes the re-send
   harmless. Nothing else is ever sent twice.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Connection, Engine, insert, update

from crm.core.db import read_frame, write_frame
from crm.core.gate import read_send_gate
from crm.core.settings import get_settings
from crm.ingest import rows_as_of
from crm.sending import queries as q
from crm.sending.config import load_sending_config
from crm.sending.messages import BatchResult, OutgoingMessage, outgoing_from_rows, plan_outbox_rows
from crm.sending.providers import Provider
from crm.sending.states import Refusal, SendOutcome, SkipReason
from models.sending import dispatch_attempts, dispatch_runs, outbox

OUTBOX_PLANNED_COLUMNS = (
    "message_id",
    "as_of",
    "campaign_id",
    "step",
    "wave",
    "customer_id",
    "channel",
    "template_id",
    "params",
    "consent_decision",
    "address",
    "not_before",
    "not_after",
    "cost_minor",
    "state",
    "skip_reason",
    "attempts",
)
_IDS_PER_QUERY = 10_000
_temp_names = itertools.count()


def business_now() -> datetime:
    """The wall clock in the business time zone, naive like the tables' timestamps (effects only, never for as_of)."""
    return datetime.now(ZoneInfo(get_settings().business_timezone)).replace(tzinfo=None)


# --------------------------------------------------------------------------- enqueue


def _contacts_as_of(conn: Connection, day: date, customer_ids: Sequence[int]) -> pd.DataFrame:
    stmt = rows_as_of("customer_contacts", day)
    frames = []
    ids = sorted({int(i) for i in customer_ids})
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        frames.append(read_frame(conn, stmt.where(stmt.selected_columns.customer_id.in_(chunk))))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if frame.empty:
        return pd.DataFrame({"customer_id": pd.Series(dtype="int64"), "channel": [], "address": []})
    return frame[["customer_id", "channel", "address"]]


def enqueue_messages(conn: Connection, frame: pd.DataFrame, *, prices: dict[str, int] | None = None) -> int:
    """Write planned messages into the outbox; return how many were new (re-planning the same messages adds none).

    `frame` has the columns of `ENQUEUE_COLUMNS` (and optionally `not_before`, `cost_minor`); the
    message id is computed here from (campaign_id, step, customer_id, wave) and the address is the
    customer's contact on the channel as of the planned day (a message without one is stored as
    skipped, `no_address`). Control-group customers must not be in `frame`.
    """
    if frame.empty:
        return 0
    prices = prices if prices is not None else load_sending_config().prices()
    days = pd.to_datetime(frame["as_of"]).dt.date
    planned = []
    for day, part in frame.groupby(days, sort=True):
        contacts = _contacts_as_of(conn, day, part["customer_id"].tolist())
        planned.append(plan_outbox_rows(part, contacts, prices))
    rows = pd.concat(planned, ignore_index=True)[list(OUTBOX_PLANNED_COLUMNS)]
    return write_frame(conn, outbox, rows, on_conflict="ignore")


# --------------------------------------------------------------------------- may the day send?


@dataclass(frozen=True)
class DispatchDecision:
    """Whether a dispatch for `as_of` may send, and if not, why."""

    as_of: date
    allowed: bool
    refusal: Refusal | None
    reasons: list[str]
    gate_open: bool
    newest_ingested_day: date | None
    forced_closed_gate: bool = False
    past_day: bool = False


def check_dispatch(
    conn: Connection, as_of: date, *, force_closed_gate: bool = False, send_past_days: bool = False
) -> DispatchDecision:
    """Refuse a day whose send gate is closed (unless forced) or that is older than the newest ingested day (unless asked)."""
    gate = read_send_gate(conn, as_of)
    newest = conn.execute(q.newest_ingested_day()).scalar_one_or_none()
    if newest is not None and not isinstance(newest, date):
        newest = date.fromisoformat(str(newest)[:10])
    base = {"as_of": as_of, "gate_open": gate.is_open, "newest_ingested_day": newest}
    if newest is not None and as_of < newest and not send_past_days:
        reason = (
            f"{as_of} is before the newest ingested day {newest}: a past day sends only when asked (send_past_days)"
        )
        return DispatchDecision(allowed=False, refusal=Refusal.PAST_DAY, reasons=[reason], **base)
    if not gate.is_open and not force_closed_gate:
        return DispatchDecision(allowed=False, refusal=Refusal.GATE_CLOSED, reasons=gate.reasons, **base)
    return DispatchDecision(
        allowed=True,
        refusal=None,
        reasons=gate.reasons,
        forced_closed_gate=not gate.is_open,
        past_day=newest is not None and as_of < newest,
        **base,
    )


# --------------------------------------------------------------------------- dispatch


def recheck_consent(
    engine: Engine, as_of: date, channels: Sequence[str], now: datetime, *, live: bool = False
) -> dict[str, int]:
    """Skip the day's planned messages that the latest ingested contacts and reports no longer allow; counts by reason.

    A live run first skips the messages whose send window closed before any dispatch sent them.
    """
    counts = {}
    with engine.begin() as conn:
        if live:
            expired = conn.execute(q.expire_windows(as_of, channels, now)).rowcount
            if expired > 0:
                counts[SkipReason.SEND_WINDOW_PASSED.value] = expired
        for reason in q.RECHECK_ORDER:
            counts[reason.value] = max(conn.execute(q.skip_for(reason, as_of, channels, now, live)).rowcount, 0)
    return counts


# A dispatch of `as_of` is live while its scheduled runs happen (the two days after it): it keeps
# to the customers' send windows. Later, it is a replay of a past day (asked with send_past_days,
# or a simulated world run after its dates) and sends that day's messages as they were planned.
LIVE_DAYS = 2


def is_live(as_of: date, now: datetime) -> bool:
    """Whether a dispatch of `as_of` run at `now` (business time zone) is live rather than a replay."""
    return now < datetime.combine(as_of + timedelta(days=LIVE_DAYS + 1), time())


@dataclass
class DispatchCounts:
    """What one provider's dispatch did."""

    run_id: str
    provider: str
    channels: list[str]
    skipped: dict[str, int] = field(default_factory=dict)
    claimed: int = 0
    resent: int = 0
    sent: int = 0
    rejected: int = 0
    unavailable: int = 0
    retried_requests: int = 0
    waiting: int = 0
    taken_over: int = 0
    chunks: int = 0

    @property
    def failed(self) -> int:
        """Messages that ended `failed` (rejected or unavailable)."""
        return self.rejected + self.unavailable

    def as_dict(self) -> dict:
        """Plain values (for a Prefect result or a log line)."""
        return asdict(self) | {"failed": self.failed}


def _start_run(engine: Engine, counts: DispatchCounts, as_of: date, now: datetime, *, forced: bool, past: bool) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(dispatch_runs).values(
                run_id=counts.run_id,
                provider=counts.provider,
                as_of=as_of,
                started_at=now,
                forced_closed_gate=forced,
                send_past_days=past,
                skipped=0,
                claimed=0,
                resent=0,
                sent=0,
                failed=0,
                retried_requests=0,
            )
        )


def _finish_run(engine: Engine, counts: DispatchCounts, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(dispatch_runs)
            .where(dispatch_runs.c.run_id == counts.run_id, dispatch_runs.c.provider == counts.provider)
            .values(
                finished_at=now,
                skipped=sum(counts.skipped.values()),
                claimed=counts.claimed,
                resent=counts.resent,
                sent=counts.sent,
                failed=counts.failed,
                retried_requests=counts.retried_requests,
            )
        )


def _record_batch(
    engine: Engine,
    counts: DispatchCounts,
    batch: list[OutgoingMessage],
    result: BatchResult,
    now: Callable[[], datetime],
) -> None:
    """One transaction per batch: `sent` / `failed` on the outbox and a `dispatch_attempts` row per message."""
    attempt = {m.message_id: m.attempt for m in batch}
    started = result.started_at or now()
    finished = result.finished_at or now()
    sent = [r.message_id for r in result.results if r.outcome is SendOutcome.SENT]
    failed = [r for r in result.results if r.outcome is not SendOutcome.SENT]
    with engine.begin() as conn:
        updated = 0
        if sent:
            updated += max(conn.execute(q.record_sent(counts.run_id), {"ids": sent, "at": finished}).rowcount, 0)
        for r in failed:  # failures are few; each carries its own error
            updated += max(
                conn.execute(
                    q.record_failed(counts.run_id), {"b_id": r.message_id, "b_at": finished, "b_error": r.error}
                ).rowcount,
                0,
            )
        attempts = pd.DataFrame(
            {
                "message_id": [r.message_id for r in result.results],
                "attempt": [attempt[r.message_id] for r in result.results],
                "run_id": counts.run_id,
                "provider": counts.provider,
                "started_at": pd.Timestamp(started),
                "finished_at": pd.Timestamp(finished),
                "outcome": [r.outcome.value for r in result.results],
                "status_code": pd.array([r.status_code for r in result.results], dtype="Int64"),
                "requests": [r.requests for r in result.results],
                "error": [r.error for r in result.results],
            }
        )
        # Append-only; a row already there means another run recorded this attempt (the lock was bypassed).
        write_frame(conn, dispatch_attempts, attempts, on_conflict="ignore")
    counts.sent += len(sent)
    counts.rejected += sum(r.outcome is SendOutcome.REJECTED for r in failed)
    counts.unavailable += sum(r.outcome is SendOutcome.UNAVAILABLE for r in failed)
    counts.retried_requests += result.retried_requests
    # Another run re-claimed them meanwhile (only if the provider lock was bypassed): its record wins.
    counts.taken_over += len(result.results) - updated


def _submit_chunk(provider: Provider, pool: ThreadPoolExecutor, messages: list[OutgoingMessage]) -> dict:
    size = provider.batch_size
    batches = [messages[i : i + size] for i in range(0, len(messages), size)]
    return {pool.submit(provider.send, batch): batch for batch in batches}


def _record_chunk(engine: Engine, counts: DispatchCounts, futures: dict, now: Callable[[], datetime]) -> None:
    errors = []
    for future in as_completed(futures):
        try:
            result = future.result()
        except Exception as exc:  # the batch stays `sending`: the next run re-sends it under the same ids
            errors.append(exc)
            continue
        _record_batch(engine, counts, futures[future], result, now)
    if errors:
        raise errors[0]


def dispatch_messages(
    engine: Engine,
    provider: Provider,
    as_of: date,
    channels: Sequence[str],
    *,
    run_label: str | None = None,
    chunk_rows: int = 2_000,
    now: Callable[[], datetime] = business_now,
    forced_closed_gate: bool = False,
    send_past_days: bool = False,
    on_chunk: Callable[[DispatchCounts], None] | None = None,
) -> DispatchCounts:
    """Send the messages planned for `as_of` on `channels` through `provider`, exactly once (see the module doc).

    The caller must hold the provider's lock (a Prefect concurrency limit): messages another run
    left in `sending` are taken as abandoned and re-sent first, under their original ids. Planned
    messages are re-checked against the latest ingested consent first; those whose quiet hours
    (`not_before`) are not over stay planned for a later run. A live run (`is_live`) keeps to each
    message's send window: it also sends what the day before left waiting, never after `not_after`,
    and skips (`send_window_passed`) what no run sent in time.
    """
    run_id = f"{(run_label or 'run')[:40]}/{uuid.uuid4().hex[:12]}"
    counts = DispatchCounts(run_id=run_id, provider=provider.name, channels=list(channels))
    _start_run(engine, counts, as_of, now(), forced=forced_closed_gate, past=send_past_days)
    live = is_live(as_of, now())
    counts.skipped = recheck_consent(engine, as_of, channels, now(), live=live)
    dialect = engine.dialect.name
    stale = True  # first what dead runs left in `sending`, then the day's planned messages

    def claim() -> list[OutgoingMessage]:
        nonlocal stale
        while True:
            stmt = q.claim_chunk(
                dialect=dialect,
                run_id=run_id,
                provider=provider.name,
                channels=channels,
                as_of=as_of,
                now=now(),
                limit=chunk_rows,
                stale=stale,
                live=live,
            )
            with engine.begin() as conn:
                rows = conn.execute(stmt).all()
            if rows or not stale:
                break
            stale = False
        messages = outgoing_from_rows(rows)
        counts.claimed += len(messages)
        counts.resent += sum(m.attempt > 1 for m in messages)
        return messages

    with ThreadPoolExecutor(max_workers=provider.max_concurrency, thread_name_prefix=f"send-{provider.name}") as pool:
        chunk = claim()
        while chunk:
            futures = _submit_chunk(provider, pool, chunk)
            # Claim the next chunk while this one is on the wire: the provider never waits for the warehouse.
            try:
                following = claim()
            finally:  # even when the claim fails: what is on the wire gets recorded first
                _record_chunk(engine, counts, futures, now)
            counts.chunks += 1
            if on_chunk is not None:
                on_chunk(counts)
            chunk = following
    provider.finish(as_of)
    with engine.connect() as conn:
        counts.waiting = conn.execute(q.count_waiting(as_of, channels, live)).scalar_one()
    _finish_run(engine, counts, now())
    return counts


# --------------------------------------------------------------------------- delivery reports


def apply_delivery_reports(engine: Engine, as_of: date, *, since: date | None = None) -> dict[str, int]:
    """Update outbox timestamps and states from the delivery reports ingested from `since` (default `as_of`) to `as_of`.

    Set-based and idempotent: the earliest report of each kind wins, states only move forward
    (clicked > opened > delivered > bounced > sent). Returns the messages touched per report kind.
    """
    since = since or as_of
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        reports = q.reports_table(f"_outbox_reports_{next(_temp_names)}")
        reports.create(conn)
        try:
            conn.execute(
                insert(reports).from_select(["message_id", "event_type", "reported_at"], q.select_reports(since, as_of))
            )
            for event_type in q.REPORT_COLUMNS:
                counts[event_type] = max(conn.execute(q.apply_report(reports, event_type)).rowcount, 0)
            counts["states"] = max(conn.execute(q.advance_states(reports)).rowcount, 0)
        finally:
            reports.drop(conn)
    return counts


# --------------------------------------------------------------------------- reading


def read_funnel(conn: Connection, start: date, end: date) -> pd.DataFrame:
    """Per planned day, campaign, step and channel: messages by state and by report, and the spend (minor units)."""
    integers = ("step", "messages", "planned", "sending", "sent", "failed", "skipped")
    integers += ("delivered", "bounced", "opened", "clicked", "unsubscribed", "resent", "cost_minor")
    return read_frame(conn, q.funnel(start, end), integers=integers)


def read_skip_reasons(conn: Connection, start: date, end: date) -> pd.DataFrame:
    """Skipped messages per planned day, campaign, step, channel and reason."""
    return read_frame(conn, q.skip_reasons(start, end), integers=("step", "messages"))
