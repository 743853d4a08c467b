"""Reference structure sets: counts, ids, volumes, symmetry, distances, splits, I/O."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

import numpy as np
import pytest
import spglib

from pymatgen_elfml.io import validate
from pymatgen_elfml.reference.splits import assign_splits
from pymatgen_elfml.reference.structures import (
    DEFAULT_ELEMENTS,
    DEFAULT_PAIRS,
    DEFAULT_N_RANDOM,
    VOLUME_RATIOS,
    all_candidates,
    binary_set,
    elemental_set,
    metallic_radius,
    prototype_structure,
    random_set,
    read_set,
    write_set,
)


@pytest.fixture(scope="module")
def cands():
    return all_candidates()


def _spg(structure) -> int:
    cell = (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])
    return spglib.get_symmetry_dataset(cell, symprec=1e-4).number


def _min_distance(structure) -> float:
    _, _, _, dists = structure.get_neighbor_list(8.0, exclude_self=True)
    return float(dists.min())


def test_counts_ids_and_fields(cands):
    counts = Counter(c.family for c in cands)
    assert counts == {
        "elemental": len(DEFAULT_ELEMENTS) * 4 * len(VOLUME_RATIOS),
        "binary": len(DEFAULT_PAIRS) * 3 * 3,
        "random": DEFAULT_N_RANDOM * 3,
    }
    ids = [c.id for c in cands]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", i) for i in ids)
    assert ids[0] == "elem-Li-fcc-v1.00"
    assert "bin-NiAl-B2-v1.00" in ids and "bin-Ni3Al-L1_2-v0.60" in ids
    for c in cands:
        comp = c.structure.composition
        assert c.formula == comp.reduced_formula
        assert c.split_key == "-".join(sorted(el.symbol for el in comp.elements))
        assert c.id.endswith(f"-v{c.volume_ratio:.2f}")


def test_every_structure_valid_and_small(cands):
    for c in cands:
        validate(c.structure)  # raises on overlap (< 0.5 A), disorder, bad species
        assert c.structure.is_ordered
        assert 1 <= len(c.structure) <= 8
        assert _min_distance(c.structure) >= 0.5
    assert max(len(c.structure) for c in cands if c.family == "random") <= 4


def test_volume_ratios_and_fixed_fractional_coords(cands):
    series = defaultdict(list)
    for c in cands:
        series[c.id.rsplit("-v", 1)[0]].append(c)
    for members in series.values():
        ref = next(c for c in members if c.volume_ratio == 1.0)
        for c in members:
            assert c.structure.volume / ref.structure.volume == pytest.approx(c.volume_ratio, rel=1e-6)
            assert np.allclose(c.structure.frac_coords, ref.structure.frac_coords)
            scaled = ref.structure.lattice.matrix * c.volume_ratio ** (1 / 3)
            assert np.allclose(c.structure.lattice.matrix, scaled)  # isotropic


@pytest.mark.parametrize("prototype", ["fcc", "bcc", "hcp", "sc", "dhcp", "diamond"])
def test_elemental_reference_volume_from_metallic_radius(prototype):
    s = prototype_structure(prototype, ["Al"])
    assert _min_distance(s) == pytest.approx(2 * metallic_radius("Al"), rel=1e-9)
    half = prototype_structure(prototype, ["Al"], 0.5)
    assert half.volume == pytest.approx(0.5 * s.volume, rel=1e-9)


@pytest.mark.parametrize("prototype", ["B2", "L1_2", "L1_0"])
def test_binary_reference_volume_from_mean_radius(prototype):
    s = prototype_structure(prototype, ["Ni", "Al"])
    d = metallic_radius("Ni") + metallic_radius("Al")
    assert _min_distance(s) == pytest.approx(d, rel=1e-9)


def test_metallic_radius_falls_back_to_atomic_radius():
    assert metallic_radius("Al") == pytest.approx(1.43)
    assert metallic_radius("Sn") == pytest.approx(1.45)  # pymatgen has no metallic radius for Sn


@pytest.mark.parametrize(
    ("prototype", "species", "number", "n_atoms"),
    [
        ("fcc", ["Cu"], 225, 1),
        ("bcc", ["Na"], 229, 1),
        ("hcp", ["Mg"], 194, 2),
        ("sc", ["Al"], 221, 1),
        ("dhcp", ["La"], 194, 4),
        ("diamond", ["Sn"], 227, 2),
        ("B2", ["Ni", "Al"], 221, 2),
        ("L1_2", ["Cu", "Au"], 221, 4),
        ("L1_0", ["Cu", "Au"], 123, 2),
        ("C15", ["Cu", "Mg"], 227, 6),
        ("A15", ["Nb", "Sn"], 223, 8),
    ],
)
def test_prototype_space_groups(prototype, species, number, n_atoms):
    for ratio in (1.0, 0.6):
        s = prototype_structure(prototype, species, ratio)
        assert len(s) == n_atoms
        assert _spg(s) == number


def test_hcp_and_l10_geometry():
    hcp = prototype_structure("hcp", ["Mg"])
    assert hcp.lattice.c / hcp.lattice.a == pytest.approx(math.sqrt(8 / 3))
    l10 = prototype_structure("L1_0", ["Cu", "Au"])
    assert l10.lattice.c / l10.lattice.a == pytest.approx(math.sqrt(2))  # c = a_fcc, a = a_fcc / sqrt(2)
    l12 = prototype_structure("L1_2", ["Cu", "Au"])
    assert (l12.composition["Cu"], l12.composition["Au"]) == (3, 1)
    c15 = prototype_structure("C15", ["Cu", "Mg"]).composition  # larger atom on the Mg sites
    assert (c15["Mg"], c15["Cu"]) == (2, 4)


def test_default_sets_space_groups(cands):
    expected = {"fcc": 225, "bcc": 229, "hcp": 194, "sc": 221, "B2": 221, "L1_2": 221, "L1_0": 123}
    for c in cands:
        if c.prototype in expected and c.volume_ratio in (1.0, 0.5):  # compression keeps symmetry
            assert _spg(c.structure) == expected[c.prototype], c.id


def test_random_structures_distances_volume_and_coverage(cands):
    rand = [c for c in cands if c.family == "random"]
    numbers = set()
    for c in rand:
        s = c.structure
        numbers.add(_spg(s))
        assert c.id.startswith(f"rand-sg{_spg(s)}-")
        if c.volume_ratio != 1.0:
            continue
        radii = np.array([metallic_radius(site.specie.symbol) for site in s])
        v0 = sum(4 / 3 * math.pi * radii**3) / 0.68
        assert s.volume == pytest.approx(v0, rel=1e-6)
        i, j, _, d = s.get_neighbor_list(8.0, exclude_self=True)
        assert np.all(d >= 0.8 * (radii[i] + radii[j]) - 1e-6)
    assert len(numbers) >= 8
    assert any(len(c.structure.composition.elements) >= 2 for c in rand)


def test_random_set_is_deterministic_and_prefix_stable():
    a = random_set(6, seed=3)
    b = random_set(6, seed=3)
    assert [c.id for c in a] == [c.id for c in b]
    for x, y in zip(a, b):
        assert np.array_equal(x.structure.frac_coords, y.structure.frac_coords)
        assert np.array_equal(x.structure.lattice.matrix, y.structure.lattice.matrix)
    assert [c.id for c in random_set(3, seed=3)] == [c.id for c in a[:9]]
    assert [c.id for c in random_set(6, seed=4)] != [c.id for c in a]


def test_random_set_larger_cells_and_bad_arguments():
    big = random_set(4, seed=1, max_atoms=8, volume_ratios=(1.0,))
    assert len(big) == 4 and all(len(c.structure) <= 8 for c in big)
    with pytest.raises(ValueError):
        random_set(1, max_atoms=13)
    with pytest.raises(ValueError):
        prototype_structure("bcc", ["Al"], 0.0)
    with pytest.raises(ValueError):
        prototype_structure("B2", ["Al"])
    with pytest.raises(ValueError):
        elemental_set(["Al"], prototypes=("nope",))


def test_small_sets_and_orderings():
    elem = elemental_set(["Al"], prototypes=("fcc", "hcp"), volume_ratios=(1.0, 0.5))
    expected = ["elem-Al-fcc-v1.00", "elem-Al-fcc-v0.50", "elem-Al-hcp-v1.00", "elem-Al-hcp-v0.50"]
    assert [c.id for c in elem] == expected
    binary = binary_set([("Cu", "Au")], prototypes=("L1_2",), volume_ratios=(0.8,))
    assert [c.id for c in binary] == ["bin-Cu3Au-L1_2-v0.80"] and binary[0].split_key == "Au-Cu"
    extra = binary_set([("Ni", "Al")], prototypes=("C15", "A15"), volume_ratios=(1.0,))
    assert [c.id for c in extra] == ["bin-Ni2Al-C15-v1.00", "bin-Ni3Al-A15-v1.00"]  # Al (larger) on the Mg sites


def test_assign_splits_groups_and_fractions(cands):
    splits = assign_splits(cands)
    assert set(splits) == {c.id for c in cands}
    where = defaultdict(set)
    for c in cands:
        where[c.split_key].add(splits[c.id])
    assert all(len(s) == 1 for s in where.values())
    counts = Counter(splits.values())
    assert counts["test"] >= 0.1 * len(cands)
    assert counts["val"] >= 0.1 * len(cands)
    assert counts["train"] >= 0.7 * len(cands)
    assert assign_splits(cands) == splits
    assert assign_splits(cands, seed=1) != splits
    with pytest.raises(ValueError):
        assign_splits(cands, fractions=(0.5, 0.2, 0.2))


def test_write_read_round_trip(cands, tmp_path):
    subset = cands[::37] + [c for c in cands if c.family == "random"][:3]
    path = write_set(subset, tmp_path / "sets" / "candidates.json")
    assert [p.name for p in path.parent.iterdir()] == ["candidates.json"]  # no temp file left
    back = read_set(path)
    assert [c.id for c in back] == [c.id for c in subset]
    for x, y in zip(subset, back):
        assert (x.family, x.prototype, x.formula, x.volume_ratio, x.split_key) == (
            y.family, y.prototype, y.formula, y.volume_ratio, y.split_key
        )  # fmt: skip
        assert np.allclose(x.structure.lattice.matrix, y.structure.lattice.matrix, atol=0, rtol=0)
        assert np.allclose(x.structure.frac_coords, y.structure.frac_coords, atol=0, rtol=0)
        assert [s.specie.symbol for s in x.structure] == [s.specie.symbol for s in y.structure]
    write_set(subset[:2], path)  # overwrite in place
    assert len(read_set(path)) == 2
