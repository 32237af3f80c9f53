"""``spin-bench-maintain ...`` commands on the catalog's datasets: record, reference, register-checkpoints, card,
publish and check-prefix."""

from __future__ import annotations

from typing import Annotated

import typer

from spin_bench.cli._common import CliErrorsGroup

app = typer.Typer(no_args_is_help=True, cls=CliErrorsGroup)  # exit codes and error lines: spin_bench.errors

RemoteOpt = Annotated[str | None, typer.Option(help="Remote, gcp://<bucket> or hf://<org> (default: $MINARI_REMOTE)")]
IdsArg = Annotated[list[str], typer.Argument(help="Dataset ids, e.g. spin/cheetah-run/expert-v0.")]
BinsOpt = Annotated[int, typer.Option(help="Bins per action dimension.")]


@app.command("record")
def record_cmd(
    dataset_ids: IdsArg,
    workers: Annotated[int, typer.Option(help="Simulation processes (default: one per core).")] = 0,
    force: Annotated[bool, typer.Option(help="Replace an installed copy.")] = False,
) -> None:
    """Build datasets and record their sha256, statistics and prefix in the catalog (where it has none yet)."""
    from spin_bench.pipeline.record import record_dataset

    for dataset_id in dataset_ids:
        b = record_dataset(dataset_id, workers=workers or None, force=force)
        state = "recorded" if b.recorded else "matches the catalog"
        typer.echo(
            f"{dataset_id}: {b.stats['transitions']:,} transitions in {b.seconds:.1f} s, "
            f"mean return {b.stats['return_mean']:.1f}, sha256 {b.sha256} ({state}) -> {b.path}"
        )


@app.command("publish")
def publish_cmd(
    dataset_ids: IdsArg,
    remote: RemoteOpt = None,
    token: Annotated[
        str | None, typer.Option(help="gcp: service-account key file; hf: API token (default: anonymous).")
    ] = None,
) -> None:
    """Upload recorded, verified local datasets to a Minari remote (never replaces a published dataset)."""
    from spin_bench.pipeline.publish import publish_dataset

    for dataset_id in dataset_ids:
        target = publish_dataset(dataset_id, remote=remote, token=token)
        typer.echo(f"{dataset_id}: published to {target}")


@app.command("check-prefix")
def check_prefix_cmd(
    dataset_ids: Annotated[
        list[str] | None, typer.Argument(help="Dataset ids (default: every dataset with a recorded prefix).")
    ] = None,
    record_from_installed: Annotated[
        bool,
        typer.Option(
            help="For recorded datasets without a prefix fingerprint, take it from the installed copy "
            "(verified against the catalog sha256 first) and store it in the catalog."
        ),
    ] = False,
) -> None:
    """Re-simulate the first episode of every recipe segment and match the catalog's prefix fingerprint.

    Seconds instead of the hours of a full rebuild: a changed checkpoint, simulator or recipe shows up here.
    A return that differs only in an episode where a greedy decision ties within float32 rounding is reported,
    not failed: another CPU's matrix kernels can break that tie the other way.
    """
    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.datasets.integrity import verified_digest
    from spin_bench.datasets.minari_io import DatasetIntegrityError, is_installed, local_dataset_dir
    from spin_bench.pipeline.catalog_edit import edit_catalog
    from spin_bench.pipeline.fingerprint import check_prefix, prefix_from_installed

    catalog = load_catalog()
    if record_from_installed:
        missing = [i for i in (dataset_ids or catalog.dataset_ids()) if catalog.dataset(i).sha256 is not None]
        missing = [i for i in missing if "prefix" not in catalog.dataset(i).raw]
        for dataset_id in missing:
            ds = catalog.dataset(dataset_id)
            if not is_installed(dataset_id):
                raise ValueError(f"{dataset_id} has no prefix fingerprint and is not installed locally to take it from")
            data_dir = local_dataset_dir(dataset_id) / "data"
            verified_digest(dataset_id, catalog=catalog, recompute=True)
            prefix = prefix_from_installed(ds, data_dir)
            with edit_catalog(catalog.path) as fresh:
                fresh.record_prefix(dataset_id, prefix)
            typer.echo(f"{dataset_id}: prefix of {len(prefix['returns'])} episodes recorded ({prefix['sha256'][:16]})")
        catalog = load_catalog()
    ids = dataset_ids or [i for i in catalog.dataset_ids() if "prefix" in catalog.dataset(i).raw]
    if not ids:
        raise ValueError("no dataset in the catalog has a recorded prefix yet (spin-bench-maintain record ID)")
    bad = []
    for dataset_id in ids:
        entry, ds = catalog.lookup(dataset_id)
        recorded = ds.raw.get("prefix")
        if recorded is None:
            raise ValueError(f"{dataset_id} has no recorded prefix (record it with spin-bench-maintain record)")
        problems, notes = check_prefix(entry, ds)
        returns = ", ".join(f"{r:.1f}" for r in recorded["returns"])
        verdict = "MISMATCH" if problems else "OK, but for float32 rounding on this CPU" if notes else "OK"
        typer.echo(f"{dataset_id}: {verdict} (returns {returns})")
        for line in problems + notes:
            typer.echo(f"  {line}")
        bad += [dataset_id] if problems else []
    if bad:
        raise DatasetIntegrityError(f"{', '.join(bad)} no longer reproduce their recorded prefix")


