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

from spin_bench.runner.run import read_metrics
from spin_bench.runner.stats import interquartile_mean, stratified_bootstrap_ci, time_to_target

REPORT_FORMATS = ("md", "csv", "json")
TARGET_FRACTION = 0.95
TARGET_AGENT = "f-iql"


@dataclass
class RunRecord:
    """A finished run: its summary, its evaluations and the resolved agent config it trained with."""

    summary: dict[str, Any]
    metrics: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    """The resolved agent config (config.json's ``agent_config``)."""
    data_digest: str | None = None
    """sha256 of the dataset it trained on, when config.json records it."""

    @property
    def cell(self) -> tuple:
        """(agent, task, dataset, bins, config, data digest): runs of one cell differ only in their seed."""
        return cell_key(self.summary, self.config, self.data_digest)


@dataclass
class Collected:
    """What ``collect_runs`` found under a runs folder."""

    finished: list[RunRecord]
    failed: list[RunRecord]
    """Runs whose summary says they failed (their metrics are not read)."""
    skipped: list[tuple[Path, str]]
    """(file, why) of each run folder left out: unreadable or incomplete files."""


@dataclass
class CellRow:
    """One (agent, task, dataset, bins, resolved config, data) cell aggregated over seeds."""

    agent: str
    task: str
    dataset: str
    bins: int
    preset: str
    """The preset the runs named (``a+b`` when runs of one config named different presets)."""
    seeds: list[int]
    final_return_mean: float
    final_return_std: float
    final_normalized_mean: float
    best_return_mean: float
    last_evals_return_mean: float
    """Mean over seeds of each run's mean over its last ``LAST_EVALS`` evaluations: shown beside the final one,
    because on mixed data a single final evaluation can sit on a falling curve or a noise spike."""
    last_evals_normalized_mean: float
    eval_episodes: int
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    """The resolved agent config the cell's runs share."""
    data_digest: str | None = None
    time_to_target_s: float | None = None
    target_reached: str = "n/a"
    failed: int = 0
    curves: dict[int, tuple[list[int], list[float]]] = field(default_factory=dict, repr=False)
    """Per seed: (steps, eval returns)."""
    walls: dict[int, list[float]] = field(default_factory=dict, repr=False)
    """Per seed: wall-clock seconds at each evaluation (pretraining included)."""


LAST_EVALS = 5
"""Evaluations averaged for the "mean of the last evaluations" column (fewer when a run has fewer)."""

SPEC_KEYS = ("agent", "task", "dataset", "bins", "seed", "status")
FINISHED_KEYS = ("final_return_mean", "final_return_std", "final_normalized_score", "best_return_mean", "eval_episodes")
METRIC_KEYS = ("step", "wall_seconds", "eval_return_mean", "normalized_score")


def cell_key(summary: dict[str, Any], config: dict[str, Any], data_digest: str | None) -> tuple:
    return (
        summary["agent"],
        summary["task"],
        summary["dataset"],
        summary["bins"],
        json.dumps(config, sort_keys=True),
        data_digest,
    )


class BadRunFile(ValueError):
    """A run file that cannot be read or lacks what a report needs; the run is skipped."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadRunFile(path, "missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadRunFile(path, f"unreadable ({err})") from None
    except json.JSONDecodeError as err:
        raise BadRunFile(path, f"not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict):
        raise BadRunFile(path, f"holds a {type(data).__name__}, not a JSON object")
    return data


def _require_keys(path: Path, data: dict[str, Any], keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise BadRunFile(path, f"lacks {', '.join(map(repr, missing))}")


def _read_run(folder: Path) -> tuple[str, RunRecord]:
    """(status, record) of the run in ``folder``; ``BadRunFile`` when a file is unreadable or incomplete."""
    summary_path = folder / "summary.json"
    summary = _read_json_object(summary_path)
    _require_keys(summary_path, summary, SPEC_KEYS)
    config_path = folder / "config.json"
    run_config = _read_json_object(config_path)
    _require_keys(config_path, run_config, ("agent_config",))
    if not isinstance(run_config["agent_config"], dict):
        raise BadRunFile(config_path, "'agent_config' is not a JSON object")
    spec = run_config.get("spec") if isinstance(run_config.get("spec"), dict) else {}
    digest = run_config.get("dataset_sha256") or spec.get("data_digest")
    record = RunRecord(summary, [], run_config["agent_config"], digest)
    if summary["status"] != "finished":
        return summary["status"], record
    _require_keys(summary_path, summary, FINISHED_KEYS)
    metrics_path = folder / "metrics.csv"
    try:
        record.metrics = read_metrics(folder)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
        raise BadRunFile(metrics_path, f"unreadable ({err})") from None
    if not record.metrics:
        raise BadRunFile(metrics_path, "missing or without evaluations")
    for row in record.metrics:
        if any(row.get(k) is None for k in METRIC_KEYS):
            raise BadRunFile(metrics_path, f"a row lacks one of {', '.join(METRIC_KEYS)}")
    return "finished", record


def collect_runs(runs_dir: str | Path) -> Collected:
    """Finished and failed runs under ``runs_dir``, and the run folders skipped because of bad files."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise ValueError(f"runs directory {str(root)!r} does not exist")
    found = Collected([], [], [])
    for path in sorted(root.rglob("summary.json")):
        try:
            status, record = _read_run(path.parent)
        except BadRunFile as err:
            found.skipped.append((err.path, err.why))
            continue
        (found.finished if status == "finished" else found.failed).append(record)
    return found


