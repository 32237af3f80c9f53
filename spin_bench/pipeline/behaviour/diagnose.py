"""Why did a behaviour run stall or diverge? Observation scale and Q-value scale, read from a run folder.

Two questions, each answered from files the trainer already writes:
- Are some observation features orders of magnitude larger than the rest (the run's replay)? Fed raw, they
  dominate the first layer (dog: foot-force, touch and accelerometer readings up to 8e4 among O(1) joint angles).
- Are the snapshots' greedy Q-values possible (``snapshots/``)? DM Control rewards lie in [0, 1], so no
  discounted return exceeds 1 / (1 - gamma). A few percent above it is the ordinary overestimation of a critic
  near the bound (walker-walk's healthy run: 105); well above it is divergence, not optimism.
- Are they plausible for the policy's return? A policy that earns R per 1000-step episode earns R / 1000 per step,
  worth (R / 1000) / (1 - gamma) discounted (the trainer bootstraps through time limits). Healthy critics sit at
  0.8-3x that value; a critic far above it learns from its own noise, bounded or not (dog-trot at 30 bins: Q mean
  82 for a policy worth 0.8).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spin_bench.envs import EPISODE_STEPS
from spin_bench.pipeline.behaviour.curve import has_snapshot, logged_value, read_curve
from spin_bench.pipeline.behaviour.policy import load_behaviour_policy

LARGE_FEATURE = 100.0
"""A feature whose absolute value passes this is reported as large (DMC features are mostly O(1))."""
MAX_REWARD = 1.0
"""DM Control's per-step rewards lie in [0, 1]."""
DIVERGED_Q_FACTOR = 1.25
"""Greedy Q above this multiple of 1 / (1 - gamma) counts as divergence: walker-walk's healthy 3-bin run (eval 930-955,
true values near 95) peaks at 105, while dog-trot's diverging run went 30 -> 417 -> 5,520 in two evaluations."""
OVERESTIMATED_FACTOR = 5.0
"""Q mean above this multiple of the value the eval return implies counts as overestimated. Healthy 3-bin runs
measure 0.8-3x once past 50k env steps (walker-walk 0.93 at eval 930, dog-trot 1.5-2.2, quadruped-walk 1.6-2.5,
fish-swim up to 2.9), though a first snapshot, a few thousand updates old, can reach 4-31x; dog-trot at 30 bins,
stalled, measures 26-96x throughout."""
IMPLIED_VALUE_FLOOR = 1.0
"""Values implied by evals below this (returns under 10 per episode at gamma 0.99) count as this much, so the
near-zero returns of a policy that has not learned yet are not judged on noise."""
SPREAD_SNAPSHOTS = 12
"""Snapshots checked when none are named: evenly spread over the run, first and last included."""


@dataclass(frozen=True)
class ObservationScale:
    """How far a run's observations stray from O(1), over a sample of its replay states."""

    states: int
    """Replay states sampled (without replacement; all of them when the replay holds fewer)."""
    share_above_100: float
    """Share of states with some |feature| above 100."""
    share_above_1000: float
    """Share of states with some |feature| above 1000."""
    largest: list[tuple[int, float, float]]
    """Up to five (feature index, 99th percentile of |x|, max |x|), largest max first."""


@dataclass(frozen=True)
class SnapshotQ:
    """Greedy Q-values of one snapshot on the sampled replay states."""

    env_steps: int
    """Env steps of the snapshot."""
    eval_return: float
    """Its evaluation return (curve.csv)."""
    loss: float | None
    """TD loss of the interval that ended with it (curve.csv), when logged."""
    q_mean: float
    """Mean over states of max_a Q(s, a)."""
    q_max: float
    """Largest max_a Q(s, a) over the states."""
    implied_q: float
    """The discounted value of the eval return's average reward per step, (R / 1000) / (1 - gamma)."""

    @property
    def overestimation(self) -> float:
        """Q mean over the value the eval return implies (see :func:`overestimation`)."""
        return overestimation(self.q_mean, self.implied_q)

    @property
    def overestimated(self) -> bool:
        return self.overestimation > OVERESTIMATED_FACTOR


