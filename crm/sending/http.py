"""The HTTP JSON provider (push and SMS gateways): idempotency keys, retries with backoff, 429 and Retry-After.

One POST per message to `url` with the message id in `Idempotency-Key`, or JSON arrays of up to
`batch_size` messages to `batch_url`, answered per item (`[{"message_id": ..., "status":
"accepted" | "duplicate" | "rejected", "error": ...}]`, or the same list under `"results"`); each
item carries its message id, which a batch endpoint must treat as the item's idempotency key.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from datetime import datetime

import httpx

from crm.core.privacy import mask_value
from crm.sending.config import HttpProviderConfig
from crm.sending.messages import BatchResult, OutgoingMessage, SendResult
from crm.sending.pacing import TokenBucket, backoff_delay, parse_retry_after
from crm.sending.states import SendOutcome

ACCEPTED_ITEM_STATUSES = frozenset({"accepted", "duplicate", "queued", "sent", "ok"})
# 408 and 409 (a request with this key still in progress) are worth another try; other 4xx are final.
RETRYABLE_4XX = frozenset({408, 409, 425})


def _error_text(text: str) -> str:
    # Providers echo requests back in errors: never store an address in clear.
    return mask_value(text)[:500]


class HttpProvider:
    """Sends messages as JSON over HTTP through one pooled client shared by the dispatch workers."""

    def __init__(
        self,
        name: str,
        config: HttpProviderConfig,
        *,
        token: str | None = None,
        now: Callable[[], datetime] = datetime.now,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.batch_size = config.batch_size
        self.max_concurrency = config.max_concurrency
        self.now = now
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.bucket = TokenBucket(
            config.rate_per_second, capacity=max(config.rate_per_second, config.batch_size), sleep=sleep
        )
        headers = {"User-Agent": "crm-retention-dispatch"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            limits=httpx.Limits(
                max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency
            ),
            transport=transport,
        )

    # ------------------------------------------------------------------ protocol
    def send(self, messages: list[OutgoingMessage]) -> BatchResult:
        """Send `messages` (one batch request, or one request each); a result per message."""
        started = self.now()
        if self.config.batch_url:
            results = self._send_batch(messages)
            retried = max((r.requests for r in results), default=1) - 1  # one request carried them all
        else:
            results = [self._send_one(m) for m in messages]
            retried = sum(r.requests - 1 for r in results)
        return BatchResult(results=results, retried_requests=retried, started_at=started, finished_at=self.now())

    def finish(self, as_of) -> None:
        """Nothing to finalise: every accepted message is already at the provider."""

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    # ------------------------------------------------------------------ requests
    def _post(self, url: str, body: str, key: str, weight: int) -> tuple[httpx.Response | None, int, int | None, str]:
        """POST with retries; returns (final response or None when retries ran out, requests made, last status, error)."""
        policy = self.config.retry
        status: int | None = None
        error = ""
        for attempt in range(1, policy.max_attempts + 1):
            self.bucket.acquire(weight)
            try:
                response = self.client.post(
                    url, content=body.encode(), headers={"Idempotency-Key": key, "Content-Type": "application/json"}
                )
            except httpx.TimeoutException as exc:
                status, error = None, f"timeout: {type(exc).__name__}"
            except httpx.TransportError as exc:
                status, error = None, f"connection: {type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status == 429:
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                    if wait is None:
                        wait = backoff_delay(attempt, policy, self.rng)
                    # Every worker of this provider holds back, not only this one.
                    self.bucket.pause(min(wait, policy.max_retry_after_seconds))
                    error = f"429 throttled (Retry-After {response.headers.get('Retry-After')})"
                    continue
                if status < 400 or (status < 500 and status not in RETRYABLE_4XX):
                    return response, attempt, status, ""
                error = f"HTTP {status}: {response.text[:200]}"
            if attempt < policy.max_attempts:
                self.sleep(backoff_delay(attempt, policy, self.rng))
        return None, policy.max_attempts, status, _error_text(f"gave up after {policy.max_attempts} requests: {error}")

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        response, requests, status, error = self._post(
            self.config.url, message.payload_json(), message.message_id, weight=1
        )
        if response is None:
            return SendResult(message.message_id, SendOutcome.UNAVAILABLE, status, requests, error)
        if response.is_success:
            return SendResult(message.message_id, SendOutcome.SENT, status, requests)
        return SendResult(
            message.message_id, SendOutcome.REJECTED, status, requests, _error_text(f"HTTP {status}: {response.text}")
        )

    def _send_batch(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        ids = [m.message_id for m in messages]
        # The batch's own key lets a gateway drop an exact replay; items are deduplicated by their message ids.
        key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
        response, requests, status, error = self._post(
            self.config.batch_url, "[" + ",".join(m.payload_json() for m in messages) + "]", key, weight=len(messages)
        )
        if response is None:
            return [SendResult(i, SendOutcome.UNAVAILABLE, status, requests, error) for i in ids]
        if not response.is_success:
            text = _error_text(f"HTTP {status}: {response.text}")
            return [SendResult(i, SendOutcome.REJECTED, status, requests, text) for i in ids]
        try:
            answer = response.json()
            items = answer["results"] if isinstance(answer, dict) else answer
            by_id = {str(item["message_id"]): item for item in items}
        except (ValueError, KeyError, TypeError) as exc:
            text = _error_text(f"unreadable batch answer: {exc}")
            return [SendResult(i, SendOutcome.UNAVAILABLE, status, requests, text) for i in ids]
        results = []
        for i in ids:
            item = by_id.get(i)
            if item is None:
                results.append(
                    SendResult(i, SendOutcome.UNAVAILABLE, status, requests, "missing from the batch answer")
                )
            elif str(item.get("status", "")).lower() in ACCEPTED_ITEM_STATUSES:
                results.append(SendResult(i, SendOutcome.SENT, status, requests))
            else:
                reason = _error_text(str(item.get("error") or item.get("status")))
                results.append(SendResult(i, SendOutcome.REJECTED, status, requests, reason))
        return results
