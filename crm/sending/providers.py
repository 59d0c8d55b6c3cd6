"""The one small interface every channel provider implements, the file export, and the factory from config."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Protocol

import pandas as pd

from crm.core.settings import get_settings
from crm.core.storage import ObjectStore, open_store
from crm.sending.config import (
    Credential,
    FileProviderConfig,
    HttpProviderConfig,
    ProviderConfig,
    SendingConfig,
    SmtpProviderConfig,
)
from crm.sending.http import HttpProvider
from crm.sending.messages import EXPORT_COLUMNS, BatchResult, OutgoingMessage, SendResult, export_frame
from crm.sending.smtp import SmtpProvider
from crm.sending.states import SendOutcome

EXPORTS = "exports"


class Provider(Protocol):
    """What dispatch needs from a provider: send a batch (from up to `max_concurrency` threads), finish, close."""

    name: str
    batch_size: int
    max_concurrency: int

    def send(self, messages: list[OutgoingMessage]) -> BatchResult:
        """Send a batch; one result per message (an exception aborts the run, leaving the batch to be re-sent)."""

    def finish(self, as_of: date) -> None:
        """Make the run's work visible where it needs finishing (the file export's day files)."""

    def close(self) -> None:
        """Release connections."""


def export_key(as_of: date, name: str) -> str:
    """Key of a day's export for one channel (or one local provider): `exports/<as_of>/<name>.csv`."""
    return f"{EXPORTS}/{as_of.isoformat()}/{name}.csv"


def _part_key(as_of: date, channel: str, ids: list[str]) -> str:
    # Named by its content: the same batch written again replaces itself instead of adding a copy.
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
    return f"{EXPORTS}/{as_of.isoformat()}/parts/{channel}/{min(ids)}-{digest}.csv"


class FileExportProvider:
    """Hands lists to an external platform: a CSV per day and channel, `exports/<as_of>/<channel>.csv`.

    Each batch is first written as a part (`exports/<as_of>/parts/<channel>/...`); `finish` merges a
    day's parts into the channel's file, one row per message id, replacing it whole, so a run killed
    between the two leaves the day's file complete after the next run and never with a message twice.
    """

    def __init__(
        self, name: str, config: FileProviderConfig, store: ObjectStore, *, now: Callable[[], datetime] = datetime.now
    ) -> None:
        self.name = name
        self.config = config
        self.store = store
        self.batch_size = config.batch_size
        self.max_concurrency = 1
        self.now = now
        self.touched: set[date] = set()

    def send(self, messages: list[OutgoingMessage]) -> BatchResult:
        """Write the batch as part files (one per day and channel)."""
        started = self.now()
        frame = export_frame(messages)
        for (day, channel), part in frame.groupby(["as_of", "channel"], sort=True):
            as_of = date.fromisoformat(day)
            self.store.write_bytes(
                _part_key(as_of, channel, part["message_id"].tolist()), part.to_csv(index=False).encode()
            )
            self.touched.add(as_of)
        results = [SendResult(m.message_id, SendOutcome.SENT, None, 1) for m in messages]
        return BatchResult(results=results, started_at=started, finished_at=self.now())

    def finish(self, as_of: date) -> None:
        """Merge the parts of `as_of` (and of every day this run wrote) into the day's channel files."""
        for day in sorted(self.touched | {as_of}):
            prefix = f"{EXPORTS}/{day.isoformat()}/parts/"
            by_channel: dict[str, list[pd.DataFrame]] = {}
            for key, _size in self.store.list_keys(prefix):
                channel = key[len(prefix) :].split("/", 1)[0]
                by_channel.setdefault(channel, []).append(
                    pd.read_csv(io.BytesIO(self.store.read_bytes(key)), dtype=str, keep_default_na=False)
                )
            for channel, parts in by_channel.items():
                merged = pd.concat(parts, ignore_index=True)[list(EXPORT_COLUMNS)]
                merged = merged.drop_duplicates("message_id").sort_values("message_id", kind="stable")
                self.store.write_bytes(export_key(day, channel), merged.to_csv(index=False).encode())
        self.touched.clear()

    def close(self) -> None:
        """Nothing to release."""


def default_export_url() -> str:
    """Where the file export writes by default: `<CRM_HOME>/artifacts`."""
    return str(get_settings().home / "artifacts")


def file_export_url(config: SendingConfig) -> str:
    """Where the (first) file-export provider writes: what an external platform, or the simulated world, reads."""
    for spec in config.providers.values():
        if isinstance(spec, FileProviderConfig):
            return spec.url or default_export_url()
    return default_export_url()


def credential_names(config: ProviderConfig) -> dict[str, Credential]:
    """The credentials a provider needs, by role (`token`, `password`)."""
    found = {}
    for role in ("token", "password"):
        credential = getattr(config, role, None)
        if credential is not None:
            found[role] = credential
    return found


class MissingCredentialError(ValueError):
    """A provider's credential could not be found where the configuration says it is."""


def resolve_credentials(
    name: str, config: ProviderConfig, load_secret_block: Callable[[str], str] | None = None
) -> dict[str, str]:
    """The values of a provider's credentials by role: from the environment, or a Secret block through `load_secret_block`."""
    values = {}
    for role, credential in credential_names(config).items():
        if credential.env is not None:
            value = os.environ.get(credential.env)
            where = f"environment variable {credential.env}"
        else:
            if load_secret_block is None:
                raise MissingCredentialError(
                    f"provider {name}: {role} is in a Secret block, and no block loader was given"
                )
            value = load_secret_block(credential.secret_block)
            where = f"Secret block {credential.secret_block}"
        if not value:
            raise MissingCredentialError(f"provider {name}: {role} not found in the {where}")
        values[role] = value
    return values


def build_provider(
    name: str,
    config: ProviderConfig,
    *,
    secrets: dict[str, str] | None = None,
    now: Callable[[], datetime] = datetime.now,
    sleep: Callable[[float], None] = time.sleep,
) -> Provider:
    """A provider from its configuration; `secrets` holds the resolved credentials by role (`token`, `password`)."""
    secrets = secrets or {}
    if isinstance(config, HttpProviderConfig):
        return HttpProvider(name, config, token=secrets.get("token"), now=now, sleep=sleep)
    if isinstance(config, SmtpProviderConfig):
        return SmtpProvider(name, config, password=secrets.get("password"), now=now, sleep=sleep)
    if isinstance(config, FileProviderConfig):
        return FileExportProvider(name, config, open_store(config.url or default_export_url()), now=now)
    raise TypeError(f"unknown provider configuration {type(config).__name__}")
