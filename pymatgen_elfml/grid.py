"""Grid shapes from a target spacing, commensurate with the space group (resampling: ``primitive.map_to_cell``)."""

from __future__ import annotations

import math
import warnings
from functools import reduce

import numpy as np

from pymatgen_elfml.symmetry import SeitzOps

NATIVE_SPACING = 0.10  # Angstrom, the reference data's grid spacing (the models' native grid)
SAD_SIGMA = 0.20  # Angstrom, Gaussian smoothing of the SAD input


def check_spacing(spacing: float | None) -> None:
    """``None`` (use the default) or a finite spacing > 0 in Angstrom; anything else raises ValueError."""
    if spacing is not None and not (np.isfinite(spacing) and spacing > 0):
        raise ValueError(f"spacing must be a positive number of Angstrom, got {spacing!r}")


def _smooth_5(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def _denominator(t: float, max_den: int = 120) -> int | None:
    """Smallest d <= max_den with t * d integral (to 1e-6), or None."""
    for d in range(1, max_den + 1):
        if abs(t * d - round(t * d)) < 1e-6:
            return d
    return None


def rational_ops(ops: SeitzOps) -> SeitzOps:
    """The operators whose translations are fractions with denominators <= 120.

    An operator like a mirror whose plane is not at a special position of the cell's origin
    has an irrational translation and can map no grid onto itself; the others form the
    subgroup a grid can be made commensurate with.
    """
    keep = np.array([all(_denominator(t) is not None for t in row) for row in ops.translations])
    return SeitzOps(ops.rotations[keep], ops.translations[keep])


def grid_shape(
    lattice: np.ndarray,
    spacing: float,
    ops: SeitzOps | None = None,
    multiple_of: int = 1,
) -> tuple[int, int, int]:
    """The smallest FFT-friendly grid with spacing <= ``spacing`` along every lattice vector.

    Args:
        lattice: (3, 3) lattice vectors as rows, Angstrom.
        spacing: target voxel spacing |a_i| / n_i in Angstrom.
        ops: when given, the grid maps onto itself under every operator with a rational
            translation (R_ij n_i / n_j and t_i n_i integers; see ``rational_ops``), so
            ``symmetry.symmetrize`` over ``symmetry.commensurate_ops`` is exact.
        multiple_of: every n_i is a multiple of this (e.g. 2**depth of a U-Net).

    Returns:
        (n0, n1, n2): each a 2-3-5-smooth multiple of ``multiple_of`` and of the
        translation denominators, with the smallest total voxel count.
    """
    if spacing <= 0:
        raise ValueError(f"spacing must be positive, got {spacing} A")
    ops = rational_ops(ops) if ops is not None else SeitzOps.identity()
    lengths = np.linalg.norm(np.asarray(lattice, dtype=float), axis=1)
    n_min = [max(1, math.ceil(length / spacing - 1e-9)) for length in lengths]
    steps = [math.lcm(multiple_of, reduce(math.lcm, (_denominator(t) for t in ops.translations[:, i]), 1))
             for i in range(3)]
    upper = 2 * max(n_min) + 2 * max(steps)
    cands = [
        np.array([n for n in range(steps[i], upper + 1, steps[i]) if n >= n_min[i] and _smooth_5(n)])
        for i in range(3)
    ]
    ok = np.ones([len(c) for c in cands], dtype=bool)
    for i in range(3):
        for j in range(3):
            r = ops.rotations[:, i, j]
            if i == j or not np.any(r):
                continue
            # R_ij n_i / n_j must be an integer for every operator
            pair = np.all((r[:, None, None] * cands[i][None, :, None]) % cands[j][None, None, :] == 0, axis=0)
            shape = [1, 1, 1]
            shape[i], shape[j] = len(cands[i]), len(cands[j])
            ok &= pair.reshape(shape) if i < j else pair.T.reshape(shape)
    if not ok.any():  # cannot happen for crystallographic groups; be safe for odd settings
        warnings.warn(f"no grid commensurate with all {len(ops)} operators near spacing {spacing} A; "
                      "ignoring symmetry for the grid choice", stacklevel=2)
        return grid_shape(lattice, spacing, None, multiple_of)
    sizes = np.prod(np.meshgrid(*cands, indexing="ij"), axis=0).astype(float)
    best = np.unravel_index(np.argmin(np.where(ok, sizes, np.inf)), ok.shape)
    return tuple(int(cands[i][best[i]]) for i in range(3))


def voxel_spacing(lattice: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(3,) spacing |a_i| / n_i in Angstrom."""
    return np.linalg.norm(np.asarray(lattice, dtype=float), axis=1) / np.asarray(shape)
