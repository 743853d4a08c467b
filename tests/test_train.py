"""Patch dataset, losses, and the training entry point (tiny runs on real reference records)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO

from pymatgen_elfml.data.dataset import (PatchDataset, PatchGeometry, RandomSamplerWithEpoch, collate_patches)
from pymatgen_elfml.losses import UncertaintyWeightedLoss, gradient_loss, histogram_kl, voxel_loss
from pymatgen_elfml.nn.unet import PeriodicUNet3D
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.train import local, loop
from pymatgen_elfml.train.config import TrainConfig
from pymatgen_elfml.train.local import fit_trees
from pymatgen_elfml.train.release import release

GEOM = PatchGeometry(patch=8, halo=4, stride=8)


def tiny_config(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), epochs=2, batch_size=4, patch=8, halo=4, stride=8, base_channels=4,
                depth=2, groups=2, max_patches=16, max_val_patches=8, device="cpu", seed=3)
    return TrainConfig.from_dict({**base, **kw})


def test_dataset_patches_jitter_and_collate(triplets):
    ds = PatchDataset(triplets, GEOM, split="train", jitter=True, seed=1)
    assert len(ds.samples) == 4 and len(ds) == sum(np.prod(np.ceil(np.array(t.elf.shape) / 8)) for t in ds.samples)
    ds.set_epoch(5)
    first = ds.offset.copy()
    ds.set_epoch(6)
    ds.set_epoch(5)
    np.testing.assert_array_equal(ds.offset, first)
    assert np.all((0 <= first) & (first < 8))
    item = ds[3]
    assert item["sad"].shape == item["target"].shape == (1, 16, 16, 16)
    batch = collate_patches([ds[0], ds[len(ds) - 1]])
    assert batch["sym"].shape[0] == 2 and batch["mask"].sum(1).tolist() == [len(ds[0]["sym"]), len(ds[len(ds) - 1]["sym"])]
    val = PatchDataset(triplets, GEOM, split="val", jitter=False)
    val.set_epoch(7)
    assert not val.offset.any() and len(val.samples) == 2


def test_sampler_advances_the_epoch(triplets):
    ds = PatchDataset(triplets, GEOM, split="train", seed=2)
    sampler = RandomSamplerWithEpoch(ds, seed=0)
    order0 = list(iter(sampler))
    assert ds.epoch == 0 and sampler.epoch == 1
    list(iter(sampler))
    assert ds.epoch == 1
    assert list(iter(RandomSamplerWithEpoch(ds, seed=0))) == order0


def test_corrupted_samples_are_skipped_with_a_report(triplets, tmp_path):
    shutil.copytree(triplets, tmp_path / "t")
    stem = sorted(p.name[:-8] for p in (tmp_path / "t").glob("*_elf.npy"))[0]
    (tmp_path / "t" / f"{stem}_elf.npy").write_bytes(b"broken")
    ds = PatchDataset(tmp_path / "t", GEOM)
    assert stem in ds.skipped and len(ds.samples) == 5


def test_losses():
    torch.manual_seed(0)
    y = torch.rand(2, 1, 12, 12, 12)
    assert float(voxel_loss(y, y, 2)) == 0 and float(gradient_loss(y, y, 2)) == 0
    assert float(histogram_kl(y, y)) == pytest.approx(0, abs=1e-7)
    p = torch.rand(2, 1, 12, 12, 12)
    assert float(histogram_kl(p, y)) >= 0
    # with a halo the gradient term equals the circular one restricted to the core of a periodic field
    big = torch.rand(1, 1, 8, 8, 8)
    tiled_p, tiled_t = big.repeat(1, 1, 3, 3, 3), torch.zeros(1, 1, 24, 24, 24)
    assert float(gradient_loss(tiled_p[..., 4:20, 4:20, 4:20], tiled_t[..., 4:20, 4:20, 4:20], 4)) == pytest.approx(
        float(gradient_loss(big, torch.zeros_like(big), 0)), rel=1e-6)
    loss = UncertaintyWeightedLoss(halo=2, init_from_first=False)
    with torch.no_grad():
        loss.eta.copy_(torch.tensor([0.5, -0.2, 1.0]))
    total, terms = loss(p, y)
    expected = sum(np.exp(-e) * terms[k] + e for e, k in zip([0.5, -0.2, 1.0], ["vox", "grad", "hist"]))
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)


@pytest.mark.filterwarnings("ignore::pymatgen_elfml.predictor.OutOfDomainWarning")  # trained on 2 elements only
def test_tiny_run_gives_a_loadable_model(triplets, tmp_path, Al4):
    model = loop.run(tiny_config(triplets, tmp_path / "run"))
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert set(metrics[0]["train"]) >= {"vox", "grad", "hist", "loss", "mae"} and "mae" in metrics[0]["val"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["geometry"]["patch"] == 8
    predictor = ElfPredictor.from_pretrained(model, device="cpu")
    assert predictor.spec.trained and predictor.spec.arch.depth == 2
    elf = predictor.predict(Al4, spacing=0.3).data["total"]
    assert 0 <= elf.min() and elf.max() <= 1
    # shipping the run: weights verified and copied, card written from the run's files
    row = dict(n=2, mae=0.1, rmse=0.2, p95=0.3, psnr=14.0, hist_l1=0.5, far_mae=0.1, recall=0.5, value_mae=0.05)
    (tmp_path / "acc.json").write_text(json.dumps({"split": "test", "machine": {"cores": 2, "cpu": "x86_64"},
                                                   "table": {"model | all": row}}))
    speed = {"split": "test", "summary": {"n": 2, "threads": 1, "median_gpaw_s": 30.0,
                                          "fp32": {"median_s": 0.3, "median_ratio_vs_gpaw": 100.0, "min_ratio_vs_gpaw": 50.0}},
             "structures": []}  # the format benchmarks/speed.py writes
    (tmp_path / "speed.json").write_text(json.dumps(speed))
    vasp = {"Ag4_hcp.ELFCAR.gz": {"formula": "Ag", "grid": [20, 20, 60], "methods": {"model | whole cell": {**row, "mae": 0.07}}}}
    (tmp_path / "vasp.json").write_text(json.dumps({"split": "none", "table": {}, "vasp": vasp}))  # accuracy.py --split none
    accuracy = [tmp_path / "acc.json", tmp_path / "vasp.json"]
    dest = release(tmp_path / "run", "tiny-v0", accuracy, tmp_path / "speed.json", models=tmp_path / "models")
    assert ElfPredictor.from_pretrained(dest, device="cpu").spec.trained
    card = (dest / "MODEL_CARD.md").read_text()
    assert "Real VASP `Ag4_hcp.ELFCAR.gz` (Ag, grid [20, 20, 60])" in card and "| model | whole cell | 2 | 0.070 |" in card
    assert "- fp32: median 0.300 s per structure, median GPAW / prediction 100x (min 50x)" in card
    assert "# tiny-v0" in card and "| model | all | 2 | 0.100 |" in card and "2 epochs x up to 16 patches" in card
    assert (dest / "training_metrics.jsonl").read_text() == (tmp_path / "run" / "metrics.jsonl").read_text()


def test_card_says_when_only_the_pointwise_branch_was_fitted():
    """A run stopped after epoch 0 (the forest alone, as the shipped density models) is not "0 epochs"."""
    from pymatgen_elfml.train.release import _schedule

    cfg, rows = {"whole_cell": True, "max_patches": 0}, [{"epoch": 0, "train": {"steps": 0}}]
    assert _schedule(cfg, rows) == "no U-Net epoch (only the pointwise branch was fitted); "
    rows.append({"epoch": 1, "train": {"steps": 5}})
    assert _schedule(cfg, rows) == "1 epochs x all whole cells; 5 optimizer steps; "


def test_forest_branch_run_records_stage_one_and_keeps_the_best(triplets, tmp_path):
    """A run with a forest branch: the forest alone is scored as epoch 0, the U-Net then trains its
    correction, and the saved model is the epoch with the lowest validation MAE."""
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    model = loop.run(tiny_config(triplets, out, inputs="sad_features", symm_input=False, pointwise_trees=10,
                                 pointwise_leaves=7, loss="smoothl1_grad", core_weight=0.25))
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [0, 1, 2] and metrics[0]["train"]["steps"] == 0
    net = ElfPredictor.from_pretrained(model, device="cpu").net
    assert int(net.trees.depth) > 0 and float(net.trees.value.abs().sum()) > 0
    best = min(metrics, key=lambda m: m["val"]["mae"])
    config = tiny_config(triplets, out, inputs="sad_features", loss="smoothl1_grad", core_weight=0.25)
    refit = loop.evaluate(net, loop._loss(config), loop._datasets(config, 0)[1], config, torch.device("cpu"))
    assert refit["mae"] == pytest.approx(best["val"]["mae"], rel=1e-5)


def _fitted_trees(triplets, tmp_path, **settings):
    """The forest branch (6 trees of 15 leaves on the SAD features) fitted as training does, with ``settings``."""
    config = tiny_config(triplets, tmp_path, inputs="sad_features", pointwise_trees=6, pointwise_leaves=15, **settings)
    net = PeriodicUNet3D(config.arch)
    fit_trees(net, loop._datasets(config, 0)[0], config)
    return net.trees


def test_forest_depth_cap_is_a_config_field(triplets, tmp_path):
    """``tree_depth`` caps the levels of the fitted trees (the traversal rounds of ``TreeEnsemble``); 0 lifts
    the cap, a negative value is refused."""
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="tree_depth"):
        tiny_config(triplets, tmp_path, tree_depth=-1)
    depths = {cap: int(_fitted_trees(triplets, tmp_path, tree_depth=cap).depth) for cap in (2, 0)}
    assert depths[2] == 2 and depths[0] > 2


def test_forest_l2_penalty_is_a_config_field(triplets, tmp_path):
    """``tree_l2`` reaches the forest fit: a huge penalty shrinks the leaf values (measured 0.024 against 0.99: with
    the absolute-error loss scikit-learn resets each leaf to a median of its residuals after the split, so they do
    not reach 0); negative is refused."""
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="tree_l2"):
        tiny_config(triplets, tmp_path, tree_l2=-1.0)
    spread = {l2: float(_fitted_trees(triplets, tmp_path, tree_l2=l2).value.abs().max()) for l2 in (0.0, 1e9)}
    assert spread[1e9] < 0.1 * spread[0.0], spread


def test_forest_sample_count_is_a_config_field(triplets, tmp_path, monkeypatch):
    """``tree_samples`` is the number of voxels drawn from every training sample for the forest fit (the fit sees
    that many rows per sample, capped by the grid); below 1 is refused."""
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="tree_samples"):
        tiny_config(triplets, tmp_path, tree_samples=0)
    rows = []
    real_fit = local.gbm_regressor

    def recording_regressor(*args, **kwargs):
        model = real_fit(*args, **kwargs)
        fit = model.fit
        model.fit = lambda x, y, **kw: (rows.append(len(x)), fit(x, y, **kw))[1]
        return model

    monkeypatch.setattr(local, "gbm_regressor", recording_regressor)
    for count in (50, 200):
        _fitted_trees(triplets, tmp_path, tree_samples=count)
    n_samples = len(loop._datasets(tiny_config(triplets, tmp_path, inputs="sad_features"), 0)[0].inputs)
    assert rows == [50 * n_samples, 200 * n_samples], (rows, n_samples)


def test_forest_seed_ensemble_is_the_mean_of_single_forests(triplets, tmp_path):
    """``pointwise_forests`` = 2 stores two forests (seeds 3 and 4, each on its own voxel sample) as one branch whose
    prediction is the mean of the single forests fitted with those seeds; below 1 is refused."""
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="pointwise_forests"):
        tiny_config(triplets, tmp_path, pointwise_trees=6, pointwise_forests=0)
    pair = _fitted_trees(triplets, tmp_path, pointwise_forests=2)
    singles = [_fitted_trees(triplets, tmp_path, seed=seed) for seed in (3, 4)]
    assert pair.n_trees == 12
    x = torch.from_numpy(PatchDataset(triplets, GEOM, split="val", jitter=False, inputs="sad_features").inputs[0])[None]
    mean = (singles[0](x) + singles[1](x)) / 2
    torch.testing.assert_close(pair(x), mean, rtol=1e-6, atol=1e-6)  # float32 output
    assert not torch.allclose(singles[0](x), singles[1](x))  # the seeds give different forests


def _same_final_checkpoints(a_dir, b_dir) -> list[list[dict]]:
    """Assert that two 2-epoch runs end with equal networks and loss weights; returns their metrics rows."""
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (a_dir, b_dir))
    assert a["epoch"] == b["epoch"] == 2
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    assert torch.equal(a["loss"]["eta"], b["loss"]["eta"])
    return [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (a_dir, b_dir)]


FOREST_DENSITY = dict(inputs="valence_features", pointwise_trees=5, pointwise_leaves=7, target="density",
                      loss="smoothl1_grad")


@pytest.mark.parametrize("extra", [{}, FOREST_DENSITY], ids=["plain", "forest-density-patches"])
def test_resumed_run_matches_an_uninterrupted_one(triplets, tmp_path, monkeypatch, extra):
    """Also with a forest branch, whose cached logits must come from the checkpoint's forest on resume."""
    loop.run(tiny_config(triplets, tmp_path / "a", **extra))
    real_save = loop._save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        if state["epoch"] >= 1:  # not at the stage-1 checkpoint (test_resume_after_stage1_skips_the_fit)
            raise KeyboardInterrupt("simulated interruption after epoch 1")

    monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        loop.run(tiny_config(triplets, tmp_path / "b", **extra))
    monkeypatch.setattr(loop, "_save_checkpoint", real_save)
    loop.run(tiny_config(triplets, tmp_path / "b", resume=True, **extra))
    rows = _same_final_checkpoints(tmp_path / "a", tmp_path / "b")
    assert rows[0][-1]["val"] == rows[1][-1]["val"]  # validated against the same (cached) forest
    # the interruption fell between epoch 1's checkpoint and its metrics row: the row is restored, nothing repeated
    assert [r["epoch"] for r in rows[1]] == [r["epoch"] for r in rows[0]] == sorted({r["epoch"] for r in rows[0]})


