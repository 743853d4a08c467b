"""The pymatgen / ASE boundary: structures in, VASP volumetric objects out.

Everything past this module works on plain arrays: a lattice ``(3, 3)`` in Angstrom
(rows are the lattice vectors a, b, c, as in pymatgen), fractional coordinates
``(n_atoms, 3)`` and atomic numbers ``(n_atoms,)``. VASP's CHGCAR convention
(the file stores rho * V_cell) is applied here and nowhere else.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import read as ase_read
from pymatgen.core import DummySpecies, Element, Species, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.vasp.outputs import Chgcar, Elfcar, VolumetricData

from pymatgen_elfml.cell import Cell  # noqa: F401  (re-exported: io.Cell is the validated structure)

MIN_DISTANCE = 0.5  # Angstrom; closer atoms are rejected as overlapping
MAX_Z = 103  # the shipped free-atom table covers H..Lr


class StructureError(ValueError):
    """The input structure cannot be used (raised with the reason in the message)."""


def to_structure(obj: Any) -> Structure:
    """Convert a pymatgen ``Structure``, an ASE ``Atoms`` or a file path to a ``Structure``.

    Args:
        obj: the structure, or a path to any file pymatgen reads (POSCAR, CIF, ...).

    Raises:
        StructureError: for files pymatgen cannot parse or unsupported types.
        FileNotFoundError: for a path that does not exist.
    """
    if isinstance(obj, Structure):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.is_file():
            raise FileNotFoundError(f"structure file not found: {path}")
        try:
            return Structure.from_file(path)
        except Exception as exc:  # pymatgen raises many types for bad files; ASE reads more formats (.xyz, ...)
            try:
                return _atoms_to_structure(ase_read(path))
            except Exception:
                raise StructureError(f"could not read a structure from {path} with pymatgen or ASE: {exc}") from exc
    if isinstance(obj, Atoms):
        return _atoms_to_structure(obj)
    raise StructureError(
        f"expected a pymatgen Structure, an ase.Atoms or a file path, got {type(obj).__name__}"
    )


def _atoms_to_structure(atoms: Atoms) -> Structure:
    if not all(atoms.pbc):
        raise StructureError(f"ase.Atoms must be periodic in all three directions, pbc={atoms.pbc}")
    if not np.all(np.isfinite(atoms.positions)):
        raise StructureError("ase.Atoms has NaN or infinite positions")
    return AseAtomsAdaptor.get_structure(atoms)


def validate(structure: Structure) -> Cell:
    """Check a structure for what the SAD and the model need and return it as arrays.

    Raises:
        StructureError: empty structure, partial occupancy, dummy or unknown species,
            Z > 103, NaN/inf lattice or coordinates, a singular lattice, or atoms
            closer than 0.5 Angstrom.
    """
    if len(structure) == 0:
        raise StructureError("the structure is empty (no sites)")
    if not structure.is_ordered:
        bad = next(site for site in structure if not site.is_ordered)
        raise StructureError(
            f"partial occupancy is not supported (site {bad.species_string} at {bad.frac_coords})"
        )
    numbers = np.array([_atomic_number(site.specie) for site in structure], dtype=int)
    lattice = np.array(structure.lattice.matrix, dtype=float)
    frac = np.array(structure.frac_coords, dtype=float)
    if not (np.all(np.isfinite(lattice)) and np.all(np.isfinite(frac))):
        raise StructureError("the structure has NaN or infinite lattice vectors or coordinates")
    volume = abs(np.linalg.det(lattice))
    if volume < 1e-6:
        raise StructureError(f"the lattice is singular (cell volume {volume:.3g} A^3)")
    reduced = np.array(structure.lattice.get_lll_reduced_lattice().matrix)  # skewed bases of fine cells pass
    widths = volume / np.linalg.norm(np.cross(reduced[[1, 2, 0]], reduced[[2, 0, 1]]), axis=1)  # plane spacings
    if widths.min() < MIN_DISTANCE:
        raise StructureError(f"the lattice is singular or too thin: volume {volume:.3g} A^3, thinnest width "
                             f"{widths.min():.3g} A (< {MIN_DISTANCE} A: atoms overlap their periodic images)")
    _check_distances(structure)
    return Cell(lattice=lattice, frac=np.mod(frac, 1.0), numbers=numbers)


def _atomic_number(specie: Any) -> int:
    if isinstance(specie, DummySpecies) or not isinstance(specie, (Element, Species)):
        raise StructureError(f"dummy or unknown species {specie!s} is not supported")
    z = int(specie.Z)
    if not 1 <= z <= MAX_Z:
        raise StructureError(f"element {specie!s} (Z={z}) is outside the supported range Z=1..{MAX_Z}")
    return z


def _check_distances(structure: Structure) -> None:
    centers, points, _, dists = structure.get_neighbor_list(MIN_DISTANCE, exclude_self=True)
    if len(dists):
        i = int(np.argmin(dists))
        raise StructureError(
            f"atoms {centers[i]} and {points[i]} are {dists[i]:.3f} A apart "
            f"(< {MIN_DISTANCE} A): overlapping atoms"
        )
    if len(structure) == 1 and min(structure.lattice.abc) < MIN_DISTANCE:
        raise StructureError(f"the atom overlaps its periodic image (lattice {structure.lattice.abc})")


def load_cell(obj: Any) -> tuple[Structure, Cell]:
    """``to_structure`` then ``validate``: the one entry point of the public classes."""
    structure = to_structure(obj)
    return structure, validate(structure)


class _AtomicWriteFile:
    """Mixin: ``write_file`` goes through a temporary file in the target folder, then a rename."""

    def write_file(self, file_name: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        with atomic_path(file_name, suffix=_compression_suffix(file_name)) as tmp:
            super().write_file(tmp, *args, **kwargs)


class AtomicElfcar(_AtomicWriteFile, Elfcar):
    """pymatgen ``Elfcar`` whose ``write_file`` never leaves a partial file (disk full, Ctrl-C)."""


class AtomicChgcar(_AtomicWriteFile, Chgcar):
    """pymatgen ``Chgcar`` whose ``write_file`` never leaves a partial file (disk full, Ctrl-C)."""


def _compression_suffix(path: str | os.PathLike) -> str:
    """``.tmp`` plus the compression extension pymatgen's ``zopen`` acts on (ELFCAR.gz stays gzipped)."""
    ext = Path(path).suffix.lower()
    return ".tmp" + (ext if ext in (".gz", ".bz2", ".xz", ".lzma", ".z") else "")


