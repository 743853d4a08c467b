"""Densities of one space group in the second paper's aligned form: DCT blocks of the reduced asymmetric unit.

A density rho (e/A^3) on a cell's grid becomes x = rho / (N / V) (dimensionless, mean 1; N the valence
electron count, V the volume), then its reduced field x' (``codec.reduce_field``), whose AU box is DCT-II
transformed inside the group's envelope (``codec.dct_encode``). The weights |G| / R_m (orbit sizes) at the AU
points turn sums over the AU block into sums over the whole grid, so losses and metrics on the full grid need
no expansion (``generative.train.full_grid_terms``). Decoding: inverse DCT, crop to the grid's AU box, expand by the operators, times N / V.

The grid of a cell is the reference data's rule (``reference.engine.reference_grid``: spacing <= 0.1 A, a
multiple of 8, commensurate with the group), so a decoded density lands on the grid its reference had.

Two sources: the GPAW valence densities of a reference dataset (``reference_fields``), and cheap
pre-training densities, the free atoms' PAW valence densities superposed (``sad.paw_atoms``) on random
symmetric cells of the group (pyxtal; ``sad_fields``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pymatgen_elfml import io, symmetry
from pymatgen_elfml.generative.codec import au_box, dct_decode, dct_encode, expand_field, reduce_field
from pymatgen_elfml.grid import grid_shape

GRID_SPACING, GRID_MULTIPLE = 0.1, 8  # Angstrom, as ``reference.engine.ReferenceSettings``


@dataclass
class AuField:
    """One density in the aligned AU form.

    Attributes:
        id, split, source: labels ("reference" or "sad" source; split "train" / "val" / "test").
        shape: the cell's grid.
        ops: the group's operators commensurate with the grid, in the cell's setting.
        coeffs: envelope-shaped float32 DCT of the reduced normalised density.
        stab: envelope-shaped float32 stabiliser counts R_m at the AU points, 0 elsewhere (orbit size
            len(ops) / R_m).
        scale: N / V in e/A^3 (rho = scale * x).
    """

    id: str
    split: str
    source: str
    shape: tuple[int, int, int]
    ops: symmetry.SeitzOps
    coeffs: np.ndarray
    stab: np.ndarray
    scale: float


def cell_grid(cell: io.Cell) -> tuple[tuple[int, int, int], symmetry.SeitzOps]:
    """(grid, commensurate operators) of a validated cell under the reference data's grid rule."""
    ops = symmetry.seitz_ops(cell)
    shape = grid_shape(cell.lattice, GRID_SPACING, ops, GRID_MULTIPLE)
    return shape, symmetry.commensurate_ops(shape, ops)


def stabilisers(shape: tuple[int, int, int], ops: symmetry.SeitzOps, env: tuple[int, int, int]) -> np.ndarray:
    """(env) float32: R_m at the AU representatives inside the AU box, 0 elsewhere."""
    rep, stab = symmetry.grid_orbits(shape, ops)
    own = rep == np.arange(rep.size).reshape(shape)
    full = np.where(own, stab, 0)
    out = np.zeros(env, dtype=np.float32)
    box = au_box(shape, ops)
    out[: box[0], : box[1], : box[2]] = full[: box[0], : box[1], : box[2]]
    return out


def encode(rho: np.ndarray, ops: symmetry.SeitzOps, env: tuple[int, int, int], scale: float) -> np.ndarray:
    """(env) float32 DCT coefficients of rho / scale (``rho``: (n0, n1, n2) symmetric density, e/A^3)."""
    return dct_encode(reduce_field(np.asarray(rho, float) / scale, ops), ops, env).astype(np.float32)


def decode(coeffs: np.ndarray, shape: tuple[int, int, int], ops: symmetry.SeitzOps, scale: float) -> np.ndarray:
    """(n0, n1, n2) float64 density in e/A^3 from envelope coefficients: exactly symmetric by construction."""
    return scale * expand_field(dct_decode(np.asarray(coeffs, float), shape, ops), ops)


def make_field(fid: str, split: str, source: str, rho: np.ndarray, cell: io.Cell, n_valence: float,
               env: tuple[int, int, int]) -> AuField:
    """The aligned form of density ``rho`` of ``cell`` (its grid must be the cell's ``cell_grid``).

    Raises:
        ValueError: a grid other than the rule's, or an AU box outside the envelope.
    """
    shape, ops = cell_grid(cell)
    if tuple(rho.shape) != shape:
        raise ValueError(f"{fid}: density grid {rho.shape} is not the grid {shape} of the reference rule")
    scale = n_valence / abs(np.linalg.det(cell.lattice))
    return AuField(fid, split, source, shape, ops, encode(rho, ops, env, scale), stabilisers(shape, ops, env), scale)


