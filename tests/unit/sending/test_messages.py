"""Message ids, planned outbox rows and the consent/config rules of sending, on tiny hand-built data."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.core.config import ConfigError, load_config
from crm.sending import (
    ENQUEUE_COLUMNS,
    MessageState,
    SendingConfig,
    SkipReason,
    load_sending_config,
    message_id,
    message_ids,
)
from crm.sending.messages import plan_outbox_rows
from tests.sending import planned

DAY = date(2026, 2, 10)
PRICES = {"push": 1, "email": 3, "sms": 150}


def contacts(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "channel", "address"])


@given(
    campaign=st.text(min_size=1, max_size=20),
    step=st.integers(0, 50),
    customer=st.integers(1, 10**12),
    wave=st.integers(0, 100),
)
def test_a_message_id_depends_on_campaign_step_customer_and_wave_only(campaign, step, customer, wave):
    one = message_id(campaign, step, customer, wave)
    assert one == message_id(campaign, step, customer, wave)
    assert len(one) == 32 and all(c in "0123456789abcdef" for c in one)
    assert one != message_id(campaign, step + 1, customer, wave)
    assert one != message_id(campaign, step, customer + 1, wave)
    assert one != message_id(campaign, step, customer, wave + 1)
    assert one != message_id(campaign + "x", step, customer, wave)


def test_message_ids_of_a_frame_equal_the_single_id():
    frame = planned(DAY, [7, 8], step=2, wave=3)
    assert message_ids(frame) == [message_id("reactivation", 2, 7, 3), message_id("reactivation", 2, 8, 3)]


def test_planned_rows_take_the_address_of_planning_and_skip_a_customer_without_one():
    frame = planned(DAY, [1, 2, 3], "email")
    rows = plan_outbox_rows(frame, contacts([(1, "email", "a@x.org"), (2, "sms", "+380670000002")]), PRICES)
    rows = rows.set_index("customer_id")
    assert rows.loc[1, "address"] == "a@x.org" and rows.loc[1, "state"] == MessageState.PLANNED
    assert rows.loc[2, "state"] == MessageState.SKIPPED and rows.loc[2, "skip_reason"] == SkipReason.NO_ADDRESS
    assert rows.loc[3, "skip_reason"] == SkipReason.NO_ADDRESS
    assert pd.isna(rows.loc[1, "skip_reason"])
    assert (rows["cost_minor"] == 3).all() and (rows["attempts"] == 0).all()


def test_planned_rows_keep_a_given_price_and_normalise_params():
    frame = planned(DAY, [1, 2], "sms", cost_minor=[99, None])
    frame["params"] = ['{"b": 1, "a": 2}', None]
    rows = plan_outbox_rows(frame, contacts([(1, "sms", "+1"), (2, "sms", "+2")]), PRICES)
    assert rows["cost_minor"].tolist() == [99, 150]
    assert rows["params"].tolist() == ['{"a":2,"b":1}', "{}"]
    assert json.loads(rows["params"][0]) == {"a": 2, "b": 1}


def test_a_message_planned_twice_in_one_frame_is_one_row():
    frame = pd.concat([planned(DAY, [1]), planned(DAY, [1])], ignore_index=True)
    assert len(plan_outbox_rows(frame, contacts([(1, "sms", "+1")]), PRICES)) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="wave"), "missing columns \\['wave'\\]"),
        (lambda f: f.assign(channel="fax"), "unknown channels \\['fax'\\]"),
        (lambda f: f.assign(consent_decision=""), "consent_decision must not be empty"),
        (lambda f: f.assign(params="[1, 2]"), "params must be a JSON object"),
    ],
)
def test_a_malformed_plan_is_refused_naming_the_problem(change, message):
    with pytest.raises(ValueError, match=message):
        plan_outbox_rows(change(planned(DAY, [1])), contacts([(1, "sms", "+1")]), PRICES)


def test_a_channel_without_price_needs_an_explicit_cost():
    with pytest.raises(ValueError, match="no price for channels \\['sms'\\]"):
        plan_outbox_rows(planned(DAY, [1]), contacts([(1, "sms", "+1")]), {"push": 1})


def test_the_enqueue_contract_lists_the_planning_columns():
    assert ENQUEUE_COLUMNS == (
        "as_of",
        "campaign_id",
        "step",
        "wave",
        "customer_id",
        "channel",
        "template_id",
        "params",
        "consent_decision",
    )


# --------------------------------------------------------------------------- configuration


def test_the_repo_config_sends_every_channel_through_the_file_export_by_default():
    config = load_sending_config()
    assert config.used_providers() == ["file-export"]
    assert config.channels_of("file-export") == ["push", "email", "sms"]
    assert config.prices() == {"push": 1, "email": 3, "sms": 150}
    assert SendingConfig().prices() == config.prices()


def test_a_channel_pointing_at_an_unknown_provider_fails_naming_the_file(tmp_path, monkeypatch):
    (tmp_path / "sending.yaml").write_text("channels:\n  sms: {provider: nowhere, cost_minor: 1}\n")
    monkeypatch.setenv("CRM_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"(?s)sending\.yaml.*channels\.sms\.provider: no provider named 'nowhere'"):
        load_config("sending", SendingConfig)


@pytest.mark.parametrize("credential", ["{}", "{env: A, secret_block: b}"], ids=["neither", "both"])
def test_a_credential_names_exactly_one_place(tmp_path, monkeypatch, credential):
    (tmp_path / "sending.yaml").write_text(
        "providers:\n  gw: {kind: http, url: 'http://x', token: " + credential + "}\n"
        "channels:\n  sms: {provider: gw, cost_minor: 1}\n"
    )
    monkeypatch.setenv("CRM_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="exactly one of `env` or `secret_block`"):
        load_config("sending", SendingConfig)


def test_credentials_are_resolved_from_the_environment_or_a_secret_block(monkeypatch):
    from crm.sending import HttpProviderConfig, MissingCredentialError, SmtpProviderConfig, resolve_credentials

    http = HttpProviderConfig(url="http://x", token={"env": "GW_TOKEN"})
    monkeypatch.setenv("GW_TOKEN", "t0ken")
    assert resolve_credentials("gw", http) == {"token": "t0ken"}
    monkeypatch.delenv("GW_TOKEN")
    with pytest.raises(MissingCredentialError, match="environment variable GW_TOKEN"):
        resolve_credentials("gw", http)
    smtp = SmtpProviderConfig(host="h", username="u", password={"secret_block": "smtp-password"})
    assert resolve_credentials("mail", smtp, load_secret_block=lambda name: f"value-of-{name}") == {
        "password": "value-of-smtp-password"
    }
