"""The training loop: AdamW + cosine annealing on periodic patches or whole cells, checkpoints, resume, DDP."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from pymatgen_elfml.data.dataset import (DistributedSamplerWithJitter, PatchDataset, RandomSamplerWithEpoch,
                                         ShapeBatchSampler, collate_patches)
from pymatgen_elfml.data.triplets import check_grid_scale
from pymatgen_elfml.inference import autocast, resolve_device
from pymatgen_elfml.io import atomic_path
from pymatgen_elfml.losses import UncertaintyWeightedLoss, region_weight
from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.pretrained import ModelSpec, save_model
from pymatgen_elfml.train.config import TrainConfig
from pymatgen_elfml.train.local import fit_trees, pretrain_pointwise

CHECKPOINT = "checkpoint.pt"


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun (gloo on CPU, nccl on CUDA)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return 0, 1
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return tdist.get_rank(), tdist.get_world_size()


def _halo(config: TrainConfig) -> int:
    return 0 if config.geometry.whole else config.geometry.halo


def _datasets(config: TrainConfig, rank: int) -> tuple[PatchDataset, PatchDataset]:
    common = dict(geometry=config.geometry, seed=config.seed, inputs=config.arch.inputs, core_radius=config.core_radius,
                  target=config.arch.target)
    train = PatchDataset(config.data, split="train", jitter=True, fraction=config.train_fraction, **common)
    val = PatchDataset(config.data, split="val", jitter=False, **common)
    if len(train.samples) == 0:  # a folder without split labels: train and validate on everything
        train = PatchDataset(config.data, jitter=True, fraction=config.train_fraction, **common)
        val = PatchDataset(config.data, jitter=False, **common)
    if len(train) == 0:
        raise ValueError(f"no usable samples in {config.data} (skipped: {train.skipped})")
    check_grid_scale([{"stem": t.stem, **t.meta} for t in train.samples + val.samples], config.native_spacing, config.sad_sigma)
    if rank == 0 and train.skipped:
        print(f"skipped {len(train.skipped)} unreadable samples: {train.skipped}", file=sys.stderr)
    return train, val


def _autocast(device: torch.device):
    """bf16 autocast on CUDA only: CPU training stays in fp32 even where inference's "auto" picks bf16."""
    return autocast(device, "bf16" if device.type == "cuda" else "fp32")


def _input_stats(dataset: PatchDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (unbiased) standard deviation of the inputs over every training voxel, (C,) each.

    Two passes over the samples in float64, one sample at a time: memory is one sample's float64 copy, not
    every voxel's (a stacked float64 copy of 16 channels of data/v2's 1,260 training cells is 11.5 GB)."""
    rows = [np.asarray(x).reshape(x.shape[0], -1) for x in dataset.inputs]
    count = sum(r.shape[1] for r in rows)
    mean = sum(r.sum(axis=1, dtype=np.float64) for r in rows) / count
    squares = sum(np.square(r - mean[:, None]).sum(axis=1) for r in rows)
    return torch.from_numpy(mean).float(), torch.from_numpy(np.sqrt(squares / (count - 1))).float()


def _loss(config: TrainConfig) -> UncertaintyWeightedLoss:
    return UncertaintyWeightedLoss(_halo(config), learned=config.loss == "composite", fixed=(1.0, config.grad_weight, 0.0))


def _step_batch(net, loss_fn, batch, device, halo, core_weight: float = 1.0, charge_weight: float = 0.0):
    """Loss and metrics of one batch. ``charge_weight`` adds charge_weight * mean |mean(pred) - mean(target)|
    over the items' core voxels (for a density target: the error of the integrated charge, relative)."""
    sad, target, far = batch["sad"].to(device), batch["target"].to(device), batch["far"].to(device)
    ops = (batch["sym"].to(device), batch["mask"].to(device), batch["extent"].to(device))
    local = batch["local"].to(device) if "local" in batch else None
    with _autocast(device):
        pred = net(sad, *ops, local=local)
    weight = None if core_weight == 1.0 else region_weight(far, core_weight)
    total, terms = loss_fn(pred, target, weight)
    core = (slice(None), slice(None)) + (slice(halo, -halo or None),) * 3
    if charge_weight:
        charge = (pred.float()[core].mean((1, 2, 3, 4)) - target[core].mean((1, 2, 3, 4))).abs().mean()
        total, terms = total + charge_weight * charge, {**terms, "charge": float(charge.detach())}
    err, far_core = (pred.detach().float() - target).abs()[core], far[core]
    return total, {**terms, "mae": float(err.mean()), "mae_far": float((err * far_core).sum() / far_core.sum().clamp(min=1))}


