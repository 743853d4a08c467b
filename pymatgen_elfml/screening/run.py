"""Score and rank many candidate templates: ``screen`` (serial, any ``concurrent.futures.Executor``, Dask).

Each item is one structure at one volume ratio V/V0 (isotropic scaling of the cell as given). Its ELF
is predicted, described (``descriptors.describe``) and becomes one row of a ``ScreeningTable``; an item
that fails (bad species, overlapping atoms, ...) becomes a row with its error, and the run goes on. With
``output`` every finished row is appended to a JSON-lines file as it arrives, and a rerun with the same
file skips the items already there (resume after a kill; nothing computed twice).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pymatgen_elfml import io
from pymatgen_elfml.reference.store import append_jsonl, read_jsonl
from pymatgen_elfml.screening.descriptors import CORE_RADIUS, describe

COLUMNS = ("name", "formula", "volume_ratio", "score", "networking_3d", "networking_2d", "networking_1d",
           "dimensionality", "max_elf", "n_maxima", "top_site", "vf_0.5", "vf_0.6", "vf_0.7", "n_atoms", "error")


def templates(elements: Sequence[str], prototypes: Sequence[str] = ("fcc", "bcc", "hcp"),
              volume_ratios: Sequence[float] | None = None) -> dict[str, Any]:
    """Candidate metal sublattices (``reference.plan_v2.template_structure``: V0 from metallic radii).

    Args:
        elements: element symbols; fcc/bcc/hcp/A15 are built for each, B1/B2/C1 for each ordered pair.
        prototypes: any of ``plan_v2.TEMPLATE_PROTOTYPES``.
        volume_ratios: V/V0 of the cells (None: V0 only, and ``screen(volume_ratios=...)`` compresses them).

    Returns:
        {name: Structure}, names like "La-fcc" or "La-Y-B1" (with "-v0.60" appended per volume ratio).
    """
    from pymatgen_elfml.reference.plan_v2 import TEMPLATE_PROTOTYPES, template_structure

    unknown = sorted(set(prototypes) - set(TEMPLATE_PROTOTYPES))
    if unknown:
        raise ValueError(f"unknown template prototype(s) {unknown}; known: {', '.join(TEMPLATE_PROTOTYPES)}")
    out = {}
    for proto in prototypes:
        if proto in ("B1", "B2", "C1"):
            for a in elements:
                for b in elements:
                    if a != b:
                        out[f"{a}-{b}-{proto}"] = template_structure(proto, [a, b])
        else:
            for el in elements:
                out[f"{el}-{proto}"] = template_structure(proto, [el])
    if volume_ratios is None:
        return out
    from pymatgen_elfml.reference.structures import scaled

    return {f"{name}-v{r:.2f}": scaled(s, r) for name, s in out.items() for r in volume_ratios}


@dataclass
class ScreeningTable:
    """Rows of a screening run, ranked by score (highest first; failed items last, with their error).

    Each row is a dict with the keys of ``COLUMNS`` (and "maxima": the distinct interstitial maxima).
    """

    rows: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows = sorted(self.rows, key=lambda r: (r.get("error") is not None, -(r.get("score") or 0.0), r["name"],
                                                     r["volume_ratio"]))

    def __len__(self) -> int:
        return len(self.rows)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """The ranked table, one row per item (maxima summarised in ``top_site``), written atomically."""
        import csv
        import io as _io

        buf = _io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["rank", *COLUMNS], extrasaction="ignore")
        writer.writeheader()
        for rank, row in enumerate(self.rows, 1):
            writer.writerow({"rank": rank, **{k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()}})
        return io.write_text_atomic(path, buf.getvalue())

    def to_json(self, path: str | os.PathLike) -> Path:
        """Every row with all its fields (maxima included), written atomically."""
        return io.write_text_atomic(path, json.dumps(self.rows, indent=1))

    def to_pandas(self):
        """A pandas DataFrame of ``COLUMNS`` (pandas is optional: ImportError names it)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("ScreeningTable.to_pandas needs pandas: pip install pandas") from exc
        return pd.DataFrame([{k: r.get(k) for k in COLUMNS} for r in self.rows])


@lru_cache(maxsize=4)
def _cached_predictor(model: str | None, settings: tuple):
    from pymatgen_elfml.predictor import ElfPredictor

    return ElfPredictor.from_pretrained(model, device="cpu", **dict(settings))


