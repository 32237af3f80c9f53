"""Run a grid of specs locally (worker processes) or on Ray, with live progress."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from queue import Empty
from typing import Any

from rich.console import Console

from spin_bench.runner.progress import GridProgress
from spin_bench.runner.run import RunFailed, execute_run
from spin_bench.runner.spec import RunSpec

EXECUTORS = ("local", "ray")
POLL_S = 0.5


@dataclass
class RunOutcome:
    """A run's summary, or why it failed."""

    spec: RunSpec
    summary: dict[str, Any] | None
    error: str | None = None


def _threads_per_run() -> int:
    """Torch threads per run: SPIN_BENCH_THREADS, else 1. Small-batch CPU updates gain little from more
    threads, and oversubscribed OpenMP threads spin-wait and crawl when anything else shares the cores."""
    return max(1, int(os.environ.get("SPIN_BENCH_THREADS", "1")))


def _execute(spec: RunSpec, root: str, device: str, cache_dir: str | None, threads: int) -> RunOutcome:
    try:
        return RunOutcome(spec, execute_run(spec, root, device=device, cache_dir=cache_dir, threads=threads))
    except RunFailed as err:
        return RunOutcome(spec, None, str(err))


def run_grid(
    specs: list[RunSpec],
    root: str | Path,
    executor: str = "local",
    workers: int = 1,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    address: str | None = None,
    console: Console | None = None,
) -> list[RunOutcome]:
    """Run every spec (skipping finished ones, resuming interrupted ones); outcomes in spec order."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    root = Path(root)
    cache = str(cache_dir) if cache_dir is not None else None
    # Datasets first, once each, in this process: parallel runs must not build the same dataset twice.
    from spin_bench.runner.data import ensure_datasets

    ensure_datasets(sorted({spec.dataset_id for spec in specs}))
    outcomes: dict[RunSpec, RunOutcome] = {}
    with GridProgress(specs, root, console) as display:
        if executor == "local":
            _run_local(specs, root, workers, device, cache, display, outcomes)
        else:
            _run_ray(specs, root, workers, device, cache, address, display, outcomes)
    return [outcomes[spec] for spec in specs]


def _interrupt_once(signum, frame) -> None:
    """SIGINT handler for run processes: the first one raises KeyboardInterrupt (the run checkpoints), later ones are
    ignored. A terminal's Ctrl-C reaches the run and the parent, which relays it; without this, the relayed copy can
    land inside the interrupt handler and cut the checkpoint save."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _child(spec: RunSpec, root: str, device: str, cache: str | None, threads: int, results) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # ignored (a job started with `&`): stays ignored
        signal.signal(signal.SIGINT, _interrupt_once)
    try:
        outcome = _execute(spec, root, device, cache, threads)
    except KeyboardInterrupt:
        outcome = RunOutcome(spec, None, "interrupted (checkpointed)")
    except Exception as err:  # reported to the parent; the grid goes on
        outcome = RunOutcome(spec, None, f"{spec.key}: {type(err).__name__}: {err}")
    results.put(outcome)


def _run_local(specs, root, workers, device, cache, display, outcomes) -> None:
    """Up to ``workers`` runs at a time, each in its own spawned process (so Ctrl-C can reach it)."""
    ctx = get_context("spawn")
    results = ctx.Queue()
    threads = _threads_per_run()
    queue = list(specs)
    running: dict[RunSpec, object] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                spec = queue.pop(0)
                process = ctx.Process(target=_child, args=(spec, str(root), device, cache, threads, results))
                process.start()
                running[spec] = process
            try:
                outcome = results.get(timeout=POLL_S)
            except Empty:
                outcome = None
            if outcome is not None:
                running.pop(outcome.spec).join()
                outcomes[outcome.spec] = outcome
                display.mark_done(outcome.spec)
            for spec, process in list(running.items()):
                if not process.is_alive() and results.empty():
                    process.join()
                    running.pop(spec)
                    outcomes[spec] = RunOutcome(spec, None, f"{spec.key}: worker died (exit code {process.exitcode})")
                    display.mark_done(spec)
            display.refresh()
    except KeyboardInterrupt:
        # A terminal's Ctrl-C reaches the whole process group; signal the runs ourselves in case it did not.
        for process in running.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGINT)
        for process in running.values():
            process.join(timeout=60)
        raise


def _run_ray(specs, root, workers, device, cache, address, display, outcomes) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install 'spin-bench[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) // workers)
        gpus = 1.0 / workers if device == "cuda" else 0
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_execute)
        refs = {remote.remote(spec, str(root.resolve()), device, cache, cpus): spec for spec in specs}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    spec = refs.pop(ref)
                    try:
                        outcomes[spec] = ray.get(ref)
                    except ray.exceptions.RayError as err:
                        outcomes[spec] = RunOutcome(spec, None, f"{spec.key}: {str(err).splitlines()[-1]}")
                    display.mark_done(spec)
                display.refresh()
        except KeyboardInterrupt:
            for ref in refs:  # raises KeyboardInterrupt inside running tasks: they checkpoint and stop
                ray.cancel(ref)
            ray.wait(list(refs), num_returns=len(refs), timeout=60)
            raise
    finally:
        if started_here:
            ray.shutdown()
