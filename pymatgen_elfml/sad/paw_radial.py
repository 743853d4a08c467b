"""The PAW superposition with environment-dependent atomic corrections: a linear, atom-centred density base.

The free atoms' PAW valence densities superposed (``sad.paw_atoms``) miss how an atom's valence shell contracts,
expands or gains charge in its crystal environment. An oracle study on the validation split of data/v2 showed that
this part dominates what the forest of density-metals-v7 leaves: a radial correction around every atom, fitted to
each validation cell's own residual (7 Gaussians per species), lowers its NMAE from 0.0281 to 0.0072. Here that
correction is *predicted* from each atom's environment, with no fitting at prediction time:

    rho(r) = paw_superposition(r) + sum_atoms sum_k c_ak (g_k(|r - r_a|) - mean g_k),

g_k = exp(-r^2 / 2 w_k^2) periodic Gaussians of widths ``WIDTHS`` (peak 1; minus their cell mean, so the
correction moves charge and adds none), c_ak = design(a) . W[:, k] (e/A^3) linear in a descriptor vector of atom a
(``design``): per element, 1, ln x_nn, ln n_0.8, ln n_1.2, the electronegativity contrast and ln(V / atom); shared
by all elements, those and the neighbours' mean valence count, the atom's own electronegativity and valence count,
and four products. x = d / (R_a + R_b) is a neighbour's distance over the sum of the covalent radii (ASE's
``covalent_radii``), x_nn the smallest, n_s = sum over neighbours of exp(-(x / s)^2) a smooth coordination number.
An element without its own block (not in the fitted table) gets the shared part only.

W minimises sum over cells of sum over *all* voxels (sum |rho_ref - rho|^2) / sum rho_ref with the ridge
penalty ``RIDGE`` |W|^2 per cell (``fit_table``: the normal equations are exact sums, built from each cell's
(n_atoms K)^2 Gram matrix of its Gaussians). Fitted on the train split of data/v2 (``paw_radial_v1.json``), the
base alone scores validation NMAE 0.0191 against 0.0558 for the PAW superposition and 0.0281 for density-metals-v7
(test split: 0.0160 against 0.0396; `python benchmarks/density.py`, row "PAW + radial corrections").

    python -m pymatgen_elfml.sad.paw_radial data/v2 --out paw_radial_v1.json   # fit on the train split

A shipped table is never overwritten (a refit goes to a new file and a new feature set).

``paw_radial_v2.json`` (``fit_table(groups=True)``, CLI ``--groups --element-ridge 1e-5``) adds a block per
periodic-table group (``periodic_group``) so that an element with few training cells borrows its group's response:
validation NMAE 0.0180 against 0.0191 for v1, test 0.0161 against 0.0160 (``sad/data/README.md``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from pymatgen_elfml.sad.paw_atoms import paw_superposition
from pymatgen_elfml.sad.rasterize import gaussian_basis

TABLE_FILE = "paw_radial_v1.json"  # element and shared blocks: the base of density-metals-v8
TABLE_FILE_V2 = "paw_radial_v2.json"  # plus periodic-group blocks (``fit_table(groups=True)``)
TABLE_FILE_V3 = "paw_radial_v3.json"  # v2 refitted with the host-rich training cells: the base of density-metals-v9 and -v10
TABLE_FILE_V4 = "paw_radial_v4.json"  # v3's layout plus ``atom_extras`` in the element and group blocks
WIDTHS = (0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)  # Angstrom
SHELLS = (0.8, 1.2)  # widths s of the coordination numbers n_s, in units of the sum of covalent radii
REACH = 3.0  # neighbours up to x = 3 enter the sums (exp(-(3 / 1.2)^2) = 0.002)
RIDGE = 2e-6  # validation NMAE of the base: 0.0192 at 1e-6 and at 3e-6, 0.0204 at 1e-5, 0.0211 at 3e-7
N_ENV, N_OWN = 8, 6  # environment descriptors per atom; those that get a per-element coefficient block
N_EXTRA, EXTRA_REACH, OUTER_SHELL = 3, 4.0, 1.6  # ``atom_extras``: columns, reach and shell width (sums of radii)


def _scaled_distances(lattice: np.ndarray, frac: np.ndarray, radii: np.ndarray, reach: float):
    """For each atom a, (a, x): x (n_atoms, n_shifts) the distances to every atom's periodic images over the sum of
    the two covalent radii ``radii`` (A), inf for the atom itself; the images cover at least ``reach`` such sums."""
    cells = np.ceil(reach * 2.0 * radii.max() * np.linalg.norm(np.linalg.inv(lattice).T, axis=1)).astype(int) + 1
    shifts = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in cells], indexing="ij"), -1).reshape(-1, 3)
    for a in range(len(frac)):
        d = np.linalg.norm((frac[:, None, :] - frac[a] + shifts[None]) @ lattice, axis=-1)
        x = d / (radii[a] + radii[:, None])
        x[d < 1e-8] = np.inf
        yield a, x


def atom_environments(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """(n_atoms, N_ENV) descriptors of each atom's surroundings, unchanged by a supercell or a choice of cell:
    ln x_nn, ln(n_0.8 + 1e-3), ln n_1.2, sum_b w_b (chi_b - chi_a) / sum_b w_b and sum_b w_b N_b / sum_b w_b / 10
    (w = exp(-(x / 1.2)^2), chi the Pauling electronegativity, N the valence count), chi_a, N_a / 10, ln(V / n_atoms)
    (V in A^3). ValueError for an element without electronegativity or valence count, or a lone atom with no
    neighbour within reach."""
    from ase.data import chemical_symbols, covalent_radii

    from pymatgen_elfml.valence import electronegativities, valence_electrons

    lattice, numbers = np.asarray(lattice, float), np.asarray(numbers, int)
    frac = np.mod(np.atleast_2d(np.asarray(frac, float)), 1.0)
    chi = np.array(electronegativities(numbers))
    val = np.array([valence_electrons([chemical_symbols[z]]) for z in numbers], float)  # raises without a count
    volume = abs(float(np.linalg.det(lattice)))
    rows = []
    for a, x in _scaled_distances(lattice, frac, covalent_radii[numbers], REACH):
        if x.min() > REACH:  # also a lone atom: every entry is itself (inf)
            raise ValueError(f"atom {a} ({chemical_symbols[numbers[a]]}) has no neighbour within {REACH} sums of covalent radii")
        n = [np.exp(-((x / s) ** 2)).sum() for s in SHELLS]
        w = np.exp(-((x / SHELLS[1]) ** 2))
        rows.append([np.log(x.min()), np.log(n[0] + 1e-3), np.log(n[1]), (w * (chi[:, None] - chi[a])).sum() / n[1],
                     (w * val[:, None]).sum() / n[1] / 10, chi[a], val[a] / 10, np.log(volume / len(numbers))])
    return np.array(rows)


def atom_extras(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """(n_atoms, N_EXTRA) second-shell and contrast descriptors of each atom (the extra element- and group-block
    columns of a table with ``"extras"``): ln n_1.6 (the coordination number of ``atom_environments`` with shell
    width 1.6, neighbours up to x = ``EXTRA_REACH``), sum_b w_b ln(R_b / R_a) / sum_b w_b and
    sum_b w_b (N_b - N_a) / sum_b w_b / 10 (w = exp(-(x / 1.2)^2), R the covalent radius, N the valence count).
    Unchanged by a supercell or a choice of cell. Raises as ``atom_environments``."""
    from ase.data import chemical_symbols, covalent_radii

    from pymatgen_elfml.valence import valence_electrons

    lattice, numbers = np.asarray(lattice, float), np.asarray(numbers, int)
    frac = np.mod(np.atleast_2d(np.asarray(frac, float)), 1.0)
    val = np.array([valence_electrons([chemical_symbols[z]]) for z in numbers], float)
    radii = covalent_radii[numbers]
    rows = []
    for a, x in _scaled_distances(lattice, frac, radii, EXTRA_REACH):
        x[x > EXTRA_REACH] = np.inf  # atoms out of reach
        if not np.isfinite(x).any():
            raise ValueError(f"atom {a} ({chemical_symbols[numbers[a]]}) has no neighbour within {EXTRA_REACH} sums of covalent radii")
        w = np.exp(-((x / SHELLS[1]) ** 2)).sum(axis=1)  # (n_atoms,): weight of each neighbour species site
        rows.append([np.log(np.exp(-((x / OUTER_SHELL) ** 2)).sum()), (w * np.log(radii / radii[a])).sum() / w.sum(),
                     (w * (val - val[a])).sum() / w.sum() / 10])
    return np.array(rows)


def periodic_group(z: int) -> int:
    """The periodic-table column (1-18) of atomic number ``z``; the lanthanides and actinides count as group 3."""
    starts = (1, 3, 11, 19, 37, 55, 87, 119)
    if not 1 <= z < 119:
        raise ValueError(f"no element with atomic number {z}")
    period = next(i for i in range(7) if z < starts[i + 1])
    pos = z - starts[period]
    if period == 0:
        return 1 if pos == 0 else 18
    if period <= 2:
        return pos + 1 if pos < 2 else pos + 11
    if period <= 4:
        return pos + 1
    return pos + 1 if pos < 2 else (3 if pos < 17 else pos - 13)


def _blocks(own: np.ndarray, keys: list[int], cats: list[int]) -> np.ndarray:
    """(n_atoms, len(cats) * N_OWN): each atom's ``own`` row in the block of its category, zeros elsewhere."""
    block = np.zeros((len(own), len(cats), own.shape[1]))
    index = {c: i for i, c in enumerate(cats)}
    for a, key in enumerate(keys):
        if key in index:
            block[a, index[key]] = own[a]
    return block.reshape(len(own), -1)


