"""Train and evaluate one run in its folder, resumably and exclusively.

Folder contents:
    config.json     the spec, the fully resolved agent config, the dataset's sha256, precision, versions, git commit,
                    device, host (CPU model, usable CPUs, torch threads, GPU)
    metrics.csv     one row per evaluation: step, wall seconds, mean losses, eval returns, normalized score
    checkpoint.pt   agent (networks, optimizers, step, RNG) + sampler state + the losses since the last evaluation +
                    counters, all of one step; weights-only safe
    progress.json   live progress for displays (step, updates/s, last eval), rewritten every few seconds
    summary.json    written last: status, final and best returns, normalized scores, wall time
    lock            locked (flock) while a process trains the folder; holds that process's pid

Ctrl-C and SIGTERM stop a run between two updates, never inside one: the checkpoint then holds one step's
complete state, and the resumed run equals an uninterrupted one exactly.
"""

from __future__ import annotations

import csv
import io
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spin_bench._io import atomic_torch_save, atomic_write_json, atomic_write_text, read_json
from spin_bench.datasets.provenance import library_versions
from spin_bench.datasets.resolved import ResolvedDataset, resolve_dataset
from spin_bench.errors import DamagedFileError, SpinBenchError
from spin_bench.runner.continuation import find_shorter_run, lengthened, provenance
from spin_bench.runner.interrupts import StopSignals
from spin_bench.runner.lock import run_lock
from spin_bench.runner.signal_hook import arm_test_signal
from spin_bench.runner.spec import RunSpec, config_json

METRIC_FIELDS = ("step", "wall_seconds", "eval_return_mean", "eval_return_std", "normalized_score")
PROGRESS_INTERVAL_S = 2.0
CHECKPOINT_KEYS = ("agent", "sampler", "wall_seconds", "resumes")
"""What a checkpoint must hold; ``losses`` (the losses since the last evaluation) is empty at an evaluation."""


class RunFailed(SpinBenchError):
    """A run stopped for a reason of its own (e.g. a non-finite loss); other runs go on."""


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def read_summary(folder: Path) -> dict | None:
    path = folder / "summary.json"
    return read_json(path) if path.exists() else None


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


