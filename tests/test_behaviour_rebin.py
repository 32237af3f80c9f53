"""Rebinning: a behaviour export carried to another bin count through a polynomial utility basis."""

import json

import pytest
import torch
from test_behaviour import TINY, _curve, _run_cli

from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
from spin_bench.pipeline.behaviour.policy import load_behaviour_policy, sha256_file
from spin_bench.pipeline.behaviour.rebin import evaluate_snapshot, rebin_network


def test_rebinned_utilities_are_the_source_on_its_bins_and_its_quadratic_between_them():
    torch.manual_seed(0)
    source = DecoupledQNetwork(9, [3, 3, 3], (32, 32), layer_norm="all").eval()
    rebinned = rebin_network(source, 5)
    assert rebinned.nvec == [5, 5, 5] and rebinned.utility_basis == 0  # folded: loads and rolls out like any head
    obs = torch.randn(64, 9) * 3
    with torch.no_grad():
        u3, u5 = source(obs), rebinned(obs)
    # linspace(-1, 1, 5) holds the 3-bin values -1, 0, 1 at bins 0, 2, 4.
    torch.testing.assert_close(u5[..., [0, 2, 4]], u3, atol=1e-5, rtol=1e-5)
    # At -0.5 and 0.5, the parabola through the three utilities (Lagrange weights).
    torch.testing.assert_close(u5[..., 1], 0.375 * u3[..., 0] + 0.75 * u3[..., 1] - 0.125 * u3[..., 2], atol=1e-5,
                               rtol=1e-5)  # fmt: skip
    torch.testing.assert_close(u5[..., 3], -0.125 * u3[..., 0] + 0.75 * u3[..., 1] + 0.375 * u3[..., 2], atol=1e-5,
                               rtol=1e-5)  # fmt: skip


def test_rebinning_refuses_what_a_basis_cannot_carry():
    torch.manual_seed(0)
    free7 = DecoupledQNetwork(9, [7, 7], (32, 32))
    with pytest.raises(ValueError, match="not of degree 2 over the bins"):
        rebin_network(free7, 30, utility_basis=3)  # seven free utilities are no quadratic: refused, not fitted
    with pytest.raises(ValueError, match="--bins 3 must be more than utility_basis=3"):
        rebin_network(DecoupledQNetwork(9, [3, 3], (32, 32)), 3)
    with pytest.raises(ValueError, match=r"utility_basis=8 must be in \[2, 7\]"):
        rebin_network(free7, 30, utility_basis=8)
    with pytest.raises(ValueError, match="same bins in every dimension"):
        rebin_network(DecoupledQNetwork(9, [3, 5], (32, 32)), 30)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """The export of a tiny 3-bin finger-spin run (2000 env steps)."""
    folder = tmp_path_factory.mktemp("rebin")
    _run_cli("behaviour", "train", "--task", "finger-spin", "--workers", "1", "--env-steps", "2000",
             "--out", str(folder / "run"), *TINY)  # fmt: skip
    _run_cli("behaviour", "export", str(folder / "run"), "--dest", str(folder / "export"))
    return folder / "export"


def test_rebin_cli_makes_an_export_that_behaviour_train_continues_at_the_new_bins(tmp_path, export):
    rebinned, continued = tmp_path / "rebinned", tmp_path / "continued"
    source = json.loads((export / "behaviour.json").read_text())

    # The evaluation at the new bins is the trainer's own: at the source's bins it reproduces the source's curve.
    expert = source["snapshots"]["expert"]
    again = evaluate_snapshot(export / "expert.pt", "finger-spin", 3, expert["eval_episodes"], 0.0, workers=1)
    assert round(float(again.mean()), 2) == pytest.approx(expert["eval_return_mean"], abs=0.01)

    out = _run_cli("behaviour", "rebin", str(export), "--bins", "9", "--dest", str(rebinned), "--workers", "1")
    assert f"continue with --init-from {rebinned} --set utility_basis=3" in " ".join(out.stdout.split())
    record = json.loads((rebinned / "behaviour.json").read_text())
    assert (record["task"], record["bins"], record["decqn"]["utility_basis"]) == ("finger-spin", 9, 3)
    assert record["command"] == (
        f"spin-bench-maintain behaviour rebin {export.as_posix()} --bins 9 --dest {rebinned.as_posix()}"
    )
    assert record["init_from"]["path"] == export.as_posix()
    assert record["init_from"]["expert_sha256"] == expert["sha256"]
    for quality, snap in record["snapshots"].items():
        assert sha256_file(rebinned / snap["file"]) == snap["sha256"]
        assert snap["env_steps"] == source["snapshots"][quality]["env_steps"]
        assert load_behaviour_policy(rebinned / snap["file"]).network.nvec == [9, 9]
    rows = _curve(rebinned)
    assert [int(r["env_steps"]) for r in rows] == sorted(s["env_steps"] for s in source["snapshots"].values())
    expert_row = next(r for r in rows if int(r["env_steps"]) == expert["env_steps"])
    assert float(expert_row["eval_return_mean"]) == record["snapshots"]["expert"]["eval_return_mean"]
    assert (
        expert_row["updates"] == next(r for r in _curve(export) if r["env_steps"] == expert_row["env_steps"])["updates"]
    )

    base = ["behaviour", "train", "--task", "finger-spin", "--bins", "9", "--workers", "1", *TINY,
            "--set", "warm_start_refill=500", "--set", "warm_start_lr_warmup=100"]  # fmt: skip
    out = _run_cli(*base, "--env-steps", "3000", "--out", str(continued), "--init-from", str(rebinned),
                   "--set", "utility_basis=3")  # fmt: skip
    assert f"warm start from {rebinned}: the expert at 2,000 env steps" in out.stdout
    _run_cli("behaviour", "export", str(continued), "--dest", str(tmp_path / "export9"))
    final = json.loads((tmp_path / "export9" / "behaviour.json").read_text())
    assert final["bins"] == 9 and "--set utility_basis=3" in final["command"]
    # The lineage reaches back through the rebin to the 3-bin run's command.
    assert final["init_from"]["command"] == record["command"]
    assert final["init_from"]["init_from"]["command"] == source["command"]


def test_rebin_cli_refusals_are_one_line_and_write_nothing(tmp_path, export):
    def refused(*args):
        dest = tmp_path / "dest"
        result = _run_cli("behaviour", "rebin", *args, "--dest", str(dest), check=False)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not dest.exists()
        return result.stderr

    assert "is already at 3 bins" in refused(str(export), "--bins", "3")
    assert "not of degree 1 over the bins" in refused(str(export), "--bins", "9", "--utility-basis", "2")
    assert "--bins 1 must be >= 2" in refused(str(export), "--bins", "1")
    assert "is not a behaviour export (no behaviour.json)" in refused(str(tmp_path / "nowhere"), "--bins", "9")
