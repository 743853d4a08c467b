"""Input features of the SAD: physics identities, symmetry and translation, exact distances."""

import numpy as np
import pytest
import torch

from pymatgen_elfml import io, symmetry
from pymatgen_elfml.features import (CHI_CHANNELS, FEATURE_SETS, channel_names, nearest_nucleus_distance, sad_features,
                                     smooth_periodic)
from pymatgen_elfml.grid import grid_shape
from pymatgen_elfml.nn import PeriodicUNet3D, UNetConfig
from pymatgen_elfml.sad import sad_density


def _features(structure, spacing=0.2):
    cell = io.validate(structure)
    ops = symmetry.seitz_ops(cell)
    shape = grid_shape(cell.lattice, spacing, ops, 4)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, shape, 0.3)
    return cell, ops, shape, sad, sad_features(sad, cell.lattice, cell.frac)


def test_distance_is_exact_in_a_skewed_cell():
    rng = np.random.default_rng(4)
    lattice = np.array([[3.0, 0, 0], [2.6, 1.1, 0], [0.4, 0.9, 5.3]])  # strongly sheared
    frac = rng.random((3, 3))
    shape = (9, 7, 11)
    pts = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), -1).reshape(-1, 3)
    shifts = np.stack(np.meshgrid(*[np.arange(-4, 5)] * 3, indexing="ij"), -1).reshape(-1, 3)
    brute = np.full(len(pts), np.inf)
    for x in frac:
        for s in shifts:
            brute = np.minimum(brute, np.linalg.norm((pts - x - s) @ lattice, axis=1))
    got = nearest_nucleus_distance(lattice, frac, shape, cap=100.0)
    np.testing.assert_allclose(got.reshape(-1), brute, atol=1e-12)
    assert nearest_nucleus_distance(lattice, frac, shape, cap=0.7).max() == pytest.approx(0.7)


def test_uniform_density_is_the_electron_gas():
    lattice = np.diag([3.0, 3.0, 3.0])
    f = sad_features(np.full((8, 8, 8), 0.05), lattice, np.zeros((1, 3)))
    names = channel_names("sad_features")
    np.testing.assert_allclose(f[names.index("log1p_s")], 0, atol=1e-6)
    np.testing.assert_allclose(f[names.index("asinh_q")], 0, atol=1e-6)
    np.testing.assert_allclose(f[names.index("semilocal_elf")], 0.5, atol=1e-6)
    np.testing.assert_allclose(f[names.index("log_sad_g0.8")], np.log(0.05), rtol=1e-6)


def test_smoothing_keeps_the_electron_count():
    rng = np.random.default_rng(0)
    lattice = np.array([[4.0, 0, 0], [1.0, 3.5, 0], [0, 0, 5.0]])
    rho = rng.random((10, 12, 14))
    assert smooth_periodic(rho, lattice, 0.8).mean() == pytest.approx(rho.mean(), rel=1e-12)


@pytest.mark.parametrize("name", ["Al4", "Mg2", "NiAl"])
def test_features_are_invariant_under_the_space_group(name, request):
    cell, ops, shape, _, f = _features(request.getfixturevalue(name))
    exact = symmetry.commensurate_ops(shape, ops)
    assert len(exact) == len(ops)
    for channel, values in zip(channel_names("sad_features"), f):
        np.testing.assert_allclose(symmetry.symmetrize(values.astype(float), exact), values, atol=2e-5, err_msg=channel)


