"""pymatgen-elfml: ELF and valence densities of crystals from superposed atomic densities.

The public classes are imported lazily, so ``import pymatgen_elfml`` does no work
(torch and pymatgen load on first use).
"""

__version__ = "0.1.0"
__all__ = ["DensityGenerator", "ElfPredictor", "__version__"]


def __getattr__(name: str):
    if name == "ElfPredictor":
        from pymatgen_elfml.predictor import ElfPredictor

        return ElfPredictor
    if name == "DensityGenerator":
        from pymatgen_elfml.generator import DensityGenerator

        return DensityGenerator
    raise AttributeError(f"module 'pymatgen_elfml' has no attribute {name!r}")
