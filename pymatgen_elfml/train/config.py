"""Training configuration: a frozen dataclass filled from argparse, saved next to the weights."""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from pymatgen_elfml.data.dataset import PatchGeometry
from pymatgen_elfml.io import write_text_atomic
from pymatgen_elfml.nn import UNetConfig

RESUME_MAY_CHANGE = ("resume", "overwrite", "device", "max_minutes", "out", "data")
_FLAG_TYPES = {"int": int, "float": float, "str": str}


class NestedFlags:
    """Mixin of a frozen run-config dataclass whose nested dataclasses (``NESTED``: field -> class, one
    definition each) appear as flat CLI flags: ``flat``, ``from_dict``, ``from_args``, ``save``, ``differences``.

    Class attributes: ``NESTED``; ``FLAG_NAMES`` (nested field -> flag name where they differ); ``INTERNAL``
    (nested fields the run fills in, not flags); ``PROG`` (the command line, for --help).
    """

    NESTED: ClassVar[dict] = {}
    FLAG_NAMES: ClassVar[dict] = {}
    INTERNAL: ClassVar[tuple] = ()
    PROG: ClassVar[str] = "python -m pymatgen_elfml.train"

    @classmethod
    def _nested_flags(cls, kind) -> list:
        return [f for f in fields(kind) if f.name not in cls.INTERNAL]

    def flat(self) -> dict:
        """All settings as one flat dict keyed by CLI flag name (``INTERNAL`` fields left out)."""
        out = {k: v for k, v in asdict(self).items() if k not in self.NESTED}
        for name, kind in self.NESTED.items():
            nested = getattr(self, name)
            out.update({self.FLAG_NAMES.get(f.name, f.name): getattr(nested, f.name) for f in self._nested_flags(kind)})
        return out

    @classmethod
    def from_dict(cls, d: dict):
        """From a nested dict (``asdict``, config.json) or a flat one (flag names; run folders written
        before the nesting, e.g. the shipped models' training_config.json)."""
        d = dict(d)
        nested = {}
        for name, kind in cls.NESTED.items():
            given = dict(d.pop(name, {}) or {})
            for f in fields(kind):
                key = cls.FLAG_NAMES.get(f.name, f.name)
                if key in d:
                    given[f.name] = d.pop(key)
            if "envelope" in given:  # JSON lists back to tuples
                given["envelope"] = tuple(given["envelope"])
            nested[name] = kind(**given)
        return cls(**d, **nested)

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    def differences(self, saved: dict) -> dict[str, tuple]:
        """{flag: (saved value, this value)} for settings that may not change on ``--resume``."""
        old = type(self).from_dict(saved).flat()
        return {k: (old.get(k), v) for k, v in self.flat().items() if k not in RESUME_MAY_CHANGE and old.get(k) != v}

    @classmethod
    def from_args(cls, argv: list[str] | None = None):
        """Map command-line flags (--epochs 10, --base-channels 8, --whole-cell, ...) onto the nested dataclasses;
        fields without a default are required flags."""
        parser = argparse.ArgumentParser(prog=cls.PROG, description=cls.__doc__,
                                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        specs = [(f.name, f) for f in fields(cls) if f.name not in cls.NESTED]
        specs += [(cls.FLAG_NAMES.get(f.name, f.name), f) for kind in cls.NESTED.values() for f in cls._nested_flags(kind)]
        for name, f in specs:
            flag = "--" + name.replace("_", "-")
            if f.type in ("bool", bool):
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
            elif f.default is MISSING:
                parser.add_argument(flag, type=_FLAG_TYPES.get(f.type, str), required=True, help=" ")
            else:
                parser.add_argument(flag, type=type(f.default), default=f.default, help=" ")
        return cls.from_dict(vars(parser.parse_args(argv)))


@dataclass(frozen=True)
class TrainConfig(NestedFlags):
    """Everything a run depends on; the network's and the patches' settings are the nested
    ``UNetConfig`` and ``PatchGeometry`` (one definition each), mapped onto flat CLI flags.

    Attributes:
        data: folder of triplets (``python -m pymatgen_elfml.data prepare``).
        out: run folder (checkpoints, metrics, final model).
        arch: the network (``UNetConfig``: base_channels, depth, groups, inputs, pointwise branch, ...).
        geometry: patch layout (``PatchGeometry``: patch, halo, stride in voxels; ``whole``, flag
            --whole-cell: train on whole periodic cells, batches of equal grids, and validate on them).
        epochs, batch_size, lr, weight_decay: AdamW with cosine annealing over ``epochs``.
        pointwise_steps: steps of fitting an MLP pointwise branch (``arch.pointwise_hidden``) alone on
            sampled voxels before the main training (``train.local``); a forest branch
            (``arch.pointwise_trees``) is always fitted first (``train.local.fit_trees``).
        tree_depth: the most levels of one tree of that forest (0: no cap beyond ``arch.pointwise_leaves``);
            inference walks every tree this many rounds, so deeper trees cost time per voxel.
        tree_l2: L2 penalty on that forest's leaf values (scikit-learn's ``l2_regularization``; 0: none).
        tree_samples: voxels drawn from every training sample to fit that forest (seeded; >= 1).
        loss: "composite" (Smooth-L1 + gradient + histogram KL, learned log-precisions initialised
            from the first batch) or "smoothl1_grad" (Smooth-L1 + grad_weight * gradient).
        core_radius, core_weight: voxels within core_radius (A) of a nucleus weigh core_weight in the
            voxel and gradient terms (1 elsewhere); below 1 it weights the interstitial region up.
        charge_weight: for a density target (``arch.target="density"``, flag --target density), weight of
            the term |mean(pred) - mean(target)| per item: with --whole-cell the relative error of the
            integrated charge, on patches of the charge in the patch core (ignored for ELF).
        train_fraction: keep this fraction of the training structures (seeded; learning curves).
        max_minutes: stop after the first epoch that ends past this wall time (0: no limit); the
            cosine schedule is then laid over the epochs that fit, estimated after the first epoch.
        patience: stop when validation MAE has not improved for this many epochs (0: never).
        native_spacing, sad_sigma: recorded in the model (Angstrom); checked against the triplets.
        seed: seeds weights, shuffling and jitter.
        device: "auto", "cpu", "cuda", ...
        max_patches: cap on training patches per epoch (0: all), drawn by the seeded sampler.
        max_val_patches: cap on validation patches (0: all), the first ones in order.
        resume: continue from ``out/checkpoint.pt`` (the other settings must equal the run's, except
            ``RESUME_MAY_CHANGE``).
        overwrite: start over in a folder that already holds a run (its metrics, checkpoint and model
            are deleted first); without it such a folder is refused.
    """

    NESTED: ClassVar[dict] = {"arch": UNetConfig, "geometry": PatchGeometry}  # nested dataclasses, their fields are flat CLI flags
    FLAG_NAMES: ClassVar[dict] = {"whole": "whole_cell"}  # PatchGeometry.whole is --whole-cell on the command line

    data: str
    out: str
    arch: UNetConfig = field(default_factory=UNetConfig)
    geometry: PatchGeometry = field(default_factory=PatchGeometry)
    epochs: int = 20
    batch_size: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    pointwise_steps: int = 0
    tree_depth: int = 8
    tree_l2: float = 0.0
    tree_samples: int = 4000
    loss: str = "composite"
    grad_weight: float = 0.5
    core_radius: float = 1.0
    core_weight: float = 1.0
    charge_weight: float = 1.0
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
        if self.loss == "composite" and self.arch.target != "elf":
            raise ValueError("the composite loss has a histogram term over ELF values in [0, 1]: train a density "
                             "target with --loss smoothl1_grad")
        if not isinstance(self.tree_depth, int) or self.tree_depth < 0:
            raise ValueError(f"tree_depth must be an integer >= 0 (0: uncapped), got {self.tree_depth!r}")
        if not self.tree_l2 >= 0:
            raise ValueError(f"tree_l2 must be >= 0, got {self.tree_l2!r}")
        if not isinstance(self.tree_samples, int) or self.tree_samples < 1:
            raise ValueError(f"tree_samples must be an integer >= 1, got {self.tree_samples!r}")
        if not 0 < self.train_fraction <= 1 or self.core_weight < 0 or self.charge_weight < 0:
            raise ValueError(f"need 0 < train_fraction <= 1, core_weight >= 0 and charge_weight >= 0: {self}")
        g = self.geometry
        if (g.patch + 2 * g.halo) % self.arch.size_multiple:
            raise ValueError(f"patch + 2*halo = {g.edge} must be a multiple of 2**depth = {self.arch.size_multiple}")

    @property
    def charge_term(self) -> float:
        """Weight of the integrated-charge term of the loss: ``charge_weight`` for a density target, else 0."""
        return self.charge_weight if self.arch.target == "density" else 0.0

    @property
    def has_stage1(self) -> bool:
        """Whether a pointwise branch (MLP with steps, or forest) is fitted before the U-Net trains."""
        return bool((self.arch.pointwise_hidden and self.pointwise_steps) or self.arch.pointwise_trees)

