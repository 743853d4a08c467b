"""Field comparison metrics: errors, PSNR, value histograms and interstitial ELF maxima."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pymatgen_elfml.features import nearest_nucleus_distance


def field_errors(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """MAE, RMSE, 95th percentile |error|, PSNR (peak 1, ELF units, dB) and the L1 distance of
    the 50-bin value histograms on [0, 1] (0 = identical distributions, 2 = disjoint)."""
    p, r = np.asarray(pred, float), np.asarray(ref, float)
    if mask is not None:
        p, r = p[mask], r[mask]
    err = np.abs(p - r)
    mse = float(np.mean(err**2))
    hp, _ = np.histogram(p, bins=50, range=(0, 1))
    hr, _ = np.histogram(r, bins=50, range=(0, 1))
    return {"mae": float(err.mean()), "rmse": mse**0.5, "p95": float(np.percentile(err, 95)),
            "psnr": float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf"),
            "hist_l1": float(np.abs(hp / hp.sum() - hr / hr.sum()).sum())}


def distance_to_nuclei(lattice: np.ndarray, frac: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(n0, n1, n2) distance in Angstrom from every grid point to the nearest nucleus (periodic, exact)."""
    bound = float(np.linalg.norm(np.asarray(lattice, float), axis=1).sum())  # no point is farther than this
    return nearest_nucleus_distance(lattice, frac, shape, cap=bound)


def peak_mask(elf: np.ndarray, allowed: np.ndarray, min_value: float = 0.0) -> np.ndarray:
    """(n0, n1, n2) bool: strict local maxima (periodic 3x3x3 neighbourhood, flat regions excluded) where
    ``allowed`` is True and the ELF is at least ``min_value``."""
    peak = (elf == ndimage.maximum_filter(elf, size=3, mode="wrap")) & (elf >= min_value) & allowed
    return peak & (elf > ndimage.minimum_filter(elf, size=3, mode="wrap") + 1e-6)  # flat regions are no maxima


def interstitial_maxima(elf: np.ndarray, lattice: np.ndarray, frac: np.ndarray, min_dist: float = 1.0,
                        min_value: float = 0.0) -> np.ndarray:
    """Strict local maxima (periodic 3x3x3 neighbourhood) more than ``min_dist`` A from every nucleus.

    Returns:
        (m, 4) rows (f0, f1, f2, ELF) with fractional positions.
    """
    peak = peak_mask(elf, distance_to_nuclei(lattice, frac, elf.shape) > min_dist, min_value)
    idx = np.argwhere(peak)
    return np.column_stack([idx / np.array(elf.shape), elf[peak]]) if len(idx) else np.zeros((0, 4))


def match_maxima(pred: np.ndarray, ref: np.ndarray, lattice: np.ndarray, tol: float = 0.3) -> dict:
    """Fraction of reference maxima with a predicted maximum within ``tol`` A, and |dELF| there."""
    if len(ref) == 0:
        return {"n_ref": 0, "recall": float("nan"), "value_mae": float("nan")}
    found, dvals = 0, []
    for row in ref:
        if len(pred) == 0:
            break
        d = pred[:, :3] - row[:3]
        d -= np.round(d)
        dist = np.linalg.norm(d @ lattice, axis=1)
        j = int(np.argmin(dist))
        if dist[j] <= tol:
            found += 1
            dvals.append(abs(pred[j, 3] - row[3]))
    return {"n_ref": len(ref), "recall": found / len(ref), "value_mae": float(np.mean(dvals)) if dvals else float("nan")}
