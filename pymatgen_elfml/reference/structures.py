"""Metal-only structure sets for the DFT (GPAW) ELF / valence-density training data.

Three families of small cells (v1: 1-8 atoms, mostly 1-4, since every cell is one DFT run;
``plan_v2`` adds templates, intermetallics and 4-12-atom random cells):

* ``elemental``: fcc, bcc, hcp, sc (optionally dhcp, diamond) of one metal, compressed.
* ``binary``: B2, L1_2, L1_0 (optionally C15, A15) intermetallics of sensible pairs.
* ``random``: symmetric random crystals on Wyckoff positions of common space groups.

Reference volume V0 (Angstrom^3): for the elemental prototypes and for B2, L1_2, L1_0 the
lattice constant is set so that the nearest-neighbour distance is ``2 r`` with ``r`` the
pymatgen ``Element.metallic_radius`` in Angstrom (``atomic_radius`` where pymatgen has no
metallic radius, e.g. Sn); binaries use the mean of the two radii. C15, A15 and the random
crystals take V0 = sum over atoms of ``4/3 pi r^3`` divided by a packing fraction (0.7405,
close packing, for C15/A15; 0.68, bcc-like, for random cells). A ``volume_ratio`` scales
the lattice isotropically to ``V = volume_ratio * V0`` with fractional coordinates fixed.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Element, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pymatgen.symmetry.groups import SpaceGroup

from pymatgen_elfml.io import atomic_path, validate

VOLUME_RATIOS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
BINARY_VOLUME_RATIOS = (1.0, 0.8, 0.6)
MAX_ATOMS = 12  # v1 cells have 1-8 atoms, v2 (plan_v2) up to 12
DEFAULT_N_RANDOM = 50
# roughly cheapest first for GPAW: few valence electrons and small cells before d metals
DEFAULT_ELEMENTS = (
    "Li", "Na", "K", "Be", "Mg", "Ca", "Sr", "Al", "Ga", "In", "Sn", "Cu", "Ag",
    "Au", "Ni", "Pd", "Pt", "Zn", "Cd", "Ti", "V", "Y", "Zr", "Nb", "Sc", "La",
)  # fmt: skip
# (A, B): A is the majority element in L1_2 (A3B) and A15 (A3B)
DEFAULT_PAIRS = (
    ("Ni", "Al"), ("Cu", "Zn"), ("Cu", "Au"), ("Ag", "Mg"), ("Li", "Mg"), ("Na", "K"),
    ("Ca", "Mg"), ("Al", "Li"), ("Ti", "Al"), ("Cu", "Pd"), ("Ag", "Zn"), ("Mg", "Al"),
)  # fmt: skip
ELEMENTAL_PROTOTYPES = ("fcc", "bcc", "hcp", "sc", "dhcp", "diamond")
BINARY_PROTOTYPES = ("B2", "L1_2", "L1_0", "C15", "A15")
CLOSE_PACKING = math.pi / (3.0 * math.sqrt(2.0))  # 0.7405
RANDOM_PACKING = 0.68
MIN_DISTANCE_FACTOR = 0.8  # random cells: d_ij >= 0.8 (r_i + r_j) at V0

# space group -> (crystal system, Wyckoff sites "m:x,y,z" with m the multiplicity in the
# primitive cell and x/y/z free coordinates), in pymatgen's default settings
_WYCKOFF = {
    1: ("triclinic", "1:x,y,z"),
    2: ("triclinic", "1:0,0,0 1:1/2,0,0 1:0,1/2,0 1:1/2,1/2,1/2 2:x,y,z"),
    10: ("monoclinic", "1:0,0,0 1:0,1/2,0 1:1/2,0,1/2 2:x,0,z 2:x,1/2,z"),
    12: ("monoclinic", "1:0,0,0 1:0,1/2,0 1:0,0,1/2 2:x,0,z"),
    47: ("orthorhombic", "1:0,0,0 1:1/2,1/2,0 1:0,1/2,1/2 1:1/2,1/2,1/2 2:x,0,0 2:0,1/2,z"),
    62: ("orthorhombic", "4:x,1/4,z"),
    63: ("orthorhombic", "2:0,0,0 2:0,y,1/4"),
    65: ("orthorhombic", "1:0,0,0 1:1/2,0,0 1:0,0,1/2 2:x,0,0 2:0,y,1/2"),
    123: ("tetragonal", "1:0,0,0 1:0,0,1/2 1:1/2,1/2,0 1:1/2,1/2,1/2 2:0,1/2,1/2 2:0,0,z 2:1/2,1/2,z"),
    139: ("tetragonal", "1:0,0,0 1:0,0,1/2 2:0,1/2,0 2:0,1/2,1/4 2:0,0,z"),
    164: ("hexagonal", "1:0,0,0 1:0,0,1/2 2:0,0,z 2:1/3,2/3,z"),
    166: ("hexagonal", "1:0,0,0 1:0,0,1/2 2:0,0,z"),
    186: ("hexagonal", "2:0,0,z 2:1/3,2/3,z"),
    187: ("hexagonal", "1:0,0,0 1:0,0,1/2 1:1/3,2/3,0 1:1/3,2/3,1/2 1:2/3,1/3,0 1:2/3,1/3,1/2"),
    191: ("hexagonal", "1:0,0,0 1:0,0,1/2 2:1/3,2/3,0 2:1/3,2/3,1/2 3:1/2,0,0 2:0,0,z"),
    194: ("hexagonal", "2:0,0,0 2:0,0,1/4 2:1/3,2/3,1/4 2:1/3,2/3,3/4 4:1/3,2/3,z"),
    216: ("cubic", "1:0,0,0 1:1/2,1/2,1/2 1:1/4,1/4,1/4 1:3/4,3/4,3/4"),
    221: ("cubic", "1:0,0,0 1:1/2,1/2,1/2 3:0,1/2,1/2 3:1/2,0,0"),
    223: ("cubic", "2:0,0,0 6:1/4,0,1/2"),
    225: ("cubic", "1:0,0,0 1:1/2,1/2,1/2 2:1/4,1/4,1/4"),
    227: ("cubic", "2:0,0,0 4:5/8,5/8,5/8"),  # origin choice 1
    229: ("cubic", "1:0,0,0 3:0,1/2,1/2"),
}


@dataclass(frozen=True)
class Candidate:
    """One structure of the reference set.

    Attributes:
        id: unique, filesystem-safe, deterministic name, e.g. ``"elem-Al-fcc-v0.80"``.
        family: ``"elemental"``, ``"binary"`` or ``"random"``.
        prototype: ``"fcc"``, ``"B2"``, ... or ``"random"``.
        formula: pymatgen reduced formula.
        volume_ratio: V / V0 (dimensionless; 1.0 is the reference volume).
        structure: the cell (lattice in Angstrom), 1-``MAX_ATOMS`` atoms.
        split_key: group key for train/val/test splits (the chemical system, e.g. ``"Al-Ni"``).
    """

    id: str
    family: str
    prototype: str
    formula: str
    volume_ratio: float
    structure: Structure
    split_key: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the structure as ``Structure.as_dict()``)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        """Inverse of :meth:`as_dict`."""
        kw = {f.name: d[f.name] for f in fields(cls)}
        kw.update(volume_ratio=float(kw["volume_ratio"]), structure=Structure.from_dict(kw["structure"]))
        return cls(**kw)


@lru_cache(maxsize=None)
def metallic_radius(symbol: str) -> float:
    """Metallic radius in Angstrom from pymatgen (``atomic_radius`` if there is none)."""
    el = Element(symbol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = el.metallic_radius or el.atomic_radius
    if not r:
        raise ValueError(f"pymatgen has neither a metallic nor an atomic radius for {symbol}")
    return float(r)


def _packing_volume(symbols: Iterable[str], packing: float) -> float:
    """Sum of atomic sphere volumes 4/3 pi r^3 (Angstrom^3) divided by ``packing``."""
    return sum(4.0 / 3.0 * math.pi * metallic_radius(s) ** 3 for s in symbols) / packing


def _elemental(prototype: str, d: float) -> tuple[Lattice, list[int], list[tuple]]:
    """Lattice, species indices and fractional coordinates with nearest neighbours at d (A)."""
    if prototype in ("fcc", "diamond"):
        a = d * math.sqrt(2.0) if prototype == "fcc" else 4.0 * d / math.sqrt(3.0)
        lat = Lattice(0.5 * a * (np.ones((3, 3)) - np.eye(3)))
        coords = [(0, 0, 0)] if prototype == "fcc" else [(0, 0, 0), (0.25, 0.25, 0.25)]
        return lat, [0] * len(coords), coords
    if prototype == "bcc":
        a = 2.0 * d / math.sqrt(3.0)
        return Lattice(0.5 * a * (np.ones((3, 3)) - 2.0 * np.eye(3))), [0], [(0, 0, 0)]
    if prototype == "sc":
        return Lattice.cubic(d), [0], [(0, 0, 0)]
    if prototype == "hcp":
        coords = [(1 / 3, 2 / 3, 0.25), (2 / 3, 1 / 3, 0.75)]
        return Lattice.hexagonal(d, d * math.sqrt(8.0 / 3.0)), [0, 0], coords
    if prototype == "dhcp":  # ABAC stacking, four close-packed layers per c
        coords = [(0, 0, 0), (1 / 3, 2 / 3, 0.25), (0, 0, 0.5), (2 / 3, 1 / 3, 0.75)]
        return Lattice.hexagonal(d, 2.0 * d * math.sqrt(8.0 / 3.0)), [0] * 4, coords
    raise ValueError(f"unknown elemental prototype {prototype!r}; expected one of {ELEMENTAL_PROTOTYPES}")


def _binary(prototype: str, d: float) -> tuple[Lattice, list[int], list[tuple]]:
    """Like :func:`_elemental` for A_mB_n; C15 and A15 are rescaled later (packing volume)."""
    if prototype == "B2":  # CsCl
        return Lattice.cubic(2.0 * d / math.sqrt(3.0)), [0, 1], [(0, 0, 0), (0.5, 0.5, 0.5)]
    if prototype == "L1_2":  # Cu3Au: A on the face centres
        coords = [(0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0), (0, 0, 0)]
        return Lattice.cubic(d * math.sqrt(2.0)), [0, 0, 0, 1], coords
    if prototype == "L1_0":  # CuAu in the 2-atom P4/mmm cell: a = a_fcc / sqrt(2), c = a_fcc
        return Lattice.tetragonal(d, d * math.sqrt(2.0)), [0, 1], [(0, 0, 0), (0.5, 0.5, 0.5)]
    if prototype == "C15":  # MgCu2 Laves (A = Mg sites) in the 6-atom fcc primitive cell
        lat = Lattice(0.5 * (np.ones((3, 3)) - np.eye(3)))
        cart = [(0, 0, 0), (0.25, 0.25, 0.25), (0.625, 0.625, 0.625), (0.625, 0.875, 0.875),
                (0.875, 0.625, 0.875), (0.875, 0.875, 0.625)]  # fmt: skip
        return lat, [0, 0, 1, 1, 1, 1], [tuple(f) for f in lat.get_fractional_coords(cart)]
    if prototype == "A15":  # Cr3Si: A on the 6c chains, B on 2a
        coords = [(0.25, 0, 0.5), (0.75, 0, 0.5), (0.5, 0.25, 0), (0.5, 0.75, 0), (0, 0.5, 0.25),
                  (0, 0.5, 0.75), (0, 0, 0), (0.5, 0.5, 0.5)]  # fmt: skip
        return Lattice.cubic(1.0), [0] * 6 + [1] * 2, coords
    raise ValueError(f"unknown binary prototype {prototype!r}; expected one of {BINARY_PROTOTYPES}")


def prototype_structure(prototype: str, species: Sequence[str], volume_ratio: float = 1.0) -> Structure:
    """Build a prototype cell at ``V = volume_ratio * V0`` (V0 as in the module docstring).

    Args:
        prototype: one of ``ELEMENTAL_PROTOTYPES`` (``species`` has one symbol) or
            ``BINARY_PROTOTYPES`` (``species`` = (A, B); A is the majority element of L1_2
            and A15; for C15 the larger atom goes on the Mg sites).
        species: element symbols.
        volume_ratio: V / V0, > 0.

    Returns:
        The structure; lattice in Angstrom.
    """
    if volume_ratio <= 0:
        raise ValueError(f"volume_ratio must be > 0, got {volume_ratio}")
    species = list(species)
    d = 2.0 * float(np.mean([metallic_radius(s) for s in species]))
    if prototype in ELEMENTAL_PROTOTYPES and len(species) == 1:
        lat, idx, coords = _elemental(prototype, d)
    elif prototype in BINARY_PROTOTYPES and len(species) == 2:
        if prototype == "C15" and metallic_radius(species[1]) > metallic_radius(species[0]):
            species = species[::-1]
        lat, idx, coords = _binary(prototype, d)
    else:
        raise ValueError(f"prototype {prototype!r} does not take species {species}")
    symbols = [species[i] for i in idx]
    v0 = _packing_volume(symbols, CLOSE_PACKING) if prototype in ("C15", "A15") else lat.volume
    return Structure(lat.scale(volume_ratio * v0), symbols, coords)


def _candidate(cid: str, family: str, prototype: str, ratio: float, structure: Structure) -> Candidate:
    """Validate the structure (ordered, >= 0.5 A apart, <= MAX_ATOMS) and wrap it."""
    validate(structure)
    if len(structure) > MAX_ATOMS:
        raise ValueError(f"{cid}: {len(structure)} atoms > {MAX_ATOMS}")
    comp = structure.composition
    key = "-".join(sorted(el.symbol for el in comp.elements))
    return Candidate(cid, family, prototype, comp.reduced_formula, float(ratio), structure, key)


def elemental_set(
    elements: Sequence[str] = DEFAULT_ELEMENTS,
    prototypes: Sequence[str] = ("fcc", "bcc", "hcp", "sc"),
    volume_ratios: Sequence[float] = VOLUME_RATIOS,
) -> list[Candidate]:
    """One-element cells: ordered by element, then prototype, then volume ratio.

    Args:
        elements: element symbols, cheapest first.
        prototypes: subset of ``ELEMENTAL_PROTOTYPES``.
        volume_ratios: V / V0 values.

    Returns:
        Candidates with ids ``elem-{El}-{prototype}-v{ratio:.2f}``; split key = the element.
    """
    return [
        _candidate(f"elem-{el}-{proto}-v{r:.2f}", "elemental", proto, r, prototype_structure(proto, [el], r))
        for el in elements
        for proto in prototypes
        for r in volume_ratios
    ]


def binary_set(
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
    prototypes: Sequence[str] = ("B2", "L1_2", "L1_0"),
    volume_ratios: Sequence[float] = BINARY_VOLUME_RATIOS,
) -> list[Candidate]:
    """Two-element intermetallic cells, ordered by pair, prototype, volume ratio.

    Args:
        pairs: (A, B) symbols; A is the majority element of L1_2 (A3B) and A15.
        prototypes: subset of ``BINARY_PROTOTYPES``.
        volume_ratios: V / V0 values.

    Returns:
        Candidates with ids like ``bin-Ni3Al-L1_2-v1.00``; split key = chemical system.
    """
    out = []
    for a, b in pairs:
        for proto in prototypes:
            for r in volume_ratios:
                s = prototype_structure(proto, [a, b], r)
                out.append(_candidate(f"bin-{formula_name(s, (a, b))}-{proto}-v{r:.2f}", "binary", proto, r, s))
    return out


def _random_lattice(system: str, rng: np.random.Generator) -> Lattice:
    """Unit-scale lattice of the crystal system with random axis ratios (0.6-1.8) and angles."""
    b, c = np.exp(rng.uniform(math.log(0.6), math.log(1.8), size=2))
    if system == "cubic":
        return Lattice.cubic(1.0)
    if system in ("tetragonal", "hexagonal"):
        return Lattice.tetragonal(1.0, c) if system == "tetragonal" else Lattice.hexagonal(1.0, c)
    if system == "orthorhombic":
        return Lattice.orthorhombic(1.0, b, c)
    if system == "monoclinic":
        return Lattice.monoclinic(1.0, b, c, rng.uniform(75.0, 115.0))
    return Lattice.from_parameters(1.0, b, c, *rng.uniform(70.0, 110.0, size=3))


def _wyckoff_sites(sg: int) -> list[tuple[int, tuple[str, ...]]]:
    """Parse ``_WYCKOFF[sg]`` into (multiplicity, (x, y, z)) with coordinates as strings."""
    return [(int(m), tuple(xyz.split(","))) for m, xyz in (s.split(":") for s in _WYCKOFF[sg][1].split())]


def _random_sites(sg: int, max_atoms: int, rng: np.random.Generator) -> list[tuple[int, list[float]]]:
    """Pick 1-3 Wyckoff orbits (at most ``max_atoms`` atoms in the primitive cell)."""
    sites = _wyckoff_sites(sg)
    chosen, budget = [], max_atoms
    for _ in range(int(rng.integers(1, 4))):
        ok = [s for s in sites if s[0] <= budget]
        if not ok:
            break
        mult, rep = ok[int(rng.integers(len(ok)))]
        if not set(rep) & set("xyz"):
            sites.remove((mult, rep))  # a fixed site can be occupied once
        chosen.append((mult, [float(rng.random()) if v in "xyz" else float(Fraction(v)) for v in rep]))
        budget -= mult
    return chosen


@lru_cache(maxsize=None)
def _symmetry_ops(sg: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (k, 3, 3) and translations (k, 3) of space group ``sg`` (pymatgen setting)."""
    ops = SpaceGroup.from_int_number(sg).symmetry_ops
    return np.array([op.rotation_matrix for op in ops]), np.array([op.translation_vector for op in ops])


