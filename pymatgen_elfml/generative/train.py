"""Training of one space group's density VAE: pre-training on generated PAW-superposition densities, then
fine-tuning on the reference (GPAW) valence densities. ``python -m pymatgen_elfml.train vae --data data/v2
--spacegroup 225 --out RUN [...]`` (the project's training entry point; resumable, progress bars, metrics.jsonl).

Loss, per the second paper: lambda1 KL(p* || p) between the real-space densities normalised to probability
distributions over the whole grid (values clamped at 1e-6 first: the GPAW references are negative near some
nuclei), lambda2 the mean squared error of the envelope's DCT coefficients, lambda3 KL(q(z | c) || N(0, 1)).
Metrics on the full grid through the orbit weights, of the density renormalised to the exact electron count
as ``DensityGenerator.reconstruct`` returns it: PSNR = 10 log10(max(rho*)^2 / MSE) (the paper's definition),
NMAE = sum |rho - rho*| / sum rho*, and the electron-count error before renormalisation.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from tqdm import tqdm

from pymatgen_elfml.generative.data import AuField, build_fields
from pymatgen_elfml.generative.vae import SwinVae, VaeConfig, build_vae, dct3
from pymatgen_elfml.io import atomic_path
from pymatgen_elfml.train.config import NestedFlags

CHECKPOINT = "checkpoint.pt"
STAGES = ("sad", "reference")


@dataclass(frozen=True)
class VaeTrainConfig(NestedFlags):
    """Settings of one run (saved as config.json; ``resume`` needs the same ones but these may change:
    ``train.config.RESUME_MAY_CHANGE``). The architecture is the nested ``VaeConfig`` (its fields are the
    flags --dim, --depth, --heads, --window, --latent, --arch; its envelope comes from the data).

    Attributes:
        data: reference dataset folder (manifest.jsonl, splits.json, records/).
        spacegroup: the group (one VAE per group).
        out: run folder: config.json, fields.pkl (the aligned data), metrics.jsonl, checkpoint.pt,
            model_sad/ (best after pre-training), model/ (best after fine-tuning, on validation PSNR).
        vae: ``VaeConfig`` ("swin": the paper's, gradient-trained; "linear": probabilistic PCA fitted in closed
            form, for which the epoch and learning-rate settings do not apply).
        n_sad: generated pre-training densities (random cells of the group, ``generative.data.random_cells``).
        max_grid: fields on larger grids are left out of the envelope and the data (counted in metrics).
        sad_epochs, epochs: epochs of pre-training and of fine-tuning.
        batch_size, lr: Adam (betas 0.8, 0.999 as the paper) with cosine decay within each stage.
        kl_real, mse_coeff, kl_latent: lambda1, lambda2, lambda3.
    """

    NESTED: ClassVar[dict] = {"vae": VaeConfig}
    INTERNAL: ClassVar[tuple] = ("envelope",)
    PROG: ClassVar[str] = "python -m pymatgen_elfml.train vae"

    data: str
    spacegroup: int
    out: str
    vae: VaeConfig = field(default_factory=VaeConfig)
    n_sad: int = 400
    max_grid: int = 48
    sad_epochs: int = 15
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    kl_real: float = 1.0
    mse_coeff: float = 1.0
    kl_latent: float = 1e-4
    seed: int = 0
    device: str = "cpu"
    max_minutes: float = 0.0
    resume: bool = False
    overwrite: bool = False


def inverse_dct(envelope: tuple[int, int, int], device) -> callable:
    """The 3D inverse orthonormal DCT-II of (B, *envelope) tensors (torch, differentiable)."""
    return lambda y: dct3(y, inverse=True)


def field_batches(fields: list[AuField], batch_size: int, device, order: np.ndarray | None = None):
    """Batches {"coeffs", "stab": (B, *envelope), "n_ops": (B,)} of ``fields`` in ``order`` (default as given)."""
    order = np.arange(len(fields)) if order is None else order
    for start in range(0, len(order), batch_size):
        sel = [fields[i] for i in order[start:start + batch_size]]
        yield {"coeffs": torch.from_numpy(np.stack([f.coeffs for f in sel])).to(device),
               "stab": torch.from_numpy(np.stack([f.stab for f in sel])).to(device),
               "n_ops": torch.tensor([float(len(f.ops)) for f in sel], device=device)}


def full_grid_terms(coeffs: torch.Tensor, stab: torch.Tensor, n_ops: torch.Tensor, idct) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, w): full-grid values R_m x'_m of the normalised density at the AU points and their orbit sizes
    |G| / R_m (0 outside the AU), from (B, envelope) coefficients, stabilisers and (B,) operator counts."""
    own = stab > 0
    x = torch.where(own, idct(coeffs) * stab, torch.zeros_like(stab))
    w = torch.where(own, n_ops[:, None, None, None] / stab.clamp_min(1), torch.zeros_like(stab))
    return x, w


