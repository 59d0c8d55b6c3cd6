"""Providers behind real protocols on localhost: an HTTP gateway that fails, times out and throttles on purpose
(pytest-httpserver), an SMTP server (aiosmtpd), and the file export on a folder and on S3 (moto)."""

from __future__ import annotations

import io
import json
import time
from datetime import date

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pytest_httpserver import HTTPServer
from werkzeug import Response

from crm.core.storage import open_store
from crm.sending import (
    EXPORT_COLUMNS,
    FileExportProvider,
    FileProviderConfig,
    HttpProvider,
    HttpProviderConfig,
    OutgoingMessage,
    RetryPolicy,
    SendOutcome,
    SmtpProvider,
    SmtpProviderConfig,
    export_key,
)
from tests.sending import SmtpRecorder, free_port

DAY = date(2026, 2, 10)
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_seconds=0.01, backoff_max_seconds=0.05, max_retry_after_seconds=5)


def message(n: int, channel: str = "sms", *, to: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=f"{n:032x}",
        as_of=DAY,
        campaign_id="reactivation",
        step=1,
        wave=1,
        customer_id=n,
        channel=channel,
        template_id="reactivation-1",
        params_json=json.dumps({"promo": f"P{n}", "subject": "We miss you"}),
        address=to or f"+38067{n:07d}",
    )


@pytest.fixture
def gateway():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def http_provider(server: HTTPServer, **overrides) -> HttpProvider:
    config = HttpProviderConfig(
        url=server.url_for("/messages"),
        rate_per_second=1000,
        max_concurrency=2,
        timeout_seconds=0.3,
        connect_timeout_seconds=1,
        retry=FAST_RETRY,
        **overrides,
    )
    return HttpProvider("gw", config, token="s3cret")


def json_answer(status: int, body) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


# --------------------------------------------------------------------------- HTTP


def test_each_message_is_posted_with_its_id_as_idempotency_key_and_the_bearer_token(gateway):
    gateway.expect_request("/messages", method="POST").respond_with_json({"status": "accepted"}, status=202)
    provider = http_provider(gateway)
    result = provider.send([message(1), message(2)])
    provider.close()
    assert [r.outcome for r in result.results] == [SendOutcome.SENT, SendOutcome.SENT]
    assert result.retried_requests == 0
    requests = [req for req, _ in gateway.log]
    assert [r.headers["Idempotency-Key"] for r in requests] == [message(1).message_id, message(2).message_id]
    assert {r.headers["Authorization"] for r in requests} == {"Bearer s3cret"}
    body = requests[0].get_json()
    assert body["message_id"] == message(1).message_id and body["to"] == "+380670000001"
    assert body["params"] == {"promo": "P1", "subject": "We miss you"} and body["as_of"] == "2026-02-10"


def test_a_5xx_is_retried_under_the_same_key_until_it_succeeds(gateway):
    for status in (503, 500):
        gateway.expect_ordered_request("/messages", method="POST").respond_with_data("down", status=status)
    gateway.expect_ordered_request("/messages", method="POST").respond_with_json({"status": "accepted"})
    provider = http_provider(gateway)
    result = provider.send([message(1)])
    provider.close()
    (only,) = result.results
    assert only.outcome is SendOutcome.SENT and only.requests == 3 and result.retried_requests == 2
    assert {req.headers["Idempotency-Key"] for req, _ in gateway.log} == {message(1).message_id}


def test_a_timeout_is_retried_and_retries_run_out_as_unavailable(gateway):
    def slow(_request):
        time.sleep(0.6)  # longer than the 0.3 s read timeout
        return json_answer(200, {"status": "accepted"})

    gateway.expect_request("/messages", method="POST").respond_with_handler(slow)
    provider = http_provider(gateway)
    (only,) = provider.send([message(1)]).results
    provider.close()
    assert only.outcome is SendOutcome.UNAVAILABLE and only.requests == 3
    assert "timeout" in only.error and only.status_code is None


def test_a_429_holds_back_for_retry_after_then_sends(gateway):
    gateway.expect_ordered_request("/messages", method="POST").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"}
    )
    gateway.expect_ordered_request("/messages", method="POST").respond_with_json({"status": "accepted"})
    provider = http_provider(gateway)
    started = time.monotonic()
    (only,) = provider.send([message(1)]).results
    waited = time.monotonic() - started
    provider.close()
    assert only.outcome is SendOutcome.SENT and only.requests == 2
    assert waited >= 1.0  # the provider's Retry-After, not the 10 ms backoff


