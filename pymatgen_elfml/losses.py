"""Training objective of the first paper: Smooth-L1 + periodic gradient + soft-histogram KL,
balanced by learned log-precisions: L = sum_k exp(-eta_k) L_k + eta_k.

All terms take (B, 1, E, E, E) predictions and targets on patches with a ``halo`` of context
and are evaluated on the core; the gradient term uses forward differences that reach one
voxel into the halo, i.e. the circular forward difference of the periodic field.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TERMS = ("vox", "grad", "hist")


def _core(x: torch.Tensor, halo: int, extra: int = 0) -> torch.Tensor:
    if halo == 0 and extra == 0:
        return x
    e = x.shape[-1]
    return x[..., halo : e - halo + extra, halo : e - halo + extra, halo : e - halo + extra]


def voxel_loss(pred: torch.Tensor, target: torch.Tensor, halo: int = 0, beta: float = 0.05) -> torch.Tensor:
    """Smooth-L1 on the core voxels (beta in ELF units)."""
    return F.smooth_l1_loss(_core(pred, halo), _core(target, halo), beta=beta)


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, halo: int = 0) -> torch.Tensor:
    """sum over axes of the mean |D_a pred - D_a target|, D_a the forward difference (circular when halo = 0)."""
    total = pred.new_zeros(())
    for axis in (-3, -2, -1):
        if halo == 0:
            dp, dt = torch.roll(pred, -1, axis) - pred, torch.roll(target, -1, axis) - target
        else:
            p, t = _core(pred, halo, 1), _core(target, halo, 1)
            n = p.shape[axis]
            dp = p.narrow(axis, 1, n - 1) - p.narrow(axis, 0, n - 1)
            dt = t.narrow(axis, 1, n - 1) - t.narrow(axis, 0, n - 1)
            dp, dt = _trim(dp, axis), _trim(dt, axis)
        total = total + (dp - dt).abs().mean()
    return total


def _trim(d: torch.Tensor, axis: int) -> torch.Tensor:
    """Drop the extra halo voxel on the two axes that were not differenced."""
    for other in (-3, -2, -1):
        if other != axis:
            d = d.narrow(other, 0, d.shape[other] - 1)
    return d


def soft_histogram(x: torch.Tensor, bins: int = 32, width: float | None = None) -> torch.Tensor:
    """Gaussian-smoothed histogram of values in [0, 1] per item: (B, bins), rows sum to 1."""
    centers = (torch.arange(bins, device=x.device, dtype=x.dtype) + 0.5) / bins
    width = width or 1.0 / bins
    flat = x.reshape(x.shape[0], -1, 1)
    weights = torch.exp(-0.5 * ((flat - centers) / width) ** 2).sum(dim=1)
    return weights / weights.sum(dim=1, keepdim=True)


def histogram_kl(pred: torch.Tensor, target: torch.Tensor, halo: int = 0, bins: int = 32, eps: float = 1e-6) -> torch.Tensor:
    """KL(target histogram || predicted histogram), averaged over the batch."""
    p = soft_histogram(_core(target, halo), bins) + eps
    q = soft_histogram(_core(pred, halo), bins) + eps
    return (p * (p.log() - q.log())).sum(dim=1).mean()


class UncertaintyWeightedLoss(nn.Module):
    """L = sum_k exp(-eta_k) L_k + eta_k with learnable eta (initialised at 0)."""

    def __init__(self, halo: int = 0):
        super().__init__()
        self.halo = halo
        self.eta = nn.Parameter(torch.zeros(len(TERMS)))

    def terms(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        pred, target = pred.float(), target.float()
        return {"vox": voxel_loss(pred, target, self.halo), "grad": gradient_loss(pred, target, self.halo),
                "hist": histogram_kl(pred, target, self.halo)}

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        terms = self.terms(pred, target)
        total = sum(torch.exp(-self.eta[i]) * terms[k] + self.eta[i] for i, k in enumerate(TERMS))
        return total, {k: float(v.detach()) for k, v in terms.items()}
