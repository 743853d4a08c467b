"""Valence-density accuracy on the reference test split: a learned model against baselines without learning.

    python benchmarks/density.py [--model NAME_OR_DIR] [--compare NAME_OR_DIR ...] [--data data/v2]
                                 [--split test] [--limit N] [--threads 1] [--tag TAG]

NMAE = sum |rho - rho_ref| / sum rho_ref over the reference grid (the metric of the ChargE3Net / DeepDFT
papers), on the whole cell and on the points more than 1 A from every nucleus (sums over those points
only), for all structures of the split and for the compressed ones (V/V0 <= 0.7). Rows: the model(s);
a uniform density N_valence / V; the SAD (all-electron free atoms) rescaled to the valence count; the
superposition of the per-element valence profiles fitted to the training split (``sad.valence_profiles``,
the base of density-metals-v1; linear, no network), rescaled to the valence count; the free atoms' PAW
valence densities superposed as GPAW starts its SCF (``sad.paw_atoms``: no fitting at all); that superposition
plus the radial corrections of ``sad.paw_radial`` (a linear table fitted to the training split: the base of
density-metals-v8, not a baseline without learning; the row "paw_radial_v2" uses the table with periodic-group
blocks, "paw_radial_v3" the table refitted on the training split with its host-rich cells, "paw_radial_v4" v3's
layout with the second-shell and contrast descriptors ``atom_extras``); the best
constant for an absolute error, each cell's median density (an oracle: it reads the reference).
The reference is GPAW's pseudo valence density with compensation charges (negative near the nuclei of
some setups). Also the charge error |integral rho - N_valence| of each row and, for the models, the
prediction time per structure (best of 1, on ``--threads`` torch threads, grid of the reference) against
GPAW's recorded wall time for the same structure. ``--limit N``: the split's first N structures (manifest
order) only, e.g. to compare the train, val and test splits (the gap between seen and unseen systems).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import torch

from common import save
from gbm_baseline import records
from pymatgen_elfml import io
from pymatgen_elfml.data.triplets import sad_sigma_for
from pymatgen_elfml.generator import DensityGenerator
from pymatgen_elfml.metrics import distance_to_nuclei
from pymatgen_elfml.sad import sad_density
from pymatgen_elfml.sad.paw_atoms import paw_superposition
from pymatgen_elfml.sad.paw_radial import (TABLE_FILE, TABLE_FILE_V2, TABLE_FILE_V3, TABLE_FILE_V4, load_table,
                                           radial_correction)
from pymatgen_elfml.sad.valence_profiles import valence_superposition
from pymatgen_elfml.valence import valence_electrons


RADIAL_ROWS = {TABLE_FILE: "PAW + radial corrections (paw_radial_v1, linear)",
               TABLE_FILE_V2: "PAW + radial corrections (paw_radial_v2, linear, group blocks)",
               TABLE_FILE_V3: "PAW + radial corrections (paw_radial_v3, linear, host-rich data)",
               TABLE_FILE_V4: "PAW + radial corrections (paw_radial_v4, linear, second-shell descriptors)"}  # table: its row


def nmae(pred: np.ndarray, ref: np.ndarray, where: np.ndarray | None = None) -> float:
    """sum |pred - ref| / sum ref over the grid points (``where``: a boolean mask of the points to use)."""
    if where is not None:
        pred, ref = pred[where], ref[where]
    return float(np.abs(pred - ref).sum() / ref.sum())


def baselines(structure, cell, n_val: int, ref: np.ndarray) -> dict[str, np.ndarray]:
    """The no-learning densities (e/A^3) on the reference grid ``ref.shape`` (``cell``: ``io.validate(structure)``,
    ``n_val``: its valence electron count)."""
    sad = sad_density(cell.lattice, cell.frac, cell.numbers, ref.shape, sad_sigma_for(cell.lattice, ref.shape))
    profiles = valence_superposition(cell.lattice, cell.frac, cell.numbers, ref.shape)
    paw = paw_superposition(cell.lattice, cell.frac, cell.numbers, ref.shape)
    return {"uniform N_valence / V": np.full(ref.shape, n_val / structure.volume),
            "SAD rescaled to the valence count": sad * (n_val / (sad.mean() * structure.volume)),
            "fitted valence profiles, superposed": profiles * (n_val / (profiles.mean() * structure.volume)),
            "free atoms' PAW valence densities (GPAW's start)": paw,
            **{label: paw + radial_correction(cell.lattice, cell.frac, cell.numbers, ref.shape, load_table(name))
               for name, label in RADIAL_ROWS.items()},
            "best constant (cell median)": np.full(ref.shape, float(np.median(ref)))}


def _label(model: str) -> str:
    """A compared model's row label: its name, or a run's folder as "run/model" (every run's folder is "model")."""
    path = Path(model)
    return "/".join(path.parts[-2:]) if path.name == "model" else path.name


def compare(structure, ref: np.ndarray, models: dict[str, DensityGenerator], compressed: bool) -> dict:
    """Metrics of every method against the reference density ``ref`` (e/A^3) on its own grid."""
    cell, n_val = io.validate(structure), valence_electrons(site.specie.symbol for site in structure)
    fields, seconds = baselines(structure, cell, n_val, ref), {}
    for name, gen in models.items():
        start = time.perf_counter()
        fields[name] = io.density_from_chgcar(gen.predict(structure, grid=ref.shape))
        seconds[name] = time.perf_counter() - start
    far = distance_to_nuclei(cell.lattice, cell.frac, ref.shape) > 1.0
    return {name: {"compressed": compressed, "nmae": nmae(f, ref), "far_nmae": nmae(f, ref, far),
                   "charge_error": abs(float(f.mean()) * structure.volume - n_val), "seconds": seconds.get(name)}
            for name, f in fields.items()}


def summarize(results: dict) -> dict:
    table = {}
    for name, rows in results.items():
        for subset, keep in (("all", lambda r: True), ("compressed", lambda r: r["compressed"])):
            sel = [r for r in rows if keep(r)]
            if not sel:
                continue
            row = {"n": len(sel), **{k: float(np.mean([r[k] for r in sel])) for k in ("nmae", "far_nmae", "charge_error")}}
            if sel[0]["seconds"] is not None:
                row["median_s"] = float(np.median([r["seconds"] for r in sel]))
                row["median_ratio_vs_gpaw"] = float(np.median([r["gpaw_s"] / r["seconds"] for r in sel]))
            table[f"{name} | {subset}"] = row
    return table


def markdown(table: dict) -> str:
    lines = ["| method | subset | n | NMAE | NMAE > 1 A | charge error (e) | median s | GPAW / prediction |",
             "|---|---|---|---|---|---|---|---|"]
    for key, r in table.items():
        method, subset = key.split(" | ")
        speed = f"{r['median_s']:.2f} | {r['median_ratio_vs_gpaw']:.0f}x" if "median_s" in r else "- | -"
        lines.append(f"| {method} | {subset} | {r['n']} | {r['nmae']:.3f} | {r['far_nmae']:.3f} | {r['charge_error']:.2g} | {speed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None, help="the model of the 'model' row (default: the registered default)")
    parser.add_argument("--compare", nargs="*", default=[], help="other density models (names or folders) as extra rows")
    parser.add_argument("--limit", type=int, default=0, help="only the split's first N structures (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {"model": DensityGenerator.from_pretrained(args.model, device="cpu")}
    models.update({f"model {_label(m)}": DensityGenerator.from_pretrained(m, device="cpu") for m in args.compare})
    results: dict = {}
    for row, rec in itertools.islice(records(args.data, args.split), args.limit or None):
        for name, res in compare(rec.structure, np.asarray(rec.rho, dtype=np.float64), models, row["volume_ratio"] <= 0.7).items():
            results.setdefault(name, []).append({"id": rec.id, "gpaw_s": row["wall_time_s"], **res})
    table = summarize(results)
    print(markdown(table))
    path = save(f"density_{args.split}{'_' + args.tag if args.tag else ''}",
                {"data": str(args.data), "split": args.split, "limit": args.limit, "model": str(args.model),
                 "threads": args.threads, "table": table, "per_structure": results})
    Path(path).with_suffix(".md").write_text(markdown(table) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
