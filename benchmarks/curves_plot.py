"""Figures of docs/learning-curves.md from the outputs of curves_official.py and curves_diagnose.py.

Usage: python benchmarks/curves_plot.py --results DIR --out docs/img [--dataset ID]

DIR holds (any missing part is skipped):
    composition/composition.csv               curves_diagnose.py composition
    fiql_rme_s0/{evals,diag,posthoc}.csv       curves_diagnose.py train / evaluate (spin-bench F-IQL)
    official_run.log                           stdout of curves_official.py run (IQL.py's evaluations)
    official_eval/{diag,posthoc}.csv           curves_diagnose.py official (IQL.py's checkpoints)
    fiql_rme_s0/{betas,visits,visits_greedy}.csv   curves_diagnose.py betas / visits [--greedy]
    fiql_medium_s0/evals.csv                   curves_diagnose.py --dataset spin/cheetah-run/medium-v0 train
    sweep_<name>/evals.csv, diag.csv           curves_diagnose.py train --set ... (beta / expectile runs)

Normalized score = 100 * (return - random) / (expert - random) with the dataset's reference scores.
Bands are 95% confidence intervals of the mean over episodes (1.96 * sd / sqrt(n)).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# The issue's evaluations (spin-bench run, F-IQL paper sizes, seed 0, 10 sampled episodes every 10k steps).
ISSUE_FIQL = [23.5, 20.5, 23.2, 22.0, 21.1, 8.5, 8.5, 12.1, 18.1, 7.8]
SOURCES = ("random", "medium", "expert")
COLORS = {"random": "tab:gray", "medium": "tab:orange", "expert": "tab:green"}


def read_csv(path: Path) -> list[dict] | None:
    if not path.exists():
        return None
    with open(path) as f:
        return list(csv.DictReader(f))


def col(rows, key, cast=float):
    return np.array([cast(r[key]) for r in rows])


def official_evals(log: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(updates, mean, sd) of IQL.py's printed evaluations; IQL.py evaluates after update step + 1."""
    if not log.exists():
        return None
    steps, means, sds, step = [], [], [], None
    for line in log.read_text().splitlines():
        m = re.match(r"--- Evaluating at step (\d+) ---", line)
        if m:
            step = int(m.group(1)) + 1
        m = re.match(r"Eval: \d+ eps: Avg Reward ([-\d.]+) \+/- ([-\d.]+)", line)
        if m and step is not None:
            steps.append(step)
            means.append(float(m.group(1)))
            sds.append(float(m.group(2)))
    return np.array(steps), np.array(means), np.array(sds)


def posthoc_summary(rows, norm, n=None):
    """{mode: (steps, mean, ci95)} over the first ``n`` episodes (all if None)."""
    out = {}
    for mode in ("sampled", "greedy"):
        steps = sorted({int(r["step"]) for r in rows if r["mode"] == mode})
        mean, ci = [], []
        for s in steps:
            x = np.array(
                [
                    float(r["return"])
                    for r in rows
                    if r["mode"] == mode and int(r["step"]) == s and (n is None or int(r["episode"]) < n)
                ]
            )
            x = norm(x)
            mean.append(x.mean())
            ci.append(1.96 * x.std(ddof=1) / np.sqrt(len(x)))
        out[mode] = (np.array(steps), np.array(mean), np.array(ci))
    return out


def fig_official_vs_spinbench(res: Path, out: Path, norm) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ev = read_csv(res / "fiql_rme_s0" / "evals.csv")
    if ev:
        ax.plot(col(ev, "step", int), col(ev, "normalized"), "o-", label="spin-bench F-IQL (this run)")
    off = official_evals(res / "official_run.log")
    if off is not None and len(off[0]):
        ax.plot(off[0], norm(off[1]), "s-", label="official IQL.py, MLP actor (unmodified)")
    ax.plot(np.arange(1, 11) * 10_000, ISSUE_FIQL, "x--", color="k", alpha=0.6, label="issue 28 (spin-bench run)")
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("normalized score (10 sampled episodes)")
    ax.set_title("F-IQL on cheetah-run random-medium-expert, seed 0")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curves_official_vs_spinbench.png", dpi=120)
    plt.close(fig)


