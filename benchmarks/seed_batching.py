"""Whether training K seeds of one cell as one batched model pays: K agents' updates one after another against one
vmapped update of the K copies, in one process, interleaved.

Usage: python benchmarks/seed_batching.py [--device cpu] [--threads 1] [--seconds 1] [--rounds 3]
                                          [--seeds 1 3 5] [--agents spin saint f-iql]
                                          [--shapes cheetah-run quadruped-walk] [--preset lite] [--no-check]

For each agent, shape (``benchmarks/agents.py``'s: cheetah-run 17 obs dims, 6 x 3 bins; quadruped-walk 78, 12 x 3)
and K, both sides train K agents of seeds 0 .. K-1 built by ``make_agent`` at the preset, each seed with its own
``TransitionSampler`` over 20k synthetic transitions (random batches of the right shapes: the cost of an update does
not depend on the data's values):

- ``separate``: each agent's own ``update`` in turn (what K single-seed runs on one thread do);
- ``batched``: :class:`SeedBatch`, the K agents' parameters stacked on a leading seed axis, the agent's own ``losses``
  (IQL targets, critic, value and AWR losses) run through ``torch.func.functional_call`` under ``torch.func.vmap``
  (``randomness="different"``: every seed its own dropout masks), one backward of the summed losses (seeds share no
  parameter, so each seed's gradients are its own loss's), one fused Adam step over the stacked parameters (Adam is
  elementwise: each seed's slice gets the step its own optimizer would take) and one Polyak lerp.

Sampling the K batches (and stacking them) is timed on both sides. SPIN is timed in stage 2 on an untrained frozen
trunk (its cost does not depend on the trunk's values). In each of ``--rounds`` rounds the two sides take steps
alternately until each has run ``--seconds``, timed on CPU in the CPU time of the one thread (a shared machine's load
hits both sides alike, its descheduling neither), on CUDA in wall-clock time. Columns: ``separate`` and ``batched``,
updates/s per seed (how fast each seed's run advances; medians over rounds); ``speed-up``, the median over rounds of
the paired ratio batched / separate; ``batched seed-upd/s``, the thread's throughput (K x batched).

``ceiling`` bounds what any batching of seeds (vmap or hand-stacked weights) could gain: a batch-1 update takes a
share f of a full-batch update's time (measured per row, interleaved the same way), and at most that part, which does
not grow with the batch (op dispatch, Python, per-parameter work), can be shared; K seeds then take at least
K(1 - f) + f updates' time instead of K.

Before timing, a check per agent and shape: K agents and their batched copy take two updates from identical weights
on identical batches, once with dropout 0 and once with the preset's dropout where every agent and the batch draw the
same masks (torch's global RNG reset before each, vmap's ``randomness="same"``); it prints the largest absolute
difference of the metrics (losses included), the last step's gradients and the parameters after the steps (Adam
divides by sqrt(v): a gradient within rounding of zero may move its weight by up to ~lr either way).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agents import SHAPES, synthetic  # noqa: E402  (benchmarks/agents.py: the shapes and the synthetic data)

from spin_bench.agents import TransitionSampler  # noqa: E402
from spin_bench.agents.base import Batch, adam  # noqa: E402
from spin_bench.agents.iql import IQLAgent  # noqa: E402
from spin_bench.registry import make_agent  # noqa: E402
from spin_bench.runner.host import cpu_model  # noqa: E402

GROUPS = ("actor", "critic", "value")
"""The agent's optimizer groups, in its order."""
DROPOUT_FIELDS = ("dropout", "actor_dropout")
"""Config fields that set dropout (transformer actors, MLP actors)."""

# Without dropout (the check's first case) attention takes the fused SDPA call, which vmap runs through its slow
# per-seed fallback; the timed path (training with dropout) never does.
warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")


class _Losses(nn.Module):
    """An agent's networks as one module whose forward is the agent's own ``losses`` (what functional_call swaps
    parameters into)."""

    def __init__(self, agent: IQLAgent):
        super().__init__()
        self.nets = nn.ModuleDict(agent._networks())
        self._agent = (agent,)  # a tuple: not registered as a submodule

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self._agent[0].losses(batch)


