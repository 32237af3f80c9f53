"""Collect finished runs into a report: per-cell returns, normalized scores, IQM with CIs, time-to-target."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spin_bench.runner.run import read_metrics, read_summary
from spin_bench.runner.stats import interquartile_mean, stratified_bootstrap_ci, time_to_target

REPORT_FORMATS = ("md", "csv", "json")
TARGET_FRACTION = 0.95
TARGET_AGENT = "f-iql"


@dataclass
class RunRecord:
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]

    @property
    def cell(self) -> tuple[str, str, str, int, str]:
        s = self.summary
        return (s["agent"], s["task"], s["dataset"], s["bins"], s["preset"])


@dataclass
class CellRow:
    """One (agent, task, dataset, bins, preset) cell aggregated over seeds."""

    agent: str
    task: str
    dataset: str
    bins: int
    preset: str
    seeds: list[int]
    final_return_mean: float
    final_return_std: float
    final_normalized_mean: float
    best_return_mean: float
    eval_episodes: int
    time_to_target_s: float | None = None
    target_reached: str = "n/a"
    failed: int = 0
    curves: dict[int, tuple[list[int], list[float]]] = field(default_factory=dict, repr=False)
    """Per seed: (steps, eval returns)."""
    walls: dict[int, list[float]] = field(default_factory=dict, repr=False)
    """Per seed: wall-clock seconds at each evaluation (pretraining included)."""


def collect_runs(runs_dir: str | Path) -> tuple[list[RunRecord], list[dict]]:
    """Finished runs (with their metrics) and failed runs' summaries under ``runs_dir``."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise ValueError(f"runs directory {str(root)!r} does not exist")
    finished, failed = [], []
    for path in sorted(root.rglob("summary.json")):
        summary = read_summary(path.parent)
        if summary["status"] == "finished":
            finished.append(RunRecord(summary, read_metrics(path.parent)))
        else:
            failed.append(summary)
    return finished, failed


def build_cells(records: list[RunRecord], failed: list[dict]) -> list[CellRow]:
    by_cell: dict[tuple, list[RunRecord]] = defaultdict(list)
    for record in records:
        by_cell[record.cell].append(record)
    failures: dict[tuple, int] = defaultdict(int)
    for summary in failed:
        failures[(summary["agent"], summary["task"], summary["dataset"], summary["bins"], summary["preset"])] += 1

    rows = []
    for (agent, task, dataset, bins, preset), group in sorted(by_cell.items()):
        finals = np.array([r.summary["final_return_mean"] for r in group])
        rows.append(
            CellRow(
                agent=agent,
                task=task,
                dataset=dataset,
                bins=bins,
                preset=preset,
                seeds=sorted(r.summary["seed"] for r in group),
                final_return_mean=float(finals.mean()),
                final_return_std=float(finals.std()),
                final_normalized_mean=float(np.mean([r.summary["final_normalized_score"] for r in group])),
                best_return_mean=float(np.mean([r.summary["best_return_mean"] for r in group])),
                eval_episodes=int(group[0].summary["eval_episodes"]),
                failed=failures.get((agent, task, dataset, bins, preset), 0),
                curves={
                    r.summary["seed"]: ([m["step"] for m in r.metrics], [m["eval_return_mean"] for m in r.metrics])
                    for r in group
                },
                walls={r.summary["seed"]: [m["wall_seconds"] for m in r.metrics] for r in group},
            )
        )
    _fill_time_to_target(rows)
    return rows


def _fill_time_to_target(rows: list[CellRow]) -> None:
    """Seconds until 95% of F-IQL's final return on the same dataset and seeds (median over seeds)."""
    reference = {(r.task, r.dataset, r.bins, r.preset): r for r in rows if r.agent == TARGET_AGENT}
    for row in rows:
        ref = reference.get((row.task, row.dataset, row.bins, row.preset))
        if ref is None:
            continue
        seeds = [s for s in row.seeds if s in ref.seeds]
        if not seeds:
            continue
        target = TARGET_FRACTION * float(np.mean([ref.curves[s][1][-1] for s in seeds]))
        times = [time_to_target(row.walls[s], row.curves[s][1], target) for s in seeds]
        reached = [t for t in times if t is not None]
        row.target_reached = f"{len(reached)}/{len(seeds)}"
        row.time_to_target_s = float(np.median(reached)) if reached else None


def aggregate(rows: list[CellRow], records: list[RunRecord], seed: int = 0) -> list[dict[str, Any]]:
    """IQM of normalized final scores across tasks (all seeds pooled) per (agent, dataset, bins, preset)."""
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        s = record.summary
        groups[(s["agent"], s["dataset"], s["bins"], s["preset"])][s["task"]].append(s["final_normalized_score"])
    out = []
    for (agent, dataset, bins, preset), by_task in sorted(groups.items()):
        point, low, high = stratified_bootstrap_ci(by_task, interquartile_mean, seed=seed)
        out.append(
            {
                "agent": agent,
                "dataset": dataset,
                "bins": bins,
                "preset": preset,
                "tasks": len(by_task),
                "runs": sum(len(v) for v in by_task.values()),
                "iqm_normalized": round(point, 2),
                "ci95_low": round(low, 2),
                "ci95_high": round(high, 2),
            }
        )
    return out