def _orbit(sg: int, frac: Sequence[float]) -> np.ndarray:
    """Symmetry-distinct images (n, 3) of one fractional position in the conventional cell."""
    rot, trans = _symmetry_ops(sg)
    pts = np.mod(rot @ np.asarray(frac, dtype=float) + trans, 1.0)
    out: list[np.ndarray] = []
    for p in pts:
        if not any(np.all(np.abs((p - q + 0.5) % 1.0 - 0.5) < 1e-4) for q in out):
            out.append(p)
    return np.array(out)


def _random_structure(elements: Sequence[str], max_atoms: int, rng: np.random.Generator) -> Structure | None:
    """One random attempt at V0 (packing 0.68); None if it fails the size/distance checks."""
    groups = [g for g in sorted(_WYCKOFF) if min(m for m, _ in _wyckoff_sites(g)) <= max_atoms]
    sg = groups[int(rng.integers(len(groups)))]
    sites = _random_sites(sg, max_atoms, rng)
    n_species = 1 if len(sites) == 1 or rng.random() < 0.2 else int(rng.integers(2, len(sites) + 1))
    n_species = min(n_species, len(elements))
    picked = list(rng.choice(len(elements), size=n_species, replace=False))
    picked += list(rng.choice(picked, size=len(sites) - n_species))
    orbits = [_orbit(sg, frac) for _, frac in sites]
    symbols = [elements[i] for i, orb in zip(picked, orbits) for _ in orb]
    lattice = _random_lattice(_WYCKOFF[sg][0], rng)
    conv = Structure(lattice.scale(_packing_volume(symbols, RANDOM_PACKING)), symbols, np.vstack(orbits))
    prim = conv.get_primitive_structure(tolerance=0.05)
    if len(prim) > max_atoms or (len(prim) == 1 and _WYCKOFF[sg][0] == "cubic"):
        return None  # too large, or a cubic Bravais lattice the elemental set already has
    return at_random_v0(prim)


