"""The published results document: a synthetic grid of run folders written as ``execute_run`` writes them, and the
numbers, flags, labels and files ``spin-bench report`` makes of it."""

import itertools
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from spin_bench._io import atomic_write_json
from spin_bench.cli import app
from spin_bench.runner.plots import panel_series, panel_title
from spin_bench.runner.report import build_report, collect_runs
from spin_bench.runner.run import _write_metrics
from spin_bench.runner.spec import RunSpec, config_json

HOST = {"cpu_model": "AMD EPYC 7B13", "logical_cpus": 2, "torch_threads": 1}
STEPS = (1000, 2000, 3000, 4000, 5000)


def write_run(
    root,
    agent,
    task,
    dataset,
    seed,
    returns,
    *,
    pretrain=0.0,
    overrides=(),
    host=HOST,
    step_s=60.0,
    bins=3,
    continued=None,
):
    """A finished run folder with the files and keys execute_run writes (normalized score = return / 10;
    ``continued``: its config.json's ``continued_from``)."""
    spec = RunSpec(agent, task, dataset, bins, seed, "quick", (("eval_every", 1000), ("num_steps", 5000), *overrides))
    spec = spec.with_data_digest(f"{task}-{dataset}".ljust(64, "0"))
    folder = spec.folder(root)
    folder.mkdir(parents=True)
    config = config_json(spec.resolved_config())
    steps = list(range(config["eval_every"], config["num_steps"] + 1, config["eval_every"]))
    assert len(steps) == len(returns)
    run_config = {
        "spec": spec.to_dict(),
        "dataset_id": spec.dataset_id,
        "dataset_sha256": spec.data_digest,
        "agent_config": config,
        "device": "cpu",
        "precision": "float32",
        "versions": {"python": "3.11", "spin-bench": "0.1.0", "torch": "2.13.0"},
        "git_commit": "0123456789abcdef",
    }
    if host is not None:
        run_config["host"] = host
    if continued is not None:
        run_config["continued_from"] = continued
    atomic_write_json(folder / "config.json", run_config)
    rows = [
        {
            "step": s,
            "wall_seconds": round(pretrain + step_s * (i + 1), 2),
            "eval_return_mean": float(r),
            "eval_return_std": 1.0,
            "normalized_score": float(r) / 10,
        }
        for i, (s, r) in enumerate(zip(steps, returns, strict=True))
    ]
    _write_metrics(folder / "metrics.csv", rows)
    best = max(rows, key=lambda r: r["eval_return_mean"])
    summary = {
        **spec.to_dict(),
        "status": "finished",
        "dataset_id": spec.dataset_id,
        "steps": steps[-1],
        "eval_episodes": config["eval_episodes"],
        "final_return_mean": rows[-1]["eval_return_mean"],
        "final_return_std": 1.0,
        "final_normalized_score": rows[-1]["normalized_score"],
        "best_return_mean": best["eval_return_mean"],
        "best_step": best["step"],
        "best_normalized_score": best["normalized_score"],
        "wall_seconds": rows[-1]["wall_seconds"],
        "pretrain_seconds": pretrain,
        "resumed_from": [],
    }
    atomic_write_json(folder / "summary.json", summary)
    return folder


# Final returns per (agent, task, dataset), one per seed 0, 1, 2. Curves rise linearly to them.
FINALS = {
    ("spin", "cheetah-run", "medium"): (500, 600, 700),
    ("spin", "walker-walk", "medium"): (300, 350, 400),
    ("spin", "cheetah-run", "medium-expert"): (800, 850, 900),
    ("spin", "walker-walk", "medium-expert"): (700, 700, 700),
    ("f-iql", "cheetah-run", "medium"): (400, 600, 800),
    ("f-iql", "walker-walk", "medium"): (100, 200, 250),
    ("f-iql", "cheetah-run", "medium-expert"): (800, 900, 1000),
    ("f-iql", "walker-walk", "medium-expert"): (0, 0, 0),
    ("bc", "cheetah-run", "medium"): (100, 100, 100),
    ("bc", "walker-walk", "medium"): (50, 60, 70),
    ("bc", "cheetah-run", "medium-expert"): (200, 300, 400),
    ("bc", "walker-walk", "medium-expert"): (10, 20, 30),
}
ASM_SECONDS = 600.0


