"""``spin-bench-maintain behaviour ...``: online DecQN training of the agents that make the datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spin_bench.cli._common import CliErrorsGroup

app = typer.Typer(no_args_is_help=True, cls=CliErrorsGroup)  # exit codes and error lines: spin_bench.errors


@app.command("train")
def train(
    task: Annotated[str, typer.Option(help="Task, e.g. cheetah-run (see spin_bench.envs.all_tasks()).")],
    env_steps: Annotated[int, typer.Option(help="Total environment steps.")] = 1_000_000,
    bins: Annotated[int, typer.Option(help="Bins per action dimension.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the run.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/behaviour/<task>-bins<M>-seed<S>).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Environment processes (default: one per core).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    learner_threads: Annotated[
        int, typer.Option(help="Torch threads of the CPU learner (default: the cores the workers leave, at least 1).")
    ] = 0,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="DecQN hyperparameter key=value, repeatable; a tuple's elements are joined by commas "
            "(e.g. --set hidden=512,512 --set learning_rate=1e-4).",
        ),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Warm-start a new run from an export (datasets/checkpoints/<task>/bins<M>): its expert's network, "
            "counters and curve; the replay is refilled by the expert."
        ),
    ] = None,
) -> None:
    """Train (or resume) a DecQN behaviour agent, evaluating and snapshotting as it goes.

    Re-running the same command resumes from the run folder's checkpoint; a larger --env-steps
    extends a finished run. When the run folder is gone (it lives outside the repository), --init-from
    continues from what `behaviour export` kept of it.
    """
    from spin_bench.cli._common import cli_errors
    from spin_bench.pipeline.behaviour.config import DecQNConfig, apply_overrides
    from spin_bench.pipeline.behaviour.trainer import TrainingInterrupted, run_training

    with cli_errors():
        config = apply_overrides(DecQNConfig(), overrides or [])
    try:
        run_training(
            task=task,
            env_steps=env_steps,
            bins=bins,
            seed=seed,
            out=out,
            workers=workers,
            device=device,
            config=config,
            learner_threads=learner_threads,
            init_from=init_from,
        )
    except TrainingInterrupted:
        raise typer.Exit(130) from None  # the trainer has checkpointed and said how to resume


@app.command("export")
def export(
    run: Annotated[Path, typer.Argument(help="A behaviour run folder (runs/behaviour/<task>-bins<M>-seed<S>).")],
    dest: Annotated[Path, typer.Option(help="Destination, e.g. datasets/checkpoints/<task>/bins<M>.")],
    expert_step: Annotated[
        int | None,
        typer.Option(help="Export the snapshot at this many env steps as the expert (default: the final one)."),
    ] = None,
) -> None:
    """Copy the expert (final, or --expert-step) and medium (closest to half its return) snapshots and the curve."""
    from rich import print as rprint

    from spin_bench.pipeline.behaviour.export import export_snapshots

    record = export_snapshots(run, dest, expert_step)
    for quality, snap in record["snapshots"].items():
        rprint(
            f"{quality}: step {snap['env_steps']:,}, eval return {snap['eval_return_mean']:.1f} "
            f"+- {snap['eval_return_std']:.1f} ({snap['eval_episodes']} episodes), sha256 {snap['sha256'][:12]}"
        )
    rprint(f"wrote {dest}/behaviour.json")


@app.command("rebin")
def rebin(
    source: Annotated[Path, typer.Argument(help="A behaviour export (datasets/checkpoints/<task>/bins<M>).")],
    bins: Annotated[int, typer.Option(help="Bins per action dimension of the new export.")],
    dest: Annotated[Path, typer.Option(help="Destination folder of the new export (outside datasets/ until trained).")],
    utility_basis: Annotated[
        int | None, typer.Option(help="Coefficients per dimension (default: the source's bins, exact for any source).")
    ] = None,
    episodes: Annotated[
        int | None, typer.Option(help="Evaluation episodes per snapshot at the new bins (default: the source's).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Evaluation processes (default: one per core).")] = 0,
) -> None:
    """Carry an export's medium and expert to another bin count through a polynomial utility basis.

    Continue it there with `behaviour train --bins M --init-from DEST --set utility_basis=K` (K: the source's bins)
    plus the --set options of the source's command.
    """
    from rich import print as rprint

    from spin_bench.pipeline.behaviour.rebin import rebin_export

    if bins < 2:
        raise ValueError(f"--bins {bins} must be >= 2")
    record = rebin_export(source, bins, dest, utility_basis=utility_basis, episodes=episodes, workers=workers or None)
    for quality, snap in record["snapshots"].items():
        rprint(
            f"{quality} (step {snap['env_steps']:,}) at {bins} bins: eval return {snap['eval_return_mean']:.1f} "
            f"+- {snap['eval_return_std']:.1f} ({snap['eval_episodes']} episodes), sha256 {snap['sha256'][:12]}"
        )
    rprint(f"wrote {dest}/behaviour.json; continue with --init-from {dest} --set utility_basis="
           f"{record['decqn']['utility_basis']}")  # fmt: skip


@app.command("diagnose")
def diagnose(
    run: Annotated[Path, typer.Argument(help="A behaviour run folder (runs/behaviour/<task>-bins<M>-seed<S>).")],
    steps: Annotated[
        str | None, typer.Option(help="Comma-separated env steps of the snapshots to check (default: 12 spread out).")
    ] = None,
    states: Annotated[int, typer.Option(help="Replay states to sample.")] = 4096,
) -> None:
    """Observation scale and the snapshots' greedy Q-values: is a stalled or diverging run's input or critic to blame?

    DM Control rewards lie in [0, 1], so a greedy Q-value well above 1 / (1 - gamma) is divergence, not optimism.
    "Q from eval" is the value the eval return implies, (R / 1000) / (1 - gamma): a Q mean many times above it is
    overestimation, even under the bound.
    """
    from rich import print as rprint
    from rich.table import Table

    from spin_bench.pipeline.behaviour.diagnose import (
        DIVERGED_Q_FACTOR,
        LARGE_FEATURE,
        OVERESTIMATED_FACTOR,
        diverged_q,
        observation_scale,
        q_bound,
        run_discounting,
        sample_replay_observations,
        snapshot_q_values,
    )

    if states < 1:
        raise ValueError(f"--states {states} must be >= 1")
    chosen = None  # up to 12, spread over the run
    if steps is not None:
        try:
            chosen = [int(s.replace("_", "")) for s in steps.split(",")]
        except ValueError:
            raise ValueError(f"--steps {steps!r} must be comma-separated integers, e.g. 975000,1000000") from None
    observations = sample_replay_observations(run, states)
    scale = observation_scale(observations)
    rprint(
        f"observations: {observations.shape[1]} features; of {scale.states:,} replay states, "
        f"{scale.share_above_100:.1%} have a feature above {LARGE_FEATURE:g} and {scale.share_above_1000:.1%} "
        f"above {10 * LARGE_FEATURE:g}"
    )
    rprint(
        "largest features (index: 99th percentile / max of |x|): "
        + ", ".join(f"{i}: {q99:.3g} / {top:.3g}" for i, q99, top in scale.largest)
    )
    gamma, repeat = run_discounting(run)
    bound, diverged = q_bound(gamma, repeat), diverged_q(gamma, repeat)
    table = Table(title=f"greedy Q on replay states (true values <= {bound:g})")  # rewards lie in [0, 1]
    for column in ("env steps", "eval return", "TD loss", "Q mean", "Q from eval", "Q max", ""):
        table.add_column(column, justify="right")
    results = snapshot_q_values(run, observations, chosen)
    for r in results:
        marks = []
        if r.q_max > diverged:
            marks.append("[red]diverged[/red]")
        elif r.q_max > bound:
            marks.append("[yellow]above bound[/yellow]")
        if r.overestimated:
            marks.append(f"[red]overestimated {r.overestimation:.0f}x[/red]")
        table.add_row(
            f"{r.env_steps:,}",
            f"{r.eval_return:.1f}",
            "-" if r.loss is None else f"{r.loss:.3g}",
            f"{r.q_mean:.3g}",
            f"{r.implied_q:.3g}",
            f"{r.q_max:.3g}",
            ", ".join(marks),
        )
    rprint(table)
    first_bad = next((i for i, r in enumerate(results) if r.q_max > diverged), None)
    if first_bad is not None:
        before = f"; the snapshot checked before it is at {results[first_bad - 1].env_steps:,}" if first_bad else ""
        rprint(
            f"Q-values over {DIVERGED_Q_FACTOR:g}x {bound:g} from {results[first_bad].env_steps:,} env steps: "
            f"the critic diverged{before}. Export an earlier snapshot with `behaviour export --expert-step`."
        )
    elif results[-1].overestimated:  # a young critic's first snapshot may be; the latest one matters
        last = results[-1]
        rprint(
            f"Q mean {last.overestimation:.0f}x the value the eval return implies at {last.env_steps:,} env steps "
            f"(over {OVERESTIMATED_FACTOR:g}x is flagged): the critic learns from its own overestimates; a bound on "
            "the targets caps them without removing them."
        )
    elif any(r.q_max > bound for r in results):
        rprint(
            f"Q-values a little above {bound:g} (at most {DIVERGED_Q_FACTOR:g}x): the ordinary overestimation of a "
            "critic whose true values are near the bound, not divergence."
        )


@app.command("status")
def status(
    root: Annotated[Path, typer.Argument(help="The folder holding the run folders.")] = Path("runs/behaviour"),
) -> None:
    """Every run's progress, best return and critic scale, against the catalog's expert target.

    Returns are the runs' 10-episode evaluations; "target (best)" shows the best as a share of the target, which
    the exported expert's 100-episode reference must reach. "Q/eval" is the mean greedy Q over the value the last
    eval return implies, (R / 1000) / (1 - gamma); red past 5x, an overestimating critic. "settings" starts with
    "from <N>M export" for a run warm-started with --init-from (its curve begins with that export's).
    """
    from rich import print as rprint
    from rich.table import Table

    from spin_bench.pipeline.behaviour.status import catalog_targets, run_statuses

    statuses = run_statuses(root, catalog_targets())
    if not statuses:
        rprint(f"no behaviour runs in {root} (folders with config.json and at least one evaluation in curve.csv)")
        return
    table = Table(title=f"behaviour runs in {root}", box=None)
    for column, justify in [("run", "left"), ("env steps", "right"), ("eval", "right"), ("best (at)", "right"),
                            ("target (best)", "right"), ("Q max", "right"), ("Q/eval", "right"), ("steps/s", "right"),
                            ("hours", "right"),
                            ("settings", "left")]:  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
    for s in statuses:
        # A 10-episode evaluation: the catalog's 100-episode reference decides whether an exported expert meets it.
        target = "–" if s.target is None else f"{s.target:.0f} ({s.best_eval / s.target:.0%})"
        q_max = "–" if s.q_max is None else f"{s.q_max:.3g}" + (" [red]diverged[/red]" if s.diverged else "")
        ratio = "–" if s.overestimation is None else f"{s.overestimation:.1f}x"
        table.add_row(
            s.run.name,
            f"{s.env_steps:,}",
            f"{s.last_eval:.1f}",
            f"{s.best_eval:.1f} ({s.best_step / 1e6:.3g}M)",
            target,
            q_max,
            f"[red]{ratio}[/red]" if s.overestimated else ratio,
            "–" if s.recent_steps_per_second is None else f"{s.recent_steps_per_second:.0f}",
            f"{s.hours:.1f}",
            " ".join(([f"from {s.warm_start_steps / 1e6:.3g}M export"] if s.warm_start_steps else []) + s.settings),
        )
    rprint(table)
