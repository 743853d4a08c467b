"""Compact storage of reference fields: one compressed ``.npz`` record per structure.

ELF in [0, 1] is stored as uint16 (step 1/65535: max error 7.6e-6, far below any model
error we expect, >= 1e-2). The density is stored as float32 (relative error 6e-8): PAW
pseudo-densities with compensation charges have negative regions near nuclei, so a log
quantisation would change the electron count.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from pymatgen_elfml.io import atomic_path

Q = 65535.0


class RecordError(ValueError):
    """A record file is missing, corrupted or does not match its manifest checksum."""


@dataclass(frozen=True)
class Record:
    """One reference structure with its fields.

    Attributes:
        id: the candidate id.
        structure: the structure the fields belong to.
        elf: (n0, n1, n2) float32 ELF.
        rho: (n0, n1, n2) float32 valence density, e/Angstrom^3.
        meta: calculation metadata (settings, wall time, ...) and candidate labels.
    """

    id: str
    structure: Structure
    elf: np.ndarray
    rho: np.ndarray
    meta: dict


def sha256_file(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_record(path: str | os.PathLike, record: Record) -> str:
    """Quantise and write ``record`` atomically; returns the file's sha256."""
    path = Path(path)
    arrays = {
        "elf_q": np.rint(np.clip(record.elf, 0, 1) * Q).astype(np.uint16),
        "rho": np.asarray(record.rho, dtype=np.float32),
        "structure": np.array(json.dumps(record.structure.as_dict())),
        "meta": np.array(json.dumps({"id": record.id, **record.meta})),
    }
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return sha256_file(path)


def read_record(path: str | os.PathLike, sha256: str | None = None) -> Record:
    """Load a record; with ``sha256`` the file must match it.

    Raises:
        RecordError: missing file, checksum mismatch or unreadable content.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"record {path} not found")
    if sha256 is not None and sha256_file(path) != sha256:
        raise RecordError(f"record {path} does not match its checksum (corrupted or changed)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            rho = np.array(npz["rho"], dtype=np.float32)
            elf = npz["elf_q"].astype(np.float32) / np.float32(Q)
            structure = Structure.from_dict(json.loads(str(npz["structure"])))
            meta = json.loads(str(npz["meta"]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise RecordError(f"record {path} is unreadable: {exc}") from exc
    if elf.shape != rho.shape:
        raise RecordError(f"record {path}: ELF {elf.shape} and density {rho.shape} grids differ")
    return Record(meta.pop("id"), structure, elf, rho, meta)
