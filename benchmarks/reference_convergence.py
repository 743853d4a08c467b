"""Convergence of the reference settings: ELF and density at the production settings vs tighter ones.

Same real-space grid; tighter = 450 eV cutoff and k-spacing 0.2 1/A. Reports max and mean
|dELF| on the whole cell and more than 1 A from every nucleus (GPAW's ELF near nuclei comes
from the pseudo-density and is not physical there), and the relative density change.

    python benchmarks/reference_convergence.py       # ~5 min on 2 cores
    python benchmarks/reference_convergence.py --cases La:fcc:0.45 Y:hcp:0.45 --tag _templates  # compressed templates
    python benchmarks/reference_convergence.py --cases Ca:fcc:1.0 Ca:fcc:0.5 Cs:fcc:0.35 Ba:bcc:0.45 \
        --compare bands=gpaw --tag _bands    # what GPAW's capped default band count changed
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields, replace

import numpy as np

from common import save
from pymatgen_elfml.metrics import distance_to_nuclei
from pymatgen_elfml.reference.engine import ReferenceSettings, compute_reference
from pymatgen_elfml.reference.structures import prototype_structure

CASES = [("Al", "fcc", 1.0), ("Na", "bcc", 0.6), ("Cu", "fcc", 1.0), ("Mg", "hcp", 0.7)]


def _overrides(base: ReferenceSettings, items: list[str]) -> dict:
    """KEY=VALUE strings as typed ReferenceSettings fields (bool: true/false; SystemExit names a bad item)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in {f.name for f in fields(base)}:
            raise SystemExit(f"--compare takes KEY=VALUE with KEY a ReferenceSettings field, got {item!r}")
        kind = type(getattr(base, key))
        if kind is bool and value.lower() not in ("true", "false"):
            raise SystemExit(f"--compare {key} takes true or false, got {value!r}")
        out[key] = value.lower() == "true" if kind is bool else kind(float(value)) if kind is int else kind(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="*", help="ELEMENT:PROTOTYPE:V/V0 (default: Al fcc 1.0, Na bcc 0.6, Cu fcc 1.0, Mg hcp 0.7)")
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    parser.add_argument("--compare", nargs="*", default=["ecut=450", "kspacing=0.2"],
                        help="KEY=VALUE overrides of the production settings for the other side (default: the tighter settings)")
    args = parser.parse_args()
    cases = [(e, p, float(v)) for e, p, v in (c.split(":") for c in args.cases)] if args.cases else CASES
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    base = ReferenceSettings()
    tight = replace(base, **_overrides(base, args.compare))
    label = "" if args.compare == parser.get_default("compare") else f" (vs {' '.join(args.compare)})"
    rows = {}
    for element, proto, vr in cases:
        s = prototype_structure(proto, [element], vr)
        e0, r0, m0 = compute_reference(s, base)
        e1, r1, m1 = compute_reference(s, tight)
        far = distance_to_nuclei(s.lattice.matrix, s.frac_coords, e0.shape) > 1.0
        d = np.abs(e0 - e1)
        rows[f"{element} {proto} V/V0={vr}{label}"] = {
            "max_dELF": float(d.max()), "mean_dELF": float(d.mean()),
            "max_dELF_far": float(d[far].max()), "mean_dELF_far": float(d[far].mean()),
            "rel_drho_max": float(np.abs(r0 - r1).max() / np.abs(r1).max()),
            "time_production_s": m0["wall_time_s"], "time_tight_s": m1["wall_time_s"],
        }
        print(element, proto, vr, {k: round(v, 4) for k, v in rows[f"{element} {proto} V/V0={vr}{label}"].items()}, flush=True)
    print("wrote", save(f"reference_convergence{args.tag}", {"production": vars(base), "tight": vars(tight), "cases": rows}))


if __name__ == "__main__":
    main()
