"""Run the official SPIN code's IQL.py, unmodified, on a spin-bench dataset (docs/learning-curves.md).

Usage:
    python benchmarks/curves_official.py convert --dataset spin/cheetah-run/random-medium-expert-v0 --root DIR
    python benchmarks/curves_official.py run --official /path/to/SPIN --root DIR --workdir DIR [IQL.py flags...]

``/path/to/SPIN`` is a checkout of github.com/matthewlanders/SPIN (commit c37be1b was used); nothing in it is
edited. Its IQL.py imports ``dmc_datasets.environment_utils.make_env`` (github.com/davidireland3/dmc_datasets)
for two things: the evaluation env and ``env.load_dataset(level, data_dir)``, a pickled list of
``(s, a, r, s', done)`` tuples at ``DATA_DIR/<bins>_bins/<domain>-<task>-<level>``. This script

- ``convert``: writes a spin-bench Minari dataset in that pickle layout, with ``done`` = the dataset's
  ``terminals`` (true terminations only; never true on DM Control tasks), so IQL.py, which treats ``done``
  as terminal, bootstraps through time limits exactly as spin-bench does;
- ``run``: puts a stand-in ``dmc_datasets`` package first on ``sys.path`` whose ``make_env`` is spin-bench's
  env (``SPIN/<domain>-<task>-disc-v0``: same observations, bins and reset seeds as spin-bench's evaluation)
  and whose ``load_dataset`` reads the pickle, sets one torch thread, and runs IQL.py with the given flags
  (``runpy``, as ``python IQL.py ...`` would). IQL.py needs ``tyro`` and ``tensorboard`` importable.

IQL.py evaluates at steps 0, eval_freq, 2 * eval_freq, ... (after that step's update) and saves a checkpoint
at each evaluation under ``--model_save_dir``; ``--num_gradient_steps 100001`` gives an evaluation after
update 100001, the last one.
"""

from __future__ import annotations

import argparse
import pickle
import runpy
import sys
from pathlib import Path

SHIM = '''"""Stand-in for dmc_datasets.environment_utils: spin-bench's env and a pickled dataset (see
benchmarks/curves_official.py in spin-bench)."""
import os
import pickle

import gymnasium as gym
import spin_bench  # noqa: F401  (registers SPIN/<domain>-<task>-disc-v0)


class _Env(gym.Wrapper):
    def __init__(self, domain, task, bin_size):
        kwargs = {} if bin_size == 3 else {"bins": bin_size}
        super().__init__(gym.make(f"SPIN/{domain}-{task}-disc-v0", **kwargs))
        self.domain, self.task, self.bin_size = domain, task, bin_size

    def load_dataset(self, level, return_type="raw", data_dir=None):
        path = os.path.join(data_dir, f"{self.bin_size}_bins", f"{self.domain}-{self.task}-{level}")
        print(f"Loading dataset from: {path}")
        with open(path, "rb") as f:
            return pickle.load(f)


def make_env(task_name, task, bin_size=3, factorised=True):
    assert factorised, "only the factorised action space is provided"
    return _Env(task_name, task, bin_size)
'''


def convert(dataset_id: str, root: Path) -> Path:
    """Write ``dataset_id`` as DATA_DIR/<bins>_bins/<domain>-<task>-<level> (a pickled list of tuples)."""
    import numpy as np

    import spin_bench

    data = spin_bench.load_dataset(dataset_id)
    t = data.transitions
    domain, task = data.task.split("-", 1)
    path = root / f"{data.bins}_bins" / f"{domain}-{task}-{data.quality}"
    path.parent.mkdir(parents=True, exist_ok=True)
    actions = t.actions.astype(np.int64)
    done = t.terminals.astype(bool)  # terminations only: time-limit ends bootstrap
    rows = [
        (t.observations[i], actions[i], float(t.rewards[i]), t.next_observations[i], bool(done[i]))
        for i in range(len(t))
    ]
    with open(path, "wb") as f:
        pickle.dump(rows, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{dataset_id}: {len(rows):,} transitions, {int(done.sum())} with done=True -> {path}")
    return path


def run(official: Path, root: Path, workdir: Path, flags: list[str]) -> None:
    """Run ``official``/IQL.py with ``flags`` in ``workdir``, reading datasets from ``root``."""
    import os

    import torch

    torch.set_num_threads(1)
    shim = workdir / "shim" / "dmc_datasets"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "__init__.py").write_text("")
    (shim / "environment_utils.py").write_text(SHIM)
    sys.path.insert(0, str(shim.parent))
    os.chdir(workdir)
    sys.argv = ["IQL.py", "--dataset_root_dir", str(root), "--no-cuda", *flags]
    runpy.run_path(str(official / "IQL.py"), run_name="__main__")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert")
    c.add_argument("--dataset", required=True)
    c.add_argument("--root", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--official", type=Path, required=True, help="checkout of matthewlanders/SPIN")
    r.add_argument("--root", type=Path, required=True, help="DATA_DIR written by convert")
    r.add_argument("--workdir", type=Path, required=True, help="where IQL.py writes runs/ and checkpoints")
    args, flags = parser.parse_known_args()
    if args.command == "convert":
        convert(args.dataset, args.root)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args.official.resolve(), args.root.resolve(), args.workdir.resolve(), flags)


if __name__ == "__main__":
    main()
