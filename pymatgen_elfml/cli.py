"""Command line: ``pymatgen-elfml predict``, ``density``, ``sad``, ``screen`` and ``models``; ``--version``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from pymatgen_elfml import io


def _parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("pymatgen-elfml")
    except PackageNotFoundError:  # running from a source tree that is not installed
        v = "unknown (not installed)"
    parser = argparse.ArgumentParser(prog="pymatgen-elfml", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {v}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, output, what in (("predict", "ELFCAR", "the ELF of a structure and write an ELFCAR"),
                                  ("density", "CHGCAR", "the valence charge density of a structure and write a CHGCAR")):
        _model_parser(sub.add_parser(command, help=f"predict {what}", formatter_class=argparse.ArgumentDefaultsHelpFormatter), output)
    sad = sub.add_parser("sad", help="superposed atomic density as a CHGCAR",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sad.add_argument("structure")
    sad.add_argument("-o", "--output", default="CHGCAR")
    sad.add_argument("--grid", type=int, nargs=3, metavar=("NX", "NY", "NZ"))
    sad.add_argument("--spacing", type=float, help="grid spacing in Angstrom (default 0.10)")
    sad.add_argument("--sigma", type=float, help="Gaussian smoothing in Angstrom")
    sub.add_parser("models", help="list the registered models")
    _screen_parser(sub)
    return parser


def _model_parser(pred: argparse.ArgumentParser, output: str) -> None:
    """Options of the commands that run a model (``predict``: ELF, ``density``: valence density)."""
    pred.add_argument("structure", help="POSCAR, CIF or any file pymatgen or ASE reads")
    pred.add_argument("-o", "--output", default=output)
    pred.add_argument("--model", default=None, help="registered model name or model folder (default: the default model)")
    pred.add_argument("--grid", type=int, nargs=3, metavar=("NX", "NY", "NZ"))
    pred.add_argument("--spacing", type=float, help="output grid spacing in Angstrom")
    pred.add_argument("--device", default="auto")
    pred.add_argument("--no-symmetrize", action="store_true")
    pred.add_argument("--memory-budget", type=float, default=8.0, help="GB; 0 turns the check off")
    pred.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                      help="bf16: bfloat16 convolutions (float32 head); auto: bf16 on CUDA and AMX CPUs, else fp32")


def _screen_parser(sub) -> None:
    scr = sub.add_parser("screen", help="predict, score and rank candidate templates (CSV ranking)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    scr.add_argument("structures", nargs="*", help="structure files (or use --elements/--prototypes)")
    scr.add_argument("--elements", nargs="*", default=[], help="build templates of these metals")
    scr.add_argument("--prototypes", nargs="*", default=["fcc", "bcc", "hcp"], help="fcc bcc hcp A15 (one metal), B1 B2 C1 (pairs)")
    scr.add_argument("--volumes", type=float, nargs="*", default=[1.0], help="V/V0 ratios applied to every cell")
    scr.add_argument("-o", "--output", default="ranking.csv", help="ranked CSV; every row also goes to <output>.jsonl as it finishes")
    scr.add_argument("--plots", help="folder for score-vs-V/V0 and ELF slices of the top 3 items")
    scr.add_argument("--workers", type=int, default=1, help="processes (spawned); 1 runs here")
    scr.add_argument("--resume", action="store_true", help="continue a run from <output>.jsonl (no item computed twice)")
    scr.add_argument("--model", default=None)


def _check_output(path: str) -> None:
    """Fail before any work if the output cannot be written (missing folder, no permission)."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (Path(path).exists() and not os.access(path, os.W_OK)):
        raise PermissionError(f"cannot write {path}: permission denied")


def _models() -> int:
    from pymatgen_elfml import pretrained

    for name, folder in pretrained.registered_models().items():
        spec = pretrained.load_model(folder)[1]
        tag = " (default)" if name in (pretrained.DEFAULT_MODEL, pretrained.DEFAULT_DENSITY_MODEL) else ""
        print(f"{name}{tag}: {spec.arch.target}, {len(spec.elements)} training elements, native spacing {spec.native_spacing} A; "
              f"card: {folder / 'MODEL_CARD.md'}")
    return 0


