"""The learned valence density: exact electron counts, CHGCAR round trip, bad input, training, CLI."""

import json
import warnings

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp.outputs import Chgcar

from pymatgen_elfml.cli import main
from pymatgen_elfml.generator import DensityGenerator
from pymatgen_elfml.nn import PeriodicUNet3D, UNetConfig
from pymatgen_elfml.predictor import ElfPredictor, ValenceDensityPredictor
from pymatgen_elfml.pretrained import ModelSpec, save_model
from pymatgen_elfml.train import loop
from pymatgen_elfml.train.config import TrainConfig
from pymatgen_elfml.valence import SETUP_VALENCE

SPEC = ModelSpec(arch=UNetConfig(base_channels=4, depth=2, groups=2, target="density"), native_spacing=0.25,
                 sad_sigma=0.5, patch_size=8, halo=4)


def _net(seed: int = 0) -> PeriodicUNet3D:
    """A random density network whose output mean is positive (last bias 1: a trained model's scale)."""
    torch.manual_seed(seed)
    net = PeriodicUNet3D(SPEC.arch)
    with torch.no_grad():
        list(net.head)[-2].conv.bias.fill_(1.0)
    return net


@pytest.fixture(scope="module")
def generator():
    return DensityGenerator(ValenceDensityPredictor(_net(), SPEC, device="cpu"))


def _al3cu():
    return Structure(Lattice.cubic(3.7), ["Cu", "Al", "Al", "Al"], [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])


def test_the_density_integrates_to_the_valence_count_on_any_grid(generator):
    s = _al3cu()
    n_val = SETUP_VALENCE["Cu"] + 3 * SETUP_VALENCE["Al"]
    for kwargs in ({}, {"grid": (20, 22, 25)}, {"spacing": 0.3}):
        chg = generator.predict(s, precision="fp32", **kwargs)
        assert chg.data["total"].mean() == pytest.approx(n_val, rel=1e-6)  # data = rho * V: grid mean = electrons
    sc = s * (1, 1, 2)
    assert generator.predict(sc, precision="fp32").data["total"].mean() == pytest.approx(2 * n_val, rel=1e-6)


def test_supercell_and_symmetry(generator):
    s = _al3cu()
    one = generator.predict(s, precision="fp32").data["total"]
    two = generator.predict(s * (1, 1, 2), precision="fp32").data["total"]
    assert two.shape[2] == 2 * one.shape[2]
    np.testing.assert_allclose(two[:, :, : one.shape[2]], 2 * one, rtol=1e-4, atol=1e-4)  # rho*V: V doubles, rho repeats
    np.testing.assert_allclose(one, np.transpose(one, (1, 0, 2)), rtol=1e-4, atol=1e-4)  # cubic: x <-> y


def test_chgcar_round_trip(generator, tmp_path):
    chg = generator.predict(_al3cu(), precision="fp32")
    chg.write_file(str(tmp_path / "CHGCAR"))
    back = Chgcar.from_file(str(tmp_path / "CHGCAR"))
    np.testing.assert_allclose(back.data["total"], chg.data["total"], rtol=1e-4, atol=1e-6)


def test_bad_input_is_named(generator):
    with pytest.raises(ValueError, match="no valence electron count for Th"):
        generator.predict(Structure(Lattice.cubic(3.0), ["Al", "Th"], [[0, 0, 0], [.5, .5, .5]]))
    with pytest.raises(RuntimeError, match="has no learned model"):
        DensityGenerator().predict(_al3cu())
    with pytest.raises(ValueError, match="runs models with target 'elf'"):
        ElfPredictor(_net(), SPEC, device="cpu")
    zero = _net()
    with torch.no_grad():
        list(zero.head)[-2].conv.bias.fill_(-5.0)
    with pytest.raises(RuntimeError, match="cannot be scaled to the valence"):
        DensityGenerator(ValenceDensityPredictor(zero, SPEC, device="cpu")).predict(_al3cu(), precision="fp32")


