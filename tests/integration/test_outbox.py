"""The outbox on SQLite and PostgreSQL: idempotent planning, exactly-once dispatch checked from the provider's
side, the consent recheck, quiet hours, re-sends after a dead run, failures, delivery reports, the refusals."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select, update
from werkzeug import Response

from crm.core.db import write_frame
from crm.sending import (
    HttpProvider,
    HttpProviderConfig,
    MessageState,
    Refusal,
    RetryPolicy,
    SkipReason,
    apply_delivery_reports,
    check_dispatch,
    dispatch_messages,
    enqueue_messages,
    message_id,
    read_funnel,
)
from crm.simulator import LocalProvider
from models.ingest import staging
from models.sending import dispatch_attempts, dispatch_runs, outbox
from tests.sending import (
    DAY,
    address,
    consented_contacts,
    mark_ingested,
    planned,
    seed_contacts,
    seed_outbox,
    set_gate,
    warehouse,
)

PRICES = {"push": 1, "email": 3, "sms": 150}
LATER = datetime(2026, 2, 12, 8)  # a wall clock after the planned day


def local_http(local: LocalProvider, *, batch: bool = True, batch_size: int = 10, tries: int = 4) -> HttpProvider:
    config = HttpProviderConfig(
        url=f"{local.url}/messages",
        batch_url=f"{local.url}/messages/batch" if batch else None,
        batch_size=batch_size,
        rate_per_second=10_000,
        retry=RetryPolicy(max_attempts=tries, backoff_seconds=0.01, backoff_max_seconds=0.05),
    )
    return HttpProvider("local", config)


def send(engine, local: LocalProvider, channels=("sms",), **kwargs):
    provider = local_http(local)
    try:
        return dispatch_messages(engine, provider, DAY, list(channels), now=lambda: LATER, chunk_rows=7, **kwargs)
    finally:
        provider.close()


def outbox_rows(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(select(outbox).order_by(outbox.c.customer_id)).mappings().all())


def ids(customers, step: int = 1, wave: int = 1) -> list[str]:
    return [message_id("reactivation", step, c, wave) for c in customers]


def add_events(engine, rows: list[tuple], *, ingested_on) -> None:
    """Delivery reports as ingestion lands them: (message_id, customer_id, channel, event_type, occurred_at)."""
    frame = pd.DataFrame(rows, columns=["message_id", "customer_id", "channel", "event_type", "occurred_at"])
    frame.insert(0, "event_id", [f"ev-{i}-{r[0][:6]}" for i, r in enumerate(rows)])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    frame["campaign_id"] = "reactivation"
    frame["provider"] = "sms-gateway"
    frame["ingested_on"] = pd.Timestamp(ingested_on)
    with engine.begin() as conn:
        write_frame(conn, staging["message_events"], frame, on_conflict="ignore")


def test_planning_is_idempotent_and_takes_the_address_valid_on_the_planned_day(backend):
    engine = warehouse(backend.warehouse_url)
    seed_contacts(
        engine,
        [
            (1, "sms", "+380670000001", True, datetime(2026, 1, 5)),
            (1, "sms", "+380679999999", True, datetime(2026, 2, 12)),  # changed after the planned day
            (2, "email", "two@example.com", True, datetime(2026, 1, 5)),
        ],
    )
    frame = planned(DAY, [1, 2], "sms")
    with engine.begin() as conn:
        assert enqueue_messages(conn, frame, prices=PRICES) == 2
    with engine.begin() as conn:
        assert enqueue_messages(conn, frame, prices=PRICES) == 0  # re-planning adds nothing
        assert enqueue_messages(conn, planned(DAY, [1], "sms", wave=2), prices=PRICES) == 1  # a new wave is new
    rows = outbox_rows(engine).set_index("message_id")
    one = rows.loc[ids([1])[0]]
    assert one["address"] == "+380670000001" and one["state"] == MessageState.PLANNED and one["cost_minor"] == 150
    assert json.loads(one["params"]) == {"promo": "P1"} and one["attempts"] == 0
    two = rows.loc[ids([2])[0]]
    assert two["state"] == MessageState.SKIPPED and two["skip_reason"] == SkipReason.NO_ADDRESS


def test_dispatch_delivers_every_planned_message_once_and_a_rerun_sends_nothing(backend):
    engine = seed_outbox(backend.warehouse_url, range(1, 31))
    with LocalProvider() as local:
        counts = send(engine, local)
        again = send(engine, local)
        stats = local.stats()
        delivered = local.delivered_frame()
    assert sorted(delivered["message_id"]) == sorted(ids(range(1, 31)))
    assert stats["repeated_arrivals"] == 0 and stats["requests"] == 5  # 30 in chunks of 7: one batch request each
    assert (counts.claimed, counts.sent, counts.failed, counts.resent, counts.chunks) == (30, 30, 0, 0, 5)
    assert (again.claimed, again.sent) == (0, 0)
    rows = outbox_rows(engine)
    assert set(rows["state"]) == {MessageState.SENT} and rows["sent_at"].notna().all()
    assert (rows["attempts"] == 1).all() and set(rows["provider"]) == {"local"}
    with engine.connect() as conn:
        attempts = pd.DataFrame(conn.execute(select(dispatch_attempts)).mappings().all())
        runs = pd.DataFrame(conn.execute(select(dispatch_runs).order_by(dispatch_runs.c.started_at)).mappings().all())
    assert len(attempts) == 30 and set(attempts["outcome"]) == {"sent"} and set(attempts["attempt"]) == {1}
    assert runs["sent"].tolist() == [30, 0] and runs["finished_at"].notna().all()
    assert not runs["forced_closed_gate"].any()


def test_consent_is_checked_again_at_dispatch_and_the_provider_never_sees_a_withdrawn_contact(backend):
    engine = seed_outbox(backend.warehouse_url, range(1, 7))
    # After planning, the latest ingested data changes for customers 1 to 4.
    seed_contacts(
        engine,
        [
            (1, "sms", address(1, "sms"), False, datetime(2026, 2, 11, 9)),  # consent withdrawn in the back end
            (3, "sms", "+380675555555", True, datetime(2026, 2, 11, 9)),  # a new number
            (4, "sms", address(4, "sms"), True, datetime(2026, 2, 11, 9)),  # consented again after unsubscribing
        ],
        ingested_on=DAY + timedelta(days=1),
    )
    add_events(
        engine,
        [
            ("old-2", 2, "sms", "unsubscribed", datetime(2026, 2, 11, 8)),  # the back end has not caught up yet
            ("old-4", 4, "sms", "unsubscribed", datetime(2026, 2, 11, 7)),  # before the new consent
            ("old-5", 5, "email", "unsubscribed", datetime(2026, 2, 11, 7)),  # another channel
        ],
        ingested_on=DAY + timedelta(days=1),
    )
    with LocalProvider() as local:
        counts = send(engine, local)
        received = set(local.delivered_frame()["customer_id"])
    assert received == {4, 5, 6}
    assert counts.skipped == {"consent_withdrawn": 1, "unsubscribed": 1, "address_changed": 1}
    rows = outbox_rows(engine).set_index("customer_id")
    assert rows.loc[[1, 2, 3], "skip_reason"].tolist() == ["consent_withdrawn", "unsubscribed", "address_changed"]
    assert (rows.loc[[1, 2, 3], "state"] == MessageState.SKIPPED).all() and rows.loc[
        [1, 2, 3], "skipped_at"
    ].notna().all()


def test_quiet_hours_keep_a_message_planned_until_its_time(backend):
    engine = warehouse(backend.warehouse_url)
    seed_contacts(engine, consented_contacts([1, 2]))
    frame = planned(DAY, [1, 2], not_before=[datetime(2026, 2, 11, 9), None])
    with engine.begin() as conn:
        enqueue_messages(conn, frame, prices=PRICES)
    with LocalProvider() as local:
        provider = local_http(local)
        early = dispatch_messages(engine, provider, DAY, ["sms"], now=lambda: datetime(2026, 2, 11, 2))
        late = dispatch_messages(engine, provider, DAY, ["sms"], now=lambda: datetime(2026, 2, 11, 9, 0, 1))
        provider.close()
        order = local.delivered_frame()["customer_id"].tolist()
    assert (early.sent, early.waiting, late.sent, late.waiting) == (1, 1, 1, 0)
    assert order == [2, 1]


def test_a_live_dispatch_keeps_to_each_send_window_and_the_next_night_sends_what_waited(backend):
    """A zone far west waits past the day's last scheduled run: the next night's dispatch sends it inside its
    window; a message whose window closed before any run is skipped with its reason, never sent in quiet hours."""
    engine = warehouse(backend.warehouse_url)
    seed_contacts(engine, consented_contacts([1, 2, 3]))
    d1 = DAY + timedelta(days=1)
    frame = planned(
        DAY,
        [1, 2, 3],
        not_before=[None, datetime(2026, 2, 11, 20), datetime(2026, 2, 11, 9)],  # 2: 09:00 in UTC-11
        not_after=[datetime(2026, 2, 11, 21), datetime(2026, 2, 12, 8), datetime(2026, 2, 11, 12)],
    )
    with engine.begin() as conn:
        enqueue_messages(conn, frame, prices=PRICES)
    with LocalProvider() as local:
        provider = local_http(local)
        try:
            morning = dispatch_messages(engine, provider, DAY, ["sms"], now=lambda: datetime(2026, 2, 11, 13))
            next_night = dispatch_messages(engine, provider, d1, ["sms"], now=lambda: datetime(2026, 2, 12, 2))
            after_window = dispatch_messages(engine, provider, d1, ["sms"], now=lambda: datetime(2026, 2, 12, 9))
        finally:
            provider.close()
        delivered = local.delivered_frame()["customer_id"].tolist()
    # 13:00: 1 is in its window; 3's window closed at 12:00 (skipped); 2 waits for 20:00
    assert (morning.sent, morning.skipped.get(SkipReason.SEND_WINDOW_PASSED.value), morning.waiting) == (1, 1, 1)
    assert (next_night.sent, next_night.waiting) == (1, 0)  # the day before's message, inside its window
    assert after_window.sent == 0 and delivered == [1, 2]
    rows = outbox_rows(engine).set_index("customer_id")
    assert rows.loc[3, "state"] == MessageState.SKIPPED and rows.loc[3, "skip_reason"] == "send_window_passed"


def test_messages_a_dead_run_left_sending_are_resent_under_their_ids_and_delivered_once(backend):
    engine = seed_outbox(backend.warehouse_url, range(1, 11))
    dead = ids(range(1, 6))
    with engine.begin() as conn:  # a run claimed five messages and died
        conn.execute(
            update(outbox)
            .where(outbox.c.message_id.in_(dead))
            .values(state="sending", run_id="dead/1", attempts=1, claimed_at=datetime(2026, 2, 11, 1))
        )
    with LocalProvider() as local:
        for mid in dead[:2]:  # two of them had reached the provider before the kill
            local._deliver({"message_id": mid, "as_of": DAY.isoformat()})
        counts = send(engine, local)
        arrivals = dict(local.arrivals)
        delivered = set(local.delivered)
    assert delivered == set(ids(range(1, 11)))
    assert {mid: arrivals[mid] for mid in dead[:2]} == {dead[0]: 2, dead[1]: 2}  # acknowledged, not delivered twice
    assert all(arrivals[mid] == 1 for mid in set(delivered) - set(dead[:2]))
    assert (counts.claimed, counts.resent, counts.sent) == (10, 5, 10)
    rows = outbox_rows(engine).set_index("message_id")
    assert (rows.loc[dead, "attempts"] == 2).all() and (rows.drop(index=dead)["attempts"] == 1).all()
    assert set(rows["state"]) == {MessageState.SENT}


def test_rejections_are_recorded_as_failed_with_the_reason_and_not_retried(backend):
    engine = seed_outbox(backend.warehouse_url, range(1, 5))
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)

    def answer(request):
        body = request.get_json()
        if body["customer_id"] % 2 == 0:
            return Response('{"error": "blocked"}', status=422, content_type="application/json")
        return Response('{"status": "accepted"}', status=202, content_type="application/json")

    server.expect_request("/messages", method="POST").respond_with_handler(answer)
    server.start()
    try:
        config = HttpProviderConfig(url=server.url_for("/messages"), rate_per_second=1000, batch_size=2)
        provider = HttpProvider("gw", config)
        counts = dispatch_messages(engine, provider, DAY, ["sms"], now=lambda: LATER)
        provider.close()
        requests = len(server.log)
    finally:
        server.stop()
    assert (counts.sent, counts.rejected, counts.unavailable, requests) == (2, 2, 0, 4)
    rows = outbox_rows(engine).set_index("customer_id")
    assert rows.loc[[1, 3], "state"].tolist() == ["sent", "sent"]
    assert rows.loc[[2, 4], "state"].tolist() == ["failed", "failed"]
    assert rows.loc[2, "last_error"].startswith("HTTP 422") and rows.loc[2, "failed_at"] is not None
    with engine.connect() as conn:
        outcomes = dict(conn.execute(select(dispatch_attempts.c.message_id, dispatch_attempts.c.outcome)).all())
    assert outcomes[ids([2])[0]] == "rejected" and outcomes[ids([1])[0]] == "sent"


def test_delivery_reports_move_states_forward_idempotently_and_feed_the_funnel(backend):
    engine = seed_outbox(backend.warehouse_url, range(1, 7))
    with LocalProvider() as local:
        send(engine, local)
    m = dict(zip(range(1, 7), ids(range(1, 7)), strict=True))
    with engine.begin() as conn:  # message 6 is still in flight in a dead run
        conn.execute(update(outbox).where(outbox.c.message_id == m[6]).values(state="sending", sent_at=None))
    at = datetime(2026, 2, 11, 10)
    report_day = DAY + timedelta(days=1)
    add_events(
        engine,
        [
            (m[1], 1, "sms", "delivered", at),
            (m[1], 1, "sms", "clicked", at + timedelta(minutes=5)),
            (m[2], 2, "sms", "delivered", at),
            (m[2], 2, "sms", "unsubscribed", at + timedelta(minutes=9)),
            (m[3], 3, "sms", "failed", at),
            (m[4], 4, "sms", "delivered", at + timedelta(minutes=1)),
            (m[4], 4, "sms", "delivered", at),  # a repeated report: the earliest wins
            (m[6], 6, "sms", "sent", at),
            ("msg-transactional-1", 1, "sms", "delivered", at),  # not an outbox message
        ],
        ingested_on=report_day,
    )
    counts = apply_delivery_reports(engine, report_day)
    first = outbox_rows(engine).set_index("customer_id")
    assert apply_delivery_reports(engine, report_day)["states"] == counts["states"] == 5
    pd.testing.assert_frame_equal(first, outbox_rows(engine).set_index("customer_id"))
    assert first["state"].to_dict() == {
        1: "clicked",
        2: "delivered",
        3: "bounced",
        4: "delivered",
        5: "sent",
        6: "sent",
    }
    assert first.loc[4, "delivered_at"] == at and first.loc[2, "unsubscribed_at"] == at + timedelta(minutes=9)
    assert counts["delivered"] == 3 and counts["clicked"] == 1 and counts["failed"] == 1
    with engine.connect() as conn:
        funnel = read_funnel(conn, DAY, DAY).iloc[0]
    assert (funnel.messages, funnel.sent, funnel.delivered, funnel.clicked, funnel.bounced, funnel.unsubscribed) == (
        6,
        6,
        3,
        1,
        1,
        1,
    )
    assert funnel.cost_minor == 6 * 150


def test_a_day_sends_only_with_an_open_gate_or_when_forced_and_a_past_day_only_when_asked(backend):
    engine = warehouse(backend.warehouse_url)
    mark_ingested(engine, DAY)
    with engine.connect() as conn:
        never_checked = check_dispatch(conn, DAY)
    assert not never_checked.allowed and never_checked.refusal is Refusal.GATE_CLOSED
    assert never_checked.reasons == [f"quality has not run for {DAY}", f"reconciliation has not run for {DAY}"]
    set_gate(engine, DAY, fit=False)
    with engine.connect() as conn:
        closed = check_dispatch(conn, DAY)
        forced = check_dispatch(conn, DAY, force_closed_gate=True)
    assert closed.refusal is Refusal.GATE_CLOSED and closed.reasons == ["quality: test: broken"]
    assert forced.allowed and forced.forced_closed_gate and not forced.past_day
    set_gate(engine, DAY)
    mark_ingested(engine, DAY + timedelta(days=1))  # a newer day is in: DAY is now a past day
    with engine.connect() as conn:
        past = check_dispatch(conn, DAY)
        asked = check_dispatch(conn, DAY, send_past_days=True)
        today = check_dispatch(conn, DAY + timedelta(days=1), force_closed_gate=True)
    assert past.refusal is Refusal.PAST_DAY and "before the newest ingested day 2026-02-11" in past.reasons[0]
    assert asked.allowed and asked.past_day and not asked.forced_closed_gate
    assert today.allowed and not today.past_day


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
def test_a_flaky_provider_still_gets_every_message_exactly_once(sqlite_backend, batch):
    engine = seed_outbox(sqlite_backend.warehouse_url, range(1, 41))
    with LocalProvider(fail_share=0.15, throttle_share=0.05, lost_answer_share=0.15, seed=3) as local:
        provider = local_http(local, batch=batch, batch_size=5, tries=10)
        counts = dispatch_messages(engine, provider, DAY, ["sms"], now=lambda: LATER)
        provider.close()
        stats = local.stats()
    assert stats["delivered"] == 40 and counts.sent + counts.unavailable == 40
    # Ten tries against 35% faults: all ten fail for one of 40 messages about once in a thousand runs.
    assert counts.unavailable == 0
    assert (
        counts.retried_requests > 0 and stats["repeated_arrivals"] > 0
    )  # lost answers were retried, then acknowledged
