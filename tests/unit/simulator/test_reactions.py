"""The world reacts to what providers received: delivery reports, unsubscribes, caused conversions, a known effect."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from crm.core.settings import make_engine
from crm.core.storage import LocalStore
from crm.simulator import Reaction, SimulationConfig, read_received, received_key, simulate
from models import source as src

START = date(2026, 1, 1)
SENT_ON = date(2026, 1, 10)  # the planned day of the campaign; the world reacts from the 11th


def received_list(customers, channel: str, campaign: str = "winback") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "message_id": [f"m{c:031d}" for c in customers],
            "as_of": SENT_ON.isoformat(),
            "campaign_id": campaign,
            "customer_id": customers,
            "channel": channel,
            "to": "masked",
        }
    )


def world(tmp_path, name: str, config: SimulationConfig, lists: dict[str, pd.DataFrame], days_after: int = 20):
    (tmp_path / name).mkdir()
    engine = make_engine(f"sqlite:///{tmp_path / name / 'source.db'}")
    landing = LocalStore(tmp_path / name / "landing")
    inbox = LocalStore(tmp_path / name / "artifacts")
    simulate(engine, landing, customers=400, days=10, seed=5, start=START, config=config, inbox=inbox)
    for channel, frame in lists.items():
        inbox.write_bytes(received_key(SENT_ON, channel), frame.to_csv(index=False).encode())
    inbox.write_bytes(f"exports/{SENT_ON}/parts/sms/part.csv", b"message_id\nnot-a-finished-list\n")
    simulate(engine, landing, days=days_after, config=config, inbox=inbox)
    return engine, landing, inbox


def events_of(landing: LocalStore, day: date) -> pd.DataFrame:
    rows = []
    for key, _ in landing.list_keys("message_events/"):
        if key.endswith(f"_{day}.jsonl"):
            rows += [json.loads(line) for line in landing.read_bytes(key).decode().splitlines() if line]
    return pd.DataFrame(rows)


def truth(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(select(src.simulated_reactions)).mappings().all())


def test_the_received_lists_of_a_day_are_read_once_per_message_and_parts_are_ignored(tmp_path):
    inbox = LocalStore(tmp_path)
    inbox.write_bytes(received_key(SENT_ON, "sms"), received_list([1, 2], "sms").to_csv(index=False).encode())
    inbox.write_bytes(received_key(SENT_ON, "local"), received_list([2, 3], "sms").to_csv(index=False).encode())
    inbox.write_bytes(f"exports/{SENT_ON}/parts/sms/x.csv", received_list([9], "sms").to_csv(index=False).encode())
    got = read_received(inbox, SENT_ON)
    assert got["customer_id"].tolist() == [1, 2, 3] and got["message_id"].is_unique
    assert read_received(inbox, SENT_ON + timedelta(days=1)).empty


def test_customers_react_the_next_day_with_reports_for_the_messages_they_received(tmp_path):
    config = SimulationConfig(
        reactions=[
            Reaction(channel="email", delivered=1.0, opened=1.0, clicked=1.0, unsubscribed=1.0, conversion_uplift=0),
            Reaction(channel="sms", delivered=0.5, opened=0, clicked=0, unsubscribed=0, conversion_uplift=0),
        ]
    )
    lists = {"email": received_list(range(1, 41), "email"), "sms": received_list(range(41, 201), "sms")}
    engine, landing, _ = world(tmp_path, "a", config, lists, days_after=3)
    reacted = SENT_ON + timedelta(days=1)
    events = events_of(landing, reacted)
    ours = events[events["campaign_id"] == "winback"]
    got = truth(engine).set_index("message_id")
    assert set(got.index) == set(lists["email"]["message_id"]) | set(lists["sms"]["message_id"])
    assert (got["reacted_on"] == reacted).all() and (got["sent_on"] == SENT_ON).all()
    # Every received message gets a `sent` report; delivery and engagement follow the configured shares.
    assert set(ours[ours["event_type"] == "sent"]["message_id"]) == set(got.index)
    delivered = set(ours[ours["event_type"] == "delivered"]["message_id"])
    assert delivered == set(got.index[got["delivered"]])
    assert set(ours[ours["event_type"] == "failed"]["message_id"]) == set(got.index[~got["delivered"]])
    email = got[got["channel"] == "email"]
    assert email["delivered"].all() and email["opened"].all() and email["unsubscribed"].all()
    assert 0.35 < got.loc[got["channel"] == "sms", "delivered"].mean() < 0.65
    assert set(ours.loc[ours["event_type"] == "unsubscribed", "customer_id"]) == set(range(1, 41))
    assert set(ours["provider"]) == {"email-service", "sms-gateway"}
    # The back end records the unsubscribes: consent withdrawn on that channel only.
    with engine.connect() as conn:
        contacts = pd.DataFrame(conn.execute(select(src.tables["customer_contacts"])).mappings().all())
    emails = contacts[(contacts["channel"] == "email") & contacts["customer_id"].isin(range(1, 41))]
    assert len(emails) and not emails["is_consented"].any()


def test_the_true_effect_is_readable_and_caused_conversions_happen_within_the_window(tmp_path):
    config = SimulationConfig(
        reactions=[Reaction(delivered=1.0, opened=0, clicked=0, unsubscribed=0, conversion_uplift=1.0)],
        effect_days=7,
    )
    assert config.expected_uplift("winback", "sms", "active") == 1.0
    assert config.expected_uplift("winback", "sms", "active", baseline_rate=0.25) == 0.75
    assert SimulationConfig().expected_uplift("any", "sms", "churned") == pytest.approx(0.95 * 0.06)
    customers = list(range(1, 301))
    engine, _, _ = world(tmp_path, "a", config, {"sms": received_list(customers, "sms")}, days_after=10)
    got = truth(engine)
    assert got["conversion_on"].notna().all()
    window = pd.to_datetime(got["conversion_on"]) - pd.Timestamp(SENT_ON + timedelta(days=1))
    assert window.dt.days.between(1, 7).all()
    # A conversion happens unless the customer stayed busy (an application or a loan) the whole window.
    assert got["converted"].notna().all() and got["converted"].mean() > 0.6
    done = got[got["converted"]]
    with engine.connect() as conn:
        apps = pd.DataFrame(conn.execute(select(src.tables["loan_applications"])).mappings().all())
        orders = pd.DataFrame(conn.execute(select(src.tables["orders"])).mappings().all())
    created = pd.concat(
        [
            apps[["customer_id", "created_at"]],
            orders.rename(columns={"ordered_at": "created_at"})[["customer_id", "created_at"]],
        ]
    )
    created["day"] = pd.to_datetime(created["created_at"]).dt.date
    on_day = set(zip(created["customer_id"], created["day"], strict=True))
    assert all((r.customer_id, r.converted_on) in on_day for r in done.itertuples())
    assert set(got["segment"]) <= {"lead", "active", "churned"} and "lead" in set(got["segment"])


def test_the_same_world_and_lists_give_the_same_bytes(tmp_path):
    lists = {"sms": received_list(range(1, 101), "sms")}
    a, la, _ = world(tmp_path, "a", SimulationConfig(), lists, days_after=4)
    b, lb, _ = world(tmp_path, "b", SimulationConfig(), lists, days_after=4)
    pd.testing.assert_frame_equal(truth(a), truth(b))
    assert {k: la.read_bytes(k) for k, _ in la.list_keys("")} == {k: lb.read_bytes(k) for k, _ in lb.list_keys("")}
    assert b'"campaign_id": "winback"' in la.read_bytes(
        f"message_events/sms-gateway_{SENT_ON + timedelta(days=1)}.jsonl"
    )
