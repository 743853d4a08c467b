"""One answer per crystal: reduce a cell to its primitive cell and map fields back onto the cell's grid.

A supercell or a non-primitive setting (the conventional cell of fcc, say) holds the same crystal as
its primitive cell, repeated. The predictors run the network on the primitive cell only, so that the
cost does not grow with the number of lattice translations and the answer does not depend on the cell
the user wrote the crystal in, then sample that field at the points of the user's grid.

The primitive cell keeps the input's Cartesian frame and origin (no rotation, no origin shift): its
lattice is the Niggli-reduced basis (spglib) of the lattice spanned by the input's pure translations,
and a point at fractional f of the input cell sits at f @ M of the primitive cell, M the integer
matrix with ``input lattice = M @ primitive lattice`` (lattice vectors as rows). Numpy and spglib only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spglib
from scipy import ndimage

from pymatgen_elfml.cell import Cell
from pymatgen_elfml.symmetry import SeitzOps

SLAB_POINTS = 2**21  # output grid points interpolated at once (bounds the coordinate arrays' memory)


@dataclass(frozen=True)
class Reduction:
    """A cell's primitive cell and how the two are related.

    Attributes:
        primitive: the primitive cell, Niggli-reduced, in the input's Cartesian frame and origin.
        supercell: (3, 3) int M with ``input.lattice == M @ primitive.lattice``; |det M| is the number
            of primitive cells in the input cell (1: the input is primitive, possibly another basis).
    """

    primitive: Cell
    supercell: np.ndarray

    @property
    def multiplicity(self) -> int:
        """Primitive cells in the input cell."""
        return int(round(abs(np.linalg.det(self.supercell))))


def reduce_to_primitive(cell: Cell, ops: SeitzOps, symprec: float = 0.01) -> Reduction:
    """The primitive cell of ``cell`` from its pure translations (``ops`` with R = identity).

    Args:
        cell: the structure as given.
        ops: its Seitz operators (``symmetry.seitz_ops``, same ``symprec``).
        symprec: Angstrom; atoms of the input that the translations map onto each other within this
            distance become one atom of the primitive cell (the first one's position is kept).

    Returns:
        The reduction. When the atoms do not map onto each other consistently (a tolerance edge case),
        the input cell itself with M = identity: it is then predicted as given.
    """
    pure = np.all(ops.rotations == np.eye(3, dtype=int), axis=(1, 2))
    basis = _lattice_basis(ops.translations[pure])  # (3, 3) fractional rows, det = 1 / n_translations
    reduced = spglib.niggli_reduce(basis @ cell.lattice)
    if reduced is None:
        return Reduction(cell, np.eye(3, dtype=int))
    reduced = _canonical_basis(np.asarray(reduced, float))
    m_float = cell.lattice @ np.linalg.inv(reduced)
    m = np.rint(m_float).astype(int)
    n_cells = int(round(abs(np.linalg.det(m))))
    if np.abs(m - m_float).max() > 1e-6 or n_cells != int(pure.sum()) or len(cell.numbers) % n_cells:
        return Reduction(cell, np.eye(3, dtype=int))
    frac = np.mod(cell.frac @ m, 1.0)
    keep = _first_of_each_site(frac, reduced, symprec)
    if len(keep) * n_cells != len(cell.numbers):
        return Reduction(cell, np.eye(3, dtype=int))
    primitive = Cell(lattice=np.asarray(reduced, float), frac=frac[keep], numbers=cell.numbers[keep])
    return Reduction(primitive, m)


def _unimodular_small() -> np.ndarray:
    """(k, 3, 3) integer matrices with entries in {-1, 0, 1} and determinant +1."""
    grid = np.array(np.meshgrid(*[[-1, 0, 1]] * 9, indexing="ij")).reshape(9, -1).T.reshape(-1, 3, 3)
    return grid[np.rint(np.linalg.det(grid)).astype(int) == 1]


def _canonical_basis(lattice: np.ndarray) -> np.ndarray:
    """One basis per lattice among its equally reduced ones (same Gram matrix as the Niggli cell).

    Niggli reduction fixes the metric but not the vectors: the same fcc lattice comes back as
    different signed permutations of one basis depending on the input cell. Of all U @ lattice with U
    unimodular (entries -1, 0, 1) and the same Gram matrix, the lexicographically largest (to 1e-4 A)
    is taken, so every cell of one crystal is predicted on the very same primitive grid. The basis is made
    right-handed first (a mirror-image basis would put the grid, and a network that is not mirror
    equivariant, on the crystal's mirror image).
    """
    if np.linalg.det(lattice) < 0:  # -I is an automorphism of every lattice: always a right-handed basis
        lattice = -lattice
    cands = _unimodular_small() @ lattice  # (k, 3, 3)
    gram = lattice @ lattice.T
    same = np.abs(np.einsum("kij,klj->kil", cands, cands) - gram).max(axis=(1, 2)) < 1e-6 * max(1.0, gram.max())
    cands = cands[same]
    keys = np.round(cands.reshape(len(cands), 9), 4)
    best = np.lexsort(keys.T[::-1])[-1]
    return cands[best]


def _lattice_basis(translations: np.ndarray) -> np.ndarray:
    """A basis (3, 3 rows, fractional) of the lattice spanned by the unit vectors and ``translations`` (k, 3).

    The k pure translations form a group of order k, so k t is a lattice vector of the cell for each of
    them: every coordinate is a multiple of 1/k.
    """
    translations = np.atleast_2d(np.asarray(translations, float))
    den = max(1, len(translations))
    rows = [[den if i == j else 0 for j in range(3)] for i in range(3)]
    rows += [[int(round(t * den)) % den for t in row] for row in translations]
    return np.array(_hermite_rows(rows), dtype=float) / den


def _hermite_rows(rows: list[list[int]]) -> list[list[int]]:
    """Three rows spanning the same integer lattice as ``rows`` (integer row reduction, upper triangular)."""
    rows = [list(r) for r in rows]
    for col in range(3):
        while True:
            live = [i for i in range(col, len(rows)) if rows[i][col] != 0]
            pivot = min(live, key=lambda i: abs(rows[i][col]))
            rows[col], rows[pivot] = rows[pivot], rows[col]
            others = [i for i in range(col + 1, len(rows)) if rows[i][col] != 0]
            if not others:
                break
            for i in others:
                q = rows[i][col] // rows[col][col]
                rows[i] = [a - q * b for a, b in zip(rows[i], rows[col])]
    return rows[:3]


def _first_of_each_site(frac: np.ndarray, lattice: np.ndarray, tol: float) -> np.ndarray:
    """Indices of the first of every group of positions (n, 3 fractional) closer than ``tol`` Angstrom."""
    keep: list[int] = []
    for i, f in enumerate(frac):
        if keep:
            d = frac[keep] - f
            d -= np.rint(d)
            if np.linalg.norm(d @ lattice, axis=1).min() < tol:
                continue
        keep.append(i)
    return np.array(keep, dtype=int)


def _index_map(supercell: np.ndarray, primitive_shape, shape) -> np.ndarray:
    """(3, 3) K with primitive grid index = output grid index @ K; K_ij = M_ij p_j / n_i."""
    return np.asarray(supercell, float) * np.asarray(primitive_shape, float)[None, :] / np.asarray(shape, float)[:, None]


def copies_exactly(supercell: np.ndarray, primitive_shape, shape) -> bool:
    """True when every output grid point is a point of the primitive grid (``map_to_cell`` copies values;
    a symmetric field then stays exactly symmetric)."""
    k = _index_map(supercell, primitive_shape, shape)
    return bool(np.abs(k - np.rint(k)).max() < 1e-9)


def map_to_cell(field: np.ndarray, supercell: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Sample a field of the primitive cell at every point of the input cell's grid.

    Point [i, j, k] of the output sits at fractional f = (i/n0, j/n1, k/n2) of the input cell, i.e.
    at f @ M of the primitive cell. Where every such point is a point of the primitive grid (the grids
    are commensurate) the values are copied exactly; otherwise they come from a periodic cubic B-spline.

    Args:
        field: (p0, p1, p2) values on the primitive cell's grid.
        supercell: (3, 3) int M of ``Reduction`` (the identity resamples a field of one cell onto another grid).
        shape: (n0, n1, n2) output grid of the input cell.

    Returns:
        (n0, n1, n2) float64.
    """
    field = np.asarray(field, dtype=float)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"target grid must be three positive integers, got {shape}")
    k = _index_map(supercell, field.shape, shape)
    exact = copies_exactly(supercell, field.shape, shape)
    coeffs = field if exact else ndimage.spline_filter(field, order=3, mode="grid-wrap")
    out = np.empty(shape)
    rows = max(1, SLAB_POINTS // (shape[1] * shape[2]))
    jk = np.arange(shape[1])[:, None, None] * k[1] + np.arange(shape[2])[None, :, None] * k[2]  # (n1, n2, 3)
    for i0 in range(0, shape[0], rows):
        i = np.arange(i0, min(i0 + rows, shape[0]))
        pos = (i[:, None, None, None] * k[0] + jk[None]).reshape(-1, 3)
        if exact:
            p = np.mod(np.rint(pos).astype(np.int64), np.asarray(field.shape))
            vals = field[p[:, 0], p[:, 1], p[:, 2]]
        else:
            vals = ndimage.map_coordinates(coeffs, np.mod(pos, field.shape).T, order=3, mode="grid-wrap", prefilter=False)
        out[i0 : i0 + len(i)] = vals.reshape(len(i), shape[1], shape[2])
    return out
