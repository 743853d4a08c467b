"""Template screening: descriptors on analytic fields, then screen() serial, in processes and resumed."""

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pymatgen_elfml.io import validate
from pymatgen_elfml.screening import ScreeningTable, screen, templates
from pymatgen_elfml.screening.descriptors import (describe, dimensionality, distinct_maxima, local_maxima,
                                                  networking_values)
from pymatgen_elfml.symmetry import seitz_ops


def _grid(n):
    return np.stack(np.meshgrid(*[np.arange(n) / n] * 3, indexing="ij"), -1)


@pytest.mark.parametrize("mask_fn,dim", [
    (lambda m: m.__setitem__((slice(4, 7), slice(4, 7), slice(None)), True), 1),  # a rod along c
    (lambda m: m.__setitem__((slice(None), slice(None), slice(3, 5)), True), 2),  # a slab
    (lambda m: m.__setitem__((slice(4, 8), slice(4, 8), slice(4, 8)), True), 0),  # an island
])
def test_percolation_dimensionality_of_simple_shapes(mask_fn, dim):
    m = np.zeros((16, 16, 16), bool)
    mask_fn(m)
    assert dimensionality(m) == dim


def test_a_rod_that_winds_diagonally_percolates_once():
    """Along (1, 1, 0): it crosses two faces but is one 1D channel, not a 2D sheet."""
    m = np.zeros((16, 16, 16), bool)
    for i in range(16):
        m[i, i, 5:8] = m[i, (i + 1) % 16, 5:8] = True
    assert dimensionality(m) == 1
    m[:, :, 5:8] = True
    assert dimensionality(m) == 2


def test_networking_values_of_an_analytic_field():
    """f = (cos 2 pi x + cos 2 pi y + cos 2 pi z + 3) / 6 on a simple cubic cell: {f >= v} percolates in 3D
    up to v = 2/3 (the saddle at cos = (1, 1, -1)), in 2D up to the same saddle, in 1D the same:
    every bond saddle is equal, so all three values are 2/3 to the bisection tolerance."""
    x = _grid(32)
    f = (np.cos(2 * np.pi * x).sum(-1) + 3) / 6
    vals = networking_values(f, np.ones(f.shape, bool))
    assert vals[3] == pytest.approx(2 / 3, abs=2e-3) and vals[1] == pytest.approx(2 / 3, abs=2e-3)
    # a field with strong channels along c only: 1D much higher than 3D
    g = (np.cos(2 * np.pi * x[..., 0]) + np.cos(2 * np.pi * x[..., 1]) + 2) / 4
    vals = networking_values(0.2 * f + 0.8 * g, np.ones(f.shape, bool))
    assert vals[1] > vals[3] + 0.3


