"""The PAW superposition with environment-dependent radial corrections (``sad.paw_radial``): electron count,
supercell, translation and symmetry identities, the fit recovering a known table, and the shipped table beating
the plain PAW superposition on held-out records."""

import numpy as np
import pytest

from pymatgen_elfml.sad.paw_atoms import paw_superposition
from pymatgen_elfml.sad.paw_radial import (N_ENV, N_EXTRA, N_OWN, TABLE_FILE, TABLE_FILE_V2, TABLE_FILE_V3,
                                           TABLE_FILE_V4, WIDTHS, atom_environments, atom_extras, corrected_superposition, fit_table, load_table,
                                           periodic_group, radial_correction)

# CuAu, skewed cell, atoms off the grid (spacing <= 0.13 A: the narrowest Gaussian is 0.2 A)
from test_paw_atoms import FRAC, LATTICE, NUMBERS, SHAPE, check_supercell_and_translation


def test_the_correction_moves_charge_and_adds_none():
    rho = corrected_superposition(LATTICE, FRAC, NUMBERS, SHAPE)
    assert rho.mean() * abs(np.linalg.det(LATTICE)) == pytest.approx(22, rel=1e-10)
    assert np.abs(rho - paw_superposition(LATTICE, FRAC, NUMBERS, SHAPE)).max() > 1e-3  # it does change the base


def test_supercell_translation_and_symmetry_identities():
    check_supercell_and_translation(radial_correction)
    check_supercell_and_translation(lambda *args: radial_correction(*args, table=load_table(TABLE_FILE_V4)))
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])  # 4 equivalent atoms, cubic cell
    env = atom_environments(np.eye(3) * 3.6, fcc, np.full(4, 29))
    np.testing.assert_allclose(env, np.repeat(env[:1], 4, axis=0), atol=1e-12)
    assert env.shape == (4, N_ENV) and np.exp(env[0, 0]) * 2 * 1.32 == pytest.approx(3.6 / np.sqrt(2))  # x_nn
    more = atom_extras(np.eye(3) * 3.6, fcc, np.full(4, 29))
    assert more.shape == (4, N_EXTRA)
    np.testing.assert_allclose(more, np.repeat(more[:1], 4, axis=0), atol=1e-12)
    np.testing.assert_allclose(more[:, 1:], 0.0, atol=1e-12)  # one element: no radius or valence contrast
    cuau = atom_extras(LATTICE, FRAC, NUMBERS)  # Cu (11 e, 1.32 A) beside Au (11 e, 1.36 A): contrasts of opposite sign
    assert cuau[0, 1] > 0 > cuau[1, 1] and np.all(np.isfinite(cuau))


def _cells(table):
    """Cu and CuAu cells at several volumes whose 'reference' is the corrected superposition of ``table``."""
    cells = []
    for scale in (0.9, 1.0, 1.1, 1.25):
        for frac, numbers in ((FRAC, NUMBERS), (FRAC, np.array([29, 29]))):
            lattice = LATTICE * scale
            shape = tuple(int(np.ceil(n * scale / 1.0)) for n in SHAPE)
            cells.append((lattice, frac, numbers, corrected_superposition(lattice, frac, numbers, shape, table)))
    return cells


@pytest.mark.parametrize("groups, extras", [(False, False), (True, False), (True, True)])
def test_the_fit_recovers_a_known_correction(groups, extras):
    """Densities made by a known table (with or without group blocks and ``atom_extras`` columns) are reproduced
    by the table fitted to them (to the ridge's bias); a zero table (the plain PAW superposition) is 100x further
    off."""
    rng = np.random.default_rng(0)
    elements, cats = [29, 79], ([11] if groups else None)  # Cu and Au: both in group 11
    rows = (N_OWN + (N_EXTRA if extras else 0)) * (len(elements) + len(cats or ())) + N_ENV + 5
    true = {"widths": WIDTHS, "elements": elements, "groups": cats, "extras": extras,
            "weights": rng.normal(0, 0.002, (rows, len(WIDTHS)))}
    cells = _cells(true)
    fitted = fit_table(cells, ridge=1e-12, groups=groups, extras=extras)
    assert fitted["elements"] == elements and fitted["groups"] == cats and fitted["extras"] == extras
    assert fitted["weights"].shape == true["weights"].shape
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


