"""ELF accuracy on the reference test split: a model against baselines that need no learning.

    python benchmarks/accuracy.py [--model NAME_OR_DIR] [--mode auto|whole|patches] [--nosym]
                                  [--model-nosym DIR] [--compare NAME_OR_DIR ...] [--gbm]
                                  [--data data/v2] [--subset SET.json [--family template]] [--split test]
                                  [--vasp ELFCAR ...]

Rows: the model (if given); with --nosym the same weights run without symmetry pooling (no
SymmAvg3D inside the network, no symmetrization of the output); a separately trained model
(--model-nosym); other models (--compare, e.g. the previous release); with --gbm the
gradient-boosting baseline of ``gbm_baseline.py``, fitted on the training split in the same run;
the best constant for MAE, each cell's median ELF (an oracle: it reads the reference); a constant
equal to the training-split mean ELF; the semilocal (Thomas-Fermi + von Weizsaecker) ELF of the SAD. Metrics on the whole cell and on points > 1 A from nuclei, for
all structures of the split and for the compressed ones (V/V0 <= 0.7); interstitial maxima
agreement (positions within 0.3 A). With --vasp, the same rows against real VASP ELFCARs, each
on its own grid (the reference is the mean of the ELFCAR's spin blocks).
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import replace
from pathlib import Path

import numpy as np

from common import save
from gbm_baseline import GbmBaseline, records, subset_ids
from pymatgen_elfml import io
from pymatgen_elfml.baselines import constant_elf, semilocal_elf
from pymatgen_elfml.data.triplets import sad_sigma_for
from pymatgen_elfml.metrics import distance_to_nuclei, field_errors, interstitial_maxima, match_maxima
from pymatgen_elfml.sad import sad_density


def _train_mean(folder: Path, subset: set[str] | None) -> float:
    vals = [float(rec.elf.mean()) for _, rec in records(folder, "train", subset)]
    return float(np.mean(vals)) if vals else 0.5


class NoPooling:
    """The same weights without symmetry pooling: no SymmAvg3D, output not symmetrized."""

    def __init__(self, predictor):
        self.inner = copy.copy(predictor)
        self.inner.net = copy.deepcopy(predictor.net)
        self.inner.net.config = replace(predictor.net.config, symm_input=False, symm_stages=False)

    def predict(self, structure, grid=None):
        return self.inner.predict(structure, grid=grid, symmetrize=False)


def compare(structure, ref: np.ndarray, predictors: dict, mean: float, compressed: bool = False) -> dict:
    """Metrics of every method against the reference ELF ``ref`` (n0, n1, n2) on its own grid."""
    cell = io.validate(structure)
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, ref.shape, sad_sigma_for(cell.lattice, ref.shape))
    fields = {"best constant (cell median)": constant_elf(ref.shape, float(np.median(ref))),
              "constant (train mean)": constant_elf(ref.shape, mean), "semilocal TF+vW of SAD": semilocal_elf(sad, cell.lattice)}
    for name, pred in predictors.items():
        fields[name] = io.elf_from_elfcar(pred.predict(structure, grid=ref.shape))
    far = distance_to_nuclei(cell.lattice, cell.frac, ref.shape) > 1.0
    ref_max = interstitial_maxima(ref, cell.lattice, cell.frac)
    return {name: {"compressed": compressed, **field_errors(field, ref),
                   **{f"far_{k}": v for k, v in field_errors(field, ref, far).items()},
                   **match_maxima(interstitial_maxima(field, cell.lattice, cell.frac), ref_max, cell.lattice)}
            for name, field in fields.items()}


def evaluate(folder: Path, split: str, predictors: dict, mean: float, subset: set[str] | None = None) -> dict:
    """Per-method metric lists over the split's records (within ``subset``); ``mean``: the train-mean constant."""
    out: dict = {}
    for row, rec in records(folder, split, subset):
        for name, res in compare(rec.structure, rec.elf, predictors, mean, row["volume_ratio"] <= 0.7).items():
            out.setdefault(name, []).append({"id": rec.id, **res})
    return out


def vasp(paths: list[Path], predictors: dict, mean: float) -> dict:
    """Each real VASP ELFCAR against the same methods, on the ELFCAR's grid."""
    from pymatgen.io.vasp.outputs import Elfcar

    out = {}
    for path in paths:
        elfcar = Elfcar.from_file(str(path))
        out[path.name] = {"formula": elfcar.structure.composition.reduced_formula, "grid": list(elfcar.dim),
                          "methods": compare(elfcar.structure, io.elf_from_elfcar(elfcar), predictors, mean)}
    return out


