"""Compact storage of reference fields: one compressed ``.npz`` record per structure, in the asymmetric unit.

ELF in [0, 1] is stored as uint16 codes (step 1/65535: max error 7.6e-6, far below any model
error we expect, >= 1e-2). The density is stored as float32 (relative error 6e-8): PAW
pseudo-densities with compensation charges have negative regions near nuclei, so a log
quantisation would change the electron count.

Format 3 (current) stores both fields only at one representative grid point per orbit of the
structure's exact space group (spglib at symprec 1e-5, the operators commensurate with the grid,
``symmetry.asymmetric_unit``), plus the points where the DFT field breaks that symmetry
numerically (GPAW's ELF does by up to ~4e-4 in some cells; its hcp densities by a few float32 ulp
at up to ~40 % of the points), as integer differences of bit patterns from the orbit's value, so
the full grid is reconstructed bit for bit. Every array is stored byte-shuffled (``_shuffle``:
the k-th bytes of all values together, as HDF5's shuffle filter does), which deflate compresses
~15 % better for float32 densities. The operators are stored in the record: decoding needs neither
spglib nor its version. ``meta["fields_sha256"]`` holds the sha256 of the full-grid uint16 ELF
codes and float32 density as written, so any reconstruction can be checked against the original.
Formats 1 (full grids, ``elf_q``/``rho``; data/v1 before migration) and 2 (format 3 without the
shuffle, the density's symmetry-breaking points as raw float32) are still read;
``migrate_record`` converts both.
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

from pymatgen_elfml import symmetry
from pymatgen_elfml.io import atomic_path, validate, write_text_atomic

Q = 65535.0
FORMAT = 3
# format 3: the dtype of each stored (byte-shuffled) array
_DTYPES = {"elf_au": np.uint16, "elf_fix": np.uint16, "rho_au": np.float32, "rho_fix": np.uint32,
           "elf_fix_step": np.uint32, "rho_fix_step": np.uint32}
STORAGE_SYMPREC = 1e-5  # Angstrom: the structure's exact symmetry, not the looser one used for grids


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


def _codes(elf: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(elf, 0, 1) * Q).astype(np.uint16)


def fields_sha256(elf_codes: np.ndarray, rho: np.ndarray) -> dict[str, str]:
    """sha256 of the full-grid uint16 ELF codes and float32 density (C order)."""
    return {"elf_q": hashlib.sha256(np.ascontiguousarray(elf_codes, dtype=np.uint16).tobytes()).hexdigest(),
            "rho": hashlib.sha256(np.ascontiguousarray(rho, dtype=np.float32).tobytes()).hexdigest()}


def _storage_ops(structure: Structure, shape: tuple[int, int, int]) -> symmetry.SeitzOps:
    ops = symmetry.seitz_ops(validate(structure), symprec=STORAGE_SYMPREC)
    return symmetry.commensurate_ops(shape, ops)


def _shuffle(a: np.ndarray) -> np.ndarray:
    """(n,) array -> (itemsize, n) uint8: row k holds byte k of every value."""
    a = np.ascontiguousarray(a)
    return a.view(np.uint8).reshape(-1, a.itemsize).T.copy()


def _unshuffle(planes: np.ndarray, dtype) -> np.ndarray:
    """Inverse of ``_shuffle``: (itemsize, n) uint8 -> (n,) array of ``dtype``."""
    return np.ascontiguousarray(np.asarray(planes, dtype=np.uint8).T).view(dtype).reshape(-1)


def _au_arrays(structure: Structure, codes: np.ndarray, rho: np.ndarray) -> dict[str, np.ndarray]:
    """Format-3 arrays of full-grid fields; raises RecordError if they would not decode exactly."""
    ops = _storage_ops(structure, codes.shape)
    au, where = symmetry.asymmetric_unit(codes.shape, ops)
    arrays = {"format": np.array(FORMAT), "grid": np.array(codes.shape, dtype=np.int32),
              "ops_rot": ops.rotations.astype(np.int8), "ops_trans": ops.translations.astype(np.float64)}
    for name, field in (("elf", codes), ("rho", rho)):
        values, fix, fixed = symmetry.au_encode(field, au, where)
        if symmetry.au_decode(values, where, fix, fixed).tobytes() != np.ascontiguousarray(field).tobytes():
            raise RecordError(f"the asymmetric-unit form of {name} does not reconstruct the field")
        parts = {f"{name}_au": values, f"{name}_fix_step": fix, f"{name}_fix": fixed}
        arrays.update({key: _shuffle(np.asarray(a, dtype=_DTYPES[key])) for key, a in parts.items()})
    return arrays


def write_record(path: str | os.PathLike, record: Record) -> str:
    """Quantise ELF, store both fields in the asymmetric unit (format 3), atomically; returns the sha256.

    ``meta["fields_sha256"]`` is set to the hashes of the full-grid fields as quantised here.
    """
    path = Path(path)
    if not np.all(np.isfinite(record.elf)):
        raise RecordError(f"{path}: the ELF of {record.id} has NaN/inf values; not written")
    codes, rho = _codes(record.elf), np.asarray(record.rho, dtype=np.float32)
    meta = {"id": record.id, **record.meta, "fields_sha256": fields_sha256(codes, rho)}
    arrays = {**_au_arrays(record.structure, codes, rho),
              "structure": np.array(json.dumps(record.structure.as_dict())), "meta": np.array(json.dumps(meta))}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return sha256_file(path)


def _decode(npz) -> tuple[np.ndarray, np.ndarray]:
    """Full-grid (uint16 ELF codes, float32 density) of an open record of any format."""
    if "elf_q" in npz.files:  # format 1
        return np.array(npz["elf_q"], dtype=np.uint16), np.array(npz["rho"], dtype=np.float32)
    fmt = int(npz["format"])
    if fmt not in (2, FORMAT):
        raise ValueError(f"unknown record format {fmt}")
    ops = symmetry.SeitzOps(npz["ops_rot"].astype(int), npz["ops_trans"])
    _, where = symmetry.asymmetric_unit(tuple(int(n) for n in npz["grid"]), ops)
    if fmt == 2:
        return _decode_format2(npz, where)
    arrays = {key: _unshuffle(npz[key], dtype) for key, dtype in _DTYPES.items()}
    return tuple(symmetry.au_decode(arrays[f"{n}_au"], where, arrays[f"{n}_fix_step"], arrays[f"{n}_fix"])
                 for n in ("elf", "rho"))


def _decode_format2(npz, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Format 2: unshuffled arrays; the density's symmetry-breaking points hold raw float32 values."""
    elf = symmetry.au_decode(npz["elf_au"], where, npz["elf_fix_step"], npz["elf_fix"])
    rho = symmetry.au_decode(npz["rho_au"], where)
    rho.reshape(-1)[np.cumsum(npz["rho_fix_step"].astype(np.int64))] = npz["rho_fix"]
    return elf, rho


