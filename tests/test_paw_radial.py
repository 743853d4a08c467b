"""The PAW superposition with environment-dependent radial corrections (``sad.paw_radial``): electron count,
supercell, translation and symmetry identities, the fit recovering a known table, and the shipped table beating
the plain PAW superposition on held-out records."""

import numpy as np
import pytest

from pymatgen_elfml.sad.paw_atoms import paw_superposition
from pymatgen_elfml.sad.paw_radial import (N_ENV, N_OWN, WIDTHS, atom_environments, corrected_superposition,
                                           fit_table, load_table, radial_correction)

# CuAu, skewed cell, atoms off the grid (spacing <= 0.13 A: the narrowest Gaussian is 0.2 A)
from test_paw_atoms import FRAC, LATTICE, NUMBERS, SHAPE, check_supercell_and_translation


def test_the_correction_moves_charge_and_adds_none():
    rho = corrected_superposition(LATTICE, FRAC, NUMBERS, SHAPE)
    assert rho.mean() * abs(np.linalg.det(LATTICE)) == pytest.approx(22, rel=1e-10)
    assert np.abs(rho - paw_superposition(LATTICE, FRAC, NUMBERS, SHAPE)).max() > 1e-3  # it does change the base


def test_supercell_translation_and_symmetry_identities():
    check_supercell_and_translation(radial_correction)
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])  # 4 equivalent atoms, cubic cell
    env = atom_environments(np.eye(3) * 3.6, fcc, np.full(4, 29))
    np.testing.assert_allclose(env, np.repeat(env[:1], 4, axis=0), atol=1e-12)
    assert env.shape == (4, N_ENV) and np.exp(env[0, 0]) * 2 * 1.32 == pytest.approx(3.6 / np.sqrt(2))  # x_nn


def _cells(table):
    """Cu and CuAu cells at several volumes whose 'reference' is the corrected superposition of ``table``."""
    cells = []
    for scale in (0.9, 1.0, 1.1, 1.25):
        for frac, numbers in ((FRAC, NUMBERS), (FRAC, np.array([29, 29]))):
            lattice = LATTICE * scale
            shape = tuple(int(np.ceil(n * scale / 1.0)) for n in SHAPE)
            cells.append((lattice, frac, numbers, corrected_superposition(lattice, frac, numbers, shape, table)))
    return cells


def test_the_fit_recovers_a_known_correction():
    """Densities made by a known table are reproduced by the table fitted to them (to the ridge's bias); a zero
    table (the plain PAW superposition) is 100x further off."""
    rng = np.random.default_rng(0)
    elements = [29, 79]
    true = {"widths": WIDTHS, "elements": elements,
            "weights": rng.normal(0, 0.002, (N_OWN * len(elements) + N_ENV + 5, len(WIDTHS)))}
    cells = _cells(true)
    fitted = fit_table(cells, ridge=1e-12)
    assert fitted["elements"] == elements and fitted["weights"].shape == true["weights"].shape
    for lattice, frac, numbers, rho in cells:
        paw = paw_superposition(lattice, frac, numbers, rho.shape)
        ours = corrected_superposition(lattice, frac, numbers, rho.shape, fitted)
        assert np.abs(ours - rho).sum() < 0.01 * np.abs(paw - rho).sum()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="no Pauling electronegativity"):
        radial_correction(LATTICE, FRAC, np.array([29, 2]), SHAPE)  # He
    with pytest.raises(ValueError, match="no neighbour within"):
        atom_environments(np.eye(3) * 30.0, [[0, 0, 0]], [29])
    with pytest.raises(ValueError, match="no cells"):
        fit_table([])


def test_shipped_table_beats_the_paw_superposition_on_held_out_records():
    """On 8 test-split records of data/v2 (chemical systems never fitted) the shipped table lowers the PAW
    superposition's NMAE by a third or more; a zero table would not change it, a random one would raise it."""
    from conftest import held_out_records
    from test_density import GOLDEN_NMAE

    from pymatgen_elfml import io

    table = load_table()
    assert len(table["elements"]) >= 46 and table["weights"].shape[1] == len(WIDTHS)
    base, ours = [], []
    for rec in held_out_records(tuple(GOLDEN_NMAE)):
        ref, cell = np.asarray(rec.rho, dtype=float), io.validate(rec.structure)
        paw = paw_superposition(cell.lattice, cell.frac, cell.numbers, ref.shape)
        rho = paw + radial_correction(cell.lattice, cell.frac, cell.numbers, ref.shape, table)
        base.append(np.abs(paw - ref).sum() / ref.sum())
        ours.append(np.abs(rho - ref).sum() / ref.sum())
    assert np.mean(ours) < 0.67 * np.mean(base), (ours, base)
