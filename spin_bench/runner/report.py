"""Collect finished runs into a report: per-cell scores with bootstrap CIs, aggregate IQM, probability of
improvement, performance profiles and time-to-target, as markdown, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spin_bench.runner.run import read_metrics
from spin_bench.runner.stats import (
    BOOTSTRAP_REPETITIONS,
    interquartile_mean,
    mean_ci,
    performance_profile_ci,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
)

REPORT_FORMATS = ("md", "csv", "json")
TARGET_FRACTION = 0.95
TARGET_AGENT = "f-iql"
IMPROVING_AGENT = "spin"
"""The agent whose probability of improvement over each other agent is reported."""
BOOTSTRAP_SEED = 0
"""Seed of every bootstrap in a report: the same run files give the same numbers."""
ALL_DATASETS = "all"
"""The ``dataset`` of aggregates over every dataset (each (task, dataset) a stratum)."""
PROFILE_POINTS = 101
"""Thresholds of a performance profile, evenly spaced from 0 to ``profile_taus``' upper end."""


@dataclass
class RunRecord:
    """A finished run: its summary, its evaluations and the resolved agent config it trained with."""

    summary: dict[str, Any]
    metrics: list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    """The resolved agent config (config.json's ``agent_config``)."""
    data_digest: str | None = None
    """sha256 of the dataset it trained on, when config.json records it."""
    run_config: dict[str, Any] = field(default_factory=dict, repr=False)
    """The whole config.json (device, host, versions, git commit)."""

    @property
    def cell(self) -> tuple:
        """(agent, task, dataset, bins, config, data digest): runs of one cell differ only in their seed."""
        return cell_key(self.summary, self.config, self.data_digest)

    @property
    def setting(self) -> str:
        """The preset and the fields set on top of it, e.g. ``quick num_steps=300``."""
        overrides = self.summary.get("overrides") or {}
        parts = [str(self.summary.get("preset", "?"))]
        parts += [f"{k}={format_value(overrides[k])}" for k in sorted(overrides)]
        return " ".join(parts)


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
    setting: str = ""
    """The preset and the fields set on it (``a | b`` when the cell's runs were asked for differently)."""
    final_return_ci: tuple[float, float] = (math.nan, math.nan)
    """95% bootstrap CI of the mean final return over seeds."""
    final_normalized_ci: tuple[float, float] = (math.nan, math.nan)
    """95% bootstrap CI of the mean final normalized score over seeds."""
    final_normalized: dict[int, float] = field(default_factory=dict, repr=False)
    """Per seed: the final normalized score (the aggregates' input)."""
    time_to_target_s: float | None = None
    """Median over the seeds that reached the target of the wall-clock seconds (pretraining included)."""
    time_to_target_steps: float | None = None
    """Median over the seeds that reached the target of the gradient steps."""
    target_return: float | None = None
    """``TARGET_FRACTION`` of the reference F-IQL cell's mean final return; None without a reference."""
    target_reached: str = "n/a"
    """``k/n`` seeds reached the target; ``n/a`` without a reference or with a target <= 0."""
    pretrain_seconds: dict[int, float] = field(default_factory=dict, repr=False)
    """Per seed: seconds of pretraining (SPIN's ASM) before the first gradient step; 0 for other agents."""
    failed: int = 0
    curves: dict[int, tuple[list[int], list[float]]] = field(default_factory=dict, repr=False)
    """Per seed: (steps, eval returns)."""
    normalized_curves: dict[int, list[float]] = field(default_factory=dict, repr=False)
    """Per seed: the normalized score at each of ``curves``' steps."""
    walls: dict[int, list[float]] = field(default_factory=dict, repr=False)
    """Per seed: wall-clock seconds at each evaluation (pretraining included)."""
    end_trend: tuple[float | None, float | None, float | None, str] = (None, None, None, "")
    """``end_trend`` of the seeds' ``end_change``: (mean change, CI low, CI high, verdict)."""

    @property
    def target_defined(self) -> bool:
        """Whether the time-to-target target means anything: a target <= 0 is met by any evaluation."""
        return self.target_return is not None and self.target_return > 0

    @property
    def pretrain_minutes(self) -> float | None:
        """Mean pretraining minutes over seeds; None when the agent does not pretrain."""
        seconds = list(self.pretrain_seconds.values())
        return float(np.mean(seconds)) / 60 if seconds and any(seconds) else None


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


