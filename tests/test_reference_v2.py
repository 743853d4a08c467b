"""Reference data v2: the structure plan, asymmetric-unit records, migration and grown splits."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import spglib
from pymatgen.core import Lattice, Structure

from pymatgen_elfml.reference.build import FAMILY_WEIGHTS, migrate, priority_order, read_jsonl
from pymatgen_elfml.reference.plan_v2 import (
    ALL_METALS,
    INTERMETALLICS,
    TEMPLATE_RATIOS,
    intermetallic_set,
    random_large_set,
    template_set,
)
from pymatgen_elfml.reference.store import (
    Q,
    Record,
    RecordError,
    fields_sha256,
    migrate_record,
    read_record,
    record_format,
    write_record,
)
from pymatgen_elfml.reference.splits import assign_splits, extend_splits


def _spg(s: Structure) -> int:
    return spglib.get_symmetry_dataset((s.lattice.matrix, s.frac_coords, [x.specie.Z for x in s]), symprec=1e-4).number


def test_template_set_families_volumes_and_ids():
    cands = template_set()
    assert len({c.id for c in cands}) == len(cands) and {c.family for c in cands} == {"template"}
    assert Counter(c.prototype for c in cands).keys() == {"fcc", "bcc", "hcp", "A15", "B1", "B2", "C1"}
    assert {round(c.volume_ratio, 2) for c in cands} == set(TEMPLATE_RATIOS)
    la = {c.prototype: c for c in cands if c.id.startswith("tmpl-La-") and c.volume_ratio == 0.35}
    assert _spg(la["fcc"].structure) == 225 and _spg(la["A15"].structure) == 223 and len(la["A15"].structure) == 8
    full = next(c for c in cands if c.id == "tmpl-La-fcc-v0.75")
    assert la["fcc"].structure.volume == pytest.approx(full.structure.volume * 0.35 / 0.75)
    fluorite = next(c for c in cands if c.id == "tmpl-MgLi2-C1-v0.55")
    assert _spg(fluorite.structure) == 225 and fluorite.split_key == "Li-Mg"
    rocksalt = next(c for c in cands if c.id == "tmpl-LaBe-B1-v0.55")
    assert _spg(rocksalt.structure) == 225 and len(rocksalt.structure) == 2


@pytest.mark.parametrize("prototype, number, n_atoms", [("C15", 227, 6), ("C14", 194, 12), ("A15", 223, 8),
                                                        ("D0_3", 225, 4), ("L2_1", 225, 4), ("D2_d", 191, 6),
                                                        ("C32", 191, 3), ("B2", 221, 2)])
def test_intermetallic_prototypes(prototype, number, n_atoms):
    cands = intermetallic_set({prototype: INTERMETALLICS[prototype][:1]}, ratios=(1.0, 0.6))
    assert [c.volume_ratio for c in cands] == [1.0, 0.6]
    s = cands[0].structure
    assert _spg(s) == number and len(s) == n_atoms
    i, j, _, d = s.get_neighbor_list(6.0, exclude_self=True)
    assert d.min() > 0.75 * 2 * min(x.specie.metallic_radius or 1.5 for x in s)


def test_heusler_formula():
    (c,) = intermetallic_set({"L2_1": ("Cu-Mn-Al",)}, ratios=(1.0,))
    assert c.id == "imet-Cu2MnAl-L2_1-v1.00" and c.structure.composition.reduced_formula == "MnAlCu2"


def test_random_large_cells_are_deterministic_prefix_stable_and_sized():
    pytest.importorskip("pyxtal")
    small = random_large_set(3, ratios=(1.0,))
    big = random_large_set(4, ratios=(1.0, 0.6))
    assert [c.id for c in small] == [c.id for c in big if c.volume_ratio == 1.0][:3]
    for c in big:
        assert 4 <= len(c.structure) <= 12 and c.family == "random-large"
        assert {el.symbol for el in c.structure.composition} <= set(ALL_METALS)


def test_priority_order_interleaves_with_family_weights():
    def cand(family, i):
        return SimpleNamespace(id=f"{family}{i}", family=family, structure=Structure(Lattice.cubic(3 + i), ["Al"], [[0, 0, 0]]))

    cands = [cand(f, i) for f in ("binary", "template", "elemental") for i in range(4)]
    order = [c.id for c in priority_order(cands)]
    assert order[:6] == ["binary0", "template0", "template1", "template2", "elemental0", "elemental1"]
    assert FAMILY_WEIGHTS["template"] == 3


def test_priority_order_puts_new_chemical_systems_first():
    def cand(name, key, a):
        return SimpleNamespace(id=name, family="elemental", split_key=key,
                               structure=Structure(Lattice.cubic(a), ["Al"], [[0, 0, 0]]))

    cands = [cand("al-small", "Al", 3.0), cand("al-big", "Al", 3.5), cand("cu-big", "Cu", 4.0), cand("cu-huge", "Cu", 5.0)]
    assert [c.id for c in priority_order(cands)] == ["al-small", "cu-big", "al-big", "cu-huge"]
    # Al is already computed: Cu's cheapest structure comes before every Al volume
    assert [c.id for c in priority_order(cands, covered={"Al"})] == ["cu-big", "al-small", "al-big", "cu-huge"]


def test_extend_splits_keeps_assignments_and_puts_templates_in_test():
    old = [SimpleNamespace(id=f"e{i}", split_key=f"K{i}", family="elemental") for i in range(20)]
    existing = assign_splits(old)
    grown = old + [SimpleNamespace(id=f"e{i}b", split_key=f"K{i}", family="template") for i in range(20)]
    grown += [SimpleNamespace(id=f"t{i}", split_key=f"T{i}", family="template") for i in range(20)]
    splits = extend_splits(grown, existing)
    assert all(splits[k] == v for k, v in existing.items())
    assert all(splits[f"e{i}b"] == existing[f"e{i}"] for i in range(20))
    assert "test" in {splits[f"t{i}"] for i in range(20)}


def _hcp() -> Structure:
    return Structure(Lattice.hexagonal(3.2, 5.2), ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])


def _write_format1(path, structure, elf, rho, meta):
    np.savez_compressed(path, elf_q=np.rint(elf * Q).astype(np.uint16), rho=rho.astype(np.float32),
                        structure=np.array(json.dumps(structure.as_dict())), meta=np.array(json.dumps({"id": "hcp", **meta})))


def _symmetric_fields(structure, shape=(16, 16, 24)):
    from pymatgen_elfml import symmetry
    from pymatgen_elfml.io import validate

    ops = symmetry.seitz_ops(validate(structure))
    rng = np.random.default_rng(1)
    elf = np.round(symmetry.symmetrize(rng.random(shape), ops), 9)  # symmetric to the last bit
    rho = np.round(symmetry.symmetrize(rng.random(shape), ops), 9).astype(np.float32)
    return elf, rho


def test_format3_record_is_small_exact_and_keeps_symmetry_breaking_points(tmp_path):
    elf, rho = _symmetric_fields(_hcp())
    elf[3, 4, 5] += 1e-3  # numerical noise of a DFT code: kept exactly
    rho[1, 2, 3] *= 1.001
    rho[2, 2, 2] = np.nextafter(rho[2, 2, 2], np.float32(1))  # one ulp, as GPAW's hcp densities do
    path = tmp_path / "r.npz"
    digest = write_record(path, Record("hcp", _hcp(), elf, rho, {"n_valence": 20}))
    rec = read_record(path, sha256=digest)
    codes = np.rint(np.clip(elf, 0, 1) * Q).astype(np.uint16)
    assert fields_sha256(np.rint(rec.elf * Q), rec.rho) == fields_sha256(codes, rho) == rec.meta["fields_sha256"]
    with np.load(path) as npz:
        assert record_format(path) == 3 and npz["elf_au"].shape[1] < rho.size / 4
        assert npz["elf_fix_step"].shape[1] >= 1 and npz["rho_fix_step"].shape[1] >= 2
        deltas = npz["rho_fix"].T.copy().view(np.int32).ravel()  # bit-pattern differences, byte-shuffled
        assert np.any(np.abs(deltas) == 1) and np.all(deltas != 0)


def _write_format2(path, structure, elf, rho, meta):
    """A record as format 2 wrote it: unshuffled arrays, raw float32 at the density's odd points."""
    from pymatgen_elfml import symmetry
    from pymatgen_elfml.reference.store import _storage_ops

    codes = np.rint(np.clip(elf, 0, 1) * Q).astype(np.uint16)
    ops = _storage_ops(structure, codes.shape)
    au, where = symmetry.asymmetric_unit(codes.shape, ops)
    arrays = {"format": np.array(2), "grid": np.array(codes.shape, dtype=np.int32),
              "ops_rot": ops.rotations.astype(np.int8), "ops_trans": ops.translations}
    elf_au, elf_step, elf_fix = symmetry.au_encode(codes, au, where)
    flat = rho.reshape(-1)
    odd = np.flatnonzero(flat.view(np.uint32) != flat[au][where.reshape(-1)].view(np.uint32))
    arrays.update(elf_au=elf_au, elf_fix_step=elf_step, elf_fix=elf_fix, rho_au=flat[au],
                  rho_fix_step=np.diff(odd, prepend=0).astype(np.uint32), rho_fix=flat[odd])
    meta = {"id": "hcp", **meta, "fields_sha256": fields_sha256(codes, rho)}
    np.savez_compressed(path, **arrays, structure=np.array(json.dumps(structure.as_dict())), meta=np.array(json.dumps(meta)))