def test_periodic_group():
    assert [periodic_group(z) for z in (1, 2, 3, 13, 21, 30, 31, 57, 58, 71, 72, 79, 83)] == \
        [1, 18, 1, 13, 3, 12, 13, 3, 3, 3, 4, 11, 15]
    with pytest.raises(ValueError, match="no element"):
        periodic_group(0)


@pytest.mark.parametrize("name", [TABLE_FILE, TABLE_FILE_V2, TABLE_FILE_V3, TABLE_FILE_V4])
def test_shipped_table_beats_the_paw_superposition_on_held_out_records(name):
    """On 8 test-split records of data/v2 (chemical systems never fitted) each shipped table lowers the PAW
    superposition's NMAE by a third or more; a zero table would not change it, a random one would raise it."""
    from conftest import held_out_records
    from test_density import GOLDEN_NMAE

    from pymatgen_elfml import io

    table = load_table(name)
    assert (table["groups"] is not None) == (name != TABLE_FILE) and table["extras"] == (name == TABLE_FILE_V4)
    assert len(table["elements"]) >= 46 and table["weights"].shape[1] == len(WIDTHS)
    base, ours = [], []
    for rec in held_out_records(tuple(GOLDEN_NMAE)):
        ref, cell = np.asarray(rec.rho, dtype=float), io.validate(rec.structure)
        paw = paw_superposition(cell.lattice, cell.frac, cell.numbers, ref.shape)
        rho = paw + radial_correction(cell.lattice, cell.frac, cell.numbers, ref.shape, table)
        base.append(np.abs(paw - ref).sum() / ref.sum())
        ours.append(np.abs(rho - ref).sum() / ref.sum())
    assert np.mean(ours) < 0.67 * np.mean(base), (ours, base)


def test_each_radial_feature_set_reads_its_own_table():
    """``paw_radial_features`` (density-metals-v8) keeps the v1 table; ``paw_radial2_features`` and
    ``paw_radial3_features`` build on v2 and v3."""
    from pymatgen_elfml.features import RADIAL_TABLES, base_channel, channel_names, sad_features
    from pymatgen_elfml.sad import sad_density

    assert RADIAL_TABLES == {"paw_radial": TABLE_FILE, "paw_radial2": TABLE_FILE_V2, "paw_radial3": TABLE_FILE_V3,
                             "paw_radial4": TABLE_FILE_V4}
    sad = sad_density(LATTICE, FRAC, NUMBERS, SHAPE, 0.2)
    for channel_name, name in RADIAL_TABLES.items():
        feature_set = f"{channel_name}_features"
        channel = base_channel(feature_set)
        x = sad_features(sad, LATTICE, FRAC, feature_set, numbers=NUMBERS)[channel_names(feature_set).index(channel)]
        rho = corrected_superposition(LATTICE, FRAC, NUMBERS, SHAPE, load_table(name))
        np.testing.assert_allclose(x, rho / rho.mean(), rtol=1e-5, atol=1e-5)
    fields = [corrected_superposition(LATTICE, FRAC, NUMBERS, SHAPE, load_table(n))
              for n in (TABLE_FILE, TABLE_FILE_V2, TABLE_FILE_V3, TABLE_FILE_V4)]
    assert min(np.abs(a - b).max() for i, a in enumerate(fields) for b in fields[i + 1:]) > 1e-3  # the tables differ


def test_a_missing_table_is_named():
    with pytest.raises(RuntimeError, match="missing or corrupted"):
        load_table("paw_radial_v0.json")
