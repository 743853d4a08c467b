"""``python -m pymatgen_elfml.train --data TRIPLETS --out RUN [...]``; under ``torchrun`` it runs DDP."""

import sys

from pymatgen_elfml.train.config import TrainConfig
from pymatgen_elfml.train.loop import RunFolderError, run


def main(argv: list[str] | None = None) -> int:
    config = TrainConfig.from_args(argv)
    try:
        path = run(config)
    except RunFolderError as exc:
        print(f"python -m pymatgen_elfml.train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last checkpoint (end of the last finished epoch) is in {config.out}; "
              "continue with the same flags and --resume", file=sys.stderr)
        return 130
    print(f"best model: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
