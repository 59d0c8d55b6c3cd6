"""`crm`: the command line for people and scripts (the same flows run from Prefect deployments).

Exit codes (`cli/errors.py`): 0 ok, 2 a finding, 3 bad operator input, 4 infrastructure
unreachable, 1 a bug. Commands that start a flow check settings, config files, connections and
the day guard first, so a wrong setting costs one line and a second, not a Prefect run.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from typing import Annotated

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # typer vendors click
from typer.core import TyperGroup

from cli.errors import ExitCode, report_error
from crm.core.errors import OperatorError


class CrmGroup(TyperGroup):
    """The root command: every error of every subcommand becomes its exit code here, and nowhere else."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            raise _operator_usage(exc) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise _operator_usage(exc) from None
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as exc:
            raise typer.Exit(report_error(exc, debug=bool(ctx.params.get("debug")))) from None


def _operator_usage(exc: UsageError) -> UsageError:
    """Wrong arguments are bad operator input: exit 3 (click's default 2 means a finding here)."""
    if not isinstance(exc, NoArgsIsHelpError):  # `crm run` alone prints the help
        exc.exit_code = ExitCode.OPERATOR
    return exc


app = typer.Typer(
    cls=CrmGroup,
    help="CRM retention data platform: simulate a company, run and backfill the nightly jobs.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Warehouse schema.", no_args_is_help=True)
run_app = typer.Typer(help="Run one job for one business day.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(run_app, name="run")
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")
landing_app = typer.Typer(help="Landing files the ingestion rejected or found misplaced.", no_args_is_help=True)
app.add_typer(landing_app, name="landing")
campaigns_app = typer.Typer(help="Campaigns: the purge archive.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")
loyalty_app = typer.Typer(
    help="The loyalty programme: what-if runs of changed rules, operator adjustments.", no_args_is_help=True
)
app.add_typer(loyalty_app, name="loyalty")
models_app = typer.Typer(help="The churn model registry.", no_args_is_help=True)
app.add_typer(models_app, name="models")

AsOf = Annotated[str, typer.Option("--as-of", help="Business date, YYYY-MM-DD.")]
Force = Annotated[
    bool,
    typer.Option("--force", help="Ingest even a day after the source's newest data or far past the last ingested day."),
]


@app.callback()
def main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Print the full traceback of an error (it is in the Prefect logs too).")
    ] = False,
) -> None:
    """CRM retention data platform: simulate a company, run and backfill the nightly jobs."""


def _day(text: str, option: str = "--as-of") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise OperatorError(f"{option} {text!r} is not a date like 2026-01-31") from None


