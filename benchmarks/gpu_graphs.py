"""Every agent's gradient step captured in one CUDA graph: does a replay compute what an eager step computes, and
how much faster is it?

Usage: python benchmarks/gpu_graphs.py [--preset paper] [--shapes dog] [--agents spin saint f-iql ar-iql bc]
                                       [--seconds 2] [--updates 3] [--device cuda]

A paper-size update dispatches hundreds of ATen calls, and on a GPU each costs the host some microseconds whatever
its arithmetic (``benchmarks/agents.py``'s ``us/op``; docs/performance.md, "On a GPU"). A CUDA graph of
``agent.gradient_step`` (forward, backward, the fused Adam step, the target critics' lerp) replays all of them as
one launch. Per agent and shape:

- ``parity``: an eager agent and a twin with a copy of its state (float32, every dropout rate 0, so no random draw
  enters a step) take the same warm-up steps; then the eager one takes ``--updates`` eager steps and the twin
  replays its graph on the same batches. Printed: the largest relative difference of the metrics and
  ||p_graph - p_eager|| / ||p_eager - p_0|| over what those steps changed. Both are float32 rounding (below 1e-3)
  when the capture is right;
- ``eager`` and ``graph``: steps per second of the agent's own configuration (bf16 transformer forward passes,
  dropout on), batches sampled on the GPU and copied into the graph's static batch, metrics read every step as
  ``update`` does; and ``graph, no read``: metrics left on the device.

What capture needs, done here and not in the agents: Adam's parameter groups switched to ``capturable`` (the fused
Adam already keeps its step counts on the device), autocast's cast cache off (a cached cast would be captured as
a stale tensor), and warm-up steps on a side stream before the capture. Dropout draws inside a graph come from
the CUDA generator's Philox offsets that replays advance, so a graphed run draws other masks than an eager one;
that is why ``parity`` runs without dropout.

``--device cpu`` checks this script's own plumbing where there is no GPU: the same code with eager steps in place
of the capture and replay (parity 0, speed-up about 1).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agents import SHAPES, rate, synthetic  # noqa: E402
from gpu_parity import flat_parameters, relative, without_dropout  # noqa: E402

from spin_bench.agents import TransitionSampler, precision  # noqa: E402
from spin_bench.agents.base import Batch  # noqa: E402
from spin_bench.registry import AGENT_NAMES, make_agent  # noqa: E402

WARMUP = 3


def autocast_without_cache(device_type: str, dtype):
    """``precision.autocast_forward`` with the cast cache off, as graph capture requires."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype, cache_enabled=False)


class GraphedStep:
    """``agent.gradient_step`` captured once; calling it copies a batch into the static one and replays (on a CPU
    agent: runs the step eagerly on the static batch, to check the plumbing). Returns the metrics tensor; counting
    the step is the caller's (``agent.finish_update``)."""

    def __init__(self, agent, batches):
        self.agent = agent
        self.static = Batch(*(t.clone() for t in batches[0]))
        self.graph = None
        if agent.device.type != "cuda":
            for batch in batches:
                agent.update(batch)
            return
        for optimizer in agent._optimizers().values():
            for group in optimizer.param_groups:
                group["capturable"] = True
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for batch in batches:  # real steps: the agent trains on them
                agent.finish_update(agent.gradient_step(batch))
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        eager_autocast, precision.autocast_forward = precision.autocast_forward, autocast_without_cache
        try:
            with torch.cuda.graph(self.graph):
                self.metrics = agent.gradient_step(self.static)
        finally:
            precision.autocast_forward = eager_autocast

    def __call__(self, batch: Batch) -> torch.Tensor:
        for static, fresh in zip(self.static, batch, strict=True):
            static.copy_(fresh)
        if self.graph is None:
            return self.agent.gradient_step(self.static)
        self.graph.replay()
        return self.metrics


def build(name: str, shape: str, preset: str, device: str, **overrides):
    obs_dim, n, m = SHAPES[shape]
    data = synthetic(obs_dim, n, m)
    agent = make_agent(name, obs_dim, data.nvec, preset, device, 0, **overrides)
    if name == "spin":  # stage 2 on an untrained frozen trunk: the cost does not depend on its values
        agent.asm_key = "benchmark: untrained frozen trunk"
    return agent, TransitionSampler(data, device, 0)


def parity(name: str, shape: str, preset: str, updates: int, device: str) -> tuple[float, float]:
    eager, sampler = build(name, shape, preset, device, bf16=False, **without_dropout(name))
    twin, _ = build(name, shape, preset, device, bf16=False, **without_dropout(name))
    for key, net in eager._networks().items():
        twin._networks()[key].load_state_dict(net.state_dict())
    for key, opt in eager._optimizers().items():
        twin._optimizers()[key].load_state_dict(opt.state_dict())
    batches = [sampler.sample(eager.config.batch_size) for _ in range(WARMUP + updates)]
    for batch in batches[:WARMUP]:
        eager.update(batch)
    graphed = GraphedStep(twin, batches[:WARMUP])
    start = flat_parameters(eager)
    worst = 0.0
    for batch in batches[WARMUP:]:
        on_eager = eager.gradient_step(batch).double().cpu()
        on_graph = graphed(batch).double().cpu()
        worst = max(worst, float(((on_graph - on_eager).abs() / on_eager.abs().clamp_min(1e-8)).max()))
    return worst, relative(flat_parameters(twin) - start, flat_parameters(eager) - start)


def speed(name: str, shape: str, preset: str, seconds: float, device: str) -> tuple[float, float, float]:
    agent, sampler = build(name, shape, preset, device)
    size = agent.config.batch_size
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    eager = rate(lambda: agent.update(sampler.sample(size)), seconds, sync)
    graphed = GraphedStep(agent, [sampler.sample(size) for _ in range(WARMUP)])
    read = rate(lambda: agent.finish_update(graphed(sampler.sample(size))), seconds, sync)
    unread = rate(lambda: graphed(sampler.sample(size)), seconds, sync)
    return eager, read, unread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=["quick", "lite", "paper"])
    parser.add_argument("--shapes", nargs="+", default=["dog"], choices=list(SHAPES))
    parser.add_argument("--agents", nargs="+", default=list(AGENT_NAMES))
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    args = parser.parse_args()
    where = f"cuda ({torch.cuda.get_device_name()})" if args.device == "cuda" else "cpu (plumbing check: no graphs)"
    print(f"{where}, torch {torch.__version__}, {args.preset}, {args.seconds}s per rate")
    columns = ("metrics", "steps", "eager/s", "graph/s", "no read", "speed-up")
    print(f"{'shape':<16}{'agent':<8}" + "".join(f"{c:>9}" for c in columns))
    for shape in args.shapes:
        for name in args.agents:
            try:
                metrics, steps = parity(name, shape, args.preset, args.updates, args.device)
                eager, read, unread = speed(name, shape, args.preset, args.seconds, args.device)
            except Exception as error:  # one agent's failed capture must not hide the others' figures
                print(f"{shape:<16}{name:<8} failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
                continue
            print(
                f"{shape:<16}{name:<8}{metrics:>9.1e}{steps:>9.1e}{eager:>9.1f}{read:>9.1f}{unread:>9.1f}"
                f"{read / eager:>8.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
