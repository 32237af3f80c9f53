"""The published results document: a report as markdown, byte for byte the same from the same run files.

Nothing in it comes from the machine that writes it (no dates, no absolute paths, no host): the protocol and the
machine are read from the runs' config.json, numbers are rounded at fixed places, every bootstrap has a fixed seed,
and everything is sorted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from spin_bench.runner.paper import paper_order
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
    _entry_order,
    agent_order,
    bootstrap_varies,
    cell_dicts,
    compared_labels,
    config_column_names,
    entry_label,
    format_value,
    header,
    runs_used,
    scores_by_entry,
    typical_seed_count,
)

DEFAULT_COMMAND = "spin-bench report RUNS --format md"
README_BEGIN = "<!-- results:begin -->"
README_END = "<!-- results:end -->"
"""The lines between which ``readme_block`` is written into a README."""


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
    lines += _compared_cells(report)
    lines += _aggregates(report, folder)
    lines += _improvements(report)
    if folder is not None:
        lines += [
            "## Performance profiles",
            "",
            f"![Performance profiles]({folder / PROFILE_FILE})",
            "",
            "*Fraction of runs whose final normalized score exceeds tau, averaged over the compared cells of each "
            "dataset and of all datasets (Cells compared; rliable's run-score distribution). Band: 95% stratified "
            f"bootstrap CI ({BOOTSTRAP_REPETITIONS} resamples).*",
            "",
        ]
    lines += _paper(report)
    lines += _end_trends(report)
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
    """The machines the runs record (config.json's ``host``: CPU model, logical CPUs, torch threads) and devices,
    and, for runs continued from shorter ones, the machines that trained their first steps."""
    described: Counter[str] = Counter()
    earlier: Counter[str] = Counter()
    unrecorded = 0
    for record in records:
        host = record.run_config.get("host")
        device = str(record.run_config.get("device", "unknown device"))
        continued = record.run_config.get("continued_from")
        if isinstance(continued, dict) and isinstance(continued.get("host"), dict):
            earlier[f"{_host_text(continued['host'], device)}, steps 1-{continued.get('step', '?')}"] += 1
        if not isinstance(host, dict):
            unrecorded += 1
            continue
        described[_host_text(host, device)] += 1
    parts = [f"{text} ({_runs(count)})" for text, count in sorted(described.items())]
    if unrecorded:
        devices = sorted({str(r.run_config.get("device", "unknown")) for r in records if "host" not in r.run_config})
        parts.append(
            f"not recorded for {_runs(unrecorded)} (their config.json names the device, {', '.join(devices)}, but not "
            "the CPU model or threads)"
        )
    if earlier:
        texts = ", ".join(f"{text} ({_runs(count)})" for text, count in sorted(earlier.items()))
        parts.append(
            f"runs continued from shorter runs (config.json's continued_from) trained their first steps on {texts}"
        )
    return "; ".join(parts) + "."


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _cpu_text(host: dict) -> str:
    """The CPU model, with its vector extension where the run recorded one (e.g. ``AMD EPYC (AVX2)``)."""
    model = str(host.get("cpu_model", "unknown CPU"))
    return f"{model} ({host['cpu_vector_extension']})" if host.get("cpu_vector_extension") else model


def _host_text(host: dict, device: str) -> str:
    gpu = f" ({host['gpu_model']})" if host.get("gpu_model") else ""
    return (
        f"{_cpu_text(host)}, {host.get('logical_cpus', '?')} logical CPUs, "
        f"{host.get('torch_threads', '?')} torch thread(s), device {device}{gpu}"
    )


def _software(records: list[RunRecord]) -> str:
    # A run's numbers are reproduced bit for bit by the commit that trained it, so each commit's runs are counted
    # (a run continued from a shorter one counts for the commit of its first steps too).
    configs = [r.run_config for r in records]
    configs += [c["continued_from"] for c in configs if isinstance(c.get("continued_from"), dict)]
    commits = Counter(str(c.get("git_commit") or "unknown")[:10] for c in configs)
    counted = ", ".join(f"{commit} ({_runs(count)})" for commit, count in sorted(commits.items()))
    parts = [f"spin-bench commit {counted}"]
    for package in ("torch", "mujoco", "dm_control", "minari"):
        found = sorted({str(r.run_config.get("versions", {}).get(package, "?")) for r in records})
        if found != ["?"]:
            parts.append(f"{package} {', '.join(found)}")
    return "; ".join(parts) + "."


def _seeds(count: int, typical: int) -> str:
    """A number of seeds, flagged when below the grid's most common count."""
    return f"{count} (< {typical})" if count < typical else str(count)


def _flag_note(typical: int) -> str:
    """What the '(< k)' mark means, when the grid's most common seed count leaves room for fewer."""
    if typical <= 1:
        return f"; the grid's most common count is {typical} seed, so no cell is marked as short of seeds"
    return f"; '(< {typical})' marks fewer seeds than {typical}, the grid's most common count"


def _cell_name(task: str, dataset: str, scope: str) -> str:
    return task if scope != ALL_DATASETS else f"{task} {dataset}"


def _compared_cells(report: Report) -> list[str]:
    """Which agent has how many seeds on which (task, dataset) cell, which cells each scope compares on, and the
    cells left out and why."""
    rows = report.rows
    scores = scores_by_entry(rows)
    entries = sorted(scores, key=_entry_order(rows))
    labels = {e: entry_label(e, rows) for e in entries}
    typical = typical_seed_count(rows)
    lines = ["## Cells compared", ""]
    lines += [
        "The aggregates, probabilities of improvement and performance profiles below compare agents only on the "
        "(task, dataset) cells that every agent in the comparison has finished runs on: an aggregate over cells "
        "that another agent has not run would mix task sets, and a task's difficulty would pass for an agent's "
        "skill. A dataset's comparison takes the agents with a run on that dataset; 'all' takes every agent. "
        f"n: finished runs (seeds) per agent and cell{_flag_note(typical)}. {_grid_state(report)}.",
        "",
    ]
    strata = sorted({s for e in entries for s in scores[e]})
    table = []
    for task, dataset in strata:
        runs = [scores[e].get((task, dataset), []) for e in entries]
        counts = [_seeds(len(r), typical) if r else "-" for r in runs]
        scopes = [c.scope for c in report.comparisons if (task, dataset) in c.cells]
        table.append([task, dataset, *counts, ", ".join(scopes) or "none"])
    lines += _table(["task", "dataset", *(f"{labels[e]} n" for e in entries), "compared in"], table)
    lines += ["Compared cells per column of the tables below:", ""]
    for c in report.comparisons:
        if c.cells:
            names = ", ".join(_cell_name(t, d, c.scope) for t, d in c.cells)
            agents = ", ".join(labels[e] for e in c.entries)
            lines.append(f"- {c.scope}: {len(c.cells)} cell(s), {names}; agents {agents}.")
        else:
            lines.append(f"- {c.scope}: none (no cell that all of {', '.join(labels[e] for e in c.entries)} have).")
    lines.append("")
    left_out: dict[tuple[str, str], dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for c in report.comparisons:
        for stratum, missing in c.left_out:
            left_out[stratum][missing].append(c.scope)
    if not left_out:
        return lines + ["No cell is left out: every agent has runs on every cell.", ""]
    lines += ["Left out:", ""]
    for (task, dataset), by_missing in sorted(left_out.items()):
        reasons = [
            f"of {', '.join(scopes)} (no runs of {', '.join(labels[e] for e in missing)})"
            for missing, scopes in by_missing.items()
        ]
        lines.append(f"- {task} {dataset}: left out {'; '.join(reasons)}.")
    return lines + [""]


def _grid_state(report: Report) -> str:
    """How much of the grid spanned by the report's agents, tasks and datasets has runs, and with how many seeds."""
    scores = scores_by_entry(report.rows)
    strata = {s for by_stratum in scores.values() for s in by_stratum}
    possible = len(scores) * len(strata)
    filled = sum(len(by_stratum) for by_stratum in scores.values())
    counts = [len(v) for by_stratum in scores.values() for v in by_stratum.values()]
    low, high = min(counts), max(counts)
    seeds = f"{low}" if low == high else f"{low}-{high}"
    if filled == possible and low == high:
        return f"Complete grid: all {possible} (agent, task, dataset) cells have {seeds} seed(s)"
    return (
        f"Incomplete grid: {filled} of the {possible} (agent, task, dataset) cells that these agents, tasks and "
        f"datasets span have finished runs, {seeds} seed(s) each"
    )


def summary_table(report: Report) -> list[str]:
    """IQM [95% CI] (n runs) per agent and scope, on each scope's compared cells, and the cells each column uses:
    the table of both the results document and a README's results block."""
    scopes = [c.scope for c in report.comparisons]
    by_label: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for a in report.aggregates:
        by_label[a["label"]][a["dataset"]] = a
    table = []
    for label in compared_labels(report):
        cells = []
        for scope in scopes:
            a = by_label[label].get(scope)
            if a is None:
                cells.append("-")
            elif bootstrap_varies(a["tasks"], a["runs"]):
                cells.append(f"{a['iqm_normalized']:.1f} {_ci(a['ci95_low'], a['ci95_high'])} (n={runs_used(a)})")
            else:
                cells.append(f"{a['iqm_normalized']:.1f} (n={runs_used(a)}; 1 seed per cell, no CI)")
        table.append([label, *cells])
    used = [
        f"{c.scope}: {', '.join(_cell_name(t, d, c.scope) for t, d in c.cells) or 'none'}" for c in report.comparisons
    ]
    return _table(["agent", *scopes], table) + [f"Cells compared: {'; '.join(used)}.", ""]


def _aggregates(report: Report, folder: PurePosixPath | None) -> list[str]:
    rows = report.rows
    lines = ["## Aggregate: IQM of normalized scores", ""]
    lines += [
        "Interquartile mean of the final normalized score over the runs on each column's compared cells (above), "
        f"95% stratified bootstrap CI (runs resampled within each cell, {BOOTSTRAP_REPETITIONS} resamples; none "
        "when every cell holds one seed, as resampling one run gives back the same number); n: runs; 'all' pools "
        "the cells of every dataset that every agent has. Every cell of a column weighs alike: an agent with more "
        "seeds on some of the column's cells than on others counts on each only its lowest seeds, as many as its "
        "fewest-seeded cell has ('n=4 of 6': 4 of its 6 finished runs there).",
        "",
    ]
    lines += summary_table(report)
    if folder is not None:
        lines += [f"![IQM of normalized scores with 95% CIs]({folder / AGGREGATE_FILE})", ""]
    columns = [c for c in config_column_names(rows) if c != "data"]
    names = ["agent", "dataset", "bins", "preset", *columns, "tasks", "runs", "IQM", "95% CI"]
    detail = [
        [
            *(a[k] for k in ("agent", "dataset", "bins", "preset", *columns, "tasks")),
            runs_used(a),
            f"{a['iqm_normalized']:.1f}",
            _ci(a["ci95_low"], a["ci95_high"]) if bootstrap_varies(a["tasks"], a["runs"]) else "-",
        ]
        for a in report.aggregates
    ]
    return lines + _table(names, detail)


def readme_block(report: Report, command: str, document: str) -> str:
    """The lines a README shows between ``README_BEGIN`` and ``README_END``: the protocol and the grid's state in
    one line, ``summary_table`` and a link to the results document at ``document`` (relative to the README)."""
    rows = report.rows
    presets = "+".join(sorted({r.preset for r in rows}))
    steps = ", ".join(sorted({format_value(r.config.get("num_steps", "?")) for r in rows}))
    lines = [
        f"<!-- Generated by `{command}`; that command rewrites this block. -->",
        f"Protocol `{presets}` ({steps} gradient steps, final evaluation over {_episodes(rows)} episodes), trained on "
        f"{_trained_on(report.records)}. {_grid_state(report)}. IQM of final normalized scores (0-100) with 95% "
        "stratified bootstrap CI and n runs; each column compares its agents only on the cells all of them have, with "
        "as many runs on each cell ('n=4 of 6': 4 of 6 finished runs, an agent's lowest seeds):",
        "",
        *summary_table(report),
        f"Per-cell scores, raw returns, time-to-target and learning curves: [{document}]({document}).",
    ]
    return "\n".join(lines) + "\n"


def with_readme_block(text: str, block: str, name: str) -> str:
    """``text`` with ``block`` between its one ``README_BEGIN`` line and its one ``README_END`` line."""
    begins, ends = text.count(README_BEGIN), text.count(README_END)
    if begins != 1 or ends != 1 or text.index(README_BEGIN) > text.index(README_END):
        raise ValueError(
            f"{name} needs one {README_BEGIN!r} line followed by one {README_END!r} line to write the results "
            f"between; it has {begins} and {ends}"
        )
    head, rest = text.split(README_BEGIN)
    tail = rest.split(README_END)[1]
    return f"{head}{README_BEGIN}\n{block}{README_END}{tail}"


def write_readme_block(path: Path, report: Report, command: str, document: str) -> None:
    """Rewrite ``path``'s results block (``with_readme_block``) in place; the rest of the file is kept as is."""
    from spin_bench._io import atomic_write_text

    if not path.is_file():
        raise ValueError(f"--readme file {str(path)!r} does not exist")
    text = path.read_text()
    atomic_write_text(path, with_readme_block(text, readme_block(report, command, document), str(path)))


def _episodes(rows: list[CellRow]) -> str:
    return "/".join(str(n) for n in sorted({r.eval_episodes for r in rows}))


def _trained_on(records: list[RunRecord]) -> str:
    """The devices the runs trained on: the CPU models and torch threads for CPU runs, the GPU models for others."""
    hosts_by_device: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        hosts = hosts_by_device[str(r.run_config.get("device", "an unrecorded device"))]
        if isinstance(r.run_config.get("host"), dict):
            hosts.append(r.run_config["host"])
    parts = []
    for device, hosts in sorted(hosts_by_device.items()):
        if device == "cpu":
            models = ", ".join(sorted({_cpu_text(h) for h in hosts}))
            threads = "/".join(sorted({str(h.get("torch_threads", "?")) for h in hosts}))
            parts.append(f"CPU ({models}, {threads} torch thread(s) per run)" if hosts else "CPU")
        else:
            gpus = ", ".join(sorted({str(h["gpu_model"]) for h in hosts if h.get("gpu_model")}))
            parts.append(f"{device} ({gpus})" if gpus else device)
    return " and ".join(parts)


def _improvements(report: Report) -> list[str]:
    lines = [f"## Probability of improvement of {IMPROVING_AGENT.upper()}", ""]
    if not report.improvements:
        return lines + [f"No {IMPROVING_AGENT} runs beside another agent's on the same task, dataset and budget.", ""]
    lines += [
        f"P({IMPROVING_AGENT.upper()} > baseline): per task, the fraction of (SPIN run, baseline run) pairs in which "
        "SPIN's final normalized score is higher, ties counting one half; averaged over the column's compared "
        "cells, those every agent in it has (Cells compared; rliable's definition, Agarwal et al. 2021). 95% CI: "
        "stratified bootstrap, each agent's runs resampled within each cell "
        f"({BOOTSTRAP_REPETITIONS} resamples); none ('-') when every cell holds one run of each. runs: SPIN's "
        "and the baseline's runs on those cells. 0.5 means no difference.",
        "",
    ]
    table = [
        [p["agent"], p["baseline"], p["dataset"], p["tasks"], f"{p['runs']} vs {p['baseline_runs']}"]
        + [f"{p['probability']:.2f}", _probability_ci(p)]
        for p in report.improvements
    ]
    lines += _table(["agent", "baseline", "dataset", "tasks", "runs", "P(agent > baseline)", "95% CI"], table)
    compared = {p["baseline"] for p in report.improvements}
    agents = {a["label"] for a in report.aggregates if a["agent"] == IMPROVING_AGENT}
    left_out = sorted({a["label"] for a in report.aggregates} - compared - agents)
    if left_out:
        lines += [f"Not compared (another training budget or bins): {', '.join(left_out)}.", ""]
    return lines


def _paper(report: Report) -> list[str]:
    lines = ["## Comparison with the paper", ""]
    datasets = sorted({p["dataset"] for p in report.paper})
    if not datasets:
        return lines + ["No dataset of this grid has two of the paper's agents on the same cells.", ""]
    lines += [
        "The SPIN paper reports, per dataset, each agent's raw return averaged over its tasks (5 seeds, 1M gradient "
        "steps, the paper's network sizes, the original benchmark's data), without intervals. Its order of two "
        "agents is reproduced here when the 95% CI of P(higher > lower) on the dataset's compared cells (Cells "
        "compared) lies above 0.5, reversed when it lies below 0.5, and not resolved when it contains 0.5; with "
        "one run per cell there is no CI and no verdict. This grid's tasks, budget and sizes are its own (Protocol), "
        "so a verdict says whether the paper's order holds at this scale, not whether the paper's numbers are right.",
        "",
    ]
    iqm = {(a["dataset"], a["label"]): a["iqm_normalized"] for a in report.aggregates}
    for dataset in datasets:
        paper = " > ".join(f"{r.agent} {r.mean_return:.1f}" for r in paper_order(dataset))
        here = sorted(
            ((label, value) for (d, label), value in iqm.items() if d == dataset),
            key=lambda item: -item[1],
        )
        lines += [
            f"- {dataset}: paper (mean raw return) {paper}; here (IQM of normalized scores) "
            + " > ".join(f"{label} {value:.1f}" for label, value in here)
            + "."
        ]
    lines.append("")
    table = [
        [p["dataset"], p["higher"], p["lower"], f"{p['paper_higher_return']:.1f} vs {p['paper_lower_return']:.1f}"]
        + [p["tasks"], f"{p['runs']} vs {p['baseline_runs']}", f"{p['probability']:.2f}"]
        + ["-" if p["ci95_low"] is None else _ci(p["ci95_low"], p["ci95_high"], 2), p["verdict"]]
        for p in report.paper
    ]
    names = ["dataset", "paper: higher", "paper: lower", "paper returns", "cells", "runs"]
    lines += _table([*names, "P(higher > lower) here", "95% CI", "verdict"], table)
    return lines


def _probability_ci(p: dict[str, Any]) -> str:
    varies = bootstrap_varies(p["tasks"], p["runs"], p["baseline_runs"])
    return _ci(p["ci95_low"], p["ci95_high"], 2) if varies else "-"


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


def _windows(row: CellRow) -> str:
    steps = row.curves[row.seeds[0]][0]
    if len(steps) < 2 * LAST_EVALS:
        return "-"
    before, last = steps[-2 * LAST_EVALS : -LAST_EVALS], steps[-LAST_EVALS:]
    return f"{before[0]}-{before[-1]} to {last[0]}-{last[-1]}"


def _end_trends(report: Report) -> list[str]:
    rows = report.rows
    lines = ["## Are the curves still moving at the end?", ""]
    lines += [
        f"Per seed, the mean normalized score of the last {LAST_EVALS} evaluations minus that of the "
        f"{LAST_EVALS} before them; per cell, the mean over seeds with its 95% bootstrap CI ({BOOTSTRAP_REPETITIONS} "
        "resamples of the seeds). Falling or rising: the CI lies below or above 0; no clear trend: it contains 0. "
        "A curve still falling or rising at the end makes the final evaluation depend on where training stops "
        "(docs/learning-curves.md).",
        "",
    ]
    cells = cell_dicts(rows)
    columns = config_column_names(rows)
    table = [
        [row.task, row.dataset, *(c[k] for k in ("agent", *columns)), len(row.seeds), _windows(row)]
        + ["-" if c["end_change_normalized"] is None else f"{c['end_change_normalized']:+.1f}"]
        + ["-" if c["end_change_ci95_low"] is None else _ci(c["end_change_ci95_low"], c["end_change_ci95_high"])]
        + [c["end_trend"]]
        for row, c in zip(rows, cells, strict=True)
    ]
    names = ["task", "dataset", "agent", *columns, "n (seeds)", "windows (steps)", "change", "95% CI", "trend"]
    lines += _table(names, table)
    by_agent: dict[str, Counter] = defaultdict(Counter)
    for c in cells:
        by_agent[c["agent"]][c["end_trend"]] += 1
    lines += [
        "Cells per trend: "
        + "; ".join(
            f"{agent} " + ", ".join(f"{trend} {count}" for trend, count in sorted(counts.items()))
            for agent, counts in sorted(by_agent.items(), key=lambda item: agent_order(item[0]))
        )
        + ".",
        "",
    ]
    return lines


def _per_task(rows: list[CellRow], folder: PurePosixPath | None) -> list[str]:
    lines = ["## Per task and dataset", ""]
    lines += [
        "Official number: the final evaluation, as normalized score and raw return with 95% bootstrap CIs over "
        f"the n seeds (none for one seed){_flag_note(typical_seed_count(rows))}. TTT: time-to-target, median over "
        "the seeds that reached it ('reached'); minutes include SPIN's ASM pre-training, which 'ASM min' shows on "
        "its own (mean over seeds).",
        "",
    ]
    cells = cell_dicts(rows)
    columns = config_column_names(rows)
    panels: dict[tuple, list[tuple[CellRow, dict[str, Any]]]] = defaultdict(list)
    for row, cell in zip(rows, cells, strict=True):
        panels[(row.task, row.dataset, row.bins)].append((row, cell))
    show_failed = any(r.failed for r in rows)
    typical = typical_seed_count(rows)
    for (task, dataset, bins), group in panels.items():
        lines += [f"### {task}, {dataset}, {bins} bins", ""]
        names = ["agent", "preset", *columns, "n (seeds)", "normalized (final, official)", "95% CI", "final return"]
        names += ["95% CI", f"mean of last {LAST_EVALS} evals: return (normalized)", "best return (not official)"]
        names += ["TTT steps", "TTT min (incl. ASM)", "ASM min", "reached"]
        names += ["failed runs"] if show_failed else []
        table = []
        for row, c in group:
            several = len(row.seeds) > 1
            table.append(
                [
                    *(c[k] for k in ("agent", "preset", *columns)),
                    _seeds(c["seeds"], typical),
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
