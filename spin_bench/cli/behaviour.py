"""``spin-bench behaviour ...``: online DecQN training of the agents that make the datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


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
        typer.Option("--set", help="DecQN hyperparameter override key=value, repeatable (e.g. hidden=512,512)."),
    ] = None,
) -> None:
    """Train (or resume) a DecQN behaviour agent, evaluating and snapshotting as it goes.

    Re-running the same command resumes from the run folder's checkpoint; a larger --env-steps
    extends a finished run.
    """
    from spin_bench.behaviour.config import DecQNConfig, apply_overrides
    from spin_bench.behaviour.trainer import TrainingInterrupted, run_training

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

    from spin_bench.behaviour.export import export_snapshots

    record = export_snapshots(run, dest, expert_step)
    for quality, snap in record["snapshots"].items():
        rprint(
            f"{quality}: step {snap['env_steps']:,}, eval return {snap['eval_return_mean']:.1f} "
            f"+- {snap['eval_return_std']:.1f} ({snap['eval_episodes']} episodes), sha256 {snap['sha256'][:12]}"
        )
    rprint(f"wrote {dest}/behaviour.json")