def curve(final):
    return [final * (i + 1) / len(STEPS) for i in range(len(STEPS))]


@pytest.fixture
def grid(tmp_path):
    root = tmp_path / "runs"
    for (agent, task, dataset), finals in FINALS.items():
        for seed, final in enumerate(finals):
            pretrain = ASM_SECONDS if agent == "spin" else 0.0
            write_run(root, agent, task, dataset, seed, curve(final), pretrain=pretrain)
    return root


def _normalized(agent, dataset):
    return {task: np.array(FINALS[(agent, task, dataset)]) / 10 for task in ("cheetah-run", "walker-walk")}


def _brute_force_improvement(x_by_task, y_by_task):
    per_task = []
    for task in x_by_task:
        pairs = list(itertools.product(x_by_task[task], y_by_task[task]))
        per_task.append(sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs))
    return sum(per_task) / len(per_task)


def test_cell_cis_aggregates_and_improvements_match_independent_computations(grid):
    report = build_report(collect_runs(grid))
    cells = {(r.agent, r.task, r.dataset): r for r in report.rows}
    spin = cells[("spin", "cheetah-run", "medium")]
    assert spin.final_normalized_mean == pytest.approx(60.0) and spin.final_return_mean == pytest.approx(600.0)
    # Three seeds: a bootstrap resample is all one seed with probability 1/27 > 2.5%, so the 95% percentile
    # interval of the mean is exactly [min, max].
    assert spin.final_normalized_ci == pytest.approx((50.0, 70.0)) and spin.final_return_ci == pytest.approx((500, 700))
    equal = cells[("spin", "walker-walk", "medium-expert")]
    assert equal.final_normalized_ci == pytest.approx((70.0, 70.0))

    agg = {(a["agent"], a["dataset"]): a for a in report.aggregates}
    # IQM of 6 runs drops one from each end: spin on medium has 30, 35, 40, 50, 60, 70.
    assert agg[("spin", "medium")]["iqm_normalized"] == pytest.approx(np.mean([35, 40, 50, 60]))
    assert agg[("spin", "medium")]["tasks"] == 2 and agg[("spin", "medium")]["runs"] == 6
    # Over every dataset: 12 runs, 3 dropped from each end.
    spin_all = sorted(np.concatenate([v for d in ("medium", "medium-expert") for v in _normalized("spin", d).values()]))
    assert agg[("spin", "all")]["iqm_normalized"] == pytest.approx(np.mean(spin_all[3:9]), abs=0.005)
    assert agg[("spin", "all")]["tasks"] == 4
    for a in report.aggregates:
        assert a["ci95_low"] <= a["iqm_normalized"] <= a["ci95_high"]

    poi = {(p["baseline"], p["dataset"]): p for p in report.improvements}
    assert set(poi) == {(b, d) for b in ("f-iql", "bc") for d in ("medium", "medium-expert", "all")}
    for baseline, dataset in poi:
        datasets = ("medium", "medium-expert") if dataset == "all" else (dataset,)
        x = {f"{t}/{d}": v for d in datasets for t, v in _normalized("spin", d).items()}
        y = {f"{t}/{d}": v for d in datasets for t, v in _normalized(baseline, d).items()}
        assert poi[(baseline, dataset)]["probability"] == pytest.approx(_brute_force_improvement(x, y), abs=5e-4)
    # cheetah medium: 500/600/700 against 400/600/800 is 0.5 (one tie); walker medium: all above, 1.0.
    assert poi[("f-iql", "medium")]["probability"] == pytest.approx(0.75)
    assert poi[("bc", "medium-expert")]["probability"] == 1.0
    assert poi[("bc", "medium-expert")]["ci95_low"] == poi[("bc", "medium-expert")]["ci95_high"] == 1.0
    p = poi[("f-iql", "medium")]
    assert p["ci95_low"] < p["probability"] < p["ci95_high"]