def fig_eval_noise(res: Path, out: Path, norm) -> None:
    ev = read_csv(res / "fiql_rme_s0" / "evals.csv")
    off = official_evals(res / "official_run.log")
    training_evals = {
        "spin-bench F-IQL": (col(ev, "step", int), col(ev, "normalized")) if ev else None,
        "official IQL.py": (off[0], norm(off[1])) if off is not None else None,
    }
    panels = [
        ("spin-bench F-IQL", res / "fiql_rme_s0" / "posthoc.csv"),
        ("official IQL.py", res / "official_eval" / "posthoc.csv"),
    ]
    panels = [(t, read_csv(p)) for t, p in panels if p.exists()]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), sharey=True, squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels, strict=True):
        full = posthoc_summary(rows, norm)
        first10 = posthoc_summary(rows, norm, n=10)
        for mode, color, marker in (("sampled", "tab:blue", "o"), ("greedy", "tab:red", "^")):
            s, m, c = full[mode]
            n = len({r["episode"] for r in rows if r["mode"] == mode})
            ax.plot(s, m, marker + "-", color=color, label=f"{mode}, {n} episodes (band: 95% CI)")
            ax.fill_between(s, m - c, m + c, color=color, alpha=0.2)
            s10, m10, _ = first10[mode]
            ax.plot(s10, m10, marker, color=color, mfc="none", ls=":", label=f"{mode}, first 10 episodes")
        if training_evals[title] is not None:
            ts, tm = training_evals[title]
            ax.plot(ts, tm, "kx--", alpha=0.7, label="sampled, 10 episodes during training")
        ax.set_title(title)
        ax.set_xlabel("gradient steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("normalized score")
    fig.tight_layout()
    fig.savefig(out / "curves_eval_noise.png", dpi=120)
    plt.close(fig)


def fig_composition(res: Path, out: Path, norm) -> None:
    rows = read_csv(res / "composition" / "composition.csv")
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7, 3.8))
    bins = np.linspace(-5, 105, 45)
    for src in SOURCES:
        x = np.array([float(r["normalized"]) for r in rows if r["source"] == src])
        ax.hist(x, bins=bins, color=COLORS[src], alpha=0.8, label=f"{src}: {len(x)} episodes, mean {x.mean():.1f}")
    allx = np.array([float(r["normalized"]) for r in rows])
    ax.axvline(allx.mean(), color="k", ls="--", label=f"dataset mean {allx.mean():.1f}")
    ax.set_xlabel("episode return (normalized score)")
    ax.set_ylabel("episodes")
    ax.set_title("cheetah-run random-medium-expert-v0: episode returns by source")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves_composition.png", dpi=120)
    plt.close(fig)


