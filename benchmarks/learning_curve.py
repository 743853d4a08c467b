"""Learning curve: validation MAE against the fraction of the training split's chemical systems.

    python benchmarks/learning_curve.py RUN_DIR [RUN_DIR ...] [--data data/v2] [--tag TAG]

Each run folder is one training run at one ``--train-fraction`` (same settings and budget
otherwise). Scores the chosen model of each run on the validation split as
``training_study.py`` does, writes ``results/learning_curve{TAG}.json``, a PNG of MAE (all and
> 1 A from nuclei) against the number of training structures, and a markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import RESULTS, save
from pymatgen_elfml.data.dataset import PatchDataset, PatchGeometry
from pymatgen_elfml.io import atomic_path, write_text_atomic
from gbm_baseline import subset_ids
from training_study import summarize


def n_structures(config: dict) -> int:
    """Training structures a run saw (its seeded subset of chemical systems)."""
    ds = PatchDataset(config["data"], PatchGeometry(whole=True), split="train", seed=config["seed"],
                      fraction=config["train_fraction"])
    return len(ds.samples)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n_train"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    ax.plot(n, [r["val_mae"] for r in rows], "o-", label="whole cell")
    ax.plot(n, [r["val_mae_far"] for r in rows], "s--", label="> 1 A from nuclei")
    for r in rows:
        ax.annotate(f"{r['fraction']:.0%}", (r["n_train"], r["val_mae"]), textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set_xlabel("training structures (fraction of the chemical systems)")
    ax.set_ylabel("validation ELF MAE")
    ax.set_title("elf-metals-v2 setting: learning curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--subset", type=Path, help="set file: only its structures (data/v2/v1_ids.json: dataset v1's 413)")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        config = json.loads((run / "config.json").read_text())
        rows.append({**summarize(run, args.data, "val", subset_ids(args.subset)), "fraction": config["train_fraction"],
                     "n_train": n_structures(config)})
    rows.sort(key=lambda r: r["n_train"])
    plot(rows, RESULTS / f"learning_curve{args.tag}.png")
    md = "| fraction of systems | training structures | steps | minutes | val MAE | val MAE > 1 A |\n|---|---|---|---|---|---|\n"
    md += "".join(f"| {r['fraction']:.0%} | {r['n_train']} | {r['steps']} | {r['minutes']:.1f} | {r['val_mae']:.4f} | "
                  f"{r['val_mae_far']:.4f} |\n" for r in rows)
    print(md)
    write_text_atomic(RESULTS / f"learning_curve{args.tag}.md", md)
    save(f"learning_curve{args.tag}", {"rows": rows})


if __name__ == "__main__":
    main()
