"""Helpers for campaign tests: a month of planning on a simulated company, campaign folders of a test's own."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import yaml
from sqlalchemy import Engine, select

from crm.campaigns import plan_campaigns
from crm.core.db import read_frame
from tests.sending import set_gate


def write_campaigns(folder: Path, *campaigns: dict) -> Path:
    """Campaign files of a test's own (`<id>.yaml`); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for campaign in campaigns:
        (folder / f"{campaign['id']}.yaml").write_text(yaml.safe_dump(campaign))
    return folder


def plan_days(engine: Engine, first: date, last: date, **kwargs) -> list:
    """Open the gate and plan every day from `first` to `last`, oldest first."""
    results = []
    day = first
    while day <= last:
        set_gate(engine, day)
        results.append(plan_campaigns(engine, day, **kwargs))
        day += timedelta(days=1)
    return results


def table(engine: Engine, t) -> pd.DataFrame:
    """A whole table as a frame."""
    with engine.connect() as conn:
        return read_frame(conn, select(t))
