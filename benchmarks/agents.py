"""Agent training and evaluation speed against a float32 matmul roofline measured in the same process.

Usage: python benchmarks/agents.py [--device cpu|cuda] [--threads 1] [--seconds 3] [--presets quick paper]
                                   [--shapes cheetah-run dog] [--agents spin saint f-iql ar-iql bc]
                                   [--no-asm] [--no-eval] [--compile] [--float32] [--rounds 1]
                                   [--compare PATH | --baseline-commit REV]

For each preset (quick, lite, paper), shape (cheetah-run: 17 obs dims, 6 x 3 bins; quadruped-walk: 78, 12 x 3; dog:
223, 38 x 3; by default cheetah-run and dog) and agent, a fresh process builds the agent and reports:

- ``GFLOP``: the floating-point operations of one ``update`` (batch from the real sampler over 20k synthetic
  transitions), counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and attention, plus a formula for
  oneDNN's LSTM layers on CPU; elementwise work is not counted, so the share is that of matmul arithmetic);
- ``upd/s``: updates per second over ``--seconds`` after a warm-up (sampling included);
- ``GFLOP/s`` and ``share``: GFLOP x upd/s, and its fraction of the roofline: the best rate of float32 square
  matmuls of 256, 512 and 1024 on the same device and threads, measured in the same process right before and
  after the agent (the mean of the two), so a shared machine's drift cancels out of the ratio. On CUDA that is
  float32 with TF32 off (PyTorch's default), while the agents' defaults run the transformer forward passes under
  bf16 autocast there (``bf16=True``), so their share can pass 100%; ``--float32`` builds them with ``bf16=False``.

Update rows also give ``ops``, the ATen operator calls one update dispatches (views included, counted with a
``TorchDispatchMode``), and ``us/op``, the update's time divided by them. Eager PyTorch pays a host-side cost of
some microseconds per call whatever the tensor sizes, so where ``us/op`` sits at that cost (on a GPU, where the
arithmetic itself is fast) the update is bound by dispatch, not by the device, and only fewer calls (or one CUDA
graph for the whole update) make it faster.

``--matmul-ceiling`` adds, for update rows, the share the update would reach if it did nothing but its own
matmuls: every ``mm``, ``addmm``, ``bmm`` and ``baddbmm`` one update issues is recorded (shapes and whether each
operand is a transposed view), each distinct call is timed alone on fresh tensors of the same shapes and layout,
and ``mm ms`` is the sum over the update's calls; ``mm ceil`` is their FLOPs over that time as a share of the
roofline, ``in mm`` the fraction of the measured update time those matmuls would take. Small matmuls run far
below the square-matmul roofline, so ``mm ceil`` bounds what removing every non-matmul cost could give. oneDNN's
LSTM layers (AR-IQL) are not matmul calls and are left out of both.

SPIN is timed in stage 2 (its trunk frozen and untrained: the cost does not depend on its values). ``asm`` rows
time one step of the real ``pretrain_asm`` (batch sampling and masking included) at the preset's ASM batch size,
from the difference of two runs of different lengths. ``eval`` rows run the real ``evaluate`` (10 episodes
stepped together, one batched policy call per step, actions sampled) on the shape's environment for
``EVAL_STEPS`` steps and report env steps/s (making and resetting the environments left out); ``env only`` is
the same environments stepped with random actions, the ceiling evaluation can reach.

``--compare PATH`` (a git worktree of older code, e.g. ``git worktree add --detach /tmp/base REV``) or
``--baseline-commit REV`` (a temporary worktree made and removed here) times that code too, in the same run,
interleaved job by job (the order alternating between rounds), and prints the speed-up per row.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the process's peak RSS minus its RSS after
importing torch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPES = {"cheetah-run": (17, 6, 3), "quadruped-walk": (78, 12, 3), "dog": (223, 38, 3)}
ENVS = {"cheetah-run": "cheetah-run", "quadruped-walk": "quadruped-walk", "dog": "dog-run"}
DATASET_ROWS = 20_000
EVAL_EPISODES = 10
EVAL_STEPS = 100
MATMUL_SIZES = (256, 512, 1024)
HERE = Path(__file__).resolve()


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


def rate(step, seconds: float, sync, warmup: int = 3) -> float:
    """Calls of ``step`` per second over ``seconds`` after ``warmup`` calls (allocator, autotuning, compilation)."""
    for _ in range(warmup):
        step()
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    sync()
    return count / (time.perf_counter() - start)


def roofline(device, sync, seconds: float = 0.3) -> float:
    """GFLOP/s of the fastest float32 square matmul of ``MATMUL_SIZES`` on ``device``."""
    import torch

    best = 0.0
    for n in MATMUL_SIZES:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        best = max(best, 2 * n**3 * rate(lambda a=a, b=b: torch.mm(a, b), seconds, sync) / 1e9)
    return best


def lstm_layer_flops(input, weight_ih, weight_hh, *args, out_shape=None, **kwargs) -> int:
    """Matmul FLOPs of oneDNN's LSTM layer (CPU), which FlopCounterMode has no formula for: 2 x (rows of the input,
    i.e. steps x batch) x gates x (input + hidden width)."""
    rows = 1
    for size in input[:-1]:
        rows *= size
    return 2 * rows * weight_ih[0] * (weight_ih[1] + weight_hh[1])


def lstm_layer_backward_flops(input, weight_ih, weight_hh, *args, out_shape=None, **kwargs) -> int:
    """Gradients of the input and of the weights: twice the forward's matmuls."""
    return 2 * lstm_layer_flops(input, weight_ih, weight_hh)