def design(env: np.ndarray, numbers: np.ndarray, elements: list[int], groups: list[int] | None = None,
           extras: np.ndarray | None = None) -> np.ndarray:
    """(n_atoms, n_own * (len(elements) + len(groups)) + N_ENV + 5) linear features of each atom: its element's
    block [1, env columns 0-3, 7, then the ``extras`` columns (``atom_extras``) if given] (n_own = N_OWN, or
    N_OWN + N_EXTRA with extras; zeros for the other elements, and for an element not in ``elements``), then, if
    ``groups`` (periodic-table columns, ``periodic_group``) is given, the same row in its group's block, then the
    shared block [1, env, env0^2, env2^2, env3^2, env0 env3]."""
    env, numbers = np.asarray(env, float), np.asarray(numbers, int)
    own = np.concatenate([np.ones((len(env), 1)), env[:, [0, 1, 2, 3, 7]]]
                         + ([] if extras is None else [np.asarray(extras, float)]), 1)
    parts = [_blocks(own, [int(z) for z in numbers], elements)]
    if groups is not None:
        parts.append(_blocks(own, [periodic_group(int(z)) for z in numbers], groups))
    parts.append(np.concatenate([np.ones((len(env), 1)), env, env[:, [0]] ** 2, env[:, [2]] ** 2, env[:, [3]] ** 2,
                                 env[:, [0]] * env[:, [3]]], 1))
    return np.concatenate(parts, 1)


