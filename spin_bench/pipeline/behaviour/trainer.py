"""Online DecQN training: env workers collect, the learner updates, evaluations make snapshots.

Run folder layout (``runs/behaviour/<task>-bins<M>-seed<S>/`` by default):
    config.json           task, bins, seed, DecQN hyperparameters, versions
    curve.csv             one row per evaluation (env steps, updates, wall seconds, returns)
    snapshots/step_*.pt   weights-only policy snapshots, one per evaluation
    checkpoint.pt         resume state: networks, optimizer, counters, RNG states (weights-only safe)
    replay_<steps>.npz    the replay buffer at the checkpoint's env steps, named by the checkpoint

A checkpoint is committed in an order that survives a kill at any point (sessions end abruptly): the curve and
the replay are written first, under names a resume can tell apart, then ``checkpoint.pt`` (atomic) names its
replay, and only then is the previous replay deleted. A resume therefore always finds the replay that matches its
checkpoint, and drops curve rows written after it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spin_bench._device import resolve_device
from spin_bench._io import atomic_torch_save, atomic_write_text
from spin_bench.pipeline.behaviour.config import DecQNConfig
from spin_bench.pipeline.behaviour.curve import logged_value, read_curve, write_curve
from spin_bench.pipeline.behaviour.diagnose import DIVERGED_Q_FACTOR, diverged_q, greedy_q, implied_q, q_bound
from spin_bench.pipeline.behaviour.network import DecoupledQNetwork, check_utility_basis
from spin_bench.pipeline.behaviour.policy import save_snapshot
from spin_bench.pipeline.behaviour.replay import NStepReplay, PrioritizedReplay
from spin_bench.pipeline.behaviour.warm_start import WarmStart, load_warm_start, snapshot_name
from spin_bench.pipeline.behaviour.workers import WorkerPool, WorkerSpec

EVAL_SEED_BASE = 1_000_000
Q_PROBE_STATES = 4096
"""Replay states on which each evaluation measures the greedy Q-values (curve.csv's q_mean and q_max)."""
LEGACY_REPLAY_FILE = "replay.npz"
"""The replay of runs checkpointed before checkpoints named their replay file (still resumable)."""


@dataclass
class TrainState:
    """Counters that survive a resume."""

    env_steps: int = 0
    updates: int = 0
    wall_seconds: float = 0.0
    next_eval: int = 0
    start_env_steps: int = 0
    """Env steps before this run's replay began: a warm start's (0 for a run trained from scratch)."""
    start_updates: int = 0
    """Updates before this run's replay began: a warm start's."""
    curve: list[dict] = field(default_factory=list)

    def learning_starts(self, config: DecQNConfig) -> int:
        """Transitions this run's replay must hold before the learner updates: a warm start refills more."""
        return config.warm_start_refill if self.start_env_steps else config.learning_starts

    def owed_updates(self, config: DecQNConfig) -> int:
        """Updates the replay ratio asks for by now, counted from where this run's replay began."""
        fresh_steps = self.env_steps - self.start_env_steps - self.learning_starts(config)
        return self.start_updates + int(fresh_steps * config.updates_per_step)

    def learning_rate(self, config: DecQNConfig) -> float:
        """The step size of the next update: after a warm start it ramps up while Adam's fresh moments settle."""
        if not self.start_env_steps or config.warm_start_lr_warmup <= 0:
            return config.learning_rate
        ramp = (self.updates - self.start_updates + 1) / config.warm_start_lr_warmup
        return config.learning_rate * min(1.0, ramp)


class DecQNLearner:
    """Networks, optimizer and the double-Q n-step update."""

    def __init__(self, obs_dim: int, nvec: list[int], config: DecQNConfig, device: torch.device):
        self.config, self.device = config, device
        self.online = self._network(obs_dim, nvec).to(device)
        self.target = self._network(obs_dim, nvec).to(device)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate)
        # With a utility basis, workers and snapshots get this plain network, refreshed from the online one.
        self._policy = self.online.folded() if config.utility_basis else None

    def _network(self, obs_dim: int, nvec: list[int]) -> DecoupledQNetwork:
        c = self.config
        return DecoupledQNetwork(obs_dim, nvec, c.hidden, c.observation_transform, c.layer_norm, c.utility_basis)

    def update(self, batch: dict[str, np.ndarray], learning_rate: float | None = None) -> float:
        """One double-Q n-step update on ``batch``; ``learning_rate``: this step's size (default: the config's).

        A ``weights`` entry in ``batch`` (prioritized replay's importance weights) weights each transition's loss.
        """
        return self._update(batch, learning_rate)[0].item()

    def update_with_td_errors(
        self, batch: dict[str, np.ndarray], learning_rate: float | None = None
    ) -> tuple[float, np.ndarray]:
        """:meth:`update`, also returning each transition's |TD error| (new priorities for a prioritized replay)."""
        loss, td_errors = self._update(batch, learning_rate)
        return loss.item(), td_errors.abs().cpu().numpy()

    def _update(self, batch: dict[str, np.ndarray], learning_rate: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.learning_rate if learning_rate is None else learning_rate
        b = {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in batch.items()}
        actions = b["actions"].long()
        q = self.online(b["observations"]).gather(2, actions[..., None]).squeeze(-1).mean(dim=1)
        with torch.no_grad():
            # Double Q: the online net picks each sub-action, the target net values it.
            next_actions = self.online(b["next_observations"]).argmax(dim=-1, keepdim=True)
            next_q = self.target(b["next_observations"]).gather(2, next_actions).squeeze(-1).mean(dim=1)
            target = b["returns"] + b["discounts"] * next_q
            if self.config.target_clip == "bound":
                # A decision's reward sums action_repeat env rewards in [0, 1].
                target = target.clamp(0.0, q_bound(self.config.gamma, self.config.action_repeat))
        if "weights" in b:
            loss = (F.huber_loss(q, target, reduction="none", delta=self.config.huber_delta) * b["weights"]).mean()
        else:
            loss = F.huber_loss(q, target, delta=self.config.huber_delta)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.online.parameters(), self.config.grad_clip)
        self.optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.target.parameters()), list(self.online.parameters()), self.config.tau)
        return loss.detach(), (target - q).detach()

    def policy_network(self) -> DecoupledQNetwork:
        """The online network as workers and snapshots get it: an ordinary head (a utility basis folded in)."""
        return self.online if self._policy is None else self.online.fold_into(self._policy)

    def cpu_weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.policy_network().state_dict().items()}