@torch.no_grad()
def evaluate(net, loss_fn, dataset: PatchDataset, config: TrainConfig, device) -> dict:
    """Mean loss terms and core MAE (for a density target: the NMAE) over every validation patch (no jitter)."""
    net.eval()
    dataset.set_epoch(0)  # validation: no jitter
    keep = range(min(config.max_val_patches or len(dataset), len(dataset)))
    if config.geometry.whole:
        sampler = ShapeBatchSampler(dataset, config.batch_size, indices=keep)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_patches)
    else:
        loader = DataLoader(Subset(dataset, keep), batch_size=config.batch_size, shuffle=False, collate_fn=collate_patches)
    sums, n = {}, 0
    for batch in loader:
        total, terms = _step_batch(net, loss_fn, batch, device, _halo(config), config.core_weight, config.charge_term)
        for k, v in {**terms, "loss": float(total)}.items():
            sums[k] = sums.get(k, 0.0) + v * len(batch["sad"])
        n += len(batch["sad"])
    return {k: v / max(n, 1) for k, v in sums.items()}


@torch.no_grad()
def _cache_local(net, datasets, device) -> None:
    """Give every sample of ``datasets`` its frozen pointwise logits (``PatchDataset.cache_local``)."""
    for ds in datasets:
        ds.cache_local(lambda x: net.local_logits(torch.from_numpy(x)[None].to(device))[0].cpu().numpy())


def _elements(dataset) -> tuple[str, ...]:
    """Sorted element symbols of a dataset's structures (from each triplet's pymatgen structure dict)."""
    return tuple(sorted({sp["element"] for t in dataset.samples for site in t.meta["structure"]["sites"]
                         for sp in site["species"]}))


def _save_if_best(row: dict, net, spec: ModelSpec, out: Path, device, best: float, since_best: int) -> tuple[float, int]:
    """Save the model when the epoch's validation MAE is the best so far; returns the new (best, epochs since best)."""
    if row["val"].get("mae", float("inf")) < best:
        save_model(net.cpu(), spec, out / "model")
        net.to(device)
        return row["val"]["mae"], 0
    return best, since_best


def append_metrics(out: Path, row: dict) -> None:
    """Append an epoch's row to ``out/metrics.jsonl``. Called after the checkpoint that holds the row (key "row")
    is written, so that a crash in between neither repeats the epoch nor loses its row (``restore_metrics``)."""
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")


def restore_metrics(out: Path, row: dict | None) -> None:
    """On resume: append the checkpoint's last row if metrics.jsonl does not end with it (a crash between the two)."""
    path = out / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    if row is not None and (not lines or lines[-1] != json.dumps(row)):  # text: rows may hold NaN (NaN != NaN)
        append_metrics(out, row)


def _resume(ckpt: Path, device, net, loss_fn, optim, sched, cosine: _Cosine) -> tuple[int, float, int, float]:
    """Restore every state of a checkpoint; returns (next epoch, best MAE, epochs since best, elapsed s)."""
    state = torch.load(ckpt, map_location=device, weights_only=True)
    net.load_state_dict(state["net"])
    loss_fn.load_state_dict(state["loss"])
    optim.load_state_dict(state["optim"])
    sched.load_state_dict(state["sched"])
    torch.set_rng_state(state["rng"])
    cosine.horizon = int(state["horizon"])
    restore_metrics(ckpt.parent, state.get("row"))
    return int(state["epoch"]), float(state["best"]), int(state["since_best"]), float(state["elapsed"])


def _state(net, loss_fn, optim, sched, cosine: _Cosine, epoch: int, best: float, since_best: int, elapsed: float,
           row: dict | None) -> dict:
    """What a checkpoint holds (``_resume`` restores it); ``epoch``: the next epoch to run (0: only stage 1 done)."""
    return {"net": net.state_dict(), "loss": loss_fn.state_dict(), "optim": optim.state_dict(),
            "sched": sched.state_dict(), "rng": torch.get_rng_state(), "epoch": epoch, "best": best,
            "horizon": cosine.horizon, "since_best": since_best, "elapsed": elapsed, "row": row}


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


