"""The night's DAG as data: its steps in order, what each needs, and the run summary.

Pure logic (no Prefect): `flows/nightly.py` runs the steps as subflows and asks `blocker` before
each one, so a failed step stops what depends on it and nothing else (loyalty does not wait for
churn), and campaigns and dispatch wait for an open send gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from crm.core.markdown import Col, markdown_table


class NightStep(StrEnum):
    """A business step of the night, in the order they run."""

    INGEST = "ingest"
    QUALITY = "quality"
    RECONCILE = "reconcile"
    DELIVERY_REPORTS = "delivery-reports"
    SEGMENTS = "segments"
    CHURN = "churn"
    LOYALTY = "loyalty"
    CAMPAIGNS = "campaigns"
    DISPATCH = "dispatch"


class StepStatus(StrEnum):
    """What happened to a step this night."""

    DONE = "done"  # ran and completed (possibly with a finding: a named state such as Diverged)
    FAILED = "failed"  # ran and failed: its dependents are skipped
    SKIPPED = "skipped"  # not run: a step it needs failed or was skipped, or the send gate is closed
    NOT_SELECTED = "not selected"  # left out by `--steps`: its stored output from an earlier run stands


# What each step needs to have done this night (a step left out by --steps counts as done).
NEEDS: dict[NightStep, tuple[NightStep, ...]] = {
    NightStep.INGEST: (),
    NightStep.QUALITY: (NightStep.INGEST,),
    NightStep.RECONCILE: (NightStep.INGEST,),
    NightStep.DELIVERY_REPORTS: (NightStep.INGEST,),
    NightStep.SEGMENTS: (NightStep.INGEST,),
    NightStep.CHURN: (NightStep.INGEST,),
    NightStep.LOYALTY: (NightStep.INGEST,),
    # Churn scores and loyalty events are optional inputs: campaigns plan without them (the
    # churn-risk and loyalty audiences are then empty, and the summary says so).
    NightStep.CAMPAIGNS: (NightStep.SEGMENTS, NightStep.DELIVERY_REPORTS),
    NightStep.DISPATCH: (NightStep.CAMPAIGNS,),
}
NEEDS_OPEN_GATE = frozenset({NightStep.CAMPAIGNS, NightStep.DISPATCH})
GATE_STEPS = (NightStep.QUALITY, NightStep.RECONCILE)


def parse_steps(text: str | Iterable[str] | None) -> list[NightStep]:
    """`segments,loyalty` -> the steps in night order; None or empty -> every step. Unknown names raise ValueError."""
    if text is None:
        return list(NightStep)
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s and s.strip()]
    if not names:
        return list(NightStep)
    unknown = [n for n in names if n not in NightStep._value2member_map_]
    if unknown:
        raise ValueError(f"unknown step(s) {', '.join(unknown)}; known: {', '.join(NightStep)}")
    chosen = {NightStep(n) for n in names}
    return [s for s in NightStep if s in chosen]


@dataclass
class StepOutcome:
    """One step of one night: what happened, how long it took, the run to open."""

    step: NightStep
    status: StepStatus
    state: str = ""
    message: str = ""
    seconds: float = 0.0
    run_id: str = ""
    figures: dict = field(default_factory=dict)

    def as_row(self) -> dict:
        return {
            "step": self.step.value,
            "status": self.status.value,
            "state": self.state,
            "message": self.message,
            "seconds": round(self.seconds, 1),
            "run_id": self.run_id,
            "figures": self.figures,
        }


def blocker(step: NightStep, outcomes: Mapping[NightStep, StepOutcome], gate_open: bool | None) -> str | None:
    """Why `step` must not run tonight (None: it may). Steps not in `outcomes` were not selected."""
    for need in NEEDS[step]:
        done = outcomes.get(need)
        if done is not None and done.status in (StepStatus.FAILED, StepStatus.SKIPPED):
            return f"needs {need}, which {done.status}"
    if step in NEEDS_OPEN_GATE and not gate_open:
        return "send gate closed"
    return None


def night_status(outcomes: Iterable[StepOutcome]) -> tuple[list[str], list[str]]:
    """The failed steps and the skipped steps (with why), in night order."""
    failed, skipped = [], []
    for o in outcomes:
        if o.status == StepStatus.FAILED:
            failed.append(f"{o.step} failed: {o.message}")
        elif o.status == StepStatus.SKIPPED:
            skipped.append(f"{o.step} ({o.message})")
    return failed, skipped


def _figure(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def key_figures(result, limit: int = 6) -> dict:
    """The scalar figures a step returned (counts, states, shares), for the summary; nested values left out."""
    if not isinstance(result, Mapping):
        return {}
    out = {}
    for key, value in result.items():
        if key in ("as_of", "run_id") or isinstance(value, Mapping | list | tuple | set) or value is None:
            continue
        out[key] = value
        if len(out) >= limit:
            break
    return out


def night_summary_markdown(as_of, headline: str, outcomes: Iterable[StepOutcome], links: Mapping[str, str]) -> str:
    """The run summary: one headline, then every step with its state, time, what it did or why it did not run."""
    rows = []
    for o in outcomes:
        what = o.message if o.status != StepStatus.DONE or not o.figures else ""
        if o.figures:
            what = "; ".join(f"{k.replace('_', ' ')} {_figure(v)}" for k, v in o.figures.items()) + (
                f" ({o.message})" if o.message and o.status == StepStatus.DONE and o.state != "Completed" else ""
            )
        rows.append(
            {
                "step": o.step.value,
                "status": o.status.value if o.status != StepStatus.DONE else o.state or "Completed",
                "seconds": f"{o.seconds:,.1f}" if o.status in (StepStatus.DONE, StepStatus.FAILED) else "",
                "what happened": what[:300],
                "run": links.get(o.step.value, ""),
            }
        )
    lines = [f"# Night {as_of}", "", f"**{headline}**", ""]
    lines += markdown_table(rows, ["step", "status", Col("seconds", "time (s)", right=True), "what happened", "run"])
    return "\n".join(lines)