def make_replay(config: DecQNConfig, obs_dim: int, num_dims: int) -> NStepReplay:
    """The replay ``config`` asks for: prioritized when ``priority_exponent`` > 0, else uniform."""
    if config.priority_exponent > 0:
        return PrioritizedReplay(
            config.replay_size, obs_dim, num_dims, config.priority_exponent, config.importance_exponent
        )
    return NStepReplay(config.replay_size, obs_dim, num_dims)


def learn_step(learner: DecQNLearner, replay: NStepReplay, rng: np.random.Generator, learning_rate: float) -> float:
    """One update on a batch drawn from ``replay``; a prioritized replay gets the batch's TD errors back."""
    if isinstance(replay, PrioritizedReplay):
        idx, batch = replay.sample_prioritized(learner.config.batch_size, rng)
        loss, td_errors = learner.update_with_td_errors(batch, learning_rate)
        replay.update_priorities(idx, td_errors)
        return loss
    return learner.update(replay.sample(learner.config.batch_size, rng), learning_rate)


def _numpy_rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def run_training(
    task: str,
    env_steps: int,
    bins: int = 3,
    seed: int = 0,
    out: Path | None = None,
    workers: int = 0,
    device: str = "auto",
    config: DecQNConfig | None = None,
    log=print,
    learner_threads: int = 0,
    init_from: str | Path | None = None,
) -> Path:
    """Train or resume a DecQN agent until ``env_steps``; returns the run folder.

    ``learner_threads``: torch threads of a CPU learner; 0 gives it the cores the workers leave (at least 1).
    ``init_from``: an export folder (``datasets/checkpoints/<task>/bins<M>``) to warm-start a new run from (see
    :mod:`spin_bench.pipeline.behaviour.warm_start`); a run folder that already has a checkpoint resumes from it
    instead.
    """
    import gymnasium as gym

    import spin_bench
    from spin_bench.envs import split_task

    split_task(task)  # unknown task -> ValueError with the closest names, before any work
    if env_steps <= 0:
        raise ValueError(f"env_steps={env_steps} must be positive")
    if learner_threads < 0:
        raise ValueError(f"learner_threads={learner_threads} must be >= 0 (0: the cores the workers leave)")
    config = config or DecQNConfig()
    torch_device = torch.device(resolve_device(device))
    out = Path(out or Path("runs") / "behaviour" / f"{task}-bins{bins}-seed{seed}")
    num_workers = workers or os.cpu_count() or 1
    # Oversubscribed OpenMP threads spin-wait and crawl: by default the learner gets the cores the workers leave.
    # (On 2 cores with one dog worker, a second learner thread lost 17%: the worker's core is not free enough.)
    torch.set_num_threads(learner_threads or max(1, (os.cpu_count() or 1) - num_workers))

    probe = gym.make(spin_bench.env_id(task), bins=bins)
    obs_dim = int(probe.observation_space.shape[0])
    nvec = [int(m) for m in probe.action_space.nvec]
    probe.close()
    check_utility_basis(config.utility_basis, nvec)  # before the run folder is made
    warm = None
    if init_from is not None:
        warm = load_warm_start(init_from, task, bins)
        _check_warm_start(warm, config, env_steps)
    checkpoint_path = out / "checkpoint.pt"
    out.mkdir(parents=True, exist_ok=True)
    (out / "snapshots").mkdir(exist_ok=True)

    run_config = {
        "task": task,
        "bins": bins,
        "seed": seed,
        "env_id": spin_bench.env_id(task),
        "decqn": config.to_dict(),
        "spin_bench_version": spin_bench.__version__,
    }
    config_path = out / "config.json"
    previous = json.loads(config_path.read_text()) if config_path.exists() else None
    if previous is not None:
        # Hyperparameters added since the run started take their defaults, which are the values it ran with.
        previous["decqn"] = DecQNConfig.from_dict(previous.get("decqn", {})).to_dict()
        for key in ("task", "bins", "seed", "decqn"):
            if previous.get(key) != run_config[key]:
                raise ValueError(
                    f"{out} holds a run with {key}={previous.get(key)!r}, not {run_config[key]!r}; "
                    "use another --out or the same settings to resume"
                )
    started_from = (previous or {}).get("init_from") if checkpoint_path.exists() else warm and warm.provenance()
    if checkpoint_path.exists() and warm is not None and (started_from or {}).get("path") != warm.source.as_posix():
        where = f"from {started_from['path']}" if started_from else "from scratch"
        raise ValueError(f"{out} holds a run that started {where}, not from --init-from {warm.source.as_posix()}; "
                         "use another --out")  # fmt: skip
    if started_from:
        run_config["init_from"] = started_from
    atomic_write_text(config_path, json.dumps(run_config, indent=2) + "\n")

    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 0])
    learner = DecQNLearner(obs_dim, nvec, config, torch_device)
    replay = make_replay(config, obs_dim, len(nvec))
    state = TrainState(next_eval=config.eval_interval)

    if checkpoint_path.exists():
        ckpt = torch.load(checkpoint_path, map_location=torch_device, weights_only=True)
        _restore_learner(learner, ckpt)
        rng.bit_generator.state = ckpt["numpy_rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        state = TrainState(**ckpt["state"])  # start_* are missing from runs before warm starts: 0, as they were
        state.curve = read_curve(out / "curve.csv")
        ahead = [row for row in state.curve if int(row["env_steps"]) > state.env_steps]
        if ahead:
            # Written by a save that was killed before its checkpoint: those steps are trained again.
            state.curve = state.curve[: len(state.curve) - len(ahead)]
            log(f"dropped {len(ahead)} curve row(s) past the checkpoint (a save was cut off before it committed)")
        replay_path = out / ckpt.get("replay_file", LEGACY_REPLAY_FILE)
        if replay_path.exists():
            replay.load(replay_path)
        elif "replay_file" in ckpt:
            raise ValueError(f"{out} is missing {replay_path.name}, the replay its checkpoint.pt was saved with")
        _remove_stale_replays(out, keep=replay_path.name)
        log(f"resumed {out} at {state.env_steps:,} env steps, {state.updates:,} updates, replay {replay.size:,}")
        if state.env_steps >= env_steps:
            log(f"already trained for {state.env_steps:,} >= {env_steps:,} env steps")
            return out
    elif warm is not None:
        state = _warm_start(warm, learner, out, config)
        log(
            f"warm start from {warm.source}: the expert at {state.env_steps:,} env steps (eval "
            f"{float(warm.expert['eval_return_mean']):.1f}), fresh optimizer (step size ramped over "
            f"{config.warm_start_lr_warmup:,} updates), replay refilled by it at epsilon "
            f"{config.epsilon(state.env_steps):.3g} with {config.warm_start_refill:,} transitions before learning"
        )

    specs = [
        WorkerSpec(
            task,
            bins,
            learner.policy_network().architecture(),
            config.gamma,
            config.n_step,
            seed * 1000 + i + 1,
            config.action_repeat,
        )
        for i in range(num_workers)
    ]
    # Resumed runs give workers fresh seeds so they do not replay the episodes they already played.
    if state.env_steps:
        specs = [WorkerSpec(**{**s.__dict__, "seed": s.seed + 1_000_003 * state.env_steps}) for s in specs]
    pool = WorkerPool(specs)
    threads = f", {torch.get_num_threads()} torch threads" if torch_device.type == "cpu" else ""
    log(f"{task}: {len(specs)} env worker(s), learner on {torch_device}{threads}")
    losses: list[float] = []
    recent_returns: list[float] = []
    started = time.perf_counter() - state.wall_seconds
    stop = _StopRequest()
    with learner_matmul_precision(config):  # the learner's only: spawned workers keep float32
        try:
            stop.install()
            pool.set_weights(learner.cpu_weights())
            while state.env_steps < env_steps:
                if stop.signal_name is not None:
                    # Between chunks the replay, learner and counters agree: checkpoint exactly here.
                    _commit_checkpoint(out, learner, rng, state, replay)
                    log(
                        f"{stop.signal_name}: checkpointed {out} at {state.env_steps:,} env steps; "
                        "run the same command again to resume"
                    )
                    raise TrainingInterrupted(out, state.env_steps)
                epsilon = config.epsilon(state.env_steps)
                steps = min(config.chunk_steps, -(-(env_steps - state.env_steps) // len(pool)))
                pool.start_collect(steps, epsilon)
                # Learn while the workers collect: the replay ratio is kept per chunk.
                # The replay holds decisions, one per action_repeat env steps; learning_starts counts env steps.
                if replay.size >= -(-state.learning_starts(config) // config.action_repeat):
                    for _ in range(max(0, state.owed_updates(config) - state.updates)):
                        losses.append(learn_step(learner, replay, rng, state.learning_rate(config)))
                        state.updates += 1
                chunks, collected, finished = pool.finish_collect()
                for chunk in chunks:
                    replay.add(chunk)
                state.env_steps += collected
                recent_returns = (recent_returns + finished)[-20:]
                pool.set_weights(learner.cpu_weights())
                state.wall_seconds = time.perf_counter() - started

                if state.env_steps >= state.next_eval or state.env_steps >= env_steps:
                    seeds = [EVAL_SEED_BASE + k for k in range(config.eval_episodes)]
                    returns = np.asarray(pool.evaluate(seeds, config.eval_epsilon))
                    snapshot = out / snapshot_name(state.env_steps)
                    save_snapshot(
                        snapshot,
                        learner.policy_network().cpu(),
                        task=task,
                        bins=bins,
                        seed=seed,
                        env_steps=state.env_steps,
                        eval_return_mean=float(returns.mean()),
                        eval_return_std=float(returns.std()),
                        eval_episodes=len(returns),
                        eval_epsilon=config.eval_epsilon,
                        # The eval return above held each action this long; without the key a snapshot means 1.
                        **({"action_repeat": config.action_repeat} if config.action_repeat > 1 else {}),
                    )
                    learner.online.to(torch_device)
                    # Its own random stream: probing must not change the training's replay samples.
                    probe = replay.sample(Q_PROBE_STATES, np.random.default_rng([seed, 3, state.env_steps]))
                    greedy = greedy_q(learner.online, probe["observations"])
                    q_mean, q_max = float(greedy.mean()), float(greedy.max())
                    state.wall_seconds = time.perf_counter() - started
                    row = {
                        "env_steps": state.env_steps,
                        "updates": state.updates,
                        "wall_seconds": round(state.wall_seconds, 1),
                        "epsilon": round(epsilon, 4),
                        "loss": round(float(np.mean(losses)), 6) if losses else "",
                        "q_mean": float(f"{q_mean:.4g}"),
                        "q_max": float(f"{q_max:.4g}"),
                        "train_return": round(float(np.mean(recent_returns)), 2) if recent_returns else "",
                        "eval_return_mean": round(float(returns.mean()), 2),
                        "eval_return_std": round(float(returns.std()), 2),
                        "eval_episodes": len(returns),
                        "snapshot": snapshot.relative_to(out).as_posix(),
                    }
                    state.curve.append(row)
                    losses = []
                    while state.next_eval <= state.env_steps:
                        state.next_eval += config.eval_interval
                    write_curve(out / "curve.csv", state.curve)
                    _commit_checkpoint(out, learner, rng, state, replay)
                    sps = state.env_steps / max(state.wall_seconds, 1e-9)
                    loss_text = f"{row['loss']:.3g}" if row["loss"] != "" else "-"
                    # Q values a decision, whose reward sums action_repeat env steps' rewards.
                    implied = implied_q(returns.mean(), config.gamma, config.action_repeat)
                    log(
                        f"{task} step {state.env_steps:>9,}  updates {state.updates:>8,}  "
                        f"eval {returns.mean():7.1f} +- {returns.std():5.1f}  loss {loss_text}  "
                        f"Q mean {q_mean:.3g} (eval implies {implied:.3g}) "
                        f"max {q_max:.3g}  "
                        f"eps {epsilon:.3f}  "
                        f"{sps:,.0f} env steps/s  {state.wall_seconds / 60:.1f} min"
                    )
                    warning = divergence_warning(state.curve, config.gamma, config.action_repeat)
                    if warning:
                        log(f"warning: {task}: {warning}")
        finally:
            stop.restore()
            pool.close()
    return out


DIVERGENCE_MIN_LOSS = 1.0
"""TD losses below this are never flagged: DM Control rewards lie in [0, 1], and healthy runs stayed under 1.3."""
DIVERGENCE_JUMP = 10.0
"""A loss this many times the lowest of the previous three evaluation intervals is flagged."""
DIVERGENCE_GROWTH = 1.5
"""So is a loss that grew by this factor or more in each of the last three intervals."""


@contextmanager
def learner_matmul_precision(config: DecQNConfig) -> Iterator[None]:
    """The config's float32 matmul precision for this process while the block runs, then the previous one."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(config.matmul_precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def divergence_warning(curve: list[dict], gamma: float = 0.99, action_repeat: int = 1) -> str | None:
    """A warning when the last evaluation looks like a diverging Q-function, else None.

    First, the greedy Q-values on replay states (``q_max``): rewards in [0, 1] per env step, summed over
    ``action_repeat`` env steps per decision, cannot give more than action_repeat / (1 - gamma), so a value well
    above it (``DIVERGED_Q_FACTOR`` times) is divergence, not optimism; it shows
    first (dog-trot: Q max 30 at 975k env steps, 417 at 1M, while the loss only reached 0.23). Then the TD loss: a
    healthy one grows with the Q-values as the agent improves; a diverging one jumps by an order of magnitude and
    then grows exponentially (dog-trot: 0.16 -> 3.3 -> 8.5 -> 21 after 1M, later doubling every interval), while the
    greedy return may still look fine.
    """
    q_max = logged_value(curve[-1], "q_max") if curve else None
    if q_max is not None and q_max > diverged_q(gamma, action_repeat):
        return (
            f"greedy Q reaches {q_max:.3g} on replay states, over {DIVERGED_Q_FACTOR:g}x the "
            f"{q_bound(gamma, action_repeat):g} that rewards in [0, 1] allow: the Q-function is diverging; "
            "export a snapshot from before it "
            "(behaviour export --expert-step)"
        )
    losses = [loss for loss in (logged_value(row, "loss") for row in curve) if loss is not None]
    if len(losses) < 2 or losses[-1] < DIVERGENCE_MIN_LOSS:
        return None
    last, previous = losses[-1], losses[-4:-1]
    lowest = min(previous)
    steps = list(zip(losses[-4:-1], losses[-3:], strict=True))
    if lowest > 0 and last >= DIVERGENCE_JUMP * lowest:
        why = f"{last / lowest:.0f}x the lowest of the previous {len(previous)} evaluations ({lowest:.3g})"
    elif len(steps) == 3 and all(a > 0 and b >= DIVERGENCE_GROWTH * a for a, b in steps):
        why = "at least 1.5x the one before, three evaluations in a row"
    else:
        return None
    return (
        f"TD loss {last:.3g} is {why}: the Q-function may be diverging; export a snapshot from before it "
        "(behaviour export --expert-step)"
    )


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped training after checkpointing (nothing since the last chunk is lost)."""

    def __init__(self, out: Path, env_steps: int):
        super().__init__(f"training stopped at {env_steps:,} env steps; checkpoint in {out}")
        self.out, self.env_steps = out, env_steps


class _StopRequest:
    """Turns SIGINT and SIGTERM into a flag that the training loop checks between chunks.

    A chunk takes seconds, so a stop costs at most one chunk of work instead of a whole evaluation interval.
    A signal the process inherited as ignored stays ignored. Only the main thread can install signal handlers;
    elsewhere this does nothing.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # e.g. SIGINT in a job started with `&` by a script: the shell asked for it to be ignored
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None:  # a second signal: stop now, without a checkpoint
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _check_warm_start(warm: WarmStart, config: DecQNConfig, env_steps: int) -> None:
    """A ValueError unless the export's expert has the network ``config`` trains, and ``env_steps`` goes past it."""
    expert = warm.expert_network
    wanted = {"hidden": list(config.hidden), "observation_transform": config.observation_transform,
              "layer_norm": config.layer_norm}  # fmt: skip
    differ = [key for key, value in wanted.items() if getattr(expert, key) != value]
    if differ:
        raise ValueError(
            f"--init-from {warm.source.as_posix()}: its expert is a network with "
            + ", ".join(f"{k}={getattr(expert, k)!r}" for k in differ)
            + ", these settings train one with "
            + ", ".join(f"{k}={wanted[k]!r}" for k in differ)
            + f"; pass the --set options of its command ({warm.record['command']})"
        )
    if env_steps <= warm.env_steps:
        raise ValueError(
            f"--env-steps {env_steps:,} must be more than the {warm.env_steps:,} its expert was trained for"
        )


def _warm_start(warm: WarmStart, learner: DecQNLearner, out: Path, config: DecQNConfig) -> TrainState:
    """Load the expert into the learner, seed the run folder with the export's snapshots and curve; the new state."""
    learner.online.load_plain_state_dict(warm.expert_network.state_dict())
    learner.target.load_state_dict(learner.online.state_dict())
    row = warm.expert
    state = TrainState(
        env_steps=warm.env_steps,
        updates=int(row["updates"]),
        wall_seconds=float(row["wall_seconds"]),
        next_eval=(warm.env_steps // config.eval_interval + 1) * config.eval_interval,
        start_env_steps=warm.env_steps,
        start_updates=int(row["updates"]),
    )
    state.curve = warm.seed_run_folder(out)
    write_curve(out / "curve.csv", state.curve)
    return state


def _restore_learner(learner: DecQNLearner, ckpt: dict) -> None:
    """The networks and optimizer state of a checkpoint written by :func:`_save_checkpoint`."""
    learner.online.load_state_dict(ckpt["online"])
    learner.target.load_state_dict(ckpt["target"])
    learner.optimizer.load_state_dict(ckpt["optimizer"])


def _commit_checkpoint(
    out: Path, learner: DecQNLearner, rng: np.random.Generator, state: TrainState, replay: NStepReplay
) -> None:
    """Replay first, then the checkpoint that names it, then the old replay: a kill anywhere leaves a matching pair."""
    replay_file = f"replay_{state.env_steps:09d}.npz"
    replay.save(out / replay_file)
    _save_checkpoint(out / "checkpoint.pt", learner, rng, state, replay_file)
    _remove_stale_replays(out, keep=replay_file)


def _remove_stale_replays(out: Path, keep: str) -> None:
    """Replays other than the checkpoint's, and the temporary files of saves that were killed (each up to ~2 GB)."""
    for path in [*out.glob("replay_*.npz"), *out.glob("replay*.tmp.npz"), out / LEGACY_REPLAY_FILE]:
        if path.name != keep:
            path.unlink(missing_ok=True)


def _save_checkpoint(
    path: Path, learner: DecQNLearner, rng: np.random.Generator, state: TrainState, replay_file: str
) -> None:
    payload = {
        "replay_file": replay_file,
        "online": learner.online.state_dict(),
        "target": learner.target.state_dict(),
        "optimizer": learner.optimizer.state_dict(),
        "numpy_rng": _numpy_rng_state(rng),
        "torch_rng": torch.get_rng_state(),
        "state": {
            "env_steps": state.env_steps,
            "updates": state.updates,
            "wall_seconds": state.wall_seconds,
            "next_eval": state.next_eval,
            "start_env_steps": state.start_env_steps,
            "start_updates": state.start_updates,
        },
    }
    atomic_torch_save(path, payload)
