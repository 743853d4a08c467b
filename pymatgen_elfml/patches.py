"""Periodic patches: wrap-around extraction (stride, halo, jitter) and weighted stitching.

A patch with start (i0, i1, i2) and edge p covers grid indices (i + arange(p)) mod N
along each axis; its fractional origin is o = (i0/N0, i1/N1, i2/N2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def patch_starts(shape: tuple[int, int, int], stride: int | tuple[int, int, int], offset=(0, 0, 0)) -> np.ndarray:
    """Starts (i s + o) mod N of patches that tile a periodic grid.

    Args:
        shape: grid (N0, N1, N2).
        stride: step s between patch starts (int or per axis); ceil(N / s) patches per axis.
        offset: origin jitter o, added to every start modulo N.

    Returns:
        (n_patches, 3) int64 starts, axis 0 slowest.
    """
    stride = _triple(stride, "stride")
    axes = [(np.arange(math.ceil(n / s)) * s + o) % n for n, s, o in zip(shape, stride, offset)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3).astype(np.int64)


def _triple(v, name: str) -> tuple[int, int, int]:
    t = (v, v, v) if np.isscalar(v) else tuple(v)
    if len(t) != 3 or any(int(x) < 1 for x in t):
        raise ValueError(f"{name} must be a positive int or three of them, got {v!r}")
    return tuple(int(x) for x in t)


def _indices(starts: np.ndarray, size: tuple[int, int, int], shape) -> list[np.ndarray]:
    """Per-axis wrapped index arrays, each (n_patches, size_i)."""
    return [(starts[:, i, None] + np.arange(size[i])) % shape[i] for i in range(3)]


def extract(field: np.ndarray, starts: np.ndarray, size: int | tuple[int, int, int]) -> np.ndarray:
    """Cut periodic patches by wrap-around indexing (np.take with mode="wrap" semantics).

    Args:
        field: (N0, N1, N2) array.
        starts: (n, 3) integer starts (any integers; taken modulo N).
        size: patch edge p (or three edges); may exceed N (the field repeats).

    Returns:
        (n, p0, p1, p2) array of the field's dtype.
    """
    size = _triple(size, "size")
    i0, i1, i2 = _indices(np.asarray(starts, dtype=np.int64), size, field.shape)
    return field[i0[:, :, None, None], i1[:, None, :, None], i2[:, None, None, :]]


@dataclass
class Stitcher:
    """Accumulates patch values onto a periodic grid and averages overlaps.

    Holds two full-grid float64 arrays (sum and weight); everything else is per batch.
    """

    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        self.total = np.zeros(self.shape, dtype=np.float64)
        self.weight = np.zeros(self.shape, dtype=np.float64)

    def add(self, patches: np.ndarray, starts: np.ndarray) -> None:
        """Add (n, p0, p1, p2) patches whose first voxel sits at ``starts`` (n, 3)."""
        size = patches.shape[1:]
        i0, i1, i2 = _indices(np.asarray(starts, dtype=np.int64), size, self.shape)
        idx = (i0[:, :, None, None], i1[:, None, :, None], i2[:, None, None, :])
        np.add.at(self.total, idx, patches)
        np.add.at(self.weight, idx, 1.0)

    def result(self) -> np.ndarray:
        """The averaged field; raises if some grid point was never covered."""
        if not np.all(self.weight > 0):
            raise RuntimeError(f"{int((self.weight == 0).sum())} grid points were not covered by any patch")
        return self.total / self.weight


def stitch(patches: np.ndarray, starts: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Average overlapping periodic patches back into a (N0, N1, N2) field."""
    st = Stitcher(tuple(shape))
    st.add(patches, starts)
    return st.result()
