"""Where triplets come from: reference dataset folders (records + manifest) and VASP run folders."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from pymatgen.io.vasp.outputs import Chgcar, Elfcar

from pymatgen_elfml import io
from pymatgen_elfml.data.triplets import Triplet, make_triplet
from pymatgen_elfml.reference.store import read_jsonl
from pymatgen_elfml.reference.store import read_record


def _reference_triplet(folder: Path, row: dict, splits: dict) -> Triplet:
    rec = read_record(folder / row["file"], sha256=row["sha256"])
    labels = {"source": f"reference:{folder.name}", "split": splits.get(rec.id),
              **{k: row.get(k) for k in ("family", "prototype", "formula", "volume_ratio", "split_key")}}
    return make_triplet(rec.id, rec.structure, rec.elf, rec.rho, labels)


def items(src: str | Path) -> Iterator[tuple[Path, Callable[[], Triplet]]]:
    """(path, build) for every sample of ``src``: a reference dataset folder (one per record), a VASP
    run folder, or a folder of VASP run folders; ``build()`` reads and validates one sample, so
    a caller can report and skip the bad ones.

    Raises:
        ValueError: ``src`` is none of these.
    """
    src = Path(src)
    if not src.is_dir():
        raise ValueError(f"{src} is not a folder")
    if (src / "manifest.jsonl").is_file():
        splits = json.loads((src / "splits.json").read_text()) if (src / "splits.json").is_file() else {}
        for row in read_jsonl(src / "manifest.jsonl"):
            yield src / row["file"], partial(_reference_triplet, src, row, splits)
        return
    runs = [src] if is_vasp_run(src) else sorted(p for p in src.iterdir() if p.is_dir() and is_vasp_run(p))
    if not runs:
        raise ValueError(f"{src} is neither a reference dataset nor a VASP run folder (no manifest.jsonl or ELFCAR)")
    for run in runs:
        yield run, partial(from_vasp_run, run)


def from_reference(folder: str | Path) -> Iterator[Triplet]:
    """Triplets of a reference dataset folder, each record checked against its manifest sha256."""
    for _, build in items(folder):
        yield build()


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def is_vasp_run(folder: Path) -> bool:
    """A folder with an ELFCAR (optionally .gz)."""
    return _first(Path(folder), ("ELFCAR",)) is not None


def _read(cls, path: Path):
    """``cls.from_file(path)``; any parsing failure becomes a ValueError naming the file."""
    try:
        return cls.from_file(path)
    except Exception as exc:  # pymatgen raises many types for truncated, gzip-damaged or garbage files
        raise ValueError(f"{path}: unreadable {cls.__name__.upper()} ({type(exc).__name__}: {exc})") from exc


def from_vasp_run(folder: str | Path, stem: str | None = None) -> Triplet:
    """One VASP run folder: the structure from CONTCAR, POSCAR or the ELFCAR header; ELF from
    ELFCAR (mean of the two spin blocks when present); density from CHGCAR (rho * V / V), if present.

    Raises:
        FileNotFoundError: no ELFCAR.
        ValueError: CHGCAR and ELFCAR on different grids or structures.
    """
    folder = Path(folder)
    elf_path = _first(folder, ("ELFCAR",))
    if elf_path is None:
        raise FileNotFoundError(f"no ELFCAR in {folder}")
    elfcar = _read(Elfcar, elf_path)
    poscar = _first(folder, ("CONTCAR", "POSCAR"))
    structure = io.to_structure(poscar) if poscar is not None else elfcar.structure
    elf = io.elf_from_elfcar(elfcar)
    rho = None
    chg_path = _first(folder, ("CHGCAR",))
    if chg_path is not None:
        chgcar = _read(Chgcar, chg_path)
        if not chgcar.structure.matches(structure):
            raise ValueError(f"{chg_path} and {elf_path} hold different structures")
        rho = io.density_from_chgcar(chgcar)
    labels = {"source": f"vasp:{folder.name}", "elfcar_blocks": sorted(elfcar.data)}
    return make_triplet(stem or folder.name, structure, elf, rho, labels)
