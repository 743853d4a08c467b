"""The second paper's VAE path: aligned AU fields, orbit-weighted full-grid sums, the training entry point, and
DensityGenerator.reconstruct / sample (exact symmetry, sign, electron count, bad input)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from scipy import fft

pytest.importorskip("monai")
pytest.importorskip("einops")

from pymatgen_elfml import io, symmetry  # noqa: E402
from pymatgen_elfml.generative.data import cell_grid, decode, make_field  # noqa: E402
from pymatgen_elfml.generative.train import full_grid_terms, inverse_dct  # noqa: E402
from pymatgen_elfml.generator import DensityGenerator  # noqa: E402
from pymatgen_elfml.sad.paw_atoms import paw_superposition  # noqa: E402
from pymatgen_elfml.train.__main__ import main as train_main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CSCL = Structure(Lattice.cubic(3.1), ["Cu", "Zn"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _field(structure):
    cell = io.validate(structure)
    shape, _ = cell_grid(cell)
    return cell, paw_superposition(cell.lattice, cell.frac, cell.numbers, shape)


def test_aligned_field_decodes_exactly_and_its_orbit_weights_give_full_grid_sums():
    cell, rho = _field(CSCL)
    f = make_field("x", "train", "sad", rho, cell, 23.0, (20, 20, 20))
    np.testing.assert_allclose(decode(f.coeffs.astype(float), f.shape, f.ops, f.scale), rho, rtol=0, atol=2e-6 * np.abs(rho).max())
    c = torch.from_numpy(f.coeffs)[None]
    x, w = full_grid_terms(c, torch.from_numpy(f.stab)[None], torch.tensor([float(len(f.ops))]), inverse_dct((20, 20, 20), "cpu"))
    assert float(w.sum()) == pytest.approx(rho.size)  # the orbits tile the grid
    full = rho / f.scale
    assert float((w * x).sum()) == pytest.approx(full.sum(), rel=1e-5)  # sum over the grid from the AU alone
    assert float((w * x**2).sum()) == pytest.approx((full**2).sum(), rel=1e-5)
    assert float(x.max()) == pytest.approx(full.max(), rel=1e-5)


def test_inverse_dct_matches_scipy():
    y = np.random.default_rng(0).normal(size=(2, 5, 6, 7))
    back = inverse_dct((5, 6, 7), "cpu")(torch.tensor(y, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(back, fft.idctn(y, axes=(1, 2, 3), norm="ortho"), atol=1e-5)


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    """A two-epoch VAE of Pm-3m trained through the project's entry point on data/v2 (grids <= 32)."""
    out = tmp_path_factory.mktemp("vae") / "run"
    args = ["vae", "--data", str(REPO / "data" / "v2"), "--spacegroup", "221", "--out", str(out), "--n-sad", "8",
            "--max-grid", "32", "--sad-epochs", "1", "--epochs", "1", "--dim", "8", "--depth", "1", "--latent", "2"]
    assert train_main(args) == 0
    return out, args


