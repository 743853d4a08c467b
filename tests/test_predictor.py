"""ElfPredictor end to end: a randomly initialised tiny model (fast, for the mechanics) and the shipped default model."""

import numpy as np
import pytest
from ase.build import bulk
from conftest import TINY_SPEC, max_op_deviation
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.vasp import Poscar
from pymatgen.io.vasp.outputs import Elfcar

from pymatgen_elfml.grid import grid_shape
from pymatgen_elfml.io import elf_from_elfcar, validate, write_atomic
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.symmetry import seitz_ops


def _elf(predictor, structure, **kw):
    return elf_from_elfcar(predictor.predict(structure, **kw))


@pytest.fixture(scope="module")
def patch_predictor(tiny_model_dir):
    return ElfPredictor.from_pretrained(tiny_model_dir, device="cpu", mode="patches", batch_size=3, precision="fp32")


@pytest.mark.parametrize("fixture", ["Al4", "Mg2", "NiAl"])
def test_prediction_is_exactly_symmetric_and_bounded(fixture, tiny_predictor, request):
    structure = request.getfixturevalue(fixture)
    elf = _elf(tiny_predictor, structure)
    assert max_op_deviation(elf, seitz_ops(validate(structure))) < 1e-5
    assert elf.min() >= 0 and elf.max() <= 1
    assert elf.std() > 1e-4  # a real spatially varying field, not a constant


def test_symmetrize_false_keeps_the_raw_output(tiny_predictor, Mg2):
    raw = _elf(tiny_predictor, Mg2, symmetrize=False)
    assert raw.shape == _elf(tiny_predictor, Mg2).shape


@pytest.mark.parametrize(
    "mode,fixture",
    [
        ("whole", "Ni2_orthorhombic"),
        ("whole", "CuZn3_triclinic"),
        ("patches", "CuZn3_triclinic"),  # P1, and 16 voxels = one patch edge along a
        ("patches", "Ni2_orthorhombic"),  # both are predicted on the same primitive cell
    ],
)
def test_unit_cell_vs_supercell(mode, fixture, tiny_model_dir, request):
    """Tile the unit-cell prediction and compare with the 2x1x1 supercell's.

    The cells are chosen so that the supercell keeps the unit cell's point operations
    (a 2x1x1 supercell of a cubic or hexagonal cell has a smaller group, and pooling over
    a subgroup legitimately gives another field for a network that is not equivariant).
    """
    structure = request.getfixturevalue(fixture)
    pred = ElfPredictor.from_pretrained(tiny_model_dir, device="cpu", mode=mode, precision="fp32")
    unit = _elf(pred, structure)
    sup = _elf(pred, structure * (2, 1, 1))
    assert sup.shape == (2 * unit.shape[0],) + unit.shape[1:]
    np.testing.assert_allclose(sup, np.tile(unit, (2, 1, 1)), atol=1e-5)


@pytest.mark.parametrize("mode", ["whole", "patches"])
def test_translation_by_a_grid_vector_shifts_the_prediction(mode, tiny_model_dir, CuZn3_triclinic):
    pred = ElfPredictor.from_pretrained(tiny_model_dir, device="cpu", mode=mode, precision="fp32")
    cell = validate(CuZn3_triclinic)
    shape = grid_shape(cell.lattice, TINY_SPEC.native_spacing, seitz_ops(cell), TINY_SPEC.arch.size_multiple)
    # multiples of 2**depth (4) map the strided U-Net onto itself; in patch mode the shift must
    # also map the patch lattice onto itself: multiples of the patch size (8) along axes it tiles exactly
    shift = np.array([8, -16, 8])
    if mode == "patches":
        shift = np.where(np.array(shape) % TINY_SPEC.patch_size == 0, shift, 0)
        assert shift.any()
    moved = CuZn3_triclinic.copy()
    moved.translate_sites(range(len(moved)), shift / np.array(shape), frac_coords=True)
    a, b = _elf(pred, CuZn3_triclinic), _elf(pred, moved)
    np.testing.assert_allclose(np.roll(a, shift, axis=(0, 1, 2)), b, atol=1e-5)


