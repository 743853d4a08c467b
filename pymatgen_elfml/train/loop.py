"""The training loop: AdamW + cosine annealing on periodic patches, checkpoints, resume, DDP."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from pymatgen_elfml.data.dataset import (DistributedSamplerWithJitter, PatchDataset, PatchGeometry,
                                         RandomSamplerWithEpoch, collate_patches)
from pymatgen_elfml.inference import resolve_device
from pymatgen_elfml.io import atomic_path
from pymatgen_elfml.losses import UncertaintyWeightedLoss
from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.pretrained import ModelSpec, save_model
from pymatgen_elfml.train.config import TrainConfig

CHECKPOINT = "checkpoint.pt"


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun (gloo on CPU, nccl on CUDA)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return 0, 1
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return tdist.get_rank(), tdist.get_world_size()


def _datasets(config: TrainConfig, rank: int) -> tuple[PatchDataset, PatchDataset]:
    geometry = PatchGeometry(config.patch, config.halo, config.stride)
    train = PatchDataset(config.data, geometry, split="train", jitter=True, seed=config.seed)
    val = PatchDataset(config.data, geometry, split="val", jitter=False, seed=config.seed)
    if len(train.samples) == 0:  # a folder without split labels: train and validate on everything
        train = PatchDataset(config.data, geometry, jitter=True, seed=config.seed)
        val = PatchDataset(config.data, geometry, jitter=False, seed=config.seed)
    if len(train) == 0:
        raise ValueError(f"no usable samples in {config.data} (skipped: {train.skipped})")
    if rank == 0 and train.skipped:
        print(f"skipped {len(train.skipped)} unreadable samples: {train.skipped}", file=sys.stderr)
    return train, val


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _step_batch(net, loss_fn, batch, device, halo):
    sad, elf = batch["sad"].to(device), batch["elf"].to(device)
    ops = (batch["sym"].to(device), batch["mask"].to(device), batch["extent"].to(device))
    with _autocast(device):
        pred = net(sad, *ops)
    total, terms = loss_fn(pred, elf)
    mae = float((pred.detach().float() - elf).abs()[..., halo:-halo or None, halo:-halo or None, halo:-halo or None].mean())
    return total, {**terms, "mae": mae}


@torch.no_grad()
def evaluate(net, loss_fn, dataset: PatchDataset, config: TrainConfig, device) -> dict:
    """Mean loss terms and core MAE over every validation patch (no jitter)."""
    net.eval()
    dataset.set_epoch(0)  # validation: no jitter
    if config.max_val_patches:
        dataset = Subset(dataset, range(min(config.max_val_patches, len(dataset))))
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=False, collate_fn=collate_patches)
    sums, n = {}, 0
    for batch in loader:
        total, terms = _step_batch(net, loss_fn, batch, device, config.halo)
        for k, v in {**terms, "loss": float(total)}.items():
            sums[k] = sums.get(k, 0.0) + v * len(batch["sad"])
        n += len(batch["sad"])
    return {k: v / max(n, 1) for k, v in sums.items()}


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def run(config: TrainConfig) -> Path:
    """Train; returns the folder of the best-on-validation model (loadable by ``from_pretrained``)."""
    rank, world = _distributed()
    device = resolve_device(config.device) if world == 1 else torch.device("cpu" if not torch.cuda.is_available() else f"cuda:{rank}")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        config.save(out / "config.json")
    train_ds, val_ds = _datasets(config, rank)
    torch.manual_seed(config.seed)
    net = PeriodicUNet3D(config.arch).to(device)
    loss_fn = UncertaintyWeightedLoss(config.halo).to(device)
    optim = torch.optim.AdamW([{"params": net.parameters(), "weight_decay": config.weight_decay},
                               {"params": loss_fn.parameters(), "weight_decay": 0.0}], lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=config.epochs)
    start, best = 0, float("inf")
    ckpt = out / CHECKPOINT
    if config.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        net.load_state_dict(state["net"])
        loss_fn.load_state_dict(state["loss"])
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"])
        start, best = int(state["epoch"]), float(state["best"])
    sampler = (DistributedSamplerWithJitter(train_ds, num_replicas=world, rank=rank, seed=config.seed)
               if world > 1 else RandomSamplerWithEpoch(train_ds, seed=config.seed, start_epoch=start))
    loader = DataLoader(train_ds, batch_size=config.batch_size, sampler=sampler, collate_fn=collate_patches)
    model = DistributedDataParallel(net) if world > 1 else net
    spec = ModelSpec(arch=config.arch, native_spacing=config.native_spacing, sad_sigma=config.sad_sigma,
                     patch_size=config.patch, halo=config.halo, trained=True,
                     description=f"trained by pymatgen_elfml.train on {config.data}")
    max_batches = -(-config.max_patches // (config.batch_size * world)) if config.max_patches else len(loader)
    for epoch in range(start, config.epochs):
        if world > 1:
            sampler.set_epoch(epoch)
        model.train()
        t0, sums, seen = time.perf_counter(), {}, 0
        bar = tqdm(total=min(max_batches, len(loader)), desc=f"epoch {epoch + 1}/{config.epochs}", disable=rank != 0)
        for b, batch in enumerate(loader):
            if b >= max_batches:
                break
            total, terms = _step_batch(model, loss_fn, batch, device, config.halo)
            optim.zero_grad(set_to_none=True)
            total.backward()
            optim.step()
            for k, v in {**terms, "loss": float(total.detach())}.items():
                sums[k] = sums.get(k, 0.0) + v
            seen += 1
            bar.update(1)
            bar.set_postfix(loss=f"{float(total.detach()):.4f}", mae=f"{terms['mae']:.4f}")
        bar.close()
        sched.step()
        val = evaluate(net, loss_fn, val_ds, config, device) if rank == 0 else {}
        if rank == 0:
            row = {"epoch": epoch + 1, "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - t0,
                   "train": {k: v / max(seen, 1) for k, v in sums.items()}, "val": val,
                   "eta": loss_fn.eta.detach().cpu().tolist()}
            with open(out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            if val.get("mae", float("inf")) < best:
                best = val["mae"]
                save_model(net.cpu(), spec, out / "model")
                net.to(device)
            _save_checkpoint(ckpt, {"net": net.state_dict(), "loss": loss_fn.state_dict(), "optim": optim.state_dict(),
                                    "sched": sched.state_dict(), "rng": torch.get_rng_state(), "epoch": epoch + 1,
                                    "best": best})
        if world > 1:
            tdist.barrier()
    if world > 1:
        tdist.destroy_process_group()
    return out / "model"