def at_random_v0(prim: Structure) -> Structure | None:
    """A random cell rescaled to V0 = sum 4/3 pi r^3 / 0.68, or None if any d_ij < 0.8 (r_i + r_j) there."""
    symbols = [site.specie.symbol for site in prim]
    prim = Structure(prim.lattice.scale(_packing_volume(symbols, RANDOM_PACKING)), symbols, prim.frac_coords)
    radii = np.array([metallic_radius(s) for s in symbols])
    i, j, _, dist = prim.get_neighbor_list(2.0 * MIN_DISTANCE_FACTOR * radii.max(), exclude_self=True)
    if np.any(dist < MIN_DISTANCE_FACTOR * (radii[i] + radii[j]) - 1e-9):
        return None
    return prim


def distinct_draws(n: int, rng_for, draw, max_tries: int, what: str) -> list[tuple[int, Structure, int]]:
    """``n`` samples ``(i, structure, space group)``, sample ``i`` drawn from ``rng_for(i)`` by ``draw(rng)``
    (None: rejected) until it differs from every earlier one in formula, space group and lattice.

    Raises:
        RuntimeError: no acceptable new structure after ``max_tries`` draws.
    """
    out, seen = [], set()
    for i in range(n):
        rng = rng_for(i)
        for _ in range(max_tries):
            s = draw(rng)
            if s is None:
                continue
            sga = SpacegroupAnalyzer(s, symprec=1e-3)
            key = (s.composition.formula, sga.get_space_group_number(), tuple(np.round(s.lattice.abc, 3)))
            if key not in seen:
                break
        else:
            raise RuntimeError(f"no acceptable {what} structure after {max_tries} tries (sample {i})")
        seen.add(key)
        out.append((i, s, key[1]))
    return out


