"""The reference build as a jobflow Flow: same per-structure step and folder layout as ``build``."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

pytest.importorskip("jobflow", reason="optional extra: pip install '.[workflows]'")

from jobflow.managers.local import run_locally  # noqa: E402

from pymatgen_elfml.reference.build import read_jsonl  # noqa: E402
from pymatgen_elfml.reference.engine import ReferenceError, ReferenceSettings, reference_grid  # noqa: E402
from pymatgen_elfml.reference.store import read_record  # noqa: E402
from pymatgen_elfml.reference.structures import Candidate  # noqa: E402
from pymatgen_elfml.reference.workflow import reference_flow  # noqa: E402


def fake_compute(structure, settings, txt=None):
    """A stand-in for GPAW: a smooth symmetric field with the right electron count; Na fails to
    converge, K crashes with an unexpected error."""
    if "Na" in structure.composition:
        raise ReferenceError("SCF did not converge (fake)")
    if "K" in structure.composition:
        raise RuntimeError("segfault-like crash (fake)")
    shape = reference_grid(structure, settings)
    grids = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    field = sum(np.cos(2 * np.pi * g) for g in grids) / 6 + 0.5
    rho = field * 3.0 / (field.mean() * structure.volume)
    meta = {"settings": asdict(settings), "energy_eV": -1.0, "n_valence": 3.0, "wall_time_s": 0.01, "gpaw_version": "fake"}
    return field, rho, meta


def _cand(cid, element, a):
    s = Structure(Lattice.cubic(a), [element], [[0, 0, 0]])
    return Candidate(cid, "elemental", "sc", element, 1.0, s, element)


def _run(flow):
    return run_locally(flow, create_folders=False, ensure_success=True, log=False)


def test_flow_writes_the_same_folder_as_build_and_resumes(tmp_path):
    cands = [_cand("al-sc", "Al", 2.7), _cand("na-sc", "Na", 3.0), _cand("al-big", "Al", 2.9), _cand("k-sc", "K", 4.0)]
    flow = reference_flow(cands, tmp_path, compute=f"{__name__}:fake_compute")
    assert len(flow.jobs) == 5
    responses = _run(flow)
    assert responses[flow.output.uuid][1].output == {"done": 2, "failed": 2, "lost": 0}
    rows = read_jsonl(tmp_path / "manifest.jsonl")
    assert sorted(r["id"] for r in rows) == ["al-big", "al-sc"]
    reasons = {r["id"]: r["reason"] for r in read_jsonl(tmp_path / "failures.jsonl")}
    assert reasons["k-sc"].startswith("RuntimeError: segfault-like") and not (tmp_path / "records" / "k-sc.npz").exists()
    assert reasons["na-sc"].startswith("SCF did not converge")
    rec = read_record(tmp_path / rows[0]["file"], sha256=rows[0]["sha256"])
    assert rec.elf.shape == tuple(rows[0]["grid"]) and rows[0]["spacegroup"] == 221
    assert rec.rho.mean() * rec.structure.volume == pytest.approx(3.0, rel=1e-5)
    again = reference_flow(cands + [_cand("al-new", "Al", 3.1)], tmp_path, compute=f"{__name__}:fake_compute")
    assert [j.name for j in again.jobs] == ["reference al-new", "collect manifest"]  # nothing computed twice


@pytest.mark.slow
def test_flow_runs_a_real_gpaw_job(tmp_path):
    pytest.importorskip("gpaw", reason="GPAW is installed by .ci/run; see README")
    s = Structure(Lattice.from_parameters(2.864, 2.864, 2.864, 60, 60, 60), ["Al"], [[0, 0, 0]])
    cand = Candidate("al-fcc", "elemental", "fcc", "Al", 1.0, s, "Al")
    settings = ReferenceSettings(ecut=200.0, kspacing=0.5, grid_spacing=0.2)
    _run(reference_flow([cand], tmp_path, settings=settings))
    (row,) = read_jsonl(tmp_path / "manifest.jsonl")
    rec = read_record(tmp_path / row["file"], sha256=row["sha256"])
    assert row["n_valence"] == 3.0 and rec.rho.mean() * s.volume == pytest.approx(3.0, rel=2e-3)
    assert 0 <= rec.elf.min() and rec.elf.max() <= 1
