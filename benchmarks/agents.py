"""Agent update throughput and peak memory at the paper's sizes, on synthetic data.

Usage: python benchmarks/agents.py [--device cpu|cuda] [--seconds 3] [--shapes cheetah-run dog]
                                   [--agents spin saint f-iql ar-iql bc] [--preset paper|quick]
                                   [--compile] [--asm-steps 1] [--threads 1]

For each shape (cheetah-run: 17 obs dims, 6 x 3 bins; dog: 223 obs dims, 38 x 3 bins) and agent, a fresh
process builds the agent with the preset (``paper`` by default) and times ``update`` calls, batches drawn by
the real sampler from 20k synthetic transitions, for ``--seconds`` after a warm-up. SPIN is timed in stage 2
(its trunk frozen and left untrained: the cost does not depend on its values). Its stage 1 is timed apart as
ASM steps at the preset's ASM batch size (1024 for ``paper``) and reported as seconds per epoch of a
1M-transition dataset, extrapolated from the timed steps.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the process's peak RSS minus its RSS
after importing torch (what the agent, its data and its training add).

The reference figure is a plain 2x256 MLP classifier step (cross-entropy, Adam, batch 256) in the same
process type, timed before and after the agents of a shape (the mean is shown): ``ratio`` = agent updates/s /
reference updates/s, the figure to compare across machines.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np

SHAPES = {"cheetah-run": (17, 6, 3), "dog": (223, 38, 3)}
DATASET_ROWS = 20_000
EPOCH_ROWS = 1_000_000


def synthetic(obs_dim: int, n: int, m: int, rows: int = DATASET_ROWS):
    from spin_bench.datasets import Transitions

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(rows, obs_dim)).astype(np.float32)
    return Transitions(
        obs, rng.integers(0, m, (rows, n)).astype(np.int8), rng.normal(size=rows).astype(np.float32),
        np.roll(obs, -1, 0), np.zeros(rows, bool), np.arange(rows) % 1000 == 999, np.full(n, m, np.int64),
    )  # fmt: skip


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def timed(step, seconds: float, sync) -> float:
    for _ in range(3):  # warm-up (allocator, autotuning, compilation)
        step()
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    sync()
    return count / (time.perf_counter() - start)


def measure(job: dict) -> dict:
    """One measurement in this (fresh) process: updates/s (or ASM s/epoch) and peak memory."""
    import torch

    from spin_bench.agents import TransitionSampler, make_agent, make_config
    from spin_bench.agents.asm import pretrain_asm

    device = torch.device(job["device"])
    cuda = device.type == "cuda"
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    obs_dim, n, m = SHAPES[job["shape"]]
    baseline = rss_mib()
    data = synthetic(obs_dim, n, m)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    result = {}
    if job["what"] == "reference":
        net = torch.nn.Sequential(
            torch.nn.Linear(obs_dim, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, n * m),
        ).to(device)  # fmt: skip
        opt = torch.optim.Adam(net.parameters(), lr=3e-4)
        sampler = TransitionSampler(data, device, 0)

        def step():
            batch = sampler.sample(256)
            loss = torch.nn.functional.cross_entropy(net(batch.observations).view(-1, m), batch.actions.view(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()

        result["rate"] = timed(step, job["seconds"], sync)
    elif job["what"] == "asm":
        obs = torch.as_tensor(data.observations, device=device)
        actions = torch.as_tensor(data.actions, device=device)

        def asm_seconds(steps: int) -> tuple[float, int, int]:
            cfg = make_config("spin", job["preset"], compile=job["compile"], asm_steps=steps)
            _, seconds, done, _ = pretrain_asm(obs, actions, data.nvec, cfg, 0)
            return seconds, done, cfg.asm_batch_size

        asm_seconds(1)  # warm-up
        seconds, steps, batch_size = asm_seconds(job["asm_steps"])
        result["batch_size"] = batch_size
        result["step_seconds"] = seconds / steps
        result["epoch_seconds"] = seconds / steps * -(-EPOCH_ROWS // batch_size)
    else:
        agent = make_agent(job["what"], obs_dim, data.nvec, job["preset"], device, 0, compile=job["compile"])
        if job["what"] == "spin":
            # Stage 2 alone: its cost does not depend on the frozen trunk's values, and skipping the ASM
            # keeps stage 1's memory out of the peak (its own row below measures it).
            agent.asm_key = "benchmark: untrained frozen trunk"
        sampler = TransitionSampler(data, device, 0)
        result["rate"] = timed(lambda: agent.update(sampler.sample(agent.config.batch_size)), job["seconds"], sync)
        result["trainable"] = agent.num_parameters(trainable_only=True)
    if cuda:
        result["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline
    return result


def run(job: dict) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:  # fresh process: clean peak memory and allocator
        return pool.apply(measure, (job,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per agent and shape")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--agents", nargs="+", default=["spin", "saint", "f-iql", "ar-iql", "bc"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the losses (CUDA only)")
    parser.add_argument("--asm-steps", type=int, default=1, help="timed ASM steps per shape (0: skip the ASM)")
    parser.add_argument("--preset", default="paper", choices=["paper", "quick"], help="agent sizes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (one core per run)")
    args = parser.parse_args()
    common = {
        "device": args.device,
        "seconds": args.seconds,
        "compile": args.compile,
        "threads": args.threads if args.device == "cpu" else 0,
        "preset": args.preset,
    }

    import torch

    threads = common["threads"] or torch.get_num_threads()
    print(
        f"device={args.device} torch={torch.__version__} threads={threads} preset={args.preset} "
        f"timed={args.seconds}s per row"
    )
    print(f"{'shape':<12}{'agent':<18}{'updates/s':>10}{'ratio':>8}{'peak MiB':>10}{'trainable':>12}")
    for shape in args.shapes:
        rows = {name: run({**common, "shape": shape, "what": name}) for name in ["reference", *args.agents]}
        # The reference again after the agents: its mean tames drift in a shared machine's speed.
        reference = run({**common, "shape": shape, "what": "reference"})
        reference["rate"] = (reference["rate"] + rows.pop("reference")["rate"]) / 2
        print(f"{shape:<12}{'2x256 MLP (ref)':<18}{reference['rate']:>10.1f}{1.0:>8.3f}{reference['peak_mib']:>10.0f}")
        for name, r in rows.items():
            label = "spin (stage 2)" if name == "spin" else name
            print(
                f"{shape:<12}{label:<18}{r['rate']:>10.1f}{r['rate'] / reference['rate']:>8.3f}"
                f"{r['peak_mib']:>10.0f}{r['trainable']:>12,}"
            )
        if args.asm_steps > 0:
            r = run({**common, "shape": shape, "what": "asm", "asm_steps": args.asm_steps})
            label = f"ASM ({r['batch_size']}/step)"
            print(
                f"{shape:<12}{label:<18}{1 / r['step_seconds']:>10.2f}{'':>8}"
                f"{r['peak_mib']:>10.0f}   {r['epoch_seconds']:,.0f} s per ASM epoch of 1M transitions"
                f" ({-(-EPOCH_ROWS // r['batch_size'])} steps; from {args.asm_steps} timed steps)"
            )


if __name__ == "__main__":
    main()
