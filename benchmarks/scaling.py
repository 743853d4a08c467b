"""Prediction time vs GPAW time as the cell grows: 1 to 64 atoms, side by side, one thread each.

    python benchmarks/scaling.py [--gpaw-max-atoms 16] [--gpaw-timeout 1800] [--model NAME_OR_DIR]

Two series of fcc Al cells (3 valence electrons: the cheapest metal of the data for GPAW):
"supercell": the primitive cell and its supercells (1, 2, 4, ... 64 atoms), which the predictor reduces
to one primitive cell; "rattled": the same cells with every atom displaced by up to 0.05 A (P1, no
symmetry, so the network runs on the whole cell). GPAW runs at the reference data's settings
(``ReferenceSettings()``: PW 300 eV, k-spacing 0.3/A, 0.10 A grid) in a child process with one
OpenMP/BLAS thread; the prediction runs in this process with ``torch.set_num_threads(1)`` (best of 3,
fp32 and bf16). GPAW runs only up to ``--gpaw-max-atoms`` (and is killed after ``--gpaw-timeout``);
beyond, its time is extrapolated with the power law fitted to the series' measured cells of >= 4
atoms and marked "extrapolated". Results accumulate in results/scaling.jsonl (a rerun skips what is
there), then results/scaling.json, scaling.png and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from common import RESULTS, machine, save, timed
from pymatgen_elfml.io import write_text_atomic
from pymatgen_elfml.predictor import ElfPredictor

SIZES = (1, 2, 4, 8, 16, 32, 64)
REPEATS = {1: (1, 1, 1), 2: (2, 1, 1), 4: (1, 1, 1), 8: (2, 1, 1), 16: (2, 2, 1), 32: (2, 2, 2), 64: (4, 2, 2)}
GPAW_CHILD = r"""
import json, sys
from pymatgen.core import Structure
from pymatgen_elfml.reference.engine import compute_reference
_, _, meta = compute_reference(Structure.from_dict(json.loads(sys.stdin.read())))
print(json.dumps({"wall_time_s": meta["wall_time_s"], "grid": meta["grid"], "kpts": meta["kpts"]}))
"""


def cell(n_atoms: int, rattled: bool) -> Structure:
    """fcc Al (a = 4.04 A) with ``n_atoms`` atoms: primitive (1, 2) or conventional (4+) cell repeated."""
    conv = Structure(Lattice.cubic(4.04), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    base = conv.get_primitive_structure() if n_atoms < 4 else conv
    s = base * REPEATS[n_atoms]
    if rattled and n_atoms > 1:
        rng = np.random.default_rng(n_atoms)
        for i in range(len(s)):
            s.translate_sites([i], rng.uniform(-0.05, 0.05, 3) / np.sqrt(3), frac_coords=False)
    return s


def gpaw_time(structure: Structure, timeout: float) -> dict:
    """Wall time of one single-threaded GPAW reference calculation in a child process."""
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", GPAW_CHILD], input=json.dumps(structure.as_dict()), text=True,
                              capture_output=True, timeout=timeout, env={**os.environ, **env}, check=True)
    except subprocess.TimeoutExpired:
        return {"gpaw_s": None, "gpaw_note": f"killed after {timeout:.0f} s"}
    except subprocess.CalledProcessError as exc:
        return {"gpaw_s": None, "gpaw_note": f"failed: {exc.stderr.strip().splitlines()[-1:]}"}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {"gpaw_s": out["wall_time_s"], "gpaw_grid": out["grid"], "kpts": out["kpts"]}


def predict_times(predictor: ElfPredictor, structure: Structure) -> dict:
    """Best-of-3 prediction wall time (fp32 and bf16) and the output grid."""
    predictor.predict(structure)  # warm-up
    t32, elfcar = timed(lambda: predictor.predict(structure, precision="fp32"), repeat=3)
    t16, _ = timed(lambda: predictor.predict(structure, precision="bf16"), repeat=3)
    return {"predict_fp32_s": t32, "predict_bf16_s": t16, "grid": list(elfcar.dim)}


def fit_power_law(rows: list[dict], key: str) -> tuple[float, float] | None:
    """(prefactor, exponent) of t = a N^b over the measured rows with N >= 4, or None."""
    pts = [(r["n_atoms"], r[key]) for r in rows if r.get(key) and r["n_atoms"] >= 4]
    if len(pts) < 2:
        return None
    b, log_a = np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)
    return float(np.exp(log_a)), float(b)


def summarize(rows: list[dict]) -> dict:
    """Per series: the power laws, and every row with GPAW's time (measured or extrapolated) and the ratios."""
    out = {}
    for series in ("supercell", "rattled"):
        sel = sorted((r for r in rows if r["series"] == series), key=lambda r: r["n_atoms"])
        law = fit_power_law(sel, "gpaw_s")
        for r in sel:
            r["gpaw_extrapolated"] = r.get("gpaw_s") is None and law is not None
            gpaw = r.get("gpaw_s") or (law[0] * r["n_atoms"] ** law[1] if law else None)
            r["gpaw_used_s"] = gpaw
            r["ratio_fp32"] = gpaw / r["predict_fp32_s"] if gpaw else None
            r["ratio_bf16"] = gpaw / r["predict_bf16_s"] if gpaw else None
        out[series] = {"gpaw_power_law": law, "predict_power_law": fit_power_law(sel, "predict_fp32_s"), "rows": sel}
    return out


