"""Regularisation sweep of the density model's forest branch (issue 13): does any setting close the cross-system gap?

The forest of ``density-metals-v9`` is nearly all of that model (its 1-minute U-Net epoch moves validation MAE
0.01374 -> 0.01371), so its settings are swept here on sampled voxels instead of by full training runs (45 min
each on 2 cores). Voxels are drawn with ``train.local.sample_voxels`` (``--per-cell`` per training cell, 4,000
per validation cell) from v9's inputs (``paw_radial3_features``); every variant is ``train.local.gbm_regressor``
with v9's settings (255 leaves, depth 12, L2 10) but 150 trees and the changes of ``VARIANTS``, fitted to the
density minus the base channel with the training loop's core weight 0.5. The score is the per-cell NMAE
(sum |rho - rho_ref| / sum rho_ref over a cell's sampled voxels, averaged over cells) on validation, overall and
> 1 A from nuclei; ``train_nmae`` uses every 10th training voxel. ``results/forest_sweep.md`` holds 11 variants;
the two 600-tree learning-rate variants were added after that run and are not yet measured. ``--seeds`` repeats
every fit with other seeds of the training voxels and the forest (validation voxels stay at seed 0): the spread
is the noise of one training run (``results/forest_sweep_seeds.md``: "300 trees", 4 seeds, on 1,691 training cells);
with ``--ensemble`` the mean prediction over the seeds (a seed ensemble, ``UNetConfig.pointwise_forests`` in training)
is scored as well (``results/forest_sweep_ensemble.md``).

Two variants are not plain scikit-learn settings: ``holdout`` (early stopping on the voxels of a seeded fraction
of the training *chemical systems*, meta ``split_key``, held out of the fit) and ``relres`` (fit the residual
over |base| + relres, weighted by |base| + relres: the same L1 loss on the density, a multiplicative correction).

    python -m pymatgen_elfml.data prepare data/v2 --out /work/trip5     # v9's training triplets, ~2 min
    python benchmarks/forest_sweep.py --data /work/trip5 --threads 2    # 11 variants: ~12 min on 2 cores
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

VARIANTS = {
    "v9 settings": {},
    "300 trees": {"max_iter": 300},
    "learning rate 0.05, 300 trees": {"learning_rate": 0.05, "max_iter": 300},
    "learning rate 0.05, 600 trees": {"learning_rate": 0.05, "max_iter": 600},
    "learning rate 0.025, 600 trees": {"learning_rate": 0.025, "max_iter": 600},
    "L2 1000": {"l2_regularization": 1000.0},
    "min 2,000 voxels per leaf": {"min_samples_leaf": 2000},
    "min 20,000 voxels per leaf": {"min_samples_leaf": 20000},
    "half the features per split": {"max_features": 0.5},
    "63 leaves, depth 8": {"max_leaf_nodes": 63, "max_depth": 8},
    "early stop on 15 % held-out systems": {"holdout": 0.15, "max_iter": 600, "n_iter_no_change": 20},
    "relative residual, eps 0.1": {"relres": 0.1},
    "relative residual, eps 0.5": {"relres": 0.5},
}
INPUTS, CORE_WEIGHT, SEED = "paw_radial3_features", 0.5, 0


def voxels(folder, split: str, per_cell: int, seed: int = SEED) -> dict:
    """Sampled voxels of one split (drawn with ``seed``): x (N, C), y (N,) rho / mean rho, far (N,) > 1 A mask,
    cell (N,) cell index, keys (cells,) chemical system of every cell."""
    from pymatgen_elfml.data.dataset import PatchDataset
    from pymatgen_elfml.train.local import sample_voxels
    ds = PatchDataset(folder, split=split, jitter=False, seed=SEED, inputs=INPUTS, target="density")
    if not ds.samples:
        raise ValueError(f"no {split} samples with a density in {folder}")
    x, y, far = (t.reshape(len(t), -1).numpy() for t in sample_voxels(ds, per_cell, seed))
    cell = np.concatenate([np.full(min(per_cell, t.size), i) for i, t in enumerate(ds.targets)])
    keys = np.array([t.meta.get("split_key", t.stem) for t in ds.samples])
    return {"x": x, "y": y[:, 0], "far": far[:, 0], "cell": cell, "keys": keys}


def _scale(x: np.ndarray, base: int, eps: float) -> np.ndarray | float:
    """Divisor of a ``relres`` variant's target: |base channel| + eps per voxel (1 without relres)."""
    return np.abs(x[:, base]) + eps if eps else 1.0


def fit(train: dict, base: int, settings: dict, seed: int = SEED):
    """One variant's regressor (random state ``seed``) fitted on ``train``; returns (model, relres)."""
    from pymatgen_elfml.losses import region_weight
    from pymatgen_elfml.train.local import gbm_regressor
    settings = dict(settings)
    hold, eps = settings.pop("holdout", 0.0), settings.pop("relres", 0.0)
    model = gbm_regressor(150, 255, seed, max_depth=12, l2=10.0).set_params(**settings)
    x, y = train["x"], train["y"] - train["x"][:, base]
    w = region_weight(torch.from_numpy(train["far"]), CORE_WEIGHT).numpy()
    if eps:
        scale = _scale(x, base, eps)
        y, w = y / scale, w * scale
    extra = {}
    if hold:
        systems = sorted(set(train["keys"]))
        out = np.random.default_rng(7).choice(systems, size=max(1, round(hold * len(systems))), replace=False)
        held = np.isin(train["keys"][train["cell"]], out)
        extra = {"X_val": x[held], "y_val": y[held], "sample_weight_val": w[held]}
        x, y, w = x[~held], y[~held], w[~held]
        model.set_params(early_stopping=True)
    return model.fit(x, y, sample_weight=w, **extra), eps