def scaled(structure: Structure, ratio: float) -> Structure:
    """The cell at ``ratio`` times its volume, fractional coordinates fixed."""
    return Structure(structure.lattice.scale(ratio * structure.volume), structure.species, structure.frac_coords)


def formula_name(structure: Structure, order: Sequence[str]) -> str:
    """Reduced formula with the elements in ``order`` and counts of 1 omitted, e.g. ``Ni3Al``, ``Cu2MnAl``."""
    comp = structure.composition.reduced_composition
    return "".join(f"{el}{int(comp[el]) if comp[el] > 1 else ''}" for el in dict.fromkeys(order))


def random_set(
    n: int,
    seed: int = 0,
    max_atoms: int = 4,
    elements: Sequence[str] = DEFAULT_ELEMENTS,
    volume_ratios: Sequence[float] = BINARY_VOLUME_RATIOS,
    max_tries: int = 2000,
) -> list[Candidate]:
    """Random symmetric crystals (built-in Wyckoff sampler, no pyxtal needed).

    Sample ``i`` draws from ``numpy.random.default_rng([seed, i])`` a space group from 22
    common ones (P1 ... Im-3m), 1-3 Wyckoff orbits with random free coordinates, 1-3
    elements and a random lattice of the crystal system; it is reduced to the primitive
    cell, scaled to V0 = sum 4/3 pi r^3 / 0.68 and rejected if it has more than
    ``max_atoms`` atoms, any d_ij < 0.8 (r_i + r_j), or repeats an earlier sample. The set
    for ``n`` is therefore a prefix of the set for ``n + 1``.

    Args:
        n: number of distinct structures (the set has ``n * len(volume_ratios)`` candidates).
        seed: random seed.
        max_atoms: largest primitive cell, 1..8.
        elements: element symbols to draw from.
        volume_ratios: V / V0 values applied to each structure.
        max_tries: attempts per structure before giving up (RuntimeError).

    Returns:
        Candidates with ids ``rand-sg{number}-{cell formula}-seed{seed}-{i:03d}-v{ratio:.2f}``.
    """
    if not 1 <= max_atoms <= MAX_ATOMS:
        raise ValueError(f"max_atoms must be in 1..{MAX_ATOMS}, got {max_atoms}")
    out = []
    draws = distinct_draws(n, lambda i: np.random.default_rng([seed, i]),
                           lambda rng: _random_structure(list(elements), max_atoms, rng), max_tries, "random")
    for i, s, sg in draws:
        name = s.composition.formula.replace(" ", "")
        out += [_candidate(f"rand-sg{sg}-{name}-seed{seed}-{i:03d}-v{r:.2f}", "random", "random", r, scaled(s, r))
                for r in volume_ratios]
    return out


def all_candidates(
    elements: Sequence[str] = DEFAULT_ELEMENTS,
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
    n_random: int = DEFAULT_N_RANDOM,
    seed: int = 0,
) -> list[Candidate]:
    """Elemental, then binary, then random candidates with the default prototypes/ratios.

    Raises:
        ValueError: if two candidates share an id.
    """
    cands = elemental_set(elements) + binary_set(pairs) + random_set(n_random, seed=seed, elements=elements)
    ids = [c.id for c in cands]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate candidate ids")
    return cands


def write_set(candidates: Sequence[Candidate], path: str | os.PathLike) -> Path:
    """Write candidates as a JSON list of :meth:`Candidate.as_dict`, atomically (``io.atomic_path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump([c.as_dict() for c in candidates], fh)
    return path


def read_set(path: str | os.PathLike) -> list[Candidate]:
    """Read a file written by :func:`write_set`."""
    with open(path) as fh:
        return [Candidate.from_dict(d) for d in json.load(fh)]
