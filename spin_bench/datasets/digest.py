"""The content digest of a dataset (the catalog's ``sha256``), format ``spin-bench-digest-v2``.

v2 covers every array and every ``metadata.json`` field that decides how the data is loaded or evaluated. It is
built on the v1 digest, so a v1 digest recorded in a catalog migrates to v2 without the data:

    v2 = SHA-256( b"spin-bench-digest-v2\\n" + v1 hex digest + b"\\n" + canonical JSON of METADATA_FIELDS )

**v1** (:func:`arrays_digest`): SHA-256 over

1. ``b"spin-bench-digest-v1\\n"``;
2. a canonical JSON header with ``dataset_id``, ``env_id``, ``env_kwargs``, ``max_episode_steps`` (from the stored
   env spec), ``ref_min_score``, ``ref_max_score``, ``total_episodes`` and ``total_steps`` (from ``metadata.json``);
3. for each episode in order: canonical JSON ``{"episode": i, "seed": s}``, then for each of observations, actions,
   rewards, terminations, truncations: canonical JSON ``{"key", "dtype", "shape"}`` (little-endian numpy dtype
   string), then the array's C-order little-endian bytes.

**The metadata fields** (:data:`METADATA_FIELDS`, one JSON object with every key present, ``null`` when absent):
``action_space`` and ``observation_space`` (Minari's serialized spaces, parsed: they give ``Transitions.nvec`` and
how Minari decodes the arrays), ``env_spec`` and ``eval_env_spec`` (Gymnasium's ``EnvSpec.to_json()``, parsed:
``recover_environment()`` rebuilds these), ``data_format`` and ``jpeg_encoding`` (how Minari reads the file).
JSON strings are parsed before hashing, so only their content counts, not their spacing or key order.

Left out on purpose: fields that change with the library versions or machine that wrote the data and that no
loading or evaluation reads (``minari_version``, which Minari checks by itself; ``dataset_size``;
``requirements``, which only prints warnings; ``spin_bench.versions``, ``built_at``, ``checkpoints.*.evaluation``),
the digest's own record (``spin_bench.sha256``, ``spin_bench.digest_format``), and descriptive text that nothing
reads (``description``, ``algorithm_name``, ``author``, ``author_email``, ``code_permalink``,
``num_episodes_average_score``, the rest of ``spin_bench``). Per-episode labels in the HDF5 file (policy, epsilon,
segment seed and index) are descriptive too; each episode's reset seed is covered.

Neither version covers the HDF5 file layout, so the same data written by another h5py version has the same digest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from spin_bench.datasets.minari_io import ARRAY_KEYS, iter_episode_arrays, read_metadata, reading

if TYPE_CHECKING:
    from spin_bench.datasets.catalog import TaskEntry

DIGEST_FORMAT = "spin-bench-digest-v2"
ARRAYS_FORMAT = "spin-bench-digest-v1"
"""The digest of the arrays and the v1 header, which v2 builds on."""

METADATA_FIELDS = ("action_space", "observation_space", "env_spec", "eval_env_spec", "data_format", "jpeg_encoding")
_JSON_STRING_FIELDS = ("action_space", "observation_space", "env_spec", "eval_env_spec")
_MINARI_DATA_FORMAT = "hdf5"
_MINARI_JPEG_ENCODING = True
"""What ``write_episodes`` gets from ``minari.create_dataset_from_buffers``: hdf5, and Minari's default encoding."""


