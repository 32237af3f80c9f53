"""Run a grid of specs locally (worker processes) or on Ray, with live progress."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from queue import Empty
from typing import Any

from rich.console import Console

from spin_bench.datasets.resolved import ResolvedDataset
from spin_bench.runner.interrupts import STOP_SIGNALS, die_with_parent
from spin_bench.runner.lock import refuse_if_locked
from spin_bench.runner.progress import GridProgress
from spin_bench.runner.run import RunFailed, check_data_digest, execute_run
from spin_bench.runner.spec import RunSpec

EXECUTORS = ("local", "ray")
POLL_S = 0.5


@dataclass
class RunOutcome:
    """A run's summary, or why it failed or stopped."""

    spec: RunSpec
    summary: dict[str, Any] | None
    error: str | None = None
    interrupted: bool = False
    """Stopped by SIGINT or SIGTERM (checkpointed when training had begun)."""


def _threads_per_run() -> int:
    """Torch threads per run: SPIN_BENCH_THREADS, else 1. Small-batch CPU updates gain little from more
    threads, and oversubscribed OpenMP threads spin-wait and crawl when anything else shares the cores."""
    return max(1, int(os.environ.get("SPIN_BENCH_THREADS", "1")))


def _execute(
    spec: RunSpec,
    root: str,
    device: str,
    cache_dir: str | None,
    threads: int,
    dataset=None,
    continue_from: str | None = None,
) -> RunOutcome:
    try:
        summary = execute_run(
            spec,
            root,
            device=device,
            cache_dir=cache_dir,
            threads=threads,
            dataset=dataset,
            continue_from=continue_from,
        )
        return RunOutcome(spec, summary)
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
    datasets: dict[str, ResolvedDataset] | None = None,
    continue_from: str | Path | None = None,
) -> list[RunOutcome]:
    """Run every spec (skipping finished ones, resuming interrupted ones); outcomes in spec order.

    Specs without ``data_digest`` get the installed dataset's (so their folders carry the data's identity); the
    outcomes hold the specs as run. Before any training: DatasetIntegrityError if a dataset does not match the
    catalog or a spec's digest, RunLockedError if another process trains one of the folders. SIGINT and SIGTERM
    stop the runs at their next update boundary (they checkpoint) and raise KeyboardInterrupt, as does a run
    stopped by a signal of its own. ``datasets``: the specs' datasets as resolved already, by id (the others are
    resolved here); each run gets its record. ``continue_from``: a runs root whose finished shorter runs of the
    same configs the runs without a checkpoint start from (:func:`spin_bench.runner.run.execute_run`).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    root = Path(root)
    cache = str(cache_dir) if cache_dir is not None else None
    shorter_root = str(Path(continue_from).resolve()) if continue_from is not None else None
    with _sigterm_interrupts():
        # Datasets first, once each, in this process: parallel runs must not build the same dataset twice.
        from spin_bench.datasets.integrity import local_build_digest, verified_digest
        from spin_bench.runner.data import ensure_datasets

        given = datasets or {}
        datasets = ensure_datasets(given.get(name, name) for name in sorted({spec.dataset_id for spec in specs}))
        digests = {name: verified_digest(d, accept_local_build=True) for name, d in datasets.items()}
        for name, digest in digests.items():
            if local_build_digest(name) == digest:
                (console or Console(stderr=True)).print(
                    f"[yellow]{name} is a local build (sha256 {digest[:16]}...), not the published data: its runs "
                    "carry that sha256 in their folder names and are not comparable with runs on the published "
                    "data[/yellow]"
                )
        for spec in specs:
            check_data_digest(spec, digests[spec.dataset_id])
        specs = [spec if spec.data_digest else spec.with_data_digest(digests[spec.dataset_id]) for spec in specs]
        for spec in specs:
            refuse_if_locked(spec.folder(root))
        outcomes: dict[RunSpec, RunOutcome] = {}
        with GridProgress(specs, root, console) as display:
            if executor == "local":
                _run_local(specs, datasets, root, workers, device, cache, display, outcomes, shorter_root)
            else:
                _run_ray(specs, datasets, root, workers, device, cache, address, display, outcomes, shorter_root)
    if any(outcome.interrupted for outcome in outcomes.values()):
        raise KeyboardInterrupt
    return [outcomes[spec] for spec in specs]


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the block, as SIGINT does: a job scheduler's stop checkpoints the runs
    like a Ctrl-C (main thread only; an ignored SIGTERM stays ignored)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _child(
    spec: RunSpec,
    dataset,
    root: str,
    device: str,
    cache: str | None,
    threads: int,
    parent: int,
    results,
    continue_from: str | None = None,
):
    die_with_parent(parent)  # first: a `run` killed from here on leaves no trainer behind
    try:
        outcome = _execute(spec, root, device, cache, threads, dataset, continue_from)
    except KeyboardInterrupt:
        outcome = RunOutcome(spec, None, f"{spec.key}: interrupted (checkpointed)", interrupted=True)
    except Exception as err:  # reported to the parent; the grid goes on
        outcome = RunOutcome(spec, None, f"{spec.key}: {type(err).__name__}: {err}")
    for signum in STOP_SIGNALS:  # the run is over: a late stop signal (a relayed Ctrl-C) has nothing to stop
        signal.signal(signum, signal.SIG_IGN)
    results.put(outcome)


def _run_local(specs, datasets, root, workers, device, cache, display, outcomes, continue_from=None) -> None:
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
                args = (
                    spec,
                    datasets[spec.dataset_id],
                    str(root),
                    device,
                    cache,
                    threads,
                    os.getpid(),
                    results,
                    continue_from,
                )
                process = ctx.Process(target=_child, args=args)
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
        # SIGTERM, because a job started with `&` ignores SIGINT.
        for process in running.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in running.values():
            process.join(timeout=60)
        raise


def _run_ray(specs, datasets, root, workers, device, cache, address, display, outcomes, continue_from=None) -> None:
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
        refs = {
            remote.remote(
                spec, str(root.resolve()), device, cache, cpus, datasets[spec.dataset_id], continue_from
            ): spec
            for spec in specs
        }
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
