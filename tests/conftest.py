import spin_bench  # noqa: F401, I001  (chooses the headless MuJoCo renderer before dm_control loads)

import csv  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# Rich tables and long paths in CLI output stay on one line. Set for the whole session, before collection: Rich fixes
# a console's width when the console is made, the CLI makes its consoles when it is imported, and pytest-xdist's
# workers start with COLUMNS=80, which a per-test setting could not reach.
os.environ["COLUMNS"] = "200"


@pytest.fixture(autouse=True)
def _isolated_data_dirs(monkeypatch, tmp_path_factory):
    """No test touches the user's Minari data dir, remote or catalog override."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari-datasets")))
    for var in ("MINARI_REMOTE", "SPIN_BENCH_CATALOG", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)


TINY_TASK = "cheetah-run"


def write_tiny_catalog(folder: Path, *, random_ref: float = 5.0, expert_ref: float = 500.0) -> Path:
    """A one-entry catalog (cheetah-run, 3 bins) with test-only sizes and randomly initialised checkpoints.

    random / medium / expert: 2 episodes each; medium-expert: 4; random-medium-expert: 3 (one per policy).
    """
    import torch

    from spin_bench.datasets.catalog import CATALOG_FORMAT
    from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
    from spin_bench.pipeline.behaviour.policy import save_snapshot
    from spin_bench.pipeline.catalog_edit import EditableCatalog, entry_json

    entry = entry_json(
        TINY_TASK,
        3,
        env_id=spin_bench.env_id(TINY_TASK),
        env_kwargs={},
        max_episode_steps=1000,
        checkpoints={"medium": "checkpoints/medium.pt", "expert": "checkpoints/expert.pt"},
        paper_reference={"random": 5.39, "expert": 664.57, "source": "test"},
        sizes={"random": 2000, "medium": 2000, "expert": 2000, "random-medium-expert": 3000},
        seeds={
            "random": 1_000_000,
            "medium": 2_000_000,
            "expert": 3_000_000,
            "random-medium-expert/random": 4_000_000,
            "random-medium-expert/medium": 4_100_000,
            "random-medium-expert/expert": 4_200_000,
        },
        epsilon=0.05,
        reference_seeds=(5_000_000, 5_100_000),
    )
    for i, name in enumerate(("medium", "expert")):
        torch.manual_seed(i)
        network = DecoupledQNetwork(17, [3] * 6, hidden=(32, 32))
        entry["checkpoints"][name]["sha256"] = save_snapshot(folder / "checkpoints" / f"{name}.pt", network)
    entry["reference_scores"]["random"]["value"] = random_ref
    entry["reference_scores"]["expert"]["value"] = expert_ref
    entry["expert_target"] = 450.0  # random test networks: the paper's target does not apply
    raw = {"format": CATALOG_FORMAT, "maintainers": {"author": "spin-bench tests"}, "remotes": [], "entries": [entry]}
    path = folder / "catalog.json"
    EditableCatalog(raw, path).save()
    return path


@pytest.fixture
def tiny_catalog(tmp_path, monkeypatch):
    """Path of a test catalog, also set as ``$SPIN_BENCH_CATALOG`` (so the CLI and subprocesses use it too)."""
    path = write_tiny_catalog(tmp_path / "catalog")
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(path))
    return path


@pytest.fixture
def gcs_emulator():
    """A fresh loopback Google Cloud Storage emulator (in memory) with one bucket; yields (host URL, bucket)."""
    from gcp_storage_emulator.server import create_server  # a dev dependency: missing it fails, never skips

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="spin-test")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", "spin-test"
    finally:
        server.stop()


@pytest.fixture
def gcs_remote(gcs_emulator, monkeypatch):
    """``MINARI_REMOTE=gcp://spin-test`` served by the emulator; yields the remote string."""
    host, bucket = gcs_emulator
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    monkeypatch.setenv("MINARI_REMOTE", f"gcp://{bucket}")
    assert os.environ["MINARI_DATASETS_PATH"]
    return f"gcp://{bucket}"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models run fastest on one core; restores the session's setting for the modules after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def launch_cli(
    args: list[str], *, sigint=signal.SIG_DFL, cli: str = "spin_bench.cli", **popen_kwargs
) -> subprocess.Popen:
    """Start ``spin-bench ARGS`` as a user would, in its own process group (signal it with ``os.killpg``).

    ``cli``: the command's package (``spin_bench.pipeline.cli`` for ``spin-bench-maintain``).

    ``sigint``: SIG_DFL is a terminal's foreground job, where Ctrl-C interrupts; SIG_IGN is a job that a script
    started with ``&``. Set explicitly, because pytest itself may run with SIGINT ignored and would pass that on.
    """
    return subprocess.Popen(
        [sys.executable, "-c", f"from {cli} import main; main()", *args],
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
        **popen_kwargs,
    )


def metrics_without_wall_clock(folder: Path) -> list[dict[str, str]]:
    """A run's metrics.csv rows as text, without the wall-clock column (the one field two equal runs differ in)."""
    with open(folder / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in csv.DictReader(f)]


def assert_equal_to_the_bit(a, b, where="checkpoint"):
    """Equal to the last bit: tensors by value and dtype, containers element by element."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_equal_to_the_bit(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal_to_the_bit(x, y, f"{where}[{i}]")
    else:
        assert a == b, where