@pytest.mark.parametrize("name", ["Al4", "Mg2", "NiAl"])
def test_paw_context_channels_are_the_paw_superposition_and_its_smoothings(name, request):
    """log_paw is the log of the superposition whose normalised form is paw_valence (their difference is the log
    of its cell mean, one number); the smoothed channels keep paw_valence's mean of 1, are smoother, and every
    channel has the space group's symmetry (to 5e-4: the PAW superposition is summed over the FFT box, whose corners
    break hexagonal symmetry by up to ~1e-4 relative on this coarse grid, 2e-8 of the maximum on hcp Mg's 0.1 A grid)."""
    cell = io.validate(request.getfixturevalue(name))
    ops = symmetry.seitz_ops(cell)
    shape = grid_shape(cell.lattice, 0.2, ops, 8)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, shape, 0.3)
    names = channel_names("paw_context_features")
    f = dict(zip(names, sad_features(sad, cell.lattice, cell.frac, "paw_context_features", cell.numbers)))
    assert names[: len(channel_names("paw_features"))] == channel_names("paw_features")
    positive = f["log_paw"] > np.log(1e-5)  # the compensation charges make the superposition negative near nuclei
    gap = f["log_paw"][positive].astype(float) - np.log(f["paw_valence"][positive].astype(float))
    np.testing.assert_allclose(gap, np.median(gap), atol=1e-5)
    smooth = f["paw_valence_g0.8"].astype(float)
    assert smooth.mean() == pytest.approx(1.0, rel=1e-5)
    assert np.ptp(smooth) < np.ptp(f["paw_valence"])
    exact = symmetry.commensurate_ops(shape, ops)
    for channel in names[len(channel_names("sad_features")):]:
        values = f[channel].astype(float)
        np.testing.assert_allclose(symmetry.symmetrize(values, exact), values, atol=5e-4, err_msg=channel)
    with pytest.raises(ValueError, match="pass the atomic numbers"):
        sad_features(sad, cell.lattice, cell.frac, "paw_context_features")


def test_paw_semilocal_elf_is_the_semilocal_elf_of_the_paw_superposition(Mg2):
    """On hcp Mg's 0.1 A model grid. The derivatives amplify the FFT-box asymmetry of the PAW superposition (see the
    test above): 1.0e-3 at most here, 8.5e-3 on a 0.2 A grid; predictions are symmetrised after the network."""
    from pymatgen_elfml.baselines import semilocal_elf
    from pymatgen_elfml.sad.paw_atoms import paw_superposition

    cell = io.validate(Mg2)
    ops = symmetry.seitz_ops(cell)
    shape = grid_shape(cell.lattice, 0.1, ops, 8)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, shape, 0.3)
    f = sad_features(sad, cell.lattice, cell.frac, "sad_paw_elf_features", cell.numbers)
    names = channel_names("sad_paw_elf_features")
    assert names[:-1] == channel_names("sad_features") and len(f) == len(names)
    np.testing.assert_allclose(f[:-1], sad_features(sad, cell.lattice, cell.frac), atol=0)
    paw = paw_superposition(cell.lattice, cell.frac, cell.numbers, shape)
    np.testing.assert_allclose(f[-1], semilocal_elf(paw, cell.lattice), atol=1e-6)
    assert not np.allclose(f[-1], f[names.index("semilocal_elf")], atol=0.05)  # not the all-electron SAD's
    assert 0 <= f[-1].min() and f[-1].max() <= 1 and np.ptp(f[-1]) > 0.3
    exact = symmetry.commensurate_ops(shape, ops)
    np.testing.assert_allclose(symmetry.symmetrize(f[-1].astype(float), exact), f[-1], atol=2e-3)


@pytest.mark.parametrize("name", ["NiAl", "Mg2"])
def test_orbital_shares_split_the_paw_pseudo_density(name, request):
    """paw_orbital_features = paw_context + paw_semilocal_elf + the core/s/p/d shares of the PAW pseudo density: the
    shares are those rows of ``paw_components`` over their sum (so they add to one where the setups have no f
    electrons), in the clip range, symmetric, and not all alike (Ni fills d, Al s and p, Mg s and p)."""
    from pymatgen_elfml.features import FRACTION_CLIP, ORBITAL_FRACTIONS
    from pymatgen_elfml.sad.paw_atoms import paw_components

    cell = io.validate(request.getfixturevalue(name))
    ops = symmetry.seitz_ops(cell)
    shape = grid_shape(cell.lattice, 0.2, ops, 8)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, shape, 0.3)
    names = channel_names("paw_orbital_features")
    assert names[: len(channel_names("paw_context_features"))] == channel_names("paw_context_features")
    f = dict(zip(names, sad_features(sad, cell.lattice, cell.frac, "paw_orbital_features", cell.numbers)))
    np.testing.assert_array_equal(f["paw_valence"], sad_features(sad, cell.lattice, cell.frac, "paw_context_features",
                                                                 cell.numbers)[names.index("paw_valence")])
    shares = np.stack([f[n].astype(float) for n in ORBITAL_FRACTIONS])
    assert FRACTION_CLIP[0] <= shares.min() and shares.max() <= FRACTION_CLIP[1]
    parts = paw_components(cell.lattice, cell.frac, cell.numbers, shape)[:5]
    pseudo = parts.sum(axis=0)
    solid = pseudo > 1e-3 * pseudo.max()
    np.testing.assert_allclose(shares.sum(axis=0)[solid], 1.0, atol=1e-4)
    np.testing.assert_allclose(shares[1][solid], (parts[1] / pseudo)[solid], atol=1e-5)
    assert np.ptp(shares[1]) > 0.2
    if name == "NiAl":
        assert shares[3].max() > 0.5 and shares[2].max() > 0.1
    exact = symmetry.commensurate_ops(shape, ops)
    for channel, values in zip(ORBITAL_FRACTIONS, shares):
        np.testing.assert_allclose(symmetry.symmetrize(values, exact), values, atol=2e-3, err_msg=channel)