def _check_metrics(path: Path, metrics: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Refuse evaluations a curve cannot be drawn from, or that disagree with the summary (a cut-off file)."""
    if not metrics:
        raise BadRunFile(path, "missing or without evaluations")
    for row in metrics:
        if any(row.get(k) is None for k in METRIC_KEYS):
            raise BadRunFile(path, f"a row lacks one of {', '.join(METRIC_KEYS)}")
        bad = [k for k in METRIC_KEYS if not isinstance(row[k], int | float) or not math.isfinite(row[k])]
        if bad:
            raise BadRunFile(path, f"{bad[0]} is {row[bad[0]]!r} at step {row['step']!r}, not a finite number")
    steps = [row["step"] for row in metrics]
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise BadRunFile(path, f"steps do not increase ({', '.join(map(str, steps[:8]))}...)")
    if "steps" in summary and steps[-1] != summary["steps"]:
        raise BadRunFile(path, f"ends at step {steps[-1]}, summary.json says the run ended at {summary['steps']}")
    if not math.isclose(metrics[-1]["eval_return_mean"], float(summary["final_return_mean"]), abs_tol=1e-6):
        raise BadRunFile(
            path,
            f"its last evaluation ({metrics[-1]['eval_return_mean']}) is not summary.json's final return "
            f"({summary['final_return_mean']})",
        )


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
    record = RunRecord(summary, [], run_config["agent_config"], digest, run_config)
    if summary["status"] != "finished":
        return summary["status"], record
    _require_keys(summary_path, summary, FINISHED_KEYS)
    metrics_path = folder / "metrics.csv"
    try:
        record.metrics = read_metrics(folder)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
        raise BadRunFile(metrics_path, f"unreadable ({err})") from None
    _check_metrics(metrics_path, record.metrics, summary)
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


def agent_order(agent: str) -> tuple[int, str]:
    """Sort key of agents: SPIN first, then the registry's order, then any other name alphabetically."""
    from spin_bench.registry import AGENT_NAMES

    names = (IMPROVING_AGENT, *(a for a in AGENT_NAMES if a != IMPROVING_AGENT))
    return (names.index(agent), "") if agent in names else (len(names), agent)


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
    """Columns that tell the cells apart: steps, then every config field that differs between cells of one agent
    (a field that differs only between agents tells nothing), then ``data`` when cells of one config differ
    only in their dataset digest."""
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_agent[r.agent].append(r.config)
    columns = ["num_steps"]
    for agent in sorted(by_agent, key=agent_order):
        columns += [c for c in differing_fields(by_agent[agent]) if c not in columns]
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


def end_change(normalized_curve: list[float]) -> float | None:
    """How far a curve still moves at the end of training: the mean of its last ``LAST_EVALS`` evaluations minus
    the mean of the ``LAST_EVALS`` before them; None with fewer than ``2 * LAST_EVALS`` evaluations."""
    if len(normalized_curve) < 2 * LAST_EVALS:
        return None
    last = normalized_curve[-LAST_EVALS:]
    before = normalized_curve[-2 * LAST_EVALS : -LAST_EVALS]
    return float(np.mean(last) - np.mean(before))


FALLING = "falling"
RISING = "rising"
NO_CLEAR_TREND = "no clear trend"
ONE_SEED = "one seed, no CI"
TOO_SHORT = f"fewer than {2 * LAST_EVALS} evaluations"


def end_trend(changes: list[float]) -> tuple[float | None, float | None, float | None, str]:
    """(mean change, CI low, CI high, verdict) of the seeds' ``end_change``: falling or rising when the 95%
    bootstrap CI of the mean lies below or above 0, no clear trend when it contains 0."""
    if not changes:
        return None, None, None, TOO_SHORT
    mean = float(np.mean(changes))
    if len(changes) < 2:
        return mean, None, None, ONE_SEED
    low, high = _ci(changes)
    verdict = FALLING if high < 0 else RISING if low > 0 else NO_CLEAR_TREND
    return mean, low, high, verdict


def _ci(values: list[float]) -> tuple[float, float]:
    _, low, high = mean_ci(values, seed=BOOTSTRAP_SEED)
    return low, high


def build_cells(records: list[RunRecord], failed: list[RunRecord]) -> list[CellRow]:
    """One row per cell, sorted by task, dataset, bins, agent and the differing config fields; time-to-target
    filled in against each cell's F-IQL reference."""
    by_cell: dict[tuple, list[RunRecord]] = defaultdict(list)
    for record in records:
        by_cell[record.cell].append(record)
    failures: dict[tuple, int] = defaultdict(int)
    for record in failed:
        failures[record.cell] += 1

    rows = []
    for key, group in by_cell.items():
        agent, task, dataset, bins, _, digest = key
        group = sorted(group, key=lambda r: r.summary["seed"])
        finals = [float(r.summary["final_return_mean"]) for r in group]
        normalized = [float(r.summary["final_normalized_score"]) for r in group]
        rows.append(
            CellRow(
                agent=agent,
                task=task,
                dataset=dataset,
                bins=bins,
                preset="+".join(sorted({str(r.summary.get("preset", "?")) for r in group})),
                seeds=[r.summary["seed"] for r in group],
                final_return_mean=float(np.mean(finals)),
                final_return_std=float(np.std(finals)),
                final_normalized_mean=float(np.mean(normalized)),
                best_return_mean=float(np.mean([r.summary["best_return_mean"] for r in group])),
                last_evals_return_mean=float(np.mean([_last_evals(r.metrics, "eval_return_mean") for r in group])),
                last_evals_normalized_mean=float(np.mean([_last_evals(r.metrics, "normalized_score") for r in group])),
                eval_episodes=int(group[0].summary["eval_episodes"]),
                config=group[0].config,
                data_digest=digest,
                setting=" | ".join(sorted({r.setting for r in group})),
                final_return_ci=_ci(finals),
                final_normalized_ci=_ci(normalized),
                final_normalized={r.summary["seed"]: v for r, v in zip(group, normalized, strict=True)},
                pretrain_seconds={r.summary["seed"]: float(r.summary.get("pretrain_seconds") or 0) for r in group},
                failed=failures.get(key, 0),
                curves={
                    r.summary["seed"]: ([m["step"] for m in r.metrics], [m["eval_return_mean"] for m in r.metrics])
                    for r in group
                },
                normalized_curves={r.summary["seed"]: [m["normalized_score"] for m in r.metrics] for r in group},
                walls={r.summary["seed"]: [m["wall_seconds"] for m in r.metrics] for r in group},
                end_trend=end_trend(
                    [
                        change
                        for r in group
                        if (change := end_change([m["normalized_score"] for m in r.metrics])) is not None
                    ]
                ),
            )
        )
    columns = config_columns(rows)
    rows.sort(
        key=lambda r: (
            r.task,
            r.dataset,
            r.bins,
            agent_order(r.agent),
            [value_order(_raw_value(r, c)) for c in columns],
        )
    )
    _fill_time_to_target(rows)
    return rows


def _training_fields() -> tuple[str, ...]:
    """The config fields every agent shares (budget and evaluation): runs compared must match them."""
    import dataclasses

    from spin_bench.agents.config import TrainConfig

    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def _same_budget(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(name) == b.get(name) for name in _training_fields())


def _reference(row: CellRow, rows: list[CellRow]) -> CellRow | None:
    """The F-IQL cell ``row`` is timed against: same task, dataset, bins, data and training budget. Of several
    (an F-IQL ablation), an F-IQL row is its own reference and other agents' rows have none."""
    candidates = [
        r
        for r in rows
        if r.agent == TARGET_AGENT
        and (r.task, r.dataset, r.bins, r.data_digest) == (row.task, row.dataset, row.bins, row.data_digest)
        and _same_budget(r.config, row.config)
    ]
    if len(candidates) == 1:
        return candidates[0]
    return row if row in candidates else None


def _fill_time_to_target(rows: list[CellRow]) -> None:
    """Steps and seconds until an evaluation reaches ``TARGET_FRACTION`` of the reference F-IQL cell's final
    return (mean over its seeds); medians over the seeds that reached it. A target <= 0 is left unmeasured."""
    from spin_bench.runner.stats import first_reaching

    for row in rows:
        ref = _reference(row, rows)
        if ref is None:
            continue
        row.target_return = TARGET_FRACTION * float(np.mean([ref.curves[s][1][-1] for s in ref.seeds]))
        if not row.target_defined:
            continue
        steps, seconds = [], []
        for seed in row.seeds:
            index = first_reaching(row.curves[seed][1], row.target_return)
            if index is not None:
                steps.append(row.curves[seed][0][index])
                seconds.append(row.walls[seed][index])
        row.target_reached = f"{len(steps)}/{len(row.seeds)}"
        if steps:
            row.time_to_target_steps = float(np.median(steps))
            row.time_to_target_s = float(np.median(seconds))


@dataclass(frozen=True)
class Entry:
    """One agent configuration compared across tasks: the unit of the aggregates, comparisons and profiles."""

    agent: str
    bins: int
    config_json: str
    """The resolved agent config, as sorted JSON."""

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)


