"""Seitz operators, the patch frame, exact symmetrization, orbits and stabilisers."""

import numpy as np
import pytest
from conftest import max_op_deviation
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from pymatgen_elfml.grid import grid_shape
from pymatgen_elfml.io import validate
from pymatgen_elfml.symmetry import SeitzOps, grid_orbits, patch_frame, patch_ops, seitz_ops, symmetrize

CELLS = ["Al4", "Mg2", "NiAl", "CuZn3_triclinic", "Ni36Al36"]


@pytest.fixture(scope="module")
def Si8() -> Structure:
    """Diamond Si, conventional cell (Fd-3m: non-symmorphic, quarter translations)."""
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])


@pytest.mark.parametrize("fixture", CELLS + ["Si8"])
def test_op_count_matches_pymatgen(fixture, request):
    structure = request.getfixturevalue(fixture)
    expected = len(SpacegroupAnalyzer(structure).get_symmetry_operations())
    assert len(seitz_ops(validate(structure))) == expected


def test_ops_map_the_structure_onto_itself(Si8):
    cell = validate(Si8)
    ops = seitz_ops(cell)
    for rot, t in zip(ops.rotations, ops.translations):
        moved = np.mod(cell.frac @ rot.T + t, 1.0)
        d = np.abs(moved[:, None, :] - cell.frac[None, :, :])
        d = np.minimum(d, 1 - d).max(axis=-1)
        assert d.min(axis=1).max() < 1e-6


def test_patch_frame_translation():
    """{R|t'} acting on x - o equals {R|t} acting on x, shifted by -o (mod 1)."""
    rng = np.random.default_rng(1)
    rot = np.array([[[0, -1, 0], [1, -1, 0], [0, 0, 1]], [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]])
    ops = SeitzOps(rot, np.array([[0.0, 0.0, 0.5], [0.25, 0.5, 0.0]]))
    origin = rng.random(3)
    local = patch_frame(ops, origin)
    for x in rng.random((10, 3)):
        for k in range(2):
            global_img = ops.rotations[k] @ x + ops.translations[k] - origin
            local_img = local.rotations[k] @ (x - origin) + local.translations[k]
            diff = np.mod(global_img - local_img + 0.5, 1.0) - 0.5
            np.testing.assert_allclose(diff, 0, atol=1e-12)


def test_patch_ops_pool_only_over_patches_that_are_the_whole_cell(Al4):
    """A patch smaller than the cell gets the identity; a patch equal to the cell every operator."""
    cell = validate(Al4)
    ops = seitz_ops(cell)
    shape = (40, 40, 40)
    small = patch_ops(ops, np.array([3, 5, 7]), 32, shape)
    assert len(small) == 1 and np.array_equal(small.rotations[0], np.eye(3)) and not small.translations.any()
    whole = patch_ops(ops, np.array([3, 5, 7]), 40, shape)
    assert len(whole) == len(ops) == 192
    ref = patch_frame(ops, np.array([3, 5, 7]) / 40)
    np.testing.assert_array_equal(whole.translations, ref.translations)


@pytest.mark.parametrize("fixture", ["Al4", "Mg2", "Si8"])
def test_symmetrize_is_exact_and_idempotent(fixture, request):
    cell = validate(request.getfixturevalue(fixture))
    ops = seitz_ops(cell)
    shape = grid_shape(cell.lattice, 0.3, ops)
    field = np.random.default_rng(0).random(shape)
    sym = symmetrize(field, ops)
    assert max_op_deviation(sym, ops) < 1e-12
    np.testing.assert_allclose(symmetrize(sym, ops), sym, atol=1e-12)
    assert sym.mean() == pytest.approx(field.mean())


def test_symmetrize_rejects_incommensurate_grid(Mg2):
    ops = seitz_ops(validate(Mg2))
    with pytest.raises(ValueError, match="not commensurate"):
        symmetrize(np.zeros((10, 12, 14)), ops)


@pytest.mark.parametrize("fixture", ["Al4", "Mg2", "Si8"])
def test_orbits_and_stabilisers(fixture, request):
    cell = validate(request.getfixturevalue(fixture))
    ops = seitz_ops(cell)
    shape = grid_shape(cell.lattice, 0.4, ops)
    rep, stab = grid_orbits(shape, ops)
    own = np.arange(rep.size).reshape(shape)
    au = rep == own
    assert np.all(len(ops) % stab == 0)
    # orbit sizes |G| / R_m over the asymmetric unit add up to the whole grid
    assert int((len(ops) // stab[au]).sum()) == rep.size
    # every point of an orbit has the same representative and stabiliser count
    for field in (rep, stab):
        assert max_op_deviation(field, ops) == 0
    assert stab[0, 0, 0] >= 1 and au.sum() < rep.size


def test_seitz_matrix_round_trip_and_validation(Mg2):
    ops = seitz_ops(validate(Mg2))
    back = SeitzOps.from_matrices(ops.as_matrices())
    np.testing.assert_array_equal(back.rotations, ops.rotations)
    np.testing.assert_allclose(back.translations, ops.translations)
    with pytest.raises(ValueError, match="shape"):
        SeitzOps.from_matrices(np.zeros((3, 3, 3)))
    bad = ops.as_matrices()
    bad[0, 0, 0] = 0.5
    with pytest.raises(ValueError, match="integer"):
        SeitzOps.from_matrices(bad)


@pytest.mark.parametrize("name", ["fcc_Al", "hcp_Mg", "tetragonal_In", "diamond_Si"])
def test_asymmetric_unit_round_trip(name):
    """Symmetric fields are their AU values (float64, exact); any field round-trips bit for bit."""
    from pymatgen.core import Lattice, Structure

    from pymatgen_elfml.io import validate
    from pymatgen_elfml.symmetry import asymmetric_unit, au_decode, au_encode

    structures = {
        "fcc_Al": (Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]]), (16, 16, 16)),
        "hcp_Mg": (Structure(Lattice.hexagonal(3.2, 5.2), ["Mg"] * 2, [[1 / 3, 2 / 3, .25], [2 / 3, 1 / 3, .75]]), (12, 12, 16)),
        "tetragonal_In": (Structure(Lattice.tetragonal(3.25, 4.95), ["In"] * 2, [[0, 0, 0], [.5, .5, .5]]), (16, 16, 24)),
        "diamond_Si": (Structure(Lattice.cubic(5.43), ["Si"] * 8, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                       [.25, .25, .25], [.25, .75, .75], [.75, .25, .75], [.75, .75, .25]]), (16, 16, 16)),
    }
    structure, shape = structures[name]
    ops = seitz_ops(validate(structure))
    au, where = asymmetric_unit(shape, ops)
    rng = np.random.default_rng(0)
    field = np.round(symmetrize(rng.random(shape), ops), 9)  # symmetric to the last bit
    values, step, fixed = au_encode(field, au, where)
    assert len(step) == 0 and len(values) <= 2 * np.prod(shape) / len(ops) + 64
    np.testing.assert_array_equal(au_decode(values, where), field)
    for noisy in (rng.random(shape), rng.integers(0, 65535, size=shape).astype(np.uint16)):
        np.testing.assert_array_equal(au_decode(*au_encode(noisy, au, where)[:1], where, *au_encode(noisy, au, where)[1:]), noisy)