def test_resume_after_stage1_skips_the_fit(triplets, tmp_path, monkeypatch):
    """An interruption after the forest fit (before caching, validation and epoch 1) resumes from the stage-1
    checkpoint without refitting, and ends where an uninterrupted run ends."""
    loop.run(tiny_config(triplets, tmp_path / "a", **FOREST_DENSITY))
    real_save = loop._save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        assert state["epoch"] == 0 and state["row"] is None  # the first checkpoint is stage 1's
        raise KeyboardInterrupt("simulated interruption after the forest fit")

    monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        loop.run(tiny_config(triplets, tmp_path / "b", **FOREST_DENSITY))
    assert not (tmp_path / "b" / "metrics.jsonl").exists()
    monkeypatch.setattr(loop, "_save_checkpoint", real_save)

    def no_refit(*args, **kwargs):
        raise AssertionError("the forest was fitted again on resume")

    monkeypatch.setattr(loop, "fit_trees", no_refit)
    loop.run(tiny_config(triplets, tmp_path / "b", resume=True, **FOREST_DENSITY))
    rows = _same_final_checkpoints(tmp_path / "a", tmp_path / "b")
    assert [r["epoch"] for r in rows[1]] == [r["epoch"] for r in rows[0]] == [0, 1, 2]
    assert [r["val"] for r in rows[1]] == [r["val"] for r in rows[0]]


