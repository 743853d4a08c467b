"""Patch-inference seams: patch vs whole-cell prediction of the same model on cells that fit both ways.

Whole-cell inference is exact on the torus; patch inference cuts cores of ``patch`` voxels with
``halo`` voxels of context, and a depth-3 U-Net of 3x3x3 convolutions sees about +-74 voxels, so
context beyond the halo is missing at every core's edge. For each (patch, halo) this reports the
ELF difference to the whole-cell prediction (max and mean over the grid, and the mean over voxels
within 2 voxels of a core boundary) and the wall time, on the smallest test-split cells of data/v2
(v1's structures). Same thread count for every row.

    python benchmarks/patch_seams.py [--n 4] [--threads 1]
    python benchmarks/patch_seams.py --n 3 --supercell 2 --tag _supercell   # bigger cells, seams inside them
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from common import save
from pymatgen_elfml.io import elf_from_elfcar
from pymatgen_elfml.predictor import ElfPredictor, OutOfDomainWarning
from pymatgen_elfml.reference.store import read_jsonl, read_record

SETTINGS = [(32, 8), (32, 16), (32, 24), (16, 8), (16, 16)]  # (patch, halo): patch + 2 halo a multiple of 8


def _near_boundary(shape: tuple[int, int, int], patch: int) -> np.ndarray:
    """Voxels within 2 of a patch-core boundary (cores start at multiples of ``patch``)."""
    masks = [np.minimum(np.arange(n) % patch, (-np.arange(n)) % patch) < 2 for n in shape]
    return masks[0][:, None, None] | masks[1][None, :, None] | masks[2][None, None, :]


def _cells(folder: Path, n: int) -> list:
    splits = json.loads((folder / "splits.json").read_text())
    v1 = set(json.loads((folder / "v1_ids.json").read_text()))
    rows = [r for r in read_jsonl(folder / "manifest.jsonl") if r["id"] in v1 and splits.get(r["id"]) == "test"]
    rows = [r for r in rows if max(r["grid"]) >= 40]  # larger than one 32-voxel core, so there are seams
    rows.sort(key=lambda r: (int(np.prod(r["grid"])), r["id"]))
    return [read_record(folder / r["file"], sha256=r["sha256"]) for r in rows[:n]]


def _predict(predictor: ElfPredictor, rec, k: int) -> tuple[np.ndarray, float]:
    """Prediction on the record's grid, or on a k x k x k supercell of it (grid k times finer per cell)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        elf = elf_from_elfcar(predictor.predict(rec.structure * (k, k, k), grid=tuple(k * n for n in rec.elf.shape)))
    return elf, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--supercell", type=int, default=1, help="predict k x k x k supercells of the cells")
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = ElfPredictor.from_pretrained(args.model, device="cpu", mode="whole", progress=False)
    rows = {}
    for rec in _cells(args.data, args.n):
        whole, t_whole = _predict(base, rec, args.supercell)
        out = {"grid": list(whole.shape), "whole_s": t_whole, "settings": {}}
        for patch, halo in SETTINGS:
            predictor = ElfPredictor(base.net, base.spec, "cpu", replace(base.settings, mode="patches", patch_size=patch, halo=halo))
            elf, seconds = _predict(predictor, rec, args.supercell)
            d = np.abs(elf - whole)
            near = _near_boundary(elf.shape, patch)
            out["settings"][f"{patch}+{halo}"] = {"max": float(d.max()), "mean": float(d.mean()),
                                                  "mean_near_seams": float(d[near].mean()), "seconds": seconds}
        rows[rec.id] = out
        print(rec.id, out["grid"], {k: round(v["max"], 4) for k, v in out["settings"].items()}, flush=True)
    summary = {s: {k: float(np.max([r["settings"][s][k] for r in rows.values()]) if k == "max" else
                   np.mean([r["settings"][s][k] for r in rows.values()])) for k in ("max", "mean", "mean_near_seams", "seconds")}
               for s in (f"{p}+{h}" for p, h in SETTINGS)}
    summary["whole"] = {"seconds": float(np.mean([r["whole_s"] for r in rows.values()]))}
    print(json.dumps(summary, indent=1))
    print("wrote", save(f"patch_seams{args.tag}", {"model": args.model or "default", "threads": args.threads,
                                                   "supercell": args.supercell, "cells": rows, "summary": summary}))


if __name__ == "__main__":
    main()
