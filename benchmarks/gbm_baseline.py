"""The gradient-boosting baseline of issue 9: per-voxel regression of the ELF on SAD features.

scikit-learn's ``HistGradientBoostingRegressor`` (absolute-error loss, 300 iterations, 63 leaves)
on the channels of ``features.sad_features`` (log SAD, log(1 + s), asinh(q), the semilocal ELF,
log SAD smoothed by Gaussians of 0.4/0.8/1.6 A, the distance to the nearest nucleus), fitted on
``per_structure`` random voxels of every training structure. Each voxel is predicted from its
own features only: no learning of context beyond what the smoothed channels carry.

    python benchmarks/gbm_baseline.py [--data data/v2] [--split val]   # fit, then score a split

``accuracy.py --gbm`` adds it as a row of the accuracy table (fitted in the same run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pymatgen_elfml import io
from pymatgen_elfml.data.triplets import sad_sigma_for
from pymatgen_elfml.features import sad_features
from pymatgen_elfml.reference.build import read_jsonl
from pymatgen_elfml.reference.store import read_record
from pymatgen_elfml.sad import sad_density
from pymatgen_elfml.train.local import gbm_regressor


def subset_ids(path: Path | None, family: str | None = None) -> set[str] | None:
    """Ids of a JSON list of ids (data/v2/v1_ids.json: the 413 structures of dataset v1, on which the
    shipped models were trained and scored) or of a structure set file (data/v2/structures.json with
    ``family="template"``: the templates), or None for all."""
    if path is None:
        return None
    items = json.loads(Path(path).read_text())
    if all(isinstance(c, str) for c in items):
        if family is not None:
            raise ValueError(f"--family needs a structure set file (with families), not the id list {path}")
        return set(items)
    return {c["id"] for c in items if family is None or c["family"] == family}


def records(folder: Path, split: str, subset: set[str] | None = None):
    """(manifest row, Record) of every structure of ``split`` in a reference dataset folder (within ``subset``)."""
    splits = json.loads((folder / "splits.json").read_text())
    for row in read_jsonl(folder / "manifest.jsonl"):
        if splits.get(row["id"]) == split and (subset is None or row["id"] in subset):
            yield row, read_record(folder / row["file"], sha256=row["sha256"])


def features_on_grid(structure, shape: tuple[int, int, int]) -> np.ndarray:
    """(n_voxels, C) SAD features of ``structure`` on the grid ``shape`` (the reference's smoothing)."""
    cell = io.validate(structure)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, shape, sad_sigma_for(cell.lattice, shape))
    return sad_features(sad, cell.lattice, cell.frac).reshape(-1, int(np.prod(shape))).T


class GbmBaseline:
    """Fitted regressor with the predictor interface of ``accuracy.py`` (``predict(structure, grid)``)."""

    def __init__(self, folder: Path, per_structure: int = 4000, seed: int = 0, subset: set[str] | None = None):
        rng = np.random.default_rng(seed)
        xs, ys = [], []
        for _, rec in records(folder, "train", subset):
            x = features_on_grid(rec.structure, rec.elf.shape)
            pick = rng.choice(len(x), size=min(per_structure, len(x)), replace=False)
            xs.append(x[pick])
            ys.append(rec.elf.reshape(-1)[pick])
        start = time.perf_counter()
        self.model = gbm_regressor(seed=seed)
        self.model.fit(np.concatenate(xs), np.concatenate(ys))
        self.fit_seconds = time.perf_counter() - start
        self.n_samples = int(sum(len(y) for y in ys))

    def predict(self, structure, grid):
        """ELF on ``grid`` as a pymatgen ``Elfcar``."""
        shape = tuple(int(n) for n in grid)
        elf = np.clip(self.model.predict(features_on_grid(structure, shape)), 0.0, 1.0).reshape(shape)
        return io.to_elfcar(io.to_structure(structure), elf)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--split", default="val")
    parser.add_argument("--subset", type=Path, help="only the structures of this set file (data/v2/v1_ids.json: dataset v1's 413)")
    parser.add_argument("--family", help="with --subset: only this family of it (template: the templates subset)")
    args = parser.parse_args()
    subset = subset_ids(args.subset)
    gbm = GbmBaseline(args.data, subset=subset)
    errs = []
    for _, rec in records(args.data, args.split, subset_ids(args.subset, args.family) if args.family else subset):
        pred = io.elf_from_elfcar(gbm.predict(rec.structure, rec.elf.shape))
        errs.append(float(np.abs(pred - rec.elf).mean()))
    print(f"fit on {gbm.n_samples} voxels in {gbm.fit_seconds:.1f} s; {args.split} MAE {np.mean(errs):.4f} ({len(errs)} structures)")


if __name__ == "__main__":
    main()
