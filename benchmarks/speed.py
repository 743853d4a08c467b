"""Prediction time vs the GPAW reference time for the same structures, on this machine, one thread.

    python benchmarks/speed.py [--model NAME_OR_DIR] [--subset data/v2/v1_ids.json] [--split test]
                               [--before DIR] [--precision fp32 bf16] [--threads 1]

GPAW times are the wall times recorded in data/v2/manifest.jsonl (one single-threaded GPAW process per
structure on this kind of machine); prediction times are measured here with ``--threads`` torch threads
(default 1, as GPAW), best of 3, on the reference's grid. ``--before DIR`` also times a checkout of an
earlier version of the package (e.g. ``git worktree add /tmp/before <commit>``) on the same structures
in a child process with the same thread count, right after this one: the before/after ratio is
measured side by side. Stop other heavy jobs first: the numbers are only meaningful on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from common import save
from gbm_baseline import records, subset_ids

CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import torch
torch.set_num_threads(int(sys.argv[1]))
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.reference.store import read_record
model, precision = sys.argv[2] or None, sys.argv[3]
predictor = ElfPredictor.from_pretrained(model, device="cpu")
kw = {} if precision == "legacy" else {"precision": precision}
out = []
for path in json.loads(sys.stdin.read()):
    rec = read_record(path)
    predictor.predict(rec.structure, grid=rec.elf.shape, **kw)  # warm-up: first-call costs are not per structure
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        predictor.predict(rec.structure, grid=rec.elf.shape, **kw)
        best = min(best, time.perf_counter() - start)
    out.append(best)
print(json.dumps(out))
"""


def time_predictions(paths: list[str], model: str | None, precision: str, threads: int, code: Path | None = None) -> list[float]:
    """Best-of-3 prediction seconds per record file, in a child process (``code``: the package checkout to import)."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run([sys.executable, "-c", CHILD, str(threads), model or "", precision], input=json.dumps(paths),
                          text=True, capture_output=True, env=env, check=True, cwd=code or Path.cwd())
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--model", default=None, help="default: the package's default model")
    parser.add_argument("--split", default="test")
    parser.add_argument("--subset", type=Path, default=Path("data/v2/v1_ids.json"))
    parser.add_argument("--before", type=Path, help="checkout of an earlier version to time side by side")
    parser.add_argument("--precision", nargs="*", default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default="", help="suffix of the results file name (speed<tag>.json)")
    args = parser.parse_args()
    rows = list(records(args.data, args.split, subset_ids(args.subset)))
    paths = [str((args.data / row["file"]).resolve()) for row, _ in rows]
    times = {p: time_predictions(paths, args.model, p, args.threads) for p in args.precision}
    if args.before:
        times["before"] = time_predictions(paths, args.model, "legacy", args.threads, args.before.resolve())
    gpaw = np.array([row["wall_time_s"] for row, _ in rows])
    out = [{"id": row["id"], "grid": row["grid"], "n_atoms": len(rec.structure), "gpaw_s": row["wall_time_s"],
            **{f"predict_{k}_s": v[i] for k, v in times.items()}} for i, (row, rec) in enumerate(rows)]
    summary = {"n": len(rows), "threads": args.threads, "median_gpaw_s": float(np.median(gpaw))}
    for k, v in times.items():
        v = np.array(v)
        summary[k] = {"median_s": float(np.median(v)), "min_s": float(v.min()), "max_s": float(v.max()),
                      "median_ratio_vs_gpaw": float(np.median(gpaw / v)), "min_ratio_vs_gpaw": float((gpaw / v).min())}
        if "before" in times and k != "before":
            summary[k]["median_speedup_vs_before"] = float(np.median(np.array(times["before"]) / v))
    print(json.dumps(summary, indent=1))
    print("wrote", save(f"speed{args.tag}", {"model": args.model or "default", "split": args.split, "subset": str(args.subset),
                                  "before": str(args.before) if args.before else None, "summary": summary, "structures": out}))


if __name__ == "__main__":
    main()