def test_format2_records_are_read_and_migrated_bit_for_bit(tmp_path):
    elf, rho = _symmetric_fields(_hcp())
    rho[1, 2, 3] *= 1.001
    rho[0, 0, 5] = np.nextafter(rho[0, 0, 5], np.float32(0))
    (tmp_path / "records").mkdir()
    path = tmp_path / "records" / "hcp.npz"
    _write_format2(path, _hcp(), elf, rho, {"n_valence": 20})
    from pymatgen_elfml.reference.store import sha256_file

    assert record_format(path) == 2 and np.array_equal(read_record(path).rho, rho)
    row = {"id": "hcp", "file": "records/hcp.npz", "sha256": sha256_file(path)}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(row) + "\n")
    assert migrate(tmp_path, progress=False) == {"migrated": 1, "already": 0}
    (new_row,) = read_jsonl(tmp_path / "manifest.jsonl")
    after = read_record(path, sha256=new_row["sha256"])
    assert record_format(path) == 3 and np.array_equal(after.rho, rho)
    assert new_row["fields_sha256"] == after.meta["fields_sha256"] == fields_sha256(np.rint(elf * Q).astype(np.uint16), rho)


def test_migration_is_verified_resumable_and_refuses_foreign_files(tmp_path):
    elf, rho = _symmetric_fields(_hcp())
    (tmp_path / "records").mkdir()
    path = tmp_path / "records" / "hcp.npz"
    _write_format1(path, _hcp(), elf, rho, {"n_valence": 20})
    from pymatgen_elfml.reference.store import sha256_file

    row = {"id": "hcp", "file": "records/hcp.npz", "sha256": sha256_file(path)}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(row) + "\n")
    before = read_record(path)
    assert migrate(tmp_path, progress=False) == {"migrated": 1, "already": 0}
    assert migrate(tmp_path, progress=False) == {"migrated": 0, "already": 1}
    (new_row,) = read_jsonl(tmp_path / "manifest.jsonl")
    after = read_record(path, sha256=new_row["sha256"])
    assert np.array_equal(after.elf, before.elf) and np.array_equal(after.rho, before.rho)
    assert new_row["fields_sha256"] == after.meta["fields_sha256"] and after.meta["migrated_from_sha256"] == row["sha256"]
    _write_format1(path, _hcp(), elf * 0.5, rho, {})  # a different file under the same name
    (tmp_path / "manifest.jsonl").write_text(json.dumps(new_row) + "\n")
    with pytest.raises(RecordError, match="checksum"):
        migrate(tmp_path, progress=False)
    with pytest.raises(RecordError, match="nope.npz"):
        migrate_record(tmp_path / "records" / "nope.npz")


