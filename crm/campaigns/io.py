"""Campaign planning against the warehouse: entries, decisions with reasons, the outbox, the purge archive.

`plan_campaigns(engine, as_of)` is a day's planning, idempotent: re-running a day replaces that
day's entries, exits and decisions with the same ones (the control group is a hash, message ids
are hashes), and the outbox ignores messages it already holds.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, MetaData, Table, delete, insert, inspect, select, update

from crm.campaigns import queries as q
from crm.campaigns import rules
from crm.campaigns.config import Campaign, CampaignsConfig, load_campaigns, load_campaigns_config
from crm.campaigns.states import Conversion, Decision, ExitReason, Trigger
from crm.campaigns.uplift import attribute_last_click, estimate_uplift, experiment_table
from crm.core.contracts import CHANNELS, ApplicationStatus, Channel
from crm.core.dates import end_of
from crm.core.db import fill_ids, id_table, read_frame, write_frame
from crm.core.gate import read_send_gate
from crm.core.settings import get_settings
from crm.core.storage import open_store
from crm.segments import SegmentChange, segment_snapshot
from crm.sending import enqueue_messages, load_sending_config, message_ids, read_funnel
from models.campaigns import campaign_decisions, campaign_entries, campaign_runs, purged_customers

_IDS_PER_QUERY = 10_000
ARCHIVE_PREFIX = "archive/purged"
DECISION_COLUMNS = [c.name for c in campaign_decisions.columns]


@dataclass
class PlanResult:
    """What a day's planning did."""

    as_of: date
    run_id: str
    gate_open: bool
    forced: bool
    refused: bool
    gate_reasons: list[str] = field(default_factory=list)
    entered: dict[str, int] = field(default_factory=dict)
    exited: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    skipped: int = 0
    enqueued: int = 0
    purged: int = 0
    archive_key: str | None = None

    def as_dict(self) -> dict:
        """Plain values (a Prefect result, a log line)."""
        return asdict(self) | {"as_of": self.as_of.isoformat()}


def artifacts_url() -> str:
    """The artifacts location (the purge archive lives under it): `<CRM_HOME>/artifacts`."""
    return str(get_settings().home / "artifacts")


def _ids(frame: pd.DataFrame) -> np.ndarray:
    if frame.empty:
        return np.array([], dtype=np.int64)
    return frame["customer_id"].astype("int64").to_numpy()


def _has_table(conn: Connection, name: str) -> bool:
    return inspect(conn).has_table(name)


def _reflect(conn: Connection, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=conn)


def _read_for(conn: Connection, stmt, customer_ids: np.ndarray) -> pd.DataFrame:
    """`stmt` restricted to customers: an IN list for a few, a temporary table of ids joined once for many
    (a night after a launch has hundreds of thousands of candidates: one query, not a hundred IN lists)."""
    sub = stmt.subquery()
    ids = np.unique(customer_ids)
    if len(ids) <= _IDS_PER_QUERY:
        return read_frame(conn, select(sub).where(sub.c.customer_id.in_(ids.tolist())))
    table = id_table(conn, "_campaign_ids")
    try:
        fill_ids(conn, table, ids)
        return read_frame(conn, select(sub).where(sub.c.customer_id.in_(select(table.c.customer_id))))
    finally:
        table.drop(conn)


# --------------------------------------------------------------------------- audiences


def trigger_audience(conn: Connection, campaign: Campaign, as_of: date, config: CampaignsConfig) -> np.ndarray:
    """Customer ids the campaign's trigger fires for on `as_of` (before filters and the active base)."""
    a = campaign.audience
    day = as_of - timedelta(days=a.days_after)
    if a.trigger is Trigger.REGISTERED:
        return _ids(read_frame(conn, q.customers_registered_on(as_of, day)))
    if a.trigger is Trigger.APP_NOT_AUTHORISED:
        return _ids(read_frame(conn, q.installed_not_authorised(as_of, day)))
    if a.trigger is Trigger.APPLICATION_ABANDONED:
        return _ids(read_frame(conn, q.applications_changed_to(as_of, ApplicationStatus.ABANDONED, day, still=True)))
    if a.trigger is Trigger.APPLICATION_APPROVED:
        return _ids(read_frame(conn, q.applications_changed_to(as_of, ApplicationStatus.APPROVED, day, still=True)))
    if a.trigger is Trigger.FIRST_LOAN_REPAID:
        return _ids(read_frame(conn, q.first_loan_repaid_on(as_of, day)))
    if a.trigger is Trigger.BIRTHDAY:
        target = as_of + timedelta(days=a.days_before)
        month_days = [f"{target:%m-%d}"] + (["02-29"] if f"{target:%m-%d}" == "02-28" else [])
        people = read_frame(conn, q.customers_with_birthdays(as_of, conn.dialect.name, month_days))
        if people.empty:
            return _ids(people)
        return _ids(people[rules.birthday_in(people["birth_date"], as_of, a.days_before)])
    if a.trigger is Trigger.SEGMENT_ENTERED:
        return _segment_entries(conn, a.segments, as_of, config)
    if a.trigger is Trigger.LOYALTY_EVENT:
        if not _has_table(conn, "loyalty_events"):
            return np.array([], dtype=np.int64)  # loyalty not installed yet: nobody
        t = _reflect(conn, "loyalty_events")
        stmt = select(t.c.customer_id).where(t.c.as_of == as_of, t.c.event.in_(a.loyalty_events)).distinct()
        return _ids(read_frame(conn, stmt))
    raise ValueError(f"unknown trigger {a.trigger}")


