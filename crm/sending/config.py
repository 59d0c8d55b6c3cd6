"""`config/sending.yaml`: a provider per channel, its limits, retries and credentials (by reference), and prices."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from crm.core.config import load_config
from crm.core.contracts import Channel
from crm.sending.states import ProviderKind

_NAME = r"^[a-z0-9][a-z0-9-]{0,40}$"


class Credential(BaseModel):
    """A secret by reference: an environment variable or a Prefect Secret block, never the value itself."""

    env: str | None = Field(None, description="Environment variable holding the value.")
    secret_block: str | None = Field(None, description="Name of a Prefect Secret block holding the value.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Credential:
        if (self.env is None) == (self.secret_block is None):
            raise ValueError("give exactly one of `env` or `secret_block`")
        return self


class RetryPolicy(BaseModel):
    """Retries of one request on timeouts, 5xx, 429 and lost connections: bounded exponential backoff with jitter."""

    max_attempts: int = Field(5, ge=1, le=20, description="Requests per message or batch, the first included.")
    backoff_seconds: float = Field(0.5, ge=0, description="Delay before the first retry; doubles each time.")
    backoff_max_seconds: float = Field(30.0, ge=0, description="Cap of one backoff delay.")
    max_retry_after_seconds: float = Field(120.0, ge=0, description="Cap of a provider's Retry-After.")


class _Limits(BaseModel):
    batch_size: int = Field(100, ge=1, le=10_000, description="Messages per request (HTTP batch) or per commit.")
    rate_per_second: float = Field(100.0, gt=0, description="Messages per second to this provider (token bucket).")
    max_concurrency: int = Field(4, ge=1, le=64, description="Requests (or SMTP connections) in flight at once.")
    retry: RetryPolicy = RetryPolicy()


class HttpProviderConfig(_Limits):
    """A JSON-over-HTTP gateway (push, SMS): one POST per message, or JSON arrays to a batch endpoint."""

    kind: Literal[ProviderKind.HTTP] = ProviderKind.HTTP
    url: str = Field(description="Endpoint taking one message per POST (Idempotency-Key: the message id).")
    batch_url: str | None = Field(None, description="Endpoint taking a JSON array; answers per item.")
    connect_timeout_seconds: float = Field(5.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0, description="Read timeout of one request.")
    token: Credential | None = Field(None, description="Bearer token for the Authorization header.")


class SmtpProviderConfig(_Limits):
    """An SMTP relay for e-mail: one connection per worker, reused across its messages."""

    kind: Literal[ProviderKind.SMTP] = ProviderKind.SMTP
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    ca_file: str | None = Field(
        None,
        description="PEM file of the CA that signed the relay's certificate (a private CA); default: the system's.",
    )
    username: str | None = None
    password: Credential | None = None
    from_address: str = "crm@example.com"
    message_id_domain: str = Field("crm.example.com", description="Message-ID: <message id@this domain>.")
    timeout_seconds: float = Field(30.0, gt=0)
    batch_size: int = Field(50, ge=1, le=10_000)
    rate_per_second: float = Field(20.0, gt=0)
    max_concurrency: int = Field(1, ge=1, le=64)

    @model_validator(mode="after")
    def _password_needs_user(self) -> SmtpProviderConfig:
        if self.password is not None and not self.username:
            raise ValueError("`password` needs `username`")
        return self


class FileProviderConfig(BaseModel):
    """A CSV export per day and channel for an external platform: `<url>/exports/<as_of>/<channel>.csv`."""

    kind: Literal[ProviderKind.FILE] = ProviderKind.FILE
    url: str | None = Field(None, description="Folder or s3://bucket/prefix; default <CRM_HOME>/artifacts.")
    batch_size: int = Field(5_000, ge=1, le=1_000_000)
    rate_per_second: float = Field(1e9, gt=0)
    max_concurrency: int = Field(1, ge=1, le=1)


ProviderConfig = Annotated[HttpProviderConfig | SmtpProviderConfig | FileProviderConfig, Field(discriminator="kind")]


class ChannelConfig(BaseModel):
    """Which provider sends a channel and what one message costs."""

    provider: str
    cost_minor: int = Field(ge=0, description="Price of one message in minor units (kopecks).")


class SendingConfig(BaseModel):
    """`config/sending.yaml`: providers by name, the provider and price of each channel, dispatch sizes."""

    providers: dict[Annotated[str, Field(pattern=_NAME)], ProviderConfig] = {"file-export": FileProviderConfig()}
    channels: dict[Channel, ChannelConfig] = {
        Channel.PUSH: ChannelConfig(provider="file-export", cost_minor=1),
        Channel.EMAIL: ChannelConfig(provider="file-export", cost_minor=3),
        Channel.SMS: ChannelConfig(provider="file-export", cost_minor=150),
    }
    chunk_rows: int = Field(2_000, ge=1, le=100_000, description="Messages claimed per transaction.")
    lease_seconds: float = Field(
        60.0,
        ge=60,  # Prefect's server accepts leases of 1 minute to 1 day
        le=86_400,
        description="Lease of a provider's Prefect concurrency slot (a killed run frees it after this).",
    )

    @model_validator(mode="after")
    def _providers_exist(self) -> SendingConfig:
        for channel, spec in self.channels.items():
            if spec.provider not in self.providers:
                raise ValueError(f"channels.{channel}.provider: no provider named {spec.provider!r}")
        return self

    def channels_of(self, provider: str) -> list[str]:
        """The channels a provider sends, in cascade order."""
        return [str(c) for c in Channel if c in self.channels and self.channels[c].provider == provider]

    def used_providers(self) -> list[str]:
        """Names of the providers some channel uses, in cascade order of their first channel."""
        return list(dict.fromkeys(self.channels[c].provider for c in Channel if c in self.channels))

    def prices(self) -> dict[str, int]:
        """Price per message of each configured channel."""
        return {str(c): spec.cost_minor for c, spec in self.channels.items()}


def load_sending_config() -> SendingConfig:
    """The sending configuration from `config/sending.yaml` (defaults: every channel to the file export)."""
    return load_config("sending", SendingConfig)