def n_features(table: dict) -> int:
    """Rows of ``table["weights"]``: the width of ``design`` for its elements (and groups)."""
    n_own = N_OWN + (N_EXTRA if table.get("extras") else 0)
    return n_own * (len(table["elements"]) + len(table.get("groups") or ())) + N_ENV + 5


def atom_gaussians(lattice: np.ndarray, frac: np.ndarray, shape: tuple[int, int, int], atoms: np.ndarray,
                   widths: tuple[float, ...] = WIDTHS) -> np.ndarray:
    """(len(widths), n0, n1, n2) the peak-1 periodic Gaussians g_k of each width summed over the atoms ``atoms``
    (indices into ``frac``), each minus its cell mean."""
    frac = np.atleast_2d(np.asarray(frac, float))[np.asarray(atoms)]
    fields = gaussian_basis(lattice, frac, np.zeros(len(frac), int), shape, widths)[0]  # normalised, 1 per atom
    peak = (2.0 * np.pi * np.asarray(widths) ** 2) ** 1.5
    fields = fields * peak[:, None, None, None]
    return fields - fields.mean(axis=(1, 2, 3), keepdims=True)


def atom_coefficients(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, table: dict) -> np.ndarray:
    """(n_atoms, K) correction amplitudes c_ak in e/A^3 of a table {"elements", "weights" (F, K)}."""
    env = atom_environments(lattice, frac, numbers)
    extras = atom_extras(lattice, frac, numbers) if table.get("extras") else None
    return design(env, numbers, table["elements"], table.get("groups"), extras) @ table["weights"]