def _segment_entries(conn: Connection, segments: Sequence[str], as_of: date, config: CampaignsConfig) -> np.ndarray:
    if _has_table(conn, "segment_events"):
        t = _reflect(conn, "segment_events")
        stmt = select(t.c.customer_id).where(
            t.c.as_of == as_of, t.c.change == SegmentChange.ENTERED.value, t.c.segment.in_(list(segments))
        )
        return np.unique(_ids(read_frame(conn, stmt)))
    # Without the segments capability: lifecycle entry by days since the last repayment.
    days = {
        "pre_churn": config.lifecycle_fallback.pre_churn_days,
        "churn": config.lifecycle_fallback.churn_days,
        "deep_churn": config.lifecycle_fallback.deep_churn_days,
    }
    found = [_ids(read_frame(conn, q.inactive_since_repayment(as_of, days[s]))) for s in segments if s in days]
    return np.unique(np.concatenate(found)) if found else np.array([], dtype=np.int64)


def filter_audience(conn: Connection, campaign: Campaign, as_of: date, ids: np.ndarray) -> np.ndarray:
    """Keep the customers that pass the campaign's segment and churn-decile filters."""
    a = campaign.audience
    if len(ids) == 0:
        return ids
    if a.churn_deciles:
        from models.churn import churn_scores

        latest = (
            select(churn_scores.c.as_of)
            .where(churn_scores.c.as_of <= as_of)
            .order_by(churn_scores.c.as_of.desc())
            .limit(1)
            .scalar_subquery()
        )
        stmt = select(churn_scores.c.customer_id).where(
            churn_scores.c.as_of == latest, churn_scores.c.decile.in_(a.churn_deciles)
        )
        ids = np.intersect1d(ids, _ids(_read_for(conn, stmt, ids)))
    if a.lifecycle_states or a.rfm_cells:
        snapshot = _segment_snapshot(conn, as_of, ids)
        if snapshot is None:
            return np.array([], dtype=np.int64)  # a filter that cannot be read plans nobody (never everybody)
        keep = np.ones(len(snapshot), dtype=bool)
        if a.lifecycle_states:
            keep &= snapshot["lifecycle_state"].isin(a.lifecycle_states).to_numpy()
        if a.rfm_cells:
            keep &= snapshot["rfm_cell"].astype(str).isin(a.rfm_cells).to_numpy()
        ids = np.intersect1d(ids, _ids(snapshot[keep]))
    return ids


def _segment_snapshot(conn: Connection, as_of: date, ids: np.ndarray) -> pd.DataFrame | None:
    if not _has_table(conn, "segment_memberships"):
        return None
    return _read_for(conn, segment_snapshot(as_of), ids)


# --------------------------------------------------------------------------- entries and exits


def _reset_day(conn: Connection, as_of: date) -> None:
    """Undo a previous run of the same day (entries, exits, decisions, purges), so a re-run gives the same."""
    conn.execute(delete(campaign_decisions).where(campaign_decisions.c.as_of == as_of))
    conn.execute(delete(campaign_entries).where(campaign_entries.c.entered_on == as_of))
    conn.execute(
        update(campaign_entries).where(campaign_entries.c.exited_on == as_of).values(exited_on=None, exit_reason=None)
    )
    conn.execute(
        delete(purged_customers).where(purged_customers.c.purged_on == as_of, purged_customers.c.restored_on.is_(None))
    )


