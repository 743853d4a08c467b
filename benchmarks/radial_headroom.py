"""Where the valence-density error lives (issue 13): how much of it a per-species radial correction could remove.

For every cell of a split, the residual rho_ref - rho of three densities (the free atoms' PAW valence densities
superposed; the model's base, that superposition plus the radial corrections of a ``sad.paw_radial`` table; the
learned model) is fitted by least squares with the mean-free periodic Gaussians of ``sad.paw_radial.WIDTHS``
around every atom, one amplitude per width and species (``species_basis``, ``radial_oracle``). The fit reads the
reference, so it is an oracle, not a method: its NMAE says how far a perfect *prediction* of each species'
radial correction would go, and what is left (``NMAE after``) is the part no radial table can reach (bonds,
anisotropy). ``--systems`` lists the chemical systems (meta ``split_key``) that hold most of the model's error; the
mean over systems (each system's cells averaged first) shows how much a split's few large systems weigh.

    python benchmarks/radial_headroom.py --split val --threads 1     # ~3 min (137 cells); --split test ~4 min
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, save
from density import nmae
from gbm_baseline import records
from pymatgen_elfml import io
from pymatgen_elfml.generator import DensityGenerator
from pymatgen_elfml.io import write_text_atomic
from pymatgen_elfml.sad.paw_atoms import paw_superposition
from pymatgen_elfml.sad.paw_radial import TABLE_FILE_V3, WIDTHS, atom_gaussians, load_table, radial_correction

RIDGE = 1e-6  # times the mean diagonal of the normal matrix: keeps nearly collinear widths finite


def species_basis(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """(n_species * K, n_voxels) the mean-free Gaussians of ``WIDTHS`` summed over each species' atoms (species in
    ascending atomic number, K = len(WIDTHS))."""
    numbers = np.asarray(numbers)
    return np.concatenate([atom_gaussians(lattice, frac, shape, np.flatnonzero(numbers == z)).reshape(len(WIDTHS), -1)
                           for z in np.unique(numbers)])


def radial_oracle(residual: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """What the least-squares fit of the rows of ``basis`` leaves of ``residual`` (any shape, n_voxels values; e/A^3),
    shaped as ``residual``; a ridge of ``RIDGE`` times the mean diagonal keeps the amplitudes finite."""
    r = np.asarray(residual, float).reshape(-1)
    gram = basis @ basis.T
    coef = np.linalg.solve(gram + RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram)), basis @ r)
    return (r - coef @ basis).reshape(np.shape(residual))


def cell_rows(structure, ref: np.ndarray, model: DensityGenerator, table: dict) -> dict:
    """NMAE of each density and of what the oracle leaves of its residual, on ``ref``'s grid (e/A^3)."""
    cell = io.validate(structure)
    paw = paw_superposition(cell.lattice, cell.frac, cell.numbers, ref.shape)
    fields = {"paw": paw, "base": paw + radial_correction(cell.lattice, cell.frac, cell.numbers, ref.shape, table),
              "model": io.density_from_chgcar(model.predict(structure, grid=ref.shape))}
    basis = species_basis(cell.lattice, cell.frac, cell.numbers, ref.shape)
    out = {}
    for name, field in fields.items():
        out[name] = nmae(field, ref)
        out[f"{name}_after"] = nmae(ref - radial_oracle(ref - field, basis), ref)
    return out


def markdown(rows: list[dict], split: str, top: int) -> str:
    labels = {"paw": "free atoms' PAW valence densities superposed", "base": "the model's base (PAW + radial table)",
              "model": "the model"}
    lines = [f"Radial headroom on the {split} split ({len(rows)} cells; `benchmarks/radial_headroom.py`): NMAE (mean over "
             "cells) before and after an oracle fit of one radial profile (7 Gaussians) per species to each cell's residual",
             "", "| density | NMAE | NMAE after the oracle fit | share a radial fit removes | NMAE, mean over systems |",
             "|---|---|---|---|---|"]
    systems: dict[str, list[dict]] = {}
    for r in rows:
        systems.setdefault(r["system"], []).append(r)
    for key, label in labels.items():
        before, after = np.mean([r[key] for r in rows]), np.mean([r[f"{key}_after"] for r in rows])
        by_system = np.mean([np.mean([r[key] for r in sel]) for sel in systems.values()])
        lines.append(f"| {label} | {before:.5f} | {after:.5f} | {1 - after / before:.0%} | {by_system:.5f} |")
    total = sum(r["model"] for r in rows)
    ranked = sorted(systems.items(), key=lambda kv: -sum(r["model"] for r in kv[1]))[:top]
    lines += ["", f"Chemical systems holding most of the model's error (sum of cell NMAEs over the split's {total:.3f}):", "",
              "| system | cells | model NMAE | base NMAE | model after the oracle fit | share of the split's error |",
              "|---|---|---|---|---|---|"]
    for key, sel in ranked:
        s = sum(r["model"] for r in sel)
        lines.append(f"| {key} | {len(sel)} | {s / len(sel):.4f} | {np.mean([r['base'] for r in sel]):.4f} | "
                     f"{np.mean([r['model_after'] for r in sel]):.4f} | {s / total:.1%} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/v2", type=Path)
    p.add_argument("--split", default="val")
    p.add_argument("--model", default=None, help="density model (name or folder; default: the registered default)")
    p.add_argument("--table", default=TABLE_FILE_V3, help="radial table of the model's base")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--systems", type=int, default=10, help="chemical systems listed")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, table = DensityGenerator.from_pretrained(args.model, device="cpu"), load_table(args.table)
    rows = []
    for row, rec in itertools.islice(records(args.data, args.split), args.limit or None):
        rows.append({"id": rec.id, "system": row.get("split_key", rec.id),
                     **cell_rows(rec.structure, np.asarray(rec.rho, float), model, table)})
        print(rows[-1], flush=True)
    name = f"radial_headroom_{args.split}" + (f"_{args.tag}" if args.tag else "")
    print(save(name, {"data": str(args.data), "split": args.split, "model": str(args.model), "table": args.table,
                      "threads": args.threads, "rows": rows}))
    write_text_atomic(RESULTS / f"{name}.md", markdown(rows, args.split, args.systems))


if __name__ == "__main__":
    main()
