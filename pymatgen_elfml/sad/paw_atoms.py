"""Free atoms' PAW valence densities: GPAW's own superposition-of-atoms density, without GPAW.

The reference densities (``reference.engine``) are GPAW pseudo valence densities with compensation
charges, the analogue of a VASP CHGCAR. GPAW starts every SCF from a superposition of free atoms in
that same representation; this module reproduces that starting density from a small table, so it is a
baseline (and a base for learned corrections) that needs no learning and no GPAW at prediction time.

Per element, GPAW (the default PBE setups, as in the reference data) builds its initial density from

- the pseudo density: sum over the setup's atomic basis orbitals J of f_J phi_J(r)^2 / 4 pi with GPAW's
  initial (non-magnetic) occupations f_J, plus the smooth core density nct(r);
- a compensation charge Q ghat(r) per atom: Q from the initial atomic density matrix
  (``sum_ij D_ij Delta_ij00 + Delta0 + N_v / sqrt(4 pi)``), ghat the setup's l = 0 shape function;
- a normalisation: the pseudo density of the whole cell is scaled by one factor x so that the total
  integrates to the valence electron count (GPAW's ``normalize``).

The table stores, per element, the radial Fourier transforms (form factors) of the pseudo part and of the
compensation part on a |G| grid, 0 to ``G_MAX`` 1/A; ``paw_superposition`` sums them over the atoms with
exact structure factors and applies GPAW's normalisation. Against GPAW's own initial density of a single
atom in an 8 A box (64^3 grid) the relative L1 difference is 0.04-0.3 % (Cu, La, Cs, Ga; GPAW 26.7), the
rest being GPAW's plane-wave representation of its splines. The table also splits the pseudo part by origin
(smooth core, s, p, d, f orbitals; ``paw_components``): which valence shells fill a region, an input of density models.

    python -m pymatgen_elfml.sad.paw_atoms --out paw_valence_gpaw_v3.npz   # needs GPAW and its setups
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

PAW_FILE = "paw_valence_gpaw_v3.npz"  # 83 elements; v2 and the 53-metal v1 (git history): the same pseudo/comp rows
ORBITAL_PARTS = ("core", "s", "p", "d", "f")  # the pseudo part split: smooth core density, then basis orbitals by l
G_STEP = 0.05  # 1/Angstrom
G_MAX = 40.0  # 1/Angstrom: grids finer than ~0.08 A see no form factor beyond (zero there)
BOHR = 0.52917721067  # Angstrom


def _radial_parts(symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int, np.ndarray]:
    """(r in bohr, pseudo density, unit compensation shape, Q, N_valence, orbital parts) of GPAW's initial density
    of one free atom, densities in e/bohr^3 (the shape integrates to 1); orbital parts (5, n_r): the smooth core
    density and the s, p, d, f basis-orbital densities, summing to the pseudo density."""
    from ase import Atoms
    from gpaw import GPAW, PW

    atoms = Atoms(symbol, positions=[[0.0, 0.0, 0.0]], cell=[4.0] * 3, pbc=True)
    calc = GPAW(mode=PW(300), xc="PBE", kpts={"size": (1, 1, 1), "gamma": True}, gpts=(16, 16, 16), txt=None,
                symmetry="off")
    atoms.calc = calc
    calc.create_new_calculation(atoms)
    setup = calc.dft.setups[0]
    occupations = np.asarray(setup.calculate_initial_occupation_numbers(0.0, False, 0.0, 1)).ravel()
    d_ii = np.asarray(calc.dft.density.D_asii[0])[0]  # GPAW's initial atomic density matrix
    q00 = np.einsum("ij,ij->", d_ii, setup.Delta_iiL[:, :, 0]) + setup.Delta0 + setup.Nv / np.sqrt(4 * np.pi)
    r = np.linspace(0.0, 12.0, 12001)[1:]
    y00 = 1.0 / np.sqrt(4 * np.pi)
    pseudo, start = setup.nct.map(r) * y00, 0
    orbital = np.zeros((len(ORBITAL_PARTS), len(r)))
    orbital[0] = pseudo
    for basis in setup.basis_functions_J:
        ell = basis.get_angular_momentum_number()
        part = occupations[start:start + 2 * ell + 1].sum() * basis.map(r) ** 2 * r ** (2 * ell) / (4 * np.pi)
        pseudo, orbital[1 + ell] = pseudo + part, orbital[1 + ell] + part
        start += 2 * ell + 1
    shape = setup.ghat_l[0].map(r) * y00
    return (r, pseudo, shape / (4 * np.pi * np.sum(r * r * shape) * (r[1] - r[0])), float(q00 * np.sqrt(4 * np.pi)),
            int(setup.Nv), orbital)


def _form_factor(r_bohr: np.ndarray, density: np.ndarray, g: np.ndarray) -> np.ndarray:
    """4 pi int r^2 n(r) sin(G r)/(G r) dr in electrons, for G in 1/A (r, n in bohr units)."""
    r = r_bohr * BOHR
    weight = 4 * np.pi * r * r * (density / BOHR**3) * (r[1] - r[0])
    return np.concatenate([np.sinc(np.outer(chunk, r) / np.pi) @ weight for chunk in np.array_split(g, 16)])


def build_table(symbols: list[str]) -> dict[str, np.ndarray]:
    """Form factors of every element of ``symbols``: {"g": (n_g,), "pseudo"/"comp": (n_el, n_g), "orbital":
    (n_el, 5, n_g) (the pseudo part split as ``ORBITAL_PARTS``), "z", "nv": (n_el,)}."""
    from ase.data import atomic_numbers

    g = np.arange(0.0, G_MAX + G_STEP / 2, G_STEP)
    pseudo, comp, valence, orbital = [], [], [], []
    for symbol in symbols:
        r, n_pseudo, shape, charge, n_valence, n_orbital = _radial_parts(symbol)
        valence.append(n_valence)
        pseudo.append(_form_factor(r, n_pseudo, g))
        comp.append(charge * _form_factor(r, shape, g))
        orbital.append([_form_factor(r, part, g) for part in n_orbital])
    return {"g": g, "z": np.array([atomic_numbers[s] for s in symbols]), "nv": np.array(valence),
            "pseudo": np.array(pseudo, dtype=np.float32), "comp": np.array(comp, dtype=np.float32),
            "orbital": np.array(orbital, dtype=np.float32)}


class PawRow(NamedTuple):
    """One element's form factors (electrons, on the table's |G| grid): pseudo (n_g,), compensation (n_g,),
    N_valence, and the pseudo part split as ``ORBITAL_PARTS`` (5, n_g)."""

    pseudo: np.ndarray
    comp: np.ndarray
    nv: int
    orbital: np.ndarray


@lru_cache(maxsize=1)
def load_table() -> tuple[np.ndarray, dict[int, PawRow]]:
    """(|G| grid in 1/A, {Z: ``PawRow``}) of the shipped table."""
    path = resources.files("pymatgen_elfml.sad").joinpath("data", PAW_FILE)
    try:
        with path.open("rb") as handle, np.load(handle) as npz:
            rows = zip(npz["z"], npz["pseudo"], npz["comp"], npz["nv"], npz["orbital"])
            return np.array(npz["g"]), {int(z): PawRow(np.array(p, float), np.array(c, float), int(nv), np.array(o, float))
                                        for z, p, c, nv, o in rows}
    except (OSError, KeyError, ValueError) as exc:
        raise RuntimeError(f"the shipped PAW form-factor table {path} is missing or corrupted: {exc}") from exc


def _half_spectrum_gnorm(lattice: np.ndarray, shape: tuple[int, int, int]) -> tuple[list[np.ndarray], np.ndarray]:
    """Integer frequencies per axis of the rfftn layout and |G| (1/A) on it."""
    freqs = [np.fft.fftfreq(shape[0], 1.0 / shape[0]), np.fft.fftfreq(shape[1], 1.0 / shape[1]),
             np.arange(shape[2] // 2 + 1, dtype=float)]
    recip = 2 * np.pi * np.linalg.inv(lattice).T  # rows b_i with a_i . b_j = 2 pi delta_ij
    m = np.stack(np.meshgrid(*freqs, indexing="ij"), axis=-1)
    return freqs, np.linalg.norm(m @ recip, axis=-1)


def _species_spectra(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, shape: tuple[int, int, int],
                     orbitals: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each species' form factors times its structure factor, on the rfftn half spectrum of ``shape``.

    Returns:
        species (n_s,) atomic numbers, sorted; spectra (n_s, k, n0, n1, n2 // 2 + 1) complex in electrons, rows
        pseudo, compensation (then ``ORBITAL_PARTS`` if ``orbitals``); valence (n_s,) the species' N_valence.
    """
    g_grid, table = load_table()
    lattice, numbers = np.asarray(lattice, float), np.asarray(numbers, int)
    frac = np.mod(np.atleast_2d(np.asarray(frac, float)), 1.0)
    missing = sorted(set(numbers.tolist()) - set(table))
    if missing:
        raise ValueError(f"no PAW free-atom form factors for atomic numbers {missing}: the table covers "
                         f"{len(table)} elements (the default PBE setups of gpaw-data 1.2.1)")
    freqs, gnorm = _half_spectrum_gnorm(lattice, tuple(int(n) for n in shape))
    species = np.unique(numbers)
    spectra = np.zeros((len(species), 2 + orbitals * len(ORBITAL_PARTS), *gnorm.shape), complex)
    for s, z in enumerate(species):
        ph = [np.exp(-2j * np.pi * np.outer(frac[numbers == z, i], freqs[i])) for i in range(3)]
        structure = np.einsum("ai,aj,ak->ijk", *ph, optimize=True)
        row = table[int(z)]
        for k, factor in enumerate([row.pseudo, row.comp, *(row.orbital if orbitals else [])]):
            spectra[s, k] = structure * np.interp(gnorm, g_grid, factor, right=0.0)
    valence = np.array([table[int(z)].nv * np.count_nonzero(numbers == z) for z in species], float)
    return species, spectra, valence


