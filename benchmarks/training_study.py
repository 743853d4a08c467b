"""The elf-metals-v2 training study: one row per training run, scored the same way on validation.

    python benchmarks/training_study.py RUN_DIR [RUN_DIR ...] [--data data/v2] [--split val] [--tag TAG] [--reuse]

For each run folder (written by ``python -m pymatgen_elfml.train``): the settings that differ from
the defaults of ``TrainConfig``, optimizer steps and epochs (from ``metrics.jsonl``; epoch 0 is a
pointwise branch scored alone), the summed epoch times, the wall time from the run folder's first to
last write (data loading and stage-1 fits included), the epoch chosen on validation, and the chosen model's validation metrics from ``accuracy.py``'s
``evaluate`` (default inference, output symmetrized, on the reference grid): MAE over the cell,
MAE more than 1 A from nuclei, and the recall of interstitial ELF maxima (within 0.3 A).
Writes ``results/training_study{TAG}.json`` and a markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from accuracy import evaluate
from gbm_baseline import subset_ids
from common import RESULTS, save
from pymatgen_elfml.io import write_text_atomic
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.train.config import TrainConfig

SKIP = {"data", "out", "device", "resume"}


def settings(config: dict) -> str:
    """The run's settings that differ from ``TrainConfig``'s defaults, as flags (nested or flat config.json)."""
    flat = TrainConfig.from_dict(config).flat()
    default = TrainConfig(data="", out="").flat()
    return " ".join(f"{k}={v}" for k, v in flat.items() if k not in SKIP and v != default[k])


def _steps(run: Path, rows: list[dict]) -> int:
    if all("steps" in r["train"] for r in rows):
        return int(sum(r["train"]["steps"] for r in rows))
    done = re.findall(r"epoch (\d+)/\d+: +100%\|[^|]*\| (\d+)/\d+", (run.parent / f"{run.name}.log").read_text())
    return int(sum(int(t) for t in dict(done).values()))  # runs before steps were logged: each finished bar's total


def summarize(run: Path, data: Path, split: str, subset: set[str] | None = None) -> dict:
    config = json.loads((run / "config.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    best = min(rows, key=lambda r: r["val"]["mae"])
    results = evaluate(data, split, {"model": ElfPredictor.from_pretrained(run / "model")}, mean=0.5, subset=subset)["model"]  # model row only
    wall = (run / "metrics.jsonl").stat().st_mtime - (run / "config.json").stat().st_mtime
    return {"run": run.name, "settings": settings(config), "epochs": sum(r["epoch"] > 0 for r in rows),
            "steps": _steps(run, rows), "minutes": sum(r["seconds"] for r in rows) / 60, "wall_minutes": wall / 60,
            "best_epoch": best["epoch"],
            "val_mae": float(np.mean([r["mae"] for r in results])),
            "val_mae_far": float(np.mean([r["far_mae"] for r in results])),
            "val_recall": float(np.nanmean([r["recall"] for r in results]))}


def table(rows: list[dict]) -> str:
    head = ("| run | settings | epochs | steps | epoch minutes | wall minutes | chosen epoch | val MAE | val MAE > 1 A "
            "| maxima recall |\n|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['run']} | {r['settings']} | {r['epochs']} | {r['steps']} | {r['minutes']:.1f} | {r['wall_minutes']:.1f} "
        f"| {r['best_epoch']} | "
        f"{r['val_mae']:.4f} | {r['val_mae_far']:.4f} | {r['val_recall']:.2f} |\n" for r in rows)


def _scored(run: Path, args) -> dict:
    """The row of ``run``: reused from the results file when that run was scored there after its last
    epoch (``--reuse``), else evaluated now."""
    path = RESULTS / f"training_study{args.tag}.json"
    if args.reuse and path.is_file() and path.stat().st_mtime > (run / "metrics.jsonl").stat().st_mtime:
        saved = json.loads(path.read_text())
        old = {r["run"]: r for r in saved.get("rows", [])}
        if run.name in old and saved.get("split") == args.split:
            return old[run.name]
    return summarize(run, args.data, args.split, subset_ids(args.subset))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--split", default="val")
    parser.add_argument("--tag", default="")
    parser.add_argument("--reuse", action="store_true", help="keep rows of runs already scored in the results file")
    parser.add_argument("--subset", type=Path, help="set file: only its structures (data/v2/v1_ids.json: dataset v1's 413)")
    args = parser.parse_args()
    rows = [_scored(run, args) for run in args.runs]
    print(table(rows))
    save(f"training_study{args.tag}", {"split": args.split, "rows": rows})
    write_text_atomic(RESULTS / f"training_study{args.tag}.md", table(rows))


if __name__ == "__main__":
    main()