def test_maxima_sub_voxel_position_and_symmetry_merge():
    """One Gaussian blob per fcc octahedral site between atoms: found once per site, at the site."""
    s = Structure(Lattice.cubic(4.0), ["Ca"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    cell = validate(s)
    ops = seitz_ops(cell)
    x = _grid(40)
    elf = np.zeros(x.shape[:3])
    for c in [[0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]]:  # the 4b sites
        d = x - c
        d -= np.rint(d)
        elf += 0.8 * np.exp(-((d * 4.0) ** 2).sum(-1) / (2 * 0.5**2))
    raw = local_maxima(elf, cell.lattice, cell.frac)
    assert len(raw) == 4 and np.allclose(raw[:, 3], 0.8, atol=1e-3) and np.allclose(raw[:, 4], 2.0, atol=1e-6)
    sites = distinct_maxima(elf, cell.lattice, cell.frac, cell.numbers, ops.rotations, ops.translations)
    assert [(m.wyckoff, m.multiplicity) for m in sites] == [("4b", 4)]
    desc, _ = describe(elf, cell.lattice, cell.frac, cell.numbers, ops.rotations, ops.translations)
    assert desc.n_maxima == 1 and desc.max_elf == pytest.approx(0.8, abs=1e-3)
    assert desc.networking_3d < 0.05  # isolated blobs never connect


def test_templates_builds_the_requested_sublattices():
    t = templates(["La", "Y"], ["fcc", "B2"])
    assert sorted(t) == ["La-Y-B2", "La-fcc", "Y-La-B2", "Y-fcc"]
    assert len(t["La-fcc"]) == 1 and len(t["La-Y-B2"]) == 2
    with pytest.raises(ValueError, match="unknown template prototype"):
        templates(["La"], ["perovskite"])
    squeezed = templates(["La"], ["fcc"], volume_ratios=[0.5, 1.0])
    assert sorted(squeezed) == ["La-fcc-v0.50", "La-fcc-v1.00"]
    assert squeezed["La-fcc-v0.50"].volume == pytest.approx(0.5 * t["La-fcc"].volume)


@pytest.fixture(scope="module")
def small_set():
    t = templates(["Li", "Mg"], ["fcc", "bcc"])
    bad = Structure(Lattice.cubic(3.0), ["Li", "Li"], [[0, 0, 0], [0.01, 0, 0]])  # overlapping atoms
    return {**t, "overlap": bad}


@pytest.fixture(scope="module")
def serial_table(small_set, tiny_model_dir):
    return screen(small_set, predictor=str(tiny_model_dir), volume_ratios=[0.6, 0.8], progress=False)


def test_screen_ranks_and_reports_failures(serial_table, tmp_path):
    rows = serial_table.rows
    assert len(rows) == 10
    assert [r["name"] for r in rows[-2:]] == ["overlap", "overlap"] and "overlapping" in rows[-1]["error"]
    scores = [r["score"] for r in rows if r["error"] is None]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    serial_table.to_csv(tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("rank,name,formula,volume_ratio,score")
    back = json.loads(serial_table.to_json(tmp_path / "t.json").read_text())
    assert back[0]["maxima"] is not None and back[0]["name"] == rows[0]["name"]


def test_screen_in_processes_gives_the_same_table(small_set, serial_table, tiny_model_dir):
    # spawn, not fork: a forked child of a process that has run torch's thread pool can deadlock
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        table = screen(small_set, predictor=str(tiny_model_dir), volume_ratios=[0.6, 0.8], executor=pool, progress=False)
    assert _key(table) == _key(serial_table)


def test_screen_on_a_dask_cluster_gives_the_same_table(small_set, serial_table, tiny_model_dir):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        table = screen(small_set, predictor=str(tiny_model_dir), volume_ratios=[0.6, 0.8],
                       executor=client.get_executor(), progress=False)
    assert _key(table) == _key(serial_table)


def test_screen_resumes_from_its_output_without_recomputing(small_set, tiny_model_dir, tmp_path, monkeypatch):
    out = tmp_path / "run.jsonl"
    first = dict(list(small_set.items())[:2])
    screen(first, predictor=str(tiny_model_dir), volume_ratios=[0.6], output=out, progress=False)
    assert len(out.read_text().splitlines()) == 2
    calls = []
    from pymatgen_elfml.screening import run

    real = run.score_item
    monkeypatch.setattr(run, "score_item", lambda *a: calls.append(a[0]) or real(*a))
    table = run.screen(small_set, predictor=str(tiny_model_dir), volume_ratios=[0.6], output=out, progress=False)
    assert len(table) == len(small_set) and sorted(calls) == sorted(set(small_set) - set(first))
    assert len(out.read_text().splitlines()) == len(small_set)


def _key(table: ScreeningTable):
    return [(r["name"], r["volume_ratio"], None if r.get("score") is None else round(r["score"], 9)) for r in table.rows]


def test_plane_basis_spans_the_lattice_plane():
    from pymatgen_elfml.plot import plane_basis

    lat = Lattice.hexagonal(3.0, 5.0).matrix
    normal, u, v = plane_basis(lat, (1, 1, 0))
    assert abs(normal @ u) < 1e-9 and abs(normal @ v) < 1e-9 and np.linalg.norm(np.cross(u, v)) > 1
    with pytest.raises(ValueError, match="hkl"):
        plane_basis(lat, (0, 0, 0))


def test_screen_command_with_plots_and_resume(tiny_model_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from pymatgen_elfml.cli import main

    out = tmp_path / "rank.csv"
    args = ["screen", "--elements", "Li", "--prototypes", "fcc", "bcc", "--volumes", "0.7", "-o", str(out),
            "--model", str(tiny_model_dir)]
    assert main(args + ["--plots", str(tmp_path / "plots")]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("rank,name")
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert "score_vs_volume.png" in pngs and len(pngs) == 3
    assert all((tmp_path / "plots" / p).stat().st_size > 10_000 for p in pngs)
    assert main(args) == 2 and "--resume" in capsys.readouterr().err  # an earlier run's rows are never overwritten
    assert main(args[:7] + ["0.7", "0.5"] + args[8:] + ["--resume"]) == 0
    assert len(out.read_text().splitlines()) == 5