def test_a_4xx_is_a_permanent_rejection_without_retry_and_its_error_never_shows_the_address(gateway):
    gateway.expect_request("/messages", method="POST").respond_with_data("invalid number +380671234567", status=400)
    provider = http_provider(gateway)
    (only,) = provider.send([message(1)]).results
    provider.close()
    assert only.outcome is SendOutcome.REJECTED and only.requests == 1 and only.status_code == 400
    assert "+380671234567" not in only.error and "HTTP 400" in only.error


def test_the_batch_endpoint_answers_per_item(gateway):
    def answer(request):
        items = request.get_json()
        out = [{"message_id": m["message_id"], "status": "accepted"} for m in items[:2]]
        out.append({"message_id": items[2]["message_id"], "status": "rejected", "error": "blocked number"})
        return json_answer(200, out)  # the fourth is missing from the answer

    gateway.expect_request("/messages/batch", method="POST").respond_with_handler(answer)
    provider = http_provider(gateway, batch_url=gateway.url_for("/messages/batch"), batch_size=4)
    result = provider.send([message(i) for i in range(1, 5)])
    provider.close()
    assert [r.outcome for r in result.results] == [
        SendOutcome.SENT,
        SendOutcome.SENT,
        SendOutcome.REJECTED,
        SendOutcome.UNAVAILABLE,
    ]
    assert result.results[2].error == "blocked number"
    assert len(gateway.log) == 1 and len(gateway.log[0][0].get_json()) == 4


def test_the_local_provider_acknowledges_a_repeated_key_without_delivering_twice():
    from crm.simulator import LocalProvider

    with LocalProvider(lost_answer_share=1.0) as local:  # delivers, then loses every answer
        config = HttpProviderConfig(url=f"{local.url}/messages", retry=FAST_RETRY)
        provider = HttpProvider("local", config)
        (only,) = provider.send([message(1)]).results
        provider.close()
        stats = local.stats()
    assert only.outcome is SendOutcome.UNAVAILABLE and only.requests == 3
    assert stats["delivered"] == 1 and stats["arrivals"] == 3 and stats["repeated_arrivals"] == 2


# --------------------------------------------------------------------------- SMTP


class Login:
    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"crm" and auth_data.password == b"pa55"
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def smtp_server():
    recorder = SmtpRecorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=Login(),
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    yield controller, recorder
    controller.stop()


def smtp_provider(controller, **overrides) -> SmtpProvider:
    options = {"host": controller.hostname, "port": controller.port, "security": "none"}
    options |= {"retry": FAST_RETRY, "rate_per_second": 1000} | overrides
    password = options.pop("password_value", None)
    return SmtpProvider("mail", SmtpProviderConfig(**options), password=password)


def test_smtp_sends_with_the_message_id_as_message_id_on_one_reused_connection(smtp_server):
    controller, recorder = smtp_server
    provider = smtp_provider(controller)
    messages = [message(i, "email", to=f"user{i}@example.com") for i in range(1, 6)]
    first = provider.send(messages[:3])
    second = provider.send(messages[3:])
    provider.close()
    assert all(r.outcome is SendOutcome.SENT for r in first.results + second.results)
    assert [r["message_id"] for r in recorder.received] == [m.message_id for m in messages]
    assert [r["to"] for r in recorder.received] == [m.address for m in messages]
    assert recorder.received[0]["subject"] == "We miss you"
    assert recorder.connections == 1


def test_smtp_logs_in_with_the_configured_user_and_resolved_password(smtp_server):
    controller, recorder = smtp_server
    provider = smtp_provider(controller, username="crm", password={"env": "SMTP_PASSWORD"}, password_value="pa55")
    (only,) = provider.send([message(1, "email", to="a@example.com")]).results
    provider.close()
    assert only.outcome is SendOutcome.SENT
    assert recorder.received[0]["authenticated"] is True


def test_smtp_with_a_wrong_password_stops_the_run_instead_of_failing_every_message(smtp_server):
    controller, _ = smtp_server
    provider = smtp_provider(controller, username="crm", password={"env": "SMTP_PASSWORD"}, password_value="wrong")
    with pytest.raises(RuntimeError, match="authentication refused"):
        provider.send([message(1, "email", to="a@example.com")])
    provider.close()