def entry_of(row: CellRow) -> Entry:
    return Entry(row.agent, row.bins, json.dumps(row.config, sort_keys=True))


def _entry_order(rows: list[CellRow]):
    columns = [c for c in config_columns(rows) if c != "data"]

    def key(entry: Entry) -> tuple:
        config = entry.config
        return (agent_order(entry.agent), entry.bins, [value_order(config.get(c, "-")) for c in columns])

    return key


def entry_label(entry: Entry, rows: list[CellRow]) -> str:
    """The agent, and the fields that tell its configurations apart (and the bins when they differ), e.g.
    ``f-iql beta=10`` or ``spin steps=20000 m=3``."""
    columns = [c for c in config_columns(rows) if c != "data"]
    if len({r.config.get("num_steps") for r in rows}) == 1:
        columns.remove("num_steps")
    config = entry.config
    parts = [entry.agent] + [f"{_column_name(c)}={format_value(config[c])}" for c in columns if c in config]
    if len({r.bins for r in rows}) > 1:
        parts.append(f"m={entry.bins}")
    return " ".join(parts)


def scores_by_entry(rows: list[CellRow]) -> dict[Entry, dict[tuple[str, str], list[float]]]:
    """Final normalized scores of every run, per entry and (task, dataset)."""
    out: dict[Entry, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        out[entry_of(r)][(r.task, r.dataset)].extend(r.final_normalized[s] for s in r.seeds)
    return out


def _in_scope(stratum: tuple[str, str], scope: str) -> bool:
    return scope in (ALL_DATASETS, stratum[1])


def datasets_of(rows: list[CellRow]) -> list[str]:
    return sorted({r.dataset for r in rows})


@dataclass(frozen=True)
class Comparison:
    """The (task, dataset) cells on which one scope's aggregates, probabilities of improvement and profiles compare
    its entries: only the cells every entry in the scope has runs on, so that no entry's aggregate rests on tasks
    another entry's does not."""

    scope: str
    """A dataset, or ``ALL_DATASETS``."""
    entries: tuple[Entry, ...]
    """Every entry with a finished run in the scope, in report order."""
    cells: tuple[tuple[str, str], ...]
    """The (task, dataset) cells of the scope that every one of ``entries`` has runs on."""
    left_out: tuple[tuple[tuple[str, str], tuple[Entry, ...]], ...]
    """Each other cell of the scope, with the entries that have no run on it."""


def comparisons(rows: list[CellRow]) -> list[Comparison]:
    """One ``Comparison`` per dataset, then over every dataset."""
    scores = scores_by_entry(rows)
    order = _entry_order(rows)
    out = []
    for scope in [*datasets_of(rows), ALL_DATASETS]:
        entries = tuple(e for e in sorted(scores, key=order) if any(_in_scope(s, scope) for s in scores[e]))
        strata = sorted({s for e in entries for s in scores[e] if _in_scope(s, scope)})
        cells = tuple(s for s in strata if all(s in scores[e] for e in entries))
        left_out = tuple((s, tuple(e for e in entries if s not in scores[e])) for s in strata if s not in cells)
        out.append(Comparison(scope, entries, cells, left_out))
    return out


def typical_seed_count(rows: list[CellRow]) -> int:
    """The grid's most common number of seeds per cell (the larger on a tie); 0 without cells."""
    counts = Counter(len(r.seeds) for r in rows)
    if not counts:
        return 0
    most = max(counts.values())
    return max(n for n, c in counts.items() if c == most)


def _compared_scores(rows: list[CellRow], scores: dict[Entry, Any]):
    """(comparison, entry, its scores on the comparison's cells keyed ``task/dataset``) for each dataset and then
    ``ALL_DATASETS``, entries in report order; scopes without a cell every entry has yield nothing."""
    for comparison in comparisons(rows):
        for entry in comparison.entries if comparison.cells else ():
            yield comparison, entry, {f"{t}/{d}": scores[entry][(t, d)] for t, d in comparison.cells}


def balanced(scores_by_cell: dict[str, list[float]]) -> dict[str, list[float]]:
    """Each cell's first runs (lowest seeds), as many as the cell with the fewest has: the IQM pools runs, so an
    entry with more seeds on one cell than another would weigh that cell more (rliable takes a runs x tasks
    matrix); a finished grid has equal counts and loses nothing."""
    fewest = min(len(v) for v in scores_by_cell.values())
    return {cell: v[:fewest] for cell, v in scores_by_cell.items()}


def aggregate(rows: list[CellRow], seed: int = BOOTSTRAP_SEED) -> list[dict[str, Any]]:
    """IQM of final normalized scores over the runs on a scope's compared cells (``comparisons``), per entry and
    dataset, then per entry over every dataset (``dataset`` = ``all``), with 95% stratified bootstrap CIs; an
    entry's cells count equally many runs each (``balanced``): ``runs`` are those used, ``runs_finished`` all."""
    columns = [c for c in config_columns(rows) if c != "data"]
    scores = scores_by_entry(rows)
    presets: dict[Entry, set[str]] = defaultdict(set)
    for r in rows:
        presets[entry_of(r)].add(r.preset)
    out = []
    for comparison, entry, finished in _compared_scores(rows, scores):
        by_task = balanced(finished)
        point, low, high = stratified_bootstrap_ci(by_task, interquartile_mean, seed=seed)
        config = entry.config
        out.append(
            {
                "agent": entry.agent,
                "label": entry_label(entry, rows),
                "dataset": comparison.scope,
                "bins": entry.bins,
                "preset": "+".join(sorted(presets[entry])),
                **{_column_name(c): format_value(config[c]) if c in config else "-" for c in columns},
                "tasks": len(by_task),
                "runs": sum(len(v) for v in by_task.values()),
                "runs_finished": sum(len(v) for v in finished.values()),
                "iqm_normalized": round(point, 2),
                "ci95_low": round(low, 2),
                "ci95_high": round(high, 2),
            }
        )
    return out


def runs_used(aggregate_row: dict[str, Any]) -> str:
    """An ``aggregate`` row's run count: ``4``, or ``4 of 6`` when balancing left finished runs out."""
    used, finished = aggregate_row["runs"], aggregate_row["runs_finished"]
    return f"{used}" if used == finished else f"{used} of {finished}"


def improvements(rows: list[CellRow], seed: int = BOOTSTRAP_SEED) -> list[dict[str, Any]]:
    """Probability of improvement of each SPIN entry over each other entry of the same bins and training budget,
    per dataset and over every dataset, on the scope's compared cells (``comparisons``)."""
    scores = scores_by_entry(rows)
    order = _entry_order(rows)
    scopes = [c for c in comparisons(rows) if c.cells]
    out = []
    for spin in sorted((e for e in scores if e.agent == IMPROVING_AGENT), key=order):
        for other in sorted((e for e in scores if e.agent != IMPROVING_AGENT), key=order):
            if not comparable(spin, other):
                continue
            for comparison in scopes:
                if spin in comparison.entries and other in comparison.entries:
                    out.append(pairwise_improvement(spin, other, comparison, rows, scores, seed))
    return out


def bootstrap_varies(tasks: int, *runs: int) -> bool:
    """Whether a stratified bootstrap over ``tasks`` cells can vary: some cell holds more than one run (one run per
    cell of every agent gives the point estimate in every resample, a CI that would only look certain)."""
    return any(n > tasks for n in runs)


def comparable(first: Entry, second: Entry) -> bool:
    """Whether two entries may be compared: the same bins and training budget."""
    return first.bins == second.bins and _same_budget(first.config, second.config)


def pairwise_improvement(
    first: Entry,
    second: Entry,
    comparison: Comparison,
    rows: list[CellRow],
    scores: dict[Entry, dict[tuple[str, str], list[float]]],
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """P(first > second) over ``comparison``'s cells with its 95% stratified bootstrap CI, as a report row;
    ``scores`` is ``scores_by_entry(rows)``."""
    keys = [(f"{t}/{d}", (t, d)) for t, d in comparison.cells]
    point, low, high = probability_of_improvement_ci(
        {k: scores[first][s] for k, s in keys}, {k: scores[second][s] for k, s in keys}, seed=seed
    )
    return {
        "agent": entry_label(first, rows),
        "baseline": entry_label(second, rows),
        "dataset": comparison.scope,
        "bins": first.bins,
        "tasks": len(keys),
        "runs": sum(len(scores[first][s]) for _, s in keys),
        "baseline_runs": sum(len(scores[second][s]) for _, s in keys),
        "probability": round(point, 3),
        "ci95_low": round(low, 3),
        "ci95_high": round(high, 3),
    }


def profile_taus(rows: list[CellRow]) -> np.ndarray:
    """Thresholds of the performance profiles: 0 to 100, or to the next multiple of 10 above the best run."""
    best = max((v for r in rows for v in r.final_normalized.values()), default=100.0)
    return np.linspace(0.0, max(100.0, 10.0 * math.ceil(best / 10.0)), PROFILE_POINTS)


def profiles(rows: list[CellRow], seed: int = BOOTSTRAP_SEED) -> list[dict[str, Any]]:
    """Performance profile (fraction of runs above each tau) with 95% stratified bootstrap bands, per entry and
    dataset, then over every dataset, on the scope's compared cells (``comparisons``)."""
    scores = scores_by_entry(rows)
    taus = profile_taus(rows)
    out = []
    for comparison, entry, by_task in _compared_scores(rows, scores):
        point, low, high = performance_profile_ci(by_task, taus, seed=seed)
        out.append(
            {
                "agent": entry.agent,
                "label": entry_label(entry, rows),
                "dataset": comparison.scope,
                "bins": entry.bins,
                "taus": [round(float(t), 4) for t in taus],
                "fraction": [round(float(v), 4) for v in point],
                "ci95_low": [round(float(v), 4) for v in low],
                "ci95_high": [round(float(v), 4) for v in high],
            }
        )
    return out


def _column_name(field_name: str) -> str:
    return "steps" if field_name == "num_steps" else field_name


def _normalized_by(rows: list[CellRow]) -> str:
    """Where the runs' reference returns came from: the catalog (spin/ datasets) and/or the paper (original/)."""
    from spin_bench.datasets.ids import ORIGINAL_DATASETS
    from spin_bench.datasets.scores import PAPER_SOURCE, SPIN_SOURCE

    imported = {r.dataset in ORIGINAL_DATASETS for r in rows}
    sources = [f"{SPIN_SOURCE} for spin/ datasets"] if False in imported else []
    sources += [f"{PAPER_SOURCE}, recorded in the imported data, for original/ datasets"] if True in imported else []
    return "with " + " and ".join(sources) if sources else "with each dataset's reference returns"


def header(rows: list[CellRow]) -> str:
    seeds = sorted({s for r in rows for s in r.seeds})
    episodes = sorted({r.eval_episodes for r in rows})
    return (
        "Metric: undiscounted episode return of the policy's sampled actions (0-1000), mean over "
        f"{'/'.join(map(str, episodes))} evaluation episodes (episode k reset with seed+100+k). "
        f"Normalized score: 100 * (R - R_random) / (R_expert - R_random), per task and bins, {_normalized_by(rows)}. "
        "Checkpoint rule: the official number is the FINAL evaluation; 'best' is the best evaluation during "
        "training, shown for reference only. "
        f"'Mean of last {LAST_EVALS} evals' averages each run's last {LAST_EVALS} evaluations, then the seeds: on "
        "mixed-quality data IQL agents can peak early and fall (docs/learning-curves.md), and a final evaluation far "
        "from that mean sits on a falling curve or a noise spike. "
        "Runs are grouped by their resolved agent config and dataset digest; the columns after 'preset' are the "
        "gradient steps and the config fields that differ between groups of one agent ('data': the dataset digest). "
        f"Seeds: {', '.join(map(str, seeds))}. Per-cell CIs: 95% percentile bootstrap of the mean over seeds "
        f"({BOOTSTRAP_REPETITIONS} resamples). Aggregate: interquartile mean (IQM) over the runs of the (task, "
        "dataset) cells that every compared agent has runs on, an agent's lowest seeds, as many on every cell as on "
        "its fewest-seeded one, 95% CI by stratified bootstrap "
        f"({BOOTSTRAP_REPETITIONS} resamples within tasks). "
        f"Time-to-target: gradient steps and wall-clock minutes until an evaluation reaches {TARGET_FRACTION:.0%} of "
        "F-IQL's final return (mean over its seeds) on the same task, dataset and training budget; the wall clock "
        "includes SPIN's ASM pretraining, also shown on its own; medians over the seeds that reached it. A target "
        "<= 0 would be met by any evaluation: it is flagged and not timed."
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def cell_dicts(rows: list[CellRow]) -> list[dict[str, Any]]:
    """One flat dict per cell: ids, steps and the differing config fields, then the numbers."""
    columns = config_columns(rows)
    typical = typical_seed_count(rows)
    return [
        {
            "agent": r.agent,
            "task": r.task,
            "dataset": r.dataset,
            "bins": r.bins,
            "preset": r.preset,
            **{_column_name(c): format_value(_raw_value(r, c)) for c in columns},
            "setting": r.setting,
            "seeds": len(r.seeds),
            "fewer_seeds_than_typical": len(r.seeds) < typical,
            "final_return_mean": round(r.final_return_mean, 2),
            "final_return_std": round(r.final_return_std, 2),
            "final_return_ci95_low": round(r.final_return_ci[0], 2),
            "final_return_ci95_high": round(r.final_return_ci[1], 2),
            "normalized_score": round(r.final_normalized_mean, 2),
            "normalized_ci95_low": round(r.final_normalized_ci[0], 2),
            "normalized_ci95_high": round(r.final_normalized_ci[1], 2),
            f"last{LAST_EVALS}_return_mean": round(r.last_evals_return_mean, 2),
            f"last{LAST_EVALS}_normalized_score": round(r.last_evals_normalized_mean, 2),
            "best_return_mean": round(r.best_return_mean, 2),
            "target_return": _round(r.target_return, 2),
            "target_defined": r.target_defined,
            "time_to_target_steps": _round(r.time_to_target_steps, 0),
            "time_to_target_s": _round(r.time_to_target_s, 1),
            "time_to_target_min": None if r.time_to_target_s is None else round(r.time_to_target_s / 60, 2),
            "pretrain_min": _round(r.pretrain_minutes, 2),
            "target_reached": r.target_reached,
            **_end_change_fields(r),
            "failed_runs": r.failed,
        }
        for r in rows
    ]


def _end_change_fields(row: CellRow) -> dict[str, Any]:
    mean, low, high, verdict = row.end_trend
    return {
        "end_change_normalized": _round(mean, 2),
        "end_change_ci95_low": _round(low, 2),
        "end_change_ci95_high": _round(high, 2),
        "end_trend": verdict,
    }


def compared_labels(report: Report) -> list[str]:
    """The labels of every entry in the aggregates, in report order (SPIN first)."""
    shown = {a["label"] for a in report.aggregates}
    everyone = report.comparisons[-1].entries if report.comparisons else ()
    return [label for label in (entry_label(e, report.rows) for e in everyone) if label in shown]


def comparison_dicts(found: list[Comparison], rows: list[CellRow]) -> list[dict[str, Any]]:
    """``comparisons`` as JSON: per scope the compared entries' labels and cells, and each cell left out with the
    entries that lack it."""
    return [
        {
            "dataset": c.scope,
            "agents": [entry_label(e, rows) for e in c.entries],
            "cells": [f"{t}/{d}" for t, d in c.cells],
            "left_out": [
                {"cell": f"{t}/{d}", "no_runs": [entry_label(e, rows) for e in missing]}
                for (t, d), missing in c.left_out
            ],
        }
        for c in found
    ]


def config_column_names(rows: list[CellRow]) -> list[str]:
    """Names of the config columns of ``cell_dicts`` (``steps`` first)."""
    return [_column_name(c) for c in config_columns(rows)]


@dataclass
class Report:
    """Everything a report shows, computed once from the collected runs."""

    rows: list[CellRow]
    aggregates: list[dict[str, Any]]
    """Per entry and dataset, then per entry over every dataset (``dataset`` = ``all``)."""
    improvements: list[dict[str, Any]]
    comparisons: list[Comparison] = field(default_factory=list)
    """Per dataset, then over every dataset: the cells the aggregates, improvements and profiles compare on."""
    paper: list[dict[str, Any]] = field(default_factory=list)
    """Per dataset the paper reports, each pair of its agents: the paper's order and whether this grid reproduces it
    (``spin_bench.runner.paper.paper_comparison``)."""
    records: list[RunRecord] = field(default_factory=list, repr=False)
    failed: int = 0
    skipped: int = 0


def build_report(found: Collected) -> Report:
    from spin_bench.runner.paper import paper_comparison

    rows = build_cells(found.finished, found.failed)
    return Report(
        rows,
        aggregate(rows),
        improvements(rows),
        comparisons(rows),
        paper_comparison(rows),
        records=found.finished,
        failed=len(found.failed),
        skipped=len(found.skipped),
    )


def render(report: Report, fmt: str, command: str | None = None, images: Path | str | None = None) -> str:
    """The report as ``fmt`` text. ``command`` and ``images`` (the plots folder relative to the document) are
    for the markdown document: the command it names as its source, and where its figures are."""
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; valid formats: {', '.join(REPORT_FORMATS)}")
    rows = report.rows
    cells = cell_dicts(rows)
    if fmt == "json":
        full = [c | {"agent_config": r.config, "data_digest": r.data_digest} for c, r in zip(cells, rows, strict=True)]
        document = {
            "header": header(rows),
            "cells": full,
            "compared_cells": comparison_dicts(report.comparisons, rows),
            "aggregates": report.aggregates,
            "probability_of_improvement": report.improvements,
            "paper_comparison": report.paper,
            "performance_profiles": profiles(rows),
        }
        return json.dumps(document, indent=2) + "\n"
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(cells[0]) if cells else ["agent"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(cells)
        return text.getvalue()
    from spin_bench.runner.report_md import markdown

    return markdown(report, command=command, images=images)


def cell_title(row: CellRow, columns: list[str]) -> str:
    """The agent and the row's values of the differing config columns, e.g. ``f-iql beta=10 steps=300``."""
    parts = [row.agent] + [f"{_column_name(c)}={format_value(_raw_value(row, c))}" for c in columns]
    return " ".join(parts)
