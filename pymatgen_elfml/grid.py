"""Grid shapes from a target spacing, commensurate with the space group, and periodic resampling."""

from __future__ import annotations

import math
from functools import reduce

import numpy as np
from scipy import ndimage

from pymatgen_elfml.symmetry import SeitzOps


def _smooth_5(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def _translation_lcm(ops: SeitzOps, axis: int, max_den: int = 120) -> int:
    dens = []
    for t in ops.translations[:, axis]:
        for d in range(1, max_den + 1):
            if abs(t * d - round(t * d)) < 1e-6:
                dens.append(d)
                break
        else:
            raise ValueError(f"translation {t} has no denominator <= {max_den}")
    return reduce(math.lcm, dens, 1)


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
        ops: when given, the grid maps onto itself under every operator
            (R_ij n_i / n_j and t_i n_i integers), so ``symmetry.symmetrize`` is exact.
        multiple_of: every n_i is a multiple of this (e.g. 2**depth of a U-Net).

    Returns:
        (n0, n1, n2): each a 2-3-5-smooth multiple of ``multiple_of`` and of the
        translation denominators, with the smallest total voxel count.
    """
    if spacing <= 0:
        raise ValueError(f"spacing must be positive, got {spacing} A")
    ops = ops if ops is not None else SeitzOps.identity()
    lengths = np.linalg.norm(np.asarray(lattice, dtype=float), axis=1)
    n_min = [max(1, math.ceil(length / spacing - 1e-9)) for length in lengths]
    steps = [math.lcm(multiple_of, _translation_lcm(ops, i)) for i in range(3)]
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
    if not ok.any():
        raise ValueError(f"no symmetry-commensurate grid found for spacing {spacing} A")
    sizes = np.prod(np.meshgrid(*cands, indexing="ij"), axis=0).astype(float)
    best = np.unravel_index(np.argmin(np.where(ok, sizes, np.inf)), ok.shape)
    return tuple(int(cands[i][best[i]]) for i in range(3))


def voxel_spacing(lattice: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(3,) spacing |a_i| / n_i in Angstrom."""
    return np.linalg.norm(np.asarray(lattice, dtype=float), axis=1) / np.asarray(shape)


def resample_periodic(field: np.ndarray, shape: tuple[int, int, int], order: int = 3) -> np.ndarray:
    """Resample a periodic field onto another grid of the same cell.

    Point [i, j, k] of either grid sits at fractional (i/n0, j/n1, k/n2); values between
    grid points come from a periodic (``grid-wrap``) B-spline of the given order.

    Args:
        field: (n0, n1, n2) array.
        shape: target grid shape.
        order: spline order 0-5 (1 = trilinear).

    Returns:
        float64 array of ``shape``; the input itself (copied) when the shapes agree.
    """
    field = np.asarray(field, dtype=float)
    if tuple(shape) == field.shape:
        return field.copy()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"target grid must be three positive integers, got {shape}")
    coords = np.meshgrid(
        *[np.arange(m) * (n / m) for n, m in zip(field.shape, shape)], indexing="ij"
    )
    return ndimage.map_coordinates(field, coords, order=order, mode="grid-wrap")