def table(summary: dict) -> str:
    lines = ["| series | atoms | output grid | GPAW (s) | predict fp32 (s) | predict bf16 (s) | ratio fp32 | ratio bf16 |",
             "|---|---|---|---|---|---|---|---|"]
    for series, block in summary.items():
        for r in block["rows"]:
            g = "n/a" if r["gpaw_used_s"] is None else f"{r['gpaw_used_s']:.0f}" + (" (extrapolated)" if r["gpaw_extrapolated"] else "")
            ratio = lambda k: "n/a" if r[k] is None else f"{r[k]:,.0f}x"  # noqa: E731
            lines.append(f"| {series} | {r['n_atoms']} | {'x'.join(map(str, r['grid']))} | {g} | {r['predict_fp32_s']:.3f} | "
                         f"{r['predict_bf16_s']:.3f} | {ratio('ratio_fp32')} | {ratio('ratio_bf16')} |")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for series, color in (("supercell", "C0"), ("rattled", "C1")):
        rows = summary[series]["rows"]
        n = [r["n_atoms"] for r in rows]
        ax.plot(n, [r["predict_fp32_s"] for r in rows], "o-", color=color, label=f"prediction, {series} (fp32)")
        meas = [(r["n_atoms"], r["gpaw_s"]) for r in rows if r.get("gpaw_s")]
        extra = [(r["n_atoms"], r["gpaw_used_s"]) for r in rows if r["gpaw_extrapolated"]]
        ax.plot(*zip(*meas), "s--", color=color, alpha=0.7, label=f"GPAW, {series}") if meas else None
        ax.plot(*zip(*extra), "x:", color=color, alpha=0.7, label=f"GPAW, {series} (extrapolated)") if extra else None
    ax.set(xscale="log", yscale="log", xlabel="atoms in the cell (fcc Al)", ylabel="wall time per structure (s), 1 thread",
           title="ELF prediction vs GPAW reference, same machine")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--gpaw-max-atoms", type=int, default=16)
    parser.add_argument("--gpaw-timeout", type=float, default=1800.0)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--series", nargs="*", default=["supercell", "rattled"], choices=["supercell", "rattled"])
    parser.add_argument("--redo", action="store_true", help="recompute the selected rows even if they are in the log")
    args = parser.parse_args()
    torch.set_num_threads(1)
    predictor = ElfPredictor.from_pretrained(args.model, device="cpu")
    log = RESULTS / "scaling.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for n in args.sizes:
        for series in args.series:
            same = [r for r in done if r["n_atoms"] == n and r["series"] == series]
            if same and not args.redo:
                continue
            done = [r for r in done if r not in same]
            s = cell(n, series == "rattled")
            row = {"series": series, "n_atoms": n, **predict_times(predictor, s)}
            if n <= args.gpaw_max_atoms:
                row.update(gpaw_time(s, args.gpaw_timeout))
            row["date"] = time.strftime("%Y-%m-%d %H:%M")
            print(json.dumps(row), flush=True)
            done.append(row)
            write_text_atomic(log, "".join(json.dumps(r) + "\n" for r in done))
    summary = summarize(done)
    plot(summary, RESULTS / "scaling.png")
    print(table(summary))
    print("wrote", save("scaling", {"model": args.model or "default", "threads": 1, "machine_during": machine(), **summary}))


if __name__ == "__main__":
    main()
