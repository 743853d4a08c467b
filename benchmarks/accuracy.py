"""ELF accuracy on the reference test split: a model against baselines that need no learning.

    python benchmarks/accuracy.py [--model NAME_OR_DIR] [--model-nosym DIR] [--data data/v1] [--split test]

Rows: the model (if given), the same architecture without symmetry pooling (if given), a
constant equal to the training-split mean ELF, and the semilocal (Thomas-Fermi + von
Weizsaecker) ELF of the SAD. Metrics on the whole cell and on points > 1 A from nuclei, for
all test structures and for the compressed ones (V/V0 <= 0.7); interstitial maxima agreement
(positions within 0.3 A). With --vasp, also compares with the real VASP Ag4 ELFCAR.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from common import save
from pymatgen_elfml import io
from pymatgen_elfml.baselines import constant_elf, semilocal_elf
from pymatgen_elfml.data.triplets import sad_sigma_for
from pymatgen_elfml.metrics import distance_to_nuclei, field_errors, interstitial_maxima, match_maxima
from pymatgen_elfml.reference.build import read_jsonl
from pymatgen_elfml.reference.store import read_record
from pymatgen_elfml.sad import sad_density


def _records(folder: Path, split: str):
    splits = json.loads((folder / "splits.json").read_text())
    for row in read_jsonl(folder / "manifest.jsonl"):
        if splits.get(row["id"]) == split:
            yield row, read_record(folder / row["file"], sha256=row["sha256"])


def _train_mean(folder: Path) -> float:
    vals = [float(rec.elf.mean()) for _, rec in _records(folder, "train")]
    return float(np.mean(vals)) if vals else 0.5


def evaluate(folder: Path, split: str, predictors: dict) -> dict:
    """Per-method metric lists over the split's records."""
    mean = _train_mean(folder)
    out: dict = {}
    for row, rec in _records(folder, split):
        cell = io.validate(rec.structure)
        sad = sad_density(cell.lattice, cell.frac, cell.numbers, rec.elf.shape, sad_sigma_for(cell.lattice, rec.elf.shape))
        fields = {"constant (train mean)": constant_elf(rec.elf.shape, mean), "semilocal TF+vW of SAD": semilocal_elf(sad, cell.lattice)}
        for name, pred in predictors.items():
            fields[name] = io.elf_from_elfcar(pred.predict(rec.structure, grid=rec.elf.shape))
        far = distance_to_nuclei(cell.lattice, cell.frac, rec.elf.shape) > 1.0
        ref_max = interstitial_maxima(rec.elf, cell.lattice, cell.frac)
        for name, field in fields.items():
            res = {"id": rec.id, "compressed": row["volume_ratio"] <= 0.7, **field_errors(field, rec.elf),
                   **{f"far_{k}": v for k, v in field_errors(field, rec.elf, far).items()},
                   **match_maxima(interstitial_maxima(field, cell.lattice, cell.frac), ref_max, cell.lattice)}
            out.setdefault(name, []).append(res)
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
    parser.add_argument("--data", default="data/v1", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None)
    parser.add_argument("--model-nosym", default=None)
    args = parser.parse_args()
    predictors = {}
    if args.model or args.model_nosym:
        from pymatgen_elfml.predictor import ElfPredictor

        if args.model:
            predictors["model"] = ElfPredictor.from_pretrained(args.model)
        if args.model_nosym:
            predictors["model without symmetry pooling"] = ElfPredictor.from_pretrained(args.model_nosym)
    table = summarize(evaluate(args.data, args.split, predictors))
    print(f"{'method | subset':45s} {'n':>4s} {'MAE':>7s} {'RMSE':>7s} {'P95':>7s} {'PSNR':>6s} {'hist':>6s} {'MAE>1A':>7s} {'max recall':>10s}")
    for name, m in table.items():
        print(f"{name:45s} {m['n']:4d} {m['mae']:7.4f} {m['rmse']:7.4f} {m['p95']:7.4f} {m['psnr']:6.2f} "
              f"{m['hist_l1']:6.3f} {m['far_mae']:7.4f} {m['recall']:10.2f}")
    print("wrote", save(f"accuracy_{args.split}", {"data": str(args.data), "split": args.split, "table": table}))


if __name__ == "__main__":
    main()
