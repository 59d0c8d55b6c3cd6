"""One settings object for every environment, read from `CRM_*` variables, with embedded defaults.

The defaults need nothing installed: SQLite files and a landing folder under `./.crm/`.
Production points the same variables at PostgreSQL and S3; credentials come from the
standard `AWS_*` variables (or the URL's password from the environment), never from the repo.
A wrong value fails at once with the variable's name (`SettingsError`, exit 3), and no
command creates a database or folder the operator did not ask for (a typo must not
silently start an empty warehouse).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from crm.core.errors import OperatorError, safe_url

DEFAULT_HOME = Path(".crm")
_URL_FIELDS = ("warehouse_url", "source_url")


class SettingsError(OperatorError):
    """A `CRM_*` variable with a value that cannot work."""


class Settings(BaseSettings):
    """Where the warehouse, the source system and the landing zone live."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore")

    home: Path = Field(DEFAULT_HOME, description="Folder for the embedded defaults.")
    warehouse_url: str | None = Field(None, description="SQLAlchemy URL of the CRM warehouse.")
    source_url: str | None = Field(None, description="SQLAlchemy URL of the source system database.")
    landing_url: str | None = Field(None, description="Local folder or s3://bucket/prefix of export files.")
    reports_url: str | None = Field(None, description="Local folder or s3://bucket/prefix for reports (Data Docs).")
    business_timezone: str = Field("UTC", description="Zone whose calendar days are the business dates.")
    source_chunk_rows: int = Field(100_000, gt=0, description="Rows per watermark chunk.")

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator(*_URL_FIELDS)
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("postgres://") or value.startswith("postgres+"):
            raise ValueError("postgres:// is not a SQLAlchemy URL scheme; use postgresql://")
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL like postgresql://user@host:5432/db or sqlite:///path.db") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"{url.get_backend_name()!r} is not supported; use postgresql:// or sqlite:///")
        return value

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name like UTC or Europe/Kyiv") from None
        return value

    @property
    def warehouse(self) -> str:
        """The warehouse URL, defaulting to a SQLite file in `home`."""
        return self.warehouse_url or f"sqlite:///{self.home / 'warehouse.db'}"

    @property
    def source(self) -> str:
        """The source-system URL, defaulting to a SQLite file in `home`."""
        return self.source_url or f"sqlite:///{self.home / 'source.db'}"

    @property
    def landing(self) -> str:
        """The landing zone, defaulting to a folder in `home`."""
        return self.landing_url or str(self.home / "landing")

    @property
    def reports(self) -> str:
        """Where reports are written, defaulting to a folder in `home`."""
        return self.reports_url or str(self.home / "reports")


def _settings_error(exc: ValidationError) -> SettingsError:
    """One line naming each wrong variable (URLs shown without their password)."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        value = error.get("input")
        shown = safe_url(value) if field in _URL_FIELDS and isinstance(value, str) else value
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"CRM_{field.upper()}={shown!s}: {message}")
    return SettingsError("; ".join(parts))


def get_settings() -> Settings:
    """Read the settings from the environment now (cheap; never cached across env changes)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise _settings_error(exc) from None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (reports, the Prefect UI's queries) work while a load writes;
    # foreign keys stay off: referential rules are checked and quarantined by ingestion.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


@lru_cache(maxsize=16)
def make_engine(url: str) -> Engine:
    """Create (once per URL and process) an engine with the settings each dialect needs (creates no file)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # An unreachable host fails in seconds instead of the OS's minutes.
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def engine_url(engine: Engine) -> str:
    """The URL that opens `engine` again (password included): for another process or another library's driver."""
    return engine.url.render_as_string(hide_password=False)


def engine_of(engine: Engine | str) -> Engine:
    """An engine, or the engine of a URL (`engine_url`, e.g. in a worker process)."""
    return make_engine(engine) if isinstance(engine, str) else engine


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().resolve()


def warehouse_engine(settings: Settings | None = None) -> Engine:
    """The warehouse engine; a SQLite warehouse may be created only in an existing folder or under CRM_HOME."""
    settings = settings or get_settings()
    path = sqlite_path(settings.warehouse)
    if path is not None and not path.parent.is_dir():
        if not path.is_relative_to(settings.home):
            raise SettingsError(
                f"CRM_WAREHOUSE_URL: the folder {path.parent} does not exist; check the path (it is not created)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.warehouse)


def source_engine(settings: Settings | None = None, *, create: bool = False) -> Engine:
    """The source-system engine; a SQLite source must exist unless `create` (only `crm simulate` creates one)."""
    settings = settings or get_settings()
    path = sqlite_path(settings.source)
    if path is not None and not path.exists():
        if not create:
            raise SettingsError(
                f"CRM_SOURCE_URL: the source database {path} does not exist; check the path "
                "(`crm simulate` creates a simulated one)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.source)
