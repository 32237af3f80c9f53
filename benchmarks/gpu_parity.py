"""Every agent's update on a GPU against the same updates on the CPU: does the CUDA path compute the same maths?

Usage: python benchmarks/gpu_parity.py [--device cuda] [--preset quick] [--shape cheetah-run] [--updates 3]

For each agent an agent is built on the CPU (seed 0, ``bf16=False``, every dropout rate 0 so that no random draw enters
an update) and a twin on ``--device`` gets a copy of its networks and optimizer states. Both run ``--updates``
updates on the same batches (drawn on the CPU from synthetic transitions, then copied). Printed per agent:

- ``metrics``: the largest relative difference of the metrics ``update`` returns (losses, values), over updates;
- ``params``: ||p_device - p_cpu|| / ||p_cpu|| over all trained parameters after the last update;
- ``steps``: ||(p_device - p_0) - (p_cpu - p_0)|| / ||p_cpu - p_0||, the same for what the updates changed.

The GPU runs float32 with TF32 off (PyTorch's default), so every figure should sit at float32 rounding (1e-6 to
1e-4: Adam's first steps divide by sqrt(v), which magnifies rounding in the smallest gradients). A figure of 1e-2
or more means the two devices compute different maths.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agents import SHAPES, synthetic  # noqa: E402

from spin_bench.agents import TransitionSampler  # noqa: E402
from spin_bench.registry import AGENT_NAMES, agent_class, make_agent  # noqa: E402


def flat_parameters(agent) -> torch.Tensor:
    return torch.cat(
        [p.detach().double().cpu().reshape(-1) for net in agent._networks().values() for p in net.parameters()]
    )


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def without_dropout(name: str) -> dict[str, float]:
    """Config overrides setting every dropout rate of agent ``name`` to 0: no random draw enters its update."""
    return {f.name: 0.0 for f in dataclasses.fields(agent_class(name).config_class) if "dropout" in f.name}


def compare(name: str, device: str, preset: str, shape: str, updates: int) -> dict[str, float]:
    obs_dim, n, m = SHAPES[shape]
    data = synthetic(obs_dim, n, m)
    overrides = without_dropout(name)
    agents = [
        make_agent(name, obs_dim, data.nvec, preset, where, 0, bf16=False, **overrides) for where in ("cpu", device)
    ]
    cpu, twin = agents
    for key, net in cpu._networks().items():
        twin._networks()[key].load_state_dict(net.state_dict())
    for key, opt in cpu._optimizers().items():
        twin._optimizers()[key].load_state_dict(opt.state_dict())
    if name == "spin":
        for agent in agents:  # stage 2 on the (shared, untrained) frozen trunk
            agent.asm_key = "benchmark: untrained frozen trunk"
    start = flat_parameters(cpu)
    sampler = TransitionSampler(data, "cpu", 0)
    worst = 0.0
    for _ in range(updates):
        batch = sampler.sample(cpu.config.batch_size)
        on_cpu = cpu.update(batch)
        on_device = twin.update(type(batch)(*(t.to(device) for t in batch)))
        for key, value in on_cpu.items():
            worst = max(worst, abs(on_device[key] - value) / max(abs(value), 1e-8))
    after_cpu, after_device = flat_parameters(cpu), flat_parameters(twin)
    return {
        "metrics": worst,
        "params": relative(after_device, after_cpu),
        "steps": relative(after_device - start, after_cpu - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--preset", default="quick", choices=["quick", "lite", "paper"])
    parser.add_argument("--shape", default="cheetah-run", choices=list(SHAPES))
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--agents", nargs="+", default=list(AGENT_NAMES))
    args = parser.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    where = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else args.device
    what = f"{args.preset} {args.shape}, {args.updates} updates"
    print(f"{args.device} ({where}) vs cpu, torch {torch.__version__}, {what}")
    print(f"{'agent':<8}{'metrics':>10}{'params':>10}{'steps':>10}")
    for name in args.agents:
        r = compare(name, args.device, args.preset, args.shape, args.updates)
        print(f"{name:<8}{r['metrics']:>10.1e}{r['params']:>10.1e}{r['steps']:>10.1e}", flush=True)


if __name__ == "__main__":
    main()
