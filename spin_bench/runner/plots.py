"""A report's figures as PNG files: learning curves per (task, dataset, bins), the aggregate IQM chart and the
performance profiles.

Figures are drawn with matplotlib's default style on the Agg backend and saved without the software tag, so the
same run files give the same bytes on the same matplotlib.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spin_bench.runner.report import (
    ALL_DATASETS,
    BOOTSTRAP_REPETITIONS,
    BOOTSTRAP_SEED,
    CellRow,
    Entry,
    Report,
    _column_name,
    compared_labels,
    datasets_of,
    differing_fields,
    entry_label,
    entry_of,
    format_value,
    profiles,
)
from spin_bench.runner.stats import mean_curve_ci

AGGREGATE_FILE = "aggregate_iqm.png"
PROFILE_FILE = "performance_profiles.png"
DPI = 100
BAND_LABEL = f"band: 95% bootstrap CI of the mean over seeds ({BOOTSTRAP_REPETITIONS} resamples)"
SAVE_OPTIONS = {"dpi": DPI, "bbox_inches": "tight", "metadata": {"Software": None}}
"""No software tag (it names the matplotlib version), and a layout that fits every label."""


def curve_file(task: str, dataset: str, bins: int) -> str:
    return f"curve_{task}_{dataset}_bins{bins}.png"


@dataclass
class Series:
    """One cell's learning curve: mean normalized score over seeds at each evaluation, with its CI band."""

    label: str
    entry: Entry
    steps: np.ndarray
    minutes: np.ndarray
    """Mean over seeds of the wall-clock minutes at each evaluation (pretraining included)."""
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: int


def _curve_columns(group: list[CellRow]) -> dict[str, list[str]]:
    """Per agent, the fields that tell a panel's curves apart: the gradient steps when they differ in the panel,
    then what differs between that agent's configs."""
    by_agent: dict[str, list[dict]] = defaultdict(list)
    for r in group:
        by_agent[r.agent].append(r.config)
    steps = ["num_steps"] if len({json.dumps(r.config.get("num_steps")) for r in group}) > 1 else []
    return {agent: differing_fields(configs, always=tuple(steps)) for agent, configs in by_agent.items()}


def panel_series(group: list[CellRow]) -> list[Series]:
    """The curves of one panel, labelled with the agent, the fields that differ (``steps=300``), the data digest
    when only that differs, and the number of seeds drawn; cells without a point in common are left out."""
    columns = _curve_columns(group)
    names = [
        " ".join([r.agent] + [f"{_column_name(c)}={format_value(r.config.get(c, '-'))}" for c in columns[r.agent]])
        for r in group
    ]
    out = []
    for r, name in zip(group, names, strict=True):
        if names.count(name) > 1:
            name += f" data={(r.data_digest or 'unknown')[:8]}"
        common = sorted(set.intersection(*(set(r.curves[s][0]) for s in r.seeds)))
        if not common:
            continue
        scores, minutes = [], []
        for s in r.seeds:
            at = {step: i for i, step in enumerate(r.curves[s][0])}
            scores.append([r.normalized_curves[s][at[step]] for step in common])
            minutes.append([r.walls[s][at[step]] / 60 for step in common])
        mean, low, high = mean_curve_ci(np.array(scores), seed=BOOTSTRAP_SEED)
        out.append(
            Series(
                f"{name} (n={len(r.seeds)})",
                entry_of(r),
                np.array(common, dtype=float),
                np.mean(minutes, axis=0),
                mean,
                low,
                high,
                len(r.seeds),
            )
        )
    return out


def panel_title(group: list[CellRow]) -> str:
    """Task, dataset and bins, then the preset and the fields set on it in every run of the panel."""
    settings = [r.setting.split(" ") for r in group]
    presets = sorted({s[0] for s in settings})
    shared = [part for part in settings[0][1:] if all(part in s[1:] for s in settings)]
    task, dataset, bins = group[0].task, group[0].dataset, group[0].bins
    return f"{task} / {dataset} ({bins} bins)\npreset {'+'.join(presets)}" + "".join(f", {p}" for p in shared)


def _colors(rows: list[CellRow]) -> dict[Entry, tuple]:
    from matplotlib import colormaps

    from spin_bench.runner.report import _entry_order

    entries = sorted({entry_of(r) for r in rows}, key=_entry_order(rows))
    palette = colormaps["tab10"].colors
    return {e: palette[i % len(palette)] for i, e in enumerate(entries)}


def _band_handle():
    from matplotlib.patches import Patch

    return Patch(facecolor="0.5", alpha=0.25, label=BAND_LABEL)