class SeedBatch:
    """K IQL agents of one config and shape updated as one model (see the module docstring).

    The agents' current parameters are copied into stacked tensors (``params``); the agents themselves are not
    trained. ``randomness`` is vmap's: ``"different"`` (each seed its own dropout masks) or ``"same"`` (one mask for
    all seeds, drawn as an unbatched call would draw it: for equivalence checks).
    """

    def __init__(self, agents: list[IQLAgent], randomness: str = "different"):
        template = agents[0]
        self.config = template.config
        self.module = _Losses(template)
        per_agent = [dict(_Losses(a).named_parameters()) for a in agents]
        self.params = {
            name: torch.stack([p[name].detach() for p in per_agent]).requires_grad_(param.requires_grad)
            for name, param in self.module.named_parameters()
        }
        groups = [
            {"params": [p for n, p in self.params.items() if n.startswith(f"nets.{g}.") and p.requires_grad], "name": g}
            for g in GROUPS
        ]
        self.optimizer = adam(groups, self.config.lr, template.device)
        critic = [n for n in self.params if n.startswith("nets.critic.")]
        self.polyak_sources = [self.params[n] for n in critic]
        self.polyak_targets = [self.params[n.replace("nets.critic.", "nets.critic_target.", 1)] for n in critic]
        self._losses = vmap(self._one_seed, randomness=randomness)

    def _one_seed(self, params: dict[str, torch.Tensor], batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return functional_call(self.module, params, (batch,))

    def update(self, batches: list[Batch]) -> list[dict[str, float]]:
        """One update of every seed, seed k on ``batches[k]``; returns each seed's metrics."""
        batch = Batch(*(torch.stack(field) for field in zip(*batches, strict=True)))
        loss, metrics = self._losses(self.params, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.polyak_targets, self.polyak_sources, self.config.tau)
        return [dict(zip(IQLAgent.METRICS, row, strict=True)) for row in metrics.tolist()]


@dataclass(frozen=True)
class Cell:
    """What every measurement of one row shares."""

    agent: str
    """Registry name: spin, saint or f-iql."""
    shape: str
    """A key of ``SHAPES``."""
    preset: str
    """Config preset (sizes, batch)."""
    device: str
    """Torch device."""

    def agents(self, seeds: int, **overrides) -> list[IQLAgent]:
        """Agents of seeds 0 .. seeds-1 (SPIN in stage 2 on an untrained frozen trunk: the cost does not depend on
        its values)."""
        obs_dim, n, m = SHAPES[self.shape]
        made = [
            make_agent(self.agent, obs_dim, [m] * n, self.preset, self.device, s, **overrides) for s in range(seeds)
        ]
        if self.agent == "spin":
            for a in made:
                a.asm_key = "benchmark: untrained frozen trunk"
        return made

    def samplers(self, seeds: int) -> list[TransitionSampler]:
        """One sampler per seed, seeded as a run of that seed seeds its own."""
        data = synthetic(*SHAPES[self.shape])
        return [TransitionSampler(data, self.device, seed) for seed in range(seeds)]


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).detach().abs().max()) for x, y in zip(a, b, strict=True))


def check(cell: Cell, seeds: int, dropout: bool, steps: int = 2) -> dict[str, float]:
    """Largest absolute differences between ``seeds`` separate agents and their SeedBatch over ``steps`` updates
    from identical weights and batches: the metrics of every step, the gradients of the last step, the parameters
    after it.

    With ``dropout``, torch's global RNG is reset to one state before each agent's update and the batched one, and
    vmap runs with ``randomness="same"``: every seed and the batch draw the same masks."""
    config = cell.agents(1)[0].config
    overrides = {} if dropout else {f: 0.0 for f in DROPOUT_FIELDS if hasattr(config, f)}
    separate = cell.agents(seeds, **overrides)
    batched = SeedBatch(copy.deepcopy(separate), randomness="same")
    sampled = cell.samplers(seeds)
    diffs = {"metrics": 0.0, "grads": 0.0, "params": 0.0}
    for step in range(steps):
        batches = [s.sample(config.batch_size) for s in sampled]
        metrics = []
        for a, b in zip(separate, batches, strict=True):
            torch.manual_seed(1000 + step)
            metrics.append(list(a.update(b).values()))
        torch.manual_seed(1000 + step)
        batched_metrics = [list(row.values()) for row in batched.update(batches)]
        diffs["metrics"] = max(diffs["metrics"], max_diff([torch.tensor(metrics)], [torch.tensor(batched_metrics)]))
    for k, a in enumerate(separate):
        named = dict(_Losses(a).named_parameters())
        trained = [n for n, p in named.items() if p.grad is not None]
        grads = [named[n].grad for n in trained], [batched.params[n].grad[k] for n in trained]
        diffs["grads"] = max(diffs["grads"], max_diff(*grads))
        diffs["params"] = max(diffs["params"], max_diff(list(named.values()), [batched.params[n][k] for n in named]))
    return diffs