@pytest.mark.parametrize("name", ["NiAl", "Mg2"])
def test_electronegativity_channels_weigh_the_species_by_their_density(name, request):
    """paw_chi_features = paw_orbital_features + chi_local, chi_contrast: chi_local lies between the species'
    Pauling values (Ni 1.91, Al 1.61) and is lowest nearer Al than Ni; chi_contrast is 0 for one species and in NiAl
    lowest nearer Al (whose neighbourhood is Ni's); both are symmetric."""
    cell = io.validate(request.getfixturevalue(name))
    ops = symmetry.seitz_ops(cell)
    shape = grid_shape(cell.lattice, 0.2, ops, 8)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, shape, 0.3)
    names = channel_names("paw_chi_features")
    assert names[:-2] == channel_names("paw_orbital_features") and names[-2:] == CHI_CHANNELS
    f = dict(zip(names, sad_features(sad, cell.lattice, cell.frac, "paw_chi_features", cell.numbers).astype(float)))
    if name == "Mg2":
        np.testing.assert_allclose(f["chi_local"], 1.31)
        np.testing.assert_array_equal(f["chi_contrast"], 0.0)
        return
    assert 1.61 - 1e-6 <= f["chi_local"].min() and f["chi_local"].max() <= 1.91 + 1e-6 and np.ptp(f["chi_local"]) > 0.2
    ni, al = (nearest_nucleus_distance(cell.lattice, cell.frac[[list(cell.numbers).index(z)]], shape) for z in (28, 13))
    for channel in CHI_CHANNELS:
        low = np.unravel_index(np.argmin(f[channel]), shape)
        assert al[low] < ni[low], channel
    assert f["chi_contrast"].min() < -0.1 and f["chi_contrast"].max() > 0.02
    exact = symmetry.commensurate_ops(shape, ops)
    for channel in CHI_CHANNELS:
        np.testing.assert_allclose(symmetry.symmetrize(f[channel], exact), f[channel], atol=1e-4, err_msg=channel)


def test_electronegativity_channels_need_a_pauling_value():
    """He has no Pauling electronegativity: the channels name it instead of inventing one."""
    lattice = 3.0 * np.eye(3)
    frac, numbers = np.array([[0, 0, 0], [0.5, 0.5, 0.5]]), np.array([2, 13])
    sad = sad_density(lattice, frac, numbers, (16, 16, 16), 0.3)
    with pytest.raises(ValueError, match=r"electronegativity for atomic numbers \[2\]"):
        sad_features(sad, lattice, frac, "paw_chi_features", numbers)


