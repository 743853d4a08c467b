"""SymmAvg3D: average a feature map over the space-group operators of its patch (first paper, appendix).

For a feature map f on a patch grid (d, h, w) and per-item Seitz operators {R|t'} in the
patch frame, output points sit at patch-fractional zeta_out = (i/d, j/h, k/w) and each
operator samples the input at

    zeta_in = wrap(S^-1 R^-1 S zeta_out - S^-1 R^-1 t'),   S = diag(p0/N0, p1/N1, p2/N2),

where p/N is the fraction of the unit cell the patch spans along each lattice vector
(the same at every U-Net stage). ``wrap`` maps into [0, 1); sampling is trilinear
(``grid_sample`` on the map padded by one voxel circularly, ``align_corners=True``, so
rho = 2 zeta - 1). Results are averaged over the operators with the item's mask.
R^-1 = R^T is exact only for orthonormal R; for integer R in a non-orthogonal lattice
we use the exact integer inverse, which equals R^T whenever R is orthogonal.

When the patch is the whole cell (S = I) on a commensurate grid the samples land on
grid points and the average is the exact group average. For a patch smaller than the
cell, an operator that moves points out of the patch wraps them back inside it (the
paper's definition): callers pass such patches the identity only (``symmetry.patch_ops``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SymmAvg3D(nn.Module):
    """Symmetry pooling over per-item Seitz operators (no parameters).

    Attributes:
        geometry_dtype: dtype of the sampling-grid arithmetic: float64 (default), float32 on backends
            without float64 (``inference.float32_only``); samples then land within ~1e-5 voxel of grid points.
    """

    geometry_dtype = torch.float64

    def forward(
        self,
        x: torch.Tensor,
        ops: torch.Tensor,
        mask: torch.Tensor,
        extent: torch.Tensor,
    ) -> torch.Tensor:
        """Average ``x`` over the operators.

        Args:
            x: (B, C, d, h, w) features.
            ops: (B, R_max, 4, 4) Seitz matrices in the patch frame (padding rows arbitrary).
            mask: (B, R_max) 1 for real operators, 0 for padding.
            extent: (B, 3) fraction of the cell spanned by the patch, p_i / N_i.

        Returns:
            (B, C, d, h, w) averaged features.
        """
        b, _, d, h, w = x.shape
        if ops.shape[:2] != mask.shape or ops.shape[0] != b or extent.shape != (b, 3):
            raise ValueError(f"ops {tuple(ops.shape)}, mask {tuple(mask.shape)}, extent {tuple(extent.shape)} do not match batch {b}")
        padded = F.pad(x, (0, 1, 0, 1, 0, 1), mode="circular")
        real = self.geometry_dtype
        zeta = _base_grid(d, h, w, x.device, real)  # (d*h*w, 3)
        s = extent.to(real)
        eye = torch.eye(3, dtype=real, device=x.device)
        valid = (mask > 0)[..., None, None]
        rot_inv = torch.linalg.inv(torch.where(valid, ops[:, :, :3, :3].to(real), eye))  # (B, R, 3, 3)
        # M = S^-1 R^-1 S, b = S^-1 R^-1 t'
        m = rot_inv * s[:, None, None, :] / s[:, None, :, None]
        shift = torch.einsum("brij,brj->bri", rot_inv, ops[:, :, :3, 3].to(real)) / s[:, None, :]
        weights = mask.to(x.dtype)
        out = torch.zeros_like(x)
        for r in range(ops.shape[1]):
            if not bool(weights[:, r].any()):
                continue
            z_in = torch.remainder(torch.einsum("bij,nj->bni", m[:, r], zeta) - shift[:, r, None, :], 1.0)
            grid = (2.0 * z_in - 1.0).flip(-1).reshape(b, d, h, w, 3).to(x.dtype)
            sampled = F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=True)
            out = out + sampled * weights[:, r].view(b, 1, 1, 1, 1)
        return out / weights.sum(dim=1).clamp(min=1).view(b, 1, 1, 1, 1)


def _base_grid(d: int, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    axes = [torch.arange(n, dtype=dtype, device=device) / n for n in (d, h, w)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