def summarize(results: dict) -> dict:
    table = {}
    for name, rows in results.items():
        for subset, keep in (("all", lambda r: True), ("compressed", lambda r: r["compressed"])):
            sel = [r for r in rows if keep(r)]
            if sel:
                keys = ["mae", "rmse", "p95", "psnr", "hist_l1", "far_mae", "recall", "value_mae"]
                table[f"{name} | {subset}"] = {"n": len(sel), **{k: float(np.nanmean([r[k] for r in sel])) for k in keys}}
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--split", default="test", help="'none': only the --vasp files")
    parser.add_argument("--model", default=None)
    parser.add_argument("--mode", default="auto", choices=["auto", "whole", "patches"])
    parser.add_argument("--nosym", action="store_true", help="also run --model's weights without symmetry pooling")
    parser.add_argument("--model-nosym", default=None, help="a model trained without symmetry pooling")
    parser.add_argument("--compare", nargs="*", default=[], help="other models (names or folders) as extra rows")
    parser.add_argument("--gbm", action="store_true", help="fit the gradient-boosting baseline and add its row")
    parser.add_argument("--vasp", nargs="*", type=Path, default=[], help="real VASP ELFCARs to compare with")
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    parser.add_argument("--subset", type=Path, help="only the structures of this set file (data/v2/v1_ids.json: dataset v1's 413)")
    parser.add_argument("--family", help="with --subset: only this family of it (template: the templates test subset)")
    args = parser.parse_args()
    subset = subset_ids(args.subset)  # training (GBM fit, train mean) and evaluation
    if args.family and not args.subset:
        parser.error("--family needs --subset (a structure set file, e.g. data/v2/structures.json)")
    evaluated = subset_ids(args.subset, args.family) if args.family else subset  # evaluation only
    predictors, extra = {}, {}
    if args.model or args.model_nosym or args.compare:
        from pymatgen_elfml.predictor import ElfPredictor

        for other in args.compare:
            predictors[f"model {other}"] = ElfPredictor.from_pretrained(other, mode=args.mode)
        if args.model:
            predictors["model"] = ElfPredictor.from_pretrained(args.model, mode=args.mode)
            if args.nosym:
                predictors["model, no symmetry pooling"] = NoPooling(predictors["model"])
        if args.model_nosym:
            predictors["model trained without pooling"] = ElfPredictor.from_pretrained(args.model_nosym, mode=args.mode)
    if args.gbm:
        gbm = GbmBaseline(args.data, subset=subset)
        predictors["gradient boosting (SAD features)"] = gbm
        extra["gbm"] = {"fit_seconds": gbm.fit_seconds, "n_samples": gbm.n_samples}
    payload = {"data": str(args.data), "subset": str(args.subset) if args.subset else None, "family": args.family, "split": args.split,
               "model": args.model, "mode": args.mode, **extra}
    if args.vasp:
        payload["vasp"] = vasp(args.vasp, predictors, _train_mean(args.data, subset))
        for name, res in payload["vasp"].items():
            for method, m in res["methods"].items():
                print(f"{name} {method:35s} MAE {m['mae']:.4f} RMSE {m['rmse']:.4f} MAE>1A {m['far_mae']:.4f} "
                      f"maxima recall {m['recall']:.2f} (n_ref {m['n_ref']})")
    table = {} if args.split == "none" else summarize(
        evaluate(args.data, args.split, predictors, _train_mean(args.data, subset), evaluated))
    print(f"{'method | subset':45s} {'n':>4s} {'MAE':>7s} {'RMSE':>7s} {'P95':>7s} {'PSNR':>6s} {'hist':>6s} {'MAE>1A':>7s} {'max recall':>10s}")
    for name, m in table.items():
        print(f"{name:45s} {m['n']:4d} {m['mae']:7.4f} {m['rmse']:7.4f} {m['p95']:7.4f} {m['psnr']:6.2f} "
              f"{m['hist_l1']:6.3f} {m['far_mae']:7.4f} {m['recall']:10.2f}")
    print("wrote", save(f"accuracy_{args.split}{args.tag}", {**payload, "table": table}))


if __name__ == "__main__":
    main()
