"""Reference engine (GPAW), record storage and the resumable builder."""

import json
from dataclasses import dataclass

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pymatgen_elfml.reference.engine import ReferenceSettings, kpoint_mesh, reference_grid
from pymatgen_elfml.reference.store import Record, RecordError, read_record, write_record


@dataclass(frozen=True)
class Cand:
    id: str
    structure: Structure
    family: str = "elemental"
    prototype: str = "fcc"
    formula: str = ""
    volume_ratio: float = 1.0
    split_key: str = ""


def al_fcc() -> Structure:
    return Structure(Lattice.from_parameters(2.864, 2.864, 2.864, 60, 60, 60), ["Al"], [[0, 0, 0]])


def na_bcc_compressed() -> Structure:
    a = 4.23 * 0.6 ** (1 / 3)  # V/V0 = 0.6
    return Structure(Lattice.from_parameters(*([a * 3**0.5 / 2] * 3), 109.4712206, 109.4712206, 109.4712206), ["Na"], [[0, 0, 0]])


def test_kpoint_mesh_and_grid():
    s = al_fcc()
    assert kpoint_mesh(s.lattice.matrix, 0.3) == (9, 9, 9)
    shape = reference_grid(s, ReferenceSettings())
    assert all(n % 8 == 0 for n in shape) and max(np.array(s.lattice.abc) / shape) <= 0.1


def test_record_round_trip_and_checksum(tmp_path):
    rng = np.random.default_rng(0)
    elf = rng.random((8, 8, 16))
    rho = np.exp(rng.normal(size=(8, 8, 16)) * 3) - 0.05  # PAW densities can be slightly negative
    path = tmp_path / "x.npz"
    digest = write_record(path, Record("x", al_fcc(), elf, rho, {"energy_eV": -3.0}))
    rec = read_record(path, sha256=digest)
    assert rec.id == "x" and rec.meta["energy_eV"] == -3.0 and rec.structure == al_fcc()
    assert np.abs(rec.elf - elf).max() <= 0.5 / 65535 + 1e-7
    np.testing.assert_allclose(rec.rho, rho, rtol=1e-7)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(RecordError, match="checksum"):
        read_record(path, sha256=digest)
    with pytest.raises(RecordError, match="unreadable"):
        read_record(path)


gpaw = pytest.importorskip("gpaw", reason="GPAW is installed by .ci/run; see README")


@pytest.mark.slow
def test_gpaw_reference_al_and_compressed_na_through_the_builder(tmp_path):
    from pymatgen_elfml.reference.build import build, read_jsonl

    cands = [Cand("al-fcc", al_fcc()), Cand("na-bcc-v0.6", na_bcc_compressed(), prototype="bcc", volume_ratio=0.6)]
    counts = build(cands, tmp_path, workers=2, timeout_s=600, progress=False)
    assert counts == {"done": 2, "failed": 0, "skipped": 0}, (tmp_path / "failures.jsonl").read_text() if counts["failed"] else ""
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "manifest.jsonl")}
    for cid, valence in (("al-fcc", 3), ("na-bcc-v0.6", 7)):  # GPAW's Na setup has 2p6 3s1 in valence
        row = rows[cid]
        rec = read_record(tmp_path / row["file"], sha256=row["sha256"])
        assert row["n_valence"] == valence
        assert rec.elf.min() >= 0 and rec.elf.max() <= 1 and np.all(np.isfinite(rec.elf))
        electrons = rec.rho.astype(float).sum() * rec.structure.volume / rec.rho.size
        assert electrons == pytest.approx(valence, rel=2e-3)
        assert row["wall_time_s"] > 0 and row["settings"]["ecut"] == 300.0
    # Al: interstitial ELF is electron-gas like (paper/DESIGN: ~0.5 away from atoms)
    al = read_record(tmp_path / rows["al-fcc"]["file"])
    assert 0.3 < float(np.median(al.elf)) < 0.7
    # resumable: a second call computes nothing
    assert build(cands, tmp_path, workers=2, progress=False) == {"done": 0, "failed": 0, "skipped": 2}


@pytest.mark.slow
def test_builder_records_failures_and_timeouts(tmp_path):
    from pymatgen_elfml.reference.build import build, read_jsonl

    counts = build([Cand("al-timeout", al_fcc())], tmp_path, workers=1, timeout_s=0.5, progress=False)
    assert counts["failed"] == 1
    assert "timeout" in read_jsonl(tmp_path / "failures.jsonl")[0]["reason"]
    assert not (tmp_path / "records" / "al-timeout.npz").exists()
    assert json.dumps(read_jsonl(tmp_path / "manifest.jsonl")) == "[]"