def new_entries(
    conn: Connection, campaigns: Sequence[Campaign], as_of: date, config: CampaignsConfig, excluded: np.ndarray
) -> pd.DataFrame:
    """Who enters each campaign on `as_of`: the trigger, the filters, not excluded (purged, technical), not in already."""
    frames = []
    for campaign in campaigns:
        ids = np.setdiff1d(
            filter_audience(conn, campaign, as_of, trigger_audience(conn, campaign, as_of, config)), excluded
        )
        if len(ids) == 0:
            continue
        # Only the day's audience's past entries: the work follows the day, not the campaign's whole history.
        mine = _read_for(conn, q.last_entries([campaign.id]), ids)
        if not mine.empty:  # a backfill of an older day sees only the entries before it
            mine = mine[pd.to_datetime(mine["entered_on"]) < pd.Timestamp(as_of)]
        wave = pd.Series(1, index=ids, dtype="int64")
        if not mine.empty:
            mine = mine.assign(
                entered_on=pd.to_datetime(mine["entered_on"]), exited_on=pd.to_datetime(mine["exited_on"])
            )
            last = mine.sort_values("wave").groupby("customer_id").tail(1).set_index("customer_id").reindex(ids)
            known = last["wave"].notna().to_numpy()
            still_open = known & (last["exited_on"].isna() | (last["exited_on"] > pd.Timestamp(as_of))).to_numpy()
            since = (pd.Timestamp(as_of) - last["entered_on"]).dt.days.to_numpy()
            again = (
                known & ~still_open & (since >= campaign.reentry_after_days)
                if campaign.reentry_after_days
                else np.zeros(len(ids), dtype=bool)
            )
            allowed = ~known | again
            wave = pd.Series(np.where(known, last["wave"].fillna(0).to_numpy() + 1, 1).astype("int64"), index=ids)
            ids, wave = ids[allowed], wave[allowed]
        if len(ids) == 0:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "campaign_id": campaign.id,
                    "customer_id": ids,
                    "wave": wave.to_numpy(),
                    "campaign_version": campaign.version,
                    "entered_on": pd.Timestamp(as_of),
                    "group": rules.assign_groups(ids, campaign.id, campaign.holdout_share),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["campaign_id", "customer_id", "wave", "campaign_version", "entered_on", "group"])
    return pd.concat(frames, ignore_index=True)


def close_entries(conn: Connection, campaigns: Sequence[Campaign], as_of: date) -> dict[str, int]:
    """Exit open entries: converted (a conversion since entering), expired (`max_days`), completed (chain over)."""
    entries = read_frame(conn, q.open_entries(as_of))
    exited: dict[str, int] = {}
    if entries.empty:
        return exited
    entries["entered_on"] = pd.to_datetime(entries["entered_on"])
    entries = entries[entries["entered_on"] < pd.Timestamp(as_of)]  # today's entrants stay for today
    earliest = entries["entered_on"].min() if not entries.empty else pd.Timestamp(as_of)
    kinds = sorted({k for c in campaigns for k in c.exit_on}, key=str)
    events = pd.DataFrame(columns=["customer_id", "kind", "at"])
    if kinds and not entries.empty:
        events = _read_for(conn, q.conversions(as_of, kinds, earliest.date()), _ids(entries))
    reasons = pd.Series(None, index=entries.index, dtype=object)
    if not events.empty:
        events["at"] = pd.to_datetime(events["at"])
        joined = entries.reset_index().merge(events, on="customer_id")
        allowed = pd.DataFrame(
            [(c.id, str(k)) for c in campaigns for k in c.exit_on], columns=["campaign_id", "kind"]
        ).assign(_exit=True)
        kind_ok = joined.merge(allowed, on=["campaign_id", "kind"], how="left")["_exit"].fillna(False).to_numpy(bool)
        # A loan counts from the day of entering (it is never the trigger); applications and orders from the day after.
        since = np.where(
            joined["kind"] == Conversion.LOAN.value, joined["entered_on"], joined["entered_on"] + pd.Timedelta(days=1)
        )
        hit = kind_ok & (joined["at"].to_numpy() >= since) & (joined["at"] < pd.Timestamp(end_of(as_of))).to_numpy()
        reasons.loc[joined.loc[hit, "index"].unique()] = ExitReason.CONVERTED.value
    elapsed = (pd.Timestamp(as_of) - entries["entered_on"]).dt.days
    max_days = entries["campaign_id"].map({c.id: c.max_days for c in campaigns}).astype("float")
    last_day = entries["campaign_id"].map({c.id: c.last_day for c in campaigns}).astype("float")
    reasons = reasons.mask(reasons.isna() & (elapsed >= max_days), ExitReason.EXPIRED.value)
    purging = entries["campaign_id"].map({c.id: c.purge is not None for c in campaigns}).fillna(False).astype(bool)
    reasons = reasons.mask(reasons.isna() & (elapsed > last_day) & ~purging, ExitReason.COMPLETED.value)
    done = entries[reasons.notna()].assign(exit_reason=reasons[reasons.notna()])
    for reason, part in done.groupby("exit_reason"):
        for campaign_id, rows in part.groupby("campaign_id"):
            ids = rows["customer_id"].astype("int64").tolist()
            waves = dict(zip(rows["customer_id"].astype("int64"), rows["wave"].astype("int64"), strict=True))
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start : start + _IDS_PER_QUERY]
                conn.execute(
                    update(campaign_entries)
                    .where(
                        campaign_entries.c.campaign_id == campaign_id,
                        campaign_entries.c.customer_id.in_(chunk),
                        campaign_entries.c.exited_on.is_(None),
                    )
                    .values(exited_on=as_of, exit_reason=reason)
                )
            exited[f"{campaign_id}:{reason}"] = len(waves)
    return exited