def test_from_pretrained_folder_and_corruption(tmp_path):
    save_model(_net(), SPEC, tmp_path / "m")
    gen = DensityGenerator.from_pretrained(tmp_path / "m", device="cpu")
    assert gen.predict(_al3cu(), precision="fp32").data["total"].mean() == pytest.approx(3 * 3 + 11, rel=1e-6)
    with pytest.raises(ValueError, match="runs models with target 'density'"):
        DensityGenerator.from_pretrained("elf-metals-v3")
    weights = tmp_path / "m" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0" * 10)
    from pymatgen_elfml.pretrained import ModelFileError

    with pytest.raises(ModelFileError, match="corrupted"):
        DensityGenerator.from_pretrained(tmp_path / "m")


def test_cli_density(tmp_path, capsys):
    save_model(_net(), SPEC, tmp_path / "m")
    _al3cu().to(filename=str(tmp_path / "POSCAR"))
    out = tmp_path / "CHGCAR"
    assert main(["density", str(tmp_path / "POSCAR"), "-o", str(out), "--model", str(tmp_path / "m"),
                 "--grid", "16", "16", "16", "--precision", "fp32"]) == 0
    assert Chgcar.from_file(str(out)).data["total"].mean() == pytest.approx(20, rel=1e-5)
    assert main(["density", str(tmp_path / "POSCAR"), "-o", str(tmp_path / "X"), "--model", "elf-metals-v3"]) == 2
    assert "target 'density'" in capsys.readouterr().err and not (tmp_path / "X").exists()


@pytest.mark.parametrize("inputs", ["sad_features", "valence_features"])
def test_density_training_run(triplets, tmp_path, inputs):
    """The ELF training path with target density: forest stage, U-Net epochs, charge term, NMAE-like metric;
    with the valence channel the forest fits the residual of that base."""
    config = TrainConfig.from_dict(dict(data=str(triplets), out=str(tmp_path / "run"), epochs=1, batch_size=2,
                                        whole_cell=True, base_channels=4, depth=2, groups=2, inputs=inputs,
                                        pointwise_trees=5, pointwise_leaves=7, loss="smoothl1_grad", core_weight=0.5,
                                        target="density", device="cpu", seed=0))
    model = loop.run(config)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1] and "charge" in rows[1]["train"] and rows[1]["train"]["steps"] > 0
    gen = DensityGenerator.from_pretrained(model, device="cpu")
    s = _al3cu()
    assert gen.predict(s, precision="fp32").data["total"].mean() == pytest.approx(20, rel=1e-6)
    forest_only = rows[0]["val"]["mae"]  # the forest's NMAE-like error on validation, before any U-Net step
    assert forest_only < 0.9  # a uniform density scores ~0.9 on these records: the forest learned something
    many = list(gen.predict_many([s, s * (1, 1, 2)], progress=False, precision="fp32"))
    assert [c.data["total"].mean() for c in many] == pytest.approx([20, 40], rel=1e-6)
    if inputs == "valence_features":
        _check_release(tmp_path / "run")


def _check_release(run):
    """The release tool writes a density card: NMAE columns, the density wording, the reference folder."""
    from pymatgen_elfml.train.release import release

    table = {"model | all": {"n": 3, "nmae": 0.05, "far_nmae": 0.06, "charge_error": 1e-15}}
    (run / "acc.json").write_text(json.dumps({"split": "test", "machine": {"cores": 2}, "table": table}))
    dest = release(run, "density-test", run / "acc.json", None, models=run / "models")
    card = (dest / "MODEL_CARD.md").read_text()
    assert "valence charge density" in card and "| NMAE | NMAE > 1 A |" in card and "`data/" in card
    assert "validation NMAE" in card and "charge" in card