def fig_objective(res: Path, out: Path) -> None:
    runs = [
        ("spin-bench", read_csv(res / "fiql_rme_s0" / "diag.csv")),
        ("official", read_csv(res / "official_eval" / "diag.csv")),
    ]
    sb = runs[0][1]
    if not sb:
        return
    off = runs[1][1]
    s = col(sb, "step", int)
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    ax = axes[0][0]
    for key, label in (
        ("q_data", "Q(s, a_data)"),
        ("q_pi", "Q(s, a ~ pi)"),
        ("q_greedy", "Q(s, argmax pi)"),
        ("q_max", "Q(s, argmax Q)"),
        ("v", "V(s)"),
    ):
        ax.plot(s, col(sb, key), label=label)
    if off:
        ax.plot(col(off, "step", int), col(off, "q_data"), "ks", ms=4, label="official: Q(s, a_data)")
    ax.set_title("critic on the probe set (min of target critics)")
    ax.set_ylabel("value")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    for src in SOURCES:
        ax.plot(s, col(sb, f"adv_{src}"), color=COLORS[src], label=f"mean A, {src}")
        ax.plot(s, col(sb, f"adv_sd_{src}"), color=COLORS[src], ls=":", label=f"sd A, {src}")
    ax.set_title("advantage A = Q(s, a_data) - V(s) by source")
    ax.legend(fontsize=8)
    ax = axes[0][2]
    ax.plot(s, col(sb, "ess"), label="ESS / B (batches of 256)")
    ax.plot(s, col(sb, "clip"), label="share of weights at the clip (100)")
    ax.set_ylim(0, 1)
    ax.set_title("AWR weights exp(beta A), beta = 3")
    ax.legend(fontsize=8)
    ax = axes[1][0]
    for src in SOURCES:
        ax.plot(s, col(sb, f"wshare_{src}"), color=COLORS[src], label=src)
    ax.set_title("share of the total AWR weight by source")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax = axes[1][1]
    for src in SOURCES:
        ax.plot(s, col(sb, f"logp_{src}"), color=COLORS[src], label=f"log pi(a_data|s), {src}")
    ax.plot(s, -col(sb, "entropy"), "k:", label="- policy entropy (6 dims)")
    ax.set_title("policy fit to each source's actions")
    ax.legend(fontsize=8)
    ax = axes[1][2]
    for src in SOURCES:
        ax.plot(s, col(sb, f"match_{src}"), color=COLORS[src], label=src)
    ax.set_title("share of dims where argmax pi = dataset action")
    ax.legend(fontsize=8)
    for a in axes.flat:
        a.set_xlabel("gradient steps")
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "curves_objective.png", dpi=120)
    plt.close(fig)


def fig_visits(res: Path, out: Path, norm) -> None:
    rows = read_csv(res / "fiql_rme_s0" / "visits.csv")
    if not rows:
        return
    steps = sorted({int(r["step"]) for r in rows})

    def per_step(key):
        return np.array([np.mean([float(r[key]) for r in rows if int(r["step"]) == s]) for s in steps])

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    ax = axes[0]
    ax.plot(steps, per_step("far_share"), "o-", label="far from every dataset state")
    ax.plot(steps, per_step("upside_down_share"), "s-", label="upside down (cos(torso pitch) < 0)")
    greedy = read_csv(res / "fiql_rme_s0" / "visits_greedy.csv")
    if greedy:
        g_steps = sorted({int(r["step"]) for r in greedy})
        g_up = [np.mean([float(r["upside_down_share"]) for r in greedy if int(r["step"]) == s]) for s in g_steps]
        ax.plot(g_steps, g_up, "s--", color="tab:red", mfc="none", label="upside down, greedy actions")
    for src in SOURCES:
        ax.plot(steps, per_step(f"near_{src}"), ":", color=COLORS[src], label=f"nearest dataset state is {src}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("share of evaluation steps (10 episodes each)")
    ax.set_title("where spin-bench F-IQL's evaluation episodes go")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    sc = ax.scatter(
        [float(r["upside_down_share"]) for r in rows],
        norm([float(r["return"]) for r in rows]),
        c=[int(r["step"]) for r in rows],
        cmap="viridis",
    )
    fig.colorbar(sc, ax=ax, label="gradient steps")
    ax.set_xlabel("share of the episode spent upside down")
    ax.set_ylabel("episode return (normalized score)")
    ax.set_title("one point per evaluation episode")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "curves_visits.png", dpi=120)
    plt.close(fig)


