"""The reference build as a jobflow ``Flow``, for clusters (jobflow-remote, FireWorks).

One ``Job`` per structure runs ``build.run_one`` (the same per-structure step as the local
``build``): it writes ``out/records/<id>.npz`` on the shared filesystem and outputs the record's
manifest row (id, labels, grid, energy, timings, sha256 of the file and of its fields), or
``{"id", "reason"}`` if GPAW failed. A last ``collect`` job appends the rows to
``out/manifest.jsonl`` / ``out/failures.jsonl``, skipping ids already there, so the folder is the
same as a local build's. Records stay files (tens of kB, more than a job store document should
hold); the job output is their manifest row.

    from jobflow.managers.local import run_locally
    flow = reference_flow(read_set("data/v2/structures.json"), "data/v2", limit=10)
    run_locally(flow, create_folders=False)        # or submit through jobflow-remote / FireWorks

jobflow is an optional dependency (``pip install ".[workflows]"``).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from jobflow import Flow, OnMissing, job

from pymatgen_elfml.reference.build import candidate_to_dict, priority_order, run_one
from pymatgen_elfml.reference.store import append_jsonl, read_jsonl
from pymatgen_elfml.reference.engine import ReferenceSettings


@job
def reference_job(candidate: dict, settings: dict, out: str, compute: str | None = None) -> dict:
    """One structure: ``build.run_one`` (record written to ``out``); output its manifest row."""
    return run_one(candidate, settings, out, compute)


@job
def collect_job(rows: list[dict], out: str) -> dict:
    """Append the structures' rows to the folder's manifest (or failures); returns the counts."""
    out = Path(out)
    known = {r["id"] for r in read_jsonl(out / "manifest.jsonl")}
    counts = {"done": 0, "failed": 0, "lost": 0}
    for row in rows:
        if row is None:  # the job itself died (killed at the walltime, node lost): computed again next time
            counts["lost"] += 1
        elif "reason" in row:
            append_jsonl(out / "failures.jsonl", row)
            counts["failed"] += 1
        elif row["id"] not in known:
            append_jsonl(out / "manifest.jsonl", row)
            counts["done"] += 1
    return counts


def reference_flow(candidates, out: str | os.PathLike, settings: ReferenceSettings = ReferenceSettings(),
                   limit: int | None = None, compute: str | None = None, name: str = "elfml-reference") -> Flow:
    """A Flow computing every candidate not yet in ``out``'s manifest or failures, in ``priority_order``
    (as ``build`` does).

    Args:
        candidates: ``structures.Candidate`` objects, in priority order.
        out: dataset folder, reachable from every worker.
        settings: GPAW settings.
        limit: at most this many new structures.
        compute: ``"module:function"`` replacing GPAW (tests).

    Returns:
        ``Flow`` of one ``reference_job`` per structure and a final ``collect_job``.
    """
    out = Path(out)
    done = {r["id"] for r in read_jsonl(out / "manifest.jsonl")}
    skip = done | {r["id"] for r in read_jsonl(out / "failures.jsonl")}
    covered = {c.split_key for c in candidates if c.id in done}
    todo = priority_order([c for c in candidates if c.id not in skip], covered=covered)[:limit]
    jobs = []
    for cand in todo:
        j = reference_job(candidate_to_dict(cand), asdict(settings), str(out), compute)
        j.name = f"reference {cand.id}"
        jobs.append(j)
    collect = collect_job([j.output for j in jobs], str(out))
    collect.name = "collect manifest"
    collect.config.on_missing_references = OnMissing.NONE  # a dead job must not lose the others' rows
    return Flow([*jobs, collect], output=collect.output, name=name)