def _check(job: str, day: date, force: bool = False) -> None:
    """Settings, config files, connections and the day guard, before Prefect starts (one line if wrong)."""
    from tasks.checks import check_job

    forced = check_job(job, day, force=force)
    if forced:
        typer.echo(f"warning: forced past the day guard: {forced}", err=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the warehouse (CRM_WAREHOUSE_URL) to the newest schema."""
    from crm.core.migrations import current_revision, upgrade_warehouse
    from crm.core.preflight import preflight
    from crm.core.settings import warehouse_engine

    engine = warehouse_engine(preflight(source=False, landing=False))
    upgrade_warehouse(engine)
    typer.echo(f"warehouse at revision {current_revision(engine)}")


@docs_app.command("landing-contract")
def docs_landing_contract() -> None:
    """Print the landing-file contract (docs/landing-files.md) as generated from the entity contracts."""
    from crm.ingest import landing_contract_markdown

    typer.echo(landing_contract_markdown(), nl=False)


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(help="New customers registering over these days.")] = 1000,
    days: Annotated[int, typer.Option(help="Days to simulate (continues after the last simulated day).")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (the first call fixes it).")] = 42,
    start: Annotated[str | None, typer.Option(help="First day of a new world, YYYY-MM-DD.")] = None,
    faults: Annotated[float, typer.Option(help="Share of rows hit by each injected fault kind (0 = clean).")] = 0.0,
    malformed_file: Annotated[bool, typer.Option(help="Also write one malformed landing file.")] = False,
    dropped_status_share: Annotated[
        float, typer.Option(help="Share of loans whose status changes never reach the export.")
    ] = 0.0,
    inbox: Annotated[
        str | None,
        typer.Option(
            help="Where providers' received lists are (exports/<day>/*.csv); default: the file export's location."
        ),
    ] = None,
) -> None:
    """Advance the simulated company: write its source database and daily export files; react to campaign messages."""
    from crm.core.settings import get_settings, source_engine
    from crm.core.storage import open_store
    from crm.sending import file_export_url, load_sending_config
    from crm.simulator import FaultConfig
    from crm.simulator import simulate as run_simulation

    settings = get_settings()
    fault_config = None
    if faults > 0 or malformed_file or dropped_status_share > 0:
        fault_config = FaultConfig(
            rate=faults, malformed_file=malformed_file, dropped_status_share=dropped_status_share
        )
    summary = run_simulation(
        source_engine(settings, create=True),  # the one command that may create the source database
        open_store(settings.landing),
        customers=customers,
        days=days,
        seed=seed,
        start=_day(start) if start else None,
        faults=fault_config,
        inbox=open_store(inbox or file_export_url(load_sending_config())),
    )
    typer.echo(str(summary))


@run_app.command("ingest")
def run_ingest(as_of: AsOf, force: Force = False) -> None:
    """Ingest one business day from the source database and the landing zone (exits 2 if a file was rejected)."""
    day = _day(as_of)
    _check("ingest", day, force)
    from flows.ingest import ingest

    result = ingest(as_of=day, force=force)
    typer.echo(
        f"ingested {day}: read {result['rows_read']:,}, loaded {result['rows_loaded']:,}, "
        f"quarantined {result['rows_quarantined']:,}, duplicate {result['rows_duplicate']:,}"
    )


def _report_verdict(summary: str, fit_for_sending: bool) -> None:
    """Print a check's summary; exit 2 when the day is not fit for sending (a finding; 1 stays for crashes)."""
    typer.echo(summary)
    if not fit_for_sending:
        raise typer.Exit(2)


@run_app.command("nightly")
def run_nightly(
    as_of: AsOf,
    force: Force = False,
    steps: Annotated[
        str | None,
        typer.Option(help="Only these steps, comma-separated (e.g. segments,loyalty); the others' output stands."),
    ] = None,
    send_past_days: Annotated[
        bool, typer.Option("--send-past-days", help="Let dispatch send for a day older than the newest ingested.")
    ] = False,
) -> None:
    """The whole night: ingest, checks (send gate), segments, churn, loyalty, campaigns, dispatch (exits 2 on a closed gate)."""
    from crm.core.night import parse_steps

    day = _day(as_of)
    try:
        chosen = [s.value for s in parse_steps(steps)]
    except ValueError as exc:
        raise OperatorError(f"--steps: {exc}") from None
    _check("nightly", day, force)
    from flows.nightly import nightly

    result = nightly(as_of=day, force=force, steps=chosen, send_past_days=send_past_days)
    for step, status in result["steps"].items():
        typer.echo(f"{step}: {status}")
    gate = "open" if result["send_gate_open"] else "closed"
    _report_verdict(
        f"send gate {gate}: " + ("; ".join(result["reasons"]) or "every check passed"), result["send_gate_open"]
    )


@run_app.command("quality")
def run_quality(as_of: AsOf) -> None:
    """Validate one business day with the expectation suites (closes the send gate on a critical failure)."""
    day = _day(as_of)
    _check("quality", day)
    from flows.quality import quality

    result = quality(as_of=day)
    _report_verdict(result["summary"], result["fit_for_sending"])


@run_app.command("reconcile")
def run_reconcile(as_of: AsOf) -> None:
    """Compare the source database with the warehouse for one business day (closes the send gate on divergence)."""
    day = _day(as_of)
    _check("reconcile", day)
    from flows.reconcile import reconcile

    result = reconcile(as_of=day)
    _report_verdict(result["summary"], result["fit_for_sending"])


@run_app.command("segments")
def run_segments(
    as_of: AsOf,
    full: Annotated[bool, typer.Option("--full", help="Recompute every customer (a backfill's path).")] = False,
    rewrite: Annotated[
        bool,
        typer.Option(
            "--rewrite", help="For a stored day: replace the history from this day on (re-run the days after)."
        ),
    ] = False,
) -> None:
    """Lifecycle states, RFM, reachability and channel preference for one business day (exits 2 if a recheck differs)."""
    day = _day(as_of)
    _check("segments", day)
    from flows.segments import segments

    result = segments(as_of=day, full=full, rewrite=rewrite)
    suspect = "" if result["gate_open"] else " (data suspect: the send gate is closed)"
    typer.echo(
        f"segments {result['as_of']} {result['mode']}: {result['customers_computed']:,} customers computed, "
        f"{result['customers_changed']:,} changed, {result['events']:,} events{suspect}"
    )
    if result["differences"]:
        typer.echo(f"{result['differences']:,} customers differ from the stored day; --rewrite replaces it")
        raise typer.Exit(2)


@run_app.command("loyalty")
def run_loyalty(as_of: AsOf) -> None:
    """Post one business day into the loyalty ledger (and any day missed since the last run); tiers, events, report."""
    day = _day(as_of)
    _check("loyalty", day)
    from flows.loyalty import loyalty

    result = loyalty(as_of=day)
    typer.echo(
        f"loyalty {result['as_of']}: {len(result['days'])} day(s) posted, {result['entries_added']:,} entries added, "
        f"{result['tier_changes']:,} tier changes, {result['events']:,} events; "
        f"outstanding {result['liability_minor'] / 100:,.2f}, expiring in 30 days {result['expiring_30_minor'] / 100:,.2f}"
    )


@loyalty_app.command("what-if")
def loyalty_what_if(
    rules: Annotated[str, typer.Option("--rules", help="A loyalty rules file (same shape as config/loyalty.yaml).")],
    start: Annotated[str, typer.Option(help="First business day to replay, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last business day to replay, YYYY-MM-DD.")],
    scratch: Annotated[
        str | None,
        typer.Option(help="SQLite file of the scratch ledger (default: <CRM_HOME>/scratch/loyalty-what-if.db)."),
    ] = None,
) -> None:
    """Replay changed rules over past days into a scratch ledger and compare with the real one (never written)."""
    from pathlib import Path

    from crm.core.dates import days_between
    from crm.core.preflight import preflight
    from crm.core.settings import make_engine, warehouse_engine
    from crm.loyalty import load_rules_file, what_if, whatif_markdown, write_report_file

    first, last = _day(start, "--start"), _day(end, "--end")
    days_between(first, last)
    config = load_rules_file(rules)
    settings = preflight(source=False, landing=False)
    path = Path(scratch) if scratch else settings.home / "scratch" / "loyalty-what-if.db"
    if not path.parent.is_dir():
        if scratch:
            raise OperatorError(f"--scratch: the folder {path.parent} does not exist")
        path.parent.mkdir(parents=True)
    warehouse = warehouse_engine(settings)
    outcome = what_if(warehouse, warehouse, make_engine(f"sqlite:///{path}"), config, first, last)
    markdown = whatif_markdown(first, last, outcome["real"], outcome["scenario"], config.tier_names, rules)
    report = write_report_file(settings.reports, f"loyalty/what-if/{first}_{last}.md", markdown.encode())
    typer.echo(markdown)
    typer.echo(f"scratch ledger: {path}; report: {report}")
    if outcome["violations"]:
        typer.echo("invariants violated in the scenario: " + "; ".join(outcome["violations"]), err=True)
        raise typer.Exit(ExitCode.FINDING)


@loyalty_app.command("adjust")
def loyalty_adjust(
    as_of: AsOf,
    customer: Annotated[int, typer.Option(help="The member's customer id.")],
    amount: Annotated[int, typer.Option(help="Minor units: > 0 credits cashback, < 0 takes it back.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the entry's rule).")],
    reference: Annotated[str, typer.Option(help="The ticket or rule id that traces it; the same one adds nothing.")],
) -> None:
    """Post an operator's adjustment entry on the newest posted loyalty day (never a negative balance)."""
    from crm.core.migrations import upgrade_warehouse
    from crm.core.preflight import preflight
    from crm.core.settings import warehouse_engine
    from crm.loyalty import load_loyalty_config, post_adjustment

    day = _day(as_of)
    config = load_loyalty_config()
    settings = preflight(source=False, landing=False)
    engine = warehouse_engine(settings)
    upgrade_warehouse(engine)
    done = post_adjustment(engine, day, customer, amount, reason, reference, config)
    what = "posted" if done.added else "already posted (nothing added)"
    typer.echo(
        f"adjustment {reference} {what}: entry {done.entry_id}, balance of {customer} now {done.balance_minor:,}"
    )


@run_app.command("dispatch")
def run_dispatch(
    as_of: AsOf,
    force_closed_gate: Annotated[
        bool, typer.Option(help="Send although the day's send gate is closed (recorded in dispatch_runs).")
    ] = False,
    send_past_days: Annotated[
        bool, typer.Option(help="Send for a day older than the newest ingested one (backfills never do by default).")
    ] = False,
) -> None:
    """Send the messages planned for one business day (refused when the send gate is closed or the day is past)."""
    from crm.sending import Refusal
    from flows.sending import dispatch
    from tasks.sending import ensure_provider_limits

    ensure_provider_limits()  # a local run has no infra/prefect-setup.sh: create the one-slot provider limits
    result = dispatch(as_of=_day(as_of), force_closed_gate=force_closed_gate, send_past_days=send_past_days)
    if result["refused"] == Refusal.PAST_DAY:
        typer.echo("; ".join(result["reasons"]))
        raise typer.Exit(3)
    if result["refused"]:
        _report_verdict("send gate closed: " + "; ".join(result["reasons"]), False)
    gate = " (send gate CLOSED, forced)" if result["forced_closed_gate"] else ""
    typer.echo(
        f"dispatch {result['as_of']}: {result['sent']:,} sent, {result['failed']:,} failed, {result['skipped']:,} skipped{gate}"
    )


@run_app.command("campaigns")
def run_campaigns(
    as_of: AsOf,
    force: Annotated[
        bool, typer.Option("--force", help="Plan although the day's send gate is closed (recorded in campaign_runs).")
    ] = False,
) -> None:
    """Plan one business day's campaign messages into the outbox (exits 2 when the send gate is closed)."""
    day = _day(as_of)
    _check("campaigns", day)
    from flows.campaigns import campaigns

    result = campaigns(as_of=day, force=force)
    if result["refused"]:
        _report_verdict("send gate closed: " + "; ".join(result["gate_reasons"]) + "; nothing planned", False)
    gate = " (send gate CLOSED, forced)" if result["forced"] else ""
    typer.echo(
        f"campaigns {result['as_of']}: {sum(result['entered'].values()):,} entered, {result['planned']:,} planned, "
        f"{result['skipped']:,} skipped, {result['purged']:,} purged{gate}"
    )


@campaigns_app.command("restore")
def campaigns_restore(
    as_of: AsOf,
    archive: Annotated[
        str | None,
        typer.Option(help="An archive file, e.g. archive/purged/2026-03-01.csv (under <CRM_HOME>/artifacts)."),
    ] = None,
    customer: Annotated[list[int] | None, typer.Option(help="A purged customer id (repeatable).")] = None,
) -> None:
    """Bring purged customers back into the active base from a business day on (by archive file or id)."""
    if archive is None and not customer:
        raise OperatorError("give --archive KEY or --customer ID")
    from crm.campaigns import restore_customers
    from crm.core.migrations import upgrade_warehouse
    from crm.core.preflight import preflight
    from crm.core.settings import warehouse_engine

    settings = preflight(source=False, landing=False)
    engine = warehouse_engine(settings)
    upgrade_warehouse(engine)
    try:
        restored = restore_customers(engine, _day(as_of), archive_key=archive, customer_ids=customer)
    except FileNotFoundError:
        raise OperatorError(f"--archive {archive!r}: no such archive file under <CRM_HOME>/artifacts") from None
    typer.echo(f"restored {restored:,} customer(s) into the active base from {as_of}")


@run_app.command("delivery-reports")
def run_delivery_reports(as_of: AsOf) -> None:
    """Apply the providers' delivery reports ingested for one business day to the outbox."""
    from flows.sending import delivery_reports

    counts = delivery_reports(as_of=_day(as_of))
    typer.echo(", ".join(f"{kind} {n:,}" for kind, n in counts.items()))


@run_app.command("train-churn")
def run_train_churn(as_of: AsOf) -> None:
    """Train a churn model on past snapshots known by --as-of, compare with recency and the champion, register it."""
    day = _day(as_of)
    _check("train-churn", day)
    from flows.churn import train_churn

    r = train_churn(as_of=day)
    typer.echo(
        f"trained {r['version']} on {r['snapshots_used']} of {r['snapshots_wanted']} snapshots, {r['features']} features: "
        f"ROC-AUC {r['roc_auc']:.4f} vs recency alone {r['recency_roc_auc']:.4f} "
        f"({r['roc_auc'] - r['recency_roc_auc']:+.4f}); {'promoted' if r['promoted'] else 'not promoted'}: {r['reason']}"
    )


@run_app.command("score-churn")
def run_score_churn(as_of: AsOf) -> None:
    """Score every eligible customer of --as-of with the champion into churn_scores (exits 2 if a model was refused)."""
    day = _day(as_of)
    _check("score-churn", day)
    from flows.churn import score_churn

    r = score_churn(as_of=day)
    warnings = f"; drift warnings: {', '.join(r['drift_warnings'])}" if r["drift_warnings"] else ""
    typer.echo(f"scored {r['scored']:,} customers on {day} with {r['version']} in {r['chunks']} chunk(s){warnings}")
    if r["refusals"]:
        typer.echo("; ".join(r["refusals"]), err=True)
        raise typer.Exit(ExitCode.FINDING)


def _registry():
    from crm.churn import load_churn_config, open_registry
    from crm.core.settings import get_settings

    return open_registry(load_churn_config(), get_settings())


@models_app.command("list")
def models_list() -> None:
    """The churn model registry: every version, its metrics, window and decision (* = champion)."""
    from crm.churn import registry_markdown

    registry = _registry()
    entries = registry.entries()
    if not entries:
        typer.echo(f"no churn model in {registry.store.url}; train one: crm run train-churn --as-of DATE")
        return
    typer.echo(registry_markdown(entries, registry.champion_state().get("champion")))


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The version to make champion (see `crm models list`).")],
    as_of: AsOf,
) -> None:
    """Make a registered version champion by hand (its file is verified first; recorded in champion.json)."""
    registry = _registry()
    registry.promote(version, _day(as_of), "promoted by hand (crm models promote)")
    typer.echo(f"{version} is the churn champion")


