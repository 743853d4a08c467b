"""Training configuration: a frozen dataclass filled from argparse, saved next to the weights."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from pymatgen_elfml.io import write_text_atomic
from pymatgen_elfml.nn import UNetConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on.

    Attributes:
        data: folder of triplets (``python -m pymatgen_elfml.data prepare``).
        out: run folder (checkpoints, metrics, final model).
        epochs, batch_size, lr, weight_decay: AdamW with cosine annealing over ``epochs``.
        patch, halo, stride: patch geometry in voxels (patch + 2 halo a multiple of 2**depth).
        base_channels, depth, groups, dropout, symm_input, symm_stages: ``UNetConfig``.
        native_spacing, sad_sigma: recorded in the model (Angstrom); must match the data.
        seed: seeds weights, shuffling and jitter.
        device: "auto", "cpu", "cuda", ...
        max_patches: cap on training patches per epoch (0: all), drawn by the seeded sampler.
        max_val_patches: cap on validation patches (0: all), the first ones in order.
        resume: continue from ``out/checkpoint.pt``.
    """

    data: str
    out: str
    epochs: int = 20
    batch_size: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patch: int = 32
    halo: int = 8
    stride: int = 32
    base_channels: int = 16
    depth: int = 3
    groups: int = 8
    dropout: float = 0.0
    symm_input: bool = True
    symm_stages: bool = False
    native_spacing: float = 0.10
    sad_sigma: float = 0.20
    seed: int = 0
    device: str = "auto"
    max_patches: int = 0
    max_val_patches: int = 0
    resume: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0: {self}")
        if (self.patch + 2 * self.halo) % (2**self.depth):
            raise ValueError(f"patch + 2*halo = {self.patch + 2 * self.halo} must be a multiple of 2**depth = {2**self.depth}")

    @property
    def arch(self) -> UNetConfig:
        return UNetConfig(base_channels=self.base_channels, depth=self.depth, groups=self.groups, dropout=self.dropout,
                          symm_input=self.symm_input, symm_stages=self.symm_stages)

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> TrainConfig:
        """Map command-line flags (--epochs 10, --no-symm-input, ...) onto the dataclass."""
        parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.train", description=cls.__doc__)
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            if f.type in ("bool", bool):
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
            elif f.name in ("data", "out"):
                parser.add_argument(flag, required=True)
            else:
                parser.add_argument(flag, type=type(f.default), default=f.default)
        return cls(**vars(parser.parse_args(argv)))
