"""Download through Minari's own remotes (``gcp://<bucket>`` or ``hf://<org>``), with verification.

Which remote: an explicit ``remote=`` argument, else ``$MINARI_REMOTE``, else the catalog's ``remotes`` list
(mirrors, tried in order). The data uses Minari's layout, so ``MINARI_REMOTE=gcp://<bucket> minari download
spin/cheetah-run/expert-v0`` works too. spin-bench's download additionally goes through a hidden staging folder,
checks the content digest (arrays and metadata: ``spin_bench/datasets/digest.py``) against the catalog's sha256 and
installs only data that matches.

For ``gcp://`` Minari uses an anonymous client unless given a service-account key file (``token``); it honours
``STORAGE_EMULATOR_HOST`` (the tests run a loopback ``gcp-storage-emulator``). ``hf://`` needs ``minari[hf]``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys

from spin_bench.datasets.build import build_blockers
from spin_bench.datasets.catalog import Catalog, DatasetEntry, TaskEntry, load_catalog
from spin_bench.datasets.digest import dataset_digest
from spin_bench.datasets.integrity import record_digest
from spin_bench.datasets.minari_io import (
    DamagedDatasetError,
    DatasetError,
    DatasetIntegrityError,
    install_staged,
    is_installed,
    local_dataset_dir,
    minari_env,
    staging_area,
)

_REMOTE_RE = re.compile(r"^(gcp|hf)://[A-Za-z0-9][A-Za-z0-9._-]*$")
PROBE_TIMEOUT_S = 15.0


class DatasetUnavailableError(DatasetError):
    """No configured remote has the dataset (or none can be reached). ``cause``: why, in a few words."""

    def __init__(self, message: str, cause: str = "") -> None:
        super().__init__(message)
        self.cause = cause


class RemoteUnreachableError(DatasetError):
    """A remote did not answer, or refused access."""


def validate_remote(remote: str) -> str:
    if not isinstance(remote, str) or not _REMOTE_RE.fullmatch(remote):
        raise ValueError(f"remote {remote!r} is not allowed; use 'gcp://<bucket>' or 'hf://<organisation>'")
    return remote


def resolve_remotes(remote: str | None = None, catalog: Catalog | None = None) -> list[str]:
    """The remotes to use, in order: ``remote``, else ``$MINARI_REMOTE``, else the catalog's mirrors."""
    if remote:
        return [validate_remote(remote)]
    env = os.environ.get("MINARI_REMOTE")
    if env:
        return [validate_remote(env)]
    catalog = catalog if catalog is not None else load_catalog()
    return [validate_remote(r) for r in catalog.remotes]


def build_hint(entry: TaskEntry, ds: DatasetEntry) -> str:
    blockers = build_blockers(entry, ds)
    if not blockers:
        return f"build it locally with: spin-bench datasets build {ds.id}"
    return f"building it locally (spin-bench datasets build {ds.id}) is not possible yet: {'; '.join(blockers)}"


# -- presence probes (short timeouts, no retries: Minari's own calls retry for minutes on a dead host) -------------
def _gcp_bucket(name: str, token: str | None):
    try:
        import google.cloud.storage as gcs
    except ImportError:
        raise DatasetError("gcp:// remotes need google-cloud-storage: pip install 'spin-bench[gcs]'") from None

    client = gcs.Client.create_anonymous_client() if token is None else gcs.Client.from_service_account_json(token)
    return client, gcs.Bucket(client, name)


def _hf_api(token: str | None):
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise DatasetError("hf:// remotes need huggingface_hub: pip install 'minari[hf]'") from None
    return HfApi(token=token)


