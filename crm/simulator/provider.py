"""A local HTTP message provider for the simulated world, tests and benchmarks.

It honours idempotency (a message id it already delivered is acknowledged as `duplicate`, never
delivered twice), records every delivered message and every request, and can misbehave on
purpose: answer 503, throttle with 429 + Retry-After, or lose its answer after delivering.
Endpoints: `POST /messages` (one JSON message, `Idempotency-Key` = its message id),
`POST /messages/batch` (a JSON array, answered per item), `GET /stats`, `GET /delivered`.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd

RECEIVED_FIELDS = ("message_id", "as_of", "campaign_id", "step", "wave", "customer_id", "channel", "template_id")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A sender killed mid-request (the kill tests do it on purpose) is not the provider's error.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class LocalProvider:
    """A threaded HTTP provider on localhost that records what it delivered."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "local-provider",
        fail_share: float = 0.0,
        throttle_share: float = 0.0,
        retry_after_seconds: float = 0.0,
        lost_answer_share: float = 0.0,
        latency_seconds: float = 0.0,
        seed: int = 0,
        bearer_token: str | None = None,
    ) -> None:
        self.name = name
        self.bearer_token = bearer_token  # when set, a request without it is refused (401), as a real gateway does
        self.fail_share = fail_share
        self.throttle_share = throttle_share
        self.retry_after_seconds = retry_after_seconds
        self.lost_answer_share = lost_answer_share
        self.latency_seconds = latency_seconds
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.delivered: dict[str, dict] = {}
        self.arrivals: Counter[str] = Counter()  # every time a message id reached the provider
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.server = _QuietServer((host, port), self._handler())
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Base URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalProvider:
        """Serve in a background thread."""
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ what it saw
    def stats(self) -> dict:
        """Requests, delivered messages, ids that arrived more than once and the faults served."""
        with self.lock:
            return {
                "requests": self.requests,
                "delivered": len(self.delivered),
                "arrivals": sum(self.arrivals.values()),
                "repeated_ids": sum(1 for n in self.arrivals.values() if n > 1),
                "repeated_arrivals": sum(n - 1 for n in self.arrivals.values() if n > 1),
                "faults": dict(self.faults),
            }

    def delivered_frame(self) -> pd.DataFrame:
        """Every delivered message (without its address)."""
        with self.lock:
            rows = [{k: m.get(k) for k in RECEIVED_FIELDS} for m in self.delivered.values()]
        return pd.DataFrame(rows, columns=list(RECEIVED_FIELDS))

    # ------------------------------------------------------------------ serving
    def _deliver(self, message: dict) -> str:
        message_id = str(message.get("message_id") or "")
        with self.lock:
            self.arrivals[message_id] += 1
            if message_id in self.delivered:
                return "duplicate"
            self.delivered[message_id] = message
            return "accepted"

    def _fault(self) -> str | None:
        with self.lock:
            self.requests += 1
            u = self.rng.random()
            if u < self.fail_share:
                kind = "fail"
            elif u < self.fail_share + self.throttle_share:
                kind = "throttle"
            elif u < self.fail_share + self.throttle_share + self.lost_answer_share:
                kind = "lost_answer"
            else:
                return None
            self.faults[kind] += 1
            return kind

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: the test output is the evidence
                return

            def _answer(self, status: int, body, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/stats":
                    self._answer(200, provider.stats())
                elif self.path == "/delivered":
                    with provider.lock:
                        self._answer(200, {"ids": sorted(provider.delivered), "arrivals": dict(provider.arrivals)})
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if provider.latency_seconds:
                    time.sleep(provider.latency_seconds)
                if provider.bearer_token and self.headers.get("Authorization") != f"Bearer {provider.bearer_token}":
                    with provider.lock:
                        provider.faults["unauthorised"] += 1
                    self._answer(401, {"error": "missing or wrong bearer token"})
                    return
                fault = provider._fault()
                if fault == "fail":
                    self._answer(503, {"error": "temporarily unavailable"})
                    return
                if fault == "throttle":
                    self._answer(429, {"error": "slow down"}, {"Retry-After": f"{provider.retry_after_seconds:g}"})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:  # also a body cut short by a killed sender
                    self._answer(400, {"error": "not JSON"})
                    return
                if self.path == "/messages":
                    key = self.headers.get("Idempotency-Key")
                    if not isinstance(body, dict) or key != body.get("message_id"):
                        self._answer(400, {"error": "Idempotency-Key must be the message id"})
                        return
                    status = provider._deliver(body)
                    answer = (202 if status == "accepted" else 200), {"message_id": key, "status": status}
                elif self.path == "/messages/batch":
                    if not isinstance(body, list):
                        self._answer(400, {"error": "a JSON array of messages"})
                        return
                    items = [{"message_id": m.get("message_id"), "status": provider._deliver(m)} for m in body]
                    answer = 200, items
                else:
                    self._answer(404, {"error": "not found"})
                    return
                if fault == "lost_answer":  # delivered, but the sender never learns it: it must retry the same key
                    self._answer(502, {"error": "bad gateway"})
                    return
                self._answer(*answer)

        return Handler
