"""The second paper's asymmetric-unit codec: its identities on cubic, hexagonal, tetragonal and non-symmorphic groups."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pymatgen_elfml.generative.codec import (au_box, dct_decode, dct_encode, envelope, expand_field, fourier_parts,
                                             reduce_field)
from pymatgen_elfml.grid import grid_shape
from pymatgen_elfml.io import validate
from pymatgen_elfml.symmetry import seitz_ops, symmetrize

CELLS = {
    "Fm-3m (fcc, conventional)": Structure(Lattice.cubic(4.0), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
    "P6_3/mmc (hcp, non-symmorphic)": Structure(Lattice.hexagonal(3.0, 4.9), ["Mg"] * 2, [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]),
    "P4/mmm (L1_0)": Structure(Lattice.tetragonal(2.8, 3.6), ["Cu", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "Fd-3m (diamond, non-symmorphic)": Structure(Lattice.cubic(5.4), ["Si"] * 8, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                                                                                  [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]]),
}


def _symmetric_field(structure, spacing):
    cell = validate(structure)
    ops = seitz_ops(cell)
    shape = grid_shape(cell.lattice, spacing, ops)
    return symmetrize(np.random.default_rng(0).random(shape), ops), ops


@pytest.mark.parametrize("name", CELLS)
def test_reduced_field_expands_back_exactly(name):
    rho, ops = _symmetric_field(CELLS[name], 0.35)
    reduced = reduce_field(rho, ops)
    assert np.count_nonzero(reduced) < rho.size / 4  # the AU is a small part of the grid
    np.testing.assert_allclose(expand_field(reduced, ops), rho, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["P6_3/mmc (hcp, non-symmorphic)", "Fd-3m (diamond, non-symmorphic)"])
def test_fourier_transform_is_the_sum_of_the_operator_parts(name):
    rho, ops = _symmetric_field(CELLS[name], 0.35)
    parts = fourier_parts(reduce_field(rho, ops), ops)
    np.testing.assert_allclose(parts.sum(axis=0), np.fft.fftn(rho), atol=1e-9 * rho.size)
    assert np.allclose(ops.rotations[0], np.eye(3)) and not np.allclose(parts[0], parts[1])


def test_dct_alignment_maps_grids_of_one_group_to_one_shape_and_back():
    name = "P6_3/mmc (hcp, non-symmorphic)"
    fields = [_symmetric_field(CELLS[name], s) for s in (0.35, 0.25)]  # two grid sizes of one group
    assert fields[0][0].shape != fields[1][0].shape
    env = envelope([f.shape for f, _ in fields], [o for _, o in fields])
    for rho, ops in fields:
        coeffs = dct_encode(reduce_field(rho, ops), ops, env)
        assert coeffs.shape == env
        back = expand_field(dct_decode(coeffs, rho.shape, ops), ops)
        np.testing.assert_allclose(back, rho, atol=1e-12, rtol=0)
    small, ops_small = fields[0]
    with pytest.raises(ValueError, match="exceeds the envelope"):
        dct_encode(reduce_field(fields[1][0], fields[1][1]), fields[1][1], au_box(small.shape, ops_small))
