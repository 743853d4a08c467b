"""Training configuration: a frozen dataclass filled from argparse, saved next to the weights."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from pymatgen_elfml.io import write_text_atomic
from pymatgen_elfml.nn import UNetConfig


RESUME_MAY_CHANGE = ("resume", "overwrite", "device", "max_minutes", "out", "data")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on.

    Attributes:
        data: folder of triplets (``python -m pymatgen_elfml.data prepare``).
        out: run folder (checkpoints, metrics, final model).
        epochs, batch_size, lr, weight_decay: AdamW with cosine annealing over ``epochs``.
        patch, halo, stride: patch geometry in voxels (patch + 2 halo a multiple of 2**depth).
        whole_cell: train on whole periodic cells (batches of equal grids, random roll per epoch)
            instead of patches; validation then runs on whole cells too.
        base_channels, depth, groups, dropout, symm_input, symm_stages, log_input, inputs,
            logit_residual: ``UNetConfig``.
        pointwise_hidden: ``UNetConfig.pointwise_hidden``; pointwise_steps: steps of fitting that
            branch alone on sampled voxels before the main training (``train.local``).
        pointwise_trees, pointwise_leaves: ``UNetConfig``; a gradient-boosted forest (scikit-learn,
            absolute error, at most that many trees and leaves) is fitted on sampled voxels first
            (``train.local.fit_trees``) and the U-Net learns its correction.
        loss: "composite" (Smooth-L1 + gradient + histogram KL, learned log-precisions initialised
            from the first batch) or "smoothl1_grad" (Smooth-L1 + grad_weight * gradient).
        core_radius, core_weight: voxels within core_radius (A) of a nucleus weigh core_weight in the
            voxel and gradient terms (1 elsewhere).
        train_fraction: keep this fraction of the training structures (seeded; learning curves).
        max_minutes: stop after the first epoch that ends past this wall time (0: no limit); the
            cosine schedule is then laid over the epochs that fit, estimated after the first epoch.
        patience: stop when validation MAE has not improved for this many epochs (0: never).
        native_spacing, sad_sigma: recorded in the model (Angstrom); must match the data.
        seed: seeds weights, shuffling and jitter.
        device: "auto", "cpu", "cuda", ...
        max_patches: cap on training patches per epoch (0: all), drawn by the seeded sampler.
        max_val_patches: cap on validation patches (0: all), the first ones in order.
        resume: continue from ``out/checkpoint.pt`` (the other settings must equal the run's, except
            ``RESUME_MAY_CHANGE``).
        overwrite: start over in a folder that already holds a run (its metrics, checkpoint and model
            are deleted first); without it such a folder is refused.
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
    whole_cell: bool = False
    base_channels: int = 16
    depth: int = 3
    groups: int = 8
    dropout: float = 0.0
    symm_input: bool = True
    symm_stages: bool = False
    log_input: bool = True
    inputs: str = "log_sad"
    logit_residual: bool = False
    pointwise_hidden: int = 0
    pointwise_steps: int = 0
    pointwise_trees: int = 0
    pointwise_leaves: int = 63
    loss: str = "composite"
    grad_weight: float = 0.5
    core_radius: float = 1.0
    core_weight: float = 1.0
    train_fraction: float = 1.0
    max_minutes: float = 0.0
    patience: int = 0
    native_spacing: float = 0.10
    sad_sigma: float = 0.20
    seed: int = 0
    device: str = "auto"
    max_patches: int = 0
    max_val_patches: int = 0
    resume: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0: {self}")
        if self.loss not in ("composite", "smoothl1_grad"):
            raise ValueError(f"loss must be 'composite' or 'smoothl1_grad', got {self.loss!r}")
        if not 0 < self.train_fraction <= 1 or self.core_weight < 0:
            raise ValueError(f"need 0 < train_fraction <= 1 and core_weight >= 0: {self}")
        if (self.patch + 2 * self.halo) % (2**self.depth):
            raise ValueError(f"patch + 2*halo = {self.patch + 2 * self.halo} must be a multiple of 2**depth = {2**self.depth}")

    @property
    def has_stage1(self) -> bool:
        """Whether a pointwise branch (MLP with steps, or forest) is fitted before the U-Net trains."""
        return bool((self.pointwise_hidden and self.pointwise_steps) or self.pointwise_trees)

    @property
    def arch(self) -> UNetConfig:
        return UNetConfig(base_channels=self.base_channels, depth=self.depth, groups=self.groups, dropout=self.dropout,
                          symm_input=self.symm_input, symm_stages=self.symm_stages, log_input=self.log_input,
                          inputs=self.inputs, logit_residual=self.logit_residual,
                          pointwise_hidden=self.pointwise_hidden, pointwise_trees=self.pointwise_trees,
                          pointwise_leaves=self.pointwise_leaves)

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    def differences(self, saved: dict) -> dict[str, tuple]:
        """{field: (saved value, this value)} for settings that may not change on ``--resume``."""
        mine = asdict(self)
        return {k: (saved.get(k), v) for k, v in mine.items() if k not in RESUME_MAY_CHANGE and saved.get(k, v) != v}

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> TrainConfig:
        """Map command-line flags (--epochs 10, --no-symm-input, ...) onto the dataclass."""
        parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.train", description=cls.__doc__,
                                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            if f.type in ("bool", bool):
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
            elif f.name in ("data", "out"):
                parser.add_argument(flag, required=True, help=f"{f.name} folder")
            else:
                parser.add_argument(flag, type=type(f.default), default=f.default, help=" ")
        return cls(**vars(parser.parse_args(argv)))
