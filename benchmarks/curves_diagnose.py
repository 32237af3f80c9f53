"""Learning-curve diagnostics for IQL agents on a mixed dataset (docs/learning-curves.md).

Usage (``--dataset ID`` goes before the command; default spin/cheetah-run/random-medium-expert-v0):
    python benchmarks/curves_diagnose.py [--dataset ID] train --out DIR [--agent f-iql] [--seed 0]
        [--steps 100000] [--eval-every 10000] [--eval-episodes 10] [--diag-every 1000] [--set beta=1.0 ...]
    python benchmarks/curves_diagnose.py evaluate --run DIR [--episodes 50]
    python benchmarks/curves_diagnose.py official --ckpts DIR --out DIR [--seed 0] [--episodes 50]
    python benchmarks/curves_diagnose.py betas --run DIR
    python benchmarks/curves_diagnose.py visits --run DIR [--episodes 10] [--greedy]
    python benchmarks/curves_diagnose.py composition --out DIR
    python benchmarks/curves_diagnose.py [--dataset ID] final-states --runs DIR [--episodes 10] [--out CSV]

``train`` is the loop of ``spin-bench run`` (same agent construction, seeds, sampler, evaluation and
evaluation steps), plus, every ``--diag-every`` updates, statistics on a fixed probe set of transitions (up to
2048 per behaviour source of the dataset: random / medium / expert episodes), taken with every network in eval
mode and a private generator so that training is not disturbed:

- ``q_data``: min over target critics of Q(s, a) on the dataset's action (what AWR weighs), ``v``: V(s),
  ``adv`` = q_data - v, per source;
- AWR weights w = min(exp(beta * adv), clip): share at the clip, and the effective sample size
  ESS = (sum w)^2 / (B * sum w^2) of 64 random training-size batches from the whole dataset (mean);
  ``wshare_<src>``: the share of the total weight that each source's transitions carry;
- ``q_pi``: Q(s, a ~ pi) (sampled joint action), ``q_greedy``: Q(s, argmax pi), ``q_max``: Q(s, argmax_a Q)
  (per-dimension argmax of the summed utilities), all with the same min-of-targets critic;
- ``logp_<src>``: mean log pi(a_data | s) per source; ``match_<src>``: the share of dimensions where the
  greedy action equals the dataset's; ``entropy``: the policy's summed per-dimension entropy.

Every ``--eval-every`` updates it evaluates (sampled actions, episode k reset with seed + 100 + k) and saves
the agent state. ``evaluate`` re-evaluates those states with ``--episodes`` sampled and greedy episodes.
``official`` loads the checkpoints of the official IQL.py (benchmarks/curves_official.py) into a spin-bench
F-IQL agent (the networks have the same layout) and gives them the same probe statistics and evaluations.
``betas``: for each saved state, the ESS and clipped share that its advantages would give at beta 0.5, 1, 3
and 10 (beta 0.5 = 3 / N for cheetah's N = 6: the sharpness of beta 3 with a mean over dimensions).
``visits``: rolls out each saved state (sampled actions, or greedy with ``--greedy``; the evaluation's reset
seeds) and records, per episode, the share of visited states whose nearest dataset state (standardized
observations) comes from each source, the share farther from the data than 99% of dataset states are from
their nearest neighbour, and (cheetah) the share of steps spent upside down.
``composition``: the per-episode returns of the dataset with their source, and (cheetah) the steps spent upside
down and the reward earned there.
``final-states``: for every finished run of ``spin-bench run --out DIR`` on the dataset (any agent, config and
seed, its checkpoint still in its folder), rolls out the final state as ``visits`` does and prints the mean return
and the share of steps spent upside down (cheetah), with their correlation over the episodes.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

PROBE_PER_SOURCE = 2048
ESS_BATCHES = 64


def episode_sources(data) -> np.ndarray:
    """(T,) source name per transition, from the catalog recipe's segments and the episode ends."""
    t = data.transitions
    ends = np.logical_or(t.timeouts, t.terminals)
    episode = np.concatenate([[0], np.cumsum(ends)[:-1]])
    names = []
    for seg in data.dataset_entry.segments:
        names += [seg.policy] * seg.episodes
    names = np.array(names)
    if len(names) != episode.max() + 1:
        raise ValueError(f"recipe lists {len(names)} episodes, the data has {episode.max() + 1}")
    return names[episode]


