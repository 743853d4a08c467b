"""Resumable, parallel builder of a reference dataset: one GPAW process per structure.

Layout of an output folder::

    DIR/records/<id>.npz     one record per finished structure (``store.write_record``)
    DIR/manifest.jsonl       one JSON line per finished structure (id, labels, grid, sha256, wall time)
    DIR/failures.jsonl       one JSON line per failed structure (reason)
    DIR/logs/<id>.txt        GPAW's log of the last attempt

Only this parent process writes the manifest; each worker is a fresh Python process
(``python -m pymatgen_elfml.reference one ...``) with one BLAS thread, killed at the time limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm

from pymatgen_elfml.reference.engine import ReferenceSettings
from pymatgen_elfml.reference.store import append_jsonl, read_jsonl, sha256_file, write_jsonl  # noqa: F401 (read_jsonl re-exported)
from pymatgen_elfml.valence import SETUP_VALENCE


# rounds of the interleaving in ``priority_order``: structures taken per family and round (default 1)
FAMILY_WEIGHTS = {"template": 3, "elemental": 2}


def priority_order(candidates, valence: dict[str, int] = SETUP_VALENCE, covered=()) -> list:
    """Interleave families (template, elemental, binary, ...) so that any finished prefix covers all.

    Within a family, the cheapest structure of each chemical system (``split_key``) not in
    ``covered`` comes first (new chemistry before more volumes of known systems: the learning
    curve of issue 8), then the rest; each part sorted by estimated cost: the summed valence
    electrons of the cell (unknown elements count 20), then the cell volume. Each round of the
    round robin takes ``FAMILY_WEIGHTS`` structures of a family (3 templates, 2 elemental cells,
    1 of the others).

    Args:
        candidates: objects with ``family``, ``structure`` and optionally ``split_key``.
        covered: chemical systems already computed (e.g. the manifest's).
    """
    def cost(c):
        return (sum(valence.get(site.specie.symbol, 20) for site in c.structure), c.structure.volume)

    first: set[int] = set()  # ids (object identity) of each new system's cheapest candidate
    seen = set(covered)
    for cand in sorted(candidates, key=cost):
        key = getattr(cand, "split_key", None)
        if key is not None and key not in seen:
            seen.add(key)
            first.add(id(cand))
    families: dict[str, list] = {}
    for cand in candidates:
        families.setdefault(cand.family, []).append(cand)
    queues = [sorted(group, key=lambda c: (id(c) not in first, cost(c))) for group in families.values()]
    weights = [FAMILY_WEIGHTS.get(group[0].family, 1) for group in queues]
    out = []
    while any(queues):
        for queue, weight in zip(queues, weights):
            out.extend(queue[:weight])
            del queue[:weight]
    return out


def _start(candidate, out: Path, settings: ReferenceSettings, scratch: Path) -> subprocess.Popen:
    job = scratch / f"{candidate.id}.json"
    job.write_text(json.dumps({"candidate": candidate_to_dict(candidate), "settings": asdict(settings)}))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pymatgen_elfml.reference", "one", str(job), str(out)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def candidate_to_dict(candidate) -> dict:
    return {**{k: getattr(candidate, k) for k in ("id", "family", "prototype", "formula", "volume_ratio", "split_key")},
            "structure": candidate.structure.as_dict()}


def build(candidates, out: str | os.PathLike, settings: ReferenceSettings = ReferenceSettings(), workers: int = 1,
          timeout_s: float = 900.0, limit: int | None = None, retry_failed: bool = False,
          progress: bool = True) -> dict:
    """Compute every candidate not yet in ``out``'s manifest, remaining ones in ``priority_order``.

    Args:
        candidates: objects with ``id``, ``structure`` and the labels of ``structures.Candidate``.
        out: dataset folder (created).
        settings: GPAW settings (recorded per structure).
        workers: concurrent GPAW processes (one core each).
        timeout_s: per-structure wall-time limit in seconds; the process is killed past it.
        limit: stop after starting this many new structures.
        retry_failed: also retry structures listed in failures.jsonl.

    Returns:
        counts {"done", "failed", "skipped"} of this call.
    """
    out = Path(out)
    (out / "records").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    finished = read_jsonl(out / "manifest.jsonl")
    done = {row["id"] for row in finished}
    for orphan in (out / "records").glob("*.npz"):  # finished after an interrupted parent stopped listening
        if orphan.stem not in done:
            orphan.unlink()
    failed = set() if retry_failed else {row["id"] for row in read_jsonl(out / "failures.jsonl")}
    # interleave what is left (not the whole plan): families whose cheap members are done come up at once
    covered = {row.get("split_key") for row in finished}
    todo = priority_order([c for c in candidates if c.id not in done and c.id not in failed], covered=covered)[:limit]
    counts = {"done": 0, "failed": 0, "skipped": len(candidates) - len(todo)}
    bar = tqdm(total=len(todo), desc="reference", unit="structure", disable=not progress)
    with tempfile.TemporaryDirectory(prefix="elfml-ref-") as scratch:
        for cand, reason, elapsed in _pool(todo, out, settings, workers, timeout_s, Path(scratch)):
            record = out / "records" / f"{cand.id}.npz"
            if reason is None and record.is_file():
                append_jsonl(out / "manifest.jsonl", _manifest_row(cand, record, elapsed))
                counts["done"] += 1
            else:
                append_jsonl(out / "failures.jsonl", {"id": cand.id, "reason": reason or "no record written",
                                                       "wall_time_s": elapsed})
                counts["failed"] += 1
            bar.update(1)
            bar.set_postfix(done=counts["done"], failed=counts["failed"])
    bar.close()
    return counts


def _pool(todo: list, out: Path, settings: ReferenceSettings, workers: int, timeout_s: float, scratch: Path):
    """Run ``todo`` in at most ``workers`` GPAW processes; yields (candidate, failure reason or None, wall s)."""
    queue, running = list(todo), {}
    while queue or running:
        while queue and len(running) < workers:
            cand = queue.pop(0)
            running[cand.id] = (cand, _start(cand, out, settings, scratch), time.monotonic())
        time.sleep(0.2)
        for cid, (cand, proc, t0) in list(running.items()):
            elapsed = time.monotonic() - t0
            if proc.poll() is None and elapsed < timeout_s:
                continue
            del running[cid]
            yield cand, _outcome(proc, timeout_s), elapsed


def _outcome(proc: subprocess.Popen, timeout_s: float) -> str | None:
    """None for a process that exited cleanly; else why it failed (a still-running one is killed: timeout)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        return f"timeout after {timeout_s:.0f} s"
    if not proc.returncode:
        return None
    last = (proc.stderr.read() or "").strip().splitlines()[-1:]
    return last[0] if last else f"exit code {proc.returncode}"


def _manifest_row(cand, record: Path, elapsed: float) -> dict:
    """Manifest line of a finished structure (``cand``: a candidate or its ``candidate_to_dict``)."""
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from pymatgen_elfml.reference.store import read_record

    cand = cand if isinstance(cand, dict) else candidate_to_dict(cand)
    structure = Structure.from_dict(cand["structure"])
    rec = read_record(record)
    return {
        **{k: v for k, v in cand.items() if k != "structure"},
        "spacegroup": SpacegroupAnalyzer(structure).get_space_group_number(),
        "n_atoms": len(structure),
        "grid": list(rec.elf.shape),
        "settings": rec.meta["settings"],
        "energy_eV": rec.meta["energy_eV"],
        "n_valence": rec.meta["n_valence"],
        "wall_time_s": rec.meta["wall_time_s"],
        "process_time_s": elapsed,
        "gpaw_version": rec.meta["gpaw_version"],
        "file": f"records/{record.name}",
        "sha256": sha256_file(record),
        "fields_sha256": rec.meta["fields_sha256"],
    }


def run_one(candidate: dict, settings: dict, out: str | os.PathLike, compute: str | None = None) -> dict:
    """Compute one structure and write ``out/records/<id>.npz``: the per-structure step of every runner.

    The local ``build`` runs it in a fresh process per structure (``python -m pymatgen_elfml.reference
    one``); ``workflow.reference_flow`` runs it as one jobflow ``Job`` per structure.

    Args:
        candidate: ``candidate_to_dict`` of the structure.
        settings: ``asdict(ReferenceSettings)``.
        out: dataset folder (``records/`` and ``logs/`` are created).
        compute: ``"module:function"`` with ``compute_reference``'s signature (tests pass a fake);
            default GPAW's ``engine.compute_reference``.

    Returns:
        the manifest row, or ``{"id": ..., "reason": ...}`` if anything failed (GPAW, writing the record).
    """
    import importlib

    from pymatgen.core import Structure

    from pymatgen_elfml.reference.engine import ReferenceError, compute_reference
    from pymatgen_elfml.reference.store import Record, write_record

    out = Path(out)
    (out / "records").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    if compute:
        module, name = compute.split(":")
        compute_reference = getattr(importlib.import_module(module), name)
    structure = Structure.from_dict(candidate["structure"])
    start = time.monotonic()
    record = out / "records" / f"{candidate['id']}.npz"
    try:
        elf, rho, meta = compute_reference(structure, ReferenceSettings(**settings), txt=str(out / "logs" / f"{candidate['id']}.txt"))
        labels = {k: v for k, v in candidate.items() if k != "structure"}
        write_record(record, Record(candidate["id"], structure, elf, rho, {**meta, **labels}))
        return _manifest_row(candidate, record, time.monotonic() - start)
    except Exception as exc:  # GPAW's own errors arrive as ReferenceError; anything else is a failure too
        record.unlink(missing_ok=True)
        reason = str(exc) if isinstance(exc, ReferenceError) else f"{type(exc).__name__}: {exc}"
        return {"id": candidate["id"], "reason": reason, "wall_time_s": time.monotonic() - start}


def invalidate(folder: str | os.PathLike, ids, reason: str) -> int:
    """Remove records from a dataset folder so that the next ``build`` computes them again.

    The manifest is rewritten without their rows (atomically), then the record files are deleted (an
    interruption in between leaves orphans, which ``build`` deletes); each removed row goes to
    ``invalidated.jsonl`` with ``reason``. Ids not in the manifest are ignored. Do not run it beside a
    ``build`` of the folder: a row that build appends meanwhile would be lost (its record then recomputed).

    Returns:
        the number of records removed.
    """
    folder, ids = Path(folder), set(ids)
    rows = read_jsonl(folder / "manifest.jsonl")
    removed = [row for row in rows if row["id"] in ids]
    for row in removed:
        append_jsonl(folder / "invalidated.jsonl", {**row, "reason": reason})
    write_jsonl(folder / "manifest.jsonl", [r for r in rows if r["id"] not in ids])
    for row in removed:
        (folder / row["file"]).unlink(missing_ok=True)
    return len(removed)


def few_band_records(folder: str | os.PathLike, min_empty: float = 2.0) -> list[str]:
    """Ids of a folder's records computed with GPAW's default band count (settings without ``bands`` or
    ``bands="gpaw"``) that left fewer than ``min_empty`` empty bands (``engine.gpaw_default_bands``; needs GPAW)."""
    from pymatgen_elfml.reference.engine import gpaw_default_bands
    from pymatgen_elfml.reference.store import record_species

    folder, out = Path(folder), []
    for row in read_jsonl(folder / "manifest.jsonl"):
        if row["settings"].get("bands", "gpaw") != "gpaw":
            continue
        symbols = record_species(folder / row["file"])
        if gpaw_default_bands(symbols, row["settings"]["xc"]) - row["n_valence"] / 2 < min_empty:
            out.append(row["id"])
    return out


def migrate(folder: str | os.PathLike, progress: bool = True) -> dict:
    """Convert every record of a dataset folder in an older format (1 or 2) to the current one.

    Each record is verified bit for bit (``store.migrate_record``) before it replaces the old file;
    the manifest row gets the new ``sha256`` and the ``fields_sha256`` of the original fields.
    Resumable: a record migrated before an interruption is recognised by its
    ``migrated_from_sha256`` matching the manifest. Do not run it beside a ``build`` of the folder.

    Returns:
        counts {"migrated", "already"}.
    """
    from pymatgen_elfml.reference.store import FORMAT, RecordError, migrate_record, read_record, record_format

    folder = Path(folder)
    rows = read_jsonl(folder / "manifest.jsonl")
    counts = {"migrated": 0, "already": 0}
    for row in tqdm(rows, desc="migrate", unit="record", disable=not progress):
        path = folder / row["file"]
        if record_format(path) < FORMAT:
            row["sha256"], row["fields_sha256"] = migrate_record(path, row["sha256"])
            counts["migrated"] += 1
        else:
            rec, digest = read_record(path), sha256_file(path)
            if row["sha256"] != digest and rec.meta.get("migrated_from_sha256") != row["sha256"]:
                raise RecordError(f"record {path} matches neither its manifest checksum nor a migration of it")
            row["sha256"], row["fields_sha256"] = digest, rec.meta["fields_sha256"]
            counts["already"] += 1
    write_jsonl(folder / "manifest.jsonl", rows)
    return counts
