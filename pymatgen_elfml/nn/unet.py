"""PeriodicUNet3D: the SAD -> ELF operator of the first paper."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch
from torch import nn

from pymatgen_elfml.features import SEMILOCAL_CHANNEL, base_channel, channel_names
from pymatgen_elfml.nn.layers import Down, Head, PeriodicConv3d, ResBlock, Up
from pymatgen_elfml.nn.symmavg import SymmAvg3D
from pymatgen_elfml.nn.trees import TreeEnsemble


TARGETS = ("elf", "density")


@dataclass(frozen=True)
class UNetConfig:
    """Constructor arguments of ``PeriodicUNet3D`` (stored with the weights as JSON).

    Attributes:
        base_channels: channels at full resolution; stage l has base * 2**l.
        depth: number of stride-2 downsamplings; spatial sizes must be multiples of 2**depth.
        groups: GroupNorm groups (must divide every stage's channel count).
        dropout: Dropout3d probability inside residual blocks.
        symm_input: apply SymmAvg3D to the (log) SAD input. Off by default: the SAD of a whole cell is
            exactly symmetric already and a sub-cell patch has no operators of its own, so it changes
            nothing (kept for models saved with it on, e.g. the retired elf-metals-v1).
        symm_stages: apply it after every encoder and decoder stage, where it acts on whole cells
            (training study row I: val MAE 0.0289 after 2 epochs vs 0.0292 after 12 without it).
        log_input: feed log(1 + rho) instead of rho (rho in e/Angstrom^3); only for ``inputs="log_sad"``.
        inputs: the input channels, a key of ``features.FEATURE_SETS``: "log_sad" takes the raw SAD
            (one channel, first paper); "sad_features" takes the channels of ``features.sad_features``,
            standardised inside the network with per-channel shift and scale buffers set from the
            training data (``set_input_stats``).
        logit_residual: predict a correction to the semilocal ELF channel in logit space,
            ELF = sigmoid(logit(ELF_semilocal) + head); needs an input set with that channel.
        pointwise_hidden: width of a per-voxel MLP (1x1x1 convolutions, two hidden layers) on the
            standardised inputs whose logit is added to the U-Net's (0: none). It learns the local
            map from features to ELF (what a per-voxel regressor learns); the U-Net, whose last layer
            then starts at zero, learns the correction that needs context.
        pointwise_trees: number of regression trees of a per-voxel forest on the raw inputs (``nn.trees.
            TreeEnsemble``, fitted by ``train.local.fit_trees``) whose ELF, in logit space, is the base that
            the U-Net corrects (0: none). Excludes ``pointwise_hidden`` and ``logit_residual``.
        pointwise_leaves: the most leaves of one tree of that forest.
        pointwise_forests: number of such forests of ``pointwise_trees`` trees each, fitted with their own seeds
            and voxel samples, whose mean is the branch (a seed ensemble; 1: one forest). They are stored as
            one ``TreeEnsemble`` of pointwise_trees * pointwise_forests trees with leaf values over the count.
        target: what the network predicts. "elf": ELF in [0, 1] (a sigmoid of the logits; a forest
            branch fits the ELF and enters in logit space). "density": the valence density divided by
            its cell mean, rho * V / N_valence (dimensionless, mean 1), with no output activation: the
            reference (GPAW's pseudo density with compensation charges, like VASP's CHGCAR) is negative
            near the nuclei of some setups (Ga, Cs, Li, Al, ...), so a non-negative head could not fit it.
            With an input set holding a valence-density channel (``features.base_channel``: "valence", the
            superposed fitted profiles of ``inputs="valence_features"``, or "paw_valence", the free atoms' PAW
            densities of ``inputs="paw_features"``, over their mean) that channel is the base the branches correct.
    """

    base_channels: int = 16
    depth: int = 3
    groups: int = 8
    dropout: float = 0.0
    symm_input: bool = False
    symm_stages: bool = False
    log_input: bool = True
    inputs: str = "log_sad"
    logit_residual: bool = False
    pointwise_hidden: int = 0
    pointwise_trees: int = 0
    pointwise_leaves: int = 63
    pointwise_forests: int = 1
    target: str = "elf"

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
        names = channel_names(self.inputs)  # ValueError for an unknown set
        if self.logit_residual and SEMILOCAL_CHANNEL not in names:
            raise ValueError(f"logit_residual needs the {SEMILOCAL_CHANNEL!r} channel; inputs {self.inputs!r} lack it")
        if not isinstance(self.pointwise_hidden, int) or self.pointwise_hidden < 0:
            raise ValueError(f"pointwise_hidden must be an integer >= 0, got {self.pointwise_hidden!r}")
        if not isinstance(self.pointwise_trees, int) or self.pointwise_trees < 0:
            raise ValueError(f"pointwise_trees must be an integer >= 0, got {self.pointwise_trees!r}")
        if not isinstance(self.pointwise_forests, int) or self.pointwise_forests < 1:
            raise ValueError(f"pointwise_forests must be an integer >= 1, got {self.pointwise_forests!r}")
        if not isinstance(self.pointwise_leaves, int) or self.pointwise_leaves < 2:
            raise ValueError(f"pointwise_leaves must be an integer >= 2, got {self.pointwise_leaves!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.target != "elf" and self.logit_residual:
            raise ValueError("logit_residual corrects the semilocal ELF: it needs target='elf'")
        if self.pointwise_trees and (self.pointwise_hidden or self.logit_residual):
            raise ValueError("pointwise_trees replaces pointwise_hidden and logit_residual; set only one of them")

    @property
    def in_channels(self) -> int:
        """Channels of the network's input tensor."""
        return len(channel_names(self.inputs))

    @property
    def density_base(self) -> bool:
        """Whether the output is a valence-density input channel plus learned corrections (density target)."""
        return self.target == "density" and base_channel(self.inputs) is not None

    @property
    def has_local(self) -> bool:
        """Whether the network has a per-voxel branch (``PeriodicUNet3D.local_logits``) under the U-Net."""
        return bool(self.logit_residual or self.pointwise_hidden or self.pointwise_trees or self.density_base)

    @property
    def size_multiple(self) -> int:
        """Every spatial input size must be a multiple of this (2**depth)."""
        return 2**self.depth

    def to_dict(self) -> dict:
        return asdict(self)


class PeriodicUNet3D(nn.Module):
    """3D U-Net on the torus with optional symmetry pooling.

    Input (B, C, n0, n1, n2): the SAD in e/Angstrom^3 (C = 1, ``inputs="log_sad"``) or the channels of
    ``features.sad_features``; every n_i a multiple of 2**depth. Output (B, 1, n0, n1, n2): ELF in [0, 1],
    or for ``target="density"`` the density over its cell mean (see ``UNetConfig.target``).
    """

    def __init__(self, config: UNetConfig | None = None, **kwargs):
        super().__init__()
        self.config = config if config is not None else UNetConfig(**kwargs)
        c, g, p = self.config.base_channels, self.config.groups, self.config.dropout
        chans = [c * 2**level for level in range(self.config.depth + 1)]
        self.stem = nn.Sequential(PeriodicConv3d(self.config.in_channels, c), ResBlock(c, c, g, p))
        self.downs = nn.ModuleList(Down(chans[i], chans[i + 1], g) for i in range(self.config.depth))
        self.enc = nn.ModuleList(ResBlock(chans[i + 1], chans[i + 1], g, p) for i in range(self.config.depth))
        self.ups = nn.ModuleList(Up(chans[i + 1], chans[i], g, p) for i in reversed(range(self.config.depth)))
        self.head = Head(c, g)
        self.symm = SymmAvg3D()
        if self.config.inputs != "log_sad":
            n = self.config.in_channels
            self.register_buffer("input_shift", torch.zeros(n))
            self.register_buffer("input_scale", torch.ones(n))
        h = self.config.pointwise_hidden
        if h:
            self.pointwise = nn.Sequential(nn.Conv3d(self.config.in_channels, h, 1), nn.GELU(), nn.Conv3d(h, h, 1),
                                           nn.GELU(), nn.Conv3d(h, 1, 1))
        if self.config.pointwise_trees:
            self.trees = TreeEnsemble(self.config.pointwise_trees * self.config.pointwise_forests,
                                      self.config.pointwise_leaves, self.config.in_channels)
        if h or self.config.pointwise_trees or self.config.density_base:
            last = list(self.head)[-2]
            nn.init.zeros_(last.conv.weight)
            nn.init.zeros_(last.conv.bias)

    def local_logits(self, sad: torch.Tensor) -> torch.Tensor:
        """Logits that depend on each voxel's own inputs only: the semilocal ELF's (``logit_residual``)
        plus the pointwise MLP's, or the forest's; (B, 1, ...) for (B, C, ...) raw inputs of any spatial size.
        For ``target="density"`` there is no link function: the "logits" are the scaled density itself,
        the valence-density channel (``UNetConfig.density_base``) plus the forest's or the MLP's correction."""
        names = channel_names(self.config.inputs)
        base = sad[:, [names.index(base_channel(self.config.inputs))]] if self.config.density_base else None
        if self.config.pointwise_trees:
            values = self.trees(sad).float()
            if self.config.target == "elf":
                values = torch.logit(values.clamp(1e-3, 1 - 1e-3))
            return (values if base is None else values + base.float()).to(sad.dtype)
        out = torch.zeros_like(sad[:, :1]) if base is None else base.clone()
        if self.config.logit_residual:
            base = sad[:, channel_names(self.config.inputs).index(SEMILOCAL_CHANNEL)][:, None]
            out = out + torch.logit(base.float().clamp(1e-3, 1 - 1e-3)).to(out.dtype)
        if self.config.pointwise_hidden:
            out = out + self.pointwise(self._prepare(sad))
        return out

    def set_input_stats(self, shift: torch.Tensor, scale: torch.Tensor) -> None:
        """Per-channel standardisation x' = (x - shift) / scale of the feature inputs, (C,) each."""
        self.input_shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
        self.input_scale.copy_(torch.as_tensor(scale, dtype=torch.float32).clamp(min=1e-6))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.inputs == "log_sad":
            return torch.log1p(x.clamp(min=0)) if self.config.log_input else x
        return (x - self.input_shift[:, None, None, None]) / self.input_scale[:, None, None, None]

    def forward(
        self,
        sad: torch.Tensor,
        ops: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        extent: torch.Tensor | None = None,
        local: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict ELF, or the scaled density for ``target="density"``.

        Args:
            sad: (B, C, n0, n1, n2) SAD in e/Angstrom^3 or its feature channels (see the class docstring).
            ops, mask, extent: symmetry of each item (see ``SymmAvg3D.forward``);
                None skips symmetry pooling.
            local: (B, 1, n0, n1, n2) precomputed ``local_logits(sad)`` (training caches them when the
                pointwise branch is frozen); None computes them.
        """
        m = self.config.size_multiple
        c = self.config.in_channels
        if sad.dim() != 5 or sad.shape[1] != c or any(n % m for n in sad.shape[2:]):
            raise ValueError(f"input must be (B, {c}, n0, n1, n2) with sizes multiples of {m}, got {tuple(sad.shape)}")
        pool = ops is not None

        def symm(x: torch.Tensor, on: bool) -> torch.Tensor:
            return self.symm(x, ops, mask, extent) if pool and on else x

        x = symm(self._prepare(sad), self.config.symm_input)
        skips = [self.stem(x)]
        for down, enc in zip(self.downs, self.enc):
            skips.append(symm(enc(down(skips[-1])), self.config.symm_stages))
        x = skips.pop()
        for up in self.ups:
            x = symm(up(x, skips.pop()), self.config.symm_stages)
        with _float32(x.device.type):  # the output head runs in its weights' dtype under any autocast
            logits = x.to(self.head[0].conv.weight.dtype)
            for layer in list(self.head)[:-1]:  # the head without its final sigmoid
                logits = layer(logits)
            if self.config.has_local:
                logits = logits + (self.local_logits(sad) if local is None else local).to(logits.dtype)
            return self.activate(logits)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """The output of the network's logits: the head's sigmoid for ELF, the identity for a density."""
        return self.head[-1](logits) if self.config.target == "elf" else logits


def _float32(device_type: str):
    """Autocast switched off (CPU and CUDA; other backends have no autocast to switch off)."""
    if device_type in ("cpu", "cuda"):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
