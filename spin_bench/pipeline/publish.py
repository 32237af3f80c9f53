"""Publish a recorded dataset to a Minari remote (``gcp://<bucket>`` or ``hf://<org>``), never replacing one.

The data goes up in Minari's layout, so users download it with ``spin-bench datasets download`` (verified against
the catalog's sha256) or with Minari itself.
"""

from __future__ import annotations

import contextlib
import io
import sys

from spin_bench.datasets.catalog import Catalog, load_catalog
from spin_bench.datasets.integrity import forget_digest, verified_digest
from spin_bench.datasets.minari_io import (
    DatasetError,
    DatasetIntegrityError,
    is_installed,
    local_dataset_dir,
    minari_env,
)
from spin_bench.datasets.remote import RemoteUnreachableError, remote_has, resolve_remotes, short_reason


def publish_dataset(
    dataset_id: str,
    *,
    remote: str | None = None,
    token: str | None = None,
    catalog: Catalog | None = None,
) -> str:
    """Upload an installed, verified dataset with ``minari.upload_dataset``; returns the remote it went to.

    Refuses data whose digest differs from the catalog's sha256 (or has none recorded), and datasets the remote
    already holds: published data is never replaced (bump the id's version instead).
    ``token``: for gcp, a service-account key file (None: anonymous, as with emulators); for hf, an API token.
    """
    import minari

    catalog = catalog if catalog is not None else load_catalog()
    entry, ds = catalog.lookup(dataset_id)
    remotes = resolve_remotes(remote, catalog)
    if len(remotes) != 1:
        raise DatasetError(
            "say which remote to publish to: --remote gcp://<bucket> (or MINARI_REMOTE); "
            f"configured: {', '.join(remotes) or 'none'}"
        )
    target = remotes[0]
    if not is_installed(dataset_id):
        raise DatasetError(f"{dataset_id} is not installed locally; build or download it first")
    if ds.sha256 is None:
        raise DatasetError(
            f"{dataset_id} has no sha256 in the catalog; record one first (spin-bench-maintain record {dataset_id}) "
            "so that downloads can be verified"
        )
    try:
        verified_digest(dataset_id, catalog=catalog, recompute=True)
    except DatasetIntegrityError as e:
        raise DatasetIntegrityError(f"only the catalog's data can be published: {e}") from None
    try:
        present = remote_has(target, dataset_id, token=token)
    except RemoteUnreachableError as e:
        raise DatasetError(f"cannot publish {dataset_id}: {target} cannot be reached ({e})") from None
    if present:
        raise DatasetError(
            f"{dataset_id} is already on {target}; published data is never replaced: add a new version (-v1) "
            "to the catalog to publish different data"
        )
    print(f"Uploading {dataset_id} to {target} ...", file=sys.stderr)
    forget_digest(local_dataset_dir(dataset_id))  # Minari uploads the whole folder; the cache is this machine's
    with minari_env(remote=target), contextlib.redirect_stdout(io.StringIO()):
        try:
            minari.upload_dataset(dataset_id, token)
        except Exception as e:  # transport, auth and API errors (a missing bucket is a 404) all mean "not published"
            raise DatasetError(
                f"cannot publish {dataset_id}: uploading to {target} failed ({short_reason(e)}); check that it exists "
                "and that these credentials may write to it"
            ) from None
    if not remote_has(target, dataset_id, token=token):
        raise DatasetError(f"uploading {dataset_id} to {target} did not complete")
    return target
