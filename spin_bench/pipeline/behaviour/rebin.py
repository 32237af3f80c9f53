"""Carry a behaviour export to another bin count, as the starting point of a warm-started run there.

A DecQN head with m free utilities per dimension is exactly a polynomial of degree m - 1 in the bin's action value
(m points fix it). Written as Legendre coefficients (``utility_basis=m``), the same function can be evaluated at any
other bins of [-1, 1]: the m-bin policy becomes a policy over finer bins, whose greedy bin is where the interpolated
utility peaks (often between two of the m source bins). The rebinned export holds the medium and expert snapshots so
carried, folded into ordinary heads, and re-evaluated at the new bins with the trainer's own evaluation episodes, so
``behaviour train --init-from`` continues from it at those bins with ``--set utility_basis=m``.

Dog-trot's 3-bin expert (618.46 over 100 episodes) evaluated 609.4 at 10 bins and 645.7 at 30 bins (the trainer's 10
evaluation episodes) before any training there, where runs trained from scratch had reached 105.6 and 110.4; trained
on at those bins, the experts measure 663.07 and 680.75 over 100 episodes.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np

from spin_bench._io import atomic_write_json
from spin_bench.pipeline.behaviour.curve import write_curve
from spin_bench.pipeline.behaviour.network import DecoupledQNetwork, legendre_basis, utility_coefficients
from spin_bench.pipeline.behaviour.policy import load_behaviour_policy, save_snapshot
from spin_bench.pipeline.behaviour.warm_start import load_warm_start


def rebin_network(network: DecoupledQNetwork, bins: int, utility_basis: int | None = None) -> DecoupledQNetwork:
    """``network``'s utilities, as polynomials of ``utility_basis`` coefficients (default: its bins), at ``bins``
    bins per dimension: a plain network (folded head) with ``nvec = [bins] * N``.

    The source's utilities must be of degree ``utility_basis - 1`` over its bins (always true at the default); the
    polynomial then agrees with the source on the source's bins wherever those are among the new ones.
    """
    if len(set(network.nvec)) != 1:
        raise ValueError(f"rebinning needs the same bins in every dimension, not {sorted(set(network.nvec))}")
    source_bins = network.max_bins
    degree_count = source_bins if utility_basis is None else int(utility_basis)
    if not 2 <= degree_count <= source_bins:
        raise ValueError(f"utility_basis={degree_count} must be in [2, {source_bins}] for a {source_bins}-bin source")
    if bins <= degree_count:
        raise ValueError(f"--bins {bins} must be more than utility_basis={degree_count}")
    source = network.folded()
    coefficients, coefficient_bias = utility_coefficients(
        source.head.weight, source.head.bias, source.num_dims, legendre_basis(source_bins, degree_count)
    )
    target = DecoupledQNetwork(
        source.obs_dim,
        [bins] * source.num_dims,
        source.hidden,
        source.observation_transform,
        source.layer_norm,
        utility_basis=degree_count,
    )
    target.torso.load_state_dict(source.torso.state_dict())
    target.head.weight.data.copy_(coefficients.reshape(-1, coefficients.shape[-1]))
    target.head.bias.data.copy_(coefficient_bias.reshape(-1))
    return target.folded().eval()


def evaluate_snapshot(path: Path, task: str, bins: int, episodes: int, epsilon: float, workers: int) -> np.ndarray:
    """Returns of the trainer's evaluation episodes (reset seeds ``EVAL_SEED_BASE + k``) for a snapshot file."""
    from spin_bench.datasets.catalog import Segment
    from spin_bench.datasets.rollout import RolloutConfig, run_episodes, segment_jobs
    from spin_bench.envs import EPISODE_STEPS, env_id
    from spin_bench.pipeline.behaviour.trainer import EVAL_SEED_BASE

    config = RolloutConfig(env_id(task), {"bins": bins}, {"snapshot": str(path)}, max_episode_steps=EPISODE_STEPS)
    jobs = segment_jobs([Segment("snapshot", episodes, EVAL_SEED_BASE, epsilon)])
    return np.array([e.episode_return for e in run_episodes(config, jobs, workers=workers)])