def score(model, eps: float, data: dict, base: int, every: int = 1) -> tuple[float, float]:
    """Per-cell NMAE averaged over cells, overall and over the far voxels, of every ``every``-th voxel."""
    x, y, far, cell = (data[k][::every] for k in ("x", "y", "far", "cell"))
    pred = model.predict(x) * _scale(x, base, eps) + x[:, base]
    err, n = np.abs(pred - y), int(cell.max()) + 1
    overall = np.bincount(cell, err, n) / np.bincount(cell, y, n)
    far_part = np.bincount(cell, err * far, n) / np.maximum(np.bincount(cell, y * far, n), 1e-12)
    return float(overall.mean()), float(far_part.mean())


def markdown(rows: list[dict], per_cell: int) -> str:
    lines = [f"Forest regularisation sweep (`benchmarks/forest_sweep.py`, {per_cell} voxels per training cell): "
             "per-cell NMAE on validation voxels", "",
             "| variant | seed | trees used | fit (s) | val NMAE | val NMAE > 1 A | train NMAE |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['seed']} | {r['trees']} | {r['fit_s']:.0f} | {r['val_nmae']:.5f} | "
              f"{r['val_far_nmae']:.5f} | {_cell(r['train_nmae'])} |" for r in rows]
    return "\n".join(lines) + "\n"


class SeedMean:
    """The mean prediction of several fitted regressors (a seed ensemble): ``predict`` as scikit-learn's."""

    def __init__(self, models: list):
        self.models, self.n_iter_ = models, sum(int(m.n_iter_) for m in models)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.mean([m.predict(x) for m in self.models], axis=0)


def _ensemble_row(name: str, rows: list[dict], models: list, val: dict, base: int, threads: int) -> dict:
    """Score the mean of one variant's per-seed ``models`` on validation (``rows``: their result rows)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(threads):
        vn, vf = score(SeedMean(models), 0.0, val, base)
    row = {"variant": name, "seed": "mean of " + " ".join(str(r["seed"]) for r in rows), "settings": VARIANTS[name],
           "trees": sum(r["trees"] for r in rows), "fit_s": sum(r["fit_s"] for r in rows), "val_nmae": vn,
           "val_far_nmae": vf, "train_nmae": None}
    print(row, flush=True)
    return row


def _cell(value: float | None) -> str:
    """A table cell: the number to 5 decimals, or '-' where not measured."""
    return "-" if value is None else f"{value:.5f}"


def _run(name: str, seed: int, train: dict, val: dict, base: int, threads: int, models: list | None = None) -> dict:
    """Fit and score one variant with one seed; its result row (also printed). The fitted model is appended to
    ``models`` when given (``--ensemble``)."""
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency (the train extra)
    start = time.perf_counter()
    with threadpool_limits(threads):
        model, eps = fit(train, base, VARIANTS[name], seed)
        fit_s = time.perf_counter() - start
        if models is not None:
            models.append(model)
        (vn, vf), (tn, _) = score(model, eps, val, base), score(model, eps, train, base, every=10)
    row = {"variant": name, "seed": seed, "settings": VARIANTS[name], "trees": int(model.n_iter_), "fit_s": fit_s,
           "val_nmae": vn, "val_far_nmae": vf, "train_nmae": tn}
    print(row, flush=True)
    return row


def main(argv=None) -> None:
    from common import RESULTS, save

    from pymatgen_elfml.features import base_channel, channel_names
    from pymatgen_elfml.io import write_text_atomic
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of prepared triplets (python -m pymatgen_elfml.data prepare)")
    p.add_argument("--per-cell", type=int, default=1500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[SEED],
                   help="seeds of the training voxels and the forest, one fit per variant and seed (seed-to-seed "
                        "spread: how large a difference between two training runs is noise; validation voxels "
                        "always use seed 0)")
    p.add_argument("--ensemble", action="store_true",
                   help="also score every variant's mean prediction over the seeds (a seed ensemble; not relres)")
    p.add_argument("--tag", default="", help="results go to results/forest_sweep[_TAG].{json,md}")
    args = p.parse_args(argv)
    unknown = set(args.only or ()) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    base = channel_names(INPUTS).index(base_channel(INPUTS))
    names = args.only or list(VARIANTS)
    if args.ensemble and any(VARIANTS[n].get("relres") for n in names):
        p.error("--ensemble averages plain predictions: leave out the relres variants")
    val, rows, models = voxels(args.data, "val", 4000), [], {n: [] for n in names}
    for seed in args.seeds:
        train = voxels(args.data, "train", args.per_cell, seed)
        rows += [_run(n, seed, train, val, base, args.threads, models[n] if args.ensemble else None) for n in names]
    if args.ensemble:
        rows += [_ensemble_row(n, [r for r in rows if r["variant"] == n], models[n], val, base, args.threads)
                 for n in names]
    name = "forest_sweep" + (f"_{args.tag}" if args.tag else "")
    print(save(name, {"per_cell": args.per_cell, "threads": args.threads, "rows": rows}))
    write_text_atomic(RESULTS / f"{name}.md", markdown(rows, args.per_cell))


if __name__ == "__main__":
    main()
