"""``DensityGenerator``: densities from structures, starting with the superposed atomic density."""

from __future__ import annotations

import warnings
from typing import Any

from pymatgen.io.vasp.outputs import Chgcar

from pymatgen_elfml import io, symmetry
from pymatgen_elfml.grid import NATIVE_SPACING, SAD_SIGMA, check_spacing, grid_shape, voxel_spacing

COARSE_VOXEL = 0.5  # Angstrom: on coarser grids the smoothing (2 voxels) washes out the atoms
from pymatgen_elfml.sad import sad_density


class DensityGenerator:
    """Densities on VASP grids.

    >>> from pymatgen.core import Lattice, Structure
    >>> al = Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    >>> chg = DensityGenerator().sad(al, spacing=0.15)
    >>> chg.data["total"].shape, round(float(chg.data["total"].mean()), 6)
    ((30, 30, 30), 52.0)
    """

    def sad(self, structure: Any, spacing: float | None = None, grid: tuple[int, int, int] | None = None,
            sigma: float | None = None) -> Chgcar:
        """Superposed all-electron free-atom density as a ``Chgcar`` (data = rho * V_cell).

        Args:
            structure: pymatgen ``Structure``, ``ase.Atoms`` or a structure file path.
            spacing: target grid spacing in Angstrom (default 0.10, the models' native
                spacing); the grid is made commensurate with the space group.
            grid: an explicit grid (n0, n1, n2), e.g. an existing CHGCAR's; overrides spacing.
            sigma: Gaussian smoothing in Angstrom; default max(0.2, 2 x the coarsest voxel spacing),
                which keeps the band-limited grid free of truncation ripples.

        Returns:
            ``Chgcar`` whose grid sum / n_grid equals the number of electrons (sum of Z).
        """
        structure, cell = io.load_cell(structure)
        check_spacing(spacing)
        if grid is not None:
            shape = tuple(int(n) for n in grid)
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"grid must be three positive integers, got {grid}")
        else:
            shape = grid_shape(cell.lattice, spacing or NATIVE_SPACING, symmetry.seitz_ops(cell))
        coarsest = float(voxel_spacing(cell.lattice, shape).max())
        if coarsest > COARSE_VOXEL:
            warnings.warn(f"grid {shape} has voxels up to {coarsest:.2f} A: too coarse to resolve the atoms "
                          f"(the SAD is nearly uniform); use a grid of spacing <= {COARSE_VOXEL} A", stacklevel=2)
        if sigma is None:
            sigma = max(SAD_SIGMA, 2.0 * coarsest)
        rho = sad_density(cell.lattice, cell.frac, cell.numbers, shape, sigma)
        return io.to_chgcar(structure, rho)
