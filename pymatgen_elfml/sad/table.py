"""The shipped free-atom radial densities and their Gaussian-smoothed form factors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.interpolate import CubicSpline

TABLE_FILE = "proatoms_pbe0.npz"
DQ = 0.01  # 1/Angstrom, spacing of the tabulated form factors
GAUSS_CUTOFF = 7.5  # form factors are zero where sigma * q > 7.5 (exp(-28) ~ 1e-12)


@dataclass(frozen=True)
class RadialTable:
    """All-electron spherical free-atom densities.

    Attributes:
        r: (n_r,) log-spaced radii in Angstrom.
        rho: (103, n_r) densities in e/Angstrom^3, row Z-1 for element Z.
        meta: provenance (source, licence, count errors).
    """

    r: np.ndarray
    rho: np.ndarray
    meta: dict

    def profile(self, z: int) -> np.ndarray:
        """(n_r,) density of element ``z`` in e/Angstrom^3."""
        if not 1 <= z <= self.rho.shape[0]:
            raise ValueError(f"no free-atom density for Z={z} (table covers 1..{self.rho.shape[0]})")
        return self.rho[z - 1].astype(np.float64)


@lru_cache(maxsize=1)
def load_table() -> RadialTable:
    """Load (once) the table built by ``python -m pymatgen_elfml.sad.build_table``."""
    path = resources.files("pymatgen_elfml.sad").joinpath("data", TABLE_FILE)
    try:
        with path.open("rb") as fh, np.load(fh) as npz:
            return RadialTable(np.array(npz["r"]), np.array(npz["rho"]), json.loads(str(npz["meta"])))
    except (OSError, KeyError, ValueError) as exc:
        raise RuntimeError(f"the shipped radial density table {path} is missing or corrupted: {exc}") from exc


def form_factor(z: int, q: np.ndarray, sigma: float, applied: float = 0.0) -> np.ndarray:
    """Fourier transform of the Gaussian-smoothed free-atom density.

    f_Z(q) = exp(-(sigma^2 - applied^2) q^2 / 2) * 4 pi int rho_Z(r) r^2 sin(q r)/(q r) dr,
    so f_Z(0) = Z; zero where sigma * q > 7.5 (the full smoothing has made it < 1e-12 Z).

    Args:
        z: atomic number.
        q: (...) wavevector magnitudes |G| in 1/Angstrom (G includes the 2 pi).
        sigma: total Gaussian smoothing width in Angstrom (> 0).
        applied: the part of the smoothing (Angstrom, <= sigma) that the caller applies itself.

    Returns:
        (...) form factor in electrons.
    """
    if not 0 <= applied <= sigma:
        raise ValueError(f"need 0 <= applied ({applied}) <= sigma ({sigma})")
    q = np.abs(np.asarray(q, dtype=float))
    q_max = GAUSS_CUTOFF / sigma
    out = _raw_form_factor_spline(z, float(sigma))(np.minimum(q, q_max))
    out *= np.exp(-0.5 * (sigma**2 - applied**2) * q**2)
    out[q > q_max] = 0.0
    return out


@lru_cache(maxsize=256)
def _raw_form_factor_spline(z: int, sigma: float) -> CubicSpline:
    """Cubic spline of the unsmoothed form factor on [0, 7.5 / sigma] 1/Angstrom."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma} A")
    table = load_table()
    r_log, rho_log = table.r, table.profile(z)
    # a dense radial grid: log-spaced inside 0.3 A (cores), uniform 0.004 A outside
    r = np.concatenate([r_log[r_log < 0.3], np.arange(0.3, r_log[-1], 0.004)])
    rho = np.exp(np.interp(np.log(r), np.log(r_log), np.log(np.maximum(rho_log, 1e-300))))
    q = np.arange(0.0, GAUSS_CUTOFF / sigma + 2 * DQ, DQ)
    weights = np.gradient(r) * 4.0 * np.pi * r**2 * rho  # trapezoid-like quadrature weights
    weights *= z / weights.sum()  # exact charge: f(0) = Z
    f = np.empty_like(q)
    for start in range(0, q.size, 512):
        qs = q[start : start + 512]
        f[start : start + 512] = np.sinc(np.outer(qs, r) / np.pi) @ weights
    return CubicSpline(q, f)


def smoothed_radial_density(z: int, r: np.ndarray, sigma: float) -> np.ndarray:
    """The Gaussian-smoothed density rho_Z * g_sigma at radii ``r`` (Angstrom), in e/Angstrom^3.

    Inverse transform of ``form_factor``: (1 / 2 pi^2) int f(q) q^2 sin(q r)/(q r) dq.
    Used for real-space checks of the reciprocal-space rasterizer.
    """
    q = np.arange(0.0, GAUSS_CUTOFF / sigma + DQ, DQ)
    f = form_factor(z, q, sigma)
    r = np.asarray(r, dtype=float)
    w = np.gradient(q) * q**2 * f / (2.0 * np.pi**2)
    return np.sinc(np.outer(r.ravel(), q) / np.pi) @ w
