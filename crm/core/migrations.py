"""Warehouse schema migrations (Alembic), callable from the CLI, flows and tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "infra" / "alembic.ini"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to `engine`."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["engine"] = engine
    return config


def upgrade_warehouse(engine: Engine, revision: str = "head") -> None:
    """Migrate the warehouse behind `engine` to `revision` (idempotent)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the warehouse is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
