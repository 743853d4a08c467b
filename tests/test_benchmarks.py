"""The benchmark scripts' shared functions still fit together (they are run by hand, not by CI)."""

import json
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))


def test_accuracy_evaluate_on_one_held_out_cell_and_subsets():
    import accuracy
    import gbm_baseline

    folder = REPO / "data" / "v2"
    v1 = gbm_baseline.subset_ids(folder / "v1_ids.json")
    test_v1 = [row["id"] for row, _ in gbm_baseline.records(folder, "test", v1)]
    assert len(v1) == 413 and len(test_v1) == 43  # v1's test split, as the shipped models were scored on
    one = {"bin-AgZn-B2-v0.60"}
    results = accuracy.evaluate(folder, "test", {}, mean=0.5, subset=one)
    assert set(results) == {"best constant (cell median)", "constant (train mean)", "semilocal TF+vW of SAD"}
    table = accuracy.summarize(results)
    assert table["semilocal TF+vW of SAD | all"]["n"] == 1 and 0 < table["semilocal TF+vW of SAD | all"]["mae"] < 0.5
    templates = gbm_baseline.subset_ids(folder / "structures.json", "template")
    assert len(templates) == 861 and all(i.startswith("tmpl-") for i in templates)  # 489 + 126 + 120 + 126 coverage templates


def test_training_study_settings_read_flat_and_nested_configs():
    import training_study

    from pymatgen_elfml.train.config import TrainConfig

    flat = json.loads((REPO / "tests" / "data" / "flat_training_config.json").read_text())  # elf-metals-v2's (retired)
    text = training_study.settings(flat)
    assert "pointwise_trees=300" in text and "whole_cell=True" in text
    nested = json.loads(json.dumps(__import__("dataclasses").asdict(TrainConfig.from_dict(flat))))
    assert training_study.settings(nested) == text


@pytest.mark.parametrize("name", ["patch_seams", "learning_curve", "reference_convergence", "reference_recomputed", "speed", "scaling", "screening",
                                  "density", "vae"])
def test_benchmark_scripts_import(name):
    __import__(name)


def test_screening_benchmark_on_one_held_out_cell(tiny_predictor):
    import screening

    folder = REPO / "data" / "v2"
    result = screening.evaluate(folder, "test", {"bin-AgZn-B2-v0.60"}, tiny_predictor)
    row = result["structures"][0]
    assert row[("reference (GPAW)")]["site_error_A"] == 0.0  # the reference against itself
    summary = screening.summarize(result["structures"] * 3)
    assert summary["model"]["n"] == 3 and summary["model"]["top5_overlap"] == 1


def test_scaling_benchmark_cells_and_power_law():
    import scaling

    assert [len(scaling.cell(n, rattled)) for n in (1, 4, 32) for rattled in (False, True)] == [1, 1, 4, 4, 32, 32]
    rows = [{"n_atoms": n, "t": 2.0 * n**1.5} for n in (2, 4, 8, 16)]
    a, b = scaling.fit_power_law(rows, "t")
    assert a == pytest.approx(2.0) and b == pytest.approx(1.5)


def test_vae_benchmark_rows_for_the_shipped_pm3m_vae():
    """benchmarks/vae.py on the shipped Pm-3m VAE: every held-out test cell scored, the VAE far above the group mean."""
    pytest.importorskip("monai")
    from vae import group_rows

    from pymatgen_elfml.generative.api import vae_folder

    rows = group_rows(221, vae_folder(221), REPO / "data" / "v2", "test", None)
    assert set(rows) == {"VAE (fine-tuned)", "group mean (no learning)"}
    vae, mean = rows["VAE (fine-tuned)"], rows["group mean (no learning)"]
    assert vae["n"] == mean["n"] >= 30 and vae["psnr"] > mean["psnr"] + 30 and vae["nmae"] < 0.01


@pytest.mark.parametrize("variant", ["v9 settings", "relative residual, eps 0.1", "early stop on 15 % held-out systems"])
def test_forest_sweep_variant_learns_a_cross_cell_correction(variant):
    import forest_sweep
    import numpy as np

    rng = np.random.default_rng(0)
    cells, per = 20, 200
    x = rng.uniform(0.2, 2.0, size=(cells * per, 2))
    y = 1.2 * x[:, 0] + 0.3 * np.sin(3 * x[:, 1])  # base channel 0 misses a 20 % scale and a smooth term
    data = {"x": x, "y": y, "far": (x[:, 1] > 1).astype(float), "cell": np.repeat(np.arange(cells), per),
            "keys": np.array([f"sys{i // 2}" for i in range(cells)])}
    base_only = forest_sweep.score(type("Zero", (), {"predict": lambda self, v: np.zeros(len(v))})(), 0.0, data, 0)
    model, eps = forest_sweep.fit(data, 0, forest_sweep.VARIANTS[variant])
    fitted = forest_sweep.score(model, eps, data, 0)
    assert base_only[0] > 0.1 and fitted[0] < 0.2 * base_only[0] and fitted[1] < 0.2 * base_only[1]


def test_forest_sweep_seed_mean_averages_the_seeds_predictions():
    import forest_sweep
    import numpy as np

    rng = np.random.default_rng(1)
    x = rng.uniform(0.2, 2.0, size=(2000, 2))
    models = [type("Const", (), {"n_iter_": 3, "predict": lambda self, v, c=c: np.full(len(v), c)})() for c in (1., 4.)]
    mean = forest_sweep.SeedMean(models)
    assert mean.n_iter_ == 6 and np.allclose(mean.predict(x), 2.5)


def test_radial_headroom_oracle_removes_a_planted_radial_profile_and_not_a_plane_wave():
    import numpy as np
    import radial_headroom

    lattice = np.diag([3.2, 3.2, 3.2])
    frac, numbers, shape = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]), np.array([3, 13]), (24, 24, 24)
    basis = radial_headroom.species_basis(lattice, frac, numbers, shape)
    assert basis.shape == (14, 24**3) and np.allclose(basis.mean(axis=1), 0.0, atol=1e-12)
    planted = np.linspace(-0.05, 0.05, 14) @ basis
    left = radial_headroom.radial_oracle(planted.reshape(shape), basis)
    assert np.abs(left).sum() < 1e-3 * np.abs(planted).sum()
    # a wave along x with one node per cell edge is odd about both atoms' planes: no radial profile fits it
    wave = np.broadcast_to(np.sin(2 * np.pi * np.arange(24) / 24)[:, None, None], shape)
    left = radial_headroom.radial_oracle(wave, basis)
    assert np.abs(left).sum() > 0.99 * np.abs(wave).sum()
