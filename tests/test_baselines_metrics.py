"""Baselines and metrics."""

import numpy as np
import pytest
from pymatgen.core import Lattice

from pymatgen_elfml.baselines import semilocal_elf, spectral_derivatives
from pymatgen_elfml.generator import DensityGenerator
from pymatgen_elfml.io import density_from_chgcar
from pymatgen_elfml.metrics import field_errors, interstitial_maxima, match_maxima


def test_uniform_density_gives_electron_gas_elf():
    np.testing.assert_allclose(semilocal_elf(np.full((8, 8, 8), 0.05), np.eye(3) * 4), 0.5)


def test_spectral_derivatives_of_a_plane_wave():
    lat = Lattice.from_parameters(4, 5, 6, 80, 95, 110).matrix
    shape = (24, 30, 36)
    frac = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), -1)
    k = 2 * np.pi * np.array([1, -2, 1])  # integer Miller indices: periodic
    rho = 1 + 0.1 * np.cos(frac @ k)
    g = np.linalg.inv(lat) @ k  # Cartesian wavevector G = 2 pi (h b1 + k b2 + l b3)
    grad2, lap = spectral_derivatives(rho, lat)
    np.testing.assert_allclose(lap, -0.1 * np.cos(frac @ k) * (g @ g), atol=1e-9)
    np.testing.assert_allclose(grad2, (0.1 * np.sin(frac @ k)) ** 2 * (g @ g), atol=1e-9)


def test_semilocal_elf_of_a_sad_is_bounded(Al4):
    rho = density_from_chgcar(DensityGenerator().sad(Al4, spacing=0.15))
    elf = semilocal_elf(rho, Al4.lattice.matrix)
    assert elf.min() >= 0 and elf.max() <= 1 and elf.std() > 0.01


def test_field_errors_and_maxima(Al4):
    rng = np.random.default_rng(0)
    ref = rng.random((10, 10, 10))
    m = field_errors(ref, ref)
    assert m["mae"] == 0 and m["hist_l1"] == 0 and m["psnr"] == float("inf")
    m = field_errors(ref + 0.1, ref)
    assert m["mae"] == pytest.approx(0.1) and m["psnr"] == pytest.approx(20.0)
    # a bump at the octahedral hole (1/2, 0, 0) of fcc Al is found; one at an atom is not
    shape = (20, 20, 20)
    frac = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), -1)
    d = frac - np.array([0.5, 0, 0])
    d -= np.round(d)
    bump = np.exp(-np.sum((d @ Al4.lattice.matrix) ** 2, axis=-1))
    peaks = interstitial_maxima(bump, Al4.lattice.matrix, Al4.frac_coords)
    assert len(peaks) == 1 and np.allclose(peaks[0, :3], [0.5, 0, 0])
    assert match_maxima(peaks, peaks, Al4.lattice.matrix)["recall"] == 1.0
    assert len(interstitial_maxima(np.full(shape, 0.5), Al4.lattice.matrix, Al4.frac_coords)) == 0