def test_patch_mode_covers_the_cell(patch_predictor, NiAl):
    ops = seitz_ops(validate(NiAl))
    elf = _elf(patch_predictor, NiAl * (2, 1, 1))
    assert elf.shape == grid_shape((NiAl * (2, 1, 1)).lattice.matrix, 0.25, seitz_ops(validate(NiAl * (2, 1, 1))), 4)
    assert max_op_deviation(elf, seitz_ops(validate(NiAl * (2, 1, 1)))) < 1e-5
    assert len(ops) == 48 and elf.min() >= 0 and elf.max() <= 1


def test_structure_atoms_and_path_inputs_agree(tiny_predictor, tmp_path, NiAl):
    poscar = tmp_path / "POSCAR"
    Poscar(NiAl).write_file(poscar)
    atoms = AseAtomsAdaptor.get_atoms(NiAl)
    ref = _elf(tiny_predictor, NiAl)
    np.testing.assert_allclose(_elf(tiny_predictor, atoms), ref, atol=1e-6)
    np.testing.assert_allclose(_elf(tiny_predictor, str(poscar)), ref, atol=1e-6)
    cu = bulk("Cu", "fcc", a=3.6)  # a primitive ase cell straight from ase.build
    np.testing.assert_allclose(_elf(tiny_predictor, cu), _elf(tiny_predictor, AseAtomsAdaptor.get_structure(cu)))


def test_elfcar_round_trip_through_a_file(tiny_predictor, tmp_path, Mg2):
    elfcar = tiny_predictor.predict(Mg2)
    write_atomic(elfcar, tmp_path / "ELFCAR")
    back = Elfcar.from_file(tmp_path / "ELFCAR")
    np.testing.assert_allclose(elf_from_elfcar(back), elf_from_elfcar(elfcar), rtol=1e-9, atol=1e-10)
    assert back.structure.matches(Mg2)
    elfcar.write_file(tmp_path / "ELFCAR2")  # the plain pymatgen call works too
    assert Elfcar.from_file(tmp_path / "ELFCAR2").data["total"].shape == elfcar.data["total"].shape


def test_requested_grid_and_spacing(tiny_predictor, Ag4_vasp):
    vasp = Elfcar.from_file(Ag4_vasp)
    out = tiny_predictor.predict(vasp.structure, grid=vasp.data["spin_up"].shape)
    assert out.data["total"].shape == (20, 20, 60)
    elf = elf_from_elfcar(out)
    assert elf.min() >= 0 and elf.max() <= 1
    assert max_op_deviation(elf, seitz_ops(validate(vasp.structure))) < 1e-5
    coarse = tiny_predictor.predict(vasp.structure, spacing=0.5)
    assert max(np.array(vasp.structure.lattice.abc) / coarse.data["total"].shape) <= 0.5


def test_grid_too_small_for_the_model(tiny_predictor, Al4):
    with pytest.raises(ValueError, match="too small for the model"):
        tiny_predictor.predict(Al4, grid=(2, 8, 8))


def test_predict_many_with_progress(tiny_predictor, Al4, NiAl, capsys):
    results = list(tiny_predictor.predict_many([Al4, NiAl]))
    assert [r.structure.composition for r in results] == [Al4.composition, NiAl.composition]
    assert "2/2" in capsys.readouterr().err


def test_save_and_reload_gives_identical_predictions(tiny_predictor, tmp_path, NiAl):
    tiny_predictor.save_pretrained(tmp_path / "copy")
    again = ElfPredictor.from_pretrained(tmp_path / "copy", device="cpu", precision="fp32")
    np.testing.assert_array_equal(_elf(again, NiAl), _elf(tiny_predictor, NiAl))


def test_structure_with_an_arbitrary_origin(tiny_predictor, Mg2):
    """Shifting hcp Mg off its special origin makes some translations irrational: the prediction
    still works and is exact under the operators that map the grid onto itself."""
    from pymatgen_elfml.symmetry import commensurate_ops

    moved = Mg2.copy()
    moved.translate_sites(range(len(moved)), [0.0, 0.0, 0.0713], frac_coords=True)
    ops = seitz_ops(validate(moved))
    elf = _elf(tiny_predictor, moved)
    sub = commensurate_ops(elf.shape, ops)
    assert 0 < len(sub) < len(ops)
    assert max_op_deviation(elf, sub) < 1e-5