def radial_correction(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, shape: tuple[int, int, int],
                      table: dict | None = None) -> np.ndarray:
    """(n0, n1, n2) the correction in e/A^3 (mean 0). Atoms with equal amplitudes (symmetry-equivalent ones)
    share one pass of Gaussians. ``table``: default the shipped ``TABLE_FILE``."""
    table = table or load_table()
    coef = atom_coefficients(lattice, frac, numbers, table)
    groups: dict[bytes, list[int]] = {}
    for a, c in enumerate(np.round(coef, 10)):
        groups.setdefault(c.tobytes(), []).append(a)
    out = np.zeros(tuple(int(n) for n in shape))
    for atoms in groups.values():
        out += np.tensordot(coef[atoms[0]], atom_gaussians(lattice, frac, shape, np.array(atoms), table["widths"]), 1)
    return out


def corrected_superposition(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray,
                            shape: tuple[int, int, int], table: dict | None = None) -> np.ndarray:
    """(n0, n1, n2) ``paw_superposition`` plus ``radial_correction``, e/A^3, integrating to the valence count
    (the correction has mean 0). Arguments as ``paw_superposition``."""
    return paw_superposition(lattice, frac, numbers, shape) + radial_correction(lattice, frac, numbers, shape, table)


def fit_table(cells: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], ridge: float = RIDGE,
              widths: tuple[float, ...] = WIDTHS, groups: bool = False, element_ridge: float | None = None,
              extras: bool = False) -> dict:
    """The table {"widths", "elements", "groups" (None without group blocks), "extras", "weights" (F, K)} fitted to
    (lattice, frac, numbers, rho) cells, rho (n0, n1, n2) the reference valence density in e/A^3 on the cell's grid.
    ``ridge`` penalises the group and shared blocks, ``element_ridge`` (default ``ridge``) the element blocks;
    ``extras`` adds the ``atom_extras`` columns to the element and group blocks. One
    pass over ``cells``: each cell's (n_atoms K)^2 Gram matrix of its Gaussians, their products with its residual
    and its atoms' environments are kept; the elements, and so the design, are known once every cell is read."""
    k, kept = len(widths), []
    for lattice, frac, numbers, rho in cells:
        rho = np.asarray(rho, float)
        resid = (rho - paw_superposition(lattice, frac, numbers, rho.shape)).reshape(-1)
        basis = np.concatenate([atom_gaussians(lattice, frac, rho.shape, [i], widths).reshape(k, -1)
                                for i in range(len(numbers))])  # (n_atoms K, n_voxels)
        env = atom_environments(lattice, frac, numbers)
        more = atom_extras(lattice, frac, numbers) if extras else None
        kept.append((basis @ basis.T, basis @ resid, 1.0 / rho.sum(), (env, more), np.asarray(numbers, int)))
    if not kept:
        raise ValueError("no cells to fit the radial correction to")
    elements = sorted({int(z) for *_, numbers in kept for z in numbers})
    cats = sorted({periodic_group(z) for z in elements}) if groups else None
    a, b = 0.0, 0.0
    for gram, proj, weight, (env, more), numbers in kept:
        lift = np.kron(design(env, numbers, elements, cats, more), np.eye(k))
        a = a + lift.T @ gram @ lift * weight
        b = b + lift.T @ proj * weight
    penalty = np.full(len(b), ridge)
    penalty[: (N_OWN + (N_EXTRA if extras else 0)) * len(elements) * k] = ridge if element_ridge is None else element_ridge
    weights = np.linalg.solve(a / len(kept) + np.diag(penalty), b / len(kept))
    return {"widths": tuple(widths), "elements": elements, "groups": cats, "extras": bool(extras),
            "weights": weights.reshape(-1, k)}