def test_training_writes_metrics_models_and_refuses_a_different_resume(tiny_vae, capsys):
    out, args = tiny_vae
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["sad", "reference"] and all(np.isfinite(r["val"]["psnr"]) for r in rows)
    assert (out / "model_sad" / "weights.pt").is_file() and (out / "model" / "config.json").is_file()
    assert train_main([*args[:-2], "--latent", "3", "--resume"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert train_main([*args, "--resume"]) == 0  # nothing left to do: no epoch is computed twice
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_reconstruct_and_sample_are_symmetric_with_the_right_charge(tiny_vae, tmp_path):
    model = tiny_vae[0] / "model"
    chg = DensityGenerator.reconstruct(CSCL, vae=model)
    rho = io.density_from_chgcar(chg)
    cell = io.validate(CSCL)
    assert rho.mean() * CSCL.volume == pytest.approx(11 + 12, rel=1e-6)
    ops = symmetry.commensurate_ops(rho.shape, symmetry.seitz_ops(cell))
    np.testing.assert_allclose(symmetry.symmetrize(rho, ops), rho, atol=1e-9 * np.abs(rho).max())
    # a density file is read as a density whatever its name; a structure file is a structure
    chg.write_file(tmp_path / "density.vasp")
    again = io.density_from_chgcar(DensityGenerator.reconstruct(tmp_path / "density.vasp", vae=model))
    np.testing.assert_allclose(again, io.density_from_chgcar(DensityGenerator.reconstruct(chg, vae=model)), rtol=1e-5)
    CSCL.to(filename=str(tmp_path / "POSCAR"), fmt="poscar")
    np.testing.assert_allclose(io.density_from_chgcar(DensityGenerator.reconstruct(tmp_path / "POSCAR", vae=model)), rho,
                               rtol=1e-6)
    (tmp_path / "CHGCAR").write_text("not a density\n")
    with pytest.raises(ValueError, match="not a readable CHGCAR"):
        DensityGenerator.reconstruct(tmp_path / "CHGCAR", vae=model)
    witness = json.loads((model / "config.json").read_text())["witness"]
    samples = DensityGenerator.sample(221, Lattice.cubic(np.linalg.norm(witness["lattice"][0]) * 0.97), n=2, seed=3,
                                      n_electrons=7.0, vae=model)
    again = DensityGenerator.sample(221, Lattice.cubic(np.linalg.norm(witness["lattice"][0]) * 0.97), n=2, seed=3,
                                    n_electrons=7.0, vae=model)
    for s, t in zip(samples, again):
        r = io.density_from_chgcar(s)
        assert r.min() >= 0 and r.mean() * s.structure.volume == pytest.approx(7.0, rel=1e-9)
        ops = symmetry.commensurate_ops(r.shape, symmetry.seitz_ops(io.validate(s.structure)))
        np.testing.assert_allclose(symmetry.symmetrize(r, ops), r, atol=1e-9 * r.max())
        np.testing.assert_array_equal(r, io.density_from_chgcar(t))  # seeded
    assert not np.allclose(io.density_from_chgcar(samples[0]), io.density_from_chgcar(samples[1]))


def test_bad_input_is_named(tiny_vae):
    model = tiny_vae[0] / "model"
    with pytest.raises(ValueError, match="at least 1"):
        DensityGenerator.sample(221, Lattice.cubic(3.0), n=0, vae=model)
    with pytest.raises(ValueError, match="incompatible with space group 221"):
        DensityGenerator.sample(221, Lattice.tetragonal(3.0, 3.5), vae=model)
    with pytest.raises(ValueError, match="not 221|for space group 221, not 225"):
        DensityGenerator.sample(225, Lattice.cubic(3.0), vae=model)
    with pytest.raises(ValueError, match="no density VAE for space group 230"):
        DensityGenerator.sample(230, Lattice.cubic(3.0), vae="no-such-family")
    chg = io.to_chgcar(CSCL, np.full((20, 20, 20), 23 / CSCL.volume))
    with pytest.raises(ValueError, match="is not the grid"):
        DensityGenerator.reconstruct(chg, vae=model)
    big = Structure(Lattice.cubic(6.2), ["Cu"], [[0, 0, 0]])  # its grid's AU exceeds the envelope of grids <= 32
    with pytest.raises(ValueError, match="beyond the VAE's envelope"):
        DensityGenerator.reconstruct(big, vae=model)


def test_linear_vae_reconstructs_held_out_densities(tmp_path):
    """The PCA-initialised linear VAE, fitted on Pm-3m reference densities of grids <= 32, reconstructs the
    validation densities (other chemical systems) far better than the group mean it starts from."""
    out = tmp_path / "lin"
    assert train_main(["vae", "--data", str(REPO / "data" / "v2"), "--spacegroup", "221", "--out", str(out),
                       "--n-sad", "4", "--max-grid", "32", "--arch", "linear", "--latent", "16"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = rows[-1]
    assert final["stage"] == "reference" and final["val"]["n"] >= 5
    assert final["val"]["psnr"] > 40 and final["val"]["nmae"] < 0.02


SHIPPED = REPO / "models" / "density-vae-v1"
# the first three test-split cells on grids <= 32 (id order) when the VAEs shipped
PINNED_TEST_CELLS = {221: ["bin-AgZn-B2-v0.60", "bin-AgZn-B2-v0.80", "bin-AlLi-B2-v0.60"],
                     225: ["elem-La-fcc-v0.50", "elem-La-fcc-v0.60", "elem-Zn-fcc-v0.50"],
                     229: ["elem-La-bcc-v0.50", "elem-La-bcc-v0.60", "elem-Zn-bcc-v0.50"]}


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="no shipped VAE")
@pytest.mark.parametrize("group", [221, 225, 229])
def test_shipped_vae_meets_the_issue_targets_on_test_cells(group):
    """Reconstructions of pinned test-split GPAW densities through DensityGenerator.reconstruct: >= 45 dB and
    NMAE <= 1 % each (a constant or random network gives ~19 dB / NMAE ~0.8, the group mean)."""
    from pymatgen_elfml.reference.store import read_jsonl, read_record

    splits = json.loads((REPO / "data" / "v2" / "splits.json").read_text())
    rows = {r["id"]: r for r in read_jsonl(REPO / "data" / "v2" / "manifest.jsonl")}
    ids = PINNED_TEST_CELLS[group]  # pinned: records landing later must not change what this test checks
    assert all(rows[i]["spacegroup"] == group and splits[i] == "test" for i in ids)
    for rid in ids:
        rec = read_record(REPO / "data" / "v2" / rows[rid]["file"], sha256=rows[rid]["sha256"])
        ref = np.asarray(rec.rho, float)
        out = io.density_from_chgcar(DensityGenerator.reconstruct(io.to_chgcar(rec.structure, ref)))
        psnr = 10 * np.log10(ref.max() ** 2 / ((out - ref) ** 2).mean())
        assert psnr >= 45 and np.abs(out - ref).sum() / ref.sum() <= 0.01, (rid, psnr)


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="no shipped VAE")
def test_shipped_linear_vae_samples_and_refuses_another_setting():
    """Samples of the shipped (linear) Fm-3m VAE: exactly symmetric, non-negative, the requested count, seeded;
    a conventional fcc cell (another setting than the VAE's primitive one) is refused instead of decoded wrongly."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    conventional = Structure(Lattice.cubic(3.6), ["Cu"] * 4, [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    with pytest.raises(ValueError, match="another setting"):
        DensityGenerator.reconstruct(conventional)
    primitive = SpacegroupAnalyzer(conventional).get_primitive_standard_structure()
    first, second = DensityGenerator.sample(225, primitive.lattice, n=2, seed=7, n_electrons=11.0)
    again = DensityGenerator.sample(225, primitive.lattice, n=1, seed=7, n_electrons=11.0)[0]  # seeded (float32 batch)
    ref = io.density_from_chgcar(first)
    np.testing.assert_allclose(io.density_from_chgcar(again), ref, rtol=0, atol=1e-5 * ref.max())
    for chg in (first, second):
        rho = io.density_from_chgcar(chg)
        assert rho.min() >= 0 and rho.mean() * primitive.volume == pytest.approx(11.0, rel=1e-9)
        ops = symmetry.commensurate_ops(rho.shape, symmetry.seitz_ops(io.validate(chg.structure)))
        np.testing.assert_allclose(symmetry.symmetrize(rho, ops), rho, atol=1e-9 * rho.max())
    with pytest.raises(ValueError, match="n_electrons must be positive"):
        DensityGenerator.sample(225, primitive.lattice, n_electrons=0)


def test_run_settings_nest_the_architecture_and_read_flat_folders():
    from dataclasses import asdict

    from pymatgen_elfml.generative.train import VaeTrainConfig

    config = VaeTrainConfig.from_args(["--data", "d", "--spacegroup", "225", "--out", "o", "--arch", "linear", "--latent", "16"])
    assert (config.vae.arch, config.vae.latent, config.vae.envelope) == ("linear", 16, ())
    nested = json.loads(json.dumps(asdict(config)))  # config.json of a run
    assert VaeTrainConfig.from_dict(nested) == config and config.differences(nested) == {}
    flat = {k: v for k, v in nested.items() if k != "vae"} | {k: v for k, v in nested["vae"].items() if k != "envelope"}
    assert VaeTrainConfig.from_dict(flat) == config  # run folders written before the nesting still resume
    assert set(config.differences({**flat, "latent": 8})) == {"latent"}
    from pymatgen_elfml.generative.vae import build_vae

    with pytest.raises(ValueError, match="envelope"):
        build_vae(config.vae)
