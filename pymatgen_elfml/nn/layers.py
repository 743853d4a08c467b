"""Periodic building blocks: every convolution pads circularly, so the domain is a 3-torus.

Tensors are (B, C, n0, n1, n2) with array axis 0 along lattice vector a, as in numpy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PeriodicConv3d(nn.Module):
    """Circular padding of (k-1)/2 on every side, then ``Conv3d`` with no padding.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel edge k.
        stride: 1, or 2 for periodic downsampling (spatial sizes must then be even).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.pad = (kernel_size - 1) // 2
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 6, mode="circular")
        return self.conv(x)


def periodic_upsample(x: torch.Tensor) -> torch.Tensor:
    """Trilinear x2 upsampling of a periodic field (wrap-around at the faces).

    Pads one voxel circularly, upsamples with ``align_corners=False`` and crops, so that
    output voxel j sits at input coordinate (j + 0.5)/2 - 0.5 with periodic neighbours.
    """
    n = x.shape[-3:]
    up = F.interpolate(F.pad(x, (1,) * 6, mode="circular"), scale_factor=2, mode="trilinear", align_corners=False)
    return up[..., 2 : 2 + 2 * n[0], 2 : 2 + 2 * n[1], 2 : 2 + 2 * n[2]]


class ResBlock(nn.Module):
    """PConv-GN-GELU-(Dropout3d)-PConv-GN, plus the (1x1-projected) input, then GELU."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            PeriodicConv3d(in_channels, out_channels),
            nn.GroupNorm(groups, out_channels),
            nn.GELU(),
            nn.Dropout3d(dropout) if dropout > 0 else nn.Identity(),
            PeriodicConv3d(out_channels, out_channels),
            nn.GroupNorm(groups, out_channels),
        )
        self.skip = nn.Identity() if in_channels == out_channels else PeriodicConv3d(in_channels, out_channels, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class Down(nn.Sequential):
    """Stride-2 periodic convolution, GroupNorm, GELU: halves every spatial size."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__(PeriodicConv3d(in_channels, out_channels, 3, stride=2), nn.GroupNorm(groups, out_channels), nn.GELU())


class Up(nn.Module):
    """Periodic trilinear x2, periodic conv, concat with the encoder skip, ResBlock, merge conv."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.conv = PeriodicConv3d(in_channels, out_channels)
        self.res = ResBlock(2 * out_channels, 2 * out_channels, groups, dropout)
        self.merge = PeriodicConv3d(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.conv(periodic_upsample(x))
        return self.merge(self.res(torch.cat([x, skip], dim=1)))


class Head(nn.Sequential):
    """PConv 3x3x3 - GroupNorm - GELU - PConv 1x1x1 to one channel - Sigmoid (ELF in [0, 1])."""

    def __init__(self, channels: int, groups: int):
        super().__init__(
            PeriodicConv3d(channels, channels, 3),
            nn.GroupNorm(groups, channels),
            nn.GELU(),
            PeriodicConv3d(channels, 1, 1),
            nn.Sigmoid(),
        )