def format_value(value: Any) -> str:
    """A config value as ``--set`` writes it (tuples joined by commas, ``none``, ``true``)."""
    if isinstance(value, list | tuple):
        return ",".join(map(format_value, value))
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return repr(value).removesuffix(".0")
    return str(value)


def value_order(value: Any) -> tuple:
    """Sort key of config values: numbers by size, the rest as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, format_value(value))


def differing_fields(configs: list[dict[str, Any]], always: tuple[str, ...] = ()) -> list[str]:
    """Fields whose value differs between ``configs`` (among the configs that have the field), after ``always``."""
    names: list[str] = list(always)
    for config in configs:
        for name in config:
            if name in names:
                continue
            values = {json.dumps(c[name], sort_keys=True) for c in configs if name in c}
            if len(values) > 1:
                names.append(name)
    return names


def config_columns(rows: list[CellRow]) -> list[str]:
    """Columns that tell the cells apart: steps, then every config field that differs between cells, then
    ``data`` when cells of one config differ only in their dataset digest."""
    columns = differing_fields([r.config for r in rows], always=("num_steps",))
    by_config: dict[tuple, set] = defaultdict(set)
    for r in rows:
        by_config[(r.agent, r.task, r.dataset, r.bins, json.dumps(r.config, sort_keys=True))].add(r.data_digest)
    if any(len(digests) > 1 for digests in by_config.values()):
        columns.append("data")
    return columns


def _raw_value(row: CellRow, column: str) -> Any:
    if column == "data":
        return (row.data_digest or "unknown")[:8]
    return row.config.get(column, "-")


def _last_evals(metrics: list[dict[str, Any]], key: str) -> float:
    """Mean of ``key`` over a run's last ``LAST_EVALS`` evaluations."""
    return float(np.mean([row[key] for row in metrics[-LAST_EVALS:]]))


def build_cells(records: list[RunRecord], failed: list[RunRecord]) -> list[CellRow]:
    by_cell: dict[tuple, list[RunRecord]] = defaultdict(list)
    for record in records:
        by_cell[record.cell].append(record)
    failures: dict[tuple, int] = defaultdict(int)
    for record in failed:
        failures[record.cell] += 1

    rows = []
    for key, group in by_cell.items():
        agent, task, dataset, bins, _, digest = key
        finals = np.array([r.summary["final_return_mean"] for r in group])
        rows.append(
            CellRow(
                agent=agent,
                task=task,
                dataset=dataset,
                bins=bins,
                preset="+".join(sorted({str(r.summary.get("preset", "?")) for r in group})),
                seeds=sorted(r.summary["seed"] for r in group),
                final_return_mean=float(finals.mean()),
                final_return_std=float(finals.std()),
                final_normalized_mean=float(np.mean([r.summary["final_normalized_score"] for r in group])),
                best_return_mean=float(np.mean([r.summary["best_return_mean"] for r in group])),
                last_evals_return_mean=float(np.mean([_last_evals(r.metrics, "eval_return_mean") for r in group])),
                last_evals_normalized_mean=float(np.mean([_last_evals(r.metrics, "normalized_score") for r in group])),
                eval_episodes=int(group[0].summary["eval_episodes"]),
                config=group[0].config,
                data_digest=digest,
                failed=failures.get(key, 0),
                curves={
                    r.summary["seed"]: ([m["step"] for m in r.metrics], [m["eval_return_mean"] for m in r.metrics])
                    for r in group
                },
                walls={r.summary["seed"]: [m["wall_seconds"] for m in r.metrics] for r in group},
            )
        )
    columns = config_columns(rows)
    rows.sort(key=lambda r: (r.agent, r.task, r.dataset, r.bins, [value_order(_raw_value(r, c)) for c in columns]))
    _fill_time_to_target(rows)
    return rows


