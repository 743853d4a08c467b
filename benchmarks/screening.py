"""Does screening on predicted ELFs rank templates as screening on DFT ELFs would?

    python benchmarks/screening.py [--model NAME_OR_DIR] [--data data/v2] [--split test]
                                   [--subset data/v2/structures.json --family template] [--tag _templates]

For every record of the split (within the subset), the screening descriptors (``screening.describe``) are
computed from the GPAW reference ELF, from the model's ELF on the same grid, and from the semilocal
(TF + vW) ELF of the SAD, a baseline that needs no learning. Reported per method against the reference:
Spearman rank correlation (scipy) over the structures of the template score and of the networking value
(3D), the overlap of the top-5 by score, and the distance from each reference interstitial maximum site to
the nearest predicted site of the same structure (Angstrom, periodic). JSON in results/screening<tag>.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from common import save
from gbm_baseline import records, subset_ids
from pymatgen_elfml import io, symmetry
from pymatgen_elfml.baselines import semilocal_elf
from pymatgen_elfml.data.triplets import sad_sigma_for
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.sad import sad_density
from pymatgen_elfml.screening.descriptors import describe


def _sites(maxima, ops) -> np.ndarray:
    """All positions (fractional) of the distinct maxima's orbits."""
    out = [np.mod(np.einsum("nij,j->ni", ops.rotations, m.frac) + ops.translations, 1.0) for m in maxima]
    return np.vstack(out) if out else np.zeros((0, 3))


def site_errors(ref_sites: np.ndarray, sites: np.ndarray, lattice: np.ndarray) -> list[float]:
    """Distance (Angstrom, periodic) from each reference site to the nearest site of the other set (inf if none)."""
    out = []
    for p in ref_sites:
        if not len(sites):
            out.append(float("inf"))
            continue
        d = sites - p
        d -= np.rint(d)
        out.append(float(np.linalg.norm(d @ lattice, axis=1).min()))
    return out


def evaluate(folder: Path, split: str, subset, predictor) -> dict:
    """Per structure and method: score, networking values, maxima; reference first."""
    rows = []
    for row, rec in records(folder, split, subset):
        cell = io.validate(rec.structure)
        ops = symmetry.seitz_ops(cell)
        sad = sad_density(cell.lattice, cell.frac, cell.numbers, rec.elf.shape, sad_sigma_for(cell.lattice, rec.elf.shape))
        fields = {"reference (GPAW)": rec.elf, "semilocal TF+vW of SAD": semilocal_elf(sad, cell.lattice),
                  "model": io.elf_from_elfcar(predictor.predict(rec.structure, grid=rec.elf.shape))}
        out = {"id": rec.id, "volume_ratio": row["volume_ratio"]}
        sites = {}
        for name, elf in fields.items():
            desc, maxima = describe(elf, cell.lattice, cell.frac, cell.numbers, ops.rotations, ops.translations)
            out[name] = {"score": desc.score, "networking_3d": desc.networking_3d, "max_elf": desc.max_elf}
            sites[name] = _sites(maxima, ops)
        for name in fields:
            errs = site_errors(sites["reference (GPAW)"], sites[name], cell.lattice)
            out[name]["site_error_A"] = float(np.mean(errs)) if errs else None
        rows.append(out)
        print(rec.id, {k: round(v["score"], 3) for k, v in out.items() if isinstance(v, dict)}, flush=True)
    return {"structures": rows}


def summarize(rows: list[dict], methods=("model", "semilocal TF+vW of SAD")) -> dict:
    ref = "reference (GPAW)"
    out = {}
    for name in methods:
        res = {"n": len(rows)}
        for key in ("score", "networking_3d"):
            rho = spearmanr([r[ref][key] for r in rows], [r[name][key] for r in rows]).statistic
            res[f"spearman_{key}"] = float(rho)
        top = lambda who: {r["id"] for r in sorted(rows, key=lambda r: -r[who]["score"])[:5]}  # noqa: E731
        res["top5_overlap"] = len(top(ref) & top(name))
        errs = [r[name]["site_error_A"] for r in rows if r[name]["site_error_A"] is not None]
        finite = [e for e in errs if np.isfinite(e)]
        res["site_error_mean_A"] = float(np.mean(finite)) if finite else None
        res["structures_without_a_site"] = len(errs) - len(finite)
        out[name] = res
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/v2", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None)
    parser.add_argument("--subset", type=Path)
    parser.add_argument("--family")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    predictor = ElfPredictor.from_pretrained(args.model)
    result = evaluate(args.data, args.split, subset_ids(args.subset, args.family), predictor)
    summary = summarize(result["structures"])
    print(summary)
    print("wrote", save(f"screening{args.tag}", {"model": args.model or "default", "subset": str(args.subset),
                                                  "family": args.family, "split": args.split, "summary": summary, **result}))


if __name__ == "__main__":
    main()
