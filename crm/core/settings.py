"""One settings object for every environment, read from `CRM_*` variables, with embedded defaults.

The defaults need nothing installed: SQLite files and a landing folder under `./.crm/`.
Production points the same variables at PostgreSQL and S3; credentials come from the
standard `AWS_*` variables (or the URL's password from the environment), never from the repo.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, create_engine, event

DEFAULT_HOME = Path(".crm")


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


def get_settings() -> Settings:
    """Read the settings from the environment now (cheap; never cached across env changes)."""
    return Settings()


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
    """Create (once per URL and process) an engine with the settings each dialect needs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def warehouse_engine(settings: Settings | None = None) -> Engine:
    """The warehouse engine for these settings."""
    return make_engine((settings or get_settings()).warehouse)


def source_engine(settings: Settings | None = None) -> Engine:
    """The source-system engine for these settings."""
    return make_engine((settings or get_settings()).source)
