"""The second paper's asymmetric-unit (AU) codec and its DCT alignment.

A field rho invariant under a space group {T_j} is carried by its values on one representative point per
grid orbit (the AU of ``symmetry.asymmetric_unit``, the same orbits the reference records are stored in).
The reduced field

    rho'(r_m) = rho(r_m) / R_m   for m in the AU,   0 elsewhere,

with R_m the number of operators fixing point m (``symmetry.grid_orbits``' stabiliser count), gives back

    rho(r) = sum_j rho'(T_j r)          and, in reciprocal space,  rho(G) = sum_j rho_j(G),

rho_1 = FFT(rho') (T_1 the identity): every operator that maps the representative of r's orbit onto it
contributes rho(r_m) / R_m, and there are R_m of them. Densities of one space group on different grids are
aligned by the AU's bounding box (from the grid origin): padded with zeros to a fixed per-group envelope and
DCT-II transformed (scipy.fft, orthonormal), they all become one tensor shape; the inverse DCT, cropped to
the box of the decoding grid, is exact. Decoding a cell uses the grid ``grid.grid_shape`` chooses for it
(native spacing, commensurate with the group), so encoding and decoding agree on the grid. Numpy and scipy only.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from pymatgen_elfml.symmetry import SeitzOps, apply_op, asymmetric_unit, grid_orbits, symmetrize


def reduce_field(field: np.ndarray, ops: SeitzOps) -> np.ndarray:
    """rho' of a symmetric field: rho / R_m at the orbit representatives, 0 elsewhere.

    Args:
        field: (n0, n1, n2) values of a field invariant under ``ops`` on a commensurate grid.
        ops: the space group's Seitz operators.

    Returns:
        (n0, n1, n2) float64 reduced field.
    """
    field = np.asarray(field, dtype=float)
    rep, stab = grid_orbits(field.shape, ops)
    own = rep == np.arange(rep.size).reshape(rep.shape)
    return np.where(own, field / stab, 0.0)


def expand_field(reduced: np.ndarray, ops: SeitzOps) -> np.ndarray:
    """rho(r) = sum_j rho'(T_j r) = |G| x ``symmetrize(rho')``: the full field from its reduced form (exact for
    symmetric fields; ValueError for a grid the operators do not map onto itself)."""
    return len(ops) * symmetrize(reduced, ops)


def fourier_parts(reduced: np.ndarray, ops: SeitzOps) -> np.ndarray:
    """(n_ops, n0, n1, n2) complex rho_j(G): the FFT of rho' carried by each operator (j = 0 is the identity
    when ``ops`` lists it first, as spglib does); their sum is FFT(rho)."""
    return np.stack([fft.fftn(apply_op(reduced, ops, j)) for j in range(len(ops))])


def _au_mask(shape: tuple[int, int, int], ops: SeitzOps) -> np.ndarray:
    """(n0, n1, n2) bool: the AU's representative points (``symmetry.asymmetric_unit``)."""
    mask = np.zeros(int(np.prod(shape)), dtype=bool)
    mask[asymmetric_unit(shape, ops)[0]] = True
    return mask.reshape(shape)


def _box(mask: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(i) for i in np.argwhere(mask).max(axis=0) + 1)


def au_box(shape: tuple[int, int, int], ops: SeitzOps) -> tuple[int, int, int]:
    """Bounding box (from the grid origin) of the AU's representative points: the block the codec keeps."""
    return _box(_au_mask(shape, ops))


def envelope(shapes: list[tuple[int, int, int]], ops_list: list[SeitzOps]) -> tuple[int, int, int]:
    """Per-group envelope: the largest AU box over a training set's grids (one group, its operators per grid)."""
    boxes = np.array([au_box(s, o) for s, o in zip(shapes, ops_list)])
    return tuple(int(b) for b in boxes.max(axis=0))


def dct_encode(reduced: np.ndarray, ops: SeitzOps, env: tuple[int, int, int]) -> np.ndarray:
    """DCT-II (orthonormal) of the reduced field's AU box, zero-padded to ``env``: shape ``env`` for any grid.

    Raises:
        ValueError: the AU box of this grid does not fit in the envelope.
    """
    box = au_box(reduced.shape, ops)
    if any(b > e for b, e in zip(box, env)):
        raise ValueError(f"the AU box {box} of grid {reduced.shape} exceeds the envelope {tuple(env)}: "
                         "recompute the envelope with this grid")
    block = np.zeros(env)
    block[: box[0], : box[1], : box[2]] = np.asarray(reduced, float)[: box[0], : box[1], : box[2]]
    return fft.dctn(block, type=2, norm="ortho")


def dct_decode(coeffs: np.ndarray, shape: tuple[int, int, int], ops: SeitzOps) -> np.ndarray:
    """Inverse of ``dct_encode`` onto the grid ``shape``: the reduced field, zero outside the AU."""
    block = fft.idctn(np.asarray(coeffs, float), type=2, norm="ortho")
    own = _au_mask(shape, ops)
    box = _box(own)
    out = np.zeros(shape)
    out[: box[0], : box[1], : box[2]] = block[: box[0], : box[1], : box[2]]
    return np.where(own, out, 0.0)
