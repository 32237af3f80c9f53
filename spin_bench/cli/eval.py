"""``spin-bench eval CHECKPOINT``: evaluate a saved agent, optionally recording a video."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from spin_bench.cli._common import console

RUN_CONFIG_KEYS = ("env_id", "env_kwargs", "dataset_id")
"""What eval reads from the run's config.json."""
VIDEO_SIZE = (320, 240)
"""Width and height of recorded frames."""


def _check_video_target(video: Path) -> None:
    """Bad input (exit code 2) before any work: not an .mp4 name, or a folder that cannot hold the file."""
    from spin_bench.cli.run import check_writable

    if video.suffix != ".mp4":
        raise ValueError(f"--video {str(video)!r} must end in .mp4")
    try:
        check_writable(video.parent)
    except ValueError as err:
        raise ValueError(f"--video {str(video)!r}: {err}") from None


def _video_env(env_id: str, env_kwargs: dict[str, Any]):
    """The environment to record, already shown to render a frame: a machine without an OpenGL backend for MuJoCo
    fails here, before the evaluation, with the fix."""
    import gymnasium as gym

    from spin_bench.errors import RenderingUnavailableError, SpinBenchError

    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401  (the mp4 writer's backend)
    except ImportError:
        raise SpinBenchError("--video needs imageio with its ffmpeg backend: pip install 'spin-bench[video]'") from None
    width, height = VIDEO_SIZE
    env = gym.make(env_id, render_mode="rgb_array", width=width, height=height, **env_kwargs)
    env.reset(seed=0)
    try:
        env.render()
    except Exception as err:  # dm_control and PyOpenGL raise many types when no backend can be loaded
        env.close()
        reason = " ".join(str(err).split()) or type(err).__name__
        raise RenderingUnavailableError(
            f"--video: MuJoCo cannot render on this machine (MUJOCO_GL={os.environ.get('MUJOCO_GL', 'unset')}: "
            f"{reason}); install libEGL and set MUJOCO_GL=egl (or OSMesa and MUJOCO_GL=osmesa), or leave out --video"
        ) from None
    return env


def _record_video(agent, env, seed: int, path: Path, deterministic: bool) -> int:
    """Record episode ``seed+100`` to ``path`` (written whole or not at all); returns the number of frames."""
    import imageio.v2 as imageio

    obs, _ = env.reset(seed=seed + 100)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    frames = 0
    try:
        with imageio.get_writer(tmp, fps=env.metadata["render_fps"], macro_block_size=8) as writer:
            done = False
            while not done:
                writer.append_data(env.render())
                frames += 1
                obs, _, terminated, truncated, _ = env.step(agent.act(obs, deterministic=deterministic))
                done = terminated or truncated
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        env.close()
    return frames


def _read_run_config(config_path: Path) -> dict[str, Any]:
    from spin_bench._io import read_json
    from spin_bench.errors import DamagedFileError

    run_config = read_json(config_path)
    missing = [k for k in RUN_CONFIG_KEYS if not isinstance(run_config, dict) or k not in run_config]
    if missing:
        raise DamagedFileError(f"{config_path} is damaged: it lacks {', '.join(map(repr, missing))}")
    return run_config


def _load_agent(path: Path, device: str):
    """The agent saved in a run's checkpoint, loaded weights-only; a damaged file is a SpinBenchError naming it."""
    import torch

    from spin_bench.errors import DamagedFileError
    from spin_bench.registry import restore_agent
    from spin_bench.runner.run import load_checkpoint

    state = load_checkpoint(path, torch.device(device))
    try:
        return restore_agent(state["agent"], device=device)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # an agent state that does not fit its class
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        raise DamagedFileError(
            f"checkpoint {path} is damaged ({reason}); it holds no agent that can be restored"
        ) from None


def eval_command(
    checkpoint: Annotated[Path, typer.Argument(help="A run's checkpoint.pt (or its run folder).")],
    episodes: Annotated[int, typer.Option(help="Evaluation episodes.")] = 10,
    seed: Annotated[int, typer.Option(help="Episode k is reset with seed+100+k.")] = 0,
    deterministic: Annotated[bool, typer.Option(help="Greedy actions instead of sampled ones.")] = False,
    video: Annotated[Path | None, typer.Option(help="Record the first episode to this .mp4 file.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "cpu",
) -> None:
    """Evaluate a saved agent in its run's environment."""
    import numpy as np

    from spin_bench._device import resolve_device
    from spin_bench.agents.evaluation import evaluate
    from spin_bench.datasets.scores import references_of

    device = resolve_device(device)
    path = checkpoint / "checkpoint.pt" if checkpoint.is_dir() else checkpoint
    if not path.is_file():
        raise ValueError(f"checkpoint {str(checkpoint)!r} not found (give a run's checkpoint.pt or run folder)")
    config_path = path.parent / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{str(path)!r} has no config.json beside it; is it a spin-bench run checkpoint?")
    if episodes < 1:
        raise ValueError(f"--episodes {episodes} must be >= 1")
    if video is not None:
        _check_video_target(video)
    run_config = _read_run_config(config_path)
    agent = _load_agent(path, device)
    env_id, env_kwargs = run_config["env_id"], run_config["env_kwargs"]
    references = references_of(run_config["dataset_id"])  # what the run's own evaluations were normalized with
    video_env = _video_env(env_id, env_kwargs) if video is not None else None

    returns = evaluate(agent, env_id, episodes=episodes, seed=seed, deterministic=deterministic, env_kwargs=env_kwargs)
    console.print(
        f"{agent.name} at step {agent.step:,} on {env_id} {env_kwargs}: return "
        f"{returns.mean():.1f} ± {returns.std():.1f} over {episodes} episodes "
        f"({'greedy' if deterministic else 'sampled'}), normalized {references.normalize(float(np.mean(returns))):.1f}"
    )
    if video is not None:
        frames = _record_video(agent, video_env, seed, video, deterministic)
        console.print(f"wrote {video} ({frames} frames)")
