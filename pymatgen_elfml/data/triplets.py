"""The first paper's file format: ``stem_sad.npy``, ``stem_elf.npy``, ``stem_sym.npy`` (+ density).

For each structure ``stem`` a folder holds

- ``stem_sad.npy``: (n0, n1, n2) float32 SAD in e/Angstrom^3 on the ELF's grid;
- ``stem_elf.npy``: (n0, n1, n2) float32 ELF;
- ``stem_sym.npy``: (R, 4, 4) float64 Seitz matrices [[R, t], [0, 1]] of the cell as given;
- ``stem_rho.npy``: (n0, n1, n2) float32 valence density in e/Angstrom^3 (when known);
- ``stem_meta.json``: structure (pymatgen dict), SAD smoothing, source, labels.

Every file is written to a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from pymatgen_elfml import io, symmetry
from pymatgen_elfml.grid import voxel_spacing
from pymatgen_elfml.grid import SAD_SIGMA
from pymatgen_elfml.sad import sad_density
from pymatgen_elfml.sad.rasterize import MIN_SIGMA_VOXELS


@dataclass(frozen=True)
class Triplet:
    """One sample: SAD input, ELF target, Seitz operators, optional density, metadata."""

    stem: str
    sad: np.ndarray
    elf: np.ndarray
    sym: np.ndarray
    rho: np.ndarray | None
    meta: dict

    @property
    def numbers(self) -> np.ndarray:
        """(n_atoms,) atomic numbers of the structure in ``meta`` (one species per site)."""
        from pymatgen.core import Element

        return np.array([Element(site["species"][0]["element"]).Z for site in self.meta["structure"]["sites"]])


def sad_sigma_for(lattice: np.ndarray, shape: tuple[int, int, int]) -> float:
    """The models' SAD smoothing (0.2 A), widened to 1.5 voxels on coarse grids."""
    return max(SAD_SIGMA, MIN_SIGMA_VOXELS * float(voxel_spacing(lattice, shape).max()))


def grid_scale(meta: dict) -> tuple[float, float]:
    """(largest voxel spacing, SAD smoothing) of a triplet in Angstrom; the spacing is computed from the
    structure and grid for triplets written before it was recorded."""
    spacing = meta.get("spacing")
    if spacing is None:
        spacing = float(voxel_spacing(np.array(meta["structure"]["lattice"]["matrix"]), tuple(meta["grid"])).max())
    return float(spacing), float(meta["sad_sigma"])


def check_grid_scale(metas: list[dict], native_spacing: float, sad_sigma: float, tol: float = 0.02) -> None:
    """Refuse training data a model of this native spacing and SAD smoothing would misread.

    Every triplet must have the model's SAD smoothing (relative ``tol``) and voxels no coarser
    than ``native_spacing`` (grids are rounded up to multiples of 2**depth, so finer is normal) and
    not finer than half of it.

    Raises:
        ValueError: naming how many triplets differ, an example stem, their values and the model's.
    """
    problems, scales = [], [(m.get("stem", "?"), *grid_scale(m)) for m in metas]
    for label, bad in (
        (f"SAD smoothing != the model's sad_sigma {sad_sigma:.3f} A",
         lambda sp, sg: abs(sg - sad_sigma) > tol * sad_sigma),
        (f"voxels coarser than the model's native_spacing {native_spacing:.3f} A",
         lambda sp, sg: sp > native_spacing * (1 + tol)),
        (f"voxels finer than half the native_spacing {native_spacing:.3f} A",
         lambda sp, sg: sp < 0.5 * native_spacing)):
        hits = [(stem, sp, sg) for stem, sp, sg in scales if bad(sp, sg)]
        if hits:
            stem, sp, sg = hits[0]
            problems.append(f"{len(hits)} with {label} (e.g. {stem}: spacing {sp:.3f} A, smoothing {sg:.3f} A)")
    if problems:
        raise ValueError("training data and model settings disagree: " + "; ".join(problems) + ". Prepare the "
                         "triplets on the model's grid, or set native_spacing/sad_sigma to what the data has; "
                         "do not mix data of different grids")