def vae_loss(net: SwinVae, batch: dict, config: VaeTrainConfig, idct) -> tuple[torch.Tensor, dict]:
    recon, mu, logvar = net(batch["coeffs"])
    x_ref, w = full_grid_terms(batch["coeffs"], batch["stab"], batch["n_ops"], idct)
    x_hat, _ = full_grid_terms(recon, batch["stab"], batch["n_ops"], idct)
    dims = (1, 2, 3)
    p = w * x_ref.clamp_min(1e-6)
    q = w * x_hat.clamp_min(1e-6)
    p, q = p / p.sum(dims, keepdim=True), q / q.sum(dims, keepdim=True)
    kl_real = torch.where(w > 0, p * (torch.log(p.clamp_min(1e-30)) - torch.log(q.clamp_min(1e-30))), 0.0).sum(dims).mean()
    mse = (recon - batch["coeffs"]).square().mean()
    kl_z = -0.5 * (1 + logvar - mu.square() - logvar.exp()).mean()
    total = config.kl_real * kl_real + config.mse_coeff * mse + config.kl_latent * kl_z
    return total, {"kl_real": kl_real.item(), "mse_coeff": mse.item(), "kl_latent": kl_z.item()}


@torch.no_grad()
def reconstruction_metrics(net: SwinVae, batch: dict, idct) -> list[dict]:
    """Per field: PSNR (dB), NMAE and relative electron-count error of z = mean reconstructions."""
    return field_metrics(net(batch["coeffs"], sample=False)[0], batch, idct)


@torch.no_grad()
def field_metrics(recon: torch.Tensor, batch: dict, idct) -> list[dict]:
    """Per field: PSNR (dB), NMAE and relative electron-count error of reconstructed coefficients ``recon``
    (B, envelope) against the batch's, on the full grid after renormalising to the exact count."""
    x_ref, w = full_grid_terms(batch["coeffs"], batch["stab"], batch["n_ops"], idct)
    x_hat, _ = full_grid_terms(recon, batch["stab"], batch["n_ops"], idct)
    dims = (1, 2, 3)
    n_grid = w.sum(dims)
    count = (w * x_hat).sum(dims) / n_grid  # mean of the normalised density: 1 when the count is exact
    x_hat = x_hat / count[:, None, None, None]
    mse = (w * (x_hat - x_ref).square()).sum(dims) / n_grid
    peak = torch.where(w > 0, x_ref, torch.full_like(x_ref, -torch.inf)).amax(dims)
    nmae = (w * (x_hat - x_ref).abs()).sum(dims) / (w * x_ref).sum(dims)
    psnr = 10 * torch.log10(peak.square() / mse.clamp_min(1e-30))
    return [{"psnr": float(a), "nmae": float(b), "count_error": float(c - 1)} for a, b, c in zip(psnr, nmae, count)]


def evaluate(net: SwinVae, fields: list, config: VaeTrainConfig, idct, device) -> dict:
    net.eval()
    rows = [m for batch in field_batches(fields, config.batch_size, device) for m in reconstruction_metrics(net, batch, idct)]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "nmae", "count_error")} | {"n": len(rows)} if rows else {"n": 0}


def _fields(config: VaeTrainConfig, out: Path) -> tuple[dict, tuple[int, int, int], dict]:
    """The aligned fields, built once per run folder (fields.pkl, keyed by the settings that define them and the
    manifest's sha256) and reloaded on resume."""
    import pickle

    import hashlib

    manifest = Path(config.data) / "manifest.jsonl"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else ""
    key = [str(config.data), digest, config.spacegroup, config.n_sad, config.max_grid, config.seed]
    cache = out / "fields.pkl"
    if cache.is_file():
        with open(cache, "rb") as handle:
            saved_key, built = pickle.load(handle)
        if saved_key == key:
            return built
    built = build_fields(config.data, config.spacegroup, config.n_sad, config.max_grid, config.seed)
    with atomic_path(cache) as tmp, open(tmp, "wb") as handle:
        pickle.dump((key, built), handle)
    return built


