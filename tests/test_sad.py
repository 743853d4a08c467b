"""SAD: the shipped table, the reciprocal-space rasterizer and DensityGenerator.sad."""

import numpy as np
import pytest
from conftest import max_op_deviation, vasp_real
from pymatgen.io.vasp.outputs import Chgcar

from pymatgen_elfml.generator import DensityGenerator
from pymatgen_elfml.io import density_from_chgcar, validate
from pymatgen_elfml.sad import load_table, sad_density, smoothed_radial_density
from pymatgen_elfml.sad.build_table import radial_integral
from pymatgen_elfml.symmetry import seitz_ops


def electrons(chg: Chgcar) -> float:
    return float(chg.data["total"].sum() / chg.data["total"].size)


def test_table_covers_h_to_lr_with_exact_counts():
    table = load_table()
    assert table.rho.shape[0] == 103
    counts = radial_integral(table.r, table.rho.astype(float))
    np.testing.assert_allclose(counts, np.arange(1, 104), rtol=1e-5)
    assert table.meta["licence"] == "CC BY 4.0"


@pytest.mark.parametrize("fixture", ["Al4", "CuZn3_triclinic", "Ni36Al36"])
def test_sad_electron_count(fixture, request):
    structure = request.getfixturevalue(fixture)
    chg = DensityGenerator().sad(structure, spacing=0.15)
    n_e = sum(site.specie.Z for site in structure)
    assert electrons(chg) == pytest.approx(n_e, rel=1e-9)  # exact: the G = 0 Fourier term is sum(Z)
    assert density_from_chgcar(chg).min() > -1e-6 * density_from_chgcar(chg).max()


def test_fft_agrees_with_real_space_sum(CuZn3_triclinic):
    """Reciprocal-space rasterization = direct sum of smoothed atoms over periodic images."""
    cell = validate(CuZn3_triclinic)
    shape, sigma = (40, 44, 50), 0.3
    rho = sad_density(cell.lattice, cell.frac, cell.numbers, shape, sigma)
    rng = np.random.default_rng(0)
    images = np.stack(np.meshgrid(*[np.arange(-4, 5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for idx in rng.integers(0, shape, size=(5, 3)):
        point = idx / np.array(shape)
        direct = 0.0
        for x, z in zip(cell.frac, cell.numbers):
            dist = np.linalg.norm((point - x + images) @ cell.lattice, axis=1)
            direct += smoothed_radial_density(int(z), dist, sigma).sum()
        assert rho[tuple(idx)] == pytest.approx(direct, rel=2e-5)


def test_form_factor_transform_reproduces_the_radial_density():
    """Smoothed profiles converge to the tabulated one as sigma -> 0 (error ~ sigma^2)."""
    table = load_table()
    r = np.array([1.5, 2.0, 3.0])
    for z in (3, 13, 29, 79):
        tab = np.exp(np.interp(np.log(r), np.log(table.r), np.log(table.profile(z))))
        err_coarse = np.abs(smoothed_radial_density(z, r, 0.1) / tab - 1)
        err_fine = np.abs(smoothed_radial_density(z, r, 0.05) / tab - 1)
        assert err_fine.max() < 1.5e-2
        assert np.all(err_fine < 0.35 * err_coarse + 1e-3)


@pytest.mark.parametrize("fixture", ["Al4", "Mg2", "NiAl"])
def test_sad_invariant_under_every_seitz_op(fixture, request):
    structure = request.getfixturevalue(fixture)
    rho = density_from_chgcar(DensityGenerator().sad(structure, spacing=0.2))
    assert max_op_deviation(rho, seitz_ops(validate(structure))) < 1e-9 * rho.max()


def test_unit_cell_vs_supercell(Mg2):
    unit = DensityGenerator().sad(Mg2, grid=(16, 16, 26), sigma=0.4)
    sup = DensityGenerator().sad(Mg2 * (2, 1, 1), grid=(32, 16, 26), sigma=0.4)
    np.testing.assert_allclose(density_from_chgcar(sup), np.tile(density_from_chgcar(unit), (2, 1, 1)), atol=1e-10)


def test_translation_by_grid_vector_rolls_the_density(CuZn3_triclinic):
    shape, shift = (24, 24, 30), np.array([3, -5, 7])
    moved = CuZn3_triclinic.copy()
    moved.translate_sites(range(len(moved)), shift / np.array(shape), frac_coords=True)
    a = density_from_chgcar(DensityGenerator().sad(CuZn3_triclinic, grid=shape, sigma=0.5))
    b = density_from_chgcar(DensityGenerator().sad(moved, grid=shape, sigma=0.5))
    # exact up to the Gaussian deposition's aliasing/truncation (~1e-9 of the peak)
    np.testing.assert_allclose(np.roll(a, shift, axis=(0, 1, 2)), b, rtol=0, atol=1e-8 * a.max())


def test_explicit_grid_matches_a_real_chgcar():
    chgcar = Chgcar.from_file(vasp_real("Ag4_hcp.CHGCAR.gz"))
    sad = DensityGenerator().sad(chgcar.structure, grid=chgcar.data["total"].shape)
    assert sad.data["total"].shape == chgcar.data["total"].shape == (20, 20, 60)
    assert electrons(sad) == pytest.approx(4 * 47, rel=1e-6)