def flops(fn) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    formulas = {aten.mkldnn_rnn_layer: lstm_layer_flops, aten.mkldnn_rnn_layer_backward: lstm_layer_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=formulas) as counter:
        fn()
    return counter.get_total_flops()


def count_ops(fn) -> int:
    """ATen operator calls of ``fn`` (views included): what the host dispatches, one by one, in eager mode."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Counter.calls += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        fn()
    return Counter.calls


MATMUL_OPS = ("mm", "addmm", "bmm", "baddbmm")


def _layout(t) -> str:
    """'c' for a contiguous operand, 't' for a transposed view of one (the backward's layouts), else 'c'."""
    if t.is_contiguous() or t.dim() < 2:
        return "c"
    return "t" if t.transpose(-1, -2).is_contiguous() else "c"


def record_matmuls(fn) -> dict[tuple, int]:
    """Calls of ``fn`` to the ``MATMUL_OPS``: (op, operand shapes, operand layouts, dtype) -> count."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    ops = {getattr(torch.ops.aten, name).default: name for name in MATMUL_OPS}
    calls: dict[tuple, int] = {}

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = ops.get(func)
            if name is not None:
                mats = args[1:3] if name in ("addmm", "baddbmm") else args[:2]
                key = (name, tuple(tuple(m.shape) for m in mats), tuple(_layout(m) for m in mats), str(mats[0].dtype))
                calls[key] = calls.get(key, 0) + 1
            return func(*args, **(kwargs or {}))

    with Recorder():
        fn()
    return calls


def matmul_seconds(calls: dict[tuple, int], device, sync, seconds: float = 0.05) -> tuple[float, float]:
    """(seconds, FLOPs) of the recorded matmul calls replayed one distinct call at a time on fresh tensors."""
    import torch

    total, work = 0.0, 0.0
    for (name, shapes, layouts, dtype), count in calls.items():
        mats = []
        for shape, layout in zip(shapes, layouts, strict=True):
            if layout == "t":
                mats.append(torch.randn(*shape[:-2], shape[-1], shape[-2], device=device).transpose(-1, -2))
            else:
                mats.append(torch.randn(*shape, device=device))
        mats = [m.to(getattr(torch, dtype.split(".")[-1])) for m in mats]
        op = torch.bmm if name in ("bmm", "baddbmm") else torch.mm
        a, b = mats
        per_call = 1.0 / rate(lambda op=op, a=a, b=b: op(a, b), seconds, sync)
        batch = a.shape[0] if a.dim() == 3 else 1
        total += count * per_call
        work += count * 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
    return total, work


def measure(job: dict) -> dict:
    """One row in this (fresh) process."""
    import torch

    import spin_bench
    from spin_bench.agents import TransitionSampler
    from spin_bench.registry import make_agent, make_config

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
    result = {"code": str(Path(spin_bench.__file__).resolve().parents[1])}
    roof_before = roofline(device, sync)
    what, seconds = job["what"], job["seconds"]
    if what.startswith("asm"):
        from spin_bench.agents.spin import pretrain_asm

        obs = torch.as_tensor(data.observations, device=device)
        actions = torch.as_tensor(data.actions, device=device)

        def asm_run(steps: int) -> tuple[float, int]:
            cfg = make_config("spin", job["preset"], compile=job["compile"], bf16=job["bf16"], asm_steps=steps)
            return pretrain_asm(obs, actions, data.nvec, cfg, 0)[1], cfg.asm_batch_size

        result["flops"] = flops(lambda: asm_run(1))  # model building does no matmul: this is one step
        one, _ = asm_run(1)
        estimate = asm_run(3)[0] - one
        steps = max(2, int(seconds / max(estimate / 2, 1e-6)))
        one, batch_size = asm_run(1)
        many, _ = asm_run(1 + steps)
        result["rate"] = steps / max(many - one, 1e-9)
        result["batch_size"] = batch_size
    elif what.startswith("eval"):
        import gymnasium as gym

        from spin_bench.agents import evaluate

        agent = make_agent(what.split(":")[1], obs_dim, data.nvec, job["preset"], device, 0)
        env_id = spin_bench.env_id(ENVS[job["shape"]])
        # FlopCounterMode's module hooks fail under no_grad on parameters that require grad: freeze them to count.
        trainable = [p for net in agent._networks().values() for p in net.parameters() if p.requires_grad]
        for p in trainable:
            p.requires_grad_(False)
        result["flops"] = flops(lambda: agent.act(data.observations[:EVAL_EPISODES])) / EVAL_EPISODES  # per env step
        for p in trainable:
            p.requires_grad_(True)

        def eval_seconds(steps: int) -> float:
            start = time.perf_counter()
            evaluate(agent, env_id, episodes=EVAL_EPISODES, max_episode_steps=steps)
            return time.perf_counter() - start

        eval_seconds(2)  # warm-up
        # The difference of two lengths leaves out making and resetting the environments.
        result["rate"] = EVAL_EPISODES * (EVAL_STEPS - 1) / (eval_seconds(EVAL_STEPS) - eval_seconds(1))
        result["act_rate"] = rate(lambda: agent.act(data.observations[:EVAL_EPISODES]), seconds / 3, sync)
        envs = [gym.make(env_id) for _ in range(EVAL_EPISODES)]
        rng = np.random.default_rng(0)
        for k, env in enumerate(envs):
            env.reset(seed=k)
        start = time.perf_counter()
        for _ in range(EVAL_STEPS):
            for env in envs:
                env.step(rng.integers(0, m, n))
        result["env_rate"] = EVAL_EPISODES * EVAL_STEPS / (time.perf_counter() - start)
    else:
        agent = make_agent(what, obs_dim, data.nvec, job["preset"], device, 0, compile=job["compile"], bf16=job["bf16"])
        if what == "spin":
            # Stage 2 alone: its cost does not depend on the frozen trunk's values, and skipping the ASM
            # keeps stage 1's memory out of the peak (the asm row measures it).
            agent.asm_key = "benchmark: untrained frozen trunk"
        sampler = TransitionSampler(data, device, 0)
        batch_size = agent.config.batch_size
        for _ in range(3):
            agent.update(sampler.sample(batch_size))
        result["flops"] = flops(lambda: agent.update(sampler.sample(batch_size)))
        result["ops"] = count_ops(lambda: agent.update(sampler.sample(batch_size)))
        result["rate"] = rate(lambda: agent.update(sampler.sample(batch_size)), seconds, sync)
        result["trainable"] = agent.num_parameters(trainable_only=True)
        if job.get("matmul_ceiling"):
            calls = record_matmuls(lambda: agent.update(sampler.sample(batch_size)))
            result["mm_seconds"], result["mm_flops"] = matmul_seconds(calls, device, sync)
            result["mm_calls"] = sum(calls.values())
    result["roofline"] = (roof_before + roofline(device, sync)) / 2
    if cuda:
        result["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline
    return result


def run(job: dict, code: Path) -> dict:
    """``measure(job)`` in a fresh process importing spin-bench from the source tree ``code``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run(
        [sys.executable, str(HERE), "--worker", json.dumps(job)],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"job {job} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def label(what: str, preset: str) -> str:
    if what == "spin":
        return "spin (stage 2)"
    if what == "asm":
        return "asm step"
    if what.startswith("eval:"):
        return f"eval {what.split(':')[1]}"
    return what


def describe(r: dict) -> str:
    """GFLOP, rate, GFLOP/s, roofline and share of one row."""
    achieved = r["flops"] * r["rate"] / 1e9
    return (
        f"{r['flops'] / 1e9:>8.3f}{r['rate']:>10.1f}{achieved:>9.1f}{r['roofline']:>7.0f}"
        f"{100 * achieved / r['roofline']:>6.0f}%{r['peak_mib']:>7.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (default: one core per run)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    parser.add_argument("--presets", nargs="+", default=["quick", "paper"], choices=["quick", "lite", "paper"])
    parser.add_argument("--shapes", nargs="+", default=["cheetah-run", "dog"], choices=list(SHAPES))
    parser.add_argument("--agents", nargs="+", default=["spin", "saint", "f-iql", "ar-iql", "bc"])
    parser.add_argument("--no-asm", action="store_true", help="skip the ASM step rows")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation rows")
    parser.add_argument("--compile", action="store_true", help="agents built with compile=True")
    parser.add_argument(
        "--float32",
        action="store_true",
        help="agents built with bf16=False (CUDA: no autocast; CPU runs float32 anyway)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="measurements per row (the median is shown)")
    parser.add_argument(
        "--matmul-ceiling", action="store_true", help="time each update's matmuls alone: the share they bound"
    )
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--compare", type=Path, help="a source tree of older code to time side by side")
    baseline.add_argument("--baseline-commit", help="a git revision to time side by side (temporary worktree)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")

    worktree = None
    if args.baseline_commit:
        worktree = Path(tempfile.mkdtemp(prefix="spin-bench-baseline-")) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.baseline_commit], check=True)
        args.compare = worktree
    try:
        report(args)
    finally:
        if worktree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], check=False)


