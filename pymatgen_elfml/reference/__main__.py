"""``python -m pymatgen_elfml.reference build --structures SET --out DIR --workers N``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _one(job_path: str, out: str) -> int:
    """Worker of the local ``build``: compute one structure and write its record (``build.run_one``)."""
    from pymatgen_elfml.reference.build import run_one

    job = json.loads(Path(job_path).read_text())
    row = run_one(job["candidate"], job["settings"], out)
    if "reason" in row:
        print(row["reason"], file=sys.stderr)
        return 1
    return 0


def _plan(out: str, keep: str | None, n_random: int) -> int:
    """v1's set (``all_candidates``), or with ``keep`` that set file plus the v2 families (``plan_v2``)."""
    from pymatgen_elfml.reference import structures
    from pymatgen_elfml.reference.build import priority_order

    if keep:
        from pymatgen_elfml.reference.plan_v2 import v2_candidates

        candidates = v2_candidates(structures.read_set(keep), n_random=n_random)
    else:
        candidates = structures.all_candidates()
    candidates = priority_order(candidates)
    structures.write_set(candidates, out)
    print(f"wrote {len(candidates)} candidates to {out}")
    return 0


def _splits(folder: Path, plan: str | None) -> int:
    """Rewrite folder/splits.json by chemical system (>= 10 % test when possible), keeping every
    assignment already in it: for the computed structures (manifest) or, with ``plan``, for every
    planned one."""
    from types import SimpleNamespace

    from pymatgen_elfml.io import write_text_atomic
    from pymatgen_elfml.reference.build import read_jsonl
    from pymatgen_elfml.reference.splits import extend_splits

    existing = json.loads((folder / "splits.json").read_text()) if (folder / "splits.json").is_file() else {}
    source = json.loads(Path(plan).read_text()) if plan else read_jsonl(folder / "manifest.jsonl")
    rows = [SimpleNamespace(id=d["id"], split_key=d["split_key"], family=d["family"]) for d in source]
    splits = extend_splits(rows, existing)
    write_text_atomic(folder / "splits.json", json.dumps(splits, indent=0, sort_keys=True))
    print(f"assigned {len(splits)} structures: " + ", ".join(f"{k} {list(splits.values()).count(k)}" for k in ("train", "val", "test")))
    return 0


def _coverage(folder: Path, min_cells: int | None, ids_out: str, host: bool = False, partners: int | None = None) -> int:
    """Append ``coverage``'s templates for the thin elements of folder's training split (``host``: its A3B
    compounds of the elements whose elemental cells are all outside training) to folder/structures.json
    (priority-ordered, after the planned ones), assign them to train in splits.json, and write their ids to
    ``ids_out`` (the input of ``build --ids``)."""
    from pymatgen_elfml.io import write_text_atomic
    from pymatgen_elfml.reference import coverage, structures
    from pymatgen_elfml.reference.build import priority_order, read_jsonl

    min_cells = coverage.MIN_TRAIN_CELLS if min_cells is None else min_cells
    splits = json.loads((folder / "splits.json").read_text())
    planned = structures.read_set(folder / "structures.json")
    rows = read_jsonl(folder / "manifest.jsonl")
    counts = coverage.train_cell_counts([r["split_key"] for r in rows], [splits[r["id"]] for r in rows])
    planned_keys = {c.split_key for c in planned}
    if host:
        hosts = coverage.held_out_elements([r["split_key"] for r in rows], [splits[r["id"]] for r in rows])
        pairs = coverage.host_pairs(hosts, counts, planned_keys, coverage.HOST_PARTNERS if partners is None else partners,
                                    min_cells)
    else:
        pairs = coverage.coverage_pairs(counts, planned_keys, min_cells,
                                        coverage.N_PARTNERS if partners is None else partners)
    known = {c.id for c in planned}
    new = priority_order([c for c in (coverage.host_set if host else coverage.coverage_set)(pairs) if c.id not in known])
    structures.write_set(planned + new, folder / "structures.json")
    splits.update({c.id: "train" for c in new})
    write_text_atomic(folder / "splits.json", json.dumps(splits, indent=0, sort_keys=True))
    write_text_atomic(Path(ids_out), json.dumps([c.id for c in new]))
    what = "host-rich pairs" if host else f"thin elements (< {min_cells} training cells)"
    print(f"{len(pairs)} {what}: " + ", ".join(f"{a}({counts[a]})+{b}" for a, b in pairs))
    print(f"added {len(new)} training candidates; ids in {ids_out}")
    return 0


def _candidates(spec: str):
    from pymatgen_elfml.reference import structures

    if Path(spec).is_file():
        return structures.read_set(spec)
    sets = {"elemental": structures.elemental_set, "binary": structures.binary_set,
            "random": lambda: structures.random_set(200), "all": structures.all_candidates}
    if spec not in sets:
        raise SystemExit(f"--structures must be a set file or one of {sorted(sets)}, got {spec!r}")
    return sets[spec]()


IDS_HELP = "a JSON list of ids (.json) or JSON lines of rows with an id (.jsonl, e.g. invalidated.jsonl)"


