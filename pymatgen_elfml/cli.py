"""Command line: ``pymatgen-elfml predict``, ``sad`` and ``models``; ``--version``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

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
    pred = sub.add_parser("predict", help="predict the ELF of a structure and write an ELFCAR",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    pred.add_argument("structure", help="POSCAR, CIF or any file pymatgen or ASE reads")
    pred.add_argument("-o", "--output", default="ELFCAR")
    pred.add_argument("--model", default=None, help="registered model name or model folder (default: the default model)")
    pred.add_argument("--grid", type=int, nargs=3, metavar=("NX", "NY", "NZ"))
    pred.add_argument("--spacing", type=float, help="output grid spacing in Angstrom")
    pred.add_argument("--device", default="auto")
    pred.add_argument("--no-symmetrize", action="store_true")
    pred.add_argument("--memory-budget", type=float, default=8.0, help="GB; 0 turns the check off")
    pred.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                      help="bf16: bfloat16 convolutions (float32 head); auto: bf16 on CUDA and AMX CPUs, else fp32")
    sad = sub.add_parser("sad", help="superposed atomic density as a CHGCAR",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sad.add_argument("structure")
    sad.add_argument("-o", "--output", default="CHGCAR")
    sad.add_argument("--grid", type=int, nargs=3, metavar=("NX", "NY", "NZ"))
    sad.add_argument("--spacing", type=float, help="grid spacing in Angstrom (default 0.10)")
    sad.add_argument("--sigma", type=float, help="Gaussian smoothing in Angstrom")
    sub.add_parser("models", help="list the registered models")
    return parser


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
        tag = " (default)" if name == pretrained.DEFAULT_MODEL else ""
        print(f"{name}{tag}: {len(spec.elements)} training elements, native spacing {spec.native_spacing} A; "
              f"card: {folder / 'MODEL_CARD.md'}")
    return 0


def _run(args) -> object:
    _check_output(args.output)
    if args.command == "predict":
        from pymatgen_elfml.predictor import ElfPredictor

        predictor = ElfPredictor.from_pretrained(args.model, device=args.device,
                                                 memory_budget_gb=args.memory_budget or None, precision=args.precision)
        return predictor.predict(args.structure, grid=args.grid, spacing=args.spacing, symmetrize=not args.no_symmetrize)
    from pymatgen_elfml.generator import DensityGenerator

    return DensityGenerator().sad(args.structure, spacing=args.spacing, grid=args.grid, sigma=args.sigma)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "models":
        return _models()
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
