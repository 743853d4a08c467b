"""Prediction time vs the GPAW reference time for the same structures, on this machine.

    python benchmarks/speed.py [--model NAME_OR_DIR] [--n 20]

GPAW times are the wall times recorded in data/v2/manifest.jsonl (one core per structure,
measured on this kind of machine when the dataset was built); prediction times are measured
here, one structure at a time, with the model on the grid of the reference. Without --model the
default architecture with random weights is timed (the timing does not depend on the weights).
Stop other heavy jobs first: the ratio is only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import save
from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.pretrained import ModelSpec
from pymatgen_elfml.reference.build import read_jsonl
from pymatgen_elfml.reference.store import read_record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    if args.model:
        predictor = ElfPredictor.from_pretrained(args.model)
    else:
        torch.manual_seed(0)
        predictor = ElfPredictor(PeriodicUNet3D(ModelSpec().arch), ModelSpec())
    rows = read_jsonl(args.data / "manifest.jsonl")
    picks = [rows[i] for i in np.linspace(0, len(rows) - 1, min(args.n, len(rows))).astype(int)]
    out = []
    predictor.predict(read_record(args.data / picks[0]["file"]).structure)  # warm-up
    for row in picks:
        rec = read_record(args.data / row["file"])
        start = time.perf_counter()
        predictor.predict(rec.structure, grid=rec.elf.shape)
        t_pred = time.perf_counter() - start
        out.append({"id": row["id"], "grid": row["grid"], "gpaw_s": row["wall_time_s"], "predict_s": t_pred,
                    "ratio": row["wall_time_s"] / t_pred})
        print(f"{row['id']:40s} GPAW {row['wall_time_s']:7.1f} s  predict {t_pred:6.3f} s  ratio {out[-1]['ratio']:7.1f}")
    ratios = np.array([o["ratio"] for o in out])
    summary = {"median_ratio": float(np.median(ratios)), "min_ratio": float(ratios.min()),
               "total_gpaw_s": float(sum(o["gpaw_s"] for o in out)), "total_predict_s": float(sum(o["predict_s"] for o in out)),
               "weights": args.model or "random (default architecture)", "device": str(predictor.device)}
    print(summary)
    print("wrote", save("speed", {"summary": summary, "structures": out}))


if __name__ == "__main__":
    main()
