"""Datasheet (README.md) of a reference dataset folder, generated from its manifest."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pymatgen.core import Composition, Element

from pymatgen_elfml.io import write_text_atomic
from pymatgen_elfml.reference.store import read_jsonl


def _table(counter: Counter, head: tuple[str, str]) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    return "\n".join(lines)


def _plan(folder: Path) -> list[dict]:
    path = folder / "structures.json"
    return json.loads(path.read_text()) if path.is_file() else []


def summarize(folder: str | Path) -> dict:
    """Counts, compute totals and storage of a dataset folder (manifest, failures, splits, plan)."""
    folder = Path(folder)
    rows = read_jsonl(folder / "manifest.jsonl")
    done = {r["id"] for r in rows}
    attempts = read_jsonl(folder / "failures.jsonl")
    fails = list({f["id"]: f for f in attempts if f["id"] not in done}.values())  # last reason of unresolved ids
    splits_path = folder / "splits.json"
    splits = json.loads(splits_path.read_text()) if splits_path.is_file() else {}
    elements = Counter(el.symbol for r in rows for el in Composition(r["formula"]).elements)
    size = sum((folder / r["file"]).stat().st_size for r in rows)
    hours = Counter()
    for r in rows:
        hours[r["family"]] += r["wall_time_s"] / 3600
    f_block = {r["id"]: r["wall_time_s"] for r in rows if any(Element(e.symbol).is_lanthanoid for e in Composition(r["formula"]).elements)}
    return {
        "n": len(rows), "planned": len(_plan(folder)),
        "family": Counter(r["family"] for r in rows),
        "family_hours": hours,
        "prototype": Counter(r["prototype"] for r in rows),
        "volume_ratio": Counter(f"{r['volume_ratio']:.2f}" for r in rows),
        "split": Counter(splits.get(r["id"], "unassigned") for r in rows),
        "templates_test": sum(r["family"] == "template" and splits.get(r["id"]) == "test" for r in rows),
        "systems": len({r["split_key"] for r in rows}),
        "spacegroup": Counter(r["spacegroup"] for r in rows),
        "elements": elements,
        "atoms": Counter(r["n_atoms"] for r in rows),
        "wall_time_s": sum(r["wall_time_s"] for r in rows),
        "failed_time_s": sum(f.get("wall_time_s", 0.0) for f in attempts),
        "f_block": (len(f_block), sum(f_block.values()) / 3600),
        "failures": fails,
        "bytes": size,
        "settings": rows[-1]["settings"] if rows else {},
        "bands": Counter(r["settings"].get("bands", "gpaw") for r in rows),
        "invalidated": read_jsonl(folder / "invalidated.jsonl"),
        "ids": done,
        "gpaw": sorted({r["gpaw_version"] for r in rows}),
    }


def load_convergence(paths) -> dict | None:
    """Merge ``benchmarks/reference_convergence.py`` result files into {"cases": ...}; None for no files.

    Files are read in sorted order (the table's row order, independent of the shell's glob order).
    """
    runs = [json.loads(Path(p).read_text()) for p in sorted(str(p) for p in paths)]
    return {"cases": {k: v for run in runs for k, v in run["cases"].items()}} if runs else None


def write_datasheet(folder: str | Path, convergence: dict | None = None) -> Path:
    """Write ``folder/README.md`` from the manifest (and a convergence result, if given)."""
    from pymatgen_elfml.reference.plan_v2 import UNREACHABLE_METALS

    folder = Path(folder)
    s = summarize(folder)
    conv = ""
    if convergence:
        conv = "\n".join(
            ["| structure | max dELF | mean dELF | max dELF > 1 A from nuclei | mean dELF > 1 A | max drho / rho_max |", "|---|---|---|---|---|---|"]
            + [f"| {k} | {v['max_dELF']:.3f} | {v['mean_dELF']:.4f} | {v['max_dELF_far']:.3f} | {v['mean_dELF_far']:.4f} | {v['rel_drho_max']:.1e} |"
               for k, v in convergence["cases"].items()])
    family = Counter({f"{k} ({s['family_hours'][k]:.2f} core-h)": v for k, v in s["family"].items()})
    text = TEMPLATE.format(
        n=s["n"], planned=s["planned"], nfail=len(s["failures"]), settings=json.dumps(s["settings"]), gpaw=", ".join(s["gpaw"]),
        hours=s["wall_time_s"] / 3600, fail_hours=s["failed_time_s"] / 3600, mb=s["bytes"] / 2**20,
        kb=s["bytes"] / 1e3 / max(s["n"], 1), systems=s["systems"], n_elements=len(s["elements"]),
        templates_test=s["templates_test"], f_n=s["f_block"][0], f_hours=s["f_block"][1],
        unreachable=", ".join(UNREACHABLE_METALS),
        family=_table(family, ("family (GPAW time)", "structures")), split=_table(s["split"], ("split", "structures")),
        volume=_table(s["volume_ratio"], ("V/V0", "structures")), prototype=_table(s["prototype"], ("prototype", "structures")),
        spacegroups=", ".join(f"{k}: {v}" for k, v in sorted(s["spacegroup"].items())),
        elements=", ".join(f"{k} {v}" for k, v in sorted(s["elements"].items())),
        atoms=", ".join(f"{k} atoms: {v}" for k, v in sorted(s["atoms"].items())),
        convergence=conv or "(not measured)",
        failures="\n".join(f"- `{f['id']}`: {f['reason']}" for f in s["failures"]) or "none",
        bands=_bands_text(s),
    )
    return write_text_atomic(folder / "README.md", text)


def _bands_text(s: dict) -> str:
    """The band-count paragraph: records per ``bands`` setting and the invalidated ones, per reason."""
    text = (f"Records by band count (`bands` setting): {s['bands'].get('uncapped', 0)} \"uncapped\" (ceil(0.6 N_valence) + 4 "
            f"bands), {s['bands'].get('gpaw', 0)} \"gpaw\" (GPAW's default, the same capped at the setups' bound partial "
            "waves; computed before 2026-12-02, none with fewer than 2 empty bands: `few-bands` lists such records).")
    gone = list({(r["id"], r.get("sha256")): r for r in s["invalidated"]}.values())  # a rerun may log a row twice
    reasons: dict[str, list] = {}
    for row in gone:
        reasons.setdefault(row["reason"], []).append(row)
    for reason, rows in reasons.items():
        back = sum(r["id"] in s["ids"] for r in rows)
        text += (f" {len(rows)} records were invalidated (`invalidated.jsonl`; {sum(r['wall_time_s'] for r in rows) / 3600:.2f} "
                 f"core-hours discarded, not counted above; {back} recomputed since) because: {reason}.")
    if gone:
        text += " What the band count changes: the convergence table's rows \"vs bands=gpaw\"."
    return text


TEMPLATE = """# Reference dataset v2: ELF and valence density of metal-only structures (GPAW)

