"""The paper's triplet format: prepare from a real VASP run and from reference records."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, vasp_real
from pymatgen.io.vasp.outputs import Chgcar, Elfcar

from pymatgen_elfml.data.__main__ import main as data_main
from pymatgen_elfml.data.triplets import discover, read_triplet
from pymatgen_elfml.reference.build import read_jsonl
from pymatgen_elfml.reference.store import read_record
from pymatgen_elfml.symmetry import SeitzOps


@pytest.fixture(scope="module")
def ag4_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "Ag4_hcp"
    run.mkdir()
    shutil.copy(vasp_real("Ag4_hcp.ELFCAR.gz"), run / "ELFCAR.gz")
    shutil.copy(vasp_real("Ag4_hcp.CHGCAR.gz"), run / "CHGCAR.gz")
    return run


def test_prepare_round_trip_on_the_real_vasp_ag4_pair(ag4_run, tmp_path):
    assert data_main(["prepare", str(ag4_run), "--out", str(tmp_path)]) == 0
    assert discover(tmp_path) == ["Ag4_hcp"]
    t = read_triplet(tmp_path, "Ag4_hcp")
    elfcar = Elfcar.from_file(ag4_run / "ELFCAR.gz")
    chgcar = Chgcar.from_file(ag4_run / "CHGCAR.gz")
    assert isinstance(t.elf, np.memmap) and t.elf.shape == t.sad.shape == (20, 20, 60)
    expected = 0.5 * (elfcar.data["spin_up"] + elfcar.data["spin_down"])
    np.testing.assert_allclose(t.elf, expected, atol=1e-6)
    # the density is CHGCAR / V; this run's PAW setup has 19 valence electrons per Ag (4s 4p 4d 5s)
    np.testing.assert_allclose(t.rho.astype(float).sum() * elfcar.structure.volume / t.rho.size, 76.0, rtol=1e-4)
    np.testing.assert_allclose(t.rho * elfcar.structure.volume, chgcar.data["total"], rtol=1e-5, atol=1e-4)
    # SAD: all-electron count; Seitz operators (R, 4, 4) of P6_3/mmc
    assert t.sad.astype(float).sum() * elfcar.structure.volume / t.sad.size == pytest.approx(4 * 47, rel=1e-5)
    assert t.sym.shape == (24, 4, 4) and len(SeitzOps.from_matrices(t.sym)) == 24
    assert t.meta["grid_commensurate"] and t.meta["sad_sigma"] >= 0.2


def test_read_triplet_reports_bad_files(ag4_run, tmp_path):
    data_main(["prepare", str(ag4_run), "--out", str(tmp_path)])
    np.save(tmp_path / "Ag4_hcp_sad.npy", np.zeros((4, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="grids differ"):
        read_triplet(tmp_path, "Ag4_hcp")
    (tmp_path / "Ag4_hcp_elf.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="unreadable"):
        read_triplet(tmp_path, "Ag4_hcp")


def test_committed_reference_records_match_their_checksums():
    """Every committed record of data/v2 loads, matches its manifest sha256 and reconstructs, from the
    asymmetric unit, exactly the full-grid fields it was written (or, for v1's, migrated) from."""
    from pymatgen_elfml.reference.store import fields_sha256

    folder = REPO / "data" / "v2"
    rows = read_jsonl(folder / "manifest.jsonl")
    if not rows:
        pytest.skip("no committed reference records")
    for row in rows:
        rec = read_record(folder / row["file"], sha256=row["sha256"])
        assert rec.elf.shape == tuple(row["grid"]) and rec.id == row["id"]
        assert 0 <= rec.elf.min() and rec.elf.max() <= 1
        assert fields_sha256(np.rint(rec.elf * 65535), rec.rho) == row["fields_sha256"], row["id"]
        electrons = rec.rho.astype(float).sum() * rec.structure.volume / rec.rho.size
        assert electrons == pytest.approx(row["n_valence"], rel=5e-3), row["id"]


def test_no_committed_record_was_computed_without_empty_bands():
    """GPAW's default band count leaves Ca/Sr/Ba cells no empty band; such records are invalidated and recomputed."""
    pytest.importorskip("gpaw", reason="GPAW is installed by .ci/run")
    from pymatgen_elfml.reference.build import few_band_records

    assert few_band_records(REPO / "data" / "v2") == []


def test_prepare_from_reference_records(tmp_path):
    folder = REPO / "data" / "v2"
    rows = read_jsonl(folder / "manifest.jsonl")
    if len(rows) < 2:
        pytest.skip("no committed reference records")
    src = tmp_path / "src"
    (src / "records").mkdir(parents=True)
    with open(src / "manifest.jsonl", "w") as fh:
        for row in rows[:2]:
            shutil.copy(folder / row["file"], src / row["file"])
            fh.write(json.dumps(row) + "\n")
    shutil.copy(folder / "splits.json", src / "splits.json")
    assert data_main(["prepare", str(src), "--out", str(tmp_path / "out")]) == 0
    stems = discover(tmp_path / "out")
    assert stems == sorted(r["id"] for r in rows[:2])
    t = read_triplet(tmp_path / "out", stems[0])
    assert t.rho is not None and t.meta["split"] in {"train", "val", "test"}
    # resumable: a second run computes nothing already there (a planted marker survives), --force rebuilds
    marker = tmp_path / "out" / f"{stems[0]}_meta.json"
    marker.write_text(json.dumps({**t.meta, "marker": 1}))
    assert data_main(["prepare", str(src), "--out", str(tmp_path / "out")]) == 0
    assert json.loads(marker.read_text())["marker"] == 1
    assert data_main(["prepare", str(src), "--out", str(tmp_path / "out"), "--force"]) == 0
    assert "marker" not in json.loads(marker.read_text())


def test_prepare_reports_and_skips_bad_vasp_runs(tmp_path, NiAl, capsys):
    """Truncated, truncated-gzip, garbage and NaN/5.0 ELFCARs are named and skipped; the good run is written."""
    import gzip

    from pymatgen.io.vasp.outputs import Elfcar

    runs = tmp_path / "runs"
    elf = np.full((8, 8, 8), 0.4)
    for name in ("good", "truncated", "nan"):
        (runs / name).mkdir(parents=True)
        Elfcar(NiAl, {"total": elf}).write_file(runs / name / "ELFCAR")
    text = (runs / "truncated" / "ELFCAR").read_text()
    (runs / "truncated" / "ELFCAR").write_text(text[: len(text) // 2])
    value = text.split()[-1]  # every data value of the file is the same 0.4
    (runs / "nan" / "ELFCAR").write_text(text.replace(value, "NaN", 1).replace(value, "0.50000000000E+01", 1))
    (runs / "gz").mkdir()
    blob = gzip.compress(text.encode())
    (runs / "gz" / "ELFCAR.gz").write_bytes(blob[: len(blob) // 2])
    (runs / "garbage").mkdir()
    (runs / "garbage" / "ELFCAR").write_text("this is not an ELFCAR\n" * 5)
    assert data_main(["prepare", str(runs), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    for name in ("truncated", "nan", "gz", "garbage"):
        assert f"skipped {runs / name}" in err, err
    assert "NaN/inf" in err and discover(tmp_path / "out") == ["good"]
    assert data_main(["prepare", str(runs / "nan"), "--out", str(tmp_path / "out2")]) == 1  # nothing written


def test_triplet_fields_are_validated(NiAl):
    from pymatgen_elfml.data.triplets import make_triplet

    elf = np.full((8, 8, 8), 0.4)
    with pytest.raises(ValueError, match="outside"):
        make_triplet("x", NiAl, elf * 2.65)
    with pytest.raises(ValueError, match="integrates to"):
        make_triplet("x", NiAl, elf, rho=np.full((8, 8, 8), 100.0))
    with pytest.raises(ValueError, match="integrates to"):
        make_triplet("x", NiAl, elf, rho=np.full((8, 8, 8), -0.1))