def to_chgcar(structure: Structure, rho: np.ndarray) -> Chgcar:
    """Wrap a density in e/Angstrom^3, shape (nx, ny, nz), as a ``Chgcar`` (stores rho * V)."""
    return AtomicChgcar(structure, {"total": np.asarray(rho, dtype=float) * structure.volume})


def density_from_chgcar(chgcar: VolumetricData) -> np.ndarray:
    """The total density of a CHGCAR-like object in e/Angstrom^3, shape (nx, ny, nz)."""
    return np.asarray(chgcar.data["total"], dtype=float) / chgcar.structure.volume


def to_elfcar(structure: Structure, elf: np.ndarray) -> Elfcar:
    """Wrap an ELF field in [0, 1], shape (nx, ny, nz), as a one-block ``Elfcar``."""
    return AtomicElfcar(structure, {"total": np.asarray(elf, dtype=float)})


def elf_from_elfcar(elfcar: VolumetricData) -> np.ndarray:
    """The ELF of an ``Elfcar``, shape (nx, ny, nz); for two spin blocks their mean.

    pymatgen names an ELFCAR's two blocks "spin_up"/"spin_down" (recent releases) or
    "total"/"diff" (older ones, where "diff" is the second spin block, not a difference).
    """
    data = elfcar.data
    for pair in (("spin_up", "spin_down"), ("total", "diff")):
        if all(k in data for k in pair):
            return np.mean([np.asarray(data[k], dtype=float) for k in pair], axis=0)
    return np.asarray(data["spin_up" if "spin_up" in data else "total"], dtype=float)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block succeeds, deleted otherwise.

    ``suffix`` lets writers that append an extension (``np.save`` -> .npy) keep the exact name.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the user's usual mode
        os.replace(tmp, path)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        Path(tmp).unlink(missing_ok=True)
        if exc.errno is None:
            raise OSError(f"writing {path} failed: {exc}") from exc
        raise type(exc)(exc.errno, f"writing {path} failed: {exc.strerror}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask, read without changing it where Linux exposes it (os.umask sets as it reads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write a text file through ``atomic_path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_atomic(data: VolumetricData, path: str | os.PathLike) -> Path:
    """Write a VASP volumetric file via a temporary name in the same folder, then rename.

    A failure leaves no partial file at ``path``.
    """
    if isinstance(data, _AtomicWriteFile):
        data.write_file(path)
        return Path(path)
    with atomic_path(path, suffix=_compression_suffix(path)) as tmp:
        data.write_file(tmp)
    return Path(path)
