"""Real DFT reference fields with GPAW: ELF and valence (pseudo) density on the model's grid.

Plane-wave PAW, PBE, Fermi-Dirac smearing, a Gamma-centred k-mesh from a k-spacing and an
explicit real-space grid equal to the model's native grid (``grid.grid_shape`` at the
native spacing, symmetry-commensurate, multiple of 8). ELF comes from ``gpaw.elf`` (from the
valence pseudo-density and its kinetic energy density, as VASP computes it); the density is
GPAW's pseudo valence density with compensation charges (VASP's CHGCAR analogue).

GPAW is an optional dependency (``pip install ".[reference]"``, see the README for the apt
packages and the siteconfig); it is imported only inside ``compute_reference``.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np
from pymatgen.core import Structure

from pymatgen_elfml import io, symmetry
from pymatgen_elfml.grid import grid_shape


class ReferenceError(RuntimeError):
    """A reference calculation failed (SCF not converged, GPAW error); the message says which."""


@dataclass(frozen=True)
class ReferenceSettings:
    """GPAW settings of the reference calculations.

    Attributes:
        ecut: plane-wave cutoff in eV.
        kspacing: k-point spacing in 1/Angstrom (reciprocal vectors with the 2 pi); the
            Gamma-centred mesh has ceil(|b_i| / kspacing) points along b_i.
        smearing: Fermi-Dirac width in eV.
        xc: exchange-correlation functional.
        grid_spacing: real-space grid spacing in Angstrom (the model's native spacing).
        grid_multiple: every grid size is a multiple of this (the U-Net's 2**depth).
        density_tol: SCF density convergence criterion (electrons per valence electron).
        maxiter: SCF iteration limit.
        ncut: ELF is set to 0 where the density is below this (e/bohr^3, GPAW's unit).
        spinpol: spin-polarised calculation (the ELF is then GPAW's total ELF).
        bands: "uncapped": ``band_count`` bands, ceil(0.6 N_valence) + 4 (GPAW's own default formula
            without its cap); "gpaw": GPAW's default, that formula capped at the setups' bound partial
            waves, which leaves a Ca, Sr or Ba cell with no empty band (a metal computed as a band
            insulator: mean |dELF| 0.02 on fcc Ca) and K, Rb, Cs with half a band per atom. Records
            computed before 2026-12-02 used "gpaw" (their settings lack the key).
    """

    ecut: float = 300.0
    kspacing: float = 0.3
    smearing: float = 0.2
    xc: str = "PBE"
    grid_spacing: float = 0.10
    grid_multiple: int = 8
    density_tol: float = 1e-5
    maxiter: int = 300
    ncut: float = 1e-6
    spinpol: bool = False
    bands: str = "uncapped"

    def __post_init__(self) -> None:
        if self.bands not in ("uncapped", "gpaw"):
            raise ValueError(f"bands must be 'uncapped' or 'gpaw', got {self.bands!r}")


def kpoint_mesh(lattice: np.ndarray, kspacing: float) -> tuple[int, int, int]:
    """Gamma-centred mesh ceil(|b_i| / kspacing), |b_i| with the 2 pi, in 1/Angstrom."""
    recip = 2.0 * np.pi * np.linalg.norm(np.linalg.inv(np.asarray(lattice)).T, axis=1)
    return tuple(max(1, math.ceil(b / kspacing - 1e-9)) for b in recip)


def band_count(structure: Structure, settings: ReferenceSettings) -> int | None:
    """Number of bands for GPAW: ceil(0.6 N_valence) + 4 (20 % above the occupied count, plus 4), with
    N_valence from the setups' valence table; None (GPAW's default) for ``bands="gpaw"``."""
    if settings.bands == "gpaw":
        return None
    from pymatgen_elfml.valence import valence_electrons

    return math.ceil(0.6 * valence_electrons(site.specie.symbol for site in structure)) + 4


def gpaw_default_bands(symbols, xc: str = "PBE") -> int:
    """The band count GPAW picks when none is given (needs GPAW): ceil(0.6 N_valence) + 4, capped at
    the number of bound partial-wave orbitals of the setups (sum of 2l + 1). Compare with N_valence / 2
    to see how many empty bands a ``bands="gpaw"`` record had (spin-unpolarised; GPAW adds the magnetic
    moment to N_valence for spin-polarised runs)."""
    from pymatgen_elfml.valence import valence_electrons

    symbols = list(symbols)
    return min(math.ceil(0.6 * valence_electrons(symbols)) + 4, sum(_bound_orbitals(el, xc) for el in symbols))


@functools.lru_cache(maxsize=None)
def _bound_orbitals(element: str, xc: str) -> int:
    """Sum of 2l + 1 over the bound partial waves of GPAW's setup of ``element``."""
    from gpaw.setup import create_setup
    from gpaw.xc import XC

    return int(create_setup(element, XC(xc)).get_default_nbands())


def reference_grid(structure: Structure, settings: ReferenceSettings) -> tuple[int, int, int]:
    """The real-space grid of the reference: the model's native grid for this structure."""
    cell = io.validate(structure)
    return grid_shape(cell.lattice, settings.grid_spacing, symmetry.seitz_ops(cell), settings.grid_multiple)


def compute_reference(structure: Structure, settings: ReferenceSettings = ReferenceSettings(),
                      txt: str | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run GPAW on one structure.

    Args:
        structure: ordered periodic structure (validated by ``io.validate``).
        settings: calculation settings.
        txt: GPAW log file (None: no log).

    Returns:
        elf: (n0, n1, n2) float64 in [0, 1];
        rho: (n0, n1, n2) float64 valence pseudo-density in e/Angstrom^3;
        metadata: settings, grid, k-mesh, code versions, energy, valence count, wall time.

    Raises:
        ReferenceError: SCF not converged or any GPAW failure.
    """
    from gpaw.elf import elf_from_dft_calculation
    from pymatgen.io.ase import AseAtomsAdaptor

    start = time.perf_counter()
    shape = reference_grid(structure, settings)
    kpts = kpoint_mesh(structure.lattice.matrix, settings.kspacing)
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calc = _calculator(structure, settings, shape, kpts, txt)
    try:
        energy = atoms.get_potential_energy()
        elf = np.asarray(elf_from_dft_calculation(calc, ncut=settings.ncut).gather().data, dtype=float)
        rho = np.asarray(calc.get_pseudo_density(), dtype=float)
    except Exception as exc:  # GPAW raises KohnShamConvergenceError and various others
        raise ReferenceError(f"GPAW failed for {structure.composition.reduced_formula}: {type(exc).__name__}: {exc}") from exc
    if elf.ndim == 4:  # spin-resolved ELF: keep the total
        elf = elf.sum(axis=0) / elf.shape[0]
    if elf.shape != shape or rho.shape != shape:
        raise ReferenceError(f"GPAW returned grids {elf.shape}, {rho.shape}; expected {shape}")
    if not (np.all(np.isfinite(elf)) and np.all(np.isfinite(rho))):
        raise ReferenceError("GPAW returned NaN/inf in ELF or density")
    metadata = _metadata(calc, structure, settings, shape, kpts, float(energy), rho, time.perf_counter() - start)
    return np.clip(elf, 0.0, 1.0), rho, metadata


def _calculator(structure: Structure, settings: ReferenceSettings, shape, kpts, txt: str | None):
    """The GPAW calculator of ``compute_reference``: plane waves, Fermi-Dirac smearing, the model's grid."""
    from gpaw import GPAW, PW, FermiDirac

    return GPAW(mode=PW(settings.ecut), xc=settings.xc, kpts={"size": kpts, "gamma": True},
                nbands=band_count(structure, settings), occupations=FermiDirac(settings.smearing),
                eigensolver="davidson", gpts=shape, convergence={"density": settings.density_tol},
                maxiter=settings.maxiter, spinpol=settings.spinpol, txt=txt, symmetry={"point_group": True})


def _metadata(calc, structure: Structure, settings: ReferenceSettings, shape, kpts, energy: float,
              rho: np.ndarray, wall_time_s: float) -> dict:
    """A record's calculation metadata: settings, grid, k-mesh, bands, energy (eV), valence, versions."""
    import gpaw

    return {
        "settings": asdict(settings),
        "grid": list(shape),
        "kpts": list(kpts),
        "nbands": int(calc.get_number_of_bands()),
        "energy_eV": energy,
        "n_valence": float(sum(setup.Nv for setup in calc.dft.setups)),
        "electrons_in_rho": float(rho.sum() * structure.volume / rho.size),
        "wall_time_s": wall_time_s,
        "gpaw_version": gpaw.__version__,
        "host": platform.node(),
        "threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0),
    }
