"""Reciprocal-space rasterization of the superposed atomic density (SAD).

rho(r) = sum_i rho_{Z_i} * g_sigma (r - r_i) summed over all periodic images is, on the
grid, the inverse FFT of F(G) = sum_Z f_Z(|G|) S_Z(G) / V with structure factors
S_Z(G) = sum_{i of species Z} exp(-2 pi i (h, k, l) . x_i). Exactly periodic, conserves
charge (grid sum = sum Z), cost independent of the number of atoms beyond S_Z.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from pymatgen_elfml.sad.table import form_factor


def _frequencies(shape: tuple[int, int, int]) -> list[np.ndarray]:
    """Integer FFT frequencies per axis; the last axis holds only the rfft half (n2 // 2 + 1)."""
    f = [np.fft.fftfreq(n, 1.0 / n) for n in shape[:2]]
    return f + [np.arange(shape[2] // 2 + 1, dtype=float)]


def _fourier_plane(lattice, frac, numbers, shape, sigma, h_index: int) -> np.ndarray:
    """F(G) / n_grid-independent coefficients for one frequency h along axis 0, (n1, n2//2+1) complex."""
    f0, f1, f2 = _frequencies(shape)
    recip = 2.0 * np.pi * np.linalg.inv(lattice).T  # rows b_i, 1/Angstrom
    g = f0[h_index] * recip[0] + f1[:, None, None] * recip[1] + f2[None, :, None] * recip[2]
    gnorm = np.linalg.norm(g, axis=-1)
    plane = np.zeros(gnorm.shape, dtype=np.complex128)
    for z in np.unique(numbers):
        x = frac[numbers == z]
        s = np.einsum(
            "a,aj,ak->jk",
            np.exp(-2j * np.pi * f0[h_index] * x[:, 0]),
            np.exp(-2j * np.pi * np.outer(x[:, 1], f1)),
            np.exp(-2j * np.pi * np.outer(x[:, 2], f2)),
        )
        plane += form_factor(int(z), gnorm, sigma) * s
    return plane


def sad_density(
    lattice: np.ndarray,
    frac: np.ndarray,
    numbers: np.ndarray,
    shape: tuple[int, int, int],
    sigma: float,
) -> np.ndarray:
    """Gaussian-smoothed all-electron SAD on a periodic grid.

    Args:
        lattice: (3, 3) lattice vectors as rows, Angstrom.
        frac: (n_atoms, 3) fractional coordinates.
        numbers: (n_atoms,) atomic numbers 1..103.
        shape: grid (n0, n1, n2); point [i, j, k] at fractional (i/n0, j/n1, k/n2).
        sigma: Gaussian smoothing width in Angstrom; keep it >= 2x the voxel spacing so
            that the band limit of the grid truncates nothing.

    Returns:
        (n0, n1, n2) float64 density in e/Angstrom^3; sum * V / n_grid = sum(numbers).
        Built plane by plane in reciprocal space (half spectrum, ``irfftn``), so the
        transient memory is about that of the output.
    """
    shape = tuple(int(n) for n in shape)
    lattice = np.asarray(lattice, dtype=float)
    frac, numbers = np.asarray(frac, dtype=float), np.asarray(numbers)
    fourier = np.empty((shape[0], shape[1], shape[2] // 2 + 1), dtype=np.complex128)
    for h in range(shape[0]):
        fourier[h] = _fourier_plane(lattice, frac, numbers, shape, sigma, h)
    n_grid = float(np.prod(shape))
    volume = abs(np.linalg.det(lattice))
    rho = fft.irfftn(fourier, s=shape, overwrite_x=True, workers=-1)
    rho *= n_grid / volume
    return rho
