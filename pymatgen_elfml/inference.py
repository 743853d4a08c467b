"""Run the network over a full periodic SAD grid: whole cell, or batched patches with a halo."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from tqdm.auto import tqdm

from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.patches import Stitcher, extract, patch_starts
from pymatgen_elfml.symmetry import SeitzOps, pad_seitz, patch_ops


@dataclass(frozen=True)
class InferenceSettings:
    """How a grid is pushed through the network.

    Attributes:
        mode: "whole" runs the cell as one periodic tensor (exact torus, needs sizes that are
            multiples of 2**depth); "patches" cuts cores of ``patch_size`` with a ``halo`` of
            context on every side; "auto" picks "whole" up to ``max_whole_voxels``.
        patch_size: core edge in voxels.
        halo: context width in voxels; patch_size + 2 halo must be a multiple of 2**depth.
        batch_size: patches per forward pass (peak memory scales with it, not with the cell).
        max_whole_voxels: the "auto" threshold.
        memory_budget_gb: refuse grids whose estimated memory (``BYTES_PER_VOXEL`` per voxel of the
            native grid) exceeds this many GB, before any work; None: no check.
        progress: a tqdm bar over patch batches for grids with more than ``PROGRESS_VOXELS`` voxels.
    """

    mode: Literal["auto", "whole", "patches"] = "auto"
    patch_size: int = 48
    halo: int = 8
    batch_size: int = 4
    max_whole_voxels: int = 96**3
    memory_budget_gb: float | None = 8.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "whole", "patches"):
            raise ValueError(f"mode must be 'auto', 'whole' or 'patches', got {self.mode!r}")
        if self.patch_size < 1 or self.halo < 0 or self.batch_size < 1:
            raise ValueError(f"need patch_size >= 1, halo >= 0, batch_size >= 1: {self}")


# peak memory growth per voxel of the native grid (SAD features, output, symmetrization, stitching):
# 607 MB for a 128^3 grid with elf-metals-v2 on CPU (ru_maxrss before/after one predict)
BYTES_PER_VOXEL = 300
PROGRESS_VOXELS = 64**3 * 8


def check_memory(shape: tuple[int, int, int], settings: InferenceSettings) -> None:
    """Raise ``MemoryError`` with the numbers if a grid would exceed the memory budget."""
    voxels = int(np.prod(shape))
    need = voxels * BYTES_PER_VOXEL / 1e9
    if settings.memory_budget_gb is not None and need > settings.memory_budget_gb:
        raise MemoryError(f"the model's grid {tuple(shape)} ({voxels / 1e6:.0f} M voxels at the native spacing) needs about "
                          f"{need:.0f} GB, more than the memory budget of {settings.memory_budget_gb:g} GB; pass "
                          f"memory_budget_gb=None (or a larger value) to go on, or predict a smaller cell")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA if available, else MPS, else CPU; anything else is passed to torch."""
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _op_tensors(ops_list: list[SeitzOps], extent: np.ndarray, device) -> tuple[torch.Tensor, ...]:
    """Padded (B, R_max, 4, 4) operators, (B, R_max) mask and (B, 3) extent as float32 tensors."""
    mats, mask = pad_seitz([o.as_matrices() for o in ops_list])
    ext = np.tile(np.asarray(extent, dtype=float), (len(ops_list), 1))
    return tuple(torch.as_tensor(a, dtype=torch.float32, device=device) for a in (mats, mask, ext))


def _forward(net, inputs: np.ndarray, ops_list, extent, device) -> np.ndarray:
    """(B, C, n0, n1, n2) inputs -> (B, n0, n1, n2) outputs."""
    x = torch.as_tensor(inputs, dtype=torch.float32, device=device)
    sym = _op_tensors(ops_list, extent, device) if ops_list is not None else (None, None, None)
    with torch.inference_mode(), _autocast(device):
        y = net(x, *sym)
    return y[:, 0].float().cpu().numpy()


def predict_grid(
    net: PeriodicUNet3D,
    sad: np.ndarray,
    ops: SeitzOps | None,
    settings: InferenceSettings = InferenceSettings(),
    device: torch.device = torch.device("cpu"),
) -> np.ndarray:
    """Network output on every point of a periodic grid.

    Args:
        net: the model, already on ``device`` and in eval mode.
        sad: (N0, N1, N2) SAD in e/Angstrom^3, or (C, N0, N1, N2) input channels
            (``features.sad_features``) for a network with feature inputs.
        ops: the cell's Seitz operators (None: no symmetry pooling).
        settings: whole-cell or patch inference.

    Returns:
        (N0, N1, N2) float64 prediction (not yet symmetrized).
    """
    inputs = sad[None] if sad.ndim == 3 else sad
    shape = inputs.shape[1:]
    mult = net.config.size_multiple
    whole = settings.mode == "whole" or (settings.mode == "auto" and np.prod(shape) <= settings.max_whole_voxels)
    if whole:
        if any(n % mult for n in shape):
            raise ValueError(f"whole-cell inference needs grid sizes that are multiples of {mult}, got {shape}")
        out = _forward(net, inputs[None], None if ops is None else [ops], np.ones(3), device)
        return out[0].astype(np.float64)
    edge = settings.patch_size + 2 * settings.halo
    if edge % mult:
        raise ValueError(f"patch_size + 2*halo = {edge} must be a multiple of {mult}")
    starts = patch_starts(shape, settings.patch_size)
    extent = edge / np.asarray(shape, dtype=float)
    stitcher = Stitcher(shape)
    h, p = settings.halo, settings.patch_size
    show = settings.progress and int(np.prod(shape)) > PROGRESS_VOXELS
    for b0 in tqdm(range(0, len(starts), settings.batch_size), desc="ELF patches", unit="batch", disable=not show):
        batch = starts[b0 : b0 + settings.batch_size]
        cut = np.stack([extract(c, batch - h, edge) for c in inputs], axis=1)
        ops_list = None if ops is None else [patch_ops(ops, s - h, edge, shape) for s in batch]
        pred = _forward(net, cut, ops_list, extent, device)
        stitcher.add(pred[:, h : h + p, h : h + p, h : h + p], batch)
    return stitcher.result()