class _Cosine:
    """lr factor 0.5 (1 + cos(pi e / H)) at epoch e, for a horizon H that ``max_minutes`` may shorten."""

    def __init__(self, horizon: int):
        self.horizon = horizon

    def __call__(self, epoch: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, self.horizon) / self.horizon))


def _build(config: TrainConfig, device, train_ds: PatchDataset, stage1: bool = True):
    """Network (input statistics from the training data; the pointwise branch fitted first unless
    ``stage1`` is False, i.e. a checkpoint will overwrite it), loss, optimizer and schedule."""
    torch.manual_seed(config.seed)
    net = PeriodicUNet3D(config.arch)
    if config.arch.inputs != "log_sad":
        net.set_input_stats(*_input_stats(train_ds))
    if stage1 and config.arch.pointwise_hidden and config.pointwise_steps:
        pretrain_pointwise(net, train_ds, config.pointwise_steps, config.core_weight, config.seed)
    if stage1 and config.arch.pointwise_trees:
        fit_trees(net, train_ds, config)
    net, loss_fn = net.to(device), _loss(config).to(device)
    optim = torch.optim.AdamW([{"params": net.parameters(), "weight_decay": config.weight_decay},
                               {"params": loss_fn.parameters(), "weight_decay": 0.0}], lr=config.lr)
    cosine = _Cosine(config.epochs)
    return net, loss_fn, optim, cosine, torch.optim.lr_scheduler.LambdaLR(optim, cosine)


def _loader(config: TrainConfig, train_ds: PatchDataset, start: int, rank: int, world: int):
    if config.geometry.whole:
        sampler = ShapeBatchSampler(train_ds, config.batch_size, config.seed, start, rank, world)
        return DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate_patches), None
    sampler = (DistributedSamplerWithJitter(train_ds, num_replicas=world, rank=rank, seed=config.seed)
               if world > 1 else RandomSamplerWithEpoch(train_ds, seed=config.seed, start_epoch=start))
    loader = DataLoader(train_ds, batch_size=config.batch_size, sampler=sampler, collate_fn=collate_patches)
    return loader, sampler if world > 1 else None


def _train_epoch(model, loss_fn, optim, loader, config: TrainConfig, device, desc: str, rank: int, world: int) -> dict:
    """One pass (capped at max_patches items); mean loss terms per batch."""
    model.train()
    max_batches = -(-config.max_patches // (config.batch_size * world)) if config.max_patches else len(loader)
    sums, seen = {}, 0
    bar = tqdm(total=min(max_batches, len(loader)), desc=desc, disable=rank != 0)
    for b, batch in enumerate(loader):
        if b >= max_batches:
            break
        total, terms = _step_batch(model, loss_fn, batch, device, _halo(config), config.core_weight, config.charge_term)
        optim.zero_grad(set_to_none=True)
        total.backward()
        optim.step()
        for k, v in {**terms, "loss": float(total.detach())}.items():
            sums[k] = sums.get(k, 0.0) + v
        seen += 1
        bar.update(1)
        bar.set_postfix(loss=f"{float(total.detach()):.4f}", mae=f"{terms['mae']:.4f}")
    bar.close()
    return {**{k: v / max(seen, 1) for k, v in sums.items()}, "steps": seen}


def _check_run_folder(config: TrainConfig, out: Path) -> bool:
    """Check the run folder before anything is read or written; True if a new run starts there.

    Raises:
        RunFolderError: an existing run without --resume or --overwrite, or --resume with settings
            that differ from the run's (the folder is left untouched).
    """
    saved_path = out / "config.json"
    if saved_path.is_file() and config.resume:
        diff = config.differences(json.loads(saved_path.read_text()))
        if diff:
            listed = ", ".join(f"{k}: run {a!r}, now {b!r}" for k, (a, b) in sorted(diff.items()))
            raise RunFolderError(f"{out} was trained with other settings ({listed}); resume with the run's flags "
                                 f"(e.g. --symm-input for runs made when it was the default) or start a new run folder")
        return False
    if (saved_path.is_file() or (out / "metrics.jsonl").is_file()) and not config.overwrite:
        raise RunFolderError(f"{out} already holds a run: pass --resume to continue it or --overwrite to start over")
    return True


def _start_run_folder(config: TrainConfig, out: Path) -> None:
    """A new run: clear an old one (``--overwrite``, checked by ``_check_run_folder``), write config.json."""
    for name in ("metrics.jsonl", CHECKPOINT):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "model", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "config.json")