class CSVLog:
    """Rows appended and flushed one at a time, so a killed run keeps what it logged."""

    def __init__(self, path: Path):
        self.path, self.fields = path, None

    def write(self, row: dict) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a" if not new else "w", newline="") as f:
            w = csv.DictWriter(f, self.fields)
            if new:
                w.writeheader()
            w.writerow(row)


def make_probe(data, sources: np.ndarray, seed: int = 1234):
    rng = np.random.default_rng(seed)
    t = data.transitions
    index, labels = [], []
    for src in dict.fromkeys(sources):
        rows = np.flatnonzero(sources == src)
        pick = rng.choice(rows, size=min(PROBE_PER_SOURCE, len(rows)), replace=False)
        index.append(pick)
        labels += [src] * len(pick)
    index = np.concatenate(index)
    obs = torch.as_tensor(t.observations[index])
    acts = torch.as_tensor(t.actions[index].astype(np.int64))
    return obs, acts, np.array(labels)


@torch.no_grad()
def probe_stats(agent, probe, sampler, rng: np.random.Generator) -> dict[str, float]:
    """The statistics listed in the module docstring, for an IQL agent (networks put in eval mode)."""
    cfg = agent.config
    nets = agent._networks()
    modes = {k: n.training for k, n in nets.items()}
    for n in nets.values():
        n.eval()
    try:
        obs, acts, labels = probe
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        q_data = agent.critic_target(obs, acts).min(0).values
        v = agent.value(obs)
        adv = q_data - v
        w = torch.exp(cfg.beta * adv).clamp(max=cfg.weight_clip)
        a_pi = agent.actor.sample(obs, False, gen)
        a_greedy = agent.actor.sample(obs, True, gen)
        u = agent.critic_target.utilities(obs).mean(0)  # (B, N, m)
        a_qmax = u.argmax(-1)
        q_pi = agent.critic_target(obs, a_pi).min(0).values
        q_greedy = agent.critic_target(obs, a_greedy).min(0).values
        q_max = agent.critic_target(obs, a_qmax).min(0).values
        logp = agent.actor.log_prob(obs, acts)
        logits = agent.actor.masked_logits(obs)
        p = torch.softmax(logits, -1)
        entropy = -(p * torch.log_softmax(logits, -1)).nan_to_num().sum((-1, -2))
        match = (a_greedy == acts).float().mean(-1)
        out: dict[str, float] = {
            "q_data": q_data.mean().item(),
            "v": v.mean().item(),
            "q_pi": q_pi.mean().item(),
            "q_greedy": q_greedy.mean().item(),
            "q_max": q_max.mean().item(),
            "entropy": entropy.mean().item(),
        }
        for src in dict.fromkeys(labels):
            m = torch.as_tensor(labels == src)
            out[f"q_data_{src}"] = q_data[m].mean().item()
            out[f"v_{src}"] = v[m].mean().item()
            out[f"adv_{src}"] = adv[m].mean().item()
            out[f"adv_sd_{src}"] = adv[m].std().item()
            out[f"clip_{src}"] = (w[m] >= cfg.weight_clip).float().mean().item()
            out[f"wshare_{src}"] = (w[m].sum() / w.sum()).item()
            out[f"logp_{src}"] = logp[m].mean().item()
            out[f"match_{src}"] = match[m].mean().item()
            out[f"q_pi_{src}"] = q_pi[m].mean().item()
            out[f"q_greedy_{src}"] = q_greedy[m].mean().item()
        # ESS and clipping on training-size batches from the whole dataset (sources as they are mixed).
        ess, clipped = [], []
        for _ in range(ESS_BATCHES):
            i = torch.as_tensor(rng.integers(sampler.size, size=cfg.batch_size))
            a = sampler.actions[i].long()
            wb = torch.exp(
                cfg.beta
                * (agent.critic_target(sampler.observations[i], a).min(0).values - agent.value(sampler.observations[i]))
            ).clamp(max=cfg.weight_clip)
            ess.append((wb.sum() ** 2 / (len(wb) * wb.square().sum())).item())
            clipped.append((wb >= cfg.weight_clip).float().mean().item())
        out["ess"] = float(np.mean(ess))
        out["clip"] = float(np.mean(clipped))
        return out
    finally:
        for k, n in nets.items():
            n.train(modes[k])


def parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        k, v = p.split("=", 1)
        out[k] = json.loads(v)
    return out


def cmd_train(args) -> None:
    import spin_bench
    from spin_bench.agents.evaluation import evaluate
    from spin_bench.agents.sampler import TransitionSampler
    from spin_bench.registry import make_agent

    torch.set_num_threads(1)
    out = Path(args.out)
    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    data = spin_bench.load_dataset(args.dataset)
    t = data.transitions
    overrides = {"num_steps": args.steps, "eval_every": args.eval_every, "eval_episodes": args.eval_episodes}
    overrides.update(parse_overrides(args.set))
    agent = make_agent(args.agent, t.obs_dim, t.nvec, "paper", "cpu", args.seed, **overrides)
    (out / "config.json").write_text(
        json.dumps(
            {
                **vars(args),
                "resolved": {k: (list(v) if isinstance(v, tuple) else v) for k, v in agent.config.__dict__.items()},
            },
            indent=1,
        )
    )
    sources = episode_sources(data)
    probe = make_probe(data, sources)
    sampler = TransitionSampler(t, agent.device, args.seed)
    torch.manual_seed(args.seed)  # as spin-bench run: dropout draws from the global RNG
    rng = np.random.default_rng(args.seed + 999)
    diag, evals = CSVLog(out / "diag.csv"), CSVLog(out / "evals.csv")
    acc: dict[str, list[float]] = {}
    start, train_s = time.perf_counter(), 0.0
    cfg = agent.config
    while agent.step < cfg.num_steps:
        t0 = time.perf_counter()
        m = agent.update(sampler.sample(cfg.batch_size))
        train_s += time.perf_counter() - t0
        for k, v in m.items():
            acc.setdefault(k, []).append(v)
        if agent.step % args.diag_every == 0:
            row = {"step": agent.step, "train_s": round(train_s, 1), "wall_s": round(time.perf_counter() - start, 1)}
            row.update({f"train_{k}": float(np.mean(v)) for k, v in acc.items()})
            row.update(probe_stats(agent, probe, sampler, rng))
            diag.write(row)
            acc = {}
        if agent.step % cfg.eval_every == 0 or agent.step == cfg.num_steps:
            returns = evaluate(
                agent, data.entry.env_id, episodes=cfg.eval_episodes, seed=args.seed, env_kwargs=data.entry.env_kwargs
            )
            evals.write(
                {
                    "step": agent.step,
                    "return_mean": float(returns.mean()),
                    "return_std": float(returns.std()),
                    "normalized": data.normalized_score(float(returns.mean())),
                    "returns": " ".join(f"{r:.2f}" for r in returns),
                }
            )
            torch.save(agent.state_dict(), out / "ckpt" / f"step_{agent.step:07d}.pt")
            print(f"step {agent.step}: return {returns.mean():.1f} ({time.perf_counter() - start:.0f} s)", flush=True)


def read_steps(path: Path) -> set[int]:
    """Steps already in a CSV log (reruns only add what is missing)."""
    if not path.exists():
        return set()
    with open(path) as f:
        return {int(r["step"]) for r in csv.DictReader(f)}


def evaluate_states(agents_by_step, data, out: Path, episodes: int, seed: int, modes=("sampled", "greedy")):
    """Per-episode returns of each (step, agent) in each mode, appended to out/posthoc.csv."""
    from spin_bench.agents.evaluation import evaluate

    log = CSVLog(out / "posthoc.csv")
    done = read_steps(out / "posthoc.csv")
    if done:
        log.fields = ["step", "mode", "episode", "return"]
    for step, agent in agents_by_step:
        if step in done:
            continue
        for mode in modes:
            r = evaluate(
                agent,
                data.entry.env_id,
                episodes=episodes,
                seed=seed,
                deterministic=mode == "greedy",
                env_kwargs=data.entry.env_kwargs,
            )
            for k, x in enumerate(r):
                log.write({"step": step, "mode": mode, "episode": k, "return": float(x)})
            print(f"step {step} {mode}: {r.mean():.1f} (first 10: {r[:10].mean():.1f})", flush=True)


