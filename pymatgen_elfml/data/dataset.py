"""Periodic patch dataset over triplet folders (first paper, appendix), samplers and collation.

Each item is one patch: the SAD and ELF cut by wrap-around indexing with a context halo,
the structure's Seitz operators in the patch frame (``symmetry.patch_ops``: all of them when the
patch is the whole cell, else the identity), and the patch's extent in the cell.
Patch starts are (i s + o) mod N with an origin jitter o drawn per epoch from a seeded RNG
(``set_epoch``); jitter is off for validation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, RandomSampler

from pymatgen_elfml.data.triplets import Triplet, discover, read_triplet
from pymatgen_elfml.patches import extract
from pymatgen_elfml.symmetry import SeitzOps, pad_seitz, patch_ops


@dataclass(frozen=True)
class PatchGeometry:
    """Patch layout in voxels: core edge ``patch``, ``halo`` of context, start stride ``stride`` (<= patch)."""

    patch: int = 32
    halo: int = 8
    stride: int = 32

    def __post_init__(self) -> None:
        if not (1 <= self.stride <= self.patch) or self.halo < 0:
            raise ValueError(f"need 1 <= stride <= patch and halo >= 0, got {self}")

    @property
    def edge(self) -> int:
        return self.patch + 2 * self.halo


class PatchDataset(Dataset):
    """Patches of every sample in a triplet folder.

    Args:
        folder: folder of ``stem_sad/elf/sym.npy`` triplets.
        geometry: patch layout.
        split: keep only samples whose ``stem_meta.json`` has this split (None: all).
        jitter: draw an origin offset per epoch (training) or not (validation).
        seed: base seed of the jitter.

    Unreadable or inconsistent samples are skipped and listed in ``self.skipped``.
    """

    def __init__(self, folder, geometry: PatchGeometry = PatchGeometry(), split: str | None = None,
                 jitter: bool = True, seed: int = 0):
        self.geometry, self.jitter, self.seed = geometry, jitter, seed
        self.samples: list[Triplet] = []
        self.skipped: dict[str, str] = {}
        for stem in discover(folder):
            try:
                t = read_triplet(folder, stem)
            except ValueError as exc:
                self.skipped[stem] = str(exc)
                continue
            if split is None or t.meta.get("split") == split:
                self.samples.append(t)
        self.ops = [SeitzOps.from_matrices(t.sym) for t in self.samples]
        counts = [math.prod(math.ceil(n / geometry.stride) for n in t.elf.shape) for t in self.samples]
        self.index = np.array([(j, k) for j, c in enumerate(counts) for k in range(c)], dtype=np.int64).reshape(-1, 2)
        self.epoch = 0
        self.offset = np.zeros(3, dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Set the origin jitter for ``epoch`` (deterministic in seed and epoch; zero without jitter)."""
        self.epoch = int(epoch)
        rng = np.random.default_rng([self.seed, self.epoch])
        self.offset = rng.integers(0, self.geometry.stride, 3) if self.jitter else np.zeros(3, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        j, k = self.index[i]
        t, g = self.samples[j], self.geometry
        shape = np.array(t.elf.shape)
        per_axis = [math.ceil(n / g.stride) for n in shape]
        start = (np.array(np.unravel_index(k, per_axis)) * g.stride + self.offset) % shape
        first = (start - g.halo)[None]
        return {
            "sad": extract(np.asarray(t.sad), first, g.edge)[0][None].astype(np.float32),
            "elf": extract(np.asarray(t.elf), first, g.edge)[0][None].astype(np.float32),
            "sym": patch_ops(self.ops[j], first[0], g.edge, tuple(shape)).as_matrices().astype(np.float32),
            "sym_global": t.sym.astype(np.float32),
            "extent": (g.edge / shape).astype(np.float32),
        }


def collate_patches(items: list[dict]) -> dict:
    """Stack patches; pad the ragged operator lists to R_max with a (B, R_max) mask.

    Returns:
        sad, elf: (B, 1, E, E, E); sym: (B, R_max, 4, 4); mask: (B, R_max); extent: (B, 3).
    """
    sym, mask = pad_seitz([it["sym"] for it in items])
    stack = {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in ("sad", "elf", "extent")}
    return {**stack, "sym": torch.from_numpy(sym), "mask": torch.from_numpy(mask)}


class RandomSamplerWithEpoch(RandomSampler):
    """A RandomSampler that advances the dataset's epoch (and jitter) on every ``__iter__``.

    The shuffling generator is seeded from (seed, epoch), so a run resumed at an epoch
    boundary draws the same order as an uninterrupted one.
    """

    def __init__(self, dataset: PatchDataset, seed: int = 0, start_epoch: int = 0):
        super().__init__(dataset)
        self.seed, self.epoch = seed, start_epoch

    def __iter__(self):
        self.data_source.set_epoch(self.epoch)
        self.generator = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        self.epoch += 1
        return super().__iter__()


class DistributedSamplerWithJitter(DistributedSampler):
    """DistributedSampler whose ``set_epoch`` also sets the dataset's jitter (same on every rank)."""

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.dataset.set_epoch(epoch)