@app.command("card")
def card_cmd(
    out: Annotated[str | None, typer.Option(help="Card file (default: README.md next to the catalog).")] = None,
    check: Annotated[bool, typer.Option(help="Only check that the card is up to date (exit 1 if not).")] = False,
) -> None:
    """Write the dataset card (a Markdown table of every task and dataset) generated from the catalog."""
    from pathlib import Path

    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.pipeline.card import render_card, write_card

    catalog = load_catalog()
    path = Path(out) if out else catalog.path.parent / "README.md"
    if check:
        if not path.is_file() or path.read_text() != render_card(catalog):
            raise ValueError(f"{path} is out of date with {catalog.path}; run spin-bench-maintain card")
        typer.echo(f"{path}: up to date")
        return
    changed = write_card(catalog, path)
    typer.echo(f"{path}: {'written' if changed else 'unchanged'}")


def _frozen_reason(entry) -> str | None:
    recorded = [ds.id for ds in entry.datasets.values() if ds.sha256 is not None]
    if recorded:
        return f"{entry.label} already has recorded datasets ({', '.join(recorded)}), whose data depends on it"
    return None


@app.command("reference")
def reference_cmd(
    task: Annotated[str, typer.Argument(help="Task, e.g. cheetah-run.")],
    bins: BinsOpt = 3,
    which: Annotated[str, typer.Option(help="random, expert or both.")] = "both",
    episodes: Annotated[int | None, typer.Option(help="Episodes (default: the catalog's, 100).")] = None,
    workers: Annotated[int, typer.Option(help="Simulation processes (default: one per core).")] = 0,
    write: Annotated[bool, typer.Option(help="Store the result in the catalog.")] = True,
) -> None:
    """Measure reference scores (uniform random policy / greedy expert snapshot) and store them in the catalog."""
    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.pipeline.catalog_edit import edit_catalog
    from spin_bench.pipeline.reference import measure_reference

    if which not in ("random", "expert", "both"):
        raise ValueError(f"--which {which!r} is not allowed; use random, expert or both")
    catalog = load_catalog()
    entry = catalog.task_entry(task, bins)
    frozen = _frozen_reason(entry)
    if write and frozen:
        raise ValueError(f"the reference scores cannot change: {frozen}; use --no-write to only measure")
    for w in ("random", "expert") if which == "both" else (which,):
        m = measure_reference(task, bins, w, episodes=episodes, workers=workers or None, catalog=catalog)
        fields = m.catalog_fields()
        typer.echo(
            f"{entry.label} {w} reference: {fields['value']:.3f} +- {fields['std']:.3f} over {fields['episodes']}"
        )
        if write:
            with edit_catalog(catalog.path) as fresh:
                fresh.set_reference(task, bins, w, **fields)
            typer.echo(f"written to {catalog.path}")


