"""Held-out masked-token accuracy of SPIN's Action Structure Model against pre-training steps.

Usage: python benchmarks/asm_accuracy.py --dataset spin/cheetah-run/random-medium-expert-v0 --steps 6000
           [--every 250] [--preset quick] [--set d_model=64 ...] [--held-out 0.05] [--seed 0] [--threads 1]
           [--out asm_accuracy.csv]

The dataset's episodes are split (by episode, with ``--seed``) into a training part and a held-out part of
``--held-out`` of the episodes. The ASM is pre-trained on the training part exactly as ``SPINAgent.pretrain``
does (``spin_bench.agents.spin.pretrain_asm``, the preset's ASM fields plus ``--set`` overrides), and every
``--every`` steps its accuracy is measured on 8192 held-out transitions with a fixed 15% of their tokens
replaced by [MASK] (``masked_accuracy``: argmax prediction of each selected sub-action from the state and the
unmasked others). Two references are printed beside it, computed on the same tokens: predicting each
dimension's most frequent training bin (what the data's marginals alone give) and, for scale, chance.

Prints one line per measurement and writes a CSV of (step, seconds, accuracy) when ``--out`` is given; the
lite preset's ASM budget in ``results/`` is chosen from these curves.

Plotting the CSVs (one line per file, its majority-bin reference dashed):
    python benchmarks/asm_accuracy.py --plot A.csv B.csv --labels "cheetah-run rme" "quadruped-walk me" --out X.png
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np
import torch

PROBE_ROWS = 8192
PROBE_MASK_PROB = 0.15


def episode_split(episode_ends: np.ndarray, held_out: float, seed: int) -> np.ndarray:
    """Boolean (rows,) mask of the held-out transitions: whole episodes, ``held_out`` of them."""
    starts = np.concatenate([[0], episode_ends[:-1] + 1])
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(starts))[: max(1, round(held_out * len(starts)))]
    mask = np.zeros(episode_ends[-1] + 1, dtype=bool)
    for e in chosen:
        mask[starts[e] : episode_ends[e] + 1] = True
    return mask


def plot(csv_paths: list[str], labels: list[str], out: str, budget: int | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for path, label in zip(csv_paths, labels, strict=True):
        with open(path) as f:
            rows = list(csv.DictReader(f))
        steps = [int(r["step"]) for r in rows]
        line = ax.plot(steps, [float(r["heldout_masked_accuracy"]) for r in rows], marker="o", ms=3, label=label)[0]
        ax.axhline(float(rows[0]["majority_bin_accuracy"]), color=line.get_color(), ls="--", lw=1)
    if budget:
        ax.axvline(budget, color="grey", ls=":", lw=1, label=f"lite budget ({budget:,} steps)")
    ax.set_xlabel("ASM gradient steps (batch 1024)")
    ax.set_ylabel("held-out masked-token accuracy")
    ax.set_title("ASM pre-training, d=64, 2 blocks (dashed: majority bin per dimension)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120, metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", nargs="+", help="plot these CSVs (written by --out) instead of training")
    parser.add_argument("--labels", nargs="+")
    parser.add_argument("--budget", type=int, help="mark this step count on the plot")
    parser.add_argument("--dataset")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", nargs="*", default=[], dest="overrides")
    parser.add_argument("--held-out", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.plot:
        plot(args.plot, args.labels or args.plot, args.out or "asm_accuracy.png", args.budget)
        return
    if not args.dataset:
        parser.error("--dataset is required (or --plot CSV...)")
    torch.set_num_threads(args.threads)

    import spin_bench
    from spin_bench.agents.spin import masked_accuracy, pretrain_asm
    from spin_bench.overrides import apply_settings
    from spin_bench.registry import make_config

    cfg = apply_settings(make_config("spin", args.preset, asm_steps=args.steps), args.overrides)
    data = spin_bench.load_dataset(args.dataset).transitions
    ends = np.flatnonzero(data.terminals | data.timeouts)
    held = episode_split(ends, args.held_out, args.seed)
    obs = torch.as_tensor(data.observations, dtype=torch.float32)
    actions = torch.as_tensor(data.actions).long()
    train_obs, train_actions = obs[~torch.as_tensor(held)], actions[~torch.as_tensor(held)]
    probe_rows = np.flatnonzero(held)
    probe_rows = np.random.default_rng(args.seed + 1).choice(probe_rows, min(PROBE_ROWS, probe_rows.size), False)
    probe_obs, probe_actions = obs[probe_rows], actions[probe_rows]
    selected = torch.rand(probe_actions.shape, generator=torch.Generator().manual_seed(args.seed + 2)) < PROBE_MASK_PROB

    nvec = [int(m) for m in data.nvec]
    majority = torch.tensor(
        [int(np.bincount(train_actions[:, i].numpy(), minlength=m).argmax()) for i, m in enumerate(nvec)]
    )
    marginal = float((probe_actions == majority)[selected].float().mean())
    chance = float(np.mean([1 / nvec[i] for i in np.nonzero(selected.numpy())[1]]))
    print(
        f"{args.dataset}: {train_obs.shape[0]:,} training / {int(held.sum()):,} held-out transitions; "
        f"{int(selected.sum())} probe tokens; majority-bin accuracy {marginal:.4f}, chance {chance:.4f}"
    )
    print(f"ASM: d_model={cfg.d_model} num_blocks={cfg.num_blocks} head_hidden={cfg.head_hidden} "
          f"batch={cfg.asm_batch_size} lr={cfg.asm_lr} threads={args.threads}")  # fmt: skip

    rows: list[tuple[int, float, float]] = []
    start = time.perf_counter()
    probe_seconds = 0.0

    def measure(done: int, model) -> None:
        nonlocal probe_seconds
        if done % args.every and done != args.steps:
            return
        t = time.perf_counter()
        rng_state = torch.get_rng_state()
        accuracy = masked_accuracy(model, probe_obs, probe_actions, selected)
        torch.set_rng_state(rng_state)
        probe_seconds += time.perf_counter() - t
        seconds = time.perf_counter() - start - probe_seconds
        rows.append((done, seconds, accuracy))
        print(f"step {done:>7,}  {seconds:8.1f} s  held-out masked accuracy {accuracy:.4f}", flush=True)

    pretrain_asm(train_obs, train_actions, nvec, cfg, args.seed, after_step=measure)
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", "train_seconds", "heldout_masked_accuracy", "majority_bin_accuracy", "chance"])
            for step, seconds, accuracy in rows:
                writer.writerow([step, f"{seconds:.2f}", f"{accuracy:.5f}", f"{marginal:.5f}", f"{chance:.5f}"])


if __name__ == "__main__":
    main()