def test_density_target_refuses_the_composite_loss(triplets, tmp_path):
    with pytest.raises(ValueError, match="smoothl1_grad"):
        tiny_config(triplets, tmp_path, target="density")


def test_config_from_command_line():
    cfg = TrainConfig.from_args(["--data", "d", "--out", "o", "--epochs", "3", "--no-symm-input", "--depth", "2"])
    assert cfg.epochs == 3 and cfg.arch.symm_input is False and cfg.arch.depth == 2
    with pytest.raises(ValueError, match="multiple of"):
        TrainConfig.from_dict(dict(data="d", out="o", patch=10, stride=10, halo=1, depth=3))


def test_config_is_nested_with_one_flag_per_field(tmp_path):
    """UNetConfig and PatchGeometry are defined once; every field of theirs is a flag; config.json is
    nested and flat (older) run configs still load."""
    from dataclasses import asdict, fields

    from pymatgen_elfml.data.dataset import PatchGeometry
    from pymatgen_elfml.nn import UNetConfig

    help_text = _help(TrainConfig)
    for f in fields(UNetConfig):
        assert "--" + f.name.replace("_", "-") in help_text, f.name
    for flag in ("--patch", "--halo", "--stride", "--whole-cell", "--no-log-input"):
        assert flag in help_text
    cfg = TrainConfig.from_args(["--data", "d", "--out", "o", "--no-log-input", "--whole-cell", "--inputs", "sad_features"])
    assert cfg.arch == UNetConfig(log_input=False, inputs="sad_features") and cfg.geometry == PatchGeometry(whole=True)
    cfg.save(tmp_path / "config.json")
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["arch"]["log_input"] is False and "log_input" not in saved
    assert TrainConfig.from_dict(saved) == cfg == TrainConfig.from_dict(cfg.flat())
    shipped = json.loads((REPO / "tests" / "data" / "flat_training_config.json").read_text())  # elf-metals-v2's: flat, older
    assert TrainConfig.from_dict(shipped).arch.pointwise_trees == 300
    assert asdict(TrainConfig.from_dict(shipped))["geometry"]["whole"] is True


