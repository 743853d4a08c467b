"""``ElfPredictor``: structure in, ``Elfcar`` out; ``ValenceDensityPredictor``, the same pipeline for a
density model (used by ``DensityGenerator.from_pretrained``): structure in, ``Chgcar`` out."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from pymatgen.io.vasp.outputs import Chgcar, Elfcar
from tqdm.auto import tqdm

from pymatgen_elfml import io, pretrained, symmetry
from pymatgen_elfml.features import sad_features
from pymatgen_elfml.grid import check_spacing, grid_shape
from pymatgen_elfml.inference import (InferenceSettings, check_memory, float32_only, predict_cells, predict_grid,
                                      resolve_device, runs_whole)
from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.primitive import Reduction, copies_exactly, map_to_cell, reduce_to_primitive
from pymatgen_elfml.sad import sad_density
from pymatgen_elfml.valence import valence_electrons


@dataclass
class _Job:
    """One structure on its way through ``ElfPredictor``: what ``_prepare`` computed for ``_run``/``_finish``.

    Attributes:
        structure: as given; reduction: its primitive cell; ops: the given cell's operators;
        out_shape: output grid of the given cell; inputs: (C, p0, p1, p2) float32 network inputs on the
        primitive grid; pool_ops: the primitive cell's operators for symmetry pooling (None: the model
        does not pool); where: (p0, p1, p2) orbit index of every primitive grid point
        (``symmetry.asymmetric_unit``), None for a cell without symmetry; local: (p0, p1, p2) per-voxel logits or None.
    """

    structure: Any
    reduction: Reduction
    ops: symmetry.SeitzOps
    out_shape: tuple[int, int, int]
    inputs: np.ndarray
    pool_ops: symmetry.SeitzOps | None
    where: np.ndarray | None
    local: np.ndarray | None


class OutOfDomainWarning(UserWarning):
    """The structure has elements the model was not trained on: treat its prediction with caution."""


class ElfPredictor:
    """Predict the ELF of a crystal from its superposed atomic density.

    >>> predictor = ElfPredictor.from_pretrained("path/to/model")  # doctest: +SKIP
    >>> predictor.predict("POSCAR").write_file("ELFCAR")  # doctest: +SKIP

    Args:
        net: a ``PeriodicUNet3D``.
        spec: the model's grid and patch settings.
        device: "auto" (CUDA, then MPS, then CPU) or a torch device.
        settings: whole-cell / patch inference (default: the model's patch size and halo).

    Raises:
        ValueError: a model trained for another target (``UNetConfig.target``), e.g. a density model.
    """

    TARGET = "elf"  # the UNetConfig.target of the models this class runs
    DEFAULT = pretrained.DEFAULT_MODEL
    BOUNDS: tuple[float, float] | None = (0.0, 1.0)  # output values are clipped to these after resampling

    def __init__(self, net: PeriodicUNet3D, spec: pretrained.ModelSpec, device: str | torch.device = "auto",
                 settings: InferenceSettings | None = None):
        if spec.arch.target != self.TARGET:
            raise ValueError(f"{type(self).__name__} runs models with target {self.TARGET!r}; this model predicts "
                             f"{spec.arch.target!r} (ELF: ElfPredictor or `pymatgen-elfml predict`; valence density: "
                             "DensityGenerator.from_pretrained or `pymatgen-elfml density`)")
        self.device = resolve_device(device)
        if self.device.type == "mps":
            net = float32_only(net)
        self.net = net.to(self.device).eval()
        self.spec = spec
        self.settings = settings or InferenceSettings(patch_size=spec.patch_size, halo=spec.halo)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None, device: str = "auto",
                        **settings: Any) -> ElfPredictor:
        """Load a registered model by name, or a folder written by ``save_pretrained``.

        Raises:
            ValueError: unknown name (lists the known ones) or no default model yet.
            pretrained.ModelFileError: missing or corrupted model files.
        """
        net, spec = pretrained.load_model(pretrained.resolve(name_or_path, cls.DEFAULT))
        base = InferenceSettings(patch_size=spec.patch_size, halo=spec.halo)
        return cls(net, spec, device, replace(base, **settings))

    def save_pretrained(self, path: str | os.PathLike) -> os.PathLike:
        """Write ``config.json`` and ``weights.pt`` to folder ``path``."""
        return pretrained.save_model(self.net, self.spec, path)

    def predict(self, structure: Any, grid: tuple[int, int, int] | None = None, spacing: float | None = None,
                symmetrize: bool = True, precision: str | None = None) -> Elfcar:
        """ELF of one structure.

        The network runs on the structure's primitive cell (``primitive.reduce_to_primitive``) at the
        model's native spacing on a symmetry-commensurate grid, so a supercell or a conventional cell
        costs what its primitive cell costs and gets the same answer; the result is then sampled at the
        points of the output grid of the cell as given (exact copies where the grids are commensurate,
        a periodic cubic spline otherwise). ``grid`` (an explicit shape, e.g. an existing CHGCAR's) or
        ``spacing`` (Angstrom) choose that output grid; by default it has the native spacing.

        Args:
            structure: pymatgen ``Structure``, ``ase.Atoms`` or a structure file path.
            grid: output grid (n0, n1, n2), each >= 2**depth.
            spacing: output grid spacing in Angstrom (ignored when ``grid`` is given).
            symmetrize: average the output exactly over the operators that map the grid onto
                itself (all of them unless the cell's origin gives some irrational translations).
            precision: "auto", "fp32" or "bf16" for this call (default: the predictor's settings).

        Returns:
            ``Elfcar`` with one block ("total"), values in [0, 1].
        """
        settings = self.settings if precision is None else replace(self.settings, precision=precision)
        job = self._prepare(structure, grid, spacing)
        return self._finish(job, self._run([job], settings)[0], symmetrize)

    def _prepare(self, structure: Any, grid, spacing) -> _Job:
        """Everything before the network: validation, symmetry, primitive cell, grids, inputs."""
        structure, cell = io.load_cell(structure)
        self._check_structure(structure)
        ops = symmetry.seitz_ops(cell)
        out_shape = self._output_shape(cell, ops, grid, spacing)
        reduction = reduce_to_primitive(cell, ops)
        prim = reduction.primitive
        prim_ops = symmetry.seitz_ops(prim)
        native = grid_shape(prim.lattice, self.spec.native_spacing, prim_ops, self.spec.arch.size_multiple)
        check_memory(native, self.settings)
        check_memory(out_shape, self.settings)
        sad = sad_density(prim.lattice, prim.frac, prim.numbers, native, self.spec.sad_sigma)
        inputs = sad[None] if self.spec.arch.inputs == "log_sad" else sad_features(sad, prim.lattice, prim.frac, self.spec.arch.inputs, prim.numbers)
        inputs = inputs.astype(np.float32)
        grid_ops = symmetry.commensurate_ops(native, prim_ops)
        au, where = symmetry.asymmetric_unit(native, grid_ops) if len(grid_ops) > 1 else (None, None)  # P1: no orbits
        pooling = self.spec.arch.symm_input or self.spec.arch.symm_stages
        return _Job(structure, reduction, ops, out_shape, inputs, prim_ops if pooling else None,
                    where, self._local_logits(inputs, au, where))

    def _local_logits(self, inputs: np.ndarray, au: np.ndarray | None, where: np.ndarray | None) -> np.ndarray | None:
        """The network's per-voxel branch (forest / MLP / semilocal logit), evaluated once per orbit of
        grid points: its inputs are space-group invariant, so the other points of an orbit repeat it (up to
        rounding noise of the inputs, which can flip a forest threshold: the branch is exactly symmetric by
        construction, also with ``symmetrize=False``)."""
        if not self.spec.arch.has_local:
            return None
        x = inputs.reshape(len(inputs), -1)
        x = torch.as_tensor((x if au is None else x[:, au])[None, :, :, None, None], device=self.device)
        with torch.inference_mode():
            logits = self.net.local_logits(x).float().cpu().numpy().reshape(-1)
        return logits[where] if where is not None else logits.reshape(inputs.shape[1:])

    def _run(self, jobs: list[_Job], settings: InferenceSettings) -> list[np.ndarray]:
        """Network outputs of prepared jobs: whole cells batched by grid shape, large cells in patches."""
        mult = self.spec.arch.size_multiple
        whole = [i for i, j in enumerate(jobs) if runs_whole(j.inputs.shape[1:], settings, mult)]
        out: list[np.ndarray | None] = [None] * len(jobs)
        fields = predict_cells(self.net, [jobs[i].inputs for i in whole], [jobs[i].pool_ops for i in whole],
                               [jobs[i].local for i in whole], settings, self.device)
        for i, field in zip(whole, fields):
            out[i] = field
        for i, job in enumerate(jobs):
            if out[i] is None:
                out[i] = predict_grid(self.net, job.inputs, job.pool_ops, settings, self.device, job.local)
        return out

    def _finish(self, job: _Job, field: np.ndarray, symmetrize: bool) -> Any:
        """Symmetrize on the primitive grid, map onto the output grid of the cell as given, wrap (``_wrap``)."""
        if not np.all(np.isfinite(field)):
            raise RuntimeError("the network produced NaN/inf values: the weights are probably corrupted")
        if symmetrize and job.where is not None:
            field = symmetry.orbit_mean(field, job.where)
        m, native = job.reduction.supercell, field.shape
        if native != job.out_shape or not np.array_equal(m, np.eye(3, dtype=int)):
            field = map_to_cell(field, m, job.out_shape)
            if self.BOUNDS is not None:
                field = np.clip(field, *self.BOUNDS)
            if symmetrize and not copies_exactly(m, native, job.out_shape):
                # spline values: exact on pure translations already, one operator per rotation does the rest
                cosets = symmetry.translation_cosets(symmetry.commensurate_ops(job.out_shape, job.ops))
                field = symmetry.symmetrize(field, cosets)
        return self._wrap(job.structure, field)

    def _wrap(self, structure: Any, field: np.ndarray) -> Elfcar:
        """The output object of a field on the output grid of ``structure``."""
        return io.to_elfcar(structure, field)

    def _check_structure(self, structure) -> None:
        """Checks of a loaded structure before any work: here the out-of-domain warning."""
        self._warn_outside_training(structure)

    def _warn_outside_training(self, structure) -> None:
        """``OutOfDomainWarning`` naming the elements absent from the model's training set (if recorded)."""
        outside = sorted({el.symbol for el in structure.composition.elements} - set(self.spec.elements))
        if self.spec.elements and outside:
            warnings.warn(f"{structure.composition.formula.replace(' ', '')}: {', '.join(outside)} not in this model's training "
                          f"data ({len(self.spec.elements)} elements: {', '.join(self.spec.elements)}); the prediction "
                          "is an extrapolation", OutOfDomainWarning, stacklevel=3)

    def _output_shape(self, cell, ops, grid, spacing) -> tuple[int, int, int]:
        check_spacing(spacing)
        if grid is not None:
            grid = tuple(int(n) for n in grid)
            m = self.spec.arch.size_multiple
            if len(grid) != 3 or min(grid) < m:
                raise ValueError(f"grid {grid} is too small for the model: need three sizes >= {m}")
            return grid
        return grid_shape(cell.lattice, spacing or self.spec.native_spacing, ops, self.spec.arch.size_multiple)

    def predict_many(self, structures: Iterable[Any], progress: bool = True, errors: str = "raise",
                     batch_size: int | None = None, **kwargs: Any) -> Iterator[Elfcar | Exception]:
        """Predict lazily over many structures with a tqdm progress bar; kwargs go to ``predict``.

        Args:
            errors: "raise" stops at the first structure that cannot be predicted; "skip" yields
                the exception (``StructureError``, ``ValueError``, ``MemoryError``, ...) in its place
                and goes on, so results stay aligned with the inputs.
            batch_size: structures prepared together; those whose primitive grids have the same shape go
                through the network in one forward pass (default: the settings' ``batch_size``, which is
                also the number of patches per pass for cells predicted in patches).
        """
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        symmetrize = kwargs.pop("symmetrize", True)
        precision = kwargs.pop("precision", None)
        unknown = sorted(set(kwargs) - {"grid", "spacing"})
        if unknown:
            raise TypeError(f"predict_many got unexpected keyword arguments {unknown} (predict takes grid, spacing, "
                            "symmetrize, precision)")
        settings = replace(self.settings, **({"batch_size": batch_size} if batch_size else {}),
                           **({"precision": precision} if precision else {}))
        items = structures if isinstance(structures, (list, tuple)) else list(structures)
        bar = tqdm(total=len(items), desc=self.TARGET, unit="structure", disable=not progress)
        for b0 in range(0, len(items), settings.batch_size):
            for result in self._predict_batch(items[b0 : b0 + settings.batch_size], settings, symmetrize, kwargs):
                if isinstance(result, Exception) and errors == "raise":
                    raise result
                bar.update()
                yield result
        bar.close()

    def _predict_batch(self, items: list, settings: InferenceSettings, symmetrize: bool, kwargs) -> list:
        """Results (``Elfcar`` or the exception) of a few structures, their network passes batched."""
        jobs = [_attempt(self._prepare, item, kwargs.get("grid"), kwargs.get("spacing")) for item in items]
        ready = [j for j in jobs if not isinstance(j, Exception)]
        try:
            fields = self._run(ready, settings)
        except _EXPECTED:  # find out which structure it was: one at a time
            fields = [_attempt(lambda j: self._run([j], settings)[0], j) for j in ready]
        done = iter(fields)
        out = []
        for job in jobs:
            field = job if isinstance(job, Exception) else next(done)
            out.append(field if isinstance(field, Exception) else _attempt(self._finish, job, field, symmetrize))
        return out


class ValenceDensityPredictor(ElfPredictor):
    """The ``ElfPredictor`` pipeline (primitive cell, symmetry, batching, resampling) for a model with
    ``target="density"``: the network predicts rho / mean(rho), which is scaled so that the density
    integrates to the structure's valence electron count (``valence.valence_electrons``) exactly.
    ``predict`` and ``predict_many`` take the arguments documented on ``ElfPredictor`` and return ``Chgcar``
    objects (data = rho * V, rho in e/A^3, not bounded to [0, 1]); the public entry point is ``DensityGenerator``."""

    TARGET = "density"
    DEFAULT = pretrained.DEFAULT_DENSITY_MODEL
    BOUNDS = None

    def _check_structure(self, structure) -> None:
        valence_electrons(site.specie.symbol for site in structure)  # ValueError before any work
        super()._check_structure(structure)

    def _wrap(self, structure: Any, field: np.ndarray) -> Chgcar:
        """rho = field * N_valence / (mean(field) * V) in e/A^3, as a ``Chgcar`` (data rho * V)."""
        mean = float(np.mean(field, dtype=np.float64))
        if not mean > 0:
            raise RuntimeError(f"the predicted density has mean {mean:.3g}: it cannot be scaled to the valence "
                               "electron count (the weights are probably not a trained density model)")
        n_valence = valence_electrons(site.specie.symbol for site in structure)
        return io.to_chgcar(structure, np.asarray(field, dtype=np.float64) * (n_valence / (mean * structure.volume)))


_EXPECTED = (ValueError, FileNotFoundError, MemoryError, RuntimeError)


def _attempt(fn, *args):
    """``fn(*args)``, or the exception it raised if it is one a bad structure can cause."""
    try:
        return fn(*args)
    except _EXPECTED as exc:
        return exc