def test_smtp_rejects_a_refused_recipient_and_retries_a_deferred_one(smtp_server):
    controller, recorder = smtp_server
    recorder.reject.add("gone@example.com")
    recorder.defer["busy@example.com"] = 2
    provider = smtp_provider(controller)
    gone, busy = provider.send(
        [message(1, "email", to="gone@example.com"), message(2, "email", to="busy@example.com")]
    ).results
    provider.close()
    assert gone.outcome is SendOutcome.REJECTED and gone.status_code == 550 and gone.requests == 1
    assert "gone@example.com" not in gone.error
    assert busy.outcome is SendOutcome.SENT and busy.requests == 3
    assert [r["to"] for r in recorder.received] == ["busy@example.com"]


# --------------------------------------------------------------------------- file export


def exported(store, channel: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(store.read_bytes(export_key(DAY, channel))), dtype=str)


def test_the_file_export_writes_one_csv_per_day_and_channel_each_message_once(tmp_path):
    store = open_store(str(tmp_path / "artifacts"))
    provider = FileExportProvider("file-export", FileProviderConfig(), store)
    sms = [message(i) for i in range(1, 4)]
    provider.send([*sms[:2], message(9, "email", to="x@example.com")])
    provider.send(sms[1:])  # the second message again: a re-send after a kill
    provider.send([*sms[:2], message(9, "email", to="x@example.com")])  # the same batch again
    provider.finish(DAY)
    frame = exported(store, "sms")
    assert list(frame.columns) == list(EXPORT_COLUMNS)
    assert frame["message_id"].tolist() == [m.message_id for m in sms]
    assert frame["to"].tolist() == [m.address for m in sms]
    assert exported(store, "email")["message_id"].tolist() == [message(9).message_id]


def test_the_file_export_of_a_killed_run_is_completed_by_the_next(tmp_path):
    store = open_store(str(tmp_path / "artifacts"))
    FileExportProvider("file-export", FileProviderConfig(), store).send([message(1)])  # killed before finish
    assert not [k for k, _ in store.list_keys("exports/") if k == export_key(DAY, "sms")]
    later = FileExportProvider("file-export", FileProviderConfig(), store)
    later.send([message(2)])
    later.finish(DAY)
    assert exported(store, "sms")["message_id"].tolist() == [message(1).message_id, message(2).message_id]


def test_the_file_export_writes_to_s3(s3_bucket):
    url = f"s3://{s3_bucket('exports')}/crm"
    provider = FileExportProvider("file-export", FileProviderConfig(url=url), open_store(url))
    provider.send([message(1), message(2)])
    provider.finish(DAY)
    assert exported(open_store(url), "sms")["message_id"].tolist() == [message(1).message_id, message(2).message_id]


def self_signed_certificate(folder) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by its own key (a private CA's), as PEM files: (cert, key)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test relay")])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "relay.pem", folder / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_over_tls_verifies_the_relay_against_the_configured_ca_and_logs_in_encrypted(tmp_path, security):
    import ssl

    cert_file, key_file = self_signed_certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    recorder = SmtpRecorder()
    tls = {"tls_context": server_context, "require_starttls": True} if security == "starttls" else {}
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=Login(),
        # STARTTLS: AUTH only after it, so the password never crosses in clear (SMTPS is TLS from the first byte,
        # and aiosmtpd does not count it for this option).
        auth_require_tls=security == "starttls",
        ssl_context=server_context if security == "ssl" else None,
        **tls,
    )
    controller.start()
    try:
        options = {"security": security, "username": "crm", "password": {"env": "SMTP_PASSWORD"}}
        untrusted = smtp_provider(controller, **options, password_value="pa55")
        with pytest.raises(RuntimeError, match=r"certificate is not trusted .*give the CA's PEM file as ca_file"):
            untrusted.send([message(1, "email", to="a@example.com")])
        untrusted.close()
        assert recorder.received == []

        trusted = smtp_provider(controller, **options, ca_file=cert_file, password_value="pa55")
        (only,) = trusted.send([message(2, "email", to="b@example.com")]).results
        trusted.close()
    finally:
        controller.stop()
    assert only.outcome is SendOutcome.SENT
    assert (recorder.received[0]["authenticated"], recorder.received[0]["tls"] or security == "ssl") == (True, True)