def _help(cls) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        cls.from_args(["--help"])
    return buffer.getvalue()


@pytest.mark.slow
def test_torchrun_two_cpu_processes(triplets, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "pymatgen_elfml.train", "--data", str(triplets), "--out", str(tmp_path / "ddp"), "--epochs", "1",
           "--batch-size", "2", "--patch", "8", "--halo", "4", "--stride", "8", "--base-channels", "4",
           "--depth", "2", "--groups", "2", "--max-patches", "8", "--max-val-patches", "4", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "ddp" / "model" / "weights.pt").is_file()
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 1


def test_training_lowers_the_loss(triplets, tmp_path):
    """Whole-cell training on the same cells: the training loss of the last epoch is well below the first
    (a broken optimiser step, a detached loss or a zero learning rate fails this)."""
    loop.run(tiny_config(triplets, tmp_path / "run", epochs=6, whole_cell=True, batch_size=2, lr=3e-3))
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    maes = [m["train"]["mae"] for m in metrics]  # measured: 0.195 -> 0.156; a zero learning rate stays flat
    assert min(maes[-2:]) < 0.85 * maes[0], maes


def test_training_refuses_data_of_another_grid_scale(triplets, tmp_path, Al4):
    """A model must know what it was trained on: triplets carry spacing and smoothing, and data on a
    coarser grid (e.g. VASP's ~0.15 A with its 0.24 A smoothing) or a mismatched config is refused."""
    from pymatgen_elfml.data.triplets import grid_scale, make_triplet, write_triplet

    meta = json.loads(next(triplets.glob("*_meta.json")).read_text())
    spacing, sigma = grid_scale(meta)
    assert meta["spacing"] == pytest.approx(spacing) and spacing <= 0.1 and sigma == pytest.approx(0.2)
    with pytest.raises(ValueError, match="coarser than the model's native_spacing 0.050"):
        loop.run(tiny_config(triplets, tmp_path / "a", native_spacing=0.05))
    with pytest.raises(ValueError, match="sad_sigma 0.300"):
        loop.run(tiny_config(triplets, tmp_path / "b", sad_sigma=0.3))
    mixed = tmp_path / "mixed"
    shutil.copytree(triplets, mixed)
    coarse = make_triplet("vasp_like", Al4, np.full((24, 24, 24), 0.5), labels={"split": "train"})  # 4.05 A / 24
    write_triplet(mixed, coarse)
    with pytest.raises(ValueError, match=r"1 with SAD smoothing.*vasp_like.*do not mix"):
        loop.run(tiny_config(mixed, tmp_path / "c"))