def test_build_cli_max_atoms_keeps_only_small_cells(tmp_path, capsys):
    from pymatgen_elfml.reference.__main__ import main
    from pymatgen_elfml.reference.structures import _candidate, write_set

    al2 = al_fcc().copy()
    al2.make_supercell([2, 1, 1])
    cands = [_candidate("a1", "elemental", "fcc", 1.0, al_fcc()), _candidate("a2", "elemental", "fcc", 1.0, al2),
             _candidate("n1", "elemental", "bcc", 0.6, na_bcc_compressed())]
    write_set(cands, tmp_path / "set.json")
    # --limit 0 starts nothing: "skipped" counts the candidates left out of this call
    args = ["build", "--structures", str(tmp_path / "set.json"), "--out", str(tmp_path / "out"), "--limit", "0"]
    assert main([*args, "--max-atoms", "1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"done": 0, "failed": 0, "skipped": 2}
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"done": 0, "failed": 0, "skipped": 3}


def ca_fcc() -> Structure:
    return Structure(Lattice.from_parameters(*([3.9] * 3), 60, 60, 60), ["Ca"], [[0, 0, 0]])


def test_band_count_leaves_empty_bands_where_gpaws_default_leaves_none():
    from pymatgen_elfml.reference.engine import band_count, gpaw_default_bands

    # Ca's setup (3s2 3p6 4s2, 10 electrons) has 5 bound partial-wave orbitals: GPAW's cap gives 5 bands, all full
    assert gpaw_default_bands(["Ca"]) == 5 and gpaw_default_bands(["Mg"]) == 8 and gpaw_default_bands(["Ca", "Mg"]) == 13
    assert band_count(ca_fcc(), ReferenceSettings()) == 10  # ceil(0.6 * 10) + 4
    assert band_count(ca_fcc(), ReferenceSettings(bands="gpaw")) is None
    with pytest.raises(ValueError, match="bands"):
        ReferenceSettings(bands="many")


@pytest.mark.slow
def test_uncapped_bands_change_a_calcium_metal(tmp_path):
    """With GPAW's default (5 bands for 10 electrons) fcc Ca is computed as a band insulator."""
    from pymatgen_elfml.reference.engine import compute_reference

    cheap = {"ecut": 200.0, "kspacing": 0.5, "grid_spacing": 0.2}
    elf, _, meta = compute_reference(ca_fcc(), ReferenceSettings(**cheap))
    elf_capped, _, meta_capped = compute_reference(ca_fcc(), ReferenceSettings(**cheap, bands="gpaw"))
    assert meta["nbands"] == 10 and meta_capped["nbands"] == 5 and meta["settings"]["bands"] == "uncapped"
    assert np.abs(elf - elf_capped).mean() > 0.005  # measured 0.02 at production settings


def test_invalidate_removes_rows_and_records_and_logs_them(tmp_path):
    from pymatgen_elfml.reference.build import append_jsonl, few_band_records, invalidate, read_jsonl

    (tmp_path / "records").mkdir()
    for cid, structure in (("ca", ca_fcc()), ("al", al_fcc())):
        rho = np.full((8, 8, 8), 1.0)
        write_record(tmp_path / "records" / f"{cid}.npz", Record(cid, structure, np.full((8, 8, 8), 0.5), rho, {}))
        n_valence = 10 if cid == "ca" else 3
        append_jsonl(tmp_path / "manifest.jsonl", {"id": cid, "file": f"records/{cid}.npz", "n_valence": n_valence,
                                                    "settings": {"xc": "PBE"}})
    assert few_band_records(tmp_path) == ["ca"]  # Al: 4 bands for 3 electrons, 2.5 empty
    assert invalidate(tmp_path, ["ca", "unknown"], "too few bands") == 1
    assert [r["id"] for r in read_jsonl(tmp_path / "manifest.jsonl")] == ["al"]
    assert not (tmp_path / "records" / "ca.npz").exists() and (tmp_path / "records" / "al.npz").exists()
    assert read_jsonl(tmp_path / "invalidated.jsonl")[0]["reason"] == "too few bands"
    assert few_band_records(tmp_path) == []


def test_build_cli_ids_from_a_json_list_or_jsonl_rows_and_invalidate_cli(tmp_path, capsys):
    from pymatgen_elfml.reference.__main__ import main
    from pymatgen_elfml.reference.build import append_jsonl, read_jsonl
    from pymatgen_elfml.reference.structures import _candidate, write_set

    cands = [_candidate("a1", "elemental", "fcc", 1.0, al_fcc()), _candidate("n1", "elemental", "bcc", 0.6, na_bcc_compressed())]
    write_set(cands, tmp_path / "set.json")
    (tmp_path / "ids.json").write_text(json.dumps(["n1", "not-planned"]))
    append_jsonl(tmp_path / "rows.jsonl", {"id": "a1", "reason": "x"})
    args = ["build", "--structures", str(tmp_path / "set.json"), "--out", str(tmp_path / "out"), "--limit", "0"]
    for ids, unknown in (("ids.json", True), ("rows.jsonl", False)):
        assert main([*args, "--ids", str(tmp_path / ids)]) == 0
        out = capsys.readouterr()
        assert json.loads(out.out.strip().splitlines()[-1])["skipped"] == 1  # one candidate selected, none started
        assert ("not among the candidates" in out.err) == unknown
    folder = tmp_path / "out"
    append_jsonl(folder / "manifest.jsonl", {"id": "n1", "file": "records/n1.npz", "wall_time_s": 1.0})
    (folder / "records" / "n1.npz").write_bytes(b"stale")
    assert main(["invalidate", str(folder), "--ids", str(tmp_path / "ids.json"), "--reason", "test"]) == 0
    assert read_jsonl(folder / "manifest.jsonl") == [] and not (folder / "records" / "n1.npz").exists()
    assert read_jsonl(folder / "invalidated.jsonl")[0]["reason"] == "test"
