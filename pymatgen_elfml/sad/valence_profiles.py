"""Superposed valence densities: per-element radial profiles fitted to the reference valence densities.

The SAD is an all-electron density; the reference (GPAW's pseudo valence density with compensation
charges, like a VASP CHGCAR) is not, and is negative near the nuclei of some setups. Every element Z gets a
profile g_Z(r) = sum_k c_Zk N(r; w_k): a combination, with coefficients of either sign, of normalised
Gaussians of fixed widths w_k. The superposition sum over atoms of g_Z(|r - r_atom|) is linear in the
coefficients, which minimise sum over sampled training voxels of ((rho - sum c F) / mean(rho))^2 (errors
relative to each cell's mean density; ridge-regularised normal equations). It is the base a learned
density corrects, fitted to bulk metals: not the free atoms' PAW valence densities (not built here). The
coefficients alternate in sign and reach +-20 e, most profiles go slightly negative beyond ~2-5 A (it
cancels in bulk cells; in open structures or vacuum the base can dip below zero) and their integrals are
not constrained to the valence counts (Ta 13.9 vs 13): the predictions are rescaled to the count anyway.
A future table should constrain the integrals and penalise negative tails.

    python -m pymatgen_elfml.sad.valence_profiles data/v2 --out valence_profiles_v2.json  # fit on the train split

A shipped table is never overwritten (the density models that use it would silently change): a refit
goes to a new file, read by a new feature set.

The table ships as ``data/valence_profiles_v1.json`` (widths, coefficients, provenance). An element it
lacks borrows the profile of the fitted element nearest in atomic number (the lower one on a tie), scaled
by the ratio of their valence counts (``valence.SETUP_VALENCE``): on data/v2's test split, whose La is not
in the table, that fallback gives NMAE 0.057 against 0.251 for the mean of the fitted profiles (the density
models also warn for elements outside their training data).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from pymatgen_elfml.sad.rasterize import gaussian_basis

PROFILE_FILE = "valence_profiles_v1.json"
WIDTHS = (0.2, 0.3, 0.45, 0.65, 0.9, 1.25, 1.75, 2.5)  # Angstrom


def fit_profiles(cells: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], widths=WIDTHS,
                 per_structure: int = 20000, ridge: float = 1e-6, seed: int = 0) -> dict[int, np.ndarray]:
    """Least-squares profile coefficients {Z: (len(widths),)} from (lattice, frac, numbers, rho) cells,
    rho (n0, n1, n2) in e/A^3 on the cell's grid; ``per_structure`` random voxels of each cell enter the fit."""
    rng, k = np.random.default_rng(seed), len(widths)
    blocks: dict[tuple[int, int], np.ndarray] = {}
    rhs: dict[int, np.ndarray] = {}
    for lattice, frac, numbers, rho in cells:
        basis = gaussian_basis(lattice, frac, numbers, rho.shape, widths)
        rho = np.asarray(rho, dtype=np.float64).reshape(-1)
        pick = rng.choice(rho.size, size=min(per_structure, rho.size), replace=False)
        weight = 1.0 / rho.mean() ** 2
        cols = {z: f.reshape(k, -1)[:, pick] for z, f in basis.items()}
        for za, fa in cols.items():
            rhs[za] = rhs.get(za, 0.0) + weight * fa @ rho[pick]
            for zb, fb in cols.items():
                blocks[(za, zb)] = blocks.get((za, zb), 0.0) + weight * fa @ fb.T
    elements = sorted(rhs)
    if not elements:
        raise ValueError("no cells to fit valence profiles to")
    pos = {z: slice(i * k, (i + 1) * k) for i, z in enumerate(elements)}
    a, b = np.zeros((len(elements) * k,) * 2), np.zeros(len(elements) * k)
    for (za, zb), block in blocks.items():
        a[pos[za], pos[zb]] = block
    for z, v in rhs.items():
        b[pos[z]] = v
    a += ridge * np.trace(a) / len(b) * np.eye(len(b))
    coef = np.linalg.solve(a, b)
    return {z: coef[pos[z]] for z in elements}


@lru_cache(maxsize=1)
def load_profiles() -> tuple[tuple[float, ...], dict[int, np.ndarray]]:
    """(widths in A, {Z: coefficients}) of the shipped table."""
    path = resources.files("pymatgen_elfml.sad").joinpath("data", PROFILE_FILE)
    try:
        table = json.loads(path.read_text())
        return tuple(table["widths"]), {int(z): np.asarray(c, dtype=np.float64) for z, c in table["coefficients"].items()}
    except (OSError, KeyError, ValueError) as exc:
        raise RuntimeError(f"the shipped valence profile table {path} is missing or corrupted: {exc}") from exc


def valence_superposition(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, shape: tuple[int, int, int],
                          profiles: tuple[tuple[float, ...], dict[int, np.ndarray]] | None = None) -> np.ndarray:
    """(n0, n1, n2) superposed valence profiles on the grid (e/A^3, up to the fit's charge error; the
    density models divide it by its mean). ``profiles``: (widths, coefficients), default the shipped table."""
    widths, coef = profiles or load_profiles()
    basis = gaussian_basis(lattice, frac, numbers, shape, widths)
    return sum(np.tensordot(coef[z] if z in coef else borrowed_profile(z, coef), f, axes=1) for z, f in basis.items())


def borrowed_profile(z: int, coef: dict[int, np.ndarray]) -> np.ndarray:
    """The coefficients for an element without its own: the nearest fitted element's (lower Z on a tie),
    times the ratio of their valence counts (1 where either has no entry in ``SETUP_VALENCE``)."""
    from ase.data import chemical_symbols

    from pymatgen_elfml.valence import SETUP_VALENCE

    near = min(coef, key=lambda k: (abs(k - z), k))
    ours, theirs = SETUP_VALENCE.get(chemical_symbols[z]), SETUP_VALENCE.get(chemical_symbols[near])
    return coef[near] * (ours / theirs if ours and theirs else 1.0)


def split_cells(folder: Path, split: str):
    """The (lattice, frac, numbers, rho) cells of one split of a reference dataset folder; rho (n0, n1, n2) in
    e/A^3 (the fitting input of ``fit_profiles`` and of ``paw_radial.fit_table``)."""
    from pymatgen_elfml import io
    from pymatgen_elfml.reference.store import read_jsonl, read_record

    splits = json.loads((folder / "splits.json").read_text())
    for row in read_jsonl(folder / "manifest.jsonl"):
        if splits.get(row["id"]) == split:
            rec = read_record(folder / row["file"], sha256=row["sha256"])
            cell = io.validate(rec.structure)
            yield cell.lattice, cell.frac, cell.numbers, rec.rho


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.sad.valence_profiles", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="reference dataset folder (manifest.jsonl, splits.json, records/)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", type=Path, required=True, help="a new table file (an existing one is refused)")
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: shipped tables are never overwritten (models read them); "
                         "write a new file and register a feature set that reads it")
    coef = fit_profiles(split_cells(args.data, args.split))
    from pymatgen_elfml.io import write_text_atomic

    table = {"widths": list(WIDTHS), "coefficients": {str(z): c.tolist() for z, c in sorted(coef.items())},
             "meta": {"fitted_on": f"{args.data.as_posix()} split {args.split}", "units": "e per atom per Gaussian",
                      "command": f"python -m pymatgen_elfml.sad.valence_profiles {args.data.as_posix()} --split {args.split}"}}
    write_text_atomic(args.out, json.dumps(table, indent=1))
    print(f"wrote {args.out}: {len(coef)} elements")


if __name__ == "__main__":
    main()