def remote_has(remote: str, dataset_id: str, *, token: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether ``remote`` holds ``dataset_id`` (its ``data/metadata.json``); RemoteUnreachableError if it can't say."""
    scheme, name = validate_remote(remote).split("://", 1)
    if scheme == "gcp":
        try:
            _, bucket = _gcp_bucket(name, token)
            return bool(bucket.blob(f"{dataset_id}/data/metadata.json").exists(timeout=timeout, retry=None))
        except Exception as e:  # transport, auth and API errors all mean "cannot tell"
            raise RemoteUnreachableError(short_reason(e)) from None
    api = _hf_api(token)
    repo, _, rest = dataset_id.partition("/")
    try:
        return bool(api.file_exists(f"{name}/{repo}", f"{rest}/data/metadata.json", repo_type="dataset"))
    except Exception as e:  # huggingface_hub raises many kinds; all mean "cannot tell"
        raise RemoteUnreachableError(short_reason(e)) from None


def remote_dataset_ids(remote: str, *, prefix: str = "spin/", token: str | None = None) -> set[str]:
    """Every dataset id under ``prefix`` on ``remote`` (one listing); RemoteUnreachableError if it can't be listed."""
    scheme, name = validate_remote(remote).split("://", 1)
    if scheme == "gcp":
        try:
            client, bucket = _gcp_bucket(name, token)
            blobs = client.list_blobs(bucket, prefix=prefix, timeout=PROBE_TIMEOUT_S, retry=None)
            suffix = "/data/metadata.json"
            return {b.name[: -len(suffix)] for b in blobs if b.name.endswith(suffix)}
        except Exception as e:
            raise RemoteUnreachableError(short_reason(e)) from None
    try:
        from minari.storage.remotes import get_cloud_storage

        _hf_api(token)
        return set(get_cloud_storage(remote, token).list_datasets(prefix=prefix))
    except DatasetError:
        raise
    except Exception as e:
        raise RemoteUnreachableError(short_reason(e)) from None


def short_reason(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# -- download -------------------------------------------------------------------------------------------------------
def download_dataset(
    dataset_id: str,
    *,
    remote: str | None = None,
    force: bool = False,
    catalog: Catalog | None = None,
):
    """Download ``dataset_id`` with Minari from the first remote that has it, verify it, then install it.

    Raises DatasetIntegrityError when the downloaded data does not match the catalog's sha256 (nothing is installed)
    and DatasetUnavailableError when no remote has it or none can be reached (the message says how to build it).
    Returns the installed dataset's folder.
    """
    import minari

    catalog = catalog if catalog is not None else load_catalog()
    entry, ds = catalog.lookup(dataset_id)
    remotes = resolve_remotes(remote, catalog)
    if ds.sha256 is None:
        raise DatasetUnavailableError(
            f"{dataset_id} has no sha256 in the catalog yet, so a download could not be verified; "
            + build_hint(entry, ds),
            cause="no sha256 in the catalog yet",
        )
    if is_installed(dataset_id) and not force:
        raise DatasetError(
            f"{dataset_id} is already installed at {local_dataset_dir(dataset_id)}; pass --force to replace it"
        )
    if not remotes:
        raise DatasetUnavailableError(
            f"{dataset_id}: no remote is configured (set MINARI_REMOTE=gcp://<bucket> or hf://<org>, or list mirrors "
            f"in the catalog's 'remotes'); {build_hint(entry, ds)}",
            cause="no remote is configured",
        )
    problems: list[str] = []
    tampered = False
    for r in remotes:
        try:
            if not remote_has(r, dataset_id):
                problems.append(f"{r} does not have it")
                continue
        except RemoteUnreachableError as e:
            problems.append(f"{r} cannot be reached ({e})")
            continue
        with staging_area() as stage:
            print(f"Downloading {dataset_id} from {r} ...", file=sys.stderr)
            try:
                # Minari's own messages name a staging folder and "Farama servers": keep them out of the way.
                with minari_env(datasets_path=stage, remote=r), contextlib.redirect_stdout(io.StringIO()):
                    minari.download_dataset(dataset_id, force_download=True)
            except Exception as e:  # Minari raises ValueError for version trouble, client errors for transport
                problems.append(f"downloading from {r} failed ({short_reason(e)})")
                continue
            try:
                digest = dataset_digest(stage / dataset_id / "data", dataset_id=dataset_id)
            except DamagedDatasetError as e:
                problems.append(f"the copy on {r} is unreadable ({e.reason})")
                tampered = True
                continue
            if digest != ds.sha256:
                problems.append(
                    f"the copy on {r} has sha256 {digest[:16]}..., the catalog expects {ds.sha256[:16]}... "
                    "(corrupt or changed)"
                )
                tampered = True
                continue
            record_digest(stage / dataset_id, digest)  # moves with the folder: the first run need not rehash
            return install_staged(stage, dataset_id, force=force)
    detail = "; ".join(problems)
    if tampered:
        raise DatasetIntegrityError(
            f"{dataset_id} was refused: {detail}; nothing was installed. {build_hint(entry, ds).capitalize()}"
        )
    raise DatasetUnavailableError(f"{dataset_id} cannot be downloaded: {detail}; {build_hint(entry, ds)}", cause=detail)