@app.command()
def backfill(
    job: Annotated[
        str, typer.Argument(help="Job to run per day: nightly, ingest, quality, reconcile, segments or loyalty.")
    ],
    start: Annotated[str, typer.Option(help="First business day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last business day, YYYY-MM-DD.")],
    deployment: Annotated[
        str | None, typer.Option(help="Run each day as a run of this deployment (flow/deployment).")
    ] = None,
    force: Force = False,
    steps: Annotated[
        str | None, typer.Option(help="nightly only: re-run just these steps, comma-separated (e.g. segments,loyalty).")
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Run every day again instead of resuming after the last completed one.")
    ] = False,
    send_past_days: Annotated[
        bool, typer.Option("--send-past-days", help="Let dispatch send for these past days (never by default).")
    ] = False,
) -> None:
    """Run a job for every day of a range, oldest first; resumes after the last completed day (exits 2 on findings)."""
    from crm.core.dates import days_between
    from crm.core.night import parse_steps

    first, last = _day(start, "--start"), _day(end, "--end")
    days_between(first, last)  # an empty range is the operator's mistake, found before any run
    chosen = None
    if steps:
        if job != "nightly":
            raise OperatorError("--steps chooses steps of the nightly job only")
        try:
            chosen = [s.value for s in parse_steps(steps)]
        except ValueError as exc:
            raise OperatorError(f"--steps: {exc}") from None
    if not deployment:  # a deployment's worker has its own settings: it checks them itself
        _check(job, first, force)
        if job in ("ingest", "nightly") and (chosen is None or "ingest" in chosen):
            _check_source_reaches(last, force)
    from flows.backfill import FINDINGS
    from flows.backfill import backfill as backfill_flow

    outcomes = backfill_flow(
        job=job,
        start=first,
        end=last,
        deployment=deployment,
        force=force,
        steps=chosen,
        restart=restart,
        send_past_days=send_past_days,
    )
    for outcome in outcomes:
        typer.echo(f"{outcome['as_of']}: {outcome['state']}")
    findings = [o["as_of"] for o in outcomes if o["state"] in FINDINGS]
    if findings:
        typer.echo(f"{len(findings)} day(s) with findings: {', '.join(findings)}", err=True)
        raise typer.Exit(ExitCode.FINDING)


