"""Figures of an ELF and of a screening run (matplotlib, an optional extra: ``pip install "pymatgen-elfml[screening]"``).

Every function draws into a new figure, saves it when ``path`` is given (PNG by extension, written to a
temporary name and renamed) and returns the ``Figure``. Slices are sampled from the periodic grid with a
cubic spline, so any lattice plane can be drawn, not only grid planes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from pymatgen_elfml import io


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib: pip install "pymatgen-elfml[screening]"') from exc
    return plt


def _save(fig, path: str | os.PathLike | None):
    if path is not None:
        with io.atomic_path(path, suffix=Path(path).suffix) as tmp:
            fig.savefig(tmp, dpi=130)
    return fig


def _sample(field: np.ndarray, frac_points: np.ndarray) -> np.ndarray:
    """Periodic cubic-spline values of a grid field at fractional points (..., 3)."""
    coords = np.mod(frac_points, 1.0) * np.array(field.shape)
    flat = coords.reshape(-1, 3).T
    return ndimage.map_coordinates(field, flat, order=3, mode="grid-wrap").reshape(frac_points.shape[:-1])


def plane_basis(lattice: np.ndarray, hkl: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit normal (Cartesian) of the (hkl) plane and two in-plane lattice vectors spanning it (Angstrom).

    The in-plane vectors are the two shortest independent lattice vectors u a + v b + w c with
    h u + k v + l w = 0 (|u|, |v|, |w| <= 3), so the drawn area is one 2D period of the plane.
    """
    hkl = np.asarray(hkl, int)
    if hkl.shape != (3,) or not hkl.any():
        raise ValueError(f"hkl must be three integers, not all zero, got {hkl.tolist()}")
    normal = hkl @ np.linalg.inv(lattice).T
    normal /= np.linalg.norm(normal)
    rng = np.arange(-3, 4)
    cands = np.stack(np.meshgrid(rng, rng, rng, indexing="ij"), -1).reshape(-1, 3)
    cands = cands[(cands @ hkl == 0) & cands.any(axis=1)]
    cart = cands @ lattice
    order = np.argsort(np.linalg.norm(cart, axis=1), kind="stable")
    u = cart[order[0]]
    for j in order[1:]:
        if np.linalg.norm(np.cross(u, cart[j])) > 1e-6:
            return normal, u, cart[j]
    raise ValueError(f"no two independent in-plane lattice vectors found for hkl {hkl.tolist()}")


def elf_slice(elfcar: Any, hkl: Sequence[int] = (0, 0, 1), offset: float = 0.0, path: str | os.PathLike | None = None,
              maxima: Sequence[Sequence[float]] | None = None, points: int = 200, atom_tol: float = 0.3):
    """ELF on a lattice plane: (hkl) through the point ``offset`` x (plane spacing) along the normal.

    Args:
        elfcar: a pymatgen ``Elfcar`` (or any VolumetricData holding ELF).
        hkl: Miller indices of the plane; offset: position of the plane in units of the plane spacing d_hkl.
        maxima: fractional positions to mark (e.g. ``screening`` maxima), drawn where they lie on the plane.
        atom_tol: atoms and maxima within this distance (Angstrom) of the plane are drawn.
    """
    plt = _pyplot()
    elf = io.elf_from_elfcar(elfcar)
    lattice = np.asarray(elfcar.structure.lattice.matrix)
    normal, u, v = plane_basis(lattice, hkl)
    d_hkl = 1.0 / np.linalg.norm(np.asarray(hkl) @ np.linalg.inv(lattice).T)
    origin = normal * offset * d_hkl
    s = np.linspace(0, 1, points)
    cart = origin + s[:, None, None] * u + s[None, :, None] * v
    values = _sample(elf, cart @ np.linalg.inv(lattice))
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    ex = u / np.linalg.norm(u)
    ey = np.cross(normal, ex) * (1.0 if np.cross(normal, ex) @ v >= 0 else -1.0)  # v points up
    rel = cart - origin
    mesh = ax.pcolormesh(rel @ ex, rel @ ey, values, cmap="viridis", vmin=0, vmax=1, shading="gouraud")
    fig.colorbar(mesh, ax=ax, label="ELF (dimensionless)")
    frame = (lattice, origin, normal, u, v, ex, ey, atom_tol)
    _mark(ax, elfcar.structure.cart_coords, frame, "o", "white", "atoms", [str(sp) for sp in elfcar.structure.species])
    if maxima is not None and len(maxima):
        _mark(ax, np.asarray(maxima, float)[:, :3] @ lattice, frame, "X", "red", "ELF maxima", None)
    ax.set(xlabel="distance along u (Angstrom)", ylabel="distance across (Angstrom)", aspect="equal")
    ax.set_title(f"{elfcar.structure.composition.reduced_formula}: ELF on ({' '.join(map(str, hkl))}), offset {offset:.3g} d",
                 pad=20)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=7, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def _mark(ax, cart: np.ndarray, frame: tuple, marker, color, label, names) -> None:
    """Draw the periodic images of Cartesian points that lie within ``tol`` of the plane, in plane coordinates
    (``frame``: lattice, plane origin, normal, in-plane u and v, drawing axes ex and ey, tol)."""
    lattice, origin, normal, u, v, ex, ey, tol = frame
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3) @ lattice
    basis = np.linalg.pinv(np.stack([u, v]))  # (3, 2): Cartesian -> (s, t)
    drawn = False
    for i, p in enumerate(cart):
        for q in p + shifts - origin:
            st = q @ basis
            if abs(q @ normal) < tol and np.all(st > -1e-6) and np.all(st < 1 + 1e-6):
                ax.plot(q @ ex, q @ ey, marker, color=color, mec="black", ms=11, clip_on=False, zorder=5,
                        label=None if drawn else label)
                if names:
                    ax.annotate(names[i], (q @ ex, q @ ey), color="black", fontsize=6, ha="center", va="center", zorder=6,
                                annotation_clip=False)
                drawn = True


def line_profile(elfcar: Any, start: Sequence[float], end: Sequence[float], path: str | os.PathLike | None = None,
                 points: int = 300):
    """ELF along the straight line between two fractional points (e.g. an atom and an interstitial site)."""
    plt = _pyplot()
    elf = io.elf_from_elfcar(elfcar)
    lattice = np.asarray(elfcar.structure.lattice.matrix)
    a, b = np.asarray(start, float), np.asarray(end, float)
    t = np.linspace(0, 1, points)
    values = _sample(elf, a + t[:, None] * (b - a))
    dist = t * np.linalg.norm((b - a) @ lattice)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    ax.plot(dist, values, color="C0")
    ax.set(xlabel="distance from start (Angstrom)", ylabel="ELF (dimensionless)", ylim=(0, 1),
           title=f"{elfcar.structure.composition.reduced_formula}: ELF from {np.round(a, 3).tolist()} to {np.round(b, 3).tolist()}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def score_vs_volume(rows: Sequence[dict], path: str | os.PathLike | None = None, key: str = "score"):
    """A screening run's ``key`` (default the template score) against V/V0, one line per template."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    names = sorted({r["name"] for r in rows if r.get(key) is not None})
    for name in names:
        pts = sorted((r["volume_ratio"], r[key]) for r in rows if r["name"] == name and r.get(key) is not None)
        ax.plot(*zip(*pts), "o-", label=name)
    ax.set(xlabel="V / V0 (compression: smaller is higher pressure)", ylabel=f"{key} (dimensionless)",
           title=f"template {key} vs compression")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(names) > 8 else 1)
    fig.tight_layout()
    return _save(fig, path)
