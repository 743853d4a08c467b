"""Run the network over a full periodic SAD grid: whole cell, or batched patches with a halo."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from tqdm.auto import tqdm

from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.nn.symmavg import SymmAvg3D
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
        precision: "fp32"; "bf16" (bfloat16 autocast of the convolutions; the output head always runs
            in float32); "auto": bf16 where it is native (``native_bf16``: CUDA, CPUs with AMX), else fp32.
    """

    mode: Literal["auto", "whole", "patches"] = "auto"
    patch_size: int = 48
    halo: int = 8
    batch_size: int = 4
    max_whole_voxels: int = 96**3
    memory_budget_gb: float | None = 8.0
    progress: bool = True
    precision: Literal["auto", "fp32", "bf16"] = "auto"

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "whole", "patches"):
            raise ValueError(f"mode must be 'auto', 'whole' or 'patches', got {self.mode!r}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
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
    """"auto" -> CUDA if available, else CPU; anything else is passed to torch.

    Apple's MPS is used only when asked for (``device="mps"``): the forward path is then float32
    only (``float32_only``), but it has not been run on MPS hardware by this project.
    """
    if str(device) != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def float32_only(net: PeriodicUNet3D) -> PeriodicUNet3D:
    """Cast float64 buffers (the forest's leaf values) to float32 and make symmetry pooling compute its
    sampling grids in float32: what a backend without float64 (MPS) needs. Returns ``net``."""
    net.float()
    for module in net.modules():
        if isinstance(module, SymmAvg3D):
            module.geometry_dtype = torch.float32
    return net


def autocast(device: torch.device, precision: str = "auto"):
    """The autocast context of a precision setting (see ``InferenceSettings.precision``)."""
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 convolutions are fast here: CUDA, or a CPU with AMX tiles (Intel Sapphire Rapids and
    later; there bf16 ran 1.3-3x faster than fp32, see benchmarks/speed.py). Elsewhere bf16 is emulated."""
    if device.type == "cuda":
        return True
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch 2.x: probe defensively
    try:
        return device.type == "cpu" and bool(check is not None and check())
    except Exception:  # noqa: BLE001 - a probe that fails means "no"
        return False


def _op_tensors(ops_list: list[SeitzOps], extent: np.ndarray, device) -> tuple[torch.Tensor, ...]:
    """Padded (B, R_max, 4, 4) operators, (B, R_max) mask and (B, 3) extent as float32 tensors."""
    mats, mask = pad_seitz([o.as_matrices() for o in ops_list])
    ext = np.tile(np.asarray(extent, dtype=float), (len(ops_list), 1))
    return tuple(torch.as_tensor(a, dtype=torch.float32, device=device) for a in (mats, mask, ext))


def _forward(net, inputs: np.ndarray, ops_list, extent, device, local: np.ndarray | None = None,
             precision: str = "auto") -> np.ndarray:
    """(B, C, n0, n1, n2) inputs (and (B, n0, n1, n2) local logits or None) -> (B, n0, n1, n2) outputs."""
    x = torch.as_tensor(inputs, dtype=torch.float32, device=device)
    sym = _op_tensors(ops_list, extent, device) if ops_list is not None else (None, None, None)
    loc = None if local is None else torch.as_tensor(local[:, None], dtype=torch.float32, device=device)
    with torch.inference_mode(), autocast(device, precision):
        y = net(x, *sym, local=loc)
    return y[:, 0].float().cpu().numpy()


def predict_grid(
    net: PeriodicUNet3D,
    sad: np.ndarray,
    ops: SeitzOps | None,
    settings: InferenceSettings = InferenceSettings(),
    device: torch.device = torch.device("cpu"),
    local: np.ndarray | None = None,
) -> np.ndarray:
    """Network output on every point of a periodic grid.

    Args:
        net: the model, already on ``device`` and in eval mode.
        sad: (N0, N1, N2) SAD in e/Angstrom^3, or (C, N0, N1, N2) input channels
            (``features.sad_features``) for a network with feature inputs.
        ops: the cell's Seitz operators (None: no symmetry pooling).
        settings: whole-cell or patch inference.
        local: (N0, N1, N2) precomputed ``net.local_logits`` (None: the network computes them).

    Returns:
        (N0, N1, N2) float64 prediction (not yet symmetrized).
    """
    inputs = sad[None] if sad.ndim == 3 else sad
    if runs_whole(inputs.shape[1:], settings, net.config.size_multiple):
        return predict_cells(net, [inputs], [ops], [local], settings, device)[0]
    shape = inputs.shape[1:]
    edge = settings.patch_size + 2 * settings.halo
    if edge % net.config.size_multiple:
        raise ValueError(f"patch_size + 2*halo = {edge} must be a multiple of {net.config.size_multiple}")
    starts = patch_starts(shape, settings.patch_size)
    extent = edge / np.asarray(shape, dtype=float)
    stitcher = Stitcher(shape)
    h, p = settings.halo, settings.patch_size
    show = settings.progress and int(np.prod(shape)) > PROGRESS_VOXELS
    for b0 in tqdm(range(0, len(starts), settings.batch_size), desc="patches", unit="batch", disable=not show):
        batch = starts[b0 : b0 + settings.batch_size]
        cut = np.stack([extract(c, batch - h, edge) for c in inputs], axis=1)
        loc = None if local is None else extract(local, batch - h, edge)
        ops_list = None if ops is None else [patch_ops(ops, s - h, edge, shape) for s in batch]
        pred = _forward(net, cut, ops_list, extent, device, loc, settings.precision)
        stitcher.add(pred[:, h : h + p, h : h + p, h : h + p], batch)
    return stitcher.result()


def runs_whole(shape: tuple[int, ...], settings: InferenceSettings, multiple: int) -> bool:
    """Whether a grid goes through the network as one periodic tensor (else: patches).

    Raises:
        ValueError: whole-cell mode asked for a grid whose sizes are not multiples of ``multiple``.
    """
    whole = settings.mode == "whole" or (settings.mode == "auto" and np.prod(shape) <= settings.max_whole_voxels)
    if whole and any(n % multiple for n in shape):
        raise ValueError(f"whole-cell inference needs grid sizes that are multiples of {multiple}, got {tuple(shape)}")
    return bool(whole)


def predict_cells(net: PeriodicUNet3D, inputs: list[np.ndarray], ops: list[SeitzOps | None],
                  local: list[np.ndarray | None], settings: InferenceSettings, device: torch.device) -> list[np.ndarray]:
    """Whole-cell outputs of several cells, those of equal grid shape batched ``settings.batch_size``
    at a time into one forward pass (GroupNorm normalises each item on its own: batching does not
    change the result).

    Args:
        inputs: per cell (C, N0, N1, N2) channels; ops: per cell Seitz operators or None;
            local: per cell (N0, N1, N2) local logits or None (all None or none None).

    Returns:
        per cell (N0, N1, N2) float64 outputs, in input order.
    """
    out: list[np.ndarray | None] = [None] * len(inputs)
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(inputs):
        groups.setdefault((x.shape, ops[i] is None, local[i] is None), []).append(i)
    for members in groups.values():
        for b0 in range(0, len(members), settings.batch_size):
            idx = members[b0 : b0 + settings.batch_size]
            loc = None if local[idx[0]] is None else np.stack([local[i] for i in idx])
            ops_list = None if ops[idx[0]] is None else [ops[i] for i in idx]
            pred = _forward(net, np.stack([inputs[i] for i in idx]), ops_list, np.ones(3), device, loc,
                            settings.precision)
            for k, i in enumerate(idx):
                out[i] = pred[k].astype(np.float64)
    return out