def test_run_folders_are_never_damaged(triplets, tmp_path, monkeypatch, capsys):
    """A rerun without --resume, or --resume with other settings, is refused before anything is written;
    --overwrite starts over; Ctrl-C ends with one line and a resumable checkpoint."""
    from pymatgen_elfml.train.__main__ import main as train_main

    out = tmp_path / "run"
    loop.run(tiny_config(triplets, out, epochs=1))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(loop.RunFolderError, match="already holds a run.*--resume.*--overwrite"):
        loop.run(tiny_config(triplets, out, epochs=1))
    with pytest.raises(loop.RunFolderError, match=r"other settings \(base_channels: run 4, now 8"):
        loop.run(tiny_config(triplets, out, epochs=2, base_channels=8, resume=True))
    with pytest.raises(ValueError, match="native_spacing"):  # refused data: --overwrite must not have cleared the run
        loop.run(tiny_config(triplets, out, epochs=1, overwrite=True, native_spacing=0.05))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    loop.run(tiny_config(triplets, out, epochs=1, overwrite=True))
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # started over, not appended

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "run", interrupted)
    monkeypatch.setattr("pymatgen_elfml.train.__main__.run", interrupted)
    args = ["--data", str(triplets), "--out", str(tmp_path / "new"), "--epochs", "1"]
    assert train_main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err