def test_an_agent_with_more_seeds_on_one_cell_counts_as_many_runs_on_each_cell_in_its_aggregates(grid):
    for seed in (1, 2):
        shutil.rmtree(next(grid.glob(f"spin/walker-walk/medium/*/*/seed{seed}")))
    assert CliRunner().invoke(app, ["report", str(grid)]).exit_code == 0
    report = build_report(collect_runs(grid))
    agg = {(a["agent"], a["dataset"]): a for a in report.aggregates}
    # spin on medium: cheetah-run 50, 60, 70 and walker-walk 30. Pooled, cheetah-run would weigh three times as
    # much (IQM of 30, 50, 60, 70 is 55); balanced, each cell gives its lowest seed: 50 and 30.
    spin = agg[("spin", "medium")]
    assert spin["iqm_normalized"] == pytest.approx(40.0)
    assert (spin["runs"], spin["runs_finished"]) == (2, 4)
    assert (agg[("spin", "all")]["runs"], agg[("spin", "all")]["runs_finished"]) == (4, 10)
    assert (agg[("f-iql", "medium")]["runs"], agg[("f-iql", "medium")]["runs_finished"]) == (6, 6)
    md = (grid / "report.md").read_text()
    assert "| spin | 40.0 (n=2 of 4; 1 seed per cell, no CI) |" in md
    assert "(n=6) |" in md


def test_time_to_target_counts_asm_pretraining_and_flags_a_target_of_zero(grid):
    report = build_report(collect_runs(grid))
    cells = {(r.agent, r.task, r.dataset): r for r in report.rows}
    # cheetah-run medium: F-IQL's mean final is 600, so the target is 570. SPIN's seeds (finals 500, 600, 700
    # reached linearly over 5 evaluations) reach it at steps never, 5000 and 5000: medians 5000 steps and
    # 600 s of ASM + 5 * 60 s of training.
    spin = cells[("spin", "cheetah-run", "medium")]
    assert spin.target_return == pytest.approx(570.0)
    assert spin.target_reached == "2/3"
    assert spin.time_to_target_steps == 5000
    assert spin.time_to_target_s == pytest.approx(ASM_SECONDS + 300)
    assert spin.pretrain_minutes == pytest.approx(10.0)
    assert cells[("f-iql", "cheetah-run", "medium")].pretrain_minutes is None
    # F-IQL ends at 0 on walker-walk medium-expert: the target is 0, met by any evaluation: flagged, not timed.
    for agent in ("spin", "f-iql", "bc"):
        cell = cells[(agent, "walker-walk", "medium-expert")]
        assert cell.target_return == 0.0 and not cell.target_defined
        assert cell.target_reached == "n/a" and cell.time_to_target_s is None and cell.time_to_target_steps is None

    result = CliRunner().invoke(app, ["report", str(grid)])
    assert result.exit_code == 0, result.output
    md = (grid / "report.md").read_text()
    section = md.split("### cheetah-run, medium, 3 bins")[1].split("###")[0]
    spin_line = next(line for line in section.splitlines() if line.startswith("| spin |"))
    assert spin_line.endswith("| 5000 | 15.0 | 10.0 | 2/3 |")  # TTT steps, minutes incl. ASM, ASM minutes
    assert "target = 95% of f-iql's mean final return = 570.0" in section
    section = md.split("### walker-walk, medium-expert, 3 bins")[1]
    assert section.count("| - | - | - | flag: target <= 0 |") == 2  # f-iql and bc; spin has its ASM minutes
    assert "| - | 10.0 | flag: target <= 0 |" in section
    assert "**Flag: a target <= 0 is met by any evaluation" in section
    assert "target<=0" in result.output  # the terminal table too


