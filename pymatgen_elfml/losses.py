"""Training objective of the first paper: Smooth-L1 + periodic gradient + soft-histogram KL,
balanced by learned log-precisions: L = sum_k exp(-eta_k) L_k + eta_k (eta initialised from the
first batch's terms, eta_k = ln L_k, so that no term dominates at the start); or fixed weights
(``learned=False``: L = sum_k w_k L_k, e.g. Smooth-L1 + 0.5 gradient, no histogram).

The voxel and gradient terms take an optional per-voxel weight (B, 1, E, E, E), e.g. to
down-weight the region near nuclei where GPAW's ELF is a pseudo-core artefact.

All terms take (B, 1, E, E, E) predictions and targets on patches with a ``halo`` of context
and are evaluated on the core; the gradient term uses forward differences that reach one
voxel into the halo, i.e. the circular forward difference of the periodic field.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TERMS = ("vox", "grad", "hist")


def region_weight(far, core_weight: float):
    """Per-voxel loss weights from a far-from-nuclei mask (1 or 0, tensor or array): 1 far from nuclei,
    ``core_weight`` within the core radius; same shape and type as ``far``."""
    return far + core_weight * (1.0 - far)


def _core(x: torch.Tensor, halo: int, extra: int = 0) -> torch.Tensor:
    if halo == 0 and extra == 0:
        return x
    e = x.shape[-1]
    return x[..., halo : e - halo + extra, halo : e - halo + extra, halo : e - halo + extra]


def _mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    return x.mean() if weight is None else (x * weight).sum() / weight.sum().clamp(min=1e-12)


def voxel_loss(pred: torch.Tensor, target: torch.Tensor, halo: int = 0, beta: float = 0.05,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """(Weighted) mean Smooth-L1 on the core voxels (beta in ELF units)."""
    w = None if weight is None else _core(weight, halo)
    return _mean(F.smooth_l1_loss(_core(pred, halo), _core(target, halo), beta=beta, reduction="none"), w)


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, halo: int = 0, weight: torch.Tensor | None = None) -> torch.Tensor:
    """sum over axes of the (weighted) mean |D_a pred - D_a target|, D_a the forward difference
    (circular when halo = 0); a difference is weighted by the weight of its first voxel."""
    total = pred.new_zeros(())
    for axis in (-3, -2, -1):
        if halo == 0:
            dp, dt, w = torch.roll(pred, -1, axis) - pred, torch.roll(target, -1, axis) - target, weight
        else:
            p, t = _core(pred, halo, 1), _core(target, halo, 1)
            n = p.shape[axis]
            dp = p.narrow(axis, 1, n - 1) - p.narrow(axis, 0, n - 1)
            dt = t.narrow(axis, 1, n - 1) - t.narrow(axis, 0, n - 1)
            dp, dt = _trim(dp, axis), _trim(dt, axis)
            w = None if weight is None else _trim(_core(weight, halo, 1).narrow(axis, 0, n - 1), axis)
        total = total + _mean((dp - dt).abs(), w)
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
    """L = sum_k exp(-eta_k) L_k + eta_k with learnable eta, or L = sum_k w_k L_k with fixed weights.

    Args:
        halo: context voxels excluded from every term.
        learned: learn the log-precisions eta (else use ``fixed``).
        fixed: weights (vox, grad, hist) when not learned; a zero weight skips the term.
        init_from_first: set eta_k = ln L_k on the first batch seen with gradients enabled, i.e. the
            first training batch (learned only; else eta = 0).
    """

    def __init__(self, halo: int = 0, learned: bool = True, fixed: tuple[float, float, float] = (1.0, 0.5, 0.0),
                 init_from_first: bool = True):
        super().__init__()
        self.halo, self.learned, self.fixed = halo, learned, tuple(float(w) for w in fixed)
        self.eta = nn.Parameter(torch.zeros(len(TERMS)), requires_grad=learned)
        self.register_buffer("initialised", torch.tensor(not (learned and init_from_first)))

    def terms(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        pred, target = pred.float(), target.float()
        out = {"vox": voxel_loss(pred, target, self.halo, weight=weight),
               "grad": gradient_loss(pred, target, self.halo, weight=weight)}
        if self.learned or self.fixed[2]:
            out["hist"] = histogram_kl(pred, target, self.halo)
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        terms = self.terms(pred, target, weight)
        if not self.learned:
            total = sum(w * terms[k] for w, k in zip(self.fixed, TERMS) if k in terms)
            return total, {k: float(v.detach()) for k, v in terms.items()}
        if not bool(self.initialised) and torch.is_grad_enabled():  # from the first training batch
            with torch.no_grad():
                self.eta.copy_(torch.stack([terms[k].detach().clamp(min=1e-8).log() for k in TERMS]))
                self.initialised.fill_(True)
        total = sum(torch.exp(-self.eta[i]) * terms[k] + self.eta[i] for i, k in enumerate(TERMS))
        return total, {k: float(v.detach()) for k, v in terms.items()}
