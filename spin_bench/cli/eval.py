"""``spin-bench eval CHECKPOINT``: evaluate a saved agent, optionally recording a video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spin_bench.cli._common import console, user_errors


def _record_video(agent, env_id: str, env_kwargs: dict, seed: int, path: Path, deterministic: bool) -> int:
    import gymnasium as gym

    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the mp4 writer's backend)
    except ImportError:
        raise ValueError("--video needs imageio with its ffmpeg backend: pip install 'spin-bench[video]'") from None

    env = gym.make(env_id, render_mode="rgb_array", width=320, height=240, **env_kwargs)
    obs, _ = env.reset(seed=seed + 100)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    frames = 0
    with imageio.get_writer(tmp, fps=env.metadata["render_fps"], macro_block_size=8) as writer:
        done = False
        while not done:
            writer.append_data(env.render())
            frames += 1
            obs, _, terminated, truncated, _ = env.step(agent.act(obs, deterministic=deterministic))
            done = terminated or truncated
    tmp.replace(path)
    return frames


def eval_command(
    checkpoint: Annotated[Path, typer.Argument(help="A run's checkpoint.pt (or its run folder).")],
    episodes: Annotated[int, typer.Option(help="Evaluation episodes.")] = 10,
    seed: Annotated[int, typer.Option(help="Episode k is reset with seed+100+k.")] = 0,
    deterministic: Annotated[bool, typer.Option(help="Greedy actions instead of sampled ones.")] = False,
    video: Annotated[Path | None, typer.Option(help="Record the first episode to this .mp4 file.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Evaluate a saved agent in its run's environment."""
    import numpy as np
    import torch

    from spin_bench.agents.evaluation import evaluate
    from spin_bench.agents.registry import restore_agent
    from spin_bench.runner.data import normalizer

    with user_errors():
        path = checkpoint / "checkpoint.pt" if checkpoint.is_dir() else checkpoint
        if not path.is_file():
            raise ValueError(f"checkpoint {str(checkpoint)!r} not found (give a run's checkpoint.pt or run folder)")
        config_path = path.parent / "config.json"
        if not config_path.is_file():
            raise ValueError(f"{str(path)!r} has no config.json beside it; is it a spin-bench run checkpoint?")
        if episodes < 1:
            raise ValueError(f"--episodes {episodes} must be >= 1")
        if video is not None and video.suffix != ".mp4":
            raise ValueError(f"--video {str(video)!r} must end in .mp4")
        run_config = json.loads(config_path.read_text())
        state = torch.load(path, map_location=device, weights_only=True)
        agent = restore_agent(state["agent"], device=device)
    env_id, env_kwargs = run_config["env_id"], run_config["env_kwargs"]
    returns = evaluate(agent, env_id, episodes=episodes, seed=seed, deterministic=deterministic, env_kwargs=env_kwargs)
    normalize = normalizer(run_config["dataset_id"])
    console.print(
        f"{state['agent']['agent']} at step {agent.step:,} on {env_id} {env_kwargs}: return "
        f"{returns.mean():.1f} ± {returns.std():.1f} over {episodes} episodes "
        f"({'greedy' if deterministic else 'sampled'}), normalized {normalize(float(np.mean(returns))):.1f}"
    )
    if video is not None:
        with user_errors():
            frames = _record_video(agent, env_id, env_kwargs, seed, video, deterministic)
        console.print(f"wrote {video} ({frames} frames)")
