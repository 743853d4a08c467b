"""Session-scoped structures named by formula, and a tiny randomly initialised model."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from pymatgen_elfml.nn import PeriodicUNet3D, UNetConfig
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.pretrained import ModelSpec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "vasp-real"
REPO = Path(__file__).resolve().parents[1]

# tests run the network on coarse grids: 0.25 A spacing, 0.5 A SAD smoothing, 2 levels
TINY_SPEC = ModelSpec(
    arch=UNetConfig(base_channels=4, depth=2, groups=2, symm_input=True, symm_stages=True),
    native_spacing=0.25,
    sad_sigma=0.5,
    patch_size=8,
    halo=4,
)


SYNTHETIC = REPO / "tests" / ".synthetic-vasp"  # stand-ins written by the tests themselves (git-ignored)


def _synthetic_ag4(name: str) -> Path:
    """A stand-in for the real Ag4 pair in VASP's layout, written with pymatgen: the same structure
    (tutorials/structures/Ag4_dhcp.vasp), 20x20x60 grid, two equal ELF blocks, a two-block CHGCAR
    (total, magnetisation 0) holding 76 valence electrons; smooth periodic fields, not DFT."""
    from pymatgen.io.vasp.outputs import Chgcar, Elfcar

    path = SYNTHETIC / name
    if path.is_file():
        return path
    SYNTHETIC.mkdir(exist_ok=True)
    structure = Structure.from_file(REPO / "tutorials" / "structures" / "Ag4_dhcp.vasp")
    grids = np.meshgrid(*[np.arange(n) / n for n in (20, 20, 60)], indexing="ij")
    field = 0.5 + 0.1 * (np.cos(2 * np.pi * grids[0]) + np.cos(2 * np.pi * grids[1]) + np.cos(8 * np.pi * grids[2]))
    if name.startswith("Ag4_hcp.ELFCAR"):
        data = Elfcar(structure, {"spin_up": field, "spin_down": field.copy()})
    else:
        data = Chgcar(structure, {"total": field * 76.0 / field.mean(), "diff": np.zeros_like(field)})
    plain = path.with_suffix("")
    data.write_file(plain)
    with open(plain, "rb") as fin, gzip.open(path, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    plain.unlink()
    return path


def vasp_real(name: str) -> Path:
    """Path of a file in ../shared/vasp-real; on a clean clone without it, the Ag4 pair is replaced by
    synthetic files of the same layout (``_synthetic_ag4``) and other files skip the test."""
    path = SHARED / name
    if path.is_file():
        return path
    if name in ("Ag4_hcp.ELFCAR.gz", "Ag4_hcp.CHGCAR.gz"):
        return _synthetic_ag4(name)
    pytest.skip(f"{path} not available")


@pytest.fixture(scope="session")
def Al4() -> Structure:
    """fcc Al, conventional cell (Fm-3m, 192 operators in this setting)."""
    return Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


@pytest.fixture(scope="session")
def Mg2() -> Structure:
    """hcp Mg (P6_3/mmc): hexagonal axes, rotations that are not orthogonal matrices."""
    return Structure(Lattice.hexagonal(3.21, 5.21), ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])


@pytest.fixture(scope="session")
def Ni2_orthorhombic() -> Structure:
    """Body-centred orthorhombic Ni2 (Immm): a 2x1x1 supercell keeps all its point operations."""
    return Structure(Lattice.orthorhombic(2.9, 3.3, 4.1), ["Ni", "Ni"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="session")
def NiAl() -> Structure:
    """B2 NiAl (Pm-3m), two species."""
    return Structure(Lattice.cubic(2.88), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="session")
def CuZn3_triclinic() -> Structure:
    """A skewed triclinic cell (P1) with two species."""
    lat = Lattice.from_parameters(3.7, 4.3, 5.1, 71.0, 96.0, 113.0)
    return Structure(lat, ["Cu", "Zn", "Zn", "Zn"], [[0.1, 0.2, 0.3], [0.6, 0.1, 0.8], [0.4, 0.7, 0.2], [0.85, 0.55, 0.6]])


@pytest.fixture(scope="session")
def Ni36Al36() -> Structure:
    """A 72-atom 3x3x4 supercell of B2 NiAl."""
    return Structure(Lattice.cubic(2.88), ["Ni", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]]) * (3, 3, 4)


@pytest.fixture(scope="session")
def Ag4_vasp(tmp_path_factory) -> Path:
    """The real VASP Ag4 ELFCAR, uncompressed (pymatgen reads .gz too; CLI tests want a plain file)."""
    src = vasp_real("Ag4_hcp.ELFCAR.gz")
    dst = tmp_path_factory.mktemp("vasp") / "ELFCAR_Ag4"
    with gzip.open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny model saved through the same code path as real weights."""
    torch.manual_seed(0)
    net = PeriodicUNet3D(TINY_SPEC.arch)
    path = tmp_path_factory.mktemp("models") / "tiny"
    ElfPredictor(net, TINY_SPEC, device="cpu").save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_predictor(tiny_model_dir) -> ElfPredictor:
    """fp32: the exact identities the tests check (translation equivariance, tiling) do not survive bf16
    rounding on CPUs where ``precision="auto"`` picks bf16 (oneDNN's bf16 kernels sum in tile-dependent order)."""
    return ElfPredictor.from_pretrained(tiny_model_dir, device="cpu", precision="fp32")


def max_op_deviation(field: np.ndarray, ops) -> float:
    """max over operators g and grid points m of |f(g m) - f(m)|."""
    from pymatgen_elfml.symmetry import apply_op

    return max(float(np.abs(apply_op(field, ops, k) - field).max()) for k in range(len(ops)))


@pytest.fixture(scope="session")
def triplets(tmp_path_factory):
    """Triplets of the first six committed reference records (labelled train/val alternately)."""
    import json
    import shutil

    from pymatgen_elfml.data.sources import from_reference
    from pymatgen_elfml.data.triplets import write_triplet
    from pymatgen_elfml.reference.build import read_jsonl

    folder = REPO / "data" / "v2"
    rows = read_jsonl(folder / "manifest.jsonl")[:6]
    if len(rows) < 6:
        pytest.skip("needs committed reference records")
    src = tmp_path_factory.mktemp("ref")
    (src / "records").mkdir()
    with open(src / "manifest.jsonl", "w") as fh:
        for row in rows:
            shutil.copy(folder / row["file"], src / row["file"])
            fh.write(json.dumps(row) + "\n")
    (src / "splits.json").write_text(json.dumps({r["id"]: ("val" if i % 3 == 2 else "train") for i, r in enumerate(rows)}))
    out = tmp_path_factory.mktemp("triplets")
    for t in from_reference(src):
        write_triplet(out, t)
    return out


def held_out_records(ids) -> list:
    """The data/v2 reference records of ``ids`` (a fixed list of test-split ids, so that records computed later do
    not change a golden set), in manifest order; asserts that every id exists and is in the test split."""
    import json

    from pymatgen_elfml.reference.store import read_jsonl, read_record

    folder = REPO / "data" / "v2"
    splits = json.loads((folder / "splits.json").read_text())
    rows = [r for r in read_jsonl(folder / "manifest.jsonl") if r["id"] in ids]
    assert len(rows) == len(ids) and all(splits[r["id"]] == "test" for r in rows)
    return [read_record(folder / r["file"], sha256=r["sha256"]) for r in rows]
