"""Ship a trained run as a registered model: ``models/<name>/`` with weights, config and model card.

    python -m pymatgen_elfml.train.release runs/elf-v1 --name elf-metals-v1 \\
        --accuracy benchmarks/results/accuracy_test.json --speed benchmarks/results/speed.json

Copies the run's best-on-validation ``model/`` (weights.pt + config.json, checksum verified by
loading it), the run's ``config.json`` as ``training_config.json`` and ``metrics.jsonl`` as
``training_metrics.jsonl``, and writes ``MODEL_CARD.md`` from those files and the benchmark JSON
(every number in the generated sections is read from a file a command wrote; further ``--accuracy`` files, e.g.
``accuracy.py --split none --vasp ...``, add their real-VASP tables), the markdown files
given with ``--include`` (tables written by benchmark scripts, e.g. the training study), and the
hand-written interpretation in ``--notes``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from pymatgen_elfml.io import atomic_path, write_text_atomic
from pymatgen_elfml.pretrained import CONFIG_FILE, WEIGHTS_FILE, load_model
from pymatgen_elfml.train.config import TrainConfig

MODELS = Path(__file__).resolve().parents[2] / "models"


ELF_COLUMNS = {"mae": "MAE", "rmse": "RMSE", "p95": "P95", "psnr": "PSNR (dB)", "hist_l1": "hist L1",
               "far_mae": "MAE > 1 A", "recall": "maxima recall", "value_mae": "maxima dELF"}
DENSITY_COLUMNS = {"nmae": "NMAE", "far_nmae": "NMAE > 1 A", "charge_error": "charge error (e)"}


def _table(rows: dict) -> list[str]:
    """Markdown table of a benchmark's rows ("method | subset" keys, as accuracy.py and density.py
    write them, or a bare method name); ELF or density columns, whichever the rows hold."""
    columns = DENSITY_COLUMNS if any("nmae" in m for m in rows.values()) else ELF_COLUMNS
    lines = ["| method | subset | n | " + " | ".join(columns.values()) + " |", "|" + "---|" * (3 + len(columns))]
    for name, m in rows.items():
        method, _, subset = name.partition(" | ")
        values = " | ".join(f"{m[k]:.1f}" if k == "psnr" else f"{m[k]:.3f}" for k in columns)
        lines.append(f"| {method} | {subset or 'whole cell'} | {m.get('n', 1)} | {values} |")
    return lines


def _split_counts(triplets: Path) -> tuple[str, str]:
    """('train 328 / val 42 / test 43', 'data/v1'): split counts and the reference folder ("source"
    "reference:v1") from the triplets' stem_meta.json files."""
    counts: dict[str, int] = {}
    sources = set()
    for meta in sorted(triplets.glob("*_meta.json")):
        fields = json.loads(meta.read_text())
        counts[fields.get("split", "none")] = counts.get(fields.get("split", "none"), 0) + 1
        sources.add(fields.get("source", "reference:v1"))
    folder = ", ".join(f"data/{s.partition(':')[2]}" if s.startswith("reference:") else s for s in sorted(sources))
    folder = folder or "unknown (triplets not found)"
    listed = " / ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return listed or "unknown (triplets not found)", folder


def _items(cfg: dict) -> str:
    unit = "whole cells" if cfg.get("whole_cell") else "patches"
    return f"{('up to ' + str(cfg['max_patches'])) if cfg['max_patches'] else 'all'} {unit}"


def _schedule(cfg: dict, rows: list[dict]) -> str:
    """What was trained: U-Net epochs (epoch 0 is the pointwise branch alone, scored before the U-Net trains),
    what they covered and their optimizer steps."""
    epochs = sum(r["epoch"] > 0 for r in rows)
    if not epochs:
        return "no U-Net epoch (only the pointwise branch was fitted); "
    steps = [r["train"].get("steps") for r in rows]
    counted = f"{sum(steps):,} optimizer steps; " if all(s is not None for s in steps) else ""
    return f"{epochs} epochs x {_items(cfg)}; {counted}"


