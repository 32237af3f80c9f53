"""The published results document: a report as markdown, byte for byte the same from the same run files.

Nothing in it comes from the machine that writes it (no dates, no absolute paths, no host): the protocol and the
machine are read from the runs' config.json, numbers are rounded at fixed places, every bootstrap has a fixed seed,
and everything is sorted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import PurePosixPath
from typing import Any

from spin_bench.runner.plots import AGGREGATE_FILE, PROFILE_FILE, curve_file
from spin_bench.runner.report import (
    ALL_DATASETS,
    BOOTSTRAP_REPETITIONS,
    IMPROVING_AGENT,
    LAST_EVALS,
    TARGET_AGENT,
    TARGET_FRACTION,
    CellRow,
    Report,
    RunRecord,
    agent_order,
    cell_dicts,
    config_column_names,
    datasets_of,
    format_value,
    header,
)

DEFAULT_COMMAND = "spin-bench report RUNS --format md"


def markdown(report: Report, command: str | None = None, images: str | PurePosixPath | None = None) -> str:
    """The document. ``command`` is the command line named as its source; ``images`` is the plots folder relative
    to the document (no figures are referenced without it)."""
    rows = report.rows
    folder = None if images is None else PurePosixPath(images)
    lines = ["# spin-bench results", ""]
    lines += [
        "Generated from the run files (config.json, metrics.csv, summary.json of each run) by",
        "",
        "```bash",
        command or DEFAULT_COMMAND,
        "```",
        "",
        f"Runs: {len(report.records)} finished, {report.failed} failed, {report.skipped} skipped for unreadable "
        "files. The same command on the same run files rewrites this document byte for byte (fixed bootstrap "
        "seeds; no dates or machine-local paths).",
        "",
    ]
    lines += _protocol(report)
    lines += _aggregates(report, folder)
    lines += _improvements(report)
    if folder is not None:
        lines += [
            "## Performance profiles",
            "",
            f"![Performance profiles]({folder / PROFILE_FILE})",
            "",
            "*Fraction of runs whose final normalized score exceeds tau, averaged over tasks (rliable's run-score "
            "distribution), per dataset and over all datasets. Band: 95% stratified bootstrap CI "
            f"({BOOTSTRAP_REPETITIONS} resamples).*",
            "",
        ]
    lines += _per_task(rows, folder)
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_row(values) -> str:
    return "| " + " | ".join(map(str, values)) + " |"


def _table(names: list[str], rows: list[list[Any]]) -> list[str]:
    return [_md_row(names), _md_row(["---"] * len(names)), *(_md_row(r) for r in rows), ""]


def _ci(low: float, high: float, digits: int = 1) -> str:
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _asm_budget(config: dict[str, Any]) -> str:
    if "asm_epochs" not in config:
        return "-"
    if config.get("asm_steps") is not None:
        return f"{config['asm_steps']} steps"
    return f"{format_value(config['asm_epochs'])} epochs"


def _protocol(report: Report) -> list[str]:
    lines = ["## Protocol", "", header(report.rows), ""]
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for record in report.records:
        groups[(record.summary["agent"], record.setting)].append(record)
    table = []
    for (agent, setting), records in sorted(groups.items(), key=lambda kv: (agent_order(kv[0][0]), kv[0][1])):
        configs = [r.config for r in records]

        def values(name: str, configs=configs) -> str:
            return ", ".join(sorted({format_value(c.get(name, "-")) for c in configs}))

        table.append(
            [
                agent,
                setting,
                len(records),
                values("num_steps"),
                values("batch_size"),
                values("eval_every"),
                values("eval_episodes"),
                ", ".join(sorted({_asm_budget(c) for c in configs})),
            ]
        )
    names = ["agent", "preset and fields set on it", "runs", "gradient steps", "batch", "evaluation every"]
    names += ["evaluation episodes", "ASM pre-training"]
    lines += _table(names, table)
    lines += [f"Machine: {_machines(report.records)}", "", f"Software: {_software(report.records)}", ""]
    return lines


def _machines(records: list[RunRecord]) -> str:
    """The machines the runs record (config.json's ``host``: CPU model, logical CPUs, torch threads) and devices."""
    described: Counter[str] = Counter()
    unrecorded = 0
    for record in records:
        host = record.run_config.get("host")
        device = str(record.run_config.get("device", "unknown device"))
        if not isinstance(host, dict):
            unrecorded += 1
            continue
        cpu = host.get("cpu_model", "unknown CPU")
        threads = host.get("torch_threads", "?")
        cpus = host.get("logical_cpus", "?")
        gpu = f" ({host['gpu_model']})" if host.get("gpu_model") else ""
        described[f"{cpu}, {cpus} logical CPUs, {threads} torch thread(s), device {device}{gpu}"] += 1
    parts = [f"{text} ({count} runs)" for text, count in sorted(described.items())]
    if unrecorded:
        devices = sorted({str(r.run_config.get("device", "unknown")) for r in records if "host" not in r.run_config})
        parts.append(
            f"not recorded for {unrecorded} runs (their config.json names the device, {', '.join(devices)}, but not "
            "the CPU model or threads)"
        )
    return "; ".join(parts) + "."


def _software(records: list[RunRecord]) -> str:
    commits = sorted({str(r.run_config.get("git_commit") or "unknown")[:10] for r in records})
    parts = [f"spin-bench commit {', '.join(commits)}"]
    for package in ("torch", "mujoco", "dm_control", "minari"):
        found = sorted({str(r.run_config.get("versions", {}).get(package, "?")) for r in records})
        if found != ["?"]:
            parts.append(f"{package} {', '.join(found)}")
    return "; ".join(parts) + "."


def _aggregates(report: Report, folder: PurePosixPath | None) -> list[str]:
    rows = report.rows
    datasets = datasets_of(rows)
    scopes = [*datasets, ALL_DATASETS]
    lines = ["## Aggregate: IQM of normalized scores", ""]
    lines += [
        "Interquartile mean of the final normalized score over all runs of all tasks, 95% stratified bootstrap CI "
        f"(runs resampled within each task, {BOOTSTRAP_REPETITIONS} resamples); 'all' pools every (task, dataset).",
        "",
    ]
    by_label: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    labels: list[str] = []
    for a in report.aggregates:
        if a["label"] not in labels:
            labels.append(a["label"])
        by_label[a["label"]][a["dataset"]] = a
    table = []
    for label in labels:
        cells = []
        for scope in scopes:
            a = by_label[label].get(scope)
            cells.append("-" if a is None else f"{a['iqm_normalized']:.1f} {_ci(a['ci95_low'], a['ci95_high'])}")
        table.append([label, *cells])
    lines += _table(["agent", *scopes], table)
    if folder is not None:
        lines += [f"![IQM of normalized scores with 95% CIs]({folder / AGGREGATE_FILE})", ""]
    columns = [c for c in config_column_names(rows) if c != "data"]
    names = ["agent", "dataset", "bins", "preset", *columns, "tasks", "runs", "IQM", "95% CI"]
    detail = [
        [
            *(a[k] for k in ("agent", "dataset", "bins", "preset", *columns, "tasks", "runs")),
            f"{a['iqm_normalized']:.1f}",
            _ci(a["ci95_low"], a["ci95_high"]),
        ]
        for a in report.aggregates
    ]
    return lines + _table(names, detail)


def _improvements(report: Report) -> list[str]:
    lines = [f"## Probability of improvement of {IMPROVING_AGENT.upper()}", ""]
    if not report.improvements:
        return lines + [f"No {IMPROVING_AGENT} runs beside another agent's on the same task, dataset and budget.", ""]
    lines += [
        f"P({IMPROVING_AGENT.upper()} > baseline): per task, the fraction of (SPIN run, baseline run) pairs in which "
        "SPIN's final normalized score is higher, ties counting one half; averaged over the tasks both ran "
        "(rliable's definition, Agarwal et al. 2021). 95% CI: stratified bootstrap, each agent's runs resampled "
        f"within each task ({BOOTSTRAP_REPETITIONS} resamples). 0.5 means no difference.",
        "",
    ]
    table = [
        [p["agent"], p["baseline"], p["dataset"], p["tasks"], f"{p['probability']:.2f}"]
        + [_ci(p["ci95_low"], p["ci95_high"], 2)]
        for p in report.improvements
    ]
    lines += _table(["agent", "baseline", "dataset", "tasks", "P(agent > baseline)", "95% CI"], table)
    compared = {p["baseline"] for p in report.improvements}
    agents = {a["label"] for a in report.aggregates if a["agent"] == IMPROVING_AGENT}
    left_out = sorted({a["label"] for a in report.aggregates} - compared - agents)
    if left_out:
        lines += [f"Not compared (another training budget or bins): {', '.join(left_out)}.", ""]
    return lines


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f}"


