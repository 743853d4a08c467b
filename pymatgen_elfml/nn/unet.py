"""PeriodicUNet3D: the SAD -> ELF operator of the first paper."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from pymatgen_elfml.nn.layers import Down, Head, PeriodicConv3d, ResBlock, Up
from pymatgen_elfml.nn.symmavg import SymmAvg3D


@dataclass(frozen=True)
class UNetConfig:
    """Constructor arguments of ``PeriodicUNet3D`` (stored with the weights as JSON).

    Attributes:
        base_channels: channels at full resolution; stage l has base * 2**l.
        depth: number of stride-2 downsamplings; spatial sizes must be multiples of 2**depth.
        groups: GroupNorm groups (must divide every stage's channel count).
        dropout: Dropout3d probability inside residual blocks.
        symm_input: apply SymmAvg3D to the (log) SAD input.
        symm_stages: also apply it after every encoder and decoder stage.
        log_input: feed log(1 + rho) instead of rho (rho in e/Angstrom^3).
    """

    base_channels: int = 16
    depth: int = 3
    groups: int = 8
    dropout: float = 0.0
    symm_input: bool = True
    symm_stages: bool = False
    log_input: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.base_channels, int) or self.base_channels < 1:
            raise ValueError(f"base_channels must be a positive integer, got {self.base_channels!r}")
        if not isinstance(self.depth, int) or not 0 <= self.depth <= 6:
            raise ValueError(f"depth must be an integer in 0..6, got {self.depth!r}")
        if not isinstance(self.groups, int) or self.groups < 1 or self.base_channels % self.groups:
            raise ValueError(f"groups ({self.groups!r}) must be a positive divisor of base_channels ({self.base_channels})")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("symm_input", "symm_stages", "log_input"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def size_multiple(self) -> int:
        """Every spatial input size must be a multiple of this (2**depth)."""
        return 2**self.depth

    def to_dict(self) -> dict:
        return asdict(self)


class PeriodicUNet3D(nn.Module):
    """3D U-Net on the torus with optional symmetry pooling.

    Input (B, 1, n0, n1, n2) SAD in e/Angstrom^3, every n_i a multiple of 2**depth;
    output (B, 1, n0, n1, n2) ELF in [0, 1].
    """

    def __init__(self, config: UNetConfig | None = None, **kwargs):
        super().__init__()
        self.config = config if config is not None else UNetConfig(**kwargs)
        c, g, p = self.config.base_channels, self.config.groups, self.config.dropout
        chans = [c * 2**level for level in range(self.config.depth + 1)]
        self.stem = nn.Sequential(PeriodicConv3d(1, c), ResBlock(c, c, g, p))
        self.downs = nn.ModuleList(Down(chans[i], chans[i + 1], g) for i in range(self.config.depth))
        self.enc = nn.ModuleList(ResBlock(chans[i + 1], chans[i + 1], g, p) for i in range(self.config.depth))
        self.ups = nn.ModuleList(Up(chans[i + 1], chans[i], g, p) for i in reversed(range(self.config.depth)))
        self.head = Head(c, g)
        self.symm = SymmAvg3D()

    def forward(
        self,
        sad: torch.Tensor,
        ops: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        extent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict ELF.

        Args:
            sad: (B, 1, n0, n1, n2) density in e/Angstrom^3.
            ops, mask, extent: symmetry of each item (see ``SymmAvg3D.forward``);
                None skips symmetry pooling.
        """
        m = self.config.size_multiple
        if sad.dim() != 5 or sad.shape[1] != 1 or any(n % m for n in sad.shape[2:]):
            raise ValueError(f"input must be (B, 1, n0, n1, n2) with sizes multiples of {m}, got {tuple(sad.shape)}")
        pool = ops is not None

        def symm(x: torch.Tensor, on: bool) -> torch.Tensor:
            return self.symm(x, ops, mask, extent) if pool and on else x

        x = torch.log1p(sad.clamp(min=0)) if self.config.log_input else sad
        x = symm(x, self.config.symm_input)
        skips = [self.stem(x)]
        for down, enc in zip(self.downs, self.enc):
            skips.append(symm(enc(down(skips[-1])), self.config.symm_stages))
        x = skips.pop()
        for up in self.ups:
            x = symm(up(x, skips.pop()), self.config.symm_stages)
        return self.head(x)
