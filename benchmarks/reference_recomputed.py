"""What recomputing the invalidated reference records changed: old record (from git) vs the new one.

For every row of ``data/v2/invalidated.jsonl`` whose id is back in the manifest, the old record file is
read from git at ``--commit`` (a commit that held the invalidated records; it must match the row's
sha256, else the id is listed as not compared, like records never committed) and compared with the recomputed one on
the same grid: mean and max |dELF| (whole cell and more than 1 A from nuclei), density NMAE
(integral |rho_old - rho_new| / integral |rho_new|) and the GPAW wall-time ratio new / old, per chemical
system and over all.

    python benchmarks/reference_recomputed.py --commit a58f842     # -> results/reference_recomputed.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from common import save
from pymatgen_elfml.metrics import distance_to_nuclei
from pymatgen_elfml.reference.store import read_jsonl, read_record

REPO = Path(__file__).resolve().parents[1]


def _old_record(commit: str, path: Path, sha256: str):
    """The record file as committed at ``commit``; None if it was not committed there as the file of ``sha256``."""
    blob = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{path.relative_to(REPO).as_posix()}"],
                          capture_output=True).stdout
    if hashlib.sha256(blob).hexdigest() != sha256:
        return None
    with tempfile.NamedTemporaryFile(suffix=".npz") as handle:
        handle.write(blob)
        handle.flush()
        return read_record(handle.name)


def compare(old, new) -> dict:
    """ELF and density differences of two records of one structure on one grid."""
    d = np.abs(old.elf.astype(float) - new.elf)
    s = new.structure
    far = distance_to_nuclei(s.lattice.matrix, s.frac_coords, new.elf.shape) > 1.0
    return {"mean_dELF": float(d.mean()), "max_dELF": float(d.max()),
            "mean_dELF_far": float(d[far].mean()) if far.any() else None,
            "nmae_rho": float(np.abs(old.rho - new.rho).sum() / np.abs(new.rho).sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commit", required=True, help="a commit that holds the old records")
    parser.add_argument("--folder", default=str(REPO / "data" / "v2"))
    args = parser.parse_args()
    folder = Path(args.folder).resolve()
    new_rows = {r["id"]: r for r in read_jsonl(folder / "manifest.jsonl")}
    cases, skipped = {}, []
    for row in read_jsonl(folder / "invalidated.jsonl"):
        old = _old_record(args.commit, folder / row["file"], row["sha256"]) if row["id"] in new_rows else None
        if old is None:
            skipped.append(row["id"])
            continue
        new_row = new_rows[row["id"]]
        cases[row["id"]] = {**compare(old, read_record(folder / new_row["file"])), "system": row["split_key"],
                            "time_old_s": row["wall_time_s"], "time_new_s": new_row["wall_time_s"]}
    systems = defaultdict(list)
    for case in cases.values():
        systems[case["system"]].append(case)
    summary = {key: _summary(rows) for key, rows in [("all", list(cases.values())), *sorted(systems.items())]}
    for key, row in summary.items():
        print(key, row)
    print("wrote", save("reference_recomputed", {"commit": args.commit, "summary": summary, "cases": cases,
                                                   "not_compared": skipped}))


def _summary(rows: list[dict]) -> dict:
    far = [r["mean_dELF_far"] for r in rows if r["mean_dELF_far"] is not None]
    return {"n": len(rows), "mean_dELF": float(np.mean([r["mean_dELF"] for r in rows])),
            "max_dELF": max(r["max_dELF"] for r in rows), "mean_dELF_far": float(np.mean(far)) if far else None,
            "nmae_rho": float(np.mean([r["nmae_rho"] for r in rows])),
            "time_new_over_old": sum(r["time_new_s"] for r in rows) / sum(r["time_old_s"] for r in rows)}


if __name__ == "__main__":
    main()
