"""``python -m pymatgen_elfml.train --data TRIPLETS --out RUN [...]``; under ``torchrun`` it runs DDP.
``python -m pymatgen_elfml.train vae --data REFERENCE --spacegroup G --out RUN [...]`` trains a group's density
VAE (``generative.train``)."""

import sys

from pymatgen_elfml.train.config import TrainConfig
from pymatgen_elfml.train.loop import RunFolderError, run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["vae"]:
        from pymatgen_elfml.generative.train import main as vae_main

        try:
            return vae_main(argv[1:])
        except RunFolderError as exc:
            print(f"python -m pymatgen_elfml.train vae: error: {exc}", file=sys.stderr)
            return 2
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
