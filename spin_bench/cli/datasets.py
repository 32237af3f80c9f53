"""``spin-bench datasets ...``: list, inspect, build, download, publish and verify the offline datasets."""

from __future__ import annotations

from typing import Annotated

import typer

from spin_bench.cli._common import CliErrorsGroup

app = typer.Typer(no_args_is_help=True, cls=CliErrorsGroup)  # exit codes and error lines: spin_bench.errors

RemoteOpt = Annotated[
    str | None, typer.Option(help="Remote, gcp://<bucket> or hf://<org> (default: $MINARI_REMOTE, else the catalog's)")
]
IdsArg = Annotated[list[str], typer.Argument(help="Dataset ids, e.g. spin/cheetah-run/expert-v0.")]
BinsOpt = Annotated[int, typer.Option(help="Bins per action dimension.")]


def _console():
    from rich.console import Console

    return Console()


def _fmt(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _remote_ids(remote: str | None, offline: bool, catalog) -> tuple[set[str] | None, list[str]]:
    """Ids present on the configured remotes (None: no remote configured or --offline) and any problems."""
    from spin_bench.datasets.remote import RemoteUnreachableError, remote_dataset_ids, resolve_remotes

    if offline:
        return None, []
    remotes = resolve_remotes(remote, catalog)
    if not remotes:
        return None, []
    found: set[str] = set()
    problems = []
    for r in remotes:
        try:
            found |= remote_dataset_ids(r)
        except RemoteUnreachableError as e:
            problems.append(f"{r} cannot be reached ({e})")
    return found, problems


@app.command("list")
def list_cmd(
    task: Annotated[str | None, typer.Option(help="Only this task, e.g. cheetah-run.")] = None,
    bins: Annotated[int | None, typer.Option(help="Only this bin count.")] = None,
    remote: RemoteOpt = None,
    offline: Annotated[bool, typer.Option(help="Do not ask any remote.")] = False,
) -> None:
    """Table of every catalog dataset: size, return statistics, and whether it is local, remote, buildable."""
    from rich.table import Table

    from spin_bench.datasets.build import build_blockers
    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.datasets.minari_io import is_installed

    catalog = load_catalog()
    on_remote, problems = _remote_ids(remote, offline, catalog)
    table = Table(title=f"spin-bench datasets ({catalog.path})")
    for col, justify in (
        ("id", "left"),
        ("transitions", "right"),
        ("episodes", "right"),
        ("mean return", "right"),
        ("normalized", "right"),
        ("local", "center"),
        ("remote", "center"),
        ("buildable", "center"),
    ):
        # The id is what users copy: on a narrow terminal it folds onto more lines instead of being cut.
        table.add_column(
            col, justify=justify, overflow="fold" if col == "id" else "ellipsis", min_width=24 if col == "id" else None
        )
    shown = 0
    for entry in catalog:
        if (task is not None and entry.task != task) or (bins is not None and entry.bins != bins):
            continue
        for ds in entry.datasets.values():
            stats = ds.stats or {}
            remote_cell = "-" if on_remote is None else ("yes" if ds.id in on_remote else "no")
            if problems and ds.id not in (on_remote or set()):
                remote_cell = "?"
            table.add_row(
                ds.id,
                f"{ds.size:,}",
                f"{ds.episodes:,}",
                _fmt(stats.get("return_mean")),
                _fmt(stats.get("normalized_return_mean")),
                "yes" if is_installed(ds.id) else "no",
                remote_cell,
                "no" if build_blockers(entry, ds) else "yes",
            )
            shown += 1
    if not shown:
        raise ValueError(f"no catalog dataset matches task={task!r} bins={bins!r}")
    console = _console()
    console.print(table)
    for p in problems:
        console.print(f"[yellow]remote: {p}[/yellow]")


@app.command("info")
def info_cmd(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id, e.g. spin/cheetah-run/expert-v0.")],
    remote: RemoteOpt = None,
    offline: Annotated[bool, typer.Option(help="Do not ask any remote.")] = False,
) -> None:
    """Everything about one dataset: env, recipe, checkpoints, reference scores, sha256, local/remote state."""
    from rich.table import Table

    from spin_bench.datasets.build import build_blockers, describe_recipe
    from spin_bench.datasets.catalog import expert_status, expert_target, load_catalog
    from spin_bench.datasets.minari_io import is_installed, local_dataset_dir

    catalog = load_catalog()
    entry, ds = catalog.lookup(dataset_id)
    on_remote, problems = _remote_ids(remote, offline, catalog)
    table = Table(show_header=False, title=dataset_id)
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # sha256 and paths are copied: fold them, never cut them
    rows = [
        ("task", f"{entry.task}, {entry.bins} bins per action dimension"),
        ("env", f"gymnasium.make({entry.env_id!r}{''.join(f', {k}={v!r}' for k, v in entry.env_kwargs.items())})"),
        ("quality", ds.quality),
        ("size", f"{ds.size:,} transitions, {ds.episodes:,} episodes of {entry.max_episode_steps} steps"),
        ("recipe", describe_recipe(entry, ds) + (f" (= {' + '.join(ds.concat)})" if ds.concat else "")),
        ("segments", "; ".join(f"{s.policy}: seeds {s.seed}..{s.seed + s.episodes - 1}" for s in ds.segments)),
    ]
    for name in sorted(ds.policies() - {"random"}):
        cp = entry.checkpoints[name]
        sha = cp.sha256[:16] + "..." if cp.sha256 else "-"
        detail = f"{cp.relpath}, {cp.status()}, sha256 {sha}, env steps {cp.env_steps}, eval return {cp.eval_return}"
        rows.append((f"checkpoint {name}", detail))
    for which in ("random", "expert"):
        ref = entry.reference[which]
        rows.append(
            (f"reference {which}", f"{_fmt(ref.value, 2)} (mean over {ref.episodes} episodes, seed {ref.seed})")
        )
    target = expert_target(entry)
    if target is not None:
        rows.append(("expert target", f"{target:,.2f}: {expert_status(entry)}"))
    paper = entry.paper_reference or {}
    if paper:
        rows.append(("paper reference", f"random {paper.get('random')}, expert {paper.get('expert')} (not ours)"))
    prefix = ds.raw.get("prefix")
    if prefix:
        rows.append(
            (
                "prefix",
                f"returns {', '.join(f'{r:.1f}' for r in prefix['returns'])} "
                f"(spin-bench datasets check-prefix {dataset_id})",
            )
        )
    stats = ds.stats or {}
    if stats:
        rows.append(
            (
                "returns",
                f"mean {_fmt(stats.get('return_mean'))}, std {_fmt(stats.get('return_std'))}, "
                f"min {_fmt(stats.get('return_min'))}, max {_fmt(stats.get('return_max'))}, "
                f"normalized {_fmt(stats.get('normalized_return_mean'))}",
            )
        )
        if "return_mean_by_policy" in stats:
            rows.append(("by policy", ", ".join(f"{k} {v:,.1f}" for k, v in stats["return_mean_by_policy"].items())))
    rows.append(("sha256", ds.sha256 or "not recorded yet"))
    rows.append(("local", str(local_dataset_dir(dataset_id)) if is_installed(dataset_id) else "not installed"))
    if on_remote is not None:
        rows.append(("remote", "yes" if dataset_id in on_remote else ("?" if problems else "no")))
    blockers = build_blockers(entry, ds)
    rows.append(("buildable", "yes" if not blockers else "no: " + "; ".join(blockers)))
    for k, v in rows:
        table.add_row(k, v)
    console = _console()
    console.print(table)
    for p in problems:
        console.print(f"[yellow]remote: {p}[/yellow]")


@app.command("build")
def build_cmd(
    dataset_ids: IdsArg,
    workers: Annotated[int, typer.Option(help="Simulation processes (default: one per core).")] = 0,
    force: Annotated[bool, typer.Option(help="Replace an installed copy.")] = False,
    record: Annotated[
        bool, typer.Option(help="Write the sha256 and statistics into the catalog if it has none.")
    ] = False,
    allow_mismatch: Annotated[
        bool, typer.Option(help="Install even if the sha256 differs from the catalog's (not the published data).")
    ] = False,
) -> None:
    """Build datasets locally from their catalog recipes (Minari hdf5 in Minari's data dir)."""
    from spin_bench.datasets.build import build_dataset

    for dataset_id in dataset_ids:
        r = build_dataset(
            dataset_id, workers=workers or None, force=force, record=record, allow_mismatch=allow_mismatch
        )
        match = {None: "not in the catalog yet", True: "matches the catalog", False: "DIFFERS from the catalog"}
        typer.echo(
            f"{dataset_id}: {r.stats['transitions']:,} transitions in {r.seconds:.1f} s "
            f"({r.stats['transitions'] / r.seconds:,.0f} steps/s), mean return {r.stats['return_mean']:.1f}, "
            f"sha256 {r.sha256} ({match[r.matches_catalog]}{', recorded' if r.recorded else ''}) -> {r.path}"
        )


@app.command("download")
def download_cmd(
    dataset_ids: IdsArg,
    remote: RemoteOpt = None,
    force: Annotated[bool, typer.Option(help="Replace an installed copy.")] = False,
) -> None:
    """Download datasets with Minari, verify them against the catalog sha256, and install them."""
    from spin_bench.datasets.remote import download_dataset

    for dataset_id in dataset_ids:
        path = download_dataset(dataset_id, remote=remote, force=force)
        typer.echo(f"{dataset_id}: verified and installed at {path}")


@app.command("publish")
def publish_cmd(
    dataset_ids: IdsArg,
    remote: RemoteOpt = None,
    token: Annotated[
        str | None, typer.Option(help="gcp: service-account key file; hf: API token (default: anonymous).")
    ] = None,
) -> None:
    """Upload verified local datasets to a Minari remote (never replaces a published dataset)."""
    from spin_bench.datasets.remote import publish_dataset

    for dataset_id in dataset_ids:
        target = publish_dataset(dataset_id, remote=remote, token=token)
        typer.echo(f"{dataset_id}: published to {target}")


@app.command("verify")
def verify_cmd(dataset_ids: IdsArg) -> None:
    """Hash installed datasets (arrays and metadata) and check them against the catalog sha256."""
    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.datasets.integrity import verified_digest
    from spin_bench.datasets.minari_io import DatasetIntegrityError, is_installed

    catalog = load_catalog()
    failures = []
    for dataset_id in dataset_ids:
        ds = catalog.dataset(dataset_id)
        if not is_installed(dataset_id):
            raise ValueError(f"{dataset_id} is not installed locally")
        try:
            digest = verified_digest(dataset_id, catalog=catalog, recompute=True)
        except DatasetIntegrityError as e:
            failures.append(str(e))
            continue
        if ds.sha256 is None:
            typer.echo(f"{dataset_id}: sha256 {digest} (the catalog has none recorded)")
        else:
            typer.echo(f"{dataset_id}: OK ({digest})")
    if failures:
        raise DatasetIntegrityError("; ".join(failures))


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
    from spin_bench.datasets.catalog import edit_catalog, load_catalog
    from spin_bench.datasets.fingerprint import check_prefix, prefix_from_installed
    from spin_bench.datasets.integrity import verified_digest
    from spin_bench.datasets.minari_io import DatasetIntegrityError, is_installed, local_dataset_dir

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
        raise ValueError("no dataset in the catalog has a recorded prefix yet (build one with --record)")
    bad = []
    for dataset_id in ids:
        entry, ds = catalog.lookup(dataset_id)
        recorded = ds.raw.get("prefix")
        if recorded is None:
            raise ValueError(f"{dataset_id} has no recorded prefix (its build was not recorded with --record)")
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

    from spin_bench.datasets.card import render_card, write_card
    from spin_bench.datasets.catalog import load_catalog

    catalog = load_catalog()
    path = Path(out) if out else catalog.path.parent / "README.md"
    if check:
        if not path.is_file() or path.read_text() != render_card(catalog):
            raise ValueError(f"{path} is out of date with {catalog.path}; run spin-bench datasets card")
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
    from spin_bench.datasets.catalog import edit_catalog, load_catalog
    from spin_bench.datasets.scores import measure_reference

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

    The snapshots must be at their catalog paths (``spin-bench behaviour export RUN --dest
    datasets/checkpoints/<task>/bins<M>`` puts them there, with a behaviour.json that this command cross-checks).
    """
    import json

    from spin_bench.behaviour.policy import load_behaviour_policy, sha256_file
    from spin_bench.datasets.catalog import edit_catalog, load_catalog

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
