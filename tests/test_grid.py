"""Grid shapes and periodic resampling."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pymatgen_elfml.grid import grid_shape, voxel_spacing
from pymatgen_elfml.primitive import map_to_cell

SAME_CELL = np.eye(3, dtype=int)
from pymatgen_elfml.io import validate
from pymatgen_elfml.symmetry import is_commensurate, seitz_ops


@pytest.mark.parametrize("spacing", [0.1, 0.13, 0.25])
@pytest.mark.parametrize("fixture", ["Al4", "Mg2", "CuZn3_triclinic", "Ni36Al36"])
def test_grid_is_fine_enough_and_commensurate(fixture, spacing, request):
    cell = validate(request.getfixturevalue(fixture))
    ops = seitz_ops(cell)
    shape = grid_shape(cell.lattice, spacing, ops, multiple_of=4)
    assert np.all(voxel_spacing(cell.lattice, shape) <= spacing + 1e-9)
    assert all(n % 4 == 0 for n in shape)
    assert is_commensurate(shape, ops)
    # and not wastefully large
    assert np.all(voxel_spacing(cell.lattice, shape) > spacing / 2)


def test_quarter_translations_force_multiples_of_four():
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    ops = seitz_ops(validate(si))
    shape = grid_shape(si.lattice.matrix, 0.5, ops)
    assert shape[0] == shape[1] == shape[2] and shape[0] % 4 == 0 and is_commensurate(shape, ops)


def test_hexagonal_axes_are_tied():
    lat = Lattice.hexagonal(3.0, 5.0)
    mg = Structure(lat, ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    ops = seitz_ops(validate(mg))
    n0, n1, _ = grid_shape(lat.matrix, 0.17, ops)
    assert n0 == n1 and n0 % 3 == 0


def test_resample_identity_and_smooth_function():
    shape = (16, 20, 24)
    f = np.random.default_rng(0).random(shape)
    np.testing.assert_array_equal(map_to_cell(f, SAME_CELL, shape), f)

    def wave(s):
        x, y, z = np.meshgrid(*[np.arange(n) / n for n in s], indexing="ij")
        return np.sin(2 * np.pi * x) * np.cos(2 * np.pi * (y + 2 * z))

    out = map_to_cell(wave((32, 40, 48)), SAME_CELL, (30, 36, 50))
    np.testing.assert_allclose(out, wave((30, 36, 50)), atol=2e-3)
    np.testing.assert_allclose(map_to_cell(np.full(shape, 0.7), SAME_CELL, (9, 11, 13)), 0.7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="spacing"):
        grid_shape(np.eye(3) * 4, 0.0)
    with pytest.raises(ValueError, match="three positive"):
        map_to_cell(np.zeros((4, 4, 4)), SAME_CELL, (4, 0, 4))


def test_irrational_translations_are_left_out_of_the_grid_constraints():
    from pymatgen_elfml.grid import rational_ops
    from pymatgen_elfml.symmetry import commensurate_ops

    mg = Structure(Lattice.hexagonal(3.2, 5.2), ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25 + 0.0713], [2 / 3, 1 / 3, 0.75 + 0.0713]])
    ops = seitz_ops(validate(mg))
    rational = rational_ops(ops)
    assert 0 < len(rational) < len(ops)
    shape = grid_shape(mg.lattice.matrix, 0.2, ops)
    assert len(commensurate_ops(shape, ops)) == len(rational)