def canonical_json(obj) -> bytes:
    """Sorted keys, no spaces, newline-terminated."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _little_endian(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and not np.little_endian):
        a = a.astype(a.dtype.newbyteorder("<"))
    return a


def _header(meta: dict) -> dict:
    spec = json.loads(meta["env_spec"]) if meta.get("env_spec") else {}
    return {
        "dataset_id": meta.get("dataset_id"),
        "env_id": spec.get("id"),
        "env_kwargs": spec.get("kwargs"),
        "max_episode_steps": spec.get("max_episode_steps"),
        "ref_min_score": meta.get("ref_min_score"),
        "ref_max_score": meta.get("ref_max_score"),
        "total_episodes": meta.get("total_episodes"),
        "total_steps": meta.get("total_steps"),
    }


def arrays_digest(data_dir: Path, *, dataset_id: str | None = None) -> str:
    """The ``spin-bench-digest-v1`` sha256 of a dataset's arrays and header; unreadable data raises
    DatasetIntegrityError naming the dataset and the fix."""
    data_dir = Path(data_dir)
    with reading(data_dir, dataset_id):
        meta = read_metadata(data_dir)
        h = hashlib.sha256()
        h.update(ARRAYS_FORMAT.encode() + b"\n")
        h.update(canonical_json(_header(meta)))
        for i, (seed, _, arrays) in enumerate(iter_episode_arrays(data_dir, with_attrs=False, dataset_id=dataset_id)):
            h.update(canonical_json({"episode": i, "seed": seed}))
            for key in ARRAY_KEYS:
                a = _little_endian(arrays[key])
                h.update(canonical_json({"key": key, "dtype": a.dtype.str, "shape": list(a.shape)}))
                h.update(a.tobytes())
    return h.hexdigest()


def metadata_fields(meta: dict) -> dict:
    """The :data:`METADATA_FIELDS` of a ``metadata.json`` document, JSON strings parsed (ValueError if malformed)."""
    out = {}
    for key in METADATA_FIELDS:
        value = meta.get(key)
        if key in _JSON_STRING_FIELDS and value is not None:
            if not isinstance(value, str):
                raise ValueError(f"metadata.json field {key} is {type(value).__name__}, expected a JSON string")
            value = json.loads(value)
        out[key] = value
    return out


def combine(v1_digest: str, fields: dict) -> str:
    """The v2 digest from the v1 digest and the metadata fields: the migration rule."""
    if sorted(fields) != sorted(METADATA_FIELDS):
        raise ValueError(f"metadata fields {sorted(fields)}; expected exactly {sorted(METADATA_FIELDS)}")
    h = hashlib.sha256()
    h.update(DIGEST_FORMAT.encode() + b"\n")
    h.update(v1_digest.encode() + b"\n")
    h.update(canonical_json(fields))
    return h.hexdigest()


def dataset_digest(data_dir: Path, *, dataset_id: str | None = None) -> str:
    """The ``spin-bench-digest-v2`` sha256 of an installed (or staged) dataset; unreadable data raises
    DatasetIntegrityError naming the dataset and the fix."""
    data_dir = Path(data_dir)
    v1 = arrays_digest(data_dir, dataset_id=dataset_id)
    with reading(data_dir, dataset_id):
        fields = metadata_fields(read_metadata(data_dir))
    return combine(v1, fields)


def expected_metadata_fields(entry: TaskEntry) -> dict:
    """The :data:`METADATA_FIELDS` that a build of any dataset of ``entry`` writes, computed from the catalog alone.

    ``build_dataset`` hands ``entry.make_env()``'s spec (as env and eval env) and spaces to
    ``minari.create_dataset_from_buffers(data_format="hdf5")``, which stores ``serialize_space(space)`` and
    ``spec.to_json()``; this does the same without writing anything.
    """
    from minari.serialization import serialize_space

    env = entry.make_env()
    try:
        spec = json.loads(env.spec.to_json())
        return {
            "action_space": json.loads(serialize_space(env.action_space)),
            "observation_space": json.loads(serialize_space(env.observation_space)),
            "env_spec": spec,
            "eval_env_spec": spec,
            "data_format": _MINARI_DATA_FORMAT,
            "jpeg_encoding": _MINARI_JPEG_ENCODING,
        }
    finally:
        env.close()


def migrate_v1(v1_digest: str, entry: TaskEntry) -> str:
    """The v2 digest of a dataset of ``entry`` whose recorded v1 digest is ``v1_digest`` (no data needed)."""
    return combine(v1_digest, expected_metadata_fields(entry))
