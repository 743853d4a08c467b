"""Primitive-cell reduction and the map back onto the cell's grid: one answer per crystal."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pymatgen_elfml.io import validate
from pymatgen_elfml.primitive import copies_exactly, map_to_cell, reduce_to_primitive
from pymatgen_elfml.symmetry import (asymmetric_unit, orbit_mean, seitz_ops, symmetrize, translation_cosets)


def _fcc(a=3.61, el="Cu"):
    return Structure(Lattice.cubic(a), [el] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def _reduce(structure):
    cell = validate(structure)
    return cell, reduce_to_primitive(cell, seitz_ops(cell))


@pytest.mark.parametrize("make,n", [
    (lambda: _fcc(), 4),
    (lambda: _fcc().get_primitive_structure(), 1),
    (lambda: _fcc() * (3, 3, 3), 108),
    (lambda: _fcc().get_primitive_structure() * (2, 1, 1), 2),
])
def test_every_cell_of_fcc_reduces_to_the_same_primitive_cell(make, n):
    cell, red = _reduce(make())
    _, ref = _reduce(_fcc().get_primitive_structure())
    assert red.multiplicity == n and len(red.primitive.numbers) == 1
    np.testing.assert_allclose(red.primitive.lattice, ref.primitive.lattice, atol=1e-9)  # same basis, same frame
    np.testing.assert_allclose(cell.lattice, red.supercell @ red.primitive.lattice, atol=1e-9)
    assert abs(red.primitive.volume * n - cell.volume) < 1e-6


def test_hexagonal_supercell_and_a_cell_that_is_already_primitive():
    hcp = Structure(Lattice.hexagonal(2.9, 4.7), ["Mg"] * 2, [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    _, red = _reduce(hcp * (2, 2, 1))
    _, ref = _reduce(hcp)
    assert red.multiplicity == 4 and ref.multiplicity == 1 and len(red.primitive.numbers) == 2
    np.testing.assert_allclose(red.primitive.lattice, ref.primitive.lattice, atol=1e-9)
    # a cell whose translation would map Cu onto Zn is not a supercell
    _, b2 = _reduce(Structure(Lattice.cubic(3.0), ["Cu", "Zn"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    assert b2.multiplicity == 1 and len(b2.primitive.numbers) == 2


def test_atoms_keep_their_cartesian_positions():
    s = _fcc() * (2, 1, 1)
    s.translate_sites(range(len(s)), [0.013, 0.021, 0.037], frac_coords=True)  # an arbitrary origin
    cell, red = _reduce(s)
    cart = red.primitive.frac @ red.primitive.lattice
    diff = (cell.frac[0] @ cell.lattice - cart[0]) @ np.linalg.inv(red.primitive.lattice)
    np.testing.assert_allclose(diff - np.rint(diff), 0, atol=1e-9)


def test_map_to_cell_copies_on_commensurate_grids_and_interpolates_otherwise():
    _, red = _reduce(_fcc())
    p = (24, 24, 24)
    f = np.stack(np.meshgrid(*[np.arange(n) / n for n in p], indexing="ij"), -1)
    field = np.cos(2 * np.pi * f[..., 0]) + 0.5 * np.sin(2 * np.pi * (f[..., 1] - f[..., 2]))  # smooth, periodic

    def exact(shape):  # the same function at the output points f_u @ M
        fu = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), -1) @ red.supercell
        return np.cos(2 * np.pi * fu[..., 0]) + 0.5 * np.sin(2 * np.pi * (fu[..., 1] - fu[..., 2]))

    assert copies_exactly(red.supercell, p, (24, 24, 24))
    np.testing.assert_allclose(map_to_cell(field, red.supercell, (24, 24, 24)), exact((24, 24, 24)), atol=1e-12)
    assert not copies_exactly(red.supercell, p, (30, 30, 30))
    assert np.abs(map_to_cell(field, red.supercell, (30, 30, 30)) - exact((30, 30, 30))).max() < 2e-3  # cubic spline


def test_coset_representatives_symmetrize_a_tiled_field_like_the_whole_group():
    unit = _fcc()
    sup = unit * (2, 2, 1)
    ops_unit, ops_sup = seitz_ops(validate(unit)), seitz_ops(validate(sup))
    field = symmetrize(np.random.default_rng(0).random((12, 12, 12)), ops_unit)
    tiled = np.tile(field, (2, 2, 1))
    cosets = translation_cosets(ops_sup)
    assert len(ops_sup) == 16 * len(cosets)
    np.testing.assert_allclose(symmetrize(tiled, cosets), symmetrize(tiled, ops_sup), atol=1e-12)


def test_orbit_mean_is_the_group_average():
    ops = seitz_ops(validate(Structure(Lattice.hexagonal(2.9, 4.7), ["Mg"] * 2, [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])))
    field = np.random.default_rng(1).random((12, 12, 18))
    where = asymmetric_unit(field.shape, ops)[1]
    np.testing.assert_allclose(orbit_mean(field, where), symmetrize(field, ops), atol=1e-12)


def test_primitive_basis_is_right_handed_whatever_the_supercell():
    """(1, 2, 1) supercells reduce through a left-handed Niggli basis unless it is flipped; a mirror-image
    grid would make a P1-decorated crystal's prediction depend on the cell it is written in."""
    conv = Structure(Lattice.cubic(5.0), ["Cu", "Zn", "Al"], [[0.1, 0.2, 0.3], [0.6, 0.1, 0.8], [0.35, 0.7, 0.15]])
    dets = {sc: np.linalg.det(_reduce(conv * sc)[1].primitive.lattice) for sc in [(1, 1, 1), (1, 2, 1), (2, 2, 2), (1, 1, 3)]}
    assert all(d > 0 for d in dets.values()), dets
    lattices = [_reduce(conv * sc)[1].primitive.lattice for sc in dets]
    assert all(np.allclose(lat, lattices[0]) for lat in lattices)


def test_long_supercells_reduce():
    """More than 120 translations along one axis (1/121 is no crystallographic fraction, but 121 t is integral)."""
    bcc = Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    _, red = _reduce(bcc * (1, 1, 121))
    assert red.multiplicity == 242 and len(red.primitive.numbers) == 1