def report(args) -> None:
    import torch

    common = {
        "device": args.device,
        "seconds": args.seconds,
        "compile": args.compile,
        "bf16": not args.float32,
        "threads": args.threads if args.device == "cpu" else 0,
        "matmul_ceiling": args.matmul_ceiling,
    }
    codes = {"new": HERE.parents[1]}
    if args.compare is not None:
        codes = {"old": args.compare.resolve(), **codes}
    threads = common["threads"] or torch.get_num_threads()
    where = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"threads={threads}"
    precision = "float32" if args.float32 or not args.device.startswith("cuda") else "bf16 transformer forward passes"
    print(f"device={args.device} ({where}) torch={torch.__version__} {precision} timed={args.seconds}s per row")
    if args.compare is not None:
        print(f"old: {codes['old']}  new: {HERE.parents[1]}  (interleaved, {args.rounds} round(s), median shown)")
    head = f"{'GFLOP':>8}{'rate':>10}{'GFLOP/s':>9}{'roof':>7}{'share':>7}{'MiB':>7}"
    print(
        f"{'preset':<7}{'shape':<16}{'row':<16}{head}"
        + (f"{'old rate':>10}{'share':>7}{'speed-up':>9}" if args.compare else "")
        + f"{'ops':>6}{'us/op':>7}"
        + (f"{'calls':>7}{'mm ms':>8}{'in mm':>7}{'mm ceil':>9}" if args.matmul_ceiling else "")
    )
    for preset in args.presets:
        for shape in args.shapes:
            whats = list(args.agents)
            if not args.no_asm and "spin" in args.agents:
                whats.append("asm")
            if not args.no_eval:
                whats += [f"eval:{a}" for a in args.agents]
            for what in whats:
                job = {**common, "preset": preset, "shape": shape, "what": what}
                results: dict[str, list[dict]] = {name: [] for name in codes}
                for round_ in range(args.rounds):
                    order = list(codes) if round_ % 2 == 0 else list(reversed(codes))
                    for name in order:
                        results[name].append(run(job, codes[name]))
                rows = {name: sorted(rs, key=lambda r: r["rate"])[len(rs) // 2] for name, rs in results.items()}
                new = rows["new"]
                line = f"{preset:<7}{shape:<16}{label(what, preset):<16}{describe(new)}"
                if "old" in rows:
                    old = rows["old"]
                    share = old["flops"] * old["rate"] / 1e9 / old["roofline"]
                    line += f"{old['rate']:>10.1f}{100 * share:>6.0f}%{new['rate'] / old['rate']:>8.2f}x"
                if "ops" in new:
                    line += f"{new['ops']:>6}{1e6 / (new['ops'] * new['rate']):>7.1f}"
                if "mm_seconds" in new:
                    ceiling = new["mm_flops"] / new["mm_seconds"] / 1e9 / new["roofline"]
                    line += f"{new['mm_calls']:>7}{1e3 * new['mm_seconds']:>8.1f}"
                    line += f"{100 * new['mm_seconds'] * new['rate']:>6.0f}%{100 * ceiling:>8.0f}%"
                if what.startswith("eval"):
                    line += f"   (act x{EVAL_EPISODES}: {new['act_rate']:.0f}/s; env only: {new['env_rate']:.0f}/s)"
                if what == "asm":
                    line += f"   (batch {new['batch_size']})"
                print(line, flush=True)


if __name__ == "__main__":
    main()
