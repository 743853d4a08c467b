"""``ElfPredictor``: structure in, ``Elfcar`` out."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from pymatgen.io.vasp.outputs import Elfcar
from tqdm.auto import tqdm

from pymatgen_elfml import io, pretrained, symmetry
from pymatgen_elfml.features import sad_features
from pymatgen_elfml.grid import check_spacing, grid_shape, resample_periodic
from pymatgen_elfml.inference import InferenceSettings, check_memory, predict_grid, resolve_device
from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.sad import sad_density


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
    """

    def __init__(self, net: PeriodicUNet3D, spec: pretrained.ModelSpec, device: str | torch.device = "auto",
                 settings: InferenceSettings | None = None):
        self.device = resolve_device(device)
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
        net, spec = pretrained.load_model(pretrained.resolve(name_or_path))
        base = InferenceSettings(patch_size=spec.patch_size, halo=spec.halo)
        return cls(net, spec, device, replace(base, **settings))

    def save_pretrained(self, path: str | os.PathLike) -> os.PathLike:
        """Write ``config.json`` and ``weights.pt`` to folder ``path``."""
        return pretrained.save_model(self.net, self.spec, path)

    def predict(self, structure: Any, grid: tuple[int, int, int] | None = None, spacing: float | None = None,
                symmetrize: bool = True) -> Elfcar:
        """ELF of one structure.

        The network always runs at the model's native spacing on a symmetry-commensurate
        grid; ``grid`` (an explicit shape, e.g. an existing CHGCAR's) or ``spacing``
        (Angstrom) choose the grid the result is resampled onto (periodic cubic spline).

        Args:
            structure: pymatgen ``Structure``, ``ase.Atoms`` or a structure file path.
            grid: output grid (n0, n1, n2), each >= 2**depth.
            spacing: output grid spacing in Angstrom (ignored when ``grid`` is given).
            symmetrize: average the output exactly over the operators that map the grid onto
                itself (all of them unless the cell's origin gives some irrational translations).

        Returns:
            ``Elfcar`` with one block ("total"), values in [0, 1].
        """
        structure, cell = io.load_cell(structure)
        self._warn_outside_training(structure)
        ops = symmetry.seitz_ops(cell)
        out_shape = self._output_shape(cell, ops, grid, spacing)
        native = grid_shape(cell.lattice, self.spec.native_spacing, ops, self.spec.arch.size_multiple)
        check_memory(native, self.settings)
        check_memory(out_shape, self.settings)
        sad = sad_density(cell.lattice, cell.frac, cell.numbers, native, self.spec.sad_sigma)
        if self.spec.arch.inputs != "log_sad":
            sad = sad_features(sad, cell.lattice, cell.frac, self.spec.arch.inputs)
        pooling = self.spec.arch.symm_input or self.spec.arch.symm_stages
        elf = predict_grid(self.net, sad, ops if pooling else None, self.settings, self.device)
        if not np.all(np.isfinite(elf)):
            raise RuntimeError("the network produced NaN/inf values: the weights are probably corrupted")
        if symmetrize:
            elf = symmetry.symmetrize(elf, symmetry.commensurate_ops(native, ops))
        if out_shape != native:
            elf = np.clip(resample_periodic(elf, out_shape, order=3), 0.0, 1.0)
            if symmetrize:
                elf = symmetry.symmetrize(elf, symmetry.commensurate_ops(out_shape, ops))
        return io.to_elfcar(structure, elf)

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
                     **kwargs: Any) -> Iterator[Elfcar | Exception]:
        """Predict lazily over many structures with a tqdm progress bar; kwargs go to ``predict``.

        Args:
            errors: "raise" stops at the first structure that cannot be predicted; "skip" yields
                the exception (``StructureError``, ``ValueError``, ``MemoryError``, ...) in its place
                and goes on, so results stay aligned with the inputs.
        """
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        items = structures if isinstance(structures, (list, tuple)) else list(structures)
        for item in tqdm(items, desc="ELF", unit="structure", disable=not progress):
            try:
                yield self.predict(item, **kwargs)
            except (ValueError, FileNotFoundError, MemoryError, RuntimeError) as exc:
                if errors == "raise":
                    raise
                yield exc

