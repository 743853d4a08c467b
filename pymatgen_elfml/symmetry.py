"""Space-group Seitz operators {R|t} from spglib and their action on periodic grids.

Conventions: R is an integer (3, 3) matrix acting on fractional column vectors,
x -> R x + t (mod 1), with t in [0, 1)^3; operators are those of the cell *as given*
(a supercell has its pure lattice translations among them), not of a standardised
setting. A grid of shape (n0, n1, n2) holds point [i, j, k] at fractional
(i/n0, j/n1, k/n2), as in VASP and pymatgen.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import spglib

from pymatgen_elfml.cell import Cell


@dataclass(frozen=True)
class SeitzOps:
    """A set of Seitz operators.

    Attributes:
        rotations: (n_ops, 3, 3) int, acting on fractional coordinates.
        translations: (n_ops, 3) float, fractional, in [0, 1).
    """

    rotations: np.ndarray
    translations: np.ndarray

    def __len__(self) -> int:
        return len(self.rotations)

    def as_matrices(self) -> np.ndarray:
        """(n_ops, 4, 4) float64 augmented matrices [[R, t], [0, 1]] (the paper's stem_sym.npy)."""
        out = np.zeros((len(self), 4, 4))
        out[:, :3, :3] = self.rotations
        out[:, :3, 3] = self.translations
        out[:, 3, 3] = 1.0
        return out

    @classmethod
    def from_matrices(cls, mats: np.ndarray) -> SeitzOps:
        """Inverse of ``as_matrices``; validates shape and integer rotations."""
        mats = np.asarray(mats, dtype=float)
        if mats.ndim != 3 or mats.shape[1:] != (4, 4) or len(mats) == 0:
            raise ValueError(f"Seitz array must have shape (R, 4, 4) with R >= 1, got {mats.shape}")
        rot = np.rint(mats[:, :3, :3])
        if np.abs(rot - mats[:, :3, :3]).max() > 1e-6:
            raise ValueError("Seitz rotation blocks must be integer matrices")
        return cls(rot.astype(int), np.mod(mats[:, :3, 3], 1.0))

    @classmethod
    def identity(cls) -> SeitzOps:
        """The trivial group {E|0}."""
        return cls(np.eye(3, dtype=int)[None], np.zeros((1, 3)))


def seitz_ops(cell: Cell, symprec: float = 0.01, angle_tolerance: float = 5.0) -> SeitzOps:
    """Seitz operators of ``cell`` as given, from ``spglib.get_symmetry``.

    Args:
        cell: validated structure arrays.
        symprec: distance tolerance in Angstrom (pymatgen's default, 0.01).
        angle_tolerance: angle tolerance in degrees.

    Translations are snapped to nearby fractions (spglib returns e.g. 0.49999998), so that
    grids can be made commensurate; see ``_snap_fractions``.
    """
    with warnings.catch_warnings():  # spglib 2.x deprecation notice about its error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        sym = spglib.get_symmetry(
            (cell.lattice, cell.frac, cell.numbers), symprec=symprec, angle_tolerance=angle_tolerance
        )
    if sym is None:
        raise RuntimeError(f"spglib found no symmetry: {spglib.get_error_message()}")
    trans = np.mod(_snap_fractions(np.asarray(sym["translations"], dtype=float)), 1.0)
    return SeitzOps(np.asarray(sym["rotations"], dtype=int), trans)


def _snap_fractions(values: np.ndarray) -> np.ndarray:
    """Snap near-fractions: within 1e-4 of a crystallographic fraction (denominator 1-12, 24),
    or within 1e-7 of any fraction with denominator <= 120 (supercells)."""
    out = values.copy()
    for idx, v in np.ndenumerate(values):
        for max_den, tol in ((12, 1e-4), (24, 1e-4), (120, 1e-7)):
            f = Fraction(float(v)).limit_denominator(max_den)
            if abs(float(f) - v) < tol:
                out[idx] = float(f)
                break
    return out