# --------------------------------------------------------------------------- the purge


def purge_candidates(conn: Connection, campaigns: Sequence[Campaign], as_of: date) -> pd.DataFrame:
    """Who leaves the active base on `as_of`: deep-churn entries without a conversion `after_days` after entering,
    and customers whose every application was rejected (when the campaign asks)."""
    frames = []
    for campaign in campaigns:
        if campaign.purge is None:
            continue
        e = campaign_entries
        due = read_frame(
            conn,
            select(e.c.customer_id).where(
                e.c.campaign_id == campaign.id,
                e.c.entered_on <= as_of - timedelta(days=campaign.purge.after_days),  # a missed day catches up
                e.c.exit_reason.is_(None),
            ),
        )
        frames.append(due.assign(reason="deep_churn_no_response", campaign_id=campaign.id))
        if campaign.purge.rejected_applicants:
            rejected = read_frame(
                conn, q.rejected_applicants(as_of, as_of - timedelta(days=campaign.purge.rejected_after_days))
            )
            rejected = _not_restored_since(conn, rejected, as_of)
            frames.append(rejected[["customer_id"]].assign(reason="rejected_applicant", campaign_id=campaign.id))
    if not frames:
        return pd.DataFrame(columns=["customer_id", "reason", "campaign_id"])
    out = pd.concat(frames, ignore_index=True)
    if out.empty:
        return out
    out["customer_id"] = out["customer_id"].astype("int64")
    return out.drop_duplicates("customer_id")