def _save(fig, path: Path) -> Path:
    import io

    import matplotlib.pyplot as plt

    from spin_bench._io import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **SAVE_OPTIONS)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _curves(group: list[CellRow], colors: dict[Entry, tuple], path: Path) -> Path:
    import matplotlib.pyplot as plt

    series = panel_series(group)
    fig, (by_steps, by_minutes) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    handles = []
    for s in series:
        color = colors[s.entry]
        for ax, x in ((by_steps, s.steps), (by_minutes, s.minutes)):
            (line,) = ax.plot(x, s.mean, marker="o", markersize=4, color=color, label=s.label)
            if s.runs > 1:
                ax.fill_between(x, s.low, s.high, color=color, alpha=0.2, linewidth=0)
        handles.append(line)
    if any(s.runs > 1 for s in series):
        handles.append(_band_handle())
    by_steps.set(xlabel="gradient steps", ylabel="normalized score (0-100), final-evaluation protocol")
    by_minutes.set(xlabel="wall-clock minutes (ASM pre-training included)")
    for ax in (by_steps, by_minutes):
        ax.grid(alpha=0.3)
    fig.suptitle(panel_title(group))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def _scopes(rows: list[CellRow]) -> list[str]:
    return [*datasets_of(rows), ALL_DATASETS]


def _scope_title(report: Report, scope: str) -> str:
    """The scope and how many (task, dataset) cells its agents are compared on."""
    cells = next((len(c.cells) for c in report.comparisons if c.scope == scope), 0)
    return f"{'all datasets' if scope == ALL_DATASETS else scope}\ncompared on {cells} cell(s)"


def _aggregate(report: Report, colors: dict[Entry, tuple], path: Path) -> Path:
    import matplotlib.pyplot as plt

    rows, scopes = report.rows, _scopes(report.rows)
    labels = compared_labels(report)
    color_of = {entry_label(e, rows): c for e, c in colors.items()}
    height = max(2.8, 1.2 + 0.45 * len(labels))
    fig, axes = plt.subplots(1, len(scopes), figsize=(2.0 + 3.2 * len(scopes), height), sharey=True, squeeze=False)
    for ax, scope in zip(axes[0], scopes, strict=True):
        for a in (a for a in report.aggregates if a["dataset"] == scope):
            y = labels.index(a["label"])
            error = [[a["iqm_normalized"] - a["ci95_low"]], [a["ci95_high"] - a["iqm_normalized"]]]
            ax.errorbar(a["iqm_normalized"], y, xerr=error, fmt="o", capsize=4, color=color_of[a["label"]])
        ax.set_title(_scope_title(report, scope))
        ax.set_xlabel("IQM normalized score (0-100)")
        ax.grid(axis="x", alpha=0.3)
        ax.set_ylim(len(labels) - 0.5, -0.5)
    axes[0][0].set_yticks(range(len(labels)), labels)
    fig.suptitle("IQM of final normalized scores; bars: 95% stratified bootstrap CI")
    fig.tight_layout()
    return _save(fig, path)


def _profiles(report: Report, colors: dict[Entry, tuple], path: Path) -> Path:
    import matplotlib.pyplot as plt

    rows, scopes = report.rows, _scopes(report.rows)
    color_of = {entry_label(e, rows): c for e, c in colors.items()}
    found = profiles(rows)
    fig, axes = plt.subplots(1, len(scopes), figsize=(1.0 + 4.0 * len(scopes), 3.8), sharey=True, squeeze=False)
    handles: dict[str, object] = {}
    for ax, scope in zip(axes[0], scopes, strict=True):
        for p in (p for p in found if p["dataset"] == scope):
            color = color_of[p["label"]]
            (line,) = ax.plot(p["taus"], p["fraction"], color=color, label=p["label"])
            ax.fill_between(p["taus"], p["ci95_low"], p["ci95_high"], color=color, alpha=0.2, linewidth=0)
            handles.setdefault(p["label"], line)
        ax.set_title(_scope_title(report, scope))
        ax.set_xlabel("normalized score tau")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of runs with score > tau")
    band = _band_handle()
    band.set_label("band: 95% stratified bootstrap CI")
    fig.legend(
        handles=[*(handles[label] for label in compared_labels(report) if label in handles), band],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=3,
        fontsize="small",
    )
    fig.suptitle("Performance profiles of final normalized scores")
    fig.tight_layout()
    return _save(fig, path)


def write_plots(report: Report, out_dir: str | Path) -> list[Path]:
    """Learning curves per (task, dataset, bins), the aggregate IQM chart and the performance profiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = report.rows
    panels: dict[tuple, list[CellRow]] = defaultdict(list)
    for r in rows:
        panels[(r.task, r.dataset, r.bins)].append(r)
    with plt.style.context("default"):
        colors = _colors(rows)
        written = [_curves(group, colors, out / curve_file(*key)) for key, group in sorted(panels.items())]
        if report.aggregates:
            written.append(_aggregate(report, colors, out / AGGREGATE_FILE))
            written.append(_profiles(report, colors, out / PROFILE_FILE))
    return written