def test_cell_channels_describe_the_whole_cell_and_survive_a_supercell(NiAl):
    """paw_cell_features = paw_orbital_features + four constants: ln(N_valence / V) (Ni 16 + Al 3 electrons in
    2.88^3 A^3), ln(V / atom), 2 elements, Pauling spread 1.91 - 1.61; a 2x1x1 supercell gives the same."""
    from pymatgen_elfml.features import CELL_CHANNELS, cell_descriptors

    names = channel_names("paw_cell_features")
    assert names[:-4] == channel_names("paw_orbital_features") and names[-4:] == CELL_CHANNELS
    cell = io.validate(NiAl)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, (16, 16, 16), 0.3)
    f = dict(zip(names, sad_features(sad, cell.lattice, cell.frac, "paw_cell_features", cell.numbers).astype(float)))
    expected = {"cell_log_n": np.log(19 / 2.88**3), "cell_log_v": np.log(2.88**3 / 2), "cell_n_species": 2.0,
                "cell_chi_spread": 0.30}
    for channel, value in expected.items():
        np.testing.assert_allclose(f[channel], value, rtol=1e-6, err_msg=channel)
    big = io.validate(NiAl * (2, 1, 1))
    assert cell_descriptors(big.lattice, big.numbers) == pytest.approx(cell_descriptors(cell.lattice, cell.numbers))
    with pytest.raises(ValueError, match="electronegativity"):
        cell_descriptors(3.0 * np.eye(3), np.array([2, 13]))


def test_features_translate_with_the_atoms(NiAl):
    cell, _, shape, _, f = _features(NiAl)
    shift = np.array([2, 1, 3])
    frac = cell.frac + shift / np.array(shape)
    sad = sad_density(cell.lattice, frac, cell.numbers, shape, 0.3)
    moved = sad_features(sad, cell.lattice, frac)
    np.testing.assert_allclose(moved, np.roll(f, tuple(shift), axis=(1, 2, 3)), atol=1e-4)


def test_unknown_feature_set_is_named():
    with pytest.raises(ValueError, match="unknown feature set 'nope'.*sad_features"):
        UNetConfig(inputs="nope")
    with pytest.raises(ValueError, match="logit_residual needs"):
        UNetConfig(inputs="log_sad", logit_residual=True)
    assert set(FEATURE_SETS) >= {"log_sad", "sad_features"}


def test_local_branch_starts_the_network_at_the_semilocal_elf(NiAl):
    """With a pointwise branch the U-Net's last layer starts at zero: the output is the local model's."""
    cell, _, shape, _, f = _features(NiAl)
    torch.manual_seed(0)
    net = PeriodicUNet3D(UNetConfig(base_channels=4, groups=2, depth=2, inputs="sad_features", symm_input=False,
                                    logit_residual=True, pointwise_hidden=8))
    torch.nn.init.zeros_(net.pointwise[-1].weight)
    torch.nn.init.zeros_(net.pointwise[-1].bias)
    with torch.no_grad():
        out = net(torch.from_numpy(f)[None])[0, 0].numpy()
    semilocal = f[channel_names("sad_features").index("semilocal_elf")]
    np.testing.assert_allclose(out, np.clip(semilocal, 1e-3, 1 - 1e-3), atol=1e-5)


@pytest.mark.parametrize("mode", ["whole", "patches"])
def test_feature_model_predicts_symmetric_elf_whole_and_in_patches(mode, Mg2, tmp_path):
    """A feature-input network saved and reloaded runs end to end; both inference modes agree
    with the space group and give values in [0, 1]."""
    from dataclasses import replace

    from conftest import TINY_SPEC, max_op_deviation

    from pymatgen_elfml.io import elf_from_elfcar
    from pymatgen_elfml.predictor import ElfPredictor

    torch.manual_seed(1)
    arch = replace(TINY_SPEC.arch, inputs="sad_features", symm_input=False, symm_stages=False, logit_residual=True,
                   pointwise_hidden=8)
    net = PeriodicUNet3D(arch)
    net.set_input_stats(torch.linspace(-2, 1, 8), torch.linspace(0.5, 2, 8))
    ElfPredictor(net, replace(TINY_SPEC, arch=arch), device="cpu").save_pretrained(tmp_path / "m")
    predictor = ElfPredictor.from_pretrained(tmp_path / "m", device="cpu", mode=mode)
    np.testing.assert_array_equal(predictor.net.input_shift.numpy(), torch.linspace(-2, 1, 8).numpy())
    elf = elf_from_elfcar(predictor.predict(Mg2))
    cell = io.validate(Mg2)
    assert 0 <= elf.min() and elf.max() <= 1
    assert max_op_deviation(elf, symmetry.commensurate_ops(elf.shape, symmetry.seitz_ops(cell))) < 1e-6