def test_committed_datasheet_is_regenerated_from_the_manifest(tmp_path):
    """data/v2/README.md is what ``python -m pymatgen_elfml.reference datasheet`` writes from the committed files."""
    from pathlib import Path

    from pymatgen_elfml.reference.datasheet import load_convergence, summarize, write_datasheet

    repo = Path(__file__).resolve().parents[1]
    folder = repo / "data" / "v2"
    copy = tmp_path / "v2"
    copy.mkdir()
    for name in ("manifest.jsonl", "failures.jsonl", "invalidated.jsonl", "splits.json", "structures.json"):
        if (folder / name).is_file():
            (copy / name).write_bytes((folder / name).read_bytes())
    (copy / "records").symlink_to(folder / "records")
    write_datasheet(copy, load_convergence((repo / "benchmarks" / "results").glob("reference_convergence*.json")))
    assert (copy / "README.md").read_text() == (folder / "README.md").read_text(), \
        "regenerate it: python -m pymatgen_elfml.reference datasheet data/v2 --convergence benchmarks/results/reference_convergence*.json"
    s = summarize(copy)
    assert sum(s["bands"].values()) == s["n"] == len(read_jsonl(folder / "manifest.jsonl"))
    done = {r["id"] for r in read_jsonl(folder / "manifest.jsonl")}
    assert all(r["settings"].get("bands") == "uncapped" for r in read_jsonl(folder / "manifest.jsonl")
               if r["id"] in {g["id"] for g in s["invalidated"]}), "an invalidated record came back with GPAW's capped bands"
    assert done <= set(json.loads((folder / "splits.json").read_text()))