def paired(steps: dict[Any, Callable[[], object]], seconds: float, rounds: int, device: str) -> dict[Any, list[float]]:
    """Calls/s of each of two ``steps`` per round, the two called alternately (the first swapping each time) until
    each has run ``seconds``. On CPU timed in this thread's CPU time: a shared machine's descheduling does not count,
    and what contention remains (caches, memory bandwidth) hits both alike; on CUDA in wall-clock time (every step
    ends in a host sync: its metrics)."""
    clock = time.thread_time if torch.device(device).type == "cpu" else time.perf_counter
    rates: dict[Any, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        spent, calls = dict.fromkeys(steps, 0.0), dict.fromkeys(steps, 0)
        order = list(steps)
        while min(spent.values()) < seconds:
            for name in order:
                start = clock()
                steps[name]()
                spent[name] += clock() - start
                calls[name] += 1
            order.reverse()
        for name in steps:
            rates[name].append(calls[name] / spent[name])
    return rates


def overhead_share(cell: Cell, seconds: float, rounds: int) -> float:
    """Seconds of one agent's update at batch 1 over those at the preset's batch (median over interleaved rounds):
    an upper bound on the share of an update that does not grow with the batch (dispatch, Python, per-parameter
    work), the most that batching seeds can share."""
    agent = cell.agents(1)[0]
    sampler = cell.samplers(1)[0]
    sizes = (1, agent.config.batch_size)
    for size in sizes:  # warm-up
        for _ in range(3):
            agent.update(sampler.sample(size))
    rates = paired(
        {size: lambda size=size: agent.update(sampler.sample(size)) for size in sizes}, seconds, rounds, cell.device
    )
    return statistics.median(full / one for one, full in zip(rates[1], rates[sizes[1]], strict=True))


def ceiling(share: float, seeds: int) -> float:
    """Speed-up of batching ``seeds`` seeds if it kept one copy of the ``share`` that does not grow with the batch
    and all of the rest: K updates' time over (K x the growing part + one shared part)."""
    return seeds / (seeds * (1 - share) + share)


def compare(cell: Cell, seeds: int, seconds: float, rounds: int) -> dict[str, float]:
    """Median steps/s of each side over ``rounds`` (a step advances every seed by one update), and the median of the
    paired ratios batched / separate."""
    separate = cell.agents(seeds)
    batched = SeedBatch(cell.agents(seeds))
    batch_size = separate[0].config.batch_size
    separate_samplers, batched_samplers = cell.samplers(seeds), cell.samplers(seeds)

    def separate_step() -> None:
        for a, s in zip(separate, separate_samplers, strict=True):
            a.update(s.sample(batch_size))

    def batched_step() -> None:
        batched.update([s.sample(batch_size) for s in batched_samplers])

    sides = {"separate": separate_step, "batched": batched_step}
    for step in sides.values():  # warm-up: allocator, first-call dispatch
        for _ in range(3):
            step()
    rates = paired(sides, seconds, rounds, cell.device)
    ratios = [b / s for b, s in zip(rates["batched"], rates["separate"], strict=True)]
    return {
        "separate": statistics.median(rates["separate"]),
        "batched": statistics.median(rates["batched"]),
        "speedup": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU (default: one, as the grid runs)")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per side per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurements per row (medians shown)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3, 5], help="values of K")
    parser.add_argument("--agents", nargs="+", default=["spin", "saint", "f-iql"], choices=["spin", "saint", "f-iql"])
    parser.add_argument("--shapes", nargs="+", default=["cheetah-run", "quadruped-walk"], choices=list(SHAPES))
    parser.add_argument("--preset", default="lite", choices=["quick", "lite", "paper"])
    parser.add_argument("--no-check", action="store_true", help="skip the equivalence check")
    args = parser.parse_args()
    for name in ("threads", "rounds", "seconds"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"--{name} must be > 0, got {getattr(args, name)}")
    if min(args.seeds) < 1:
        raise SystemExit(f"--seeds must be >= 1, got {args.seeds}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    hardware = f"cpu={cpu_model()} threads={torch.get_num_threads()}"
    if device.type == "cuda":
        hardware += f" gpu={torch.cuda.get_device_name(device)}"
    print(
        f"{hardware} torch={torch.__version__} preset={args.preset} "
        f"timed={args.seconds}s of {'CPU' if device.type == 'cpu' else 'wall-clock'} time per side x {args.rounds} "
        "interleaved rounds"
    )
    cells = [Cell(agent, shape, args.preset, args.device) for agent in args.agents for shape in args.shapes]
    if not args.no_check:
        k = max(2, min(max(args.seeds), 3))
        print(f"equivalence, {k} seeds, 2 updates from identical weights and batches: max abs difference")
        print(f"{'agent':<8}{'shape':<16}{'dropout':<22}{'metrics':>10}{'grads':>10}{'params':>10}")
        for cell in cells:
            for dropout in (False, True):
                d = check(cell, k, dropout)
                print(
                    f"{cell.agent:<8}{cell.shape:<16}{'preset, same masks' if dropout else '0':<22}"
                    f"{d['metrics']:>10.1e}{d['grads']:>10.1e}{d['params']:>10.1e}",
                    flush=True,
                )
    print(
        f"{'agent':<8}{'shape':<16}{'K':>3}{'separate':>10}{'batched':>10}{'speed-up':>10}"
        f"{'batched seed-upd/s':>20}{'ceiling':>9}   (upd/s per seed; columns: see --help)"
    )
    for cell in cells:
        share = overhead_share(cell, args.seconds / 2, args.rounds)
        for seeds in args.seeds:
            r = compare(cell, seeds, args.seconds, args.rounds)
            print(
                f"{cell.agent:<8}{cell.shape:<16}{seeds:>3}{r['separate']:>10.1f}{r['batched']:>10.1f}"
                f"{r['speedup']:>9.2f}x{seeds * r['batched']:>20.1f}{ceiling(share, seeds):>8.2f}x",
                flush=True,
            )
        print(f"{'':<24}batch-1 update / batch-{cell.agents(1)[0].config.batch_size} update: {share:.0%}")


if __name__ == "__main__":
    main()