@lru_cache(maxsize=4)
def load_table(name: str = TABLE_FILE) -> dict:
    """A shipped table (``TABLE_FILE``, ``TABLE_FILE_V2``, ``_V3`` or ``_V4``): {"widths", "elements", "groups"
    (None if the table has no group blocks), "extras" (whether its blocks hold ``atom_extras``), "weights" (F, K)}."""
    path = resources.files("pymatgen_elfml.sad").joinpath("data", name)
    try:
        raw = json.loads(path.read_text())
        table = {"widths": tuple(raw["widths"]), "elements": [int(z) for z in raw["elements"]],
                 "groups": [int(g) for g in raw["groups"]] if raw.get("groups") else None,
                 "extras": bool(raw.get("extras", False)),
                 "weights": np.asarray(raw["weights"], dtype=np.float64)}
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise RuntimeError(f"the shipped radial-correction table {path} is missing or corrupted: {exc}") from exc
    if table["weights"].shape != (n_features(table), len(table["widths"])):
        raise RuntimeError(f"the radial-correction table {path} has weights of shape {table['weights'].shape}")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.sad.paw_radial", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="reference dataset folder (manifest.jsonl, splits.json, records/)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--ridge", type=float, default=RIDGE)
    parser.add_argument("--groups", action="store_true", help="add a block per periodic-table group")
    parser.add_argument("--element-ridge", type=float, default=None, help="ridge of the element blocks (default: --ridge)")
    parser.add_argument("--extras", action="store_true", help="add atom_extras to the element and group blocks")
    parser.add_argument("--out", type=Path, required=True, help="a new table file (an existing one is refused)")
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: shipped tables are never overwritten (models read them); "
                         "write a new file and register a feature set that reads it")
    from pymatgen_elfml.sad.valence_profiles import split_cells

    table = fit_table(split_cells(args.data, args.split), ridge=args.ridge, groups=args.groups,
                      element_ridge=args.element_ridge, extras=args.extras)
    from pymatgen_elfml.io import write_text_atomic

    command = f"python -m pymatgen_elfml.sad.paw_radial {args.data.as_posix()} --split {args.split} --ridge {args.ridge:g}"
    if args.groups:
        command += " --groups"
    if args.element_ridge is not None:
        command += f" --element-ridge {args.element_ridge:g}"
    if args.extras:
        command += " --extras"
    raw = {"widths": list(table["widths"]), "elements": table["elements"], "weights": table["weights"].tolist(),
           "meta": {"fitted_on": f"{args.data.as_posix()} split {args.split}", "units": "e/A^3 per unit feature",
                    "ridge": args.ridge, "element_ridge": args.element_ridge, "command": command}}
    if table["groups"] is not None:
        raw["groups"] = table["groups"]
    if table["extras"]:
        raw["extras"] = True
    write_text_atomic(args.out, json.dumps(raw))
    print(f"wrote {args.out}: {len(table['elements'])} elements, {table['weights'].size} weights")


if __name__ == "__main__":
    main()