def header(rows: list[CellRow]) -> str:
    seeds = sorted({s for r in rows for s in r.seeds})
    episodes = sorted({r.eval_episodes for r in rows})
    return (
        "Metric: undiscounted episode return of the policy's sampled actions (0-1000), mean over "
        f"{'/'.join(map(str, episodes))} evaluation episodes (episode k reset with seed+100+k). "
        "Normalized score: 100 * (R - R_random) / (R_expert - R_random), per task and bins, from the dataset catalog. "
        "Checkpoint rule: the official number is the FINAL evaluation; 'best' is the best evaluation during "
        "training, shown for reference only. "
        f"Seeds: {', '.join(map(str, seeds))}. Aggregate: interquartile mean (IQM) over all runs of all tasks, "
        "95% CI by stratified bootstrap (2000 resamples within tasks). "
        f"Time-to-target: wall-clock seconds until an evaluation reaches {TARGET_FRACTION:.0%} of F-IQL's final "
        "return on the same dataset and seeds (SPIN's ASM pretraining included); median over seeds that reached it."
    )


def _fmt_time(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.0f}"


def cell_dicts(rows: list[CellRow]) -> list[dict[str, Any]]:
    return [
        {
            "agent": r.agent,
            "task": r.task,
            "dataset": r.dataset,
            "bins": r.bins,
            "preset": r.preset,
            "seeds": len(r.seeds),
            "final_return_mean": round(r.final_return_mean, 2),
            "final_return_std": round(r.final_return_std, 2),
            "normalized_score": round(r.final_normalized_mean, 2),
            "best_return_mean": round(r.best_return_mean, 2),
            "time_to_target_s": None if r.time_to_target_s is None else round(r.time_to_target_s, 1),
            "target_reached": r.target_reached,
            "failed_runs": r.failed,
        }
        for r in rows
    ]


def render(rows: list[CellRow], aggregates: list[dict[str, Any]], fmt: str) -> str:
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; valid formats: {', '.join(REPORT_FORMATS)}")
    cells = cell_dicts(rows)
    if fmt == "json":
        return json.dumps({"header": header(rows), "cells": cells, "aggregates": aggregates}, indent=2) + "\n"
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(cells[0]) if cells else ["agent"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(cells)
        return text.getvalue()
    lines = ["# spin-bench report", "", header(rows), "", "## Per task", ""]
    lines += [
        "| agent | task | dataset | bins | preset | seeds | final return (official) | normalized (0-100) "
        "| best return (not official) | time-to-target s | reached |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c['agent']} | {c['task']} | {c['dataset']} | {c['bins']} | {c['preset']} | {c['seeds']} | "
            f"{c['final_return_mean']:.1f} ± {c['final_return_std']:.1f} | {c['normalized_score']:.1f} | "
            f"{c['best_return_mean']:.1f} | {_fmt_time(c['time_to_target_s'])} | {c['target_reached']} |"
        )
    lines += ["", "## Aggregate (normalized score, IQM across tasks)", ""]
    lines += ["| agent | dataset | bins | preset | tasks | runs | IQM | 95% CI |", "|---|---|---|---|---|---|---|---|"]
    for a in aggregates:
        lines.append(
            f"| {a['agent']} | {a['dataset']} | {a['bins']} | {a['preset']} | {a['tasks']} | {a['runs']} | "
            f"{a['iqm_normalized']:.1f} | [{a['ci95_low']:.1f}, {a['ci95_high']:.1f}] |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[CellRow], aggregates: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Learning curves per (task, dataset, bins, preset) and an aggregate IQM chart, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    panels: dict[tuple, list[CellRow]] = defaultdict(list)
    for r in rows:
        panels[(r.task, r.dataset, r.bins, r.preset)].append(r)
    for (task, dataset, bins, preset), group in sorted(panels.items()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in group:
            steps = min((c[0] for c in r.curves.values()), key=len)
            curves = np.array([c[1][: len(steps)] for c in r.curves.values()])
            mean, std = curves.mean(0), curves.std(0)
            ax.plot(steps, mean, label=f"{r.agent} (n={len(r.seeds)})")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.set(title=f"{task} / {dataset} (bins={bins}, {preset})", xlabel="gradient steps", ylabel="return")
        ax.legend()
        path = out / f"curve_{task}_{dataset}_bins{bins}_{preset}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    if aggregates:
        fig, ax = plt.subplots(figsize=(7, 0.5 + 0.4 * len(aggregates)))
        labels = [f"{a['agent']} / {a['dataset']} (m={a['bins']}, {a['preset']})" for a in aggregates]
        points = np.array([a["iqm_normalized"] for a in aggregates])
        errors = np.array([[p - a["ci95_low"], a["ci95_high"] - p] for p, a in zip(points, aggregates, strict=True)])
        ax.errorbar(points, np.arange(len(points)), xerr=errors.T, fmt="o", capsize=4)
        ax.set_yticks(np.arange(len(points)), labels)
        ax.set(xlabel="IQM normalized score (0-100), 95% stratified bootstrap CI")
        fig.tight_layout()
        path = out / "aggregate_iqm.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