def _not_restored_since(conn: Connection, rejected: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Drop rejected applicants an operator restored after their last application: a restore is not undone by the
    same cause the next night (a new application, rejected again, may purge them again later)."""
    if rejected.empty:
        return rejected
    restored = read_frame(conn, q.restored_by(as_of))
    if restored.empty:
        return rejected
    back = rejected.merge(restored, on="customer_id", how="left")
    since = pd.to_datetime(back["restored_on"])
    keep = since.isna() | (pd.to_datetime(back["last_applied_at"]) >= since)
    return rejected[keep.to_numpy()]


def purge(conn: Connection, candidates: pd.DataFrame, as_of: date, already: np.ndarray) -> tuple[int, str | None]:
    """Archive the candidates to the artifacts location (ids, reason, their campaign entries), then mark them purged.

    Nothing is deleted: the warehouse keeps every row; the archive file and `purged_customers`
    say who left the active base, and `restore_customers` brings them back.
    """
    todo = candidates[~candidates["customer_id"].isin(already)] if not candidates.empty else candidates
    if todo.empty:
        return 0, None
    key = f"{ARCHIVE_PREFIX}/{as_of.isoformat()}.csv"
    entries = _read_for(conn, select(campaign_entries), todo["customer_id"].to_numpy())
    # One line per customer and campaign entry they had (or one line without): ids, days and groups, no contacts.
    archive = todo.merge(entries.rename(columns={"campaign_id": "entry_campaign_id"}), on="customer_id", how="left")
    archive.insert(1, "purged_on", as_of.isoformat())
    buffer = io.StringIO()
    archive.to_csv(buffer, index=False)
    open_store(artifacts_url()).write_bytes(key, buffer.getvalue().encode())  # the archive first, then the mark
    rows = todo.assign(purged_on=pd.Timestamp(as_of), archive_key=key, restored_on=pd.NaT)
    write_frame(conn, purged_customers, rows[[c.name for c in purged_customers.columns]], on_conflict="update")
    for start in range(0, len(todo), _IDS_PER_QUERY):
        chunk = todo["customer_id"].iloc[start : start + _IDS_PER_QUERY].tolist()
        conn.execute(
            update(campaign_entries)
            .where(campaign_entries.c.customer_id.in_(chunk), campaign_entries.c.exited_on.is_(None))
            .values(exited_on=as_of, exit_reason=ExitReason.PURGED.value)
        )
    return len(todo), key


def restore_customers(engine: Engine, as_of: date, *, archive_key: str | None = None, customer_ids=None) -> int:
    """Bring purged customers back into the active base from `as_of` (by archive file or by id); returns how many."""
    if archive_key is None and customer_ids is None:
        raise ValueError("give an archive key or customer ids")
    ids: list[int] = []
    if archive_key is not None:
        frame = pd.read_csv(io.BytesIO(open_store(artifacts_url()).read_bytes(archive_key)))
        ids += frame["customer_id"].astype("int64").tolist()
    if customer_ids is not None:
        ids += [int(i) for i in customer_ids]
    restored = 0
    with engine.begin() as conn:
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            result = conn.execute(
                update(purged_customers)
                .where(
                    purged_customers.c.customer_id.in_(chunk),
                    purged_customers.c.restored_on.is_(None),
                    purged_customers.c.purged_on <= as_of,
                )
                .values(restored_on=as_of)
            )
            restored += max(result.rowcount, 0)
    return restored


# --------------------------------------------------------------------------- decisions


def candidate_decisions(
    conn: Connection, campaigns: Sequence[Campaign], as_of: date, config: CampaignsConfig, excluded: np.ndarray
) -> pd.DataFrame:
    """Every candidate message of the day with its decision and reason (nothing written)."""
    entries = read_frame(conn, q.open_entries(as_of))
    if entries.empty:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    entries = entries[~entries["customer_id"].isin(excluded)]
    due = rules.due_touches(entries, rules.schedule_frame(campaigns), as_of)
    if due.empty:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    ids = _ids(due)
    contacts = _read_for(conn, q.contacts_as_of(as_of), ids)
    unsubscribes = _read_for(conn, q.unsubscribes_as_of(as_of), ids)
    reach = rules.reachability(ids, contacts, unsubscribes, CHANNELS)
    candidates = rules.cascade_candidates(due, reach)
    engaged = _read_for(conn, q.engaged_steps(as_of, [c.id for c in campaigns]), ids)
    if not engaged.empty:
        engaged["step"] = rules.campaign_step(engaged["step"])
    candidates = rules.decide_control_and_engagement(candidates, engaged)
    used = _read_for(conn, q.budget_used(as_of, config.budget.days), ids)
    candidates = rules.apply_budget(candidates, used, config.budget.for_day(as_of))
    # Quiet hours in the customer's zone: planned messages wait, never dropped.
    business = get_settings().business_timezone
    sms = contacts[contacts["channel"] == Channel.SMS.value] if not contacts.empty else contacts
    zones = rules.timezone_of(ids, sms, config.timezone_by_phone_prefix, config.default_timezone or business)
    window = rules.send_window_for(zones, as_of, config.quiet_hours, business)
    planned = candidates["decision"] == Decision.PLANNED.value
    for column in ("not_before", "not_after"):
        candidates[column] = pd.NaT
        candidates.loc[planned, column] = candidates.loc[planned, "customer_id"].map(window[column]).to_numpy()
    candidates = _with_loyalty_details(conn, candidates, campaigns)
    candidates["outbox_step"] = rules.outbox_step(candidates["step"], candidates["position"])
    candidates["message_id"] = None
    if planned.any():
        candidates.loc[planned, "message_id"] = message_ids(
            candidates.loc[planned, ["campaign_id", "customer_id", "wave"]].assign(
                step=candidates.loc[planned, "outbox_step"]
            )
        )
    prices = load_sending_config().prices()
    overrides = {c.id: {str(k): v for k, v in c.prices.items()} for c in campaigns}
    candidates["cost_minor"] = [
        overrides.get(c, {}).get(ch, prices.get(ch, 0)) if d == Decision.PLANNED.value else None
        for c, ch, d in zip(candidates["campaign_id"], candidates["channel"], candidates["decision"], strict=True)
    ]
    sms_ok = reach.loc[(reach["channel"] == Channel.SMS.value) & (reach["status"] == rules.REACHABLE), "customer_id"]
    candidates["sms_reachable"] = candidates["customer_id"].isin(sms_ok).to_numpy()
    candidates["as_of"] = pd.Timestamp(as_of)
    return candidates


def _with_loyalty_details(conn: Connection, candidates: pd.DataFrame, campaigns: Sequence[Campaign]) -> pd.DataFrame:
    """Loyalty messages carry their event's detail (the new tier, the expiry day) and amount in the parameters."""
    kinds = {c.id: c.audience.loyalty_events for c in campaigns if c.audience.trigger is Trigger.LOYALTY_EVENT}
    mine = candidates["campaign_id"].isin(list(kinds)) & (candidates["decision"] == Decision.PLANNED.value)
    if not mine.any() or not _has_table(conn, "loyalty_events"):
        return candidates
    t = _reflect(conn, "loyalty_events")
    days = sorted({pd.Timestamp(d).date() for d in candidates.loc[mine, "entered_on"]})
    stmt = select(t.c.as_of, t.c.customer_id, t.c.event, t.c.detail, t.c.amount_minor).where(t.c.as_of.in_(days))
    events = _read_for(conn, stmt, _ids(candidates[mine]))
    if events.empty:
        return candidates
    events["as_of"] = pd.to_datetime(events["as_of"])
    events["event"] = events["event"].astype(str)
    allowed = pd.DataFrame(
        [(campaign_id, str(event)) for campaign_id, events_ in kinds.items() for event in events_],
        columns=["campaign_id", "event"],
    )
    wanted = candidates.loc[mine, ["customer_id", "entered_on", "campaign_id"]].rename_axis("row").reset_index()
    wanted["entered_on"] = pd.to_datetime(wanted["entered_on"])
    # The customer's first event of the entry day that the campaign listens to: one join, no loop per message.
    hits = (
        wanted.merge(events.rename(columns={"as_of": "entered_on"}), on=["customer_id", "entered_on"])
        .merge(allowed, on=["campaign_id", "event"])
        .drop_duplicates("row", keep="first")
    )
    if hits.empty:
        return candidates
    out = candidates.copy()
    amounts = [None if pd.isna(a) else int(a) for a in hits["amount_minor"]]
    out.loc[hits["row"].to_numpy(), "params"] = pd.Series(
        [
            dict(params) | {"event": event, "detail": detail, "amount_minor": amount}
            for params, event, detail, amount in zip(
                out.loc[hits["row"].to_numpy(), "params"], hits["event"], hits["detail"], amounts, strict=True
            )
        ],
        index=hits["row"].to_numpy(),
        dtype=object,
    )
    return out


def write_decisions(conn: Connection, decisions: pd.DataFrame, as_of: date) -> int:
    """Store the day's decisions and enqueue the planned messages; returns how many outbox rows were new."""
    if decisions.empty:
        return 0
    stored = decisions[DECISION_COLUMNS].copy()
    stored["cost_minor"] = pd.array(stored["cost_minor"], dtype="Int64")
    write_frame(conn, campaign_decisions, stored, on_conflict="update")
    planned = decisions[decisions["decision"] == Decision.PLANNED.value]
    if planned.empty:
        return 0
    frame = pd.DataFrame(
        {
            "as_of": pd.Timestamp(as_of),
            "campaign_id": planned["campaign_id"].to_numpy(),
            "step": planned["outbox_step"].to_numpy(),
            "wave": planned["wave"].to_numpy(),
            "customer_id": planned["customer_id"].to_numpy(),
            "channel": planned["channel"].to_numpy(),
            "template_id": planned["template_id"].to_numpy(),
            "params": planned["params"].to_numpy(),
            "consent_decision": planned["reason"].to_numpy(),
            "not_before": planned["not_before"].to_numpy(),
            "not_after": planned["not_after"].to_numpy(),
            "cost_minor": planned["cost_minor"].astype("int64").to_numpy(),
        }
    )
    return enqueue_messages(conn, frame)


# --------------------------------------------------------------------------- a day


def plan_campaigns(
    engine: Engine,
    as_of: date,
    *,
    force: bool = False,
    campaigns: Sequence[Campaign] | None = None,
    config: CampaignsConfig | None = None,
    now: datetime | None = None,
) -> PlanResult:
    """Plan every campaign for `as_of`: refuse a closed send gate unless `force` (recorded), then entries, exits,
    the purge, decisions and the outbox, in one transaction."""
    campaigns = list(campaigns) if campaigns is not None else load_campaigns()
    config = config or load_campaigns_config()
    run_id = uuid.uuid4().hex
    with engine.begin() as conn:
        gate = read_send_gate(conn, as_of)
        result = PlanResult(
            as_of=as_of,
            run_id=run_id,
            gate_open=gate.is_open,
            forced=force and not gate.is_open,
            refused=not gate.is_open and not force,
            gate_reasons=list(gate.reasons),
        )
        if not result.refused:
            _plan(conn, campaigns, as_of, config, result)
        conn.execute(
            insert(campaign_runs).values(
                run_id=run_id,
                as_of=as_of,
                started_at=now or datetime.now(),  # a record of when it ran, never a business date
                gate_open=result.gate_open,
                forced=result.forced,
                refused=result.refused,
                gate_reasons="; ".join(result.gate_reasons)[:4000] or None,
                entered=sum(result.entered.values()),
                planned=result.planned,
                skipped=result.skipped,
                purged=result.purged,
            )
        )
    return result


def _plan(
    conn: Connection, campaigns: Sequence[Campaign], as_of: date, config: CampaignsConfig, result: PlanResult
) -> None:
    _reset_day(conn, as_of)
    technical = _ids(read_frame(conn, q.technical_customers(as_of)))
    purged = _ids(read_frame(conn, q.purged_on(as_of)))
    result.exited = close_entries(conn, campaigns, as_of)
    leaving = purge_candidates(conn, campaigns, as_of)
    result.purged, result.archive_key = purge(conn, leaving, as_of, purged)
    excluded = np.union1d(technical, np.union1d(purged, _ids(leaving)))  # = purged_on(as_of) after the purge
    entries = new_entries(conn, campaigns, as_of, config, excluded)
    if not entries.empty:
        write_frame(conn, campaign_entries, entries.assign(exited_on=pd.NaT, exit_reason=None), on_conflict="error")
        result.entered = {k: int(v) for k, v in entries.groupby("campaign_id").size().items()}
    decisions = candidate_decisions(conn, campaigns, as_of, config, excluded)
    result.enqueued = write_decisions(conn, decisions, as_of)
    if not decisions.empty:
        result.planned = int((decisions["decision"] == Decision.PLANNED.value).sum())
        result.skipped = int((decisions["decision"] == Decision.SKIPPED.value).sum())


# --------------------------------------------------------------------------- reading


def read_decisions(conn: Connection, start: date, end: date) -> pd.DataFrame:
    """Decisions of the days from `start` to `end`."""
    d = campaign_decisions
    return read_frame(conn, select(d).where(d.c.as_of >= start, d.c.as_of <= end))


def read_entries(conn: Connection, campaign_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Campaign entries (all, or of some campaigns)."""
    e = campaign_entries
    stmt = select(e)
    if campaign_ids is not None:
        stmt = stmt.where(e.c.campaign_id.in_(list(campaign_ids)))
    return read_frame(conn, stmt)


# --------------------------------------------------------------------------- reports' figures


def campaign_funnel(conn: Connection, start: date, end: date) -> pd.DataFrame:
    """Per campaign and step, the days from `start` to `end`: entered, in control, skipped by reason, planned per
    channel, then sent / delivered / opened / clicked (the outbox), spend, and the entries that converted.

    Counted in the warehouse: a month of decisions is millions of rows at 1M customers."""
    funnel = read_funnel(conn, start, end)
    rows: dict[tuple[str, int], dict] = {}

    def row(campaign_id: str, step: int) -> dict:
        return rows.setdefault((campaign_id, int(step)), {"campaign_id": campaign_id, "step": int(step)})

    for campaign_id, step, entered, control in conn.execute(q.step_entries(start, end)):
        row(campaign_id, step).update(entered=int(entered), control=int(control or 0))
    for decision, column, prefix in (
        (Decision.SKIPPED, "reason", "skipped"),
        (Decision.PLANNED, "channel", "planned"),
    ):
        for campaign_id, step, value, n in conn.execute(q.decisions_by(start, end, decision, column)):
            row(campaign_id, step)[f"{prefix}_{value}"] = int(n)
    if not funnel.empty:
        funnel = funnel.assign(campaign_step=rules.campaign_step(funnel["step"]))
        for (c, s), part in funnel.groupby(["campaign_id", "campaign_step"]):
            r = row(c, s)
            for column in ("sent", "delivered", "opened", "clicked", "unsubscribed", "cost_minor"):
                r[column] = int(part[column].sum())
            for ch, spent in part.groupby("channel")["cost_minor"].sum().items():
                r[f"spend_{ch}"] = int(spent)
    for campaign_id, converted in conn.execute(q.converted_entries(start, end)):
        row(campaign_id, 1)["converted"] = int(converted)  # a conversion ends the chain: on the first step's line
    frame = pd.DataFrame(list(rows.values()))
    if frame.empty:
        return frame
    numbers = [c for c in frame.columns if c not in ("campaign_id", "step")]
    frame[numbers] = frame[numbers].fillna(0).astype("int64")
    return frame.sort_values(["campaign_id", "step"], ignore_index=True)


def sms_saving(conn: Connection, start: date, end: date, sms_price: int) -> dict:
    """The cascade's SMS against an SMS to everyone reachable by SMS (treated customers of each due step)."""
    baseline = int(conn.execute(q.sms_baseline(start, end)).scalar() or 0)
    cascade = int(conn.execute(q.sms_planned(start, end, Channel.SMS.value)).scalar() or 0)
    saved = baseline - cascade
    return {
        "baseline_sms": baseline,
        "cascade_sms": cascade,
        "saved_sms": saved,
        "saved_minor": saved * sms_price,
        "saving_share": saved / baseline if baseline else None,
    }


def uplift_table(
    conn: Connection,
    as_of: date,
    *,
    window_days: int,
    alpha: float,
    power: float,
    minimum_effect: float,
    since: date | None = None,
) -> pd.DataFrame:
    """Per campaign (step 0 = the whole campaign) and per step: treated versus control over entries whose window
    has started; conversions (any application, loan or purchase) and revenue (purchases and interest paid)."""
    entries = read_frame(conn, q.entries_between(since, as_of))
    if entries.empty:
        return pd.DataFrame()
    entries["entered_on"] = pd.to_datetime(entries["entered_on"])
    since = entries["entered_on"].min().date()
    ids = _ids(entries)
    events = _read_for(conn, q.conversions(as_of, list(Conversion), since), ids)
    interest = _read_for(conn, q.interest_paid(as_of, since), ids)
    revenue_events = pd.concat(
        [events[["customer_id", "at", "revenue_minor"]], interest[["customer_id", "at", "revenue_minor"]]],
        ignore_index=True,
    )
    conversions = events[["customer_id", "at"]].assign(revenue_minor=0)
    rows = []
    first_touch = read_frame(conn, q.first_touches(since, as_of))
    for campaign_id, part in entries.groupby("campaign_id"):
        populations = [(0, part)]
        if not first_touch.empty:
            mine = first_touch[first_touch["campaign_id"] == campaign_id]
            for step, reached in mine.groupby("step"):
                keys = reached[["customer_id", "wave", "as_of"]]
                pop = part.merge(keys, on=["customer_id", "wave"]).assign(
                    entered_on=lambda f: pd.to_datetime(f["as_of"])
                )
                populations.append((int(step), pop.drop(columns="as_of")))
        for step, pop in populations:
            table = uplift_frame(pop, conversions, revenue_events, window_days)
            if table.empty:
                continue
            estimate = estimate_uplift(table, alpha=alpha, power=power, minimum_effect=minimum_effect)
            rows.append({"campaign_id": campaign_id, "step": step} | estimate.as_dict())
    return pd.DataFrame(rows)


def uplift_frame(
    population: pd.DataFrame, conversions: pd.DataFrame, revenue_events: pd.DataFrame, window_days: int
) -> pd.DataFrame:
    """The experiment's table (one row per entry: group, converted, revenue) from a population's start days."""
    table = experiment_table(population, conversions, window_days)
    if table.empty:
        return table
    revenue = experiment_table(population, revenue_events, window_days)["revenue"]
    return table.assign(revenue=revenue.to_numpy())


def crm_share_of_applications(conn: Connection, start: date, end: date, window_days: int) -> pd.DataFrame:
    """Per day: loan applications, those whose customer clicked a campaign message within the window before (last
    click), and their share: the headline KPI of DOMAIN.md."""
    apps = read_frame(conn, q.applications_created(end, start))
    if apps.empty:
        return pd.DataFrame(columns=["day", "applications", "from_crm", "share"])
    clicks = read_frame(conn, q.clicks_until(end, start - timedelta(days=window_days)))
    attributed = attribute_last_click(apps.rename(columns={"created_at": "at"}), clicks, window_days)
    attributed["day"] = pd.to_datetime(attributed["at"]).dt.normalize()
    per_day = attributed.groupby("day").agg(
        applications=("customer_id", "size"), from_crm=("campaign_id", lambda s: int(s.notna().sum()))
    )
    per_day["share"] = per_day["from_crm"] / per_day["applications"]
    return per_day.reset_index()


def read_conversions(conn: Connection, as_of: date, kinds: Sequence[Conversion | str], since: date) -> pd.DataFrame:
    """Conversion events (customer_id, kind, at, revenue_minor) known by the end of `as_of`, from `since`."""
    return read_frame(conn, q.conversions(as_of, [Conversion(k) for k in kinds], since), integers=("revenue_minor",))