def test_restore_metrics_appends_only_a_missing_row(tmp_path):
    row = {"epoch": 1, "val": {"mae": 0.1, "maxima_delf": float("nan")}}  # NaN: a row never equals itself as a dict
    loop.append_metrics(tmp_path, row)
    loop.restore_metrics(tmp_path, row)
    loop.restore_metrics(tmp_path, {"epoch": 2})
    loop.restore_metrics(tmp_path, {"epoch": 2})
    loop.restore_metrics(tmp_path, None)
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_input_statistics_are_those_of_every_voxel_stacked():
    """Streamed two-pass statistics (one sample in float64 at a time) equal the stacked float64 mean and unbiased
    std over all voxels of cells of different shapes, with channels of very different scales."""
    from types import SimpleNamespace

    from pymatgen_elfml.train.loop import _input_stats

    rng = np.random.default_rng(3)
    scales = np.array([1e-3, 1.0, 50.0])[:, None, None, None]
    inputs = [(rng.normal(2.0, 1.0, (3, *shape)) * scales + 7.0).astype(np.float32)
              for shape in [(4, 5, 6), (8, 8, 8), (3, 3, 9)]]
    mean, std = _input_stats(SimpleNamespace(inputs=inputs))
    stacked = np.concatenate([x.reshape(3, -1).astype(np.float64) for x in inputs], axis=1)
    np.testing.assert_allclose(mean.numpy(), stacked.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), stacked.std(axis=1, ddof=1), rtol=1e-5)
    assert mean.dtype == std.dtype == torch.float32 and mean.shape == (3,)