def check_data_digest(spec: RunSpec, digest: str) -> None:
    """Refuse to train ``spec`` on data other than the data its folder was named for."""
    if spec.data_digest is not None and spec.data_digest != digest:
        from spin_bench.datasets.integrity import DatasetIntegrityError

        raise DatasetIntegrityError(
            f"{spec.dataset_id}: the installed data has sha256 {digest[:16]}..., run {spec.key!r} is for data with "
            f"sha256 {spec.data_digest[:16]}...; install that data, or give the run without a data digest"
        )


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """A run's checkpoint, loaded weights-only; DamagedFileError naming the file if it is damaged."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many types for a broken file; none of their advice applies here
        raise _damaged(path, "empty file" if path.stat().st_size == 0 else _load_failure(err)) from None
    if not isinstance(ckpt, dict):
        raise _damaged(path, f"it holds a {type(ckpt).__name__}, not a run checkpoint")
    missing = [key for key in CHECKPOINT_KEYS if key not in ckpt]
    if missing:
        raise _damaged(path, f"it lacks {', '.join(missing)}")
    return ckpt


def _damaged(path: Path, reason: str) -> DamagedFileError:
    reason = " ".join(reason.split())[:200]
    return DamagedFileError(f"checkpoint {path} is damaged ({reason}); delete it to restart this run from step 0")


def _load_failure(err: Exception) -> str:
    """A short reason for a failed weights-only load. torch's message for objects other than tensors and plain
    values advises ``weights_only=False``, which would run whatever code the file holds: never repeated."""
    text = str(err).strip()
    if "weights_only" in text:
        return "it holds objects other than tensors and plain values"
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def execute_run(
    spec: RunSpec,
    root: str | Path,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    dataset: ResolvedDataset | None = None,
    continue_from: str | Path | None = None,
) -> dict[str, Any]:
    """Train ``spec`` to completion (or resume it) and return its summary (``dataset``: the spec's dataset as
    resolved already; default: resolved here). ``continue_from``: a runs root; a run without a checkpoint of its
    own starts from the final checkpoint of a finished shorter run of the same config there, if one exists
    (:mod:`spin_bench.runner.continuation`), and records it in config.json and summary.json as ``continued_from``.

    Holds the folder's lock throughout (RunLockedError if another process trains it). Checks the dataset's
    sha256 (against the catalog and ``spec.data_digest``) and the folder's recorded config before anything,
    a finished run included; a finished run is then returned as is. A run with a checkpoint continues from it:
    same step counter, optimizer moments, RNG states and batches. Raises ``RunFailed`` on a non-finite loss
    (summary status ``failed``).

    SIGINT and SIGTERM (main thread) stop training between two updates: the run checkpoints that step and
    raises KeyboardInterrupt. A KeyboardInterrupt raised in the middle of an update (e.g. in another thread) saves
    nothing: the resume starts from the last complete checkpoint.
    """
    from spin_bench.datasets.integrity import verified_digest

    dataset = dataset if dataset is not None else resolve_dataset(spec.dataset_id)
    digest = verified_digest(dataset, accept_local_build=True)  # before anything is written: other data is another run
    check_data_digest(spec, digest)
    folder = spec.folder(root)
    folder.mkdir(parents=True, exist_ok=True)
    with run_lock(folder), StopSignals() as stop:
        return _execute_locked(spec, dataset, folder, digest, device, cache_dir, threads, stop, continue_from)


def _execute_locked(
    spec, dataset, folder, digest, device, cache_dir, threads, stop: StopSignals, continue_from=None
) -> dict[str, Any]:
    from spin_bench.agents.evaluation import evaluate
    from spin_bench.agents.sampler import TransitionSampler
    from spin_bench.registry import make_agent, restore_agent
    from spin_bench.runner.data import load_run_data
    from spin_bench.runner.host import host_info

    with stop.raising():  # nothing here changes a checkpoint: a stop may cut it anywhere
        agent_config = config_json(spec.resolved_config())
        config_path = folder / "config.json"
        if config_path.exists():
            _check_same_run(folder, read_json(config_path), agent_config, digest)
        summary = read_summary(folder)
        if summary is not None and summary.get("status") == "finished":
            return summary
        if threads:
            torch.set_num_threads(threads)
        data = load_run_data(dataset)
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
        checkpoint_path = folder / "checkpoint.pt"
        shorter = None
        if continue_from is not None and not checkpoint_path.exists():
            shorter = find_shorter_run(Path(continue_from), spec, agent_config, digest, str(agent.device))
        # The state training starts from: this run's own checkpoint, else a shorter run's final one, else none.
        source = checkpoint_path if shorter is None else shorter / "checkpoint.pt"
        ckpt = load_checkpoint(source, agent.device) if source.exists() else None
        continued: dict[str, Any] | None = None
        if shorter is not None:
            continued = provenance(Path(continue_from), shorter, int(ckpt["agent"]["step"]))
        elif ckpt is not None:
            continued = ckpt.get("continued_from")
        run_config = {
            "spec": spec.to_dict(),
            "dataset_id": spec.dataset_id,
            "dataset_sha256": digest,
            "env_id": data.env_id,
            "env_kwargs": data.env_kwargs,
            "agent_config": config_json(config),
            "device": str(agent.device),
            "host": host_info(str(agent.device)),
            "precision": agent.precision,
            "versions": library_versions(),
            "git_commit": git_commit(),
            **({"continued_from": continued} if continued is not None else {}),
        }
        atomic_write_json(config_path, run_config)

        sampler = TransitionSampler(data.transitions, agent.device, spec.seed)
        # A continued run's first rows are the shorter run's, up to its final evaluation.
        rows = read_metrics(folder if shorter is None else shorter)
        resumes: list[int] = []
        losses: dict[str, list[float]] = {}
        if ckpt is not None:
            try:
                agent = restore_agent(lengthened(ckpt["agent"], config.num_steps), device=agent.device)
                sampler.load_state_dict(ckpt["sampler"])
            except (KeyError, TypeError, ValueError, RuntimeError) as err:
                raise _damaged(source, f"{type(err).__name__}: {err}") from None
            losses = {name: list(values) for name, values in ckpt.get("losses", {}).items()}
            wall_offset = float(ckpt["wall_seconds"])
            resumes = [*ckpt["resumes"], agent.step] if shorter is None else list(ckpt["resumes"])
            rows = [r for r in rows if r["step"] <= agent.step]
        else:
            torch.manual_seed(spec.seed)
            pretrain_seconds = agent.pretrain(data.transitions, cache_dir)
            wall_offset = float(pretrain_seconds)  # time-to-target counts SPIN's pretraining
        arm_test_signal(agent)
    start = time.perf_counter() - wall_offset

    def wall() -> float:
        return time.perf_counter() - start

    def save_checkpoint() -> None:
        atomic_torch_save(
            checkpoint_path,
            {
                "agent": agent.state_dict(),
                "sampler": sampler.state_dict(),
                "losses": losses,
                "wall_seconds": wall(),
                "resumes": resumes,
                **({"continued_from": continued} if continued is not None else {}),
            },
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

    def evaluation_due() -> bool:
        due = agent.step % config.eval_every == 0 or agent.step == config.num_steps
        return agent.step > 0 and due and (not rows or rows[-1]["step"] < agent.step)

    last_eval = rows[-1]["eval_return_mean"] if rows else None
    rate, rate_mark, last_progress = 0.0, (agent.step, time.perf_counter()), 0.0
    # True while agent, sampler and losses all hold the state after update ``agent.step`` and nothing else.
    complete = True
    progress("running", last_eval)
    try:
        while True:
            if evaluation_due():  # also on resuming from a stop that cut the evaluation of this step
                with stop.raising():  # evaluation has its own generator: the training state stays as it is
                    returns = evaluate(
                        agent,
                        data.env_id,
                        episodes=config.eval_episodes,
                        seed=spec.seed,
                        env_kwargs=data.env_kwargs,
                    )
                complete = False
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
                complete = True
                progress("running", last_eval)
            if agent.step >= config.num_steps:
                break
            if stop.requested:
                raise KeyboardInterrupt
            complete = False
            metrics = agent.update(sampler.sample(config.batch_size))
            for name, value in metrics.items():
                if not math.isfinite(value):
                    message = f"{spec.key}: {name} became {value} at step {agent.step}; stopping this run"
                    atomic_write_json(folder / "summary.json", {**spec.to_dict(), "status": "failed", "error": message})
                    progress("failed", last_eval)
                    raise RunFailed(message)
                losses.setdefault(name, []).append(value)
            complete = True
            now = time.perf_counter()
            if now - last_progress > PROGRESS_INTERVAL_S:
                rate = (agent.step - rate_mark[0]) / max(now - rate_mark[1], 1e-9)
                rate_mark, last_progress = (agent.step, now), now
                progress("running", last_eval)
    except KeyboardInterrupt:
        # Signals no longer raise here (StopSignals raises once), so the save cannot be cut. An incomplete
        # state (an exception from inside an update) is never saved: the last complete checkpoint stays.
        if complete:
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
        **({"continued_from": continued} if continued is not None else {}),
    }
    atomic_write_json(folder / "summary.json", summary)
    progress("finished", last_eval)
    return summary


def _check_same_run(folder: Path, recorded: dict[str, Any], agent_config: dict[str, Any], digest: str) -> None:
    """Refuse a folder whose config.json records another config or other data than this run's."""
    if recorded.get("agent_config") != agent_config:
        raise SpinBenchError(
            f"{folder} holds a run with a different config; use another --out or the same options to resume"
        )
    if recorded.get("dataset_sha256", digest) != digest:
        raise SpinBenchError(
            f"{folder} holds a run on other data (sha256 {recorded['dataset_sha256'][:12]}..., the dataset is now "
            f"{digest[:12]}...); use another --out"
        )
