"""Periodic patch dataset over triplet folders (first paper, appendix), samplers and collation.

Each item is one patch: the network's input channels (``features.sad_features``) and the ELF
cut by wrap-around indexing with a context halo, a mask of the voxels farther than
``core_radius`` from every nucleus ("far", where codes can agree on the ELF), the structure's Seitz operators in the patch frame
(``symmetry.patch_ops``: all of them when the patch is the whole cell, else the identity), and
the patch's extent in the cell. Patch starts are (i s + o) mod N with an origin jitter o drawn
per epoch from a seeded RNG (``set_epoch``); jitter is off for validation.

With ``PatchGeometry(whole=True)`` an item is the whole cell (no halo), rolled by a random
offset per epoch and item (exact on the torus); ``ShapeBatchSampler`` batches cells of equal grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, RandomSampler, Sampler

from pymatgen_elfml.data.triplets import Triplet, discover, read_triplet
from pymatgen_elfml.features import nearest_nucleus_distance, sad_features
from pymatgen_elfml.patches import extract
from pymatgen_elfml.symmetry import SeitzOps, pad_seitz, patch_ops


@dataclass(frozen=True)
class PatchGeometry:
    """Patch layout in voxels: core edge ``patch``, ``halo`` of context, start stride ``stride`` (<= patch);
    ``whole``: one item per cell, the whole periodic cell (patch, halo and stride unused)."""

    patch: int = 32
    halo: int = 8
    stride: int = 32
    whole: bool = False

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
        inputs: feature set of the network's input channels (``features.FEATURE_SETS``).
        core_radius: the "far" mask marks voxels farther than this (A) from every nucleus.
        fraction: keep a seeded random fraction of the chemical systems (``split_key``; learning curves).
        target: "elf" (the ELF) or "density" (the valence density over its cell mean, rho / mean(rho),
            dimensionless; ``target_field``); the items serve it as "target".

    Unreadable or inconsistent samples, and samples without a density when the target is the density,
    are skipped and listed in ``self.skipped``.
    """

    def __init__(self, folder, geometry: PatchGeometry = PatchGeometry(), split: str | None = None,
                 jitter: bool = True, seed: int = 0, inputs: str = "log_sad", core_radius: float = 1.0,
                 fraction: float = 1.0, target: str = "elf"):
        self.geometry, self.jitter, self.seed = geometry, jitter, seed
        self.samples: list[Triplet] = []
        self.skipped: dict[str, str] = {}
        for stem in discover(folder):
            try:
                t = read_triplet(folder, stem)
            except ValueError as exc:
                self.skipped[stem] = str(exc)
                continue
            if target == "density" and t.rho is None:
                self.skipped[stem] = "no valence density (stem_rho.npy) for a density target"
                continue
            if split is None or t.meta.get("split") == split:
                self.samples.append(t)
        if fraction < 1.0:
            self.samples = _subset(self.samples, fraction, seed)
        self.ops = [SeitzOps.from_matrices(t.sym) for t in self.samples]
        self.targets = [target_field(t, target) for t in self.samples]
        self.inputs, self.far = zip(*(_arrays(t, inputs, core_radius) for t in self.samples)) \
            if self.samples else ((), ())
        self.local: list[np.ndarray] | None = None
        counts = [1 if geometry.whole else math.prod(math.ceil(n / geometry.stride) for n in t.elf.shape)
                  for t in self.samples]
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

    def cache_local(self, fn) -> None:
        """Store ``fn(inputs)`` -> (1, n0, n1, n2) of every sample, served as item "local" (cut like the
        inputs): the logits of a frozen pointwise branch, computed once instead of every step."""
        self.local = [np.asarray(fn(x), dtype=np.float32) for x in self.inputs]

    def __getitem__(self, i: int) -> dict:
        j, k = self.index[i]
        t, g = self.samples[j], self.geometry
        shape = np.array(t.elf.shape)
        if g.whole:
            rng = np.random.default_rng([self.seed, self.epoch, int(j)])
            first, edge = (rng.integers(0, shape) if self.jitter else np.zeros(3, np.int64))[None], tuple(shape)
        else:
            per_axis = [math.ceil(n / g.stride) for n in shape]
            start = (np.array(np.unravel_index(k, per_axis)) * g.stride + self.offset) % shape
            first, edge = (start - g.halo)[None], g.edge
        cut = lambda a: extract(np.asarray(a), first, edge)[0]  # noqa: E731
        local = {} if self.local is None else {"local": cut(self.local[j][0])[None]}
        return {
            **local,
            "sad": np.stack([cut(c) for c in self.inputs[j]]).astype(np.float32),
            "target": cut(self.targets[j])[None].astype(np.float32),
            "far": cut(self.far[j])[None].astype(np.float32),
            "sym": patch_ops(self.ops[j], first[0], edge, tuple(shape)).as_matrices().astype(np.float32),
            "sym_global": t.sym.astype(np.float32),
            "extent": (np.asarray(edge) / shape).astype(np.float32),
        }


