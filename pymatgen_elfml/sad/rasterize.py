"""Reciprocal-space rasterization of the superposed atomic density (SAD).

rho(r) = sum_i (rho_{Z_i} * g_sigma)(r - r_i) over all periodic images is, on the grid,
the inverse FFT of F(G) = sum_Z f_Z(|G|) S_Z(G) / V with f_Z the smoothed form factor
and S_Z(G) = sum_{i of species Z} exp(-i G . r_i).

S_Z is not summed atom by atom over every G (that costs n_atoms x n_grid): each atom is
deposited on the grid as a normalised Gaussian of width s_d <= sigma (periodic, cut at
6 s_d), whose FFT is S_Z(G) exp(-s_d^2 G^2 / 2) up to an aliasing error below
exp(-pi^2 (s_d / h)^2 / 2) ~ 4e-14 for s_d = 2.5 h (less on skewed grids); the form factor then applies only the
remaining smoothing, sigma^2 - s_d^2. Cost: one FFT per species plus ~(35 h_max / h)^3
voxels per atom.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from pymatgen_elfml.sad.table import form_factor

DEPOSIT_WIDTHS = 2.5  # deposit Gaussian width in voxels (at the coarsest axis)
DEPOSIT_CUTOFF = 6.0  # deposits are cut at this many widths (exp(-18) ~ 1.5e-8)
MIN_SIGMA_VOXELS = 1.5  # smallest allowed smoothing, in voxel spacings
ATOM_CHUNK = 64  # atoms per bincount


def _rfft_gnorm(lattice: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """|G| in 1/Angstrom (with the 2 pi) on the rfftn half-spectrum, shape (n0, n1, n2//2+1)."""
    recip = 2.0 * np.pi * np.linalg.inv(lattice).T  # rows b_i
    f0, f1 = (np.fft.fftfreq(n, 1.0 / n) for n in shape[:2])
    f2 = np.arange(shape[2] // 2 + 1, dtype=float)
    out = np.empty((shape[0], shape[1], f2.size))
    for h in range(shape[0]):  # plane by plane: no (n0, n1, n2, 3) temporary
        g = f0[h] * recip[0] + f1[:, None, None] * recip[1] + f2[None, :, None] * recip[2]
        out[h] = np.sqrt(np.einsum("jkx,jkx->jk", g, g))
    return out


def deposit_gaussians(lattice: np.ndarray, frac: np.ndarray, shape: tuple[int, int, int], width: float) -> np.ndarray:
    """Sum of periodic normalised 3D Gaussians (integral 1 each), sampled on the grid.

    The exponent -|L^T d|^2 / (2 w^2) of a fractional offset d is split into per-axis and
    per-axis-pair factors (metric tensor M = L L^T), so each atom costs outer products of
    1D/2D arrays over its box of +-DEPOSIT_CUTOFF (6) widths.

    Args:
        lattice: (3, 3) rows a, b, c in Angstrom.
        frac: (n, 3) fractional centres.
        shape: grid (n0, n1, n2).
        width: Gaussian standard deviation in Angstrom (>= 2 voxel spacings for accuracy).

    Returns:
        (n0, n1, n2) float64 in 1/Angstrom^3.
    """
    n = np.asarray(shape)
    metric = lattice @ lattice.T / width**2
    inv_len = np.linalg.norm(np.linalg.inv(lattice).T, axis=1)  # 1 / interplanar spacing
    reach = np.ceil(DEPOSIT_CUTOFF * width * inv_len * n).astype(int)
    steps = [np.arange(-r, r + 1) for r in reach]
    norm = 1.0 / ((2 * np.pi) ** 1.5 * width**3)
    flat = np.zeros(int(np.prod(shape)))
    lins, vals = [], []
    for count, x in enumerate(np.asarray(frac) * n, start=1):
        base = np.floor(x).astype(int)
        d = [(base[i] + steps[i] - x[i]) / n[i] for i in range(3)]  # fractional offsets per axis
        e = [np.exp(-0.5 * metric[i, i] * d[i] ** 2) for i in range(3)]
        val = (e[0][:, None, None] * e[1][None, :, None] * e[2][None, None, :]
               * np.exp(-metric[0, 1] * np.outer(d[0], d[1]))[:, :, None]
               * np.exp(-metric[0, 2] * np.outer(d[0], d[2]))[:, None, :]
               * np.exp(-metric[1, 2] * np.outer(d[1], d[2]))[None, :, :])
        idx = [np.mod(base[i] + steps[i], n[i]) for i in range(3)]
        lin = (idx[0][:, None, None] * n[1] + idx[1][None, :, None]) * n[2] + idx[2][None, None, :]
        lins.append(lin.ravel())
        vals.append(val.ravel())
        if count % ATOM_CHUNK == 0 or count == len(frac):  # one bincount per chunk of atoms
            flat += np.bincount(np.concatenate(lins), weights=np.concatenate(vals), minlength=flat.size)
            lins, vals = [], []
    return flat.reshape(shape) * norm


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
        sigma: Gaussian smoothing width in Angstrom, >= 1.5x the coarsest voxel spacing h.
            The grid's band limit truncates components smaller than exp(-pi^2 (sigma/h)^2 / 2)
            relative: 1.5e-5 at 1.5 h, 3e-9 at 2 h (the default of ``DensityGenerator.sad``).

    Returns:
        (n0, n1, n2) float64 density in e/Angstrom^3; sum * V / n_grid = sum(numbers).

    Raises:
        ValueError: sigma below 1.5 voxel spacings.
    """
    shape = tuple(int(n) for n in shape)
    lattice = np.asarray(lattice, dtype=float)
    frac, numbers = np.mod(np.asarray(frac, dtype=float), 1.0), np.asarray(numbers)
    spacing = float((np.linalg.norm(lattice, axis=1) / np.asarray(shape)).max())
    if sigma < MIN_SIGMA_VOXELS * spacing - 1e-12:
        raise ValueError(f"sigma = {sigma} A is below {MIN_SIGMA_VOXELS} voxel spacings ({spacing:.3f} A): "
                         "use a finer grid or a wider smoothing")
    width = min(sigma, DEPOSIT_WIDTHS * spacing)
    gnorm = _rfft_gnorm(lattice, shape)
    fourier = np.zeros(gnorm.shape, dtype=np.complex128)
    for z in np.unique(numbers):
        spectrum = fft.rfftn(deposit_gaussians(lattice, frac[numbers == z], shape, width), workers=-1)
        spectrum /= spectrum.flat[0].real / np.count_nonzero(numbers == z)  # exactly one per atom
        fourier += form_factor(int(z), gnorm, sigma, applied=width) * spectrum
    n_grid = float(np.prod(shape))
    rho = fft.irfftn(fourier, s=shape, overwrite_x=True, workers=-1)
    rho *= n_grid / abs(np.linalg.det(lattice))
    return rho


def gaussian_basis(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, shape: tuple[int, int, int],
                   widths: tuple[float, ...]) -> dict[int, np.ndarray]:
    """Per species, the superposition of normalised periodic Gaussians of each width over its atoms:
    a radial basis in which a superposition of atomic profiles g_Z(r) = sum_k c_Zk N(r; w_k) is linear.

    Args:
        lattice, frac, numbers, shape: as for ``sad_density``.
        widths: Gaussian standard deviations in Angstrom, each >= 1.5 voxel spacings.

    Returns:
        {Z: (len(widths), n0, n1, n2) float64 in 1/Angstrom^3}; each field integrates to the species' atom count.
    """
    shape = tuple(int(n) for n in shape)
    lattice = np.asarray(lattice, dtype=float)
    frac, numbers = np.mod(np.asarray(frac, dtype=float), 1.0), np.asarray(numbers)
    spacing = float((np.linalg.norm(lattice, axis=1) / np.asarray(shape)).max())
    if min(widths) < MIN_SIGMA_VOXELS * spacing - 1e-12:
        raise ValueError(f"widths down to {min(widths)} A are below {MIN_SIGMA_VOXELS} voxel spacings ({spacing:.3f} A)")
    deposit = min(min(widths), DEPOSIT_WIDTHS * spacing)
    g2 = _rfft_gnorm(lattice, shape) ** 2
    scale = float(np.prod(shape)) / abs(np.linalg.det(lattice))
    out = {}
    for z in np.unique(numbers):
        spectrum = fft.rfftn(deposit_gaussians(lattice, frac[numbers == z], shape, deposit), workers=-1)
        spectrum /= spectrum.flat[0].real / np.count_nonzero(numbers == z)  # exactly one per atom
        out[int(z)] = np.stack([fft.irfftn(spectrum * np.exp(-0.5 * (w * w - deposit * deposit) * g2), s=shape,
                                           workers=-1) * scale for w in widths])
    return out