GOLDEN_NMAE = {  # density-metals-v10 on the 8 smallest test cells of data/v2 when v1 shipped, measured 2026-12-07
    "rand-sg191-Zn1-seed0-042-v0.60": 0.0066,  # v9 0.0065, its corrected base (table v3) 0.0099, the PAW base 0.0328
    "rand-sg12-V1-seed0-018-v0.60": 0.0226,  # v9 0.0240, corrected base 0.0265, PAW 0.0489
    "rand-sg12-V1-seed0-018-v0.80": 0.0232,  # v9 0.0234, corrected base 0.0287, PAW 0.0461
    "rand-sg12-V1-seed0-018-v1.00": 0.0256,  # v9 0.0266, corrected base 0.0324, PAW 0.0463
    "bin-CuPd-L1_0-v0.60": 0.0045,  # v9 0.0040, corrected base 0.0065, PAW 0.0464
    "bin-AgZn-L1_0-v0.60": 0.0085,  # v9 0.0083, corrected base 0.0086, PAW 0.0362
    "bin-AgZn-B2-v0.60": 0.0066,  # v9 0.0060, corrected base 0.0076, PAW 0.0357
    "imet-MnAl-L1_0-v0.60": 0.0124,  # v9 0.0123, corrected base 0.0134, PAW 0.0309
}


def _held_out_nmae(generator, ids=tuple(GOLDEN_NMAE), table="paw_radial_v3.json"):
    """NMAE of ``generator``, of the free atoms' PAW valence densities alone and of that superposition with the
    radial corrections of ``sad.paw_radial``'s ``table`` (the base of density-metals-v9 and -v10) on the test-split structures
    ``ids`` of data/v2 (never seen in training or model selection; a fixed list, so that records computed later do
    not change the set): three {id: NMAE} dicts."""
    from conftest import held_out_records

    from pymatgen_elfml import io
    from pymatgen_elfml.predictor import OutOfDomainWarning
    from pymatgen_elfml.sad.paw_atoms import paw_superposition
    from pymatgen_elfml.sad.paw_radial import load_table, radial_correction

    model, base, corrected = {}, {}, {}
    for rec in held_out_records(ids):
        ref, cell = np.asarray(rec.rho, dtype=float), io.validate(rec.structure)
        with warnings.catch_warnings():  # held-out systems may be outside the training elements: expected
            warnings.simplefilter("ignore", OutOfDomainWarning)
            rho = io.density_from_chgcar(generator.predict(rec.structure, grid=ref.shape))
        paw = paw_superposition(cell.lattice, cell.frac, cell.numbers, ref.shape)
        radial = paw + radial_correction(cell.lattice, cell.frac, cell.numbers, ref.shape, load_table(table))
        model[rec.id], base[rec.id], corrected[rec.id] = (float(np.abs(f - ref).sum() / ref.sum()) for f in (rho, paw, radial))
    return model, base, corrected


@pytest.fixture(scope="module")
def shipped_errors():
    return _held_out_nmae(DensityGenerator.from_pretrained(device="cpu"))


def test_shipped_density_model_beats_its_base_matches_golden_values_and_the_previous_model(shipped_errors):
    """Fails for a constant network (a uniform density: NMAE ~0.9), for a random one (its forest correction would
    not beat the base it corrects: v10's network must beat its corrected base, 0.0167 on these cells, by 10 %) and
    for density-metals-v9, the previous default (its mean on these 8 cells was 0.0139 against v10's 0.0137, and its
    values differ from the golden ones by up to 1.5e-3; retired from the tree after commit 4e9d9da)."""
    model, base, corrected = shipped_errors
    assert np.mean(list(model.values())) < 0.9 * np.mean(list(base.values())), (model, base)
    assert np.mean(list(model.values())) < 0.9 * np.mean(list(corrected.values())), (model, corrected)
    assert set(model) == set(GOLDEN_NMAE)
    for key, value in GOLDEN_NMAE.items():
        assert model[key] == pytest.approx(value, abs=5e-4), key