def _check_source_reaches(last: date, force: bool) -> None:
    """The last day of a backfill must not lie in the future of the source's data (unless forced)."""
    from crm.core.settings import get_settings, source_engine, warehouse_engine
    from crm.ingest import day_guard_refusal, load_ingest_config, read_day_bounds

    settings = get_settings()
    newest, _ = read_day_bounds(source_engine(settings), warehouse_engine(settings))
    refusal = day_guard_refusal(last, newest, None, max_gap_days=load_ingest_config().max_gap_days, option="--end")
    if refusal and not force:
        raise OperatorError(f"refusing to ingest up to {last}: {refusal}; pass --force to ingest it anyway")


def _require_tables(conn) -> None:
    """A command that only reads the warehouse refuses one never migrated (a wrong CRM_WAREHOUSE_URL) in one line."""
    from sqlalchemy import inspect

    from models.ingest import ingest_batches

    if not inspect(conn).has_table(ingest_batches.name):
        raise OperatorError("the warehouse has no tables yet; check CRM_WAREHOUSE_URL (`crm db upgrade` creates them)")


@landing_app.command("retry")
def landing_retry(
    file: Annotated[
        str, typer.Argument(help="The file's path under the landing root, as the ingest-summary names it.")
    ],
) -> None:
    """Read a rejected or misplaced landing file again in the next ingest (after fixing it in place)."""
    from crm.core.preflight import preflight
    from crm.core.settings import warehouse_engine
    from crm.ingest import request_retry

    key = file.strip().removeprefix("file:").lstrip("/")
    engine = warehouse_engine(preflight(source=False, landing=False))
    with engine.connect() as conn:
        _require_tables(conn)
    cleared = request_retry(engine, key)
    for row in cleared:
        typer.echo(f"{key}: {row['status']} on {row['as_of']} ({row['error']}); the next ingest reads it again")