def fig_betas(res: Path, out: Path) -> None:
    rows = read_csv(res / "fiql_rme_s0" / "betas.csv")
    if not rows:
        return
    s = col(rows, "step", int)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key in [k for k in rows[0] if k.startswith("ess_beta")]:
        beta = key.removeprefix("ess_beta")
        note = " (= beta 3 with a mean over 6 dims)" if beta == "0.5" else " (trained)" if beta == "3" else ""
        ax.plot(s, col(rows, key), "o-", label=f"beta {beta}{note}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("gradient steps (saved states of the beta-3 run)")
    ax.set_ylabel("ESS / B of exp(beta A), batches of 256")
    ax.set_title("how sharp the AWR weights of the same advantages are at other betas")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves_betas.png", dpi=120)
    plt.close(fig)


def fig_medium(res: Path, out: Path) -> None:
    runs = [
        ("random-medium-expert", read_csv(res / "fiql_rme_s0" / "evals.csv")),
        ("medium", read_csv(res / "fiql_medium_s0" / "evals.csv")),
    ]
    if not runs[1][1]:
        return
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, ev in runs:
        if ev:
            ax.plot(col(ev, "step", int), col(ev, "normalized"), "o-", label=f"F-IQL on {name}")
    ax.axhline(51.3, color="tab:orange", ls=":", label="medium data mean (51.3)")
    ax.axhline(47.9, color="tab:blue", ls=":", label="random-medium-expert data mean (47.9)")
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("normalized score (10 sampled episodes)")
    ax.set_title("spin-bench F-IQL, seed 0: mixed data against medium data")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves_medium.png", dpi=120)
    plt.close(fig)


def fig_sweep(res: Path, out: Path, norm) -> None:
    sweeps = sorted(res.glob("sweep_*"))
    if not sweeps:
        return

    def upside_down(run: Path):
        rows = read_csv(run / "visits.csv")
        if not rows:
            return None
        steps = sorted({int(r["step"]) for r in rows})
        return steps, [np.mean([float(r["upside_down_share"]) for r in rows if int(r["step"]) == s]) for s in steps]

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    for d in sweeps:
        ev, dg = read_csv(d / "evals.csv"), read_csv(d / "diag.csv")
        config = d / "config.json"
        label = " ".join(json.loads(config.read_text())["set"]) if config.exists() else d.name
        label = label or d.name
        if ev:
            axes[0].plot(col(ev, "step", int), col(ev, "normalized"), "o-", label=label)
        if dg:
            axes[1].plot(col(dg, "step", int), col(dg, "ess"), label=label)
            axes[2].plot(col(dg, "step", int), col(dg, "clip"), label=label)
        up = upside_down(d)
        if up:
            axes[3].plot(*up, "o-", label=label)
    ev = read_csv(res / "fiql_rme_s0" / "evals.csv")
    dg = read_csv(res / "fiql_rme_s0" / "diag.csv")
    if ev:
        axes[0].plot(col(ev, "step", int), col(ev, "normalized"), "ko-", label="beta=3, expectile=0.8 (default)")
    if dg:
        axes[1].plot(col(dg, "step", int), col(dg, "ess"), "k", label="default")
        axes[2].plot(col(dg, "step", int), col(dg, "clip"), "k", label="default")
    up = upside_down(res / "fiql_rme_s0")
    if up:
        axes[3].plot(*up, "ko-", label="default")
    axes[3].set_ylabel("share of evaluation steps upside down")
    axes[3].set_ylim(0, 1)
    axes[0].set_ylabel("normalized score (10 sampled episodes)")
    axes[1].set_ylabel("ESS / B")
    axes[2].set_ylabel("share of weights at the clip")
    for a in axes:
        a.set_xlabel("gradient steps")
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves_sweep.png", dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--random", type=float, default=5.112, help="random reference return (catalog)")
    p.add_argument("--expert", type=float, default=785.949, help="expert reference return (catalog)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    def norm(x):
        return 100.0 * (np.asarray(x, dtype=float) - args.random) / (args.expert - args.random)

    fig_official_vs_spinbench(args.results, args.out, norm)
    fig_eval_noise(args.results, args.out, norm)
    fig_composition(args.results, args.out, norm)
    fig_objective(args.results, args.out)
    fig_sweep(args.results, args.out, norm)
    fig_visits(args.results, args.out, norm)
    fig_betas(args.results, args.out)
    fig_medium(args.results, args.out)


if __name__ == "__main__":
    main()