def _accuracy_intro(accuracy: dict) -> list[str]:
    if any("nmae" in m for m in accuracy["table"].values()):
        return ["## Accuracy (`python benchmarks/density.py`)",
                f"Split `{accuracy['split']}`, on the reference grid. NMAE = sum |rho - rho_ref| / sum rho_ref; NMAE > 1 A: "
                "the same sums over the points more than 1 A from every nucleus; charge error: |integral rho - N_valence|.", ""]
    return ["## Accuracy (`python benchmarks/accuracy.py`)",
            f"Split `{accuracy['split']}`, inference mode `{accuracy.get('mode', 'auto')}`, on the reference grid. "
            "MAE > 1 A: points more than 1 A from every nucleus. Maxima: interstitial ELF maxima (> 1 A from nuclei) "
            "of the reference with a predicted maximum within 0.3 A (recall) and the |dELF| there.", ""]


def model_card(name: str, run: Path, n_params: int, accuracy: dict, speed: dict | None, notes: str = "",
               include: tuple[Path, ...] = ()) -> str:
    """The MODEL_CARD.md text of a run folder (model of ``n_params`` parameters) and its benchmark results."""
    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text())).flat()
    spec = json.loads((run / "model" / CONFIG_FILE).read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    best = min(rows, key=lambda r: r["val"]["mae"])
    hours = sum(r["seconds"] for r in rows) / 3600
    chosen = f"{best['epoch']}" + (" (the pointwise branch alone, before any U-Net step)" if best["epoch"] == 0 else "")
    machine = accuracy.get("machine", {})
    splits, data = _split_counts(Path(cfg["data"]))
    what = (("the valence charge density", "reference valence (pseudo) densities", "`Chgcar` (integrating to the valence "
             "electron count of `valence.SETUP_VALENCE`)") if spec["arch"].get("target") == "density"
            else ("the ELF (values in [0, 1])", "reference ELFs", "`Elfcar`"))
    out = [f"# {name}", "",
           f"Predicts {what[0]} of a crystal on a 0.10 A grid from its superposed atomic density,",
           f"trained on GPAW PBE {what[1]} of metal-only structures (`{data}`). Output: pymatgen {what[2]}.", "",
           "## Data and split",
           f"- Training data: triplets written by `python -m pymatgen_elfml.data prepare {data} --out {Path(cfg['data']).name}`",
           f"  (how the reference data was made: `{data}/README.md`).",
           f"- Split by chemical system (`{data}/splits.json`), structures: {splits}.",
           f"- Elements of the training structures ({len(spec.get('elements', []))}): {', '.join(spec.get('elements', [])) or 'not recorded'};"
           " the predictor warns for structures with any other element.",
           "  Trained on train, model chosen on validation (lowest validation MAE), evaluated once on test.", "",
           "## Model and training",
           f"- `PeriodicUNet3D` {json.dumps(spec['arch'])}: {n_params:,} parameters; native spacing "
           f"{spec['native_spacing']} A, SAD smoothing {spec['sad_sigma']} A; patch {spec['patch_size']} + halo {spec['halo']}.",
           f"- `python -m pymatgen_elfml.train` with {json.dumps({k: v for k, v in cfg.items() if k not in ('data', 'out', 'resume')})}.",
           f"- {_schedule(cfg, rows)}training time {hours:.2f} h (sum of the epoch "
           f"times) on device `{cfg['device']}`; benchmarks below measured on {machine.get('cores', '?')} cores "
           f"({machine.get('cpu', '?')}, GPU: {machine.get('cuda') or 'none'}).",
           f"- Chosen epoch {chosen}: validation {'NMAE' if spec['arch'].get('target') == 'density' else 'MAE'} {best['val']['mae']:.4f} during training (loss terms "
           + ", ".join(f"{k} {best['val'][k]:.4f}" for k in ("vox", "grad", "hist", "charge") if k in best["val"]) + ").",
           "- Per-epoch loss terms, validation metrics and learned log-precisions: `training_metrics.jsonl`.", "",
           *_accuracy_intro(accuracy), *_table(accuracy["table"]), ""]
    for fname, res in accuracy.get("vasp", {}).items():
        out += [f"Real VASP `{fname}` ({res['formula']}, grid {res['grid']}):", "", *_table(res["methods"]), ""]
    if speed:
        s = speed["summary"]
        rows = [f"- {k}: median {v['median_s']:.3f} s per structure, median GPAW / prediction {v['median_ratio_vs_gpaw']:.0f}x "
                f"(min {v['min_ratio_vs_gpaw']:.0f}x)" for k, v in s.items() if isinstance(v, dict)]
        out += ["## Speed (`python benchmarks/speed.py`)",
                f"{s['n']} structures of the {speed['split']} split{' in ' + Path(speed['subset']).name if speed.get('subset') else ''}, {s['threads']} thread(s), GPAW's recorded median "
                f"{s['median_gpaw_s']:.0f} s:", "", *rows, ""]
    for path in include:
        out += [f"## {path.stem.replace('_', ' ').capitalize()} (`{path.name}`, written by `benchmarks/{path.stem}.py`)", "",
                path.read_text().strip(), ""]
    return "\n".join(out) + (f"\n{notes.strip()}\n" if notes.strip() else "")


def read_accuracy(paths) -> dict:
    """One ``accuracy.py`` results file, or several: the first gives the split's table, every one its "vasp" entries."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    first = json.loads(Path(paths[0]).read_text())
    vasp = dict(first.get("vasp", {}))
    for path in paths[1:]:
        vasp.update(json.loads(Path(path).read_text()).get("vasp", {}))
    return {**first, "vasp": vasp} if vasp else first


def release(run: Path, name: str, accuracy, speed: Path | None, models: Path = MODELS,
            notes: Path | None = None, include: tuple[Path, ...] = ()) -> Path:
    """Copy the run's model into ``models/<name>/`` and write its card (``accuracy``: one results file or
    several, ``read_accuracy``); returns the folder."""
    net, _ = load_model(run / "model")  # verifies checksum, format and keys before anything is copied
    dest = models / name
    dest.mkdir(parents=True, exist_ok=True)
    for src, dst in ((run / "model" / WEIGHTS_FILE, WEIGHTS_FILE), (run / "metrics.jsonl", "training_metrics.jsonl")):
        with atomic_path(dest / dst) as tmp:
            shutil.copyfile(src, tmp)
    train_config = asdict(TrainConfig.from_dict(json.loads((run / "config.json").read_text())))
    for key in ("data", "out"):  # the folder names, not this machine's absolute paths
        if train_config.get(key):
            train_config[key] = Path(train_config[key]).name
    write_text_atomic(dest / "training_config.json", json.dumps(train_config, indent=2))
    config = json.loads((run / "model" / CONFIG_FILE).read_text())
    config["description"] = f"{name}: trained by python -m pymatgen_elfml.train (see MODEL_CARD.md)"
    write_text_atomic(dest / CONFIG_FILE, json.dumps(config, indent=2))
    n_params = sum(p.numel() for p in net.parameters())
    card = model_card(name, run, n_params, read_accuracy(accuracy), json.loads(speed.read_text()) if speed else None,
                      notes.read_text() if notes else "", tuple(include))
    write_text_atomic(dest / "MODEL_CARD.md", card)
    load_model(dest)
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.train.release", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--accuracy", type=Path, nargs="+", required=True,
                        help="accuracy.py results: the first gives the split's table; each may add real-VASP tables")
    parser.add_argument("--speed", type=Path, default=None)
    parser.add_argument("--include", type=Path, nargs="*", default=[], help="generated markdown sections to insert")
    parser.add_argument("--notes", type=Path, default=None, help="markdown appended to the card (interpretation)")
    args = parser.parse_args(argv)
    print("wrote", release(args.run, args.name, args.accuracy, args.speed, notes=args.notes, include=tuple(args.include)))


if __name__ == "__main__":
    main()