def read_record(path: str | os.PathLike, sha256: str | None = None) -> Record:
    """Load a record (format 1 or 2) as full grids; with ``sha256`` the file must match it.

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
            codes, rho = _decode(npz)
            structure = Structure.from_dict(json.loads(str(npz["structure"])))
            meta = json.loads(str(npz["meta"]))
    except (OSError, KeyError, ValueError, IndexError, EOFError, zipfile.BadZipFile) as exc:
        raise RecordError(f"record {path} is unreadable: {exc}") from exc
    if codes.shape != rho.shape:
        raise RecordError(f"record {path}: ELF {codes.shape} and density {rho.shape} grids differ")
    return Record(meta.pop("id"), structure, codes.astype(np.float32) / np.float32(Q), rho, meta)


def record_species(path: str | os.PathLike) -> list[str]:
    """The element symbols of a record's sites, read without decoding its fields (RecordError if unreadable)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            sites = json.loads(str(npz["structure"]))["sites"]
        return [site["species"][0]["element"] for site in sites]
    except (OSError, KeyError, ValueError, IndexError, EOFError, zipfile.BadZipFile) as exc:
        raise RecordError(f"record {path} is unreadable: {exc}") from exc


def record_format(path: str | os.PathLike) -> int:
    """1 (full grids), 2 or 3 (asymmetric unit) for a readable record file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return 1 if "elf_q" in npz.files else int(npz["format"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise RecordError(f"record {path} is unreadable: {exc}") from exc


def migrate_record(path: str | os.PathLike, sha256: str | None = None) -> tuple[str, dict[str, str]]:
    """Rewrite an older record (format 1 or 2) in the current format in place, checked bit for bit.

    The new record's meta keeps ``migrated_from_sha256`` (the old file's sha256) and
    ``fields_sha256`` (the full-grid fields before migration).

    Returns:
        the new file's sha256 and the ``fields_sha256`` of the fields (before = after).

    Raises:
        RecordError: unreadable input, or a migrated file that does not reconstruct the original.
    """
    path = Path(path)
    before = read_record(path, sha256)
    old_sha = sha256_file(path)
    hashes = fields_sha256(_codes(before.elf), before.rho)
    staged = path.with_name(path.stem + ".migrating.npz")
    meta = {**before.meta, "migrated_from_sha256": old_sha}
    write_record(staged, Record(before.id, before.structure, before.elf, before.rho, meta))
    after = read_record(staged)
    if fields_sha256(_codes(after.elf), after.rho) != hashes or after.meta.get("fields_sha256") != hashes:
        staged.unlink()
        raise RecordError(f"migration of {path} does not reconstruct the original fields")
    os.replace(staged, path)
    return sha256_file(path), hashes


def read_jsonl(path: Path) -> list[dict]:
    """All complete JSON lines of a file (a torn last line from a crash is ignored)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def write_jsonl(path: Path, rows) -> None:
    """Replace a JSON-lines file by ``rows`` atomically (manifest rewrites)."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def append_jsonl(path: Path, row: dict) -> None:
    """Append one JSON line and flush it to disk (manifest and failure logs)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