@app.command()
def report(as_of: AsOf) -> None:
    """Print the ingestion counts, quarantine reasons and send gate of a business day."""
    import pandas as pd
    from sqlalchemy import select

    from crm.core.gate import read_send_gate
    from crm.core.preflight import preflight
    from crm.core.privacy import mask_contacts
    from crm.core.settings import warehouse_engine
    from crm.ingest import FileStatus, quarantine_summary
    from models.ingest import ingest_batches, landing_files

    day = _day(as_of)
    settings = preflight(source=False, landing=False)
    with warehouse_engine(settings).connect() as conn:
        _require_tables(conn)
        counts = pd.DataFrame(
            conn.execute(select(ingest_batches).where(ingest_batches.c.as_of == day)).mappings().all()
        )
        files = conn.execute(
            select(landing_files.c.error).where(
                landing_files.c.as_of == day, landing_files.c.status.in_([FileStatus.FAILED, FileStatus.MISPLACED])
            )
        ).scalars()
        rejected = [mask_contacts(str(error)) for error in files]
        reasons = quarantine_summary(conn, day)
        gate = read_send_gate(conn, day)
    if counts.empty and not rejected:
        raise OperatorError(f"nothing was ingested for {day}; check --as-of")
    typer.echo(counts.drop(columns=["as_of"]).to_string(index=False) if len(counts) else "no rows were loaded")
    if rejected:
        typer.echo("\nlanding files rejected or misplaced (`crm landing retry <file>` after a fix):")
        typer.echo("\n".join(f"- {line}" for line in rejected))
    if len(reasons):
        reasons["example"] = reasons["example"].map(lambda s: mask_contacts(str(s))[:80])
        typer.echo("\nquarantined rows by rule:\n" + reasons.to_string(index=False))
    typer.echo(f"\nsend gate {day}: " + ("OPEN" if gate.is_open else "CLOSED\n- " + "\n- ".join(gate.reasons)))


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Customers of the simulated company.")] = 2000,
    days: Annotated[int, typer.Option(help="Days of history to simulate.")] = 60,
    nights: Annotated[int, typer.Option(min=1, help="Last days run one by one through `nightly`.")] = 3,
    fresh: Annotated[bool, typer.Option(help="Wipe the embedded home (./.crm) first.")] = True,
) -> None:
    """Simulate a small company on the embedded default and run the night's chain on its last days."""
    import os

    from crm.core.settings import get_settings, source_engine
    from crm.core.storage import open_store
    from crm.simulator import simulate as run_simulation
    from flows.nightly import nightly

    settings = get_settings()
    if fresh:
        if settings.warehouse_url or settings.source_url or settings.landing_url:
            raise OperatorError("--fresh only wipes the embedded default; unset CRM_*_URL or pass --no-fresh")
        shutil.rmtree(settings.home, ignore_errors=True)
    start = date(2026, 1, 1)
    summary = run_simulation(
        source_engine(settings, create=True),
        open_store(settings.landing),
        customers=customers,
        days=days,
        seed=42,
        start=start,
    )
    typer.echo(str(summary))
    last = summary.last_day
    for offset in range(nights - 1, -1, -1):  # the first night catches the warehouse up on the whole history
        day = last - timedelta(days=offset)
        night = nightly(as_of=day)
        gate = "OPEN" if night["send_gate_open"] else "CLOSED: " + "; ".join(night["reasons"])
        typer.echo(f"nightly {day}: ingest {night['ingest']}, send gate {gate}")
    typer.echo(
        f"\nreport: crm report --as-of {last}   (warehouse: {settings.warehouse}; "
        f"Data Docs: {settings.reports}/data-docs/{last}/index.html)"
    )
    if os.environ.get("PREFECT_API_URL"):
        typer.echo(f"Prefect UI: {os.environ['PREFECT_API_URL'].removesuffix('/api')}")


if __name__ == "__main__":
    app()
