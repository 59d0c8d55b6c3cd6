"""Cheap checks before any work: the settings are valid and the warehouse, source and landing zone answer.

A run that cannot reach its database fails here in a second, with one line that names the
variable to check, instead of after retries and tracebacks halfway through a night.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from crm.core.errors import InfrastructureError, infrastructure_failure, reason, safe_url
from crm.core.settings import Settings, get_settings, source_engine, warehouse_engine
from crm.core.storage import open_store


def check_database(engine: Engine, *, role: str, variable: str, url: str | None = None) -> None:
    """Connect and run `SELECT 1`; an unreachable server raises `InfrastructureError` naming `variable`."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        if infrastructure_failure(exc) is None:
            raise
        raise InfrastructureError(
            f"cannot reach the {role} database at {safe_url(url or str(engine.url))} ({reason(exc)}); "
            f"check {variable} and that the server is up"
        ) from exc


def preflight(
    settings: Settings | None = None, *, source: bool = True, landing: bool = True, create_source: bool = False
) -> Settings:
    """Validate the settings and reach the warehouse (and the source and landing zone if needed); return them."""
    settings = settings or get_settings()
    warehouse = warehouse_engine(settings)
    check_database(warehouse, role="warehouse", variable="CRM_WAREHOUSE_URL", url=settings.warehouse)
    if source:
        engine = source_engine(settings, create=create_source)
        check_database(engine, role="source", variable="CRM_SOURCE_URL", url=settings.source)
    if landing:
        open_store(settings.landing).check_reachable("CRM_LANDING_URL")
    return settings
