"""The valence table against what GPAW reported for every committed reference record."""

import json
from pathlib import Path

import pytest

from pymatgen_elfml.valence import SETUP_VALENCE, valence_electrons

DATA = Path(__file__).resolve().parents[1] / "data" / "v2"


def test_table_matches_the_valence_gpaw_used_for_the_records():
    from pymatgen_elfml.reference.store import read_jsonl, read_record

    rows = read_jsonl(DATA / "manifest.jsonl")
    seen = {}
    for row in rows:  # one record per element set is enough to pin every entry it uses
        key = row.get("formula") or row["id"]
        if len(seen) >= 60 or key in seen:
            continue
        rec = read_record(DATA / row["file"])
        symbols = [site.specie.symbol for site in rec.structure]
        seen[key] = (valence_electrons(symbols), rec.meta["n_valence"])
    assert len(seen) >= 30 and all(a == b for a, b in seen.values()), {k: v for k, v in seen.items() if v[0] != v[1]}


def test_elements_without_a_setup_are_named():
    assert valence_electrons(["Al", "Al", "Cu"]) == 2 * SETUP_VALENCE["Al"] + SETUP_VALENCE["Cu"]
    with pytest.raises(ValueError, match="no valence electron count for Th, U"):
        valence_electrons(["U", "Th", "La"])
    assert json.dumps(SETUP_VALENCE)  # plain data
