"""The SMTP provider for e-mail: the message id as `Message-ID`, STARTTLS / SSL and AUTH, one connection per worker.

SMTP has no idempotency key: a message whose acceptance was not yet recorded when the dispatcher
was killed is sent again on the next run (same Message-ID, so mail clients thread or drop it).
That window is at most one batch per worker; the dispatcher commits `sent` right after each batch.
"""

from __future__ import annotations

import contextlib
import json
import random
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage

from crm.core.privacy import mask_value
from crm.sending.config import SmtpProviderConfig
from crm.sending.messages import BatchResult, OutgoingMessage, SendResult
from crm.sending.pacing import TokenBucket, backoff_delay
from crm.sending.states import SendOutcome


def build_email(message: OutgoingMessage, config: SmtpProviderConfig) -> EmailMessage:
    """The e-mail of a message: subject and body from its parameters, `Message-ID: <message id@domain>`."""
    email = EmailMessage()
    email["From"] = config.from_address
    email["To"] = message.address
    email["Subject"] = str(message.params.get("subject") or message.template_id)
    email["Message-ID"] = f"<{message.message_id}@{config.message_id_domain}>"
    email["X-CRM-Campaign"] = message.campaign_id
    email["X-CRM-Template"] = message.template_id
    body = message.params.get("body")
    if body is None:
        body = f"template {message.template_id}\n" + json.dumps(message.params, sort_keys=True, ensure_ascii=False)
    email.set_content(str(body))
    return email


class SmtpProvider:
    """Sends e-mails through an SMTP relay; each dispatch worker keeps its own connection open across batches."""

    def __init__(
        self,
        name: str,
        config: SmtpProviderConfig,
        *,
        password: str | None = None,
        now: Callable[[], datetime] = datetime.now,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.password = password
        self.batch_size = config.batch_size
        self.max_concurrency = config.max_concurrency
        self.now = now
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.bucket = TokenBucket(config.rate_per_second, capacity=max(config.rate_per_second, 1.0), sleep=sleep)
        self.local = threading.local()
        self.connections: list[smtplib.SMTP] = []
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ connections
    def _connect(self) -> smtplib.SMTP:
        c = self.config
        # Certificates are always verified (host name included); a private CA is trusted by file, never by switching checks off.
        if c.security == "ssl":
            context = ssl.create_default_context(cafile=c.ca_file)
            conn = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_seconds, context=context)
        else:
            conn = smtplib.SMTP(c.host, c.port, timeout=c.timeout_seconds)
            if c.security == "starttls":
                conn.starttls(context=ssl.create_default_context(cafile=c.ca_file))
        if c.username:
            conn.login(c.username, self.password or "")
        with self.lock:
            self.connections.append(conn)
        return conn

    def _connection(self) -> smtplib.SMTP:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self._connect()
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self.local, "conn", None)
        self.local.conn = None
        if conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                conn.close()

    # ------------------------------------------------------------------ protocol
    def send(self, messages: list[OutgoingMessage]) -> BatchResult:
        """Send each message on this worker's connection; a result per message."""
        started = self.now()
        results = [self._send_one(m) for m in messages]
        retried = sum(r.requests - 1 for r in results)
        return BatchResult(results=results, retried_requests=retried, started_at=started, finished_at=self.now())

    def finish(self, as_of) -> None:
        """Nothing to finalise."""

    def close(self) -> None:
        """Say QUIT on every connection the workers opened."""
        with self.lock:
            connections, self.connections = self.connections, []
        for conn in connections:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                conn.quit()

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        policy = self.config.retry
        email = build_email(message, self.config)
        code: int | None = None
        error = ""
        for attempt in range(1, policy.max_attempts + 1):
            self.bucket.acquire(1)
            try:
                refused = self._connection().send_message(email)
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                if code >= 500:
                    return self._rejected(message, code, reply, attempt)
                error = f"recipient deferred {code}"
            except smtplib.SMTPAuthenticationError as exc:
                # Wrong credentials will not fix themselves: stop the run instead of failing every message.
                raise RuntimeError(f"SMTP provider {self.name}: authentication refused ({exc.smtp_code})") from exc
            except smtplib.SMTPResponseException as exc:
                code = exc.smtp_code
                if code >= 500:
                    self._reset()
                    return self._rejected(message, code, exc.smtp_error, attempt)
                error = f"SMTP {code}"
                self._reset()
            except ssl.SSLCertVerificationError as exc:
                # An untrusted relay will not become trusted by retrying: stop the run, say what to check.
                raise RuntimeError(
                    f"SMTP provider {self.name}: the relay's certificate is not trusted ({exc.verify_message}): "
                    "check the host name, or give the CA's PEM file as ca_file"
                ) from exc
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
                code, error = None, f"connection: {type(exc).__name__}"
                self._drop_connection()
            else:
                if refused:
                    code, reply = next(iter(refused.values()))
                    return self._rejected(message, code, reply, attempt)
                return SendResult(message.message_id, SendOutcome.SENT, 250, attempt)
            if attempt < policy.max_attempts:
                self.sleep(backoff_delay(attempt, policy, self.rng))
        return SendResult(
            message.message_id,
            SendOutcome.UNAVAILABLE,
            code,
            policy.max_attempts,
            mask_value(f"gave up after {policy.max_attempts} tries: {error}")[:500],
        )

    def _reset(self) -> None:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            return
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop_connection()

    @staticmethod
    def _rejected(message: OutgoingMessage, code: int, reply, attempt: int) -> SendResult:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return SendResult(
            message.message_id, SendOutcome.REJECTED, code, attempt, mask_value(f"SMTP {code}: {text}")[:500]
        )
