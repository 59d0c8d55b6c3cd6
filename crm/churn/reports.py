"""Churn reports: markdown for Prefect artifacts and PNG plots (calibration, lift, feature importance)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from crm.churn.model import RECENCY_MODEL
from crm.core.markdown import Col, markdown_table, num

METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "lift_top10",
    "capture_top10",
    "lift_top20",
    "capture_top20",
    "churn_rate",
    "rows",
)


def _f(digits: int = 4):
    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "n/a"
        return f"{value:.{digits}f}"

    return fmt


def metrics_rows(metrics: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One row per model (challenger, the other pipeline, recency alone, champion) with every metric."""
    return [{"model": name, **{m: values.get(m) for m in METRICS}} for name, values in metrics.items()]


def training_markdown(
    as_of: str,
    plan: dict,
    result: Any,
    entry: dict,
    promoted: bool,
    reason: str,
    plots: dict[str, str],
) -> str:
    """The training report: snapshots used, metrics of every model on the same window, the decision, plot links."""
    challenger = str(result.challenger_kind)
    mine, recency = result.metrics[challenger]["roc_auc"], result.metrics[RECENCY_MODEL]["roc_auc"]
    lines = [
        f"# Churn model training {as_of}",
        "",
        f"Model **{entry['version']}** ({challenger}), {len(result.features)} features, "
        f"{result.train_rows:,} training rows, {result.valid_rows:,} validation rows "
        f"(split by {result.split}; validation snapshot {result.validation_snapshot}).",
        "",
        f"Snapshots used: **{len(plan['used'])} of {len(plan['wanted'])}** wanted ({', '.join(plan['used'])})"
        + (f"; left out: {'; '.join(f'{d}: {r}' for d, r in plan['skipped'].items())}" if plan["skipped"] else "")
        + ".",
        f"Data kinds: {', '.join(plan['kinds'])}.",
        "",
        f"**ROC-AUC {mine:.4f} vs recency alone {recency:.4f}: difference {mine - recency:+.4f}.**",
        "",
        "## Validation metrics (same window for every model)",
        "",
        *markdown_table(
            metrics_rows(result.metrics),
            [
                Col("model"),
                *(Col(m, right=True, fmt=_f(2 if m.startswith(("lift", "capture")) else 4)) for m in METRICS[:-1]),
                num("rows"),
            ],
        ),
        "",
        f"## Decision: {'promoted to champion' if promoted else 'registered, not promoted'}",
        "",
        reason,
        "",
        "## Most important features (drop in ROC-AUC when shuffled)",
        "",
        *markdown_table(
            result.importance.head(15).to_dict("records"), [Col("feature"), Col("importance", right=True, fmt=_f())]
        ),
        "",
        f"Data fingerprint `{entry['data_fingerprint'][:16]}`, model SHA-256 `{entry['sha256'][:16]}`.",
        "",
        "## Plots",
        "",
        *[f"- [{name}]({url})" for name, url in plots.items()],
    ]
    return "\n".join(lines)


def scoring_markdown(
    as_of: str,
    entry: dict,
    scored: int,
    drift: pd.DataFrame,
    warning: float,
    refusals: list[str],
    deciles: pd.DataFrame,
) -> str:
    """The scoring report: the model that served, counts per decile, PSI drift with warnings, refused models."""
    lines = [
        f"# Churn scores {as_of}",
        "",
        f"Model **{entry['version']}** scored **{scored:,}** eligible customers.",
        "",
    ]
    if refusals:
        lines += ["## Refused models (the previous champion served)", "", *[f"- {r}" for r in refusals], ""]
    warned = drift[drift["warning"]]
    lines += [
        f"## Drift against training (PSI; warning above {warning})",
        "",
        f"**{len(warned)} warning(s)**" + (f": {', '.join(warned['name'].head(10))}" if len(warned) else "") + ".",
        "",
        *markdown_table(
            drift.head(15).to_dict("records"),
            [Col("name"), Col("psi", right=True, fmt=_f()), Col("warning", fmt=lambda w: "WARNING" if w else "")],
        ),
        "",
        "## Risk deciles",
        "",
        *markdown_table(
            deciles.to_dict("records"),
            [num("decile"), num("customers"), Col("mean_probability", "mean probability", right=True, fmt=_f())],
        ),
    ]
    return "\n".join(lines)


def registry_rows(entries: list[dict], champion: str | None) -> list[dict[str, Any]]:
    """`crm models list`: one row per version."""
    rows = []
    for e in entries:
        m = e.get("metrics", {}).get(e["model_kind"], {})
        rec = e.get("metrics", {}).get(RECENCY_MODEL, {})
        rows.append(
            {
                "version": e["version"] + (" *" if e["version"] == champion else ""),
                "as_of": e["as_of"],
                "status": e.get("status", ""),
                "roc_auc": m.get("roc_auc"),
                "recency_auc": rec.get("roc_auc"),
                "features": len(e.get("features", [])),
                "window": f"{e['training_window'][0]}..{e['training_window'][-1]}",
                "decision": e.get("decision", ""),
            }
        )
    return rows


def registry_markdown(entries: list[dict], champion: str | None) -> str:
    """The registry as a table (champion marked with *)."""
    return "\n".join(
        markdown_table(
            registry_rows(entries, champion),
            [
                Col("version"),
                Col("as_of"),
                Col("status"),
                Col("roc_auc", right=True, fmt=_f()),
                Col("recency_auc", "recency AUC", right=True, fmt=_f()),
                num("features"),
                Col("window", "training window"),
                Col("decision"),
            ],
        )
    )


# ----------------------------------------------------------------------------------------- plots
def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _figure(width: float = 8, height: float = 5.5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def calibration_png(curves: dict[str, pd.DataFrame]) -> bytes:
    """Observed vs predicted churn per bin, one line per model."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for name, points in curves.items():
        ax.plot(points["predicted"], points["observed"], marker="o", label=name)
    ax.set(xlabel="mean predicted churn probability", ylabel="observed churn rate", title="Calibration (validation)")
    ax.legend()
    return _png(fig)


def lift_png(curves: dict[str, pd.DataFrame]) -> bytes:
    """Cumulative capture by share of customers targeted, one line per model."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    for name, points in curves.items():
        ax.plot(
            points["share"], points["capture"], marker=".", label=f"{name} (top 10% lift {points['lift'].iloc[1]:.2f})"
        )
    ax.set(
        xlabel="share of customers, highest risk first", ylabel="share of churners captured", title="Lift (validation)"
    )
    ax.legend()
    return _png(fig)


def importance_png(importance: pd.DataFrame, top: int = 20) -> bytes:
    """Horizontal bars of the permutation importance of the top features."""
    data = importance.head(top).iloc[::-1]
    fig, ax = _figure(8, max(3, 0.3 * len(data) + 1))
    ax.barh(data["feature"], data["importance"].fillna(0))
    ax.set(xlabel="drop in ROC-AUC when shuffled", title="Feature importance (challenger)")
    return _png(fig)
