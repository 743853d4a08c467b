"""``python -m pymatgen_elfml.data prepare SRC --out DIR``: write the paper's triplets.

SRC is a reference dataset folder (``manifest.jsonl`` + ``records/``), a VASP run folder
(ELFCAR [+ CHGCAR] [+ POSCAR/CONTCAR]), or a folder of VASP run folders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm


def _sources(src: Path):
    from pymatgen_elfml.data import sources

    if (src / "manifest.jsonl").is_file():
        yield from sources.from_reference(src)
    elif sources.is_vasp_run(src):
        yield sources.from_vasp_run(src)
    else:
        runs = sorted(p for p in src.iterdir() if p.is_dir() and sources.is_vasp_run(p))
        if not runs:
            raise SystemExit(f"{src} is neither a reference dataset nor a VASP run folder (no manifest.jsonl or ELFCAR)")
        for run in runs:
            yield sources.from_vasp_run(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.data")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="write stem_sad/elf/sym(/rho).npy triplets")
    prep.add_argument("src", type=Path)
    prep.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from pymatgen_elfml.data.triplets import write_triplet

    count = 0
    for triplet in tqdm(_sources(args.src), desc="prepare", unit="structure"):
        write_triplet(args.out, triplet)
        count += 1
    print(f"wrote {count} samples to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
