"""Reconstruction quality of the density VAEs (the second paper's Table 1) on held-out GPAW densities.

    python benchmarks/vae.py [--vae density-vae-v1] [--groups 221 225 229] [--data data/v2] [--split test]
                             [--run-root DIR] [--tag TAG] [--samples N]

Per space group, on the reference densities of the split (grids <= the VAE's max_grid, AU inside its
envelope): PSNR = 10 log10(max(rho*)^2 / MSE) over the full grid (the paper's definition), NMAE =
sum |rho - rho*| / sum rho*, and the electron-count error of the decoded density before renormalisation (the
reconstructions are then renormalised to the exact count, as ``DensityGenerator.reconstruct`` returns them).
Rows: the fine-tuned VAE; the SAD-pretrained VAE before fine-tuning (``model_sad`` of the run, when
``--run-root`` holds ``vae<G>/model_sad``); the group-mean baseline (the training coefficients' mean decoded
for every cell: what a VAE that learned nothing returns). The paper's numbers (Materials Project CHGCARs,
thousands of records per group, 300 epochs on 8 A100s): 44.3 / 45.0 / 41.8 dB for 221 / 225 / 227.

With ``--samples N``: the share of the charge that is negative in N samples (z ~ N(0, 1), the VAE's witness
cell, seed 0) before ``DensityGenerator.sample`` clips it, sum max(-rho, 0) / sum |rho|, next to the same share
in the held-out reference densities themselves (GPAW's compensation charges make them slightly negative in
places).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from common import save
from pymatgen_elfml.generative.api import vae_folder
from pymatgen_elfml.generative.data import build_fields, cell_grid, decode
from pymatgen_elfml.generative.train import field_batches, field_metrics, inverse_dct
from pymatgen_elfml.generative.vae import load_vae

PAPER = {221: 44.3128, 225: 45.0136, 227: 41.8305}


def _score(fields, recon_fn, envelope) -> dict:
    idct = inverse_dct(envelope, "cpu")
    rows = [m for batch in field_batches(fields, 8, "cpu") for m in field_metrics(recon_fn(batch), batch, idct)]
    return {"n": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "nmae", "count_error")},
            "psnr_min": float(np.min([r["psnr"] for r in rows])), "nmae_max": float(np.max([r["nmae"] for r in rows]))}


def group_rows(group: int, folder: Path, data: Path, split: str, run_root: Path | None) -> dict:
    net, config = load_vae(folder)
    max_grid = int(config.get("max_grid", 48))
    # the VAE's envelope: records that landed after it was fitted may be larger (left out and counted)
    fields, env, skipped = build_fields(data, group, 0, max_grid, 0, envelope=tuple(net.config.envelope))
    held_out = fields[split]
    print(f"group {group}: {len(held_out)} {split} densities; left out (all splits): {skipped}")
    with torch.no_grad():
        rows = {"VAE (fine-tuned)": _score(held_out, lambda b: net(b["coeffs"], sample=False)[0], env)}
        sad_folder = run_root / f"vae{group}" / "model_sad" if run_root else None
        if sad_folder is not None and (sad_folder / "config.json").is_file():
            sad_net, _ = load_vae(sad_folder)
            rows["VAE (SAD pre-training only)"] = _score(held_out, lambda b: sad_net(b["coeffs"], sample=False)[0], env)
        rows["group mean (no learning)"] = _score(held_out, lambda b: net.decode(torch.zeros((len(b["coeffs"]), *net.latent_shape()))), env)
    return rows


def negative_share(group: int, folder: Path, data: Path, split: str, n: int) -> dict:
    """Median and max over N samples of the negative share of the charge before clipping; the held-out references'."""
    from pymatgen_elfml import io

    net, config = load_vae(folder)
    w = config["witness"]
    cell = io.Cell(np.asarray(w["lattice"], float), np.asarray(w["frac"], float), np.asarray(w["numbers"], int))
    shape, ops = cell_grid(cell)
    with torch.no_grad():
        z = torch.randn((n, *net.latent_shape()), generator=torch.Generator().manual_seed(0))
        coeffs = net.decode(z).double().numpy()
    share = lambda x: float(np.clip(-x, 0, None).sum() / np.abs(x).sum())  # noqa: E731
    samples = [share(decode(c, shape, ops, 1.0)) for c in coeffs]
    fields, _, _ = build_fields(data, group, 0, int(config.get("max_grid", 48)), 0, envelope=tuple(net.config.envelope))
    refs = [share(decode(f.coeffs, f.shape, f.ops, 1.0)) for f in fields[split]]
    return {"n": n, "sample_median": float(np.median(samples)), "sample_max": float(np.max(samples)),
            "reference_median": float(np.median(refs)) if refs else float("nan"),
            "reference_max": float(np.max(refs)) if refs else float("nan")}


def markdown(table: dict) -> str:
    lines = ["| space group | method | n | PSNR (dB) | worst PSNR | NMAE | worst NMAE | count error | paper PSNR |",
             "|---|---|---|---|---|---|---|---|---|"]
    for group, rows in table.items():
        for name, r in rows.items():
            paper = f"{PAPER[int(group)]:.1f}" if int(group) in PAPER else "-"
            lines.append(f"| {group} | {name} | {r['n']} | {r['psnr']:.1f} | {r['psnr_min']:.1f} | {r['nmae']:.3f} | "
                         f"{r['nmae_max']:.3f} | {r['count_error']:+.3f} | {paper} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae", default=None, help="VAE family name or folder holding sg<G>/ (default: the shipped one)")
    parser.add_argument("--groups", type=int, nargs="+", default=[221, 225, 229])
    parser.add_argument("--data", type=Path, default=Path("data/v2"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--run-root", type=Path, default=None, help="folder of the training runs vae<G>/ (SAD-only rows)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--samples", type=int, default=0, help="also measure N samples' negative charge before clipping")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = lambda g: vae_folder(g, args.vae) if args.vae is None or not Path(args.vae).is_dir() else Path(args.vae) / f"sg{g}"  # noqa: E731
    if args.samples:
        shares = {str(g): negative_share(g, folder(g), args.data, args.split, args.samples) for g in args.groups}
        print("\n".join(f"{g}: negative charge share of {r['n']} samples before clipping: median {r['sample_median']:.3f}, "
                        f"max {r['sample_max']:.3f}; {args.split} references: median {r['reference_median']:.4f}, "
                        f"max {r['reference_max']:.4f}" for g, r in shares.items()))
        save(f"vae_samples{'_' + args.tag if args.tag else ''}", {"data": str(args.data), "vae": str(args.vae), "groups": shares})
        return
    table = {str(g): group_rows(g, folder(g), args.data, args.split, args.run_root) for g in args.groups}
    print(markdown(table))
    path = save(f"vae_{args.split}{'_' + args.tag if args.tag else ''}", {"data": str(args.data), "split": args.split,
                                                                           "vae": str(args.vae), "table": table})
    Path(path).with_suffix(".md").write_text(markdown(table) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