Generated by `python -m pymatgen_elfml.reference datasheet data/v2` from `manifest.jsonl`.

**{n} structures** computed of {planned} planned, with ELF and valence density ({nfail} failed, listed
below); {systems} chemical systems (split groups), {n_elements} elements. Compute: {hours:.2f} core-hours of
successful GPAW runs (+{fail_hours:.2f} core-hours failed), one core per structure; f-element cells
(lanthanides): {f_n} structures, {f_hours:.2f} core-hours. Storage: {mb:.1f} MB of records, {kb:.1f} kB per structure.

## How it was made
- Structures: `data/v2/structures.json`, written by
  `python -m pymatgen_elfml.reference plan --keep data/v2/structures_v1.json --out data/v2/structures.json`.
  v1's 882 candidates (`structures_v1.json`, `pymatgen_elfml/reference/structures.py`): elemental metals in
  fcc/bcc/hcp/sc on V/V0 = 1.0 ... 0.5 (fixed fractional coordinates), binary B2/L1_2/L1_0 at V/V0 = 1.0,
  0.8, 0.6, random symmetric 1-4-atom cells at the same volumes. v2's families (`plan_v2.py`): `template`
  (superhydride metal sublattices: fcc, bcc, hcp, A15 of La, Y, Ca, Sr, Ba, Sc, Mg, Zr, Hf, Nb, Ce and
  neighbours, two-metal rocksalt/CsCl/fluorite sublattices, V/V0 = 0.75 ... 0.35), `intermetallic` (Laves,
  A15, D0_3, Heusler, CaCu5, AlB2, B2/L1_0/L1_2 compounds that exist, V/V0 = 1.0/0.8/0.6), new elements in
  fcc/bcc/hcp, and `random-large` (pyxtal, 4-12 atoms, space groups 1-230, V/V0 = 1.0/0.8/0.6). V0 from
  nearest-neighbour distances = 2 x pymatgen's metallic radius (close packing for Laves/A15/...).
  Computed in `priority_order` (families interleaved, each new chemical system's cheapest structure first, then cheapest first), so any prefix covers every family.
- Training coverage (2026-12-04, `coverage.py`): `python -m pymatgen_elfml.reference coverage data/v2 --ids-out IDS`
  then `build ... --ids IDS`. Every element with fewer than 20 training cells (21 of them, e.g. Ag, Lu, Re with
  none, La with 15: its elemental cells are in the test split) gets CsCl (B2) and fluorite (C1) templates with
  one of the five best-covered metals (Mg, Al, Y, Ca, Na; a system not planned before), V/V0 = 0.75/0.55/0.35:
  126 candidates, all in the training split; validation and test splits unchanged (same cells as before).
- Host-rich coverage (2026-12-05): `python -m pymatgen_elfml.reference coverage data/v2 --host --ids-out IDS`, then
  `build ... --ids IDS --timeout 900`. The 9 elements whose elemental cells all fell outside training (Ag, Cr, Li, Lu,
  Rh in validation, La, Re, V, Zn in test) get A3B (L1_2) compounds, A on the face centres with 8 A and 4 B
  nearest neighbours, with three well-covered partners each (from Mg, Al, Y, Na, Ca, K; systems not planned before),
  V/V0 = 1.0/0.8/0.6: 81 candidates, 80 computed (bin-La3Na-L1_2-v0.80 hit the 900 s limit), all in the training
  split; validation and test splits unchanged.
- Third coverage round (2026-12-07): `python -m pymatgen_elfml.reference coverage data/v2 --min-train-cells 30
  --ids-out IDS`, then `build ... --ids IDS --workers 2 --timeout 900`. The 20 elements with fewer than 30 training
  cells (Pr 14 ... Hf 28; V, Cr, Re among them) get the first round's B2 and C1 templates with one of the five
  best-covered metals (Y, Na, Mg, Al, Ca; systems not planned before), V/V0 = 0.75/0.55/0.35: 120 candidates, all in
  the training split; validation and test splits unchanged. 115 computed, 5 failed (Ce and Pr cells: SCF not
  converged, or over the 900 s limit).
- Fourth coverage round (2026-12-07): `python -m pymatgen_elfml.reference coverage data/v2 --min-train-cells 30
  --partners 10 --ids-out IDS`: with five partners, La, V, Zn and Ag (15-29 training cells, their elemental cells in
  validation or test) had no new system left; ten partners (adding K, Zr, Cu, Sc, Sr) give the 21 thin elements one
  each, the same B2 and C1 templates and volumes: 126 candidates, all in the training split; validation and test
  splits unchanged. Built first without the Ce and Pr cells (the slowest: GPAW's SCF takes 2-20 min for them):
  `build ... --ids IDS --workers 2 --timeout 600`: 112 of those 114 computed, 2 failed (C1 La-Sr cells, over
  600 s). The 12 Ce and Pr cells are not computed yet (the same command with all 126 ids computes them).
- Metals out of reach (no PAW setup in gpaw-data 1.2.1): {unreachable}.
- Calculations: `python -m pymatgen_elfml.reference build --structures data/v2/structures.json --out data/v2 --workers 2 --timeout 1800`.
  GPAW {gpaw}, plane-wave PAW, settings: `{settings}`
  (ecut in eV, kspacing in 1/A with the 2 pi, smearing = Fermi-Dirac width in eV, grid_spacing in A;
  the real-space grid is the model's native grid: symmetry-commensurate, a multiple of 8).
  Spin-unpolarised for every structure (magnetic Fe, Co, Ni, Mn, Cr are treated non-magnetically).
  {bands}
- ELF: `gpaw.elf.elf_from_dft_calculation` (pseudo valence density and its kinetic energy density, as
  VASP computes it; 0 where the density < 1e-6 e/bohr^3). Near nuclei (< ~1 A) GPAW's ELF includes the
  smooth pseudo-core and will not match VASP: compare there with care.
- Density: GPAW's pseudo valence density with compensation charges (VASP CHGCAR analogue), e/A^3;
  its integral equals the setups' valence count (checked for every record by `tests/test_data.py`).

## Storage (asymmetric unit)
`records/<id>.npz` (format 3, `pymatgen_elfml/reference/store.py`): ELF as uint16 codes (ELF x 65535:
error <= 7.6e-6) and density as float32 (e/A^3), both only at one grid point per orbit of the structure's
space group (its operators stored in the record), plus the points where GPAW's field breaks that symmetry
numerically (as bit-pattern differences), so the full grid is reconstructed bit for bit; arrays are
byte-shuffled before compression. `meta.fields_sha256` hashes the full-grid fields (for records of older
formats: before migration by `python -m pymatgen_elfml.reference migrate`), and
`tests/test_data.py` reconstructs every record against it. `v1_ids.json`: the 413 records of dataset v1
(the shipped models' training and test data; benchmarks take it as `--subset`). `manifest.jsonl`: one line per record (id, family,
prototype, formula, V/V0, space group, grid, settings, energy, wall time, GPAW version, file, sha256,
fields_sha256). `splits.json`: every planned id -> train/val/test, grouped by chemical system (no
composition shared across splits; v1's assignments kept, new systems split separately for templates and
the rest). `failures.jsonl`: failed ids and reasons. Load with
`pymatgen_elfml.reference.store.read_record(path, sha256=...)`; write the paper's triplets with
`python -m pymatgen_elfml.data prepare data/v2 --out DIR`.

## Settings convergence
Production settings vs 450 eV / k-spacing 0.2 1/A on the same grid (`benchmarks/reference_convergence.py`;
the compressed templates with `--cases La:fcc:0.45 Y:hcp:0.45 --tag _templates`), and, in the rows marked
"vs bands=gpaw", vs GPAW's default band count (`--compare bands=gpaw --tag _bands`):

{convergence}

The compressed templates (V/V0 = 0.45) change by no more than the ambient-volume cases, so they use the
production settings like every other structure.

## Counts
{family}

{split}

Templates in the test split (the "templates" test subset): {templates_test}.

{volume}

{prototype}

Atoms per cell: {atoms}.

Space groups (number: structures): {spacegroups}.

Element occurrences: {elements}.

## Failures
{failures}

## Licence
Computed by the pymatgen-elfml project; released under CC BY 4.0.
"""