def test_coverage_pairs_thin_elements_with_new_partners_and_training_only_templates(tmp_path):
    from pymatgen_elfml.reference import coverage, structures
    from pymatgen_elfml.reference.__main__ import main

    counts = coverage.train_cell_counts(["Al", "Al-Mg", "Mg", "La", "Be-La", "Y", "Y"], ["train", "train", "train", "test",
                                                                                        "test", "train", "train"])
    assert counts == Counter({"Al": 2, "Mg": 2, "Y": 2, "La": 0, "Be": 0})
    pairs = coverage.coverage_pairs(counts, planned_keys={"Be-La", "Al-La"}, min_cells=2, n_partners=2)
    # thin by count then symbol: Be, La; partners Al, Mg (Y is third); La's first partner (Mg) by rotation
    assert pairs == [("Be", "Al"), ("La", "Mg")]
    assert coverage.coverage_pairs(counts, planned_keys={"Be-La", "La-Mg"}, min_cells=2, n_partners=2)[1] == ("La", "Al")
    cands = coverage.coverage_set([("La", "Mg")])
    assert len(cands) == len(coverage.COVERAGE_PROTOTYPES) * len(coverage.COVERAGE_RATIOS)
    assert {c.split_key for c in cands} == {"La-Mg"} and {c.family for c in cands} == {"template"}
    c1 = [c for c in cands if c.prototype == "C1"]
    assert [c.structure.composition.reduced_formula for c in c1] == ["LaMg2"] * len(coverage.COVERAGE_RATIOS)
    v = {c.volume_ratio: c.structure.volume for c in c1}
    assert v[0.35] / v[0.75] == pytest.approx(0.35 / 0.75)
    # the CLI appends the candidates to the plan and puts them in train only, keeping every assignment
    planned = [c for c in template_set(metals=("Al", "Mg"), ratios=(0.75,)) if c.split_key in ("Al", "Mg")]
    folder = tmp_path / "v"
    structures.write_set(planned, folder / "structures.json")
    splits = {c.id: ("train" if c.split_key != "Mg" else "test") for c in planned}
    (folder / "splits.json").write_text(json.dumps(splits))
    rows = [{"id": c.id, "split_key": c.split_key} for c in planned]
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["coverage", str(folder), "--min-train-cells", "3", "--ids-out", str(tmp_path / "ids.json")]) == 0
    added = json.loads((tmp_path / "ids.json").read_text())
    grown = json.loads((folder / "splits.json").read_text())
    assert added and all(grown[i] == "train" for i in added) and all(grown[k] == v for k, v in splits.items())
    assert [c.id for c in structures.read_set(folder / "structures.json")] == [c.id for c in planned] + added
    assert {i.split("-")[1] for i in added} == {"MgAl", "MgAl2"}  # Mg (0 training cells) with Al