def _training_fields() -> tuple[str, ...]:
    """The config fields every agent shares (budget and evaluation): a reference must match them."""
    import dataclasses

    from spin_bench.agents.config import TrainConfig

    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def _reference(row: CellRow, rows: list[CellRow]) -> CellRow | None:
    """The F-IQL cell ``row`` is timed against: same task, dataset, bins, data and training budget. Of several
    (an F-IQL ablation), an F-IQL row is its own reference and other agents' rows have none."""
    shared = _training_fields()
    candidates = [
        r
        for r in rows
        if r.agent == TARGET_AGENT
        and (r.task, r.dataset, r.bins, r.data_digest) == (row.task, row.dataset, row.bins, row.data_digest)
        and all(r.config.get(name) == row.config.get(name) for name in shared)
    ]
    if len(candidates) == 1:
        return candidates[0]
    return row if row in candidates else None


def _fill_time_to_target(rows: list[CellRow]) -> None:
    """Seconds until 95% of F-IQL's final return on the same dataset and seeds (median over seeds)."""
    for row in rows:
        ref = _reference(row, rows)
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
    """IQM of normalized final scores across tasks (all seeds pooled) per (agent, dataset, bins, config)."""
    columns = [c for c in config_columns(rows) if c != "data"]
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    configs: dict[tuple, dict[str, Any]] = {}
    presets: dict[tuple, set[str]] = defaultdict(set)
    for record in records:
        s = record.summary
        key = (s["agent"], s["dataset"], s["bins"], json.dumps(record.config, sort_keys=True))
        groups[key][s["task"]].append(s["final_normalized_score"])
        configs[key] = record.config
        presets[key].add(str(s.get("preset", "?")))
    out = []
    for key, by_task in groups.items():
        agent, dataset, bins, _ = key
        point, low, high = stratified_bootstrap_ci(by_task, interquartile_mean, seed=seed)
        config = configs[key]
        out.append(
            {
                "agent": agent,
                "dataset": dataset,
                "bins": bins,
                "preset": "+".join(sorted(presets[key])),
                **{_column_name(c): format_value(config[c]) if c in config else "-" for c in columns},
                "tasks": len(by_task),
                "runs": sum(len(v) for v in by_task.values()),
                "iqm_normalized": round(point, 2),
                "ci95_low": round(low, 2),
                "ci95_high": round(high, 2),
            }
        )
    out.sort(key=lambda a: (a["agent"], a["dataset"], a["bins"], [value_order(a[_column_name(c)]) for c in columns]))
    return out


def _column_name(field_name: str) -> str:
    return "steps" if field_name == "num_steps" else field_name


def header(rows: list[CellRow]) -> str:
    seeds = sorted({s for r in rows for s in r.seeds})
    episodes = sorted({r.eval_episodes for r in rows})
    return (
        "Metric: undiscounted episode return of the policy's sampled actions (0-1000), mean over "
        f"{'/'.join(map(str, episodes))} evaluation episodes (episode k reset with seed+100+k). "
        "Normalized score: 100 * (R - R_random) / (R_expert - R_random), per task and bins, from the dataset catalog. "
        "Checkpoint rule: the official number is the FINAL evaluation; 'best' is the best evaluation during "
        "training, shown for reference only. "
        f"'Mean of last {LAST_EVALS} evals' averages each run's last {LAST_EVALS} evaluations, then the seeds: on "
        "mixed-quality data IQL agents can peak early and fall (docs/learning-curves.md), and a final evaluation far "
        "from that mean sits on a falling curve or a noise spike. "
        "Runs are grouped by their resolved agent config and dataset digest; the columns after 'preset' are the "
        "gradient steps and the config fields that differ between groups ('data': the dataset digest). "
        f"Seeds: {', '.join(map(str, seeds))}. Aggregate: interquartile mean (IQM) over all runs of all tasks, "
        "95% CI by stratified bootstrap (2000 resamples within tasks). "
        f"Time-to-target: wall-clock seconds until an evaluation reaches {TARGET_FRACTION:.0%} of F-IQL's final "
        "return on the same dataset, seeds and training budget (SPIN's ASM pretraining included); median over "
        "seeds that reached it."
    )


def _fmt_time(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.0f}"


def cell_dicts(rows: list[CellRow]) -> list[dict[str, Any]]:
    """One flat dict per cell: ids, steps and the differing config fields, then the numbers."""
    columns = config_columns(rows)
    return [
        {
            "agent": r.agent,
            "task": r.task,
            "dataset": r.dataset,
            "bins": r.bins,
            "preset": r.preset,
            **{_column_name(c): format_value(_raw_value(r, c)) for c in columns},
            "seeds": len(r.seeds),
            "final_return_mean": round(r.final_return_mean, 2),
            "final_return_std": round(r.final_return_std, 2),
            "normalized_score": round(r.final_normalized_mean, 2),
            f"last{LAST_EVALS}_return_mean": round(r.last_evals_return_mean, 2),
            f"last{LAST_EVALS}_normalized_score": round(r.last_evals_normalized_mean, 2),
            "best_return_mean": round(r.best_return_mean, 2),
            "time_to_target_s": None if r.time_to_target_s is None else round(r.time_to_target_s, 1),
            "target_reached": r.target_reached,
            "failed_runs": r.failed,
        }
        for r in rows
    ]