def check_fields(stem: str, cell, elf: np.ndarray, rho: np.ndarray | None) -> None:
    """Refuse fields that must not become training data: NaN/inf, ELF outside [0, 1], or a density
    whose electron count is not positive or exceeds the atoms' total (sum of Z)."""
    if not np.all(np.isfinite(elf)):
        raise ValueError(f"{stem}: the ELF has {int(np.sum(~np.isfinite(elf)))} NaN/inf values")
    if elf.min() < -1e-6 or elf.max() > 1 + 1e-6:
        raise ValueError(f"{stem}: ELF values outside [0, 1] (min {elf.min():.3g}, max {elf.max():.3g})")
    if rho is None:
        return
    if not np.all(np.isfinite(rho)):
        raise ValueError(f"{stem}: the density has {int(np.sum(~np.isfinite(rho)))} NaN/inf values")
    electrons, total_z = float(rho.mean()) * cell.volume, int(cell.numbers.sum())
    if not 0 < electrons <= 1.01 * total_z:
        raise ValueError(f"{stem}: the density integrates to {electrons:.3g} electrons; expected between 0 and the "
                         f"{total_z} electrons of the atoms")


def make_triplet(stem: str, structure: Structure, elf: np.ndarray, rho: np.ndarray | None = None,
                 labels: dict | None = None) -> Triplet:
    """Build the SAD and Seitz operators for a structure whose ELF (and density) are known.

    Args:
        stem: file stem (filesystem-safe id).
        structure: the structure the fields belong to.
        elf: (n0, n1, n2) ELF on the structure's grid.
        rho: (n0, n1, n2) valence density in e/Angstrom^3, or None.
        labels: extra metadata (source, split, ...).
    """
    cell = io.validate(structure)
    shape = tuple(np.shape(elf))
    if rho is not None and np.shape(rho) != shape:
        raise ValueError(f"{stem}: density grid {np.shape(rho)} differs from the ELF grid {shape}")
    check_fields(stem, cell, np.asarray(elf), None if rho is None else np.asarray(rho))
    sigma = sad_sigma_for(cell.lattice, shape)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, shape, sigma)
    ops = symmetry.seitz_ops(cell)
    spacing = float(voxel_spacing(cell.lattice, shape).max())
    meta = {"structure": structure.as_dict(), "sad_sigma": sigma, "spacing": spacing, "grid": list(shape), "n_ops": len(ops),
            "grid_commensurate": symmetry.is_commensurate(shape, ops), **(labels or {})}
    return Triplet(stem, sad.astype(np.float32), np.asarray(elf, dtype=np.float32), ops.as_matrices(),
                   None if rho is None else np.asarray(rho, dtype=np.float32), meta)


def write_triplet(folder: str | os.PathLike, triplet: Triplet) -> None:
    """Write the triplet files (and density, metadata) of one sample into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, array in (("sad", triplet.sad), ("elf", triplet.elf), ("sym", triplet.sym), ("rho", triplet.rho)):
        if array is not None:
            with io.atomic_path(folder / f"{triplet.stem}_{suffix}.npy", suffix=".npy") as tmp:
                np.save(tmp, array)
    io.write_text_atomic(folder / f"{triplet.stem}_meta.json", json.dumps(triplet.meta))


def discover(folder: str | os.PathLike) -> list[str]:
    """Stems with all three of ``_sad.npy``, ``_elf.npy`` and ``_sym.npy`` in ``folder``, sorted."""
    folder = Path(folder)
    stems = {p.name[: -len("_elf.npy")] for p in folder.glob("*_elf.npy")}
    return sorted(s for s in stems if (folder / f"{s}_sad.npy").is_file() and (folder / f"{s}_sym.npy").is_file())


def read_triplet(folder: str | os.PathLike, stem: str, mmap: bool = True) -> Triplet:
    """Open one sample (memory-mapped by default).

    Raises:
        ValueError: missing files, mismatched grids or a malformed Seitz array (the message names the file).
    """
    folder = Path(folder)
    mode = "r" if mmap else None
    try:
        elf = np.load(folder / f"{stem}_elf.npy", mmap_mode=mode)
        sad = np.load(folder / f"{stem}_sad.npy", mmap_mode=mode)
        sym = np.load(folder / f"{stem}_sym.npy")
        rho_path = folder / f"{stem}_rho.npy"
        rho = np.load(rho_path, mmap_mode=mode) if rho_path.is_file() else None
        meta_path = folder / f"{stem}_meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"sample {stem} in {folder} is unreadable: {exc}") from exc
    if sad.shape != elf.shape or elf.ndim != 3 or (rho is not None and rho.shape != elf.shape):
        raise ValueError(f"sample {stem}: grids differ (sad {sad.shape}, elf {elf.shape})")
    symmetry.SeitzOps.from_matrices(sym)  # validates (R, 4, 4) and integer rotations
    return Triplet(stem, sad, elf, sym, rho, meta)