def _screen(args) -> int:
    """The ``screen`` command: rows as they finish to <output>.jsonl, then the ranked CSV (and plots)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from pymatgen_elfml.screening import screen, templates

    _check_output(args.output)
    log = Path(args.output).with_suffix(".jsonl")
    if log.exists() and not args.resume:
        raise FileExistsError(f"{log} exists (an earlier run's rows): pass --resume to continue it, or remove it")
    items = {**templates(args.elements, args.prototypes), **{p: p for p in args.structures}}
    if not items:
        raise ValueError("nothing to screen: give structure files or --elements")
    pool = ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) if args.workers > 1 else None
    try:
        table = screen(items, predictor=args.model, volume_ratios=args.volumes, executor=pool, output=log)
    finally:
        if pool is not None:
            pool.shutdown()
    table.to_csv(args.output)
    if args.plots:
        _screen_plots(table, Path(args.plots), items, args.model)
    failed = sum(r["error"] is not None for r in table.rows)
    print(f"wrote {args.output}: {len(table)} items ranked, {failed} failed (their errors are in the table)")
    return 0


def _screen_plots(table, folder: Path, items: dict, model: str | None) -> None:
    """score_vs_volume.png, and for the top 3 items the ELF on the (001) plane of the conventional standard
    cell through the highest interstitial maximum, with atoms and maxima on that plane marked."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from pymatgen_elfml import plot, symmetry
    from pymatgen_elfml.predictor import ElfPredictor
    from pymatgen_elfml.reference.structures import scaled
    from pymatgen_elfml.screening.descriptors import distinct_maxima

    folder.mkdir(parents=True, exist_ok=True)
    plot.score_vs_volume(table.rows, folder / "score_vs_volume.png")
    predictor = ElfPredictor.from_pretrained(model)
    for rank, row in enumerate([r for r in table.rows if r["error"] is None][:3], 1):
        structure = scaled(io.to_structure(items[row["name"]]), row["volume_ratio"])
        conv = SpacegroupAnalyzer(structure).get_conventional_standard_structure()
        elfcar = predictor.predict(conv)
        cell = io.validate(conv)
        ops = symmetry.seitz_ops(cell)
        sites = distinct_maxima(io.elf_from_elfcar(elfcar), cell.lattice, cell.frac, cell.numbers, ops.rotations, ops.translations)
        images = [p for m in sites for p in np.mod(np.einsum("nij,j->ni", ops.rotations, m.frac) + ops.translations, 1.0)]
        offset = sites[0].frac[2] if sites else 0.0
        name = f"{rank}_{row['name']}_v{row['volume_ratio']:.2f}_001.png"
        plot.elf_slice(elfcar, (0, 0, 1), offset, folder / name, maxima=images)


def _run(args) -> object:
    _check_output(args.output)
    from pymatgen_elfml.generator import DensityGenerator

    if args.command in ("predict", "density"):
        from pymatgen_elfml.predictor import ElfPredictor

        load = ElfPredictor.from_pretrained if args.command == "predict" else DensityGenerator.from_pretrained
        model = load(args.model, device=args.device, memory_budget_gb=args.memory_budget or None, precision=args.precision)
        return model.predict(args.structure, grid=args.grid, spacing=args.spacing, symmetrize=not args.no_symmetrize)

    return DensityGenerator().sad(args.structure, spacing=args.spacing, grid=args.grid, sigma=args.sigma)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "models":
        return _models()
    if args.command == "screen":
        try:
            return _screen(args)
        except (ValueError, OSError) as exc:
            print(f"pymatgen-elfml screen: error: {exc}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    try:
        data = _run(args)
        io.write_atomic(data, args.output)
    except (ValueError, OSError, RuntimeError, MemoryError) as exc:
        print(f"pymatgen-elfml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    shape = data.data["total"].shape
    print(f"wrote {args.output}: {data.structure.composition.reduced_formula}, grid {shape}, "
          f"{time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
