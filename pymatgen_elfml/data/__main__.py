"""``python -m pymatgen_elfml.data prepare SRC --out DIR``: write the paper's triplets.

SRC is a reference dataset folder (``manifest.jsonl`` + ``records/``), a VASP run folder
(ELFCAR [+ CHGCAR] [+ POSCAR/CONTCAR]), or a folder of VASP run folders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pymatgen_elfml.data")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="write stem_sad/elf/sym(/rho).npy triplets")
    prep.add_argument("src", type=Path)
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--force", action="store_true", help="rebuild samples already in --out (default: skip them)")
    args = parser.parse_args(argv)
    from pymatgen_elfml.data.sources import items
    from pymatgen_elfml.data.triplets import discover, write_triplet
    from pymatgen_elfml.reference.store import RecordError

    count, skipped = 0, []
    done = set() if args.force or not args.out.is_dir() else set(discover(args.out))
    try:
        todo = [(path, build) for path, build in items(args.src) if path.stem not in done]  # resumable
        for path, build in tqdm(todo, desc="prepare", unit="structure"):
            try:
                triplet = build()
            except (ValueError, OSError, RecordError) as exc:  # bad run or record: report it, go on
                skipped.append(path)
                print(f"skipped {path}: {exc}", file=sys.stderr)
                continue
            write_triplet(args.out, triplet)
            count += 1
    except ValueError as exc:
        raise SystemExit(f"python -m pymatgen_elfml.data prepare: {exc}") from None
    print(f"wrote {count} samples to {args.out}" + (f"; {len(done)} already there" if done else "")
          + (f"; skipped {len(skipped)} (reasons above)" if skipped else ""))
    return 0 if count or done else 1


if __name__ == "__main__":
    sys.exit(main())