def config_column_names(rows: list[CellRow]) -> list[str]:
    """Names of the config columns of ``cell_dicts`` (``steps`` first)."""
    return [_column_name(c) for c in config_columns(rows)]


def render(rows: list[CellRow], aggregates: list[dict[str, Any]], fmt: str) -> str:
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; valid formats: {', '.join(REPORT_FORMATS)}")
    cells = cell_dicts(rows)
    if fmt == "json":
        full = [c | {"agent_config": r.config, "data_digest": r.data_digest} for c, r in zip(cells, rows, strict=True)]
        return json.dumps({"header": header(rows), "cells": full, "aggregates": aggregates}, indent=2) + "\n"
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(cells[0]) if cells else ["agent"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(cells)
        return text.getvalue()
    columns = config_column_names(rows)
    agg_columns = [c for c in columns if c != "data"]
    lines = ["# spin-bench report", "", header(rows), "", "## Per task", ""]
    names = ["agent", "task", "dataset", "bins", "preset", *columns, "seeds", "final return (official)"]
    names += ["normalized (0-100)", f"mean of last {LAST_EVALS} evals (normalized)", "best return (not official)"]
    names += ["time-to-target s", "reached"]
    lines += [_md_row(names), _md_row(["---"] * len(names))]
    for c in cells:
        lines.append(
            _md_row(
                [
                    *(c[k] for k in ("agent", "task", "dataset", "bins", "preset", *columns, "seeds")),
                    f"{c['final_return_mean']:.1f} ± {c['final_return_std']:.1f}",
                    f"{c['normalized_score']:.1f}",
                    f"{c[f'last{LAST_EVALS}_return_mean']:.1f} ({c[f'last{LAST_EVALS}_normalized_score']:.1f})",
                    f"{c['best_return_mean']:.1f}",
                    _fmt_time(c["time_to_target_s"]),
                    c["target_reached"],
                ]
            )
        )
    lines += ["", "## Aggregate (normalized score, IQM across tasks)", ""]
    names = ["agent", "dataset", "bins", "preset", *agg_columns, "tasks", "runs", "IQM", "95% CI"]
    lines += [_md_row(names), _md_row(["---"] * len(names))]
    for a in aggregates:
        lines.append(
            _md_row(
                [
                    *(a[k] for k in ("agent", "dataset", "bins", "preset", *agg_columns, "tasks", "runs")),
                    f"{a['iqm_normalized']:.1f}",
                    f"[{a['ci95_low']:.1f}, {a['ci95_high']:.1f}]",
                ]
            )
        )
    return "\n".join(lines) + "\n"


def _md_row(values) -> str:
    return "| " + " | ".join(map(str, values)) + " |"


def cell_title(row: CellRow, columns: list[str]) -> str:
    """The agent and the row's values of the differing config columns, e.g. ``f-iql beta=10 steps=300``."""
    parts = [row.agent] + [f"{_column_name(c)}={format_value(_raw_value(row, c))}" for c in columns]
    return " ".join(parts)


def plot(rows: list[CellRow], aggregates: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Learning curves per (task, dataset, bins), one line per cell, and an aggregate IQM chart, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    columns = [c for c in config_columns(rows) if c != "num_steps" or len({r.config.get(c) for r in rows}) > 1]
    panels: dict[tuple, list[CellRow]] = defaultdict(list)
    for r in rows:
        panels[(r.task, r.dataset, r.bins)].append(r)
    for (task, dataset, bins), group in sorted(panels.items()):
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in group:
            steps = min((c[0] for c in r.curves.values()), key=len)
            curves = np.array([c[1][: len(steps)] for c in r.curves.values()])
            mean, std = curves.mean(0), curves.std(0)
            ax.plot(steps, mean, label=f"{cell_title(r, columns)} (n={len(r.seeds)})")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.set(title=f"{task} / {dataset} (bins={bins})", xlabel="gradient steps", ylabel="return")
        ax.legend(fontsize="small")
        path = out / f"curve_{task}_{dataset}_bins{bins}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    if aggregates:
        agg_columns = [_column_name(c) for c in columns if c != "data"]
        fig, ax = plt.subplots(figsize=(7, 0.5 + 0.4 * len(aggregates)))
        labels = [
            f"{a['agent']} / {a['dataset']} (m={a['bins']}" + "".join(f", {c}={a[c]}" for c in agg_columns) + ")"
            for a in aggregates
        ]
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
