"""The free atoms' PAW valence densities (``sad.paw_atoms``): electron count, periodicity identities, and
agreement with GPAW's own superposition-of-atoms start density."""

import numpy as np
import pytest

from pymatgen_elfml.sad.paw_atoms import ORBITAL_PARTS, load_table, paw_components, paw_species, paw_superposition

# CuAu in an orthorhombic cell with atoms off the grid points: two species, GPAW's normalisation is global
LATTICE = np.array([[3.1, 0.0, 0.0], [0.4, 3.4, 0.0], [0.0, 0.3, 3.8]])
FRAC = np.array([[0.03, 0.11, 0.07], [0.52, 0.47, 0.55]])
NUMBERS = np.array([29, 79])
SHAPE = (32, 36, 40)


def test_integrates_to_the_setups_valence_count():
    rho = paw_superposition(LATTICE, FRAC, NUMBERS, SHAPE)
    assert rho.mean() * abs(np.linalg.det(LATTICE)) == pytest.approx(11 + 11, rel=1e-12)
    assert {29, 79} <= set(load_table()[1])


def check_supercell_and_translation(field):
    """``field(lattice, frac, numbers, shape)`` of the CuAu cell: a 2x1x1 supercell on the doubled grid gives the
    field twice over, and a shift of the atoms by whole voxels rolls it (to 1e-9 of its largest value)."""
    rho = field(LATTICE, FRAC, NUMBERS, SHAPE)
    double = np.vstack([FRAC * [0.5, 1, 1], FRAC * [0.5, 1, 1] + [0.5, 0, 0]])
    super_rho = field(LATTICE * [[2], [1], [1]], double, np.tile(NUMBERS, 2), (64, 36, 40))
    np.testing.assert_allclose(super_rho, np.concatenate([rho, rho]), atol=1e-9 * np.abs(rho).max())
    shifted = field(LATTICE, FRAC + [3 / 32, 0, 5 / 40], NUMBERS, SHAPE)
    np.testing.assert_allclose(shifted, np.roll(rho, (3, 0, 5), axis=(0, 1, 2)), atol=1e-9 * np.abs(rho).max())


def test_supercell_and_translation_identities():
    check_supercell_and_translation(paw_superposition)


def test_unknown_element_is_named():
    with pytest.raises(ValueError, match=r"atomic numbers \[90\]: the table covers 83 elements"):
        paw_superposition(LATTICE, FRAC, np.array([29, 90]), SHAPE)


def test_table_covers_every_element_with_a_valence_count():
    """One row per element of ``valence.SETUP_VALENCE`` (the metals of the data and H to Rn), with the same count."""
    from pymatgen.core import Element

    from pymatgen_elfml.valence import SETUP_VALENCE

    table = load_table()[1]
    assert {Element(s).Z: n for s, n in SETUP_VALENCE.items()} == {z: row.nv for z, row in table.items()}


@pytest.mark.parametrize("numbers", [NUMBERS, np.array([57, 1]), np.array([6, 7])], ids=["CuAu", "LaH", "CN"])
def test_matches_gpaws_own_start_density(numbers):
    """GPAW's initial density of the same cell (no SCF step) agrees to a fraction of a percent (the rest is
    GPAW's plane-wave representation of its radial splines), for metals of the data and for the elements added
    beyond them; a superposition with another element in place of the first does not."""
    pytest.importorskip("gpaw")
    from ase import Atoms
    from gpaw import GPAW, PW

    atoms = Atoms(numbers=numbers, scaled_positions=FRAC, cell=LATTICE, pbc=True)
    atoms.calc = GPAW(mode=PW(300), xc="PBE", kpts={"size": (1, 1, 1), "gamma": True}, gpts=SHAPE, txt=None,
                      symmetry="off")
    atoms.calc.create_new_calculation(atoms)
    ref = np.asarray(atoms.calc.get_pseudo_density())
    ours = paw_superposition(LATTICE, FRAC, numbers, SHAPE)
    assert np.abs(ours - ref).sum() / np.abs(ref).sum() < 5e-3
    swapped = {29: 47, 57: 39, 6: 5}[int(numbers[0])]  # Ag for Cu, Y for La, B for C
    other = paw_superposition(LATTICE, FRAC, np.array([swapped, numbers[1]]), SHAPE)
    other *= ref.mean() / other.mean()  # the same electron count: only the shape differs
    assert np.abs(other - ref).sum() / np.abs(ref).sum() > 0.05


def test_components_sum_to_the_superposition_and_count_the_shells():
    """The six rows (core, s, p, d, f, compensation) add up to the superposition; integrated, each orbital row holds
    that shell's share of GPAW's normalised pseudo charge (Cu and Au: s and d only, the setups have no p or f
    valence orbitals occupied), and the parts keep the supercell and translation identities."""
    rho = paw_superposition(LATTICE, FRAC, NUMBERS, SHAPE)
    parts = paw_components(LATTICE, FRAC, NUMBERS, SHAPE)
    assert parts.shape == (len(ORBITAL_PARTS) + 1, *SHAPE)
    np.testing.assert_allclose(parts.sum(axis=0), rho, atol=1e-6 * np.abs(rho).max())
    charges = parts.mean(axis=(1, 2, 3)) * abs(np.linalg.det(LATTICE))
    assert charges.sum() == pytest.approx(22.0, rel=1e-6)
    core, s, p, d, f = charges[:5]
    assert s > 1.0 and d > 4.0 and core > 0.1 and abs(p) < 1e-9 and abs(f) < 1e-9
    shifted = paw_components(LATTICE, FRAC + [3 / 32, 0, 5 / 40], NUMBERS, SHAPE)
    np.testing.assert_allclose(shifted, np.roll(parts, (3, 0, 5), axis=(1, 2, 3)), atol=1e-9 * np.abs(rho).max())
    la = paw_components(LATTICE, FRAC, np.array([57, 57]), SHAPE).mean(axis=(1, 2, 3)) * abs(np.linalg.det(LATTICE))
    assert la[2] > 3.0 and la[3] > 0.5  # La's 5p semicore shell and its 5d electron


def test_species_densities_are_each_species_alone():
    """``paw_species`` row by row is the superposition of that species' atoms alone, each counting its own
    valence electrons (Cu 11, Au 11); the rows are sorted by Z and move with the atoms."""
    species, rows = paw_species(LATTICE, FRAC, NUMBERS, SHAPE)
    assert species.tolist() == [29, 79] and rows.shape == (2, *SHAPE)
    for z, row in zip(species, rows):
        alone = paw_superposition(LATTICE, FRAC[NUMBERS == z], NUMBERS[NUMBERS == z], SHAPE)
        np.testing.assert_allclose(row, alone, atol=1e-12 * np.abs(alone).max())
        assert row.mean() * abs(np.linalg.det(LATTICE)) == pytest.approx(11.0, rel=1e-12)
    assert np.abs(rows[0] - rows[1]).max() > 0.1 * np.abs(rows).max()
    _, shifted = paw_species(LATTICE, FRAC + [3 / 32, 0, 5 / 40], NUMBERS, SHAPE)
    np.testing.assert_allclose(shifted, np.roll(rows, (3, 0, 5), axis=(1, 2, 3)), atol=1e-9 * np.abs(rows).max())