def reference_cells(folder, spacegroup: int) -> Iterator[tuple[dict, object, str]]:
    """(manifest row, record, split) of every record of ``folder`` in ``spacegroup``."""
    import json
    from pathlib import Path

    from pymatgen_elfml.reference.store import read_jsonl, read_record

    folder = Path(folder)
    splits = json.loads((folder / "splits.json").read_text())
    for row in read_jsonl(folder / "manifest.jsonl"):
        if int(row["spacegroup"]) == spacegroup:
            yield row, read_record(folder / row["file"], sha256=row["sha256"]), splits.get(row["id"], "train")


def random_cells(spacegroup: int, n: int, seed: int, max_atoms: int = 8) -> Iterator[tuple[str, io.Cell]]:
    """``n`` random cells of ``spacegroup`` (pyxtal, primitive standard setting as pymatgen writes it), one or two
    metals of the PAW table, volumes scaled by a random 0.45-1.1 factor (compressed templates included)."""
    from ase.data import chemical_symbols
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from pyxtal import pyxtal

    from pymatgen_elfml.sad.paw_atoms import load_table

    metals = sorted(load_table()[1])
    rng = np.random.default_rng(seed)
    made = tries = 0
    while made < n and tries < 50 * n:
        tries += 1
        species = [int(z) for z in rng.choice(metals, size=int(rng.integers(1, 3)), replace=False)]
        counts = [int(rng.choice([1, 2, 3, 4, 6, 8, 12])) for _ in species]
        crystal = pyxtal()
        try:
            crystal.from_random(3, spacegroup, [chemical_symbols[z] for z in species], counts, factor=1.0,
                                random_state=int(rng.integers(2**31 - 1)))
        except Exception:  # pyxtal raises many kinds for incompatible Wyckoff counts: try others
            continue
        if not crystal.valid:
            continue
        structure = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.01).get_primitive_standard_structure()
        if len(structure) > max_atoms or SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number() != spacegroup:
            continue
        structure.scale_lattice(structure.volume * float(rng.uniform(0.45, 1.1)))
        made += 1
        yield f"sad-{spacegroup}-{seed}-{made:05d}", io.validate(structure)


def build_fields(data, spacegroup: int, n_sad: int, max_grid: int, seed: int,
                 envelope: tuple[int, int, int] | None = None) -> tuple[dict[str, list[AuField]], tuple[int, int, int], dict]:
    """The group's aligned fields: {"train", "val", "test": reference densities, "sad": generated ones}, the
    envelope (``envelope`` if given, e.g. a trained VAE's; else the largest AU box of the reference training
    fields on grids <= ``max_grid``) and counts of what was left out (grids above ``max_grid``, AU boxes
    outside the envelope).

    Raises:
        ValueError: no reference training density of this group.
    """
    from pymatgen_elfml.sad.paw_atoms import paw_superposition

    refs = []
    for row, rec, split in reference_cells(data, spacegroup):
        cell = io.validate(rec.structure)
        refs.append((row["id"], split, np.asarray(rec.rho, float), cell, float(row["n_valence"])))
    small = [r for r in refs if max(r[2].shape) <= max_grid]
    train_boxes = [au_box(r[2].shape, cell_grid(r[3])[1]) for r in small if r[1] == "train"]
    if not train_boxes:
        raise ValueError(f"no reference training density of space group {spacegroup} on grids <= {max_grid} in {data}")
    env = tuple(int(b) for b in (envelope if envelope is not None else np.max(train_boxes, axis=0)))
    out: dict[str, list[AuField]] = {"train": [], "val": [], "test": [], "sad": []}
    skipped = {"grid_above_max": len(refs) - len(small), "outside_envelope": 0}
    for fid, split, rho, cell, n_val in small:
        try:
            out[split].append(make_field(fid, split, "reference", rho, cell, n_val, env))
        except ValueError:
            skipped["outside_envelope"] += 1
    for fid, cell in random_cells(spacegroup, n_sad, seed):
        shape = cell_grid(cell)[0]
        if max(shape) > max_grid:
            continue
        rho = paw_superposition(cell.lattice, cell.frac, cell.numbers, shape)
        try:
            out["sad"].append(make_field(fid, "sad", "sad", rho, cell, float(rho.mean() * abs(np.linalg.det(cell.lattice))), env))
        except ValueError:
            continue
    return out, env, skipped