def rebin_export(
    source: str | Path,
    bins: int,
    dest: str | Path,
    *,
    utility_basis: int | None = None,
    episodes: int | None = None,
    workers: int | None = None,
) -> dict:
    """Write ``dest`` (``behaviour.json``, ``expert.pt``, ``medium.pt``, ``curve.csv``): the export at ``source``
    carried to ``bins`` bins by :func:`rebin_network`. Returns the record.

    The curve holds the source's medium and expert rows (env steps, updates and wall time of the training behind
    them) with their evaluation columns measured at the new bins (``episodes``: default the source's evaluation
    count); the source's other rows stay in the source's curve.
    """
    source, dest = Path(source), Path(dest)
    if not (source / "behaviour.json").is_file():
        raise ValueError(f"{str(source)!r} is not a behaviour export (no behaviour.json)")
    header = json.loads((source / "behaviour.json").read_text())
    if int(header["bins"]) == bins:
        raise ValueError(f"--bins {bins}: {str(source)!r} is already at {bins} bins")
    warm = load_warm_start(source, header["task"], int(header["bins"]))  # checks the files' sha256 and the curve
    record = warm.record
    decqn = dict(record["decqn"])
    degree_count = int(record["bins"]) if utility_basis is None else int(utility_basis)
    decqn["utility_basis"] = degree_count
    rows = {int(row["env_steps"]): row for row in warm.curve}
    networks = {  # both carried before anything is written: a refusal leaves no half-made export
        quality: rebin_network(load_behaviour_policy(source / snap["file"]).network, bins, degree_count)
        for quality, snap in record["snapshots"].items()
    }
    dest.mkdir(parents=True, exist_ok=True)
    snapshots, curve = {}, []
    for quality in ("medium", "expert"):
        snap, network = record["snapshots"][quality], networks[quality]
        target = dest / f"{quality}.pt"
        sha256 = save_snapshot(
            target, network, task=record["task"], bins=bins, env_steps=int(snap["env_steps"]),
            rebinned_from={"path": source.as_posix(), "sha256": snap["sha256"]},
        )  # fmt: skip
        n = int(snap["eval_episodes"]) if episodes is None else int(episodes)
        returns = evaluate_snapshot(target, record["task"], bins, n, float(decqn.get("eval_epsilon", 0.0)), workers)
        snapshots[quality] = {
            "file": target.name,
            "sha256": sha256,
            "env_steps": int(snap["env_steps"]),
            "eval_return_mean": round(float(returns.mean()), 2),
            "eval_return_std": round(float(returns.std()), 2),
            "eval_episodes": int(returns.size),
        }
        trained = rows[int(snap["env_steps"])]  # the training behind the snapshot, as the source logged it
        curve.append(
            {
                **{
                    k: trained.get(k, "")
                    for k in ("env_steps", "updates", "wall_seconds", "epsilon", "loss", "train_return")
                },
                "eval_return_mean": snapshots[quality]["eval_return_mean"],
                "eval_return_std": snapshots[quality]["eval_return_std"],
                "eval_episodes": int(returns.size),
                "snapshot": target.name,
            }
        )
    curve.sort(key=lambda row: int(row["env_steps"]))
    write_curve(dest / "curve.csv", curve)
    command = [
        "spin-bench-maintain",
        "behaviour",
        "rebin",
        source.as_posix(),
        "--bins",
        str(bins),
        "--dest",
        dest.as_posix(),
    ]
    if utility_basis is not None:
        command += ["--utility-basis", str(degree_count)]
    new_record = {
        "task": record["task"],
        "bins": bins,
        "seed": record["seed"],
        "command": shlex.join(command),
        "decqn": decqn,
        "init_from": warm.provenance(),
        "expert_return_over_2": round(snapshots["expert"]["eval_return_mean"] / 2.0, 2),
        "snapshots": snapshots,
    }
    atomic_write_json(dest / "behaviour.json", new_record)
    return new_record