def test_coverage_cli_more_partners_reach_an_element_whose_first_partner_system_is_planned(tmp_path):
    from pymatgen_elfml.reference import coverage, structures
    from pymatgen_elfml.reference.__main__ import main

    planned = [c for c in template_set(metals=("Al", "Y"), ratios=(0.75,)) if c.split_key in ("Al", "Y")]
    planned += coverage.coverage_set([("La", "Y")], ratios=(0.75,))
    folder = tmp_path / "v"
    structures.write_set(planned, folder / "structures.json")
    (folder / "splits.json").write_text(json.dumps({c.id: ("test" if "La" in c.split_key else "train") for c in planned}))
    (folder / "manifest.jsonl").write_text("".join(json.dumps({"id": c.id, "split_key": c.split_key}) + "\n"
                                                   for c in planned))
    ids = tmp_path / "ids.json"
    # La has no training cell; Y (more template cells than Al) is the best-covered partner and La-Y is planned already
    assert main(["coverage", str(folder), "--min-train-cells", "1", "--partners", "1", "--ids-out", str(ids)]) == 0
    assert json.loads(ids.read_text()) == []
    assert main(["coverage", str(folder), "--min-train-cells", "1", "--partners", "2", "--ids-out", str(ids)]) == 0
    added = json.loads(ids.read_text())
    assert added and {c.split_key for c in structures.read_set(folder / "structures.json") if c.id in added} == {"Al-La"}


def test_host_rich_compounds_of_elements_whose_elemental_cells_are_all_held_out(tmp_path):
    from pymatgen_elfml.reference import coverage, structures
    from pymatgen_elfml.reference.__main__ import main

    keys = ["Al", "Al", "Mg", "Y", "La", "Be-La", "Li", "Li-Mg"]
    split = ["train", "train", "train", "train", "test", "train", "val", "train"]
    assert coverage.held_out_elements(keys, split) == ["La", "Li"]  # Be has no one-element system: not a host
    counts = coverage.train_cell_counts(keys, split)
    pairs = coverage.host_pairs(["La", "Li"], counts, planned_keys={"Al-La", "Li-Mg"}, n_partners=2, min_cells=1)
    # partners by training count then symbol: Al, Mg (2 each), then Be, Y (1); hosts never partner each other
    assert pairs == [("La", "Mg"), ("La", "Be"), ("Li", "Al"), ("Li", "Be")]
    assert coverage.host_pairs(["La"], counts, {"Al-La"}, n_partners=2, min_cells=2) == [("La", "Mg")]  # fewer qualify
    with pytest.raises(ValueError, match="no partner for La"):
        coverage.host_pairs(["La"], counts, planned_keys={"Al-La", "La-Mg"}, n_partners=2, min_cells=2)
    cands = coverage.host_set([("V", "Al")])
    assert [c.id for c in cands] == [f"bin-V3Al-L1_2-v{r:.2f}" for r in coverage.HOST_RATIOS]
    assert {c.family for c in cands} == {"binary"} and {c.split_key for c in cands} == {"Al-V"}
    v_atoms = [s for s in cands[0].structure if s.specie.symbol == "V"]
    assert len(v_atoms) == 3 and len(cands[0].structure) == 4  # A3B: the host on the face centres
    # the CLI: train-only additions, every earlier assignment kept
    planned = [c for c in template_set(metals=("Al", "Mg"), ratios=(0.75,)) if c.split_key in ("Al", "Mg")]
    folder = tmp_path / "v"
    structures.write_set(planned, folder / "structures.json")
    splits = {c.id: ("train" if c.split_key != "Mg" else "test") for c in planned}
    (folder / "splits.json").write_text(json.dumps(splits))
    (folder / "manifest.jsonl").write_text("".join(json.dumps({"id": c.id, "split_key": c.split_key}) + "\n" for c in planned))
    assert main(["coverage", str(folder), "--host", "--min-train-cells", "1", "--ids-out", str(tmp_path / "ids.json")]) == 0
    added = json.loads((tmp_path / "ids.json").read_text())
    grown = json.loads((folder / "splits.json").read_text())
    assert sorted(added) == [f"bin-Mg3Al-L1_2-v{r:.2f}" for r in sorted(coverage.HOST_RATIOS)]
    assert all(grown[i] == "train" for i in added) and all(grown[k] == v for k, v in splits.items())