def rotation_key(rotations: np.ndarray) -> tuple:
    """A cell setting's fingerprint: its sorted integer rotation matrices (fractional basis)."""
    return tuple(sorted(tuple(int(v) for v in r.ravel()) for r in np.asarray(rotations)))


def _witness(config: VaeTrainConfig) -> dict:
    """A training cell of the group in its most common setting (lattice rows in A, fractional coordinates, atomic
    numbers): ``reconstruct`` and ``sample`` accept cells whose operators are in this setting."""
    from collections import Counter

    from pymatgen_elfml import io
    from pymatgen_elfml.generative.data import cell_grid, reference_cells

    cells = [io.validate(rec.structure) for row, rec, split in reference_cells(config.data, config.spacegroup)
             if split == "train" and max(row["grid"]) <= config.max_grid]
    if not cells:
        raise ValueError(f"no training cell of space group {config.spacegroup} on grids <= {config.max_grid}")
    keys = [rotation_key(cell_grid(c)[1].rotations) for c in cells]
    common = Counter(keys).most_common(1)[0][0]
    cell = cells[keys.index(common)]
    return {"lattice": cell.lattice.tolist(), "frac": cell.frac.tolist(), "numbers": cell.numbers.tolist()}


def _stage_epochs(config: VaeTrainConfig) -> list[tuple[str, int]]:
    return [("sad", e) for e in range(config.sad_epochs)] + [("reference", e) for e in range(config.epochs)]


def _train_epoch(net, optim, fields, config, idct, device, rng, desc) -> dict:
    net.train()
    sums, steps = {}, 0
    order = rng.permutation(len(fields))
    bar = tqdm(list(field_batches(fields, config.batch_size, device, order)), desc=desc, leave=False)
    for batch in bar:
        total, terms = vae_loss(net, batch, config, idct)
        optim.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optim.step()
        for k, v in {**terms, "loss": total.item()}.items():
            sums[k] = sums.get(k, 0.0) + v
        steps += 1
        bar.set_postfix(loss=f"{total.item():.4g}")
    return {k: v / max(steps, 1) for k, v in sums.items()}


def _log(out: Path, row: dict) -> None:
    from pymatgen_elfml.train.loop import append_metrics

    append_metrics(out, row)
    val = row["val"]
    loss = f"loss {row['train']['loss']:.4g} " if "train" in row else f"closed form ({row.get('basis')}) "
    print(f"{row['stage']} epoch {row['epoch'] + 1}: {loss}val PSNR {val.get('psnr', float('nan')):.2f} dB NMAE {val.get('nmae', float('nan')):.4f}", flush=True)


def _fit_linear(config: VaeTrainConfig, fields: dict, env, out: Path, info: dict) -> None:
    """Closed-form linear VAE (probabilistic PCA, the maximum-likelihood linear-Gaussian VAE): stage "sad" takes
    its components from the generated densities, stage "reference" from the reference training densities, alone
    or with the generated ones, whichever scores the higher validation PSNR (both recorded). Gradient epochs do
    not apply: on Pm-3m, Adam at lr 1e-5 moved the PCA solution from 64 dB down to 43-51 dB within a few epochs."""
    from pymatgen_elfml.generative.vae import save_vae

    idct = inverse_dct(env, "cpu")
    options = {"sad": {"sad": fields["sad"]},
               "reference": {"reference": fields["train"], "reference+sad": fields["train"] + fields["sad"]}}
    for stage, bases in options.items():
        scored = {}
        for basis, src in bases.items():
            if len(src) >= 2:
                net = build_vae(replace(config.vae, envelope=env))
                net.set_stats(torch.from_numpy(np.stack([f.coeffs for f in src])),
                              torch.from_numpy(np.any([f.stab > 0 for f in src], axis=0)))
                scored[basis] = (evaluate(net, fields["val"], config, idct, "cpu"), net)
        if not scored:
            continue
        basis = max(scored, key=lambda b: scored[b][0]["psnr"])
        val, net = scored[basis]
        _log(out, {"stage": stage, "epoch": 0, "basis": basis, "val": val, "alternatives": {b: v for b, (v, _) in scored.items()}})
        save_vae(net, out / ("model_sad" if stage == "sad" else "model"), {**info, "stage": stage, "basis": basis, "val": val})


