"""Command line: ``pymatgen-elfml predict`` and ``pymatgen-elfml sad``."""

from __future__ import annotations

import argparse
import sys
import time

from pymatgen_elfml import io


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pymatgen-elfml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    pred = sub.add_parser("predict", help="predict the ELF of a structure and write an ELFCAR")
    pred.add_argument("structure", help="POSCAR, CIF or any file pymatgen reads")
    pred.add_argument("-o", "--output", default="ELFCAR")
    pred.add_argument("--model", default=None, help="registered model name or model folder")
    pred.add_argument("--grid", type=int, nargs=3, metavar=("NX", "NY", "NZ"))
    pred.add_argument("--spacing", type=float, help="output grid spacing in Angstrom")
    pred.add_argument("--device", default="auto")
    pred.add_argument("--no-symmetrize", action="store_true")
    sad = sub.add_parser("sad", help="superposed atomic density as a CHGCAR")
    sad.add_argument("structure")
    sad.add_argument("-o", "--output", default="CHGCAR")
    sad.add_argument("--grid", type=int, nargs=3, metavar=("NX", "NY", "NZ"))
    sad.add_argument("--spacing", type=float, help="grid spacing in Angstrom (default 0.10)")
    sad.add_argument("--sigma", type=float, help="Gaussian smoothing in Angstrom")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if args.command == "predict":
            from pymatgen_elfml.predictor import ElfPredictor

            predictor = ElfPredictor.from_pretrained(args.model, device=args.device)
            data = predictor.predict(args.structure, grid=args.grid, spacing=args.spacing,
                                     symmetrize=not args.no_symmetrize)
        else:
            from pymatgen_elfml.generator import DensityGenerator

            data = DensityGenerator().sad(args.structure, spacing=args.spacing, grid=args.grid, sigma=args.sigma)
        io.write_atomic(data, args.output)
    except (ValueError, FileNotFoundError, RuntimeError, MemoryError) as exc:
        print(f"pymatgen-elfml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    shape = data.data["total"].shape
    print(f"wrote {args.output}: {data.structure.composition.reduced_formula}, grid {shape}, "
          f"{time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