def cmd_evaluate(args) -> None:
    import spin_bench
    from spin_bench.registry import restore_agent

    torch.set_num_threads(1)
    run = Path(args.run)
    data = spin_bench.load_dataset(args.dataset)
    seed = json.loads((run / "config.json").read_text())["seed"]
    paths = sorted((run / "ckpt").glob("step_*.pt"))

    def agents():
        for p in paths:
            yield int(p.stem.split("_")[1]), restore_agent(torch.load(p, weights_only=True))

    evaluate_states(agents(), data, run, args.episodes, seed)


def official_to_agent(ckpt: dict, obs_dim: int, nvec, seed: int):
    """A spin-bench F-IQL agent holding an official IQL.py checkpoint's actor, critics and value net."""
    from spin_bench.registry import make_agent

    agent = make_agent("f-iql", obs_dim, nvec, "paper", "cpu", seed)
    a = ckpt["actor_state_dict"]
    heads = sorted({k.split(".")[1] for k in a if k.startswith("heads.")}, key=int)
    actor = {
        "net.0.weight": a["shared.0.weight"],
        "net.0.bias": a["shared.0.bias"],
        "net.3.weight": a["shared.3.weight"],
        "net.3.bias": a["shared.3.bias"],
        "net.6.weight": torch.cat([a[f"heads.{h}.weight"] for h in heads]),
        "net.6.bias": torch.cat([a[f"heads.{h}.bias"] for h in heads]),
    }
    agent.actor.load_state_dict(actor)
    c = ckpt["critic_state_dict"]
    critic = {
        f"layers.{i}.{p}": c[f"{name}.{p}"] for i, name in enumerate(("l1", "l2", "qs")) for p in ("weight", "bias")
    }
    agent.critic.load_state_dict(critic)
    # IQL.py saves no target critic; the online critic stands in for it in the probe statistics.
    agent.critic_target.load_state_dict(critic)
    v = ckpt["value_state_dict"]
    agent.value.load_state_dict(
        {f"net.{j}.{p}": v[f"l{i + 1}.{p}"] for i, j in enumerate((0, 2, 4)) for p in ("weight", "bias")}
    )
    return agent


