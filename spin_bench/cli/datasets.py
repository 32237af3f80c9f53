"""``spin-bench datasets ...``: list, inspect, build, download and verify the offline datasets, and import the
original benchmark's files. Recording, publishing and reference measurement are the maintainers'
(``spin-bench-maintain``)."""

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


def _local_cell(dataset_id: str) -> str:
    """The 'local' column of ``datasets list``: no, yes, or local build (installed with --allow-mismatch)."""
    from spin_bench.datasets.integrity import local_build_digest
    from spin_bench.datasets.minari_io import is_installed

    if not is_installed(dataset_id):
        return "no"
    return "local build" if local_build_digest(dataset_id) is not None else "yes"


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
    """Table of every catalog dataset (size, return statistics, whether it is local, remote, buildable) and of every
    imported original-benchmark dataset."""
    from rich.table import Table

    from spin_bench.datasets.build import build_blockers
    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.datasets.original import import_metadata, imported_ids

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
                _local_cell(ds.id),
                remote_cell,
                "no" if build_blockers(entry, ds) else "yes",
            )
            shown += 1
    for name in imported_ids():  # not in the catalog: described by their import record
        record = import_metadata(name)["spin_bench"]
        if (task is not None and record["task"] != task) or (bins is not None and record["bins"] != bins):
            continue
        episodes = sum(record["import"]["episodes_ended_by"].values())
        table.add_row(name, f"{record['import']['transitions']:,}", f"{episodes:,}", "-", "-", "yes", "-", "imported")
        shown += 1
    if not shown:
        raise ValueError(f"no catalog or imported dataset matches task={task!r} bins={bins!r}")
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
    """Everything about one dataset: env, recipe, checkpoints, reference scores, sha256, local/remote state (an
    imported original-benchmark dataset: env, references and its import record)."""

    from spin_bench.datasets.build import build_blockers, describe_recipe
    from spin_bench.datasets.catalog import expert_status, expert_target, load_catalog
    from spin_bench.datasets.ids import is_original_id
    from spin_bench.datasets.integrity import local_build_digest
    from spin_bench.datasets.minari_io import is_installed, local_dataset_dir

    if is_original_id(dataset_id):
        _print_rows(dataset_id, _imported_rows(dataset_id), [])
        return
    catalog = load_catalog()
    entry, ds = catalog.lookup(dataset_id)
    on_remote, problems = _remote_ids(remote, offline, catalog)
    rows = [
        ("task", f"{entry.task}, {entry.bins} bins per action dimension"),
        ("env", f"gymnasium.make({entry.env_id!r}{''.join(f', {k}={v!r}' for k, v in entry.env_kwargs.items())})"),
        ("quality", ds.quality),
        ("size", f"{ds.size:,} transitions, {ds.episodes:,} episodes of {entry.max_episode_steps} steps"),
        ("recipe", describe_recipe(entry, ds) + (f" (= {' + '.join(ds.concat)})" if ds.concat else "")),
        ("segments", "; ".join(f"{s.policy}: seeds {s.seed}..{s.seed + s.episodes - 1}" for s in ds.segments)),
        (
            "recording kernels",
            f"{entry.recording_kernels} (builds decide near-ties as they did, on any CPU)"
            if entry.recording_kernels
            else "not named (builds use this CPU's numpy)",
        ),
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
                f"(spin-bench-maintain check-prefix {dataset_id})",
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
    local = str(local_dataset_dir(dataset_id)) if is_installed(dataset_id) else "not installed"
    if local_build_digest(dataset_id) is not None:
        local += " (local build: --allow-mismatch, not the published data)"
    rows.append(("local", local))
    if on_remote is not None:
        rows.append(("remote", "yes" if dataset_id in on_remote else ("?" if problems else "no")))
    blockers = build_blockers(entry, ds)
    rows.append(("buildable", "yes" if not blockers else "no: " + "; ".join(blockers)))
    _print_rows(dataset_id, rows, problems)


def _print_rows(title: str, rows: list[tuple[str, str]], problems: list[str]) -> None:
    from rich.table import Table

    table = Table(show_header=False, title=title)
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # sha256 and paths are copied: fold them, never cut them
    for k, v in rows:
        table.add_row(k, v)
    console = _console()
    console.print(table)
    for p in problems:
        console.print(f"[yellow]remote: {p}[/yellow]")


def _imported_rows(dataset_id: str) -> list[tuple[str, str]]:
    """The info rows of an imported original-benchmark dataset, from its import record and its episodes."""
    from spin_bench.datasets.minari_io import episode_returns, local_dataset_dir
    from spin_bench.datasets.original import import_metadata, read_import

    env_id, env_kwargs, references = read_import(dataset_id)  # DatasetError naming the fix when not imported
    record = import_metadata(dataset_id)["spin_bench"]
    imported = record["import"]
    returns = episode_returns(local_dataset_dir(dataset_id) / "data", dataset_id=dataset_id)
    normalized = references.normalize(returns.mean())
    return [
        ("task", f"{record['task']}, {record['bins']} bins per action dimension"),
        ("env", f"gymnasium.make({env_id!r}{''.join(f', {k}={v!r}' for k, v in env_kwargs.items())})"),
        ("quality", record["quality"]),
        ("size", f"{imported['transitions']:,} transitions, {returns.size:,} episodes"),
        ("episodes end by", ", ".join(f"{why} {n}" for why, n in imported["episodes_ended_by"].items() if n)),
        ("references", f"random {references.random:g}, expert {references.expert:g} ({references.source})"),
        (
            "returns",
            f"mean {_fmt(returns.mean())}, std {_fmt(returns.std())}, min {_fmt(returns.min())}, "
            f"max {_fmt(returns.max())}, normalized {_fmt(normalized)}",
        ),
        ("imported from", f"{imported['file']} ({imported['file_bytes']:,} bytes, sha256 {imported['file_sha256']})"),
        ("sha256", f"{record.get('sha256', 'not recorded')} (recorded at import)"),
        ("local", str(local_dataset_dir(dataset_id))),
        ("buildable", "no: imported data (spin-bench datasets import-original PATH)"),
    ]


@app.command("build")
def build_cmd(
    dataset_ids: IdsArg,
    workers: Annotated[int, typer.Option(help="Simulation processes (default: one per core).")] = 0,
    force: Annotated[bool, typer.Option(help="Replace an installed copy.")] = False,
    allow_mismatch: Annotated[
        bool, typer.Option(help="Install even if the sha256 differs from the catalog's (not the published data).")
    ] = False,
) -> None:
    """Build datasets locally from their catalog recipes (Minari hdf5 in Minari's data dir)."""
    from spin_bench.datasets.build import build_dataset

    for dataset_id in dataset_ids:
        r = build_dataset(dataset_id, workers=workers or None, force=force, allow_mismatch=allow_mismatch)
        match = {
            None: "not in the catalog yet",
            True: "matches the catalog",
            False: "DIFFERS from the catalog: installed as a local build, not the published data",
        }
        typer.echo(
            f"{dataset_id}: {r.stats['transitions']:,} transitions in {r.seconds:.1f} s "
            f"({r.stats['transitions'] / r.seconds:,.0f} steps/s), mean return {r.stats['return_mean']:.1f}, "
            f"sha256 {r.sha256} ({match[r.matches_catalog]}) -> {r.path}"
        )


@app.command("import-original")
def import_original_cmd(
    path: Annotated[
        str, typer.Argument(help="Folder holding the original benchmark's <bins>_bins folders (or one of them).")
    ],
    bins: Annotated[str | None, typer.Option(help="Only these bin counts, comma list (e.g. 3,10).")] = None,
    tasks: Annotated[str | None, typer.Option(help="Only these tasks, comma list (e.g. cheetah-run,dog-trot).")] = None,
    quality: Annotated[
        str | None, typer.Option(help="Only these levels: medium, expert, medium-expert, random-medium-expert.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace datasets imported before.")] = False,
) -> None:
    """Import the original benchmark's data files (the dmc_datasets layout) as Minari datasets original/....

    Each <bins>_bins/<domain>-<task>-<level> pickle becomes original/<domain>-<task>[-bins<M>]/<level>-v0, read
    without running any code it may hold, with the paper's reference scores and the original bin -> action mapping;
    train on it with `spin-bench run AGENT --task TASK --dataset original/<level>`.
    """
    from spin_bench.datasets.minari_io import is_installed, local_dataset_dir
    from spin_bench.datasets.original import find_original_files, import_original_file

    def split(text: str | None) -> list[str] | None:
        return None if text is None else [v.strip() for v in text.split(",") if v.strip()]

    bin_counts = split(bins)
    if bin_counts is not None and not all(b.isdigit() for b in bin_counts):
        raise ValueError(f"--bins {bins!r} is not allowed; give a comma list of bin counts such as 3,10")
    files, skipped = find_original_files(
        path, bins=bin_counts and [int(b) for b in bin_counts], tasks=split(tasks), qualities=split(quality)
    )
    for line in skipped:
        typer.echo(f"not importable: {line}")
    for file in files:
        name = file.dataset_id
        if is_installed(name) and not force:
            typer.echo(f"{name}: already imported at {local_dataset_dir(name)} (--force replaces it)")
            continue
        r = import_original_file(file, force=force)
        lengths = r.episode_lengths
        length_text = f"{lengths.min()}" if lengths.min() == lengths.max() else f"{lengths.min()}-{lengths.max()}"
        low, high = r.reference.random, r.reference.expert
        normalized = r.reference.normalize(r.returns.mean())
        typer.echo(
            f"{name}: {r.transitions:,} transitions in {lengths.size:,} episodes of {length_text} steps "
            f"(ended by: {', '.join(f'{why} {n}' for why, n in r.ended_by.items() if n)}; done flags stored as "
            f"truncations), mean episode return {r.returns.mean():.1f} (normalized {normalized:.1f} with the paper's "
            f"references {low} / {high}), sha256 {r.sha256} -> {r.path}"
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


@app.command("verify")
def verify_cmd(dataset_ids: IdsArg) -> None:
    """Hash installed datasets (arrays and metadata) and check them against the catalog sha256 (imported original
    datasets: against the sha256 recorded when they were imported)."""
    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.datasets.ids import is_original_id
    from spin_bench.datasets.integrity import verified_digest
    from spin_bench.datasets.minari_io import DatasetIntegrityError, is_installed

    catalog = load_catalog()
    failures = []
    for dataset_id in dataset_ids:
        ds = None if is_original_id(dataset_id) else catalog.dataset(dataset_id)  # imported: its import record
        if not is_installed(dataset_id):
            raise ValueError(f"{dataset_id} is not installed locally")
        try:
            digest = verified_digest(dataset_id, catalog=catalog, recompute=True, accept_local_build=True)
        except DatasetIntegrityError as e:
            failures.append(str(e))
            continue
        if ds is None:
            typer.echo(f"{dataset_id}: OK ({digest}, as recorded when it was imported)")
        elif ds.sha256 is None:
            typer.echo(f"{dataset_id}: sha256 {digest} (the catalog has none recorded)")
        elif digest != ds.sha256:  # accepted by verified_digest: a local build, intact
            typer.echo(
                f"{dataset_id}: OK as a local build ({digest}); the published data is {ds.sha256[:16]}..., "
                "so runs on this copy are not runs on the published data"
            )
        else:
            typer.echo(f"{dataset_id}: OK ({digest})")
    if failures:
        raise DatasetIntegrityError("; ".join(failures))
