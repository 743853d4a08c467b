"""Bad input is rejected with a clear message; files are written atomically."""

import numpy as np
import pytest
from ase import Atoms
from pymatgen.core import DummySpecies, Lattice, Structure
from pymatgen.io.vasp.outputs import Chgcar

from pymatgen_elfml.generator import DensityGenerator
from pymatgen_elfml.io import StructureError, load_cell, write_atomic


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Structure(Lattice.cubic(4), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]]), "partial occupancy"),
        (lambda: Structure(Lattice.cubic(4), [DummySpecies("X")], [[0, 0, 0]]), "dummy or unknown"),
        (lambda: Structure(Lattice.cubic(4), [], []), "empty"),
        (lambda: Structure(Lattice.cubic(4), ["Cu", "Cu"], [[0, 0, 0], [0.05, 0, 0]]), "overlapping"),
        (lambda: Structure(Lattice.cubic(0.4), ["H"], [[0, 0, 0]]), "overlap"),
        (lambda: Structure(Lattice.from_parameters(3, 3, 1e-6, 90, 90, 90), ["Al"], [[0, 0, 0]]), "singular or too thin"),
        (lambda: Structure(Lattice.cubic(4), ["Cu"], [[np.nan, 0, 0]]), "NaN"),
        (lambda: Structure(Lattice.cubic(6), ["Rf"], [[0, 0, 0]]), "outside the supported range"),
        (lambda: Atoms("Cu2", positions=[[0, 0, 0], [np.nan, 0, 0]], cell=np.eye(3) * 4, pbc=True), "NaN"),
        (lambda: Atoms("Cu", cell=np.eye(3) * 4, pbc=False), "periodic"),
        (lambda: 42, "expected a pymatgen Structure"),
    ],
)
def test_bad_structures_are_rejected(make, match):
    with pytest.raises(StructureError, match=match):
        load_cell(make())


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_cell(tmp_path / "nope.vasp")
    junk = tmp_path / "POSCAR"
    junk.write_text("this is not a structure\n")
    with pytest.raises(StructureError, match="could not read"):
        load_cell(junk)


def _half_written_then_disk_full(self, name, *args, **kwargs):
    """Stand-in for pymatgen's writer: half a file, then the disk is full."""
    with open(name, "w") as fh:
        fh.write("half a file")
    raise OSError("disk full")


def test_write_atomic_leaves_nothing_on_failure(tmp_path, NiAl, monkeypatch):
    chg = DensityGenerator().sad(NiAl, spacing=0.3)

    monkeypatch.setattr(Chgcar, "write_file", _half_written_then_disk_full)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(chg, tmp_path / "CHGCAR")
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_replaces_an_existing_file(tmp_path, NiAl):
    target = tmp_path / "CHGCAR"
    target.write_text("old")
    write_atomic(DensityGenerator().sad(NiAl, spacing=0.3), target)
    assert Chgcar.from_file(target).data["total"].mean() == pytest.approx(41, rel=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["CHGCAR"]


def test_returned_objects_write_atomically_with_the_users_umask(tmp_path, NiAl, monkeypatch):
    """The README's own call, ``predict(s).write_file("ELFCAR")``, is atomic; files get mode 0666 & ~umask."""
    import os

    from pymatgen.io.vasp.outputs import VolumetricData

    from pymatgen_elfml.io import to_elfcar

    elfcar = to_elfcar(NiAl, np.full((8, 8, 8), 0.25))
    old = os.umask(0o027)
    try:
        elfcar.write_file(tmp_path / "ELFCAR")
        elfcar.write_file(tmp_path / "ELFCAR.gz")  # compression by extension survives the temporary name
    finally:
        os.umask(old)
    assert oct((tmp_path / "ELFCAR").stat().st_mode & 0o777) == oct(0o640)
    from pymatgen.io.vasp.outputs import Elfcar

    assert Elfcar.from_file(tmp_path / "ELFCAR.gz").data["total"].mean() == pytest.approx(0.25)

    monkeypatch.setattr(VolumetricData, "write_file", _half_written_then_disk_full)
    with pytest.raises(OSError, match="disk full"):
        elfcar.write_file(tmp_path / "ELFCAR2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ELFCAR", "ELFCAR.gz"]


def test_elfcar_spin_blocks_in_both_pymatgen_conventions(tmp_path, NiAl):
    """Two ELF blocks are averaged, whether pymatgen names them spin_up/spin_down or total/diff."""
    from types import SimpleNamespace

    from pymatgen.io.vasp.outputs import Elfcar

    from pymatgen_elfml.io import elf_from_elfcar

    up, down = np.full((4, 4, 4), 0.2), np.full((4, 4, 4), 0.6)
    Elfcar(NiAl, {"spin_up": up, "spin_down": down}).write_file(tmp_path / "ELFCAR")  # a real two-block file
    assert "spin_down" in Elfcar.from_file(tmp_path / "ELFCAR").data
    assert elf_from_elfcar(Elfcar.from_file(tmp_path / "ELFCAR")).mean() == pytest.approx(0.4)
    assert elf_from_elfcar(SimpleNamespace(data={"total": up, "diff": down})).mean() == pytest.approx(0.4)
    assert elf_from_elfcar(SimpleNamespace(data={"total": up})).mean() == pytest.approx(0.2)


def test_numeric_core_imports_neither_pymatgen_nor_torch():
    """grid, symmetry, sad and features work on arrays: pymatgen, ASE and torch stay at the edges;
    the SAD-only DensityGenerator does not load torch; data sources do not load the GPAW builder."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import pymatgen_elfml.grid, pymatgen_elfml.symmetry, pymatgen_elfml.sad, pymatgen_elfml.features\n"
        "assert not {'pymatgen', 'ase', 'torch'} & set(sys.modules), sorted({'pymatgen', 'ase', 'torch'} & set(sys.modules))\n"
        "from pymatgen_elfml.generator import DensityGenerator\n"
        "import pymatgen_elfml.data.sources\n"
        "assert 'torch' not in sys.modules and 'pymatgen_elfml.reference.build' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_small_gaps_spacing_coarse_grids_ase_files_and_predict_many(tmp_path, NiAl, tiny_predictor):
    """spacing=0 is an error, a grid that cannot resolve atoms warns, ASE-only formats load, and
    predict_many(errors="skip") yields the error in place of a bad structure."""
    from ase.build import bulk
    from ase.io import write

    from pymatgen_elfml.io import to_structure

    with pytest.raises(ValueError, match="spacing must be a positive"):
        DensityGenerator().sad(NiAl, spacing=0)
    with pytest.raises(ValueError, match="spacing must be a positive"):
        tiny_predictor.predict(NiAl, spacing=0.0)
    with pytest.warns(UserWarning, match="too coarse to resolve the atoms"):
        DensityGenerator().sad(NiAl, grid=(2, 2, 2))
    write(tmp_path / "al.xyz", bulk("Al", "fcc", a=4.05), format="extxyz")
    assert to_structure(tmp_path / "al.xyz").composition.reduced_formula == "Al"
    bad = Structure(Lattice.cubic(4), ["Cu", "Cu"], [[0, 0, 0], [0.05, 0, 0]])
    out = list(tiny_predictor.predict_many([NiAl, bad, NiAl], errors="skip", progress=False, spacing=0.4))
    assert isinstance(out[1], StructureError) and "overlapping" in str(out[1]) and out[2].data["total"].shape == out[0].data["total"].shape
    with pytest.raises(StructureError):
        list(tiny_predictor.predict_many([NiAl, bad], progress=False, spacing=0.4))