def cmd_official(args) -> None:
    import spin_bench
    from spin_bench.agents.sampler import TransitionSampler

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = spin_bench.load_dataset(args.dataset)
    t = data.transitions
    probe = make_probe(data, episode_sources(data))
    sampler = TransitionSampler(t, "cpu", args.seed)
    rng = np.random.default_rng(args.seed + 999)
    paths = sorted(Path(args.ckpts).glob("model_step_*.pt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    loaded = [
        (
            int(p.stem.rsplit("_", 1)[1]) + 1,  # IQL.py saves after update `step`, i.e. step + 1 updates
            official_to_agent(torch.load(p, weights_only=False), t.obs_dim, t.nvec, args.seed),
        )
        for p in paths
    ]
    diag = CSVLog(out / "diag.csv")
    done = read_steps(out / "diag.csv")
    for step, agent in loaded:
        if step not in done:
            row = {"step": step, **probe_stats(agent, probe, sampler, rng)}
            if done and diag.fields is None:
                with open(out / "diag.csv") as f:
                    diag.fields = next(csv.reader(f))
            diag.write(row)
    evaluate_states(loaded, data, out, args.episodes, args.seed)


@torch.no_grad()
def rollout(agent, env_id, env_kwargs, episodes: int, seed: int, deterministic: bool = False):
    """Returns ``(episodes,)`` and observations ``(episodes, T, obs_dim)`` under the evaluation protocol."""
    import gymnasium as gym

    envs = [gym.make(env_id, **env_kwargs) for _ in range(episodes)]
    gen = torch.Generator().manual_seed(int(seed))
    obs = np.stack([env.reset(seed=seed + 100 + k)[0] for k, env in enumerate(envs)])
    returns, trace, running = np.zeros(episodes), [obs.copy()], np.ones(episodes, dtype=bool)
    while running.any():
        actions = agent.act(obs, deterministic=deterministic, generator=gen)
        for k in np.flatnonzero(running):
            obs[k], r, term, trunc, _ = envs[k].step(actions[k])
            returns[k] += r
            running[k] = not (term or trunc)
        trace.append(obs.copy())
    for env in envs:
        env.close()
    return returns, np.stack(trace[:-1], axis=1)


def cmd_visits(args) -> None:
    """Where evaluation episodes go: the source of each visited state's nearest dataset state, and how far it is."""
    from scipy.spatial import cKDTree

    import spin_bench
    from spin_bench.registry import restore_agent

    torch.set_num_threads(1)
    run = Path(args.run)
    data = spin_bench.load_dataset(args.dataset)
    t = data.transitions
    sources = episode_sources(data)
    mean, sd = t.observations.mean(0), t.observations.std(0) + 1e-6
    tree = cKDTree((t.observations - mean) / sd)
    # Reference: how far a dataset state lies from its nearest other dataset state.
    ref = np.random.default_rng(0).choice(len(t), 5000, replace=False)
    ref_d = tree.query((t.observations[ref] - mean) / sd, k=2)[0][:, 1]
    far = float(np.quantile(ref_d, 0.99))
    seed = json.loads((run / "config.json").read_text())["seed"]
    log = CSVLog(run / ("visits_greedy.csv" if args.greedy else "visits.csv"))
    for p in sorted((run / "ckpt").glob("step_*.pt")):
        agent = restore_agent(torch.load(p, weights_only=True))
        env_id, env_kwargs = data.entry.env_id, data.entry.env_kwargs
        returns, obs = rollout(agent, env_id, env_kwargs, args.episodes, seed, deterministic=args.greedy)
        d, i = tree.query((obs.reshape(-1, t.obs_dim) - mean) / sd)
        near = sources[i].reshape(obs.shape[:2])
        d = d.reshape(obs.shape[:2])
        for k in range(args.episodes):
            row = {"step": int(p.stem.split("_")[1]), "episode": k, "return": float(returns[k])}
            for src in dict.fromkeys(sources):
                row[f"near_{src}"] = float((near[k] == src).mean())
            row["nn_dist_median"] = float(np.median(d[k]))
            row["far_share"] = float((d[k] > far).mean())
            # cheetah: observation 1 is the torso pitch (rooty); cos < 0 means upside down.
            row["upside_down_share"] = float((np.cos(obs[k, :, 1]) < 0).mean())
            log.write(row)
        print(row["step"], returns.mean().round(1), flush=True)


def cmd_final_states(args) -> None:
    """The final state of each finished grid run on ``--dataset``: return and upside-down share per episode."""
    from spin_bench.registry import restore_agent

    torch.set_num_threads(1)
    _, task, name = args.dataset.split("/")
    quality = name.rsplit("-v", 1)[0]
    log = CSVLog(Path(args.out)) if args.out else None
    for folder in sorted(Path(args.runs).glob(f"*/{task}/{quality}/bins*/*/seed*")):
        summary_path, checkpoint = folder / "summary.json", folder / "checkpoint.pt"
        if not (summary_path.exists() and checkpoint.exists()):
            continue
        if json.loads(summary_path.read_text()).get("status") != "finished":
            continue
        config = json.loads((folder / "config.json").read_text())
        agent = restore_agent(torch.load(checkpoint, weights_only=True)["agent"])
        seed = config["spec"]["seed"]
        returns, obs = rollout(agent, config["env_id"], config["env_kwargs"], args.episodes, seed)
        upside_down = (np.cos(obs[:, :, 1]) < 0).mean(axis=1)  # cheetah: observation 1 is the torso pitch
        corr = float(np.corrcoef(upside_down, returns)[0, 1]) if upside_down.std() > 0 else float("nan")
        run = folder.relative_to(args.runs).as_posix()
        print(f"{run}: return {returns.mean():.1f}, upside down {upside_down.mean():.2f}, corr {corr:.2f}", flush=True)
        if log is not None:
            for k in range(args.episodes):
                log.write({"run": run, "episode": k, "return": float(returns[k]), "upside_down_share": upside_down[k]})


BETAS = (0.5, 1.0, 3.0, 10.0)


@torch.no_grad()
def cmd_betas(args) -> None:
    """ESS and clipped share of the AWR weights that each saved state's advantages would give at other betas."""
    import spin_bench
    from spin_bench.agents.sampler import TransitionSampler
    from spin_bench.registry import restore_agent

    torch.set_num_threads(1)
    run = Path(args.run)
    data = spin_bench.load_dataset(args.dataset)
    sampler = TransitionSampler(data.transitions, "cpu", 0)
    log = CSVLog(run / "betas.csv")
    for p in sorted((run / "ckpt").glob("step_*.pt")):
        agent = restore_agent(torch.load(p, weights_only=True))
        for net in agent._networks().values():
            net.eval()
        rng = np.random.default_rng(0)
        adv = []
        for _ in range(ESS_BATCHES):
            i = torch.as_tensor(rng.integers(sampler.size, size=agent.config.batch_size))
            q = agent.critic_target(sampler.observations[i], sampler.actions[i].long()).min(0).values
            adv.append(q - agent.value(sampler.observations[i]))
        row = {"step": int(p.stem.split("_")[1])}
        a = torch.stack(adv)  # (batches, B)
        row["adv_sd_within_batch"] = a.std(1).mean().item()
        for beta in BETAS:
            w = torch.exp(beta * a).clamp(max=agent.config.weight_clip)
            row[f"ess_beta{beta:g}"] = (w.sum(1) ** 2 / (a.shape[1] * w.square().sum(1))).mean().item()
            row[f"clip_beta{beta:g}"] = (w >= agent.config.weight_clip).float().mean().item()
        log.write(row)
        print(row, flush=True)


def cmd_composition(args) -> None:
    import spin_bench

    data = spin_bench.load_dataset(args.dataset)
    t = data.transitions
    sources = episode_sources(data)
    ends = np.flatnonzero(np.logical_or(t.timeouts, t.terminals))
    starts = np.concatenate([[0], ends[:-1] + 1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = CSVLog(out / "composition.csv")
    for e, (s, f) in enumerate(zip(starts, ends, strict=True)):
        ret = float(t.rewards[s : f + 1].sum())
        up = np.cos(t.observations[s : f + 1, 1]) < 0  # cheetah: torso pitch, upside down
        log.write(
            {
                "episode": e,
                "source": sources[s],
                "return": ret,
                "normalized": data.normalized_score(ret),
                "length": int(f - s + 1),
                "upside_down_steps": int(up.sum()),
                "upside_down_reward": float(t.rewards[s : f + 1][up].sum()),
            }
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="spin/cheetah-run/random-medium-expert-v0")
    sub = p.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train")
    tr.add_argument("--out", required=True)
    tr.add_argument("--agent", default="f-iql")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--steps", type=int, default=100_000)
    tr.add_argument("--eval-every", type=int, default=10_000)
    tr.add_argument("--eval-episodes", type=int, default=10)
    tr.add_argument("--diag-every", type=int, default=1000)
    tr.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. beta=1.0 expectile=0.7")
    ev = sub.add_parser("evaluate")
    ev.add_argument("--run", required=True)
    ev.add_argument("--episodes", type=int, default=50)
    of = sub.add_parser("official")
    of.add_argument("--ckpts", required=True)
    of.add_argument("--out", required=True)
    of.add_argument("--seed", type=int, default=0)
    of.add_argument("--episodes", type=int, default=50)
    vi = sub.add_parser("visits")
    vi.add_argument("--run", required=True)
    vi.add_argument("--episodes", type=int, default=10)
    vi.add_argument("--greedy", action="store_true", help="greedy actions (writes visits_greedy.csv)")
    be = sub.add_parser("betas")
    be.add_argument("--run", required=True)
    co = sub.add_parser("composition")
    co.add_argument("--out", required=True)
    fs = sub.add_parser("final-states")
    fs.add_argument("--runs", required=True, help="an --out of spin-bench run")
    fs.add_argument("--episodes", type=int, default=10)
    fs.add_argument("--out", help="CSV of the per-episode figures")
    args = p.parse_args()
    {
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "official": cmd_official,
        "betas": cmd_betas,
        "visits": cmd_visits,
        "composition": cmd_composition,
        "final-states": cmd_final_states,
    }[args.command](args)


if __name__ == "__main__":
    main()