def test_document_is_byte_identical_when_regenerated_and_names_no_machine_local_path(grid, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["report", "runs", "--format", "md", "--output", "results/README.md", "--plots", "results/img"]
    (tmp_path / "results").mkdir()
    runner = CliRunner()
    outputs = []
    for _ in range(2):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        pngs = sorted((tmp_path / "results" / "img").iterdir())
        outputs.append(((tmp_path / "results" / "README.md").read_bytes(), {p.name: p.read_bytes() for p in pngs}))
    assert outputs[0] == outputs[1]
    md = outputs[0][0].decode()
    assert str(tmp_path) not in md
    assert "spin-bench report runs --format md --output results/README.md --plots results/img" in md
    # Figures are referenced relative to the document, and exist.
    images = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert "img/aggregate_iqm.png" in images and "img/performance_profiles.png" in images
    assert "img/curve_walker-walk_medium-expert_bins3.png" in images
    assert all((tmp_path / "results" / image).is_file() for image in images)
    assert len(images) == len(outputs[0][1])  # every figure written is shown
    assert b"Matplotlib" not in b"".join(outputs[0][1].values())  # no software tag in the PNG metadata
    # The protocol and the machine, read from the run files.
    assert "| spin | quick eval_every=1000 num_steps=5000 | 12 | 5000 | 256 | 1000 | 5 | 500 steps |" in md
    assert "Machine: AMD EPYC 7B13, 2 logical CPUs, 1 torch thread(s), device cpu (36 runs)." in md
    assert "Runs: 36 finished, 0 failed, 0 skipped" in md
    # The aggregate table per dataset and over all, SPIN's probabilities of improvement.
    assert "| agent | medium | medium-expert | all |" in md
    assert "| spin | f-iql | medium | 2 | 6 vs 6 | 0.75 |" in md


def test_a_run_that_does_not_record_its_machine_says_so(grid):
    folder = next(p.parent for p in sorted(grid.rglob("config.json")))
    write_run(grid, "bc", "finger-spin", "medium", 0, curve(100), host=None)
    assert CliRunner().invoke(app, ["report", str(grid)]).exit_code == 0
    md = (grid / "report.md").read_text()
    assert "(36 runs); not recorded for 1 run (their config.json names the device, cpu" in md
    assert folder.is_dir()


def test_runs_on_one_cpu_model_with_different_vector_extensions_are_named_apart(grid):
    # Two AMD EPYCs, with and without AVX-512, share the model name; timings differ between them.
    avx2 = {**HOST, "cpu_vector_extension": "AVX2"}
    write_run(grid, "bc", "finger-spin", "medium", 0, curve(100), host=avx2)
    write_run(grid, "bc", "finger-spin", "medium", 1, curve(100), host=avx2)
    assert CliRunner().invoke(app, ["report", str(grid)]).exit_code == 0
    md = (grid / "report.md").read_text()
    machine = next(line for line in md.splitlines() if line.startswith("Machine: "))
    assert "AMD EPYC 7B13, 2 logical CPUs, 1 torch thread(s), device cpu (36 runs)" in machine
    assert "AMD EPYC 7B13 (AVX2), 2 logical CPUs, 1 torch thread(s), device cpu (2 runs)" in machine


def test_a_run_continued_from_a_shorter_one_names_the_machine_and_commit_of_its_first_steps(grid):
    earlier = {"cpu_model": "Intel Xeon 8480", "logical_cpus": 8, "torch_threads": 4}
    continued = {
        "run": "bc/finger-spin/medium/bins3/quick-0/seed0",
        "step": 3000,
        "host": earlier,
        "git_commit": "fedcba9876543",
    }
    write_run(grid, "bc", "finger-spin", "medium", 0, curve(100), continued=continued)
    assert CliRunner().invoke(app, ["report", str(grid)]).exit_code == 0
    md = (grid / "report.md").read_text()
    assert "device cpu (37 runs); runs continued from shorter runs (config.json's continued_from) trained their " in md
    assert "first steps on Intel Xeon 8480, 8 logical CPUs, 4 torch thread(s), device cpu, steps 1-3000 (1 run)." in md
    assert "spin-bench commit 0123456789 (37 runs), fedcba9876 (1 run);" in md


def test_a_damaged_metrics_file_is_skipped_with_one_warning_and_not_counted_in_the_curves(grid, tmp_path):
    report = build_report(collect_runs(grid))
    group = [r for r in report.rows if (r.task, r.dataset) == ("cheetah-run", "medium")]
    assert [s.label for s in panel_series(group)] == ["spin (n=3)", "f-iql (n=3)", "bc (n=3)"]

    # A metrics.csv cut off after its third evaluation, and one whose return is not a number.
    spin = next(p for p in sorted(grid.rglob("metrics.csv")) if "spin/cheetah-run/medium/" in p.as_posix())
    spin.write_text("".join(spin.read_text().splitlines(keepends=True)[:4]))
    bc = next(p for p in sorted(grid.rglob("metrics.csv")) if "bc/cheetah-run/medium/" in p.as_posix())
    bc.write_text(bc.read_text().replace(",20.0,1.0,", ",nan,1.0,", 1))
    found = collect_runs(grid)
    assert sorted(found.skipped) == sorted(
        [
            (spin, "ends at step 3000, summary.json says the run ended at 5000"),
            (bc, "eval_return_mean is nan at step 1000, not a finite number"),
        ]
    )
    report = build_report(found)
    group = [r for r in report.rows if (r.task, r.dataset) == ("cheetah-run", "medium")]
    series = panel_series(group)
    assert [s.label for s in series] == ["spin (n=2)", "f-iql (n=3)", "bc (n=2)"]
    assert all(len(s.steps) == len(STEPS) and np.isfinite(s.mean).all() for s in series)

    result = CliRunner().invoke(app, ["report", str(grid), "--plots", str(tmp_path / "img")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and all("metrics.csv: " in w for w in warnings)
    md = (grid / "report.md").read_text()
    assert "Runs: 34 finished, 0 failed, 2 skipped" in md


def test_curves_of_runs_set_to_other_step_counts_are_labelled_with_the_differing_fields(tmp_path):
    root = tmp_path / "runs"
    for seed in (0, 1):
        write_run(root, "f-iql", "cheetah-run", "medium", seed, curve(500))
        write_run(root, "f-iql", "cheetah-run", "medium", seed, curve(600), overrides=(("beta", 10.0),))
        write_run(root, "spin", "cheetah-run", "medium", seed, curve(700))
        # Everything on walker-walk ran with another learning rate: the title says so.
        for agent in ("f-iql", "spin"):
            write_run(root, agent, "walker-walk", "medium", seed, curve(500), overrides=(("lr", 0.001),))
    report = build_report(collect_runs(root))
    cheetah = [r for r in report.rows if r.task == "cheetah-run"]
    assert [s.label for s in panel_series(cheetah)] == ["spin (n=2)", "f-iql beta=3 (n=2)", "f-iql beta=10 (n=2)"]
    assert panel_title(cheetah).endswith("preset quick, eval_every=1000, num_steps=5000")
    walker = [r for r in report.rows if r.task == "walker-walk"]
    assert [s.label for s in panel_series(walker)] == ["spin (n=2)", "f-iql (n=2)"]
    assert panel_title(walker).endswith("preset quick, eval_every=1000, lr=0.001, num_steps=5000")


def test_host_info_names_the_cpu_model_from_cpuinfo(tmp_path):
    from spin_bench.runner.host import cpu_model, host_info

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n")
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert cpu_model(tmp_path / "absent") != ""  # platform's answer
    info = host_info()
    assert {"cpu_model", "logical_cpus", "torch_threads"} <= set(info) and info["logical_cpus"] >= 1
    assert set(info) <= {"cpu_model", "logical_cpus", "torch_threads", "cpu_vector_extension"}


@pytest.mark.parametrize(
    "lines, expected",
    [
        ("flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw\n", "AVX-512"),
        ("flags\t\t: fpu sse sse2 avx avx2 fma bmi2\n", "AVX2"),
        ("Features\t: fp asimd evtstrm aes crc32\n", "NEON"),
        ("processor\t: 0\n", None),
    ],
)
def test_cpu_vector_extension_reads_the_widest_flag(tmp_path, lines, expected):
    from spin_bench.runner.host import cpu_vector_extension

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\n" + lines)
    assert cpu_vector_extension(cpuinfo) == expected
    assert cpu_vector_extension(tmp_path / "absent") is None


def test_a_one_row_aggregate_chart_keeps_its_height_and_axis_label(tmp_path):
    from PIL import Image

    root = tmp_path / "runs"
    write_run(root, "f-iql", "cheetah-run", "medium", 0, curve(500))
    result = CliRunner().invoke(app, ["report", str(root), "--plots", str(tmp_path / "img")])
    assert result.exit_code == 0, result.output
    width, height = Image.open(tmp_path / "img" / "aggregate_iqm.png").size
    assert height >= 200 and width >= 600  # one row once squashed into 90 pixels, its x label cut off
