"""``python -m pymatgen_elfml.train --data TRIPLETS --out RUN [...]``; under ``torchrun`` it runs DDP."""

import sys

from pymatgen_elfml.train.config import TrainConfig
from pymatgen_elfml.train.loop import run


def main(argv: list[str] | None = None) -> int:
    path = run(TrainConfig.from_args(argv))
    print(f"best model: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