def _run_info(config: VaeTrainConfig, fields: dict, skipped: dict) -> dict:
    return {"spacegroup": config.spacegroup, "witness": _witness(config), "data": config.data, "skipped": skipped,
            "max_grid": config.max_grid, "mean_scale": float(np.mean([f.scale for f in fields["train"]])),
            "n_fields": {k: len(v) for k, v in fields.items()}}


def run(config: VaeTrainConfig) -> Path:
    """Train (or resume) one group's VAE; returns the folder of the fine-tuned model."""
    from pymatgen_elfml.train.loop import _check_run_folder, _start_run_folder, restore_metrics

    out, device = Path(config.out), torch.device(config.device)
    if _check_run_folder(config, out):
        _start_run_folder(config, out)
        (out / "fields.pkl").unlink(missing_ok=True)
        shutil.rmtree(out / "model_sad", ignore_errors=True)
    fields, env, skipped = _fields(config, out)
    if not fields["val"] or not fields["train"]:
        raise ValueError(f"space group {config.spacegroup}: {len(fields['train'])} training and {len(fields['val'])} "
                         f"validation reference densities on grids <= {config.max_grid}; both are needed")
    info = _run_info(config, fields, skipped)
    if config.vae.arch == "linear":
        if not (config.resume and (out / "model" / "config.json").is_file()):
            _fit_linear(config, fields, env, out, info)
        return out / "model"
    torch.manual_seed(config.seed)
    net = build_vae(replace(config.vae, envelope=env))
    net.set_stats(torch.from_numpy(np.stack([f.coeffs for f in fields["sad"] + fields["train"]])))
    net = net.to(device)
    optim = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.8, 0.999))
    start, best, ckpt = 0, {s: -math.inf for s in STAGES}, out / CHECKPOINT
    if config.resume and ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        net.load_state_dict(state["net"]), optim.load_state_dict(state["optim"])
        start, best = state["next"], state["best"]
        restore_metrics(out, state.get("row"))
    _train_stages(config, net, optim, fields, env, out, info, start, best, device)
    return out / "model"


def _train_stages(config, net, optim, fields, env, out, info, start, best, device) -> None:
    """The gradient epochs of both stages from schedule index ``start``; checkpoint after each, best per stage saved."""
    from pymatgen_elfml.generative.vae import save_vae

    schedule, idct, started = _stage_epochs(config), inverse_dct(env, device), time.time()
    for index in range(start, len(schedule)):
        stage, epoch = schedule[index]
        n_stage = config.sad_epochs if stage == "sad" else config.epochs
        for group in optim.param_groups:
            group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * epoch / n_stage))
        rng = np.random.default_rng(config.seed * 1000 + index)
        train_fields = fields["sad"] if stage == "sad" else fields["train"]
        terms = _train_epoch(net, optim, train_fields, config, idct, device, rng, f"{stage} {epoch + 1}/{n_stage}")
        val = evaluate(net, fields["val"], config, idct, device)
        row = {"stage": stage, "epoch": epoch, "train": terms, "val": val, "elapsed_s": time.time() - started}
        if val["psnr"] > best[stage]:
            best[stage] = val["psnr"]
            save_vae(net.cpu(), out / ("model_sad" if stage == "sad" else "model"), {**info, "stage": stage, "epoch": epoch, "val": val})
            net.to(device)
        with atomic_path(out / CHECKPOINT) as tmp:  # before the metrics row: a crash repeats no epoch, loses no row
            torch.save({"net": net.state_dict(), "optim": optim.state_dict(), "next": index + 1, "best": best, "row": row}, tmp)
        _log(out, row)
        if config.max_minutes and time.time() - started > 60 * config.max_minutes:
            print(f"stopped after {config.max_minutes} minutes; continue with --resume", flush=True)
            break


def main(argv: list[str] | None = None) -> int:
    print(f"model: {run(VaeTrainConfig.from_args(argv))}")
    return 0