def target_field(t: Triplet, target: str) -> np.ndarray:
    """The training target of a triplet, (n0, n1, n2) float32: its ELF, or for "density" its valence
    density divided by the cell mean (rho * V / N_valence: the mean is 1, so a mean absolute error is the NMAE)."""
    if target == "elf":
        return np.asarray(t.elf, dtype=np.float32)
    if target != "density":
        raise ValueError(f"target must be 'elf' or 'density', got {target!r}")
    rho = np.asarray(t.rho, dtype=np.float64)
    mean = rho.mean()
    if not mean > 0:
        raise ValueError(f"{t.stem}: the density has mean {mean:.3g} e/A^3; it must be positive")
    return (rho / mean).astype(np.float32)


def _subset(samples: list[Triplet], fraction: float, seed: int) -> list[Triplet]:
    """A seeded random ``fraction`` of the chemical systems (meta "split_key", else the stem), at least one."""
    keys = sorted({t.meta.get("split_key", t.stem) for t in samples})
    rng = np.random.default_rng([seed, 7919])
    keep = {keys[i] for i in rng.permutation(len(keys))[: max(1, round(fraction * len(keys)))]}
    return [t for t in samples if t.meta.get("split_key", t.stem) in keep]


def _arrays(t: Triplet, inputs: str, core_radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(C, n0, n1, n2) input channels and the (n0, n1, n2) bool mask of voxels > core_radius from nuclei."""
    lattice, frac = structure_arrays(t.meta["structure"])
    sad = np.asarray(t.sad, dtype=np.float64)
    x = sad[None].astype(np.float32) if inputs == "log_sad" else sad_features(sad, lattice, frac, inputs, t.numbers)
    return x, nearest_nucleus_distance(lattice, frac, sad.shape, cap=core_radius + 1.0) > core_radius


def structure_arrays(structure: dict) -> tuple[np.ndarray, np.ndarray]:
    """(3, 3) lattice rows in A and (n, 3) fractional coordinates of a pymatgen ``Structure.as_dict()``."""
    lattice = np.asarray(structure["lattice"]["matrix"], dtype=float)
    return lattice, np.array([site["abc"] for site in structure["sites"]], dtype=float)


def collate_patches(items: list[dict]) -> dict:
    """Stack patches; pad the ragged operator lists to R_max with a (B, R_max) mask.

    Returns:
        sad: (B, C, E, E, E); target, far (and local, if cached): (B, 1, E, E, E); sym: (B, R_max, 4, 4);
        mask: (B, R_max); extent: (B, 3).
    """
    sym, mask = pad_seitz([it["sym"] for it in items])
    keys = ("sad", "target", "far", "extent") + (("local",) if "local" in items[0] else ())
    stack = {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in keys}
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


class ShapeBatchSampler(Sampler):
    """Batches of items with equal grids (whole-cell training), shuffled per epoch, sharded by rank.

    Every ``__iter__`` sets the dataset's epoch (its roll jitter) and advances it, as
    ``RandomSamplerWithEpoch`` does; the order is seeded from (seed, epoch).
    """

    def __init__(self, dataset: PatchDataset, batch_size: int, seed: int = 0, start_epoch: int = 0,
                 rank: int = 0, world: int = 1, indices=None):
        self.dataset, self.batch_size, self.seed, self.epoch = dataset, batch_size, seed, start_epoch
        self.rank, self.world = rank, world
        groups: dict[tuple, list[int]] = {}
        for i in range(len(dataset.index)) if indices is None else indices:  # indices: a subset (validation cap)
            groups.setdefault(dataset.samples[dataset.index[i][0]].elf.shape, []).append(i)
        self.groups = list(groups.values())

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = [[g[k] for k in idx[b : b + self.batch_size]]
                   for g in self.groups for idx in [rng.permutation(len(g))] for b in range(0, len(g), self.batch_size)]
        return [batches[k] for k in rng.permutation(len(batches))][self.rank :: self.world]

    def __iter__(self):
        self.dataset.set_epoch(self.epoch)
        batches = self._batches()
        self.epoch += 1
        return iter(batches)

    def __len__(self) -> int:
        return len(self._batches())