def pad_seitz(matrices: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged (R_b, 4, 4) Seitz arrays into (B, R_max, 4, 4) float32, zero-padded,
    with a (B, R_max) float32 mask of the real operators (the input format of ``SymmAvg3D``)."""
    r_max = max(len(m) for m in matrices)
    out = np.zeros((len(matrices), r_max, 4, 4), dtype=np.float32)
    mask = np.zeros((len(matrices), r_max), dtype=np.float32)
    for b, m in enumerate(matrices):
        out[b, : len(m)] = m
        mask[b, : len(m)] = 1.0
    return out, mask


def patch_frame(ops: SeitzOps, origin: np.ndarray) -> SeitzOps:
    """Express operators in a frame whose fractional origin is ``origin`` (3,).

    t' = (R o + t - o) mod 1, so that x - o -> R (x - o) + t'.
    """
    origin = np.asarray(origin, dtype=float)
    t_new = np.einsum("nij,j->ni", ops.rotations, origin) + ops.translations - origin
    return SeitzOps(ops.rotations, np.mod(t_new, 1.0))


def patch_ops(ops: SeitzOps, first: np.ndarray, edge: int, shape: tuple[int, int, int]) -> SeitzOps:
    """Operators for symmetry pooling inside one patch (patch frame).

    A patch that spans the whole cell (``edge == N_i`` on every axis) is the torus itself, and
    pooling over every operator in the patch frame is exact. A smaller patch is not mapped
    onto itself by a general operator: the appendix's pooling would wrap operator images
    inside the patch and average unrelated voxels (even of the symmetric SAD), so such
    patches get the identity only; symmetry is then imposed by ``symmetrize`` on the full
    cell after stitching.

    Args:
        ops: the cell's operators (fractional).
        first: (3,) grid index of the patch's first voxel (halo included).
        edge: patch edge in voxels (halo included), one or three of them.
        shape: (N0, N1, N2) cell grid.
    """
    if np.all(np.asarray(edge) == np.asarray(shape)):
        return patch_frame(ops, np.asarray(first, dtype=float) / np.asarray(shape, dtype=float))
    return SeitzOps.identity()


def _grid_action(shape: tuple[int, int, int], ops: SeitzOps, tol: float):
    """Real-valued A_ij = R_ij n_i / n_j and c_i = t_i n_i, and which operators make them integral."""
    n = np.asarray(shape, dtype=float)
    a = ops.rotations * n[None, :, None] / n[None, None, :]
    c = ops.translations * n[None, :]
    ok = (np.abs(a - np.rint(a)).max(axis=(1, 2)) <= tol) & (np.abs(c - np.rint(c)).max(axis=1) <= tol)
    return a, c, ok


def commensurate_ops(shape: tuple[int, int, int], ops: SeitzOps, tol: float = 1e-6) -> SeitzOps:
    """The operators that map the grid onto itself (a subgroup: closed under composition).

    All of them for grids from ``grid.grid_shape`` unless the cell's origin makes some
    translations irrational (e.g. a mirror plane at an arbitrary height).
    """
    ok = _grid_action(shape, ops, tol)[2]
    return SeitzOps(ops.rotations[ok], ops.translations[ok])


def grid_map_coefficients(shape: tuple[int, int, int], ops: SeitzOps, tol: float = 1e-6):
    """Integer form of the operators on a grid: index m -> A m + c (mod shape).

    Returns:
        A: (n_ops, 3, 3) int with A_ij = R_ij n_i / n_j; c: (n_ops, 3) int with c_i = t_i n_i.

    Raises:
        ValueError: when the grid is not commensurate with the operators.
    """
    a, c, ok = _grid_action(shape, ops, tol)
    if not ok.all():
        raise ValueError(f"grid {tuple(shape)} is not commensurate with the {len(ops)} symmetry operators")
    return np.rint(a).astype(np.int64), np.rint(c).astype(np.int64)


def is_commensurate(shape: tuple[int, int, int], ops: SeitzOps) -> bool:
    """True when every operator maps grid points onto grid points."""
    return bool(_grid_action(shape, ops, 1e-6)[2].all())


def _mapped_flat_indices(shape, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Flat index of the image of every grid point under one operator, shape ``shape``.

    Each image component (A m + c)_i mod n_i is computed on the axes it depends on only (one axis for
    the axis permutations of orthogonal settings, two for hexagonal ones) and broadcast at the end.
    """
    idx = [np.arange(s, dtype=np.int64).reshape([-1 if k == j else 1 for k in range(3)]) for j, s in enumerate(shape)]
    strides = (shape[1] * shape[2], shape[2], 1)
    out = np.zeros((1, 1, 1), dtype=np.int64)
    for i in range(3):
        comp = np.int64(c[i]) + sum((a[i, j] * idx[j] for j in range(3) if a[i, j]), np.zeros((1, 1, 1), np.int64))
        out = out + np.mod(comp, shape[i]) * strides[i]
    return np.broadcast_to(out, shape)


def symmetrize(field: np.ndarray, ops: SeitzOps) -> np.ndarray:
    """Exact space-group average of a periodic field on a commensurate grid.

    f_sym(m) = (1/|G|) sum_g f(g m): an index permutation per operator, no interpolation.

    Args:
        field: (n0, n1, n2) array.
        ops: operators of the cell the field lives on.

    Returns:
        (n0, n1, n2) float64 array, invariant under every operator to rounding.
    """
    field = np.asarray(field)
    a, c = grid_map_coefficients(field.shape, ops)
    acc = np.zeros(field.shape, dtype=np.float64)
    for k in range(len(ops)):
        acc += _pulled_back(field, a[k], c[k])
    return acc / len(ops)


def apply_op(field: np.ndarray, ops: SeitzOps, k: int) -> np.ndarray:
    """The field pulled back by operator k: out(m) = field(g_k m). Invariant fields return themselves."""
    a, c = grid_map_coefficients(field.shape, ops)
    return _pulled_back(np.asarray(field), a[k], c[k])


def _pulled_back(field: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """out(m) = field((A m + c) mod n) for one operator in grid form.

    When A is a signed permutation (every operator of an orthogonal setting) this is a reindexing
    along each axis and a transpose, which streams through memory; otherwise a gather by flat index.
    """
    if not (np.count_nonzero(a, axis=1) == 1).all():
        return field.reshape(-1)[_mapped_flat_indices(field.shape, a, c)]
    source = np.argmax(a != 0, axis=1)  # image component i reads input axis source[i]
    # g[j] = field[s_0 j_0 + c_0, s_1 j_1 + c_1, s_2 j_2 + c_2] (one outer-product gather)
    g = field[np.ix_(*[np.mod(a[i, source[i]] * np.arange(field.shape[i]) + c[i], field.shape[i]) for i in range(3)])]
    # out[m] = g[m[source[0]], m[source[1]], m[source[2]]]
    return np.transpose(g, np.argsort(source))


def grid_orbits(shape: tuple[int, int, int], ops: SeitzOps) -> tuple[np.ndarray, np.ndarray]:
    """Orbit representatives and stabiliser counts of every grid point.

    Returns:
        rep: (n0, n1, n2) int64, the smallest flat index in the point's orbit; the
            asymmetric unit is the set of points with ``rep == own flat index``.
        stab: (n0, n1, n2) int64, the number of operators fixing the point (the second
            paper's repetition count R_m); orbit size = len(ops) / stab.
    """
    a, c = grid_map_coefficients(shape, ops)
    own = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    rep = own.copy()
    stab = np.zeros(shape, dtype=np.int64)
    for k in range(len(ops)):
        mapped = _mapped_flat_indices(shape, a[k], c[k])
        np.minimum(rep, mapped, out=rep)
        stab += mapped == own
    return rep, stab


def asymmetric_unit(shape: tuple[int, int, int], ops: SeitzOps) -> tuple[np.ndarray, np.ndarray]:
    """The grid's asymmetric unit: one representative point per orbit (``grid_orbits``).

    Returns:
        au: (n_au,) int64 sorted flat indices of the representatives (each orbit's smallest index).
        where: (n0, n1, n2) int64, for every grid point the position in ``au`` of its orbit's
            representative, so ``values[where]`` expands AU values to the full grid.
    """
    rep = grid_orbits(shape, ops)[0].reshape(-1)
    au = np.flatnonzero(rep == np.arange(rep.size))
    return au, np.searchsorted(au, rep).reshape(shape)


def _bits(a: np.ndarray) -> np.ndarray:
    """A float array's bit patterns as unsigned integers (a view); integer arrays unchanged."""
    return a.view(f"u{a.itemsize}") if a.dtype.kind == "f" else a


def au_encode(field: np.ndarray, au: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lossless asymmetric-unit form of a field: AU values plus the points that differ from them.

    A symmetric field is its AU values; a field that breaks the symmetry somewhere (numerical
    noise of the DFT code) also keeps those points, so ``au_decode`` returns it bit for bit.
    Floats are compared and corrected by bit pattern, so -0.0 and NaN come back exactly, and a
    float32 value a few ulp away from its orbit's representative costs a small integer.

    Returns:
        values (n_au,) in the field's dtype; fix_step (k,) uint32, the differences of the sorted
        flat indices of the differing points (the first from 0: small numbers that compress
        well); fix_values (k,) their differences from the AU value, wrapping, in the field's
        dtype for integer fields and in the unsigned integer of the same size (``u4`` for
        float32) for float fields: small numbers again.
    """
    flat = np.asarray(field).reshape(-1)
    values = flat[au]
    bits, expanded = _bits(flat), _bits(values)[where.reshape(-1)]
    fix = np.flatnonzero(bits != expanded)
    return values, np.diff(fix, prepend=0).astype(np.uint32), bits[fix] - expanded[fix]


def au_decode(values: np.ndarray, where: np.ndarray, fix_step: np.ndarray | None = None,
              fix_values: np.ndarray | None = None) -> np.ndarray:
    """Inverse of ``au_encode``: the full (n0, n1, n2) field."""
    out = np.asarray(values)[where]
    if fix_step is not None and len(fix_step):
        flat, fix = _bits(out.reshape(-1)), np.cumsum(np.asarray(fix_step, dtype=np.int64))
        flat[fix] += np.asarray(fix_values, dtype=flat.dtype)
    return out


def translation_cosets(ops: SeitzOps) -> SeitzOps:
    """One operator per distinct rotation: representatives of the cosets of the pure translations.

    For a field that is already invariant under the group's pure translations (a field tiled from
    the primitive cell), ``symmetrize`` over these equals ``symmetrize`` over all of ``ops``:
    f(g t m) = f(g t g^-1 g m) = f(g m), as g t g^-1 is again a pure translation. A 108-atom
    supercell of fcc has 5,184 operators and 48 cosets.
    """
    _, first = np.unique(ops.rotations.reshape(len(ops), 9), axis=0, return_index=True)
    first = np.sort(first)
    return SeitzOps(ops.rotations[first], ops.translations[first])


def orbit_mean(field: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``symmetrize`` through precomputed orbits: every point gets the mean of its orbit.

    (1/|G|) sum_g f(g m) is the orbit mean, since g -> g m hits every point of the orbit equally often.

    Args:
        field: (n0, n1, n2) array; where: the same-shape orbit index of ``asymmetric_unit``.

    Returns:
        (n0, n1, n2) float64.
    """
    flat = where.reshape(-1)
    sums = np.bincount(flat, weights=np.asarray(field, dtype=float).reshape(-1))
    return (sums / np.bincount(flat))[where]