def sample_replay_observations(run: Path, states: int, seed: int = 0) -> np.ndarray:
    # The newest committed replay (replay_<steps>.npz; replay.npz in older runs), never a half-written .tmp.npz.
    replays = sorted(p for p in Path(run).glob("replay*.npz") if not p.name.endswith(".tmp.npz"))
    if not replays:
        raise ValueError(f"{str(run)!r} holds no replay*.npz: diagnose needs a behaviour run folder and its replay")
    replay = replays[-1]
    with np.load(replay) as data:
        observations = data["observations"]
    if len(observations) == 0:
        raise ValueError(f"{replay} holds no transitions yet")
    if states >= len(observations):
        return observations
    return observations[np.sort(np.random.default_rng(seed).choice(len(observations), size=states, replace=False))]


def observation_scale(observations: np.ndarray) -> ObservationScale:
    magnitude = np.abs(observations)
    per_state = magnitude.max(axis=1)
    q99, largest = np.quantile(magnitude, 0.99, axis=0), magnitude.max(axis=0)
    order = np.argsort(-largest)[:5]
    return ObservationScale(
        states=len(observations),
        share_above_100=float(np.mean(per_state > LARGE_FEATURE)),
        share_above_1000=float(np.mean(per_state > 10 * LARGE_FEATURE)),
        largest=[(int(i), float(q99[i]), float(largest[i])) for i in order],
    )


def q_bound(gamma: float, action_repeat: int = 1) -> float:
    """The largest discounted return possible with rewards in [0, 1] per env step, summed over the
    ``action_repeat`` env steps of each decision."""
    return action_repeat * MAX_REWARD / (1.0 - gamma)


def diverged_q(gamma: float, action_repeat: int = 1) -> float:
    """The greedy Q-value above which a critic is diverging (:data:`DIVERGED_Q_FACTOR` times the bound)."""
    return DIVERGED_Q_FACTOR * q_bound(gamma, action_repeat)


def implied_q(eval_return: float, gamma: float, action_repeat: int = 1) -> float:
    """The discounted value of earning ``eval_return`` per :data:`EPISODE_STEPS`-step episode at a steady rate,
    counted in decisions of ``action_repeat`` env steps."""
    return action_repeat * eval_return / EPISODE_STEPS / (1.0 - gamma)


def overestimation(q_mean: float, implied: float) -> float:
    """Mean greedy Q over the value the eval return implies (floored at :data:`IMPLIED_VALUE_FLOOR`)."""
    return q_mean / max(implied, IMPLIED_VALUE_FLOOR)


def greedy_q(network: torch.nn.Module, observations: np.ndarray) -> np.ndarray:
    """max_a Q(s, a) per state: the mean over dimensions of each dimension's best utility."""
    device = next(network.parameters()).device
    with torch.no_grad():
        x = torch.as_tensor(np.asarray(observations, dtype=np.float32), device=device)
        return network(x).max(dim=-1).values.mean(dim=-1).cpu().numpy()


def snapshot_q_values(run: Path, observations: np.ndarray, steps: list[int] | None = None) -> list[SnapshotQ]:
    """Greedy Q statistics of the run's snapshots: those at ``steps`` env steps, or up to 12 spread over the run."""
    rows = [row for row in read_curve(Path(run) / "curve.csv") if has_snapshot(row)]
    if not rows:
        raise ValueError(f"{str(run)!r} has no evaluations in curve.csv yet")
    by_step = {int(row["env_steps"]): row for row in rows}
    if steps is None:
        available = sorted(by_step)
        picks = np.linspace(0, len(available) - 1, num=min(SPREAD_SNAPSHOTS, len(available))).round().astype(int)
        steps = [available[i] for i in np.unique(picks)]
    missing = [s for s in steps if s not in by_step]
    if missing:
        raise ValueError(f"no snapshot at {missing[0]:,} env steps; the run has {min(by_step):,} to {max(by_step):,}")
    gamma, repeat = run_discounting(run)
    results = []
    for step in steps:
        row = by_step[step]
        q = greedy_q(load_behaviour_policy(Path(run) / row["snapshot"]).network, observations)
        results.append(
            SnapshotQ(
                env_steps=step,
                eval_return=float(row["eval_return_mean"]),
                loss=logged_value(row, "loss"),
                q_mean=float(q.mean()),
                q_max=float(q.max()),
                implied_q=implied_q(float(row["eval_return_mean"]), gamma, repeat),
            )
        )
    return results


def run_discounting(run: Path) -> tuple[float, int]:
    """The run's gamma and action repeat (env steps per decision), which scale every Q-value it learns."""
    decqn = json.loads((Path(run) / "config.json").read_text())["decqn"]
    return float(decqn["gamma"]), int(decqn.get("action_repeat", 1))