def _normalisation(pseudo0: np.ndarray, comp0: np.ndarray, valence: np.ndarray) -> np.ndarray:
    """GPAW's factor on the pseudo part so that pseudo + compensation integrate to ``valence`` electrons (the
    G = 0 terms ``pseudo0``, ``comp0`` in electrons; any matching shapes)."""
    return (valence - comp0.real) / pseudo0.real


def _summed_spectra(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, shape: tuple[int, int, int],
                    orbitals: bool) -> tuple[np.ndarray, float]:
    """``_species_spectra`` summed over the species: (k, n0, n1, n2 // 2 + 1) complex, and GPAW's normalisation
    factor of the pseudo part for the whole cell."""
    _, spectra, valence = _species_spectra(lattice, frac, numbers, shape, orbitals)
    parts = spectra.sum(axis=0)
    return parts, float(_normalisation(parts[0].flat[0], parts[1].flat[0], valence.sum()))


def paw_superposition(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """GPAW's superposition-of-free-atoms valence density (pseudo + compensation charges) on a periodic grid.

    Args:
        lattice: (3, 3) lattice vectors as rows, Angstrom.
        frac: (n_atoms, 3) fractional coordinates.
        numbers: (n_atoms,) atomic numbers.
        shape: grid (n0, n1, n2); point [i, j, k] at fractional (i/n0, j/n1, k/n2).

    Returns:
        (n0, n1, n2) float64 density in e/A^3 integrating (mean x volume) to the atoms' valence electrons.

    Raises:
        ValueError: naming elements the table has no setup for.
    """
    parts, scale = _summed_spectra(lattice, frac, numbers, shape, orbitals=False)
    return _real_density(parts[0] * scale + parts[1], lattice, shape)


def paw_species(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray,
                shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Each species' own ``paw_superposition`` (its atoms alone, normalised to their own valence count), from one
    pass over the structure factors. Arguments as there.

    Returns:
        species (n_s,) sorted atomic numbers; densities (n_s, n0, n1, n2) float64 in e/A^3.
    """
    species, spectra, valence = _species_spectra(lattice, frac, numbers, shape, orbitals=False)
    scale = _normalisation(spectra[:, 0, 0, 0, 0], spectra[:, 1, 0, 0, 0], valence)
    return species, _real_density(spectra[:, 0] * scale[:, None, None, None] + spectra[:, 1], lattice, shape)


def paw_components(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``paw_superposition`` split by origin: (6, n0, n1, n2) float64 in e/A^3, rows ``ORBITAL_PARTS`` (the smooth
    core and the s, p, d, f basis-orbital densities, with GPAW's normalisation) then the compensation charges; the
    rows sum to ``paw_superposition`` (to the float32 rounding of the table). Arguments as there."""
    parts, scale = _summed_spectra(lattice, frac, numbers, shape, orbitals=True)
    return _real_density(np.concatenate([parts[2:] * scale, parts[1:2]]), lattice, shape)


def _real_density(spectra: np.ndarray, lattice: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Half spectra (..., n0, n1, n2 // 2 + 1) of charges in electrons -> densities (..., n0, n1, n2) in e/A^3."""
    from scipy import fft

    n_grid = float(np.prod(shape))
    return fft.irfftn(spectra, s=tuple(shape), axes=(-3, -2, -1)) * (n_grid / abs(np.linalg.det(np.asarray(lattice, float))))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.sad.paw_atoms", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a new .npz table (an existing file is refused)")
    parser.add_argument("--elements", nargs="*", help="default: every element of valence.SETUP_VALENCE")
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: shipped tables are never overwritten")
    import gpaw

    from pymatgen_elfml.io import atomic_path
    from pymatgen_elfml.valence import SETUP_VALENCE

    table = build_table(args.elements or list(SETUP_VALENCE))
    meta = {"source": f"GPAW {gpaw.__version__} default PBE setups, initial (superposition-of-atoms) density",
            "units": "form factors in electrons, g in 1/Angstrom", "command": "python -m pymatgen_elfml.sad.paw_atoms"}
    with atomic_path(args.out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, meta=json.dumps(meta), **table)
    print(f"wrote {args.out}: {len(table['z'])} elements")


if __name__ == "__main__":
    main()
