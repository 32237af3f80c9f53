"""Environment processes for online training: one per core, each stepping its own env.

The learner sends each worker the latest weights and asks for a chunk of env steps; the worker acts
epsilon-greedily, holding each action for ``action_repeat`` env steps, turns its decisions into n-step
transitions and sends them back. Episodes, and a decision whose repeats a chunk cut short, run on across
chunks. Evaluation episodes are split across the same workers.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections import deque
from dataclasses import dataclass

import numpy as np

from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
from spin_bench.pipeline.behaviour.policy import BehaviourPolicy


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to build its env and network."""

    task: str
    """Task name, e.g. ``cheetah-run``."""
    bins: int
    """Bins per action dimension."""
    architecture: dict
    """``DecoupledQNetwork`` constructor arguments."""
    gamma: float
    """Discount for n-step returns."""
    n_step: int
    """n of the n-step returns."""
    seed: int
    """Seed of this worker's episodes and exploration (any non-negative int)."""
    action_repeat: int = 1
    """Env steps each chosen action is held for; one transition is one decision."""


class _NStepAccumulator:
    """Turns a stream of (s, a, r, s') steps into n-step transitions, flushing at episode ends."""

    def __init__(self, gamma: float, n_step: int):
        self.gamma, self.n_step = gamma, n_step
        self.window: deque = deque()
        self.rows: list[tuple] = []

    def push(self, obs, action, reward, next_obs, terminated: bool, done: bool) -> None:
        self.window.append((obs, action, reward))
        if len(self.window) == self.n_step:
            self._emit(next_obs, terminated)
        if done:
            while self.window:
                self._emit(next_obs, terminated)

    def _emit(self, bootstrap_obs, terminated: bool) -> None:
        ret = 0.0
        for k, (_, _, r) in enumerate(self.window):
            ret += (self.gamma**k) * r
        discount = 0.0 if terminated else self.gamma ** len(self.window)
        obs, action, _ = self.window.popleft()
        self.rows.append((obs, action, ret, bootstrap_obs, discount))

    def drain(self) -> dict[str, np.ndarray]:
        rows, self.rows = self.rows, []
        obs, actions, returns, next_obs, discounts = zip(*rows, strict=True) if rows else ([],) * 5
        return {
            "observations": np.asarray(obs, dtype=np.float32),
            "actions": np.asarray(actions, dtype=np.int8),
            "returns": np.asarray(returns, dtype=np.float32),
            "next_observations": np.asarray(next_obs, dtype=np.float32),
            "discounts": np.asarray(discounts, dtype=np.float32),
        }


def _episode_seed(worker_seed: int, episode: int) -> int:
    return int(np.random.SeedSequence([worker_seed, episode]).generate_state(1)[0])


def _worker_main(spec: WorkerSpec, conn) -> None:
    import gymnasium as gym
    import torch

    import spin_bench

    # Ctrl-C and job schedulers signal the whole process group: the trainer decides when to stop, and closes
    # the workers (a worker whose trainer died gets EOF on its pipe and exits).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)
    env = gym.make(spin_bench.env_id(spec.task), bins=spec.bins)
    policy = BehaviourPolicy(DecoupledQNetwork(**spec.architecture).eval(), metadata={})
    rng = np.random.default_rng([spec.seed, 1])
    accumulator = _NStepAccumulator(spec.gamma, spec.n_step)
    episode = 0
    obs, _ = env.reset(seed=_episode_seed(spec.seed, episode))
    episode_return, finished_returns = 0.0, []
    # The decision being held: its action, first observation, summed reward and the env steps it has left.
    action, decision_obs, decision_reward, repeats_left = None, obs, 0.0, 0
    eval_env = None

    while True:
        command, payload = conn.recv()
        if command == "close":
            conn.close()
            return
        if command == "weights":
            policy.network.load_state_dict(payload)
            conn.send(None)
        elif command == "collect":
            steps, epsilon = payload
            for _ in range(steps):
                if repeats_left == 0:
                    action = policy.act(obs[None], epsilon, rng)[0]
                    decision_obs, decision_reward, repeats_left = obs, 0.0, spec.action_repeat
                next_obs, reward, terminated, truncated, _ = env.step(action)
                decision_reward += reward
                repeats_left -= 1
                if repeats_left == 0 or terminated or truncated:
                    accumulator.push(
                        decision_obs, action, decision_reward, next_obs, terminated, terminated or truncated
                    )
                    repeats_left = 0
                episode_return += reward
                obs = next_obs
                if terminated or truncated:
                    finished_returns.append(episode_return)
                    episode += 1
                    obs, _ = env.reset(seed=_episode_seed(spec.seed, episode))
                    episode_return = 0.0
            conn.send((accumulator.drain(), steps, finished_returns))
            finished_returns = []
        elif command == "evaluate":
            seeds, epsilon = payload
            eval_env = eval_env or gym.make(spin_bench.env_id(spec.task), bins=spec.bins)
            eval_rng = np.random.default_rng([spec.seed, 2])
            returns = []
            for s in seeds:
                o, _ = eval_env.reset(seed=int(s))
                total, done = 0.0, False
                while not done:
                    eval_action = policy.act(o[None], epsilon, eval_rng)[0]
                    for _ in range(spec.action_repeat):
                        o, r, terminated, truncated, _ = eval_env.step(eval_action)
                        total += r
                        done = terminated or truncated
                        if done:
                            break
                returns.append(total)
            conn.send(returns)
        else:
            raise ValueError(f"unknown worker command {command!r}")


class WorkerPool:
    """A fixed set of environment processes driven in lock-step by the learner."""

    def __init__(self, specs: list[WorkerSpec]):
        ctx = mp.get_context("spawn")
        self.connections, self.processes = [], []
        for spec in specs:
            parent, child = ctx.Pipe()
            process = ctx.Process(target=_worker_main, args=(spec, child), daemon=True)
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)

    def __len__(self) -> int:
        return len(self.connections)

    def set_weights(self, state_dict: dict) -> None:
        for conn in self.connections:
            conn.send(("weights", state_dict))
        for conn in self.connections:
            conn.recv()

    def start_collect(self, steps: int, epsilon: float) -> None:
        for conn in self.connections:
            conn.send(("collect", (steps, epsilon)))

    def finish_collect(self) -> tuple[list[dict[str, np.ndarray]], int, list[float]]:
        """The n-step transitions, the env steps taken, and the returns of episodes that ended."""
        chunks, total_steps, returns = [], 0, []
        for conn in self.connections:
            chunk, steps, finished = conn.recv()
            chunks.append(chunk)
            total_steps += steps
            returns.extend(finished)
        return chunks, total_steps, returns

    def evaluate(self, seeds: list[int], epsilon: float) -> list[float]:
        shares = [seeds[i :: len(self)] for i in range(len(self))]
        for conn, share in zip(self.connections, shares, strict=True):
            conn.send(("evaluate", (share, epsilon)))
        by_worker = [conn.recv() for conn in self.connections]
        # Reassemble in seed order so the list lines up with ``seeds``.
        returns = [0.0] * len(seeds)
        for i, worker_returns in enumerate(by_worker):
            for j, value in enumerate(worker_returns):
                returns[i + j * len(self)] = value
        return returns

    def close(self) -> None:
        for conn in self.connections:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
