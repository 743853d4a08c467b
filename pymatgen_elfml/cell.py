"""A periodic structure as plain arrays: what the numeric core (grid, symmetry, SAD) works on.

Built from pymatgen/ASE objects only by ``io.validate``; importing this module loads numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cell:
    """A validated periodic structure as plain arrays.

    Attributes:
        lattice: (3, 3) float64, rows are lattice vectors in Angstrom.
        frac: (n, 3) float64 fractional coordinates wrapped into [0, 1).
        numbers: (n,) int atomic numbers, 1..103.
    """

    lattice: np.ndarray
    frac: np.ndarray
    numbers: np.ndarray

    @property
    def volume(self) -> float:
        """Cell volume in Angstrom^3."""
        return float(abs(np.linalg.det(self.lattice)))