def _read_ids(path: str) -> set[str]:
    """Ids from a ``.json`` list or a ``.jsonl`` file of rows with an ``id`` (``IDS_HELP``)."""
    from pymatgen_elfml.reference.store import read_jsonl

    if path.lower().endswith(".jsonl"):
        return {row["id"] for row in read_jsonl(Path(path))}
    return set(json.loads(Path(path).read_text()))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.reference")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compute reference fields for a structure set (resumable)")
    b.add_argument("--structures", required=True, help="set file (JSON) or elemental|binary|random|all")
    b.add_argument("--out", required=True)
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--timeout", type=float, default=900.0, help="per-structure limit in seconds")
    b.add_argument("--limit", type=int, default=None, help="compute at most this many new structures")
    b.add_argument("--retry-failed", action="store_true")
    b.add_argument("--max-atoms", type=int, default=None,
                   help="only cells of at most this many atoms (the small, cheap cells first; same manifest)")
    b.add_argument("--ids", help=f"only these candidates: {IDS_HELP}")
    plan = sub.add_parser("plan", help="write a structure set file in priority order")
    plan.add_argument("--out", required=True, help="set file to write (JSON)")
    plan.add_argument("--keep", help="plan v2: keep this set file's candidates (v1's) and add the v2 families")
    plan.add_argument("--n-random", type=int, default=100, help="plan v2: random 4-12-atom cells (x3 volumes)")
    spl = sub.add_parser("splits", help="assign train/val/test over the computed structures (by chemical system)")
    spl.add_argument("folder")
    spl.add_argument("--plan", help="set file: split every planned structure, keeping splits.json's assignments")
    cov = sub.add_parser("coverage", help="add training-only two-metal templates for the elements with fewest training cells")
    cov.add_argument("folder")
    cov.add_argument("--min-train-cells", type=int, default=None,
                     help="elements with fewer training cells are thin (default: coverage.MIN_TRAIN_CELLS)")
    cov.add_argument("--host", action="store_true",
                     help="instead: A3B (L1_2) compounds, with well-covered partners, of the elements whose elemental "
                          "cells are all outside training")
    cov.add_argument("--partners", type=int, default=None,
                     help="how many of the best-covered elements serve as partners (default: coverage.N_PARTNERS, "
                          "with --host coverage.HOST_PARTNERS per host); more partners give an element whose systems "
                          "with the first ones are all planned a new one")
    cov.add_argument("--ids-out", required=True, help="JSON file to write the added ids to (input of build --ids)")
    sheet = sub.add_parser("datasheet", help="write DIR/README.md from the manifest")
    sheet.add_argument("folder")
    sheet.add_argument("--convergence", nargs="*", default=[], help="JSON files written by benchmarks/reference_convergence.py")
    inv = sub.add_parser("invalidate", help="remove records so that the next build recomputes them (logged); "
                                            "not while a build writes the folder")
    inv.add_argument("folder")
    inv.add_argument("--ids", required=True, help=IDS_HELP)
    inv.add_argument("--reason", required=True, help="why, kept in invalidated.jsonl")
    few = sub.add_parser("few-bands", help="list records computed with fewer than --min-empty empty bands (needs GPAW)")
    few.add_argument("folder")
    few.add_argument("--min-empty", type=float, default=2.0)
    few.add_argument("--out", required=True, help="JSON file to write the ids to (input of invalidate --ids)")
    mig = sub.add_parser("migrate", help="rewrite a folder's records of older formats (1: full grids, 2) in the current one, checked bit for bit")
    mig.add_argument("folder")
    one = sub.add_parser("one", help=argparse.SUPPRESS)
    one.add_argument("job")
    one.add_argument("out")
    return parser


def _datasheet(folder: str, convergence: list[str]) -> int:
    from pymatgen_elfml.reference.datasheet import load_convergence, write_datasheet

    print("wrote", write_datasheet(folder, load_convergence(convergence)))
    return 0


def _few_bands(folder: str, min_empty: float, out: str) -> int:
    from pymatgen_elfml.io import write_text_atomic
    from pymatgen_elfml.reference.build import few_band_records

    ids = few_band_records(folder, min_empty)
    write_text_atomic(out, json.dumps(ids))
    print(f"{len(ids)} records with fewer than {min_empty:g} empty bands -> {out}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from pymatgen_elfml.reference.build import build

    candidates = _candidates(args.structures)
    if args.max_atoms is not None:
        candidates = [c for c in candidates if len(c.structure) <= args.max_atoms]
    if args.ids:
        wanted = _read_ids(args.ids)
        unknown = wanted - {c.id for c in candidates}
        if unknown:
            print(f"{len(unknown)} ids of {args.ids} are not among the candidates, e.g. {sorted(unknown)[:3]}", file=sys.stderr)
        candidates = [c for c in candidates if c.id in wanted]
    counts = build(candidates, args.out, workers=args.workers, timeout_s=args.timeout,
                   limit=args.limit, retry_failed=args.retry_failed)
    print(json.dumps(counts))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "one":
        return _one(args.job, args.out)
    if args.command == "plan":
        return _plan(args.out, args.keep, args.n_random)
    if args.command == "migrate":
        from pymatgen_elfml.reference.build import migrate

        print(json.dumps(migrate(args.folder)))
        return 0
    if args.command == "invalidate":
        from pymatgen_elfml.reference.build import invalidate

        print(f"removed {invalidate(args.folder, _read_ids(args.ids), args.reason)} records")
        return 0
    if args.command == "few-bands":
        return _few_bands(args.folder, args.min_empty, args.out)
    if args.command == "splits":
        return _splits(Path(args.folder), args.plan)
    if args.command == "coverage":
        return _coverage(Path(args.folder), args.min_train_cells, args.ids_out, args.host, args.partners)
    if args.command == "datasheet":
        return _datasheet(args.folder, args.convergence)
    return _build(args)


if __name__ == "__main__":
    sys.exit(main())
