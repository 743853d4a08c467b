"""Valence electron counts of the reference data's PAW setups: what a learned valence density integrates to.

The counts are those of the default PBE setups of gpaw-data 1.2.1 (GPAW 26.7; GPAW's setups are GPL-licensed
data of the GPAW project, https://gpaw.readthedocs.io), read from each setup's ``<atom ... valence="..">``
header: the electrons GPAW treats explicitly, semicore shells included (Na 7, Ca 10, ...). Every element with a
default PBE setup (83: the 53 metals of the reference data first, then the 30 others, H to Rn); the reference data
holds metals only, so a model's prediction for any other element is an extrapolation (the predictors warn).
Numbers, no imports beyond the standard library.
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