def _target_note(group: list[CellRow]) -> str:
    targets = sorted({r.target_return for r in group if r.target_return is not None})
    if not targets:
        return f"Time-to-target: no {TARGET_AGENT} run with the same training budget here, so no target."
    shown = ", ".join(f"{t:.1f}" for t in targets)
    note = f"Time-to-target: target = {TARGET_FRACTION:.0%} of {TARGET_AGENT}'s mean final return = {shown}."
    if any(t <= 0 for t in targets):
        note += (
            f" **Flag: a target <= 0 is met by any evaluation; time-to-target is not reported against it** "
            f"({TARGET_AGENT}'s final return here is not above 0)."
        )
    return note


def _per_task(rows: list[CellRow], folder: PurePosixPath | None) -> list[str]:
    lines = ["## Per task and dataset", ""]
    lines += [
        "Official number: the final evaluation, as normalized score and raw return with 95% bootstrap CIs over "
        "seeds (none for one seed). TTT: time-to-target, median over the seeds that reached it ('reached'); "
        "minutes include SPIN's ASM pre-training, which 'ASM min' shows on its own (mean over seeds).",
        "",
    ]
    cells = cell_dicts(rows)
    columns = config_column_names(rows)
    panels: dict[tuple, list[tuple[CellRow, dict[str, Any]]]] = defaultdict(list)
    for row, cell in zip(rows, cells, strict=True):
        panels[(row.task, row.dataset, row.bins)].append((row, cell))
    show_failed = any(r.failed for r in rows)
    for (task, dataset, bins), group in panels.items():
        lines += [f"### {task}, {dataset}, {bins} bins", ""]
        names = ["agent", "preset", *columns, "seeds", "normalized (final, official)", "95% CI", "final return"]
        names += ["95% CI", f"mean of last {LAST_EVALS} evals: return (normalized)", "best return (not official)"]
        names += ["TTT steps", "TTT min (incl. ASM)", "ASM min", "reached"]
        names += ["failed runs"] if show_failed else []
        table = []
        for row, c in group:
            several = len(row.seeds) > 1
            table.append(
                [
                    *(c[k] for k in ("agent", "preset", *columns, "seeds")),
                    f"{c['normalized_score']:.1f}",
                    _ci(c["normalized_ci95_low"], c["normalized_ci95_high"]) if several else "-",
                    f"{c['final_return_mean']:.1f}",
                    _ci(c["final_return_ci95_low"], c["final_return_ci95_high"]) if several else "-",
                    f"{c[f'last{LAST_EVALS}_return_mean']:.1f} ({c[f'last{LAST_EVALS}_normalized_score']:.1f})",
                    f"{c['best_return_mean']:.1f}",
                    "-" if c["time_to_target_steps"] is None else f"{c['time_to_target_steps']:.0f}",
                    _minutes(row.time_to_target_s),
                    "-" if row.pretrain_minutes is None else f"{row.pretrain_minutes:.1f}",
                    c["target_reached"] if row.target_defined or row.target_return is None else "flag: target <= 0",
                    *([c["failed_runs"]] if show_failed else []),
                ]
            )
        lines += _table(names, table)
        lines += [_target_note([r for r, _ in group]), ""]
        if folder is not None:
            lines += [
                f"![{task} {dataset}: normalized score against gradient steps and wall-clock minutes]"
                f"({folder / curve_file(task, dataset, bins)})",
                "",
            ]
    if folder is not None:
        lines += [
            "*Learning curves: normalized score at each evaluation (markers) against gradient steps and against "
            "wall-clock minutes (mean over seeds of the time of that evaluation, ASM pre-training included); line: "
            f"mean over seeds; band: 95% bootstrap CI of that mean ({BOOTSTRAP_REPETITIONS} resamples of the "
            "seeds); n: seeds drawn.*",
            "",
        ]
    return lines