class RunFolderError(ValueError):
    """A training run folder that must not be written as asked (the message says why and what to do)."""


def run(config: TrainConfig) -> Path:
    """Train; returns the folder of the best-on-validation model (loadable by ``from_pretrained``)."""
    rank, world = _distributed()
    device = resolve_device(config.device) if world == 1 else torch.device("cpu" if not torch.cuda.is_available() else f"cuda:{rank}")
    out = Path(config.out)
    new_run = _check_run_folder(config, out)
    train_ds, val_ds = _datasets(config, rank)  # the data is validated before the folder is touched
    if rank == 0 and new_run:
        _start_run_folder(config, out)
    ckpt = out / CHECKPOINT
    resuming = config.resume and ckpt.is_file()
    t_build = time.perf_counter()
    net, loss_fn, optim, cosine, sched = _build(config, device, train_ds, stage1=not resuming)
    start, best, since_best, elapsed = 0, float("inf"), 0, 0.0
    if resuming:  # before caching: the checkpoint holds the fitted forest
        start, best, since_best, elapsed = _resume(ckpt, device, net, loss_fn, optim, sched, cosine)
    elif rank == 0 and config.has_stage1:  # the fitted branch survives an interruption: --resume skips the fit
        fit = time.perf_counter() - t_build  # counted once: a resumed run adds it to its own stage-1 seconds
        _save_checkpoint(ckpt, _state(net, loss_fn, optim, sched, cosine, 0, best, since_best, fit, None))
    if config.arch.pointwise_trees:  # the forest is frozen: its logits are computed once per sample
        _cache_local(net, (train_ds, val_ds), device)
    loader, dist_sampler = _loader(config, train_ds, start, rank, world)
    model = DistributedDataParallel(net) if world > 1 else net
    spec = ModelSpec(arch=config.arch, native_spacing=config.native_spacing, sad_sigma=config.sad_sigma,
                     patch_size=config.geometry.patch, halo=config.geometry.halo, trained=True, elements=_elements(train_ds),
                     description=f"trained by pymatgen_elfml.train on {Path(config.data).name}")
    if start == 0 and rank == 0 and config.has_stage1:
        stage1 = elapsed = elapsed + time.perf_counter() - t_build  # plus the fit before a resumed stage-1 checkpoint
        row = {"epoch": 0, "lr": 0.0, "seconds": stage1, "elapsed": stage1, "train": {"steps": 0},
               "val": evaluate(net, loss_fn, val_ds, config, device), "eta": loss_fn.eta.detach().cpu().tolist()}
        best, since_best = _save_if_best(row, net, spec, out, device, best, since_best)
        append_metrics(out, row)
    for epoch in range(start, config.epochs):
        if epoch >= cosine.horizon or (config.patience and since_best >= config.patience):
            break
        if dist_sampler is not None:
            dist_sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        train = _train_epoch(model, loss_fn, optim, loader, config, device, f"epoch {epoch + 1}/{cosine.horizon}", rank, world)
        sched.step()
        val = evaluate(net, loss_fn, val_ds, config, device) if rank == 0 else {}
        seconds = time.perf_counter() - t0
        elapsed += seconds
        if config.max_minutes and epoch == start == 0:  # lay the schedule over the epochs that fit
            cosine.horizon = max(1, min(config.epochs, int(config.max_minutes * 60 // seconds)))
        if rank == 0:
            row = {"epoch": epoch + 1, "lr": sched.get_last_lr()[0], "seconds": seconds, "elapsed": elapsed,
                   "train": train, "val": val, "eta": loss_fn.eta.detach().cpu().tolist()}
            best, since_best = _save_if_best(row, net, spec, out, device, best, since_best + 1)
            _save_checkpoint(ckpt, _state(net, loss_fn, optim, sched, cosine, epoch + 1, best, since_best, elapsed, row))
            append_metrics(out, row)
        if world > 1:
            tdist.barrier()
    if world > 1:
        tdist.destroy_process_group()
    return out / "model"
