"""Valence electron counts of the reference data's PAW setups (what a learned valence density integrates to),
and the elements' electronegativities.

The counts are those of the default PBE setups of gpaw-data 1.2.1 (GPAW 26.7; GPAW's setups are GPL-licensed
data of the GPAW project, https://gpaw.readthedocs.io), read from each setup's ``<atom ... valence="..">``
header: the electrons GPAW treats explicitly, semicore shells included (Na 7, Ca 10, ...). Every element with a
default PBE setup (83: the 53 metals of the reference data first, then the 30 others, H to Rn); the reference data
holds metals only, so a model's prediction for any other element is an extrapolation (the predictors warn).
``PAULING_ELECTRONEGATIVITY`` holds the same elements' Pauling electronegativities (the inputs of the
electronegativity channels, ``features.CHI_CHANNELS``). Numbers, no imports beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable

SETUP_VALENCE: dict[str, int] = {
    "Li": 1, "Na": 7, "K": 9, "Rb": 9, "Cs": 9, "Be": 2, "Mg": 10, "Ca": 10, "Sr": 10, "Ba": 10,
    "Sc": 11, "Y": 11, "La": 11, "Ce": 12, "Pr": 13, "Nd": 14, "Sm": 16, "Eu": 17, "Gd": 18, "Lu": 25,
    "Ti": 12, "Zr": 12, "Hf": 12, "V": 13, "Nb": 13, "Ta": 13, "Cr": 6, "Mo": 14, "W": 14, "Mn": 15,
    "Re": 13, "Fe": 8, "Ru": 16, "Os": 14, "Co": 9, "Rh": 15, "Ir": 15, "Ni": 16, "Pd": 16, "Pt": 16,
    "Cu": 11, "Ag": 17, "Au": 11, "Zn": 12, "Cd": 12, "Hg": 18, "Al": 3, "Ga": 3, "In": 13, "Tl": 13,
    "Sn": 14, "Pb": 14, "Bi": 15,
    # not in the reference data (added 2026-12-02 from the same setups' headers)
    "H": 1, "He": 2, "B": 3, "C": 4, "N": 5, "O": 6, "F": 7, "Ne": 8, "Si": 4, "P": 5, "S": 6, "Cl": 7, "Ar": 8,
    "Ge": 4, "As": 5, "Se": 6, "Br": 7, "Kr": 8, "Sb": 15, "Te": 6, "I": 7, "Xe": 8, "Rn": 8,
    "Pm": 15, "Tb": 19, "Dy": 20, "Ho": 21, "Er": 22, "Tm": 23, "Yb": 24,
}  # fmt: skip


def valence_electrons(symbols: Iterable[str]) -> int:
    """Total valence electrons of the atoms ``symbols`` (one symbol per atom) in the setups' convention.

    Raises:
        ValueError: naming the elements that have no entry (no setup in the reference data's convention).
    """
    symbols = list(symbols)
    missing = sorted(set(symbols) - set(SETUP_VALENCE))
    if missing:
        raise ValueError(f"no valence electron count for {', '.join(missing)}: the reference data's PAW setups "
                         f"(gpaw-data 1.2.1) cover {len(SETUP_VALENCE)} elements")
    return sum(SETUP_VALENCE[s] for s in symbols)


# Pauling electronegativities by atomic number, of the elements above (He, Ne, Ar have no Pauling value and are left
# out); copied 2026-12-03 from pymatgen 2026.10.24 (``Element.X``, its periodic_table.json, Pauling scale).
PAULING_ELECTRONEGATIVITY: dict[int, float] = {
    1: 2.2, 3: 0.98, 4: 1.57, 5: 2.04, 6: 2.55, 7: 3.04, 8: 3.44, 9: 3.98, 11: 0.93, 12: 1.31, 13: 1.61, 14: 1.9,
    15: 2.19, 16: 2.58, 17: 3.16, 19: 0.82, 20: 1, 21: 1.36, 22: 1.54, 23: 1.63, 24: 1.66, 25: 1.55, 26: 1.83, 27: 1.88,
    28: 1.91, 29: 1.9, 30: 1.65, 31: 1.81, 32: 2.01, 33: 2.18, 34: 2.55, 35: 2.96, 36: 3, 37: 0.82, 38: 0.95, 39: 1.22,
    40: 1.33, 41: 1.6, 42: 2.16, 44: 2.2, 45: 2.28, 46: 2.2, 47: 1.93, 48: 1.69, 49: 1.78, 50: 1.96, 51: 2.05, 52: 2.1,
    53: 2.66, 54: 2.6, 55: 0.79, 56: 0.89, 57: 1.1, 58: 1.12, 59: 1.13, 60: 1.14, 61: 1.13, 62: 1.17, 63: 1.2, 64: 1.2,
    65: 1.1, 66: 1.22, 67: 1.23, 68: 1.24, 69: 1.25, 70: 1.1, 71: 1.27, 72: 1.3, 73: 1.5, 74: 2.36, 75: 1.9, 76: 2.2,
    77: 2.2, 78: 2.28, 79: 2.54, 80: 2, 81: 1.62, 82: 2.33, 83: 2.02, 86: 2.2,
}  # fmt: skip


def electronegativities(numbers: Iterable[int]) -> list[float]:
    """Pauling electronegativity of each atomic number in ``numbers`` (``PAULING_ELECTRONEGATIVITY``).

    Raises:
        ValueError: naming the atomic numbers that have no entry (He, Ne, Ar, and elements without a setup).
    """
    numbers = [int(z) for z in numbers]
    missing = sorted(set(numbers) - set(PAULING_ELECTRONEGATIVITY))
    if missing:
        raise ValueError(f"no Pauling electronegativity for atomic numbers {missing} (the electronegativity "
                         "channels of a density model need one for every element)")
    return [PAULING_ELECTRONEGATIVITY[z] for z in numbers]