@app.command("register-checkpoints")
def register_checkpoints_cmd(
    task: Annotated[str, typer.Argument(help="Task, e.g. cheetah-run.")],
    bins: BinsOpt = 3,
) -> None:
    """Record the sha256, env steps and eval return of a task's behaviour snapshots in the catalog.

    The snapshots must be at their catalog paths (``spin-bench-maintain behaviour export RUN --dest
    datasets/checkpoints/<task>/bins<M>`` puts them there, with a behaviour.json that this command cross-checks).
    """
    import json

    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.datasets.snapshot import sha256_file
    from spin_bench.pipeline.behaviour.policy import check_numpy_forward, load_behaviour_policy
    from spin_bench.pipeline.catalog_edit import edit_catalog

    catalog = load_catalog()
    entry = catalog.task_entry(task, bins)
    env = entry.make_env()
    obs_dim, nvec = env.observation_space.shape[0], [int(m) for m in env.action_space.nvec]
    env.close()
    frozen = _frozen_reason(entry)
    recorded: dict[str, dict] = {}
    for name, cp in entry.checkpoints.items():
        if not cp.path.is_file():
            typer.echo(f"{entry.label} checkpoint {name}: {cp.relpath} not present, skipped")
            continue
        sha = sha256_file(cp.path)
        if frozen and cp.sha256 is not None and sha != cp.sha256:
            raise ValueError(f"checkpoint {name!r} cannot change: {frozen}; add a new checkpoint name and version")
        record_path = cp.path.parent / "behaviour.json"
        snap = json.loads(record_path.read_text()).get("snapshots", {}).get(name, {}) if record_path.is_file() else {}
        if snap.get("sha256") not in (None, sha):
            raise ValueError(f"{cp.relpath} has sha256 {sha[:16]}..., {record_path} says {snap['sha256'][:16]}...")
        policy = load_behaviour_policy(cp.path)
        repeat = int(policy.metadata.get("action_repeat", 1))
        if repeat != 1:  # datasets roll a snapshot out one greedy action per env step
            raise ValueError(
                f"{cp.relpath} was trained with action_repeat={repeat}; datasets act once per env step, so only "
                "action_repeat=1 snapshots can be registered"
            )
        check_numpy_forward(cp.path, policy)
        arch = policy.network.architecture()
        if arch["obs_dim"] != obs_dim or list(arch["nvec"]) != nvec:
            raise ValueError(
                f"{cp.relpath} is a network for obs_dim={arch['obs_dim']}, nvec={arch['nvec']}; {entry.label} needs "
                f"obs_dim={obs_dim}, nvec={nvec}"
            )
        fields = {
            "sha256": sha,
            "env_steps": snap.get("env_steps", policy.metadata.get("env_steps")),
            "eval_return": snap.get("eval_return_mean", policy.metadata.get("eval_return")),
        }
        recorded[name] = fields
        typer.echo(
            f"{entry.label} checkpoint {name}: {cp.relpath} sha256 {sha[:16]}..., env steps {fields['env_steps']}, "
            f"eval return {fields['eval_return']}"
        )
    if not recorded:
        raise FileNotFoundError(
            f"no checkpoint of {entry.label} is present at its catalog path "
            f"({', '.join(cp.relpath for cp in entry.checkpoints.values())}, relative to {catalog.path.parent})"
        )
    with edit_catalog(catalog.path) as fresh:
        for name, fields in recorded.items():
            fresh.set_checkpoint(task, bins, name, **fields)
    typer.echo(f"recorded in {catalog.path}")