def test_elements_outside_the_training_set_warn_and_huge_grids_are_refused_up_front():
    import time
    import warnings

    from pymatgen.core import Lattice, Structure

    from pymatgen_elfml.predictor import ElfPredictor, OutOfDomainWarning

    predictor = ElfPredictor.from_pretrained(device="cpu")
    with pytest.warns(OutOfDomainWarning, match="H not in this model's training data"):
        predictor.predict(Structure(Lattice.cubic(2.4), ["H"], [[0, 0, 0]]), grid=(8, 8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        predictor.predict(Structure(Lattice.cubic(2.9), ["Al"], [[0, 0, 0]]), grid=(8, 8, 8))
    start = time.perf_counter()
    with pytest.raises(MemoryError, match=r"\(600, 600, 600\).*memory_budget_gb=None"):
        predictor.predict(Structure(Lattice.cubic(60.0), ["Al"], [[0, 0, 0]]))
    assert time.perf_counter() - start < 5.0  # refused before any grid is built


def _fcc_cu():
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


@pytest.fixture(scope="module")
def default_predictor():
    return ElfPredictor.from_pretrained(device="cpu")


def test_one_answer_per_crystal_with_the_shipped_model(default_predictor):
    """Conventional cell, primitive cell and 2x2x2 supercell of fcc Cu are predicted on one primitive cell:
    the supercell equals the tiled conventional cell to rounding (commensurate grids), and the primitive
    cell's output, mapped onto the conventional grid, agrees to the cubic spline's error (measured:
    MAE 0.0012, max 0.018; before the primitive-cell path the two cells differed by MAE 0.019)."""
    from pymatgen_elfml.primitive import map_to_cell

    conv = _fcc_cu()
    prim = conv.get_primitive_structure()
    e_conv, e_prim = _elf(default_predictor, conv), _elf(default_predictor, prim)
    e_sup = _elf(default_predictor, conv * (2, 2, 2), grid=tuple(2 * n for n in e_conv.shape))
    np.testing.assert_allclose(e_sup, np.tile(e_conv, (2, 2, 2)), atol=1e-9)
    m = np.rint(conv.lattice.matrix @ np.linalg.inv(prim.lattice.matrix)).astype(int)
    diff = np.abs(map_to_cell(e_prim, m, e_conv.shape) - e_conv)
    assert diff.mean() < 0.003 and diff.max() < 0.05, (diff.mean(), diff.max())


def test_bf16_and_fp32_agree(default_predictor):
    """bfloat16 convolutions with a float32 head (measured on B2 LiAl with elf-metals-v3: MAE 2.0e-6, max 2.5e-5)."""
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(3.0), ["Li", "Al"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    a, b = _elf(default_predictor, s, precision="fp32"), _elf(default_predictor, s, precision="bf16")
    assert np.abs(a - b).mean() < 1e-4 and np.abs(a - b).max() < 2e-3
    with pytest.raises(ValueError, match="precision"):
        default_predictor.predict(s, precision="fp16")


def test_predict_many_batches_cells_of_one_grid_into_one_forward_pass(tiny_model_dir, Al4, NiAl):
    pred = ElfPredictor.from_pretrained(tiny_model_dir, device="cpu", mode="whole", precision="fp32")
    batches = []
    hook = pred.net.register_forward_hook(lambda m, args, out: batches.append(args[0].shape[0]))
    moved = Al4.copy()
    moved.translate_sites([0], [0.01, 0.0, 0.0])  # another structure with the same primitive grid
    items = [Al4, moved, NiAl, "no-such-file"]
    out = list(pred.predict_many(items, progress=False, errors="skip", batch_size=4))
    hook.remove()
    assert isinstance(out[3], FileNotFoundError) and max(batches) == 2
    for item, got in zip(items[:3], out[:3]):
        np.testing.assert_allclose(elf_from_elfcar(got), _elf(pred, item), atol=1e-6)


def test_forward_path_without_float64_for_backends_that_lack_it(tiny_model_dir, NiAl):
    """What ``device="mps"`` runs: ``float32_only`` leaves no float64 tensor in the forward pass
    (recorded op by op on the CPU), pooling and forest included; ``auto`` never picks MPS."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from pymatgen_elfml import inference
    from pymatgen_elfml.nn import PeriodicUNet3D, UNetConfig

    class Dtypes(TorchDispatchMode):
        seen: set = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    self.seen.add(t.dtype)
            return out

    net = PeriodicUNet3D(UNetConfig(base_channels=4, depth=2, groups=2, symm_stages=True, inputs="sad_features",
                                    pointwise_trees=2, pointwise_leaves=4)).eval()
    inference.float32_only(net)
    x = torch.rand(1, net.config.in_channels, 8, 8, 8)
    ops = torch.eye(4)[None, None].repeat(1, 2, 1, 1)
    with Dtypes() as mode, torch.inference_mode():
        net(x, ops, torch.ones(1, 2), torch.ones(1, 3))
    assert torch.float64 not in mode.seen and torch.float32 in mode.seen
    torch.backends.mps.is_available, saved = (lambda: True), torch.backends.mps.is_available
    try:
        assert inference.resolve_device("auto").type in ("cpu", "cuda")
    finally:
        torch.backends.mps.is_available = saved


def test_supercell_symmetrization_does_not_scale_with_its_translations(tiny_predictor, monkeypatch):
    """A 108-atom fcc supercell has 5,184 operators; the network runs on the 1-atom primitive cell and the
    output is symmetrized over its 48 cosets, never over all 5,184."""
    from pymatgen_elfml import symmetry

    seen = []
    real = symmetry.symmetrize
    monkeypatch.setattr(symmetry, "symmetrize", lambda field, ops: seen.append(len(ops)) or real(field, ops))
    batches = []
    hook = tiny_predictor.net.register_forward_hook(lambda m, args, out: batches.append(tuple(args[0].shape[2:])))
    sup = _fcc_cu() * (3, 3, 3)
    assert len(symmetry.seitz_ops(validate(sup))) == 5184
    elf = _elf(tiny_predictor, sup, spacing=0.3)
    hook.remove()
    assert max(seen, default=0) <= 48 and all(np.prod(b) < 20**3 for b in batches), (seen, batches)
    assert max_op_deviation(elf, symmetry.translation_cosets(symmetry.seitz_ops(validate(sup)))) < 1e-9


def test_p1_crystal_predicted_alike_in_its_cell_and_a_supercell(tiny_predictor):
    from pymatgen.core import Lattice, Structure

    conv = Structure(Lattice.cubic(5.0), ["Cu", "Zn", "Al"], [[0.1, 0.2, 0.3], [0.6, 0.1, 0.8], [0.35, 0.7, 0.15]])
    unit = _elf(tiny_predictor, conv)
    for sc in [(1, 2, 1), (1, 1, 2)]:
        sup = _elf(tiny_predictor, conv * sc, grid=tuple(n * k for n, k in zip(unit.shape, sc)))
        np.testing.assert_allclose(sup, np.tile(unit, sc), atol=1e-6)


def test_pointwise_branch_on_raw_sad_inputs(NiAl):
    """A per-voxel MLP on the single log-SAD channel (float64 SAD cast before the branch runs)."""
    from dataclasses import replace

    import torch

    from pymatgen_elfml.nn import PeriodicUNet3D

    torch.manual_seed(0)
    arch = replace(TINY_SPEC.arch, pointwise_hidden=4)
    pred = ElfPredictor(PeriodicUNet3D(arch), replace(TINY_SPEC, arch=arch), device="cpu")
    elf = _elf(pred, NiAl)
    assert elf.std() > 0
    with pytest.raises(TypeError, match="grdi"):
        list(pred.predict_many([NiAl], progress=False, grdi=(8, 8, 8)))