def score_item(name: str, structure: Any, volume_ratio: float, model: Any = None, settings: tuple = (),
               core_radius: float = CORE_RADIUS, threads: int | None = None) -> dict:
    """Predict and describe one item; never raises for a bad structure (the row carries the error).

    Args:
        name: the item's label; structure: anything ``io.load_cell`` takes; volume_ratio: V/V0 applied to
        the cell as given; model: an ``ElfPredictor``, or a model name / folder (None: the default model),
        loaded once per worker process; settings: ``InferenceSettings`` fields as (key, value) pairs;
        threads: torch threads of this process (``screen`` gives each worker of an executor one, so that N
        workers do not start N x cores threads); None leaves torch's setting alone.
    """
    from pymatgen_elfml import symmetry

    row = {"name": name, "volume_ratio": float(volume_ratio), "error": None}
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        from pymatgen_elfml.reference.structures import scaled

        structure = io.to_structure(structure)
        row["formula"] = structure.composition.reduced_formula
        structure = scaled(structure, volume_ratio)
        cell = io.validate(structure)
        predictor = model if hasattr(model, "predict") else _cached_predictor(model, tuple(settings))
        elf = io.elf_from_elfcar(predictor.predict(structure))
        ops = symmetry.seitz_ops(cell)
        desc, maxima = describe(elf, cell.lattice, cell.frac, cell.numbers, ops.rotations, ops.translations, core_radius)
    except (ValueError, FileNotFoundError, MemoryError, RuntimeError) as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    d = desc.as_dict()
    vf = d.pop("volume_fraction")
    top = maxima[0] if maxima else None
    row.update(d, n_atoms=len(cell.numbers), **{f"vf_{k}": v for k, v in vf.items()},
               top_site=f"{top.wyckoff} ELF {top.value:.3f} at {top.distance:.2f} A" if top else "",
               maxima=[m.__dict__ for m in maxima])
    return row


def _items(structures, volume_ratios) -> list[tuple[str, Any, float]]:
    if isinstance(structures, dict):
        named = list(structures.items())
    else:
        named = [(str(s) if isinstance(s, (str, os.PathLike)) else f"{i}-{io.to_structure(s).composition.reduced_formula}", s)
                 for i, s in enumerate(structures)]
    return [(name, s, float(v)) for name, s in named for v in (volume_ratios or [1.0])]


def screen(structures: dict | Iterable[Any], predictor: Any = None, volume_ratios: Sequence[float] | None = None,
           executor: Executor | None = None, output: str | os.PathLike | None = None, progress: bool = True,
           core_radius: float = CORE_RADIUS) -> ScreeningTable:
    """Predict, score and rank many structures, each at every volume ratio.

    Args:
        structures: {name: structure} or an iterable of structures / file paths (named by path or index).
        predictor: an ``ElfPredictor`` (sent to each task), or a model name / folder, loaded once per
            worker (None: the default model). With an executor, prefer a name: it travels as a string.
        volume_ratios: V/V0 values applied to each cell as given (None: [1.0]).
        executor: any ``concurrent.futures.Executor``: a ``ProcessPoolExecutor`` (give it
            ``mp_context=multiprocessing.get_context("spawn")``: a forked child of a process whose torch
            thread pool has run can deadlock), Dask's ``Client.get_executor()``; None runs the items here,
            one after the other.
        output: JSON-lines file that receives every finished row; items already in it are not computed again.
        core_radius: Angstrom, see ``descriptors``.

    Returns:
        The ranked ``ScreeningTable`` (rows from ``output`` included).
    """
    path = Path(output) if output else None
    done = {(r["name"], r["volume_ratio"]): r for r in (read_jsonl(path) if path else [])}
    todo = [it for it in _items(structures, volume_ratios) if (it[0], it[2]) not in done]
    threads = 1 if executor is not None else None
    args = [(name, s, v, predictor, (), core_radius, threads) for name, s, v in todo]
    rows = list(done.values())
    bar = tqdm(total=len(args), desc="screen", unit="item", disable=not progress)

    def keep(row: dict) -> None:
        rows.append(row)
        if path:
            append_jsonl(path, row)
        bar.update()

    if executor is None:
        for a in args:
            keep(score_item(*a))
    else:
        futures: dict[Future, tuple] = {executor.submit(score_item, *a): a for a in args}
        for fut in as_completed(futures):
            exc = fut.exception()
            keep(fut.result() if exc is None else {"name": futures[fut][0], "volume_ratio": futures[fut][2],
                                                   "error": f"{type(exc).__name__}: {exc}"})
    bar.close()
    return ScreeningTable(rows)
