"""Train and evaluate one run in its folder, resumably.

Folder contents:
    config.json     the spec, the fully resolved agent config, versions, git commit, device
    metrics.csv     one row per evaluation: step, wall seconds, mean losses, eval returns, normalized score
    checkpoint.pt   agent (networks, optimizers, step, RNG) + sampler state + counters; weights-only safe
    progress.json   live progress for displays (step, updates/s, last eval), rewritten every few seconds
    summary.json    written last: status, final and best returns, normalized scores, wall time
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import platform
import signal
import subprocess
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spin_bench._io import atomic_torch_save, atomic_write_json, atomic_write_text
from spin_bench.runner.spec import RunSpec

METRIC_FIELDS = ("step", "wall_seconds", "eval_return_mean", "eval_return_std", "normalized_score")
PROGRESS_INTERVAL_S = 2.0


class RunFailed(RuntimeError):
    """A run stopped for a reason of its own (e.g. a non-finite loss); other runs go on."""


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("spin-bench", "torch", "numpy", "gymnasium", "dm_control", "mujoco", "minari"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def read_summary(folder: Path) -> dict | None:
    path = folder / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def read_metrics(folder: Path) -> list[dict[str, Any]]:
    path = folder / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: _number(v) for k, v in row.items()} for row in rows]


def _number(text: str):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    names = list(METRIC_FIELDS) + sorted({k for row in rows for k in row} - set(METRIC_FIELDS))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


@contextlib.contextmanager
def _interrupts_ignored():
    """Ignore SIGINT inside the block (main thread only; elsewhere signals cannot arrive anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def execute_run(
    spec: RunSpec,
    root: str | Path,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train ``spec`` to completion (or resume it) and return its summary.

    A finished run is returned as is. A run with a checkpoint continues from it: same step counter,
    optimizer moments and RNG states. Raises ``RunFailed`` on a non-finite loss (summary status
    ``failed``); on KeyboardInterrupt it checkpoints the current step before re-raising.
    """
    from spin_bench.agents.evaluation import evaluate
    from spin_bench.agents.registry import make_agent, restore_agent
    from spin_bench.agents.sampler import TransitionSampler
    from spin_bench.runner.data import load_run_data

    folder = spec.folder(root)
    summary = read_summary(folder)
    if summary is not None and summary["status"] == "finished":
        return summary
    if threads:
        torch.set_num_threads(threads)
    folder.mkdir(parents=True, exist_ok=True)
    data = load_run_data(spec.dataset_id)
    agent = make_agent(
        spec.agent,
        data.transitions.obs_dim,
        data.transitions.nvec,
        spec.preset,
        device,
        spec.seed,
        **dict(spec.overrides),
    )
    config = agent.config
    run_config = {
        "spec": spec.to_dict(),
        "dataset_id": spec.dataset_id,
        "env_id": data.env_id,
        "env_kwargs": data.env_kwargs,
        "agent_config": asdict(config),
        "device": str(agent.device),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    config_path = folder / "config.json"
    if config_path.exists():
        previous = json.loads(config_path.read_text())
        if previous["agent_config"] != json.loads(json.dumps(run_config["agent_config"])):
            raise ValueError(
                f"{folder} holds a run with a different config; use another --out or the same options to resume"
            )
    atomic_write_json(config_path, run_config)

    checkpoint_path = folder / "checkpoint.pt"
    sampler = TransitionSampler(data.transitions, agent.device, spec.seed)
    rows = read_metrics(folder)
    resumes: list[int] = []
    if checkpoint_path.exists():
        ckpt = torch.load(checkpoint_path, map_location=agent.device, weights_only=True)
        agent = restore_agent(ckpt["agent"], device=agent.device)
        sampler.load_state_dict(ckpt["sampler"])
        wall_offset = float(ckpt["wall_seconds"])
        resumes = [*ckpt["resumes"], agent.step]
        rows = [r for r in rows if r["step"] <= agent.step]
    else:
        torch.manual_seed(spec.seed)
        pretrain_seconds = agent.pretrain(data.transitions, cache_dir)
        wall_offset = float(pretrain_seconds)  # time-to-target counts SPIN's pretraining
    start = time.perf_counter() - wall_offset

    def wall() -> float:
        return time.perf_counter() - start

    def save_checkpoint() -> None:
        atomic_torch_save(
            checkpoint_path,
            {"agent": agent.state_dict(), "sampler": sampler.state_dict(), "wall_seconds": wall(), "resumes": resumes},
        )

    def progress(status: str, last_eval: float | None) -> None:
        atomic_write_json(
            folder / "progress.json",
            {
                "key": spec.key,
                "status": status,
                "step": agent.step,
                "total": config.num_steps,
                "updates_per_s": round(rate, 2),
                "last_eval": last_eval,
                "wall_seconds": round(wall(), 1),
                "resumed_from": resumes,
            },
        )

    losses: dict[str, list[float]] = {}
    last_eval = rows[-1]["eval_return_mean"] if rows else None
    rate, rate_mark, last_progress = 0.0, (agent.step, time.perf_counter()), 0.0
    progress("running", last_eval)
    try:
        while agent.step < config.num_steps:
            metrics = agent.update(sampler.sample(config.batch_size))
            for name, value in metrics.items():
                if not math.isfinite(value):
                    message = f"{spec.key}: {name} became {value} at step {agent.step}; stopping this run"
                    atomic_write_json(folder / "summary.json", {**spec.to_dict(), "status": "failed", "error": message})
                    progress("failed", last_eval)
                    raise RunFailed(message)
                losses.setdefault(name, []).append(value)
            now = time.perf_counter()
            if now - last_progress > PROGRESS_INTERVAL_S:
                rate = (agent.step - rate_mark[0]) / max(now - rate_mark[1], 1e-9)
                rate_mark, last_progress = (agent.step, now), now
                progress("running", last_eval)
            if agent.step % config.eval_every == 0 or agent.step == config.num_steps:
                returns = evaluate(
                    agent,
                    data.env_id,
                    episodes=config.eval_episodes,
                    seed=spec.seed,
                    env_kwargs=data.env_kwargs,
                )
                last_eval = float(returns.mean())
                rows.append(
                    {
                        "step": agent.step,
                        "wall_seconds": round(wall(), 2),
                        "eval_return_mean": round(last_eval, 3),
                        "eval_return_std": round(float(returns.std()), 3),
                        "normalized_score": round(data.normalize(last_eval), 3),
                        **{name: round(float(np.mean(v)), 6) for name, v in sorted(losses.items())},
                    }
                )
                losses = {}
                _write_metrics(folder / "metrics.csv", rows)
                save_checkpoint()
                progress("running", last_eval)
    except KeyboardInterrupt:
        with _interrupts_ignored():  # a second Ctrl-C (or the parent relaying it) must not cut the save
            save_checkpoint()
            progress("interrupted", last_eval)
        raise

    final, best = rows[-1], max(rows, key=lambda r: r["eval_return_mean"])
    summary = {
        **spec.to_dict(),
        "status": "finished",
        "dataset_id": spec.dataset_id,
        "steps": agent.step,
        "eval_episodes": config.eval_episodes,
        "final_return_mean": final["eval_return_mean"],
        "final_return_std": final["eval_return_std"],
        "final_normalized_score": final["normalized_score"],
        "best_return_mean": best["eval_return_mean"],
        "best_step": best["step"],
        "best_normalized_score": best["normalized_score"],
        "wall_seconds": round(wall(), 2),
        "pretrain_seconds": round(float(getattr(agent, "pretrain_seconds", 0.0)), 2),
        "resumed_from": resumes,
    }
    atomic_write_json(folder / "summary.json", summary)
    progress("finished", last_eval)
    return summary
