"""What a template's ELF says about it: interstitial maxima, the networking value, localisation volumes, a score.

Everything here works on plain arrays (ELF on a periodic grid, the lattice, fractional positions of the
nuclei); ``screening.run`` calls it for pymatgen objects. Conventions: grid point [i, j, k] sits at
fractional (i/n0, j/n1, k/n2); lengths in Angstrom; ELF dimensionless in [0, 1]. The "interstitial
region" is every point farther than ``core_radius`` (default 1.0 A) from all nuclei: inside it, the ELF of
a pseudopotential / PAW calculation shows shell structure that says nothing about the template.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from pymatgen_elfml.metrics import distance_to_nuclei, peak_mask

CORE_RADIUS = 1.0  # Angstrom
VOLUME_LEVELS = (0.5, 0.6, 0.7)


@dataclass(frozen=True)
class Maximum:
    """One symmetry-distinct interstitial ELF maximum.

    Attributes:
        frac: (3,) fractional position: the highest grid maximum of the site, refined below the voxel (a
            parabola through each axis' three points) and moved onto its special position.
        value: ELF at that maximum (from the same parabolas).
        multiplicity: symmetry-equivalent positions of the site in the given cell.
        wyckoff: Wyckoff position of the site in the standard setting, e.g. "12d" (spglib), or "" if unknown.
        distance: distance to the nearest nucleus, Angstrom.
    """

    frac: tuple[float, float, float]
    value: float
    multiplicity: int
    wyckoff: str
    distance: float


def _parabola(minus: np.ndarray, centre: np.ndarray, plus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex offset (voxels, in [-0.5, 0.5]) and the value change of a parabola through three points."""
    curv = minus - 2.0 * centre + plus
    off = np.where(curv < 0, 0.5 * (minus - plus) / np.where(curv < 0, curv, -1.0), 0.0)
    off = np.clip(off, -0.5, 0.5)
    return off, -0.25 * (minus - plus) * off


def local_maxima(elf: np.ndarray, lattice: np.ndarray, frac: np.ndarray, core_radius: float = CORE_RADIUS,
                 min_value: float = 0.0, dist: np.ndarray | None = None) -> np.ndarray:
    """Strict periodic local maxima of the ELF in the interstitial region, refined below the voxel.

    Args:
        elf: (n0, n1, n2) ELF. lattice: (3, 3) rows in Angstrom. frac: (n_atoms, 3) nuclei.
        core_radius: maxima closer than this to a nucleus (Angstrom) are ignored.
        min_value: maxima below this ELF are ignored.
        dist: (n0, n1, n2) ``metrics.distance_to_nuclei`` if the caller has it (None: computed here).

    Returns:
        (m, 5) rows: fractional position (3), ELF value, distance to the nearest nucleus (Angstrom).
    """
    elf = np.asarray(elf, float)
    dist = distance_to_nuclei(lattice, frac, elf.shape) if dist is None else dist
    peak = peak_mask(elf, dist > core_radius, min_value)
    idx = np.argwhere(peak)
    if not len(idx):
        return np.zeros((0, 5))
    shape = np.array(elf.shape)
    pos, value = idx.astype(float), elf[peak].copy()
    for axis in range(3):
        step = np.zeros(3, int)
        step[axis] = 1
        minus = elf[tuple(((idx - step) % shape).T)]
        plus = elf[tuple(((idx + step) % shape).T)]
        off, dv = _parabola(minus, elf[peak], plus)
        pos[:, axis] += off
        value += dv
    fpos = np.mod(pos / shape, 1.0)
    return np.column_stack([fpos, np.clip(value, 0.0, 1.0), dist[peak]])


MERGE_DISTANCE = 0.5  # Angstrom: grid maxima closer than this (after symmetry) are one site


def merge_by_symmetry(maxima: np.ndarray, rotations: np.ndarray, translations: np.ndarray, lattice: np.ndarray,
                      tol: float = MERGE_DISTANCE) -> list[np.ndarray]:
    """Group maxima (rows of ``local_maxima``) into symmetry orbits; each group is an (k, 5) array, highest first.

    Two maxima are one site when an operator maps one within ``tol`` Angstrom of the other: a flat ELF
    plateau around a special position shows up on the grid as a ring of near-equal strict maxima.
    """
    order = np.argsort(-maxima[:, 3]) if len(maxima) else np.zeros(0, int)
    todo, groups = list(order), []
    while todo:
        first = todo.pop(0)
        images = np.mod(np.einsum("nij,j->ni", rotations, maxima[first, :3]) + translations, 1.0)
        members = [first]
        for other in list(todo):
            d = images - maxima[other, :3]
            d -= np.rint(d)
            if np.linalg.norm(d @ lattice, axis=1).min() < tol:
                members.append(other)
                todo.remove(other)
        groups.append(maxima[members])
    return groups


def symmetric_site(site: np.ndarray, rotations: np.ndarray, translations: np.ndarray, lattice: np.ndarray,
                   tol: float = MERGE_DISTANCE) -> np.ndarray:
    """Move a position found on a grid onto its special position: the mean of its images under the
    operators that map it within ``tol`` Angstrom of itself (the site-symmetry group's projection)."""
    images = np.einsum("nij,j->ni", rotations, site) + translations
    d = images - site
    d -= np.rint(d)
    near = np.linalg.norm(d @ lattice, axis=1) < tol
    return np.mod(site + d[near].mean(axis=0), 1.0)


def wyckoff_label(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, site: np.ndarray,
                  rotations: np.ndarray, translations: np.ndarray, symprec: float = 0.05) -> tuple[str, int]:
    """Wyckoff position ("12d") of a site on its special position (``symmetric_site``) in the structure's
    space group (spglib), and the site's multiplicity in the given cell.

    The site's whole orbit is added as atoms of a species no structure has, so the group is unchanged;
    the label's multiplicity is that of the standard conventional cell; "" when spglib finds no group.
    """
    import spglib

    orbit = np.mod(np.einsum("nij,j->ni", rotations, site) + translations, 1.0)
    keep: list[np.ndarray] = []
    for p in orbit:
        if all(np.linalg.norm(((p - q) - np.rint(p - q)) @ lattice) > 1e-3 for q in keep):
            keep.append(p)
    pos = np.vstack([frac, keep])
    types = np.concatenate([numbers, np.full(len(keep), 999)])
    data = spglib.get_symmetry_dataset((lattice, pos, types), symprec=symprec)
    if data is None:
        return "", len(keep)
    ratio = abs(np.linalg.det(data.std_lattice)) / abs(np.linalg.det(lattice))
    return f"{int(round(len(keep) * ratio))}{data.wyckoffs[len(frac)]}", len(keep)


def _cluster_translations(mask: np.ndarray) -> dict[int, list[np.ndarray]]:
    """Face-connected clusters of a periodic boolean grid and, per cluster, the lattice translations
    (integer 3-vectors) along which it connects to its own image: a weighted union-find over the labels
    of ``ndimage.label`` joined across the cell's faces."""
    labels, n = ndimage.label(mask)
    parent, offset = list(range(n + 1)), [np.zeros(3, int) for _ in range(n + 1)]
    loops: dict[int, list[np.ndarray]] = {}

    def find(a: int) -> tuple[int, np.ndarray]:
        shift = np.zeros(3, int)
        while parent[a] != a:
            shift, a = shift + offset[a], parent[a]
        return a, shift

    for axis in range(3):
        last = np.take(labels, -1, axis=axis).reshape(-1)
        first = np.take(labels, 0, axis=axis).reshape(-1)
        both = (last > 0) & (first > 0)
        step = np.zeros(3, int)
        step[axis] = 1
        for a, b in np.unique(np.stack([last[both], first[both]], 1), axis=0):
            (ra, sa), (rb, sb) = find(int(a)), find(int(b))
            # cluster b's image in the next cell along +axis touches a: position(b) = position(a) + step
            if ra == rb:
                loop = sa + step - sb
                if loop.any():
                    loops.setdefault(ra, []).append(loop)
            else:
                parent[rb], offset[rb] = ra, sa + step - sb
                loops.setdefault(ra, []).extend(loops.pop(rb, []))
    return {root: loops.get(root, []) for root in {find(i)[0] for i in range(1, n + 1)}}


def dimensionality(mask: np.ndarray) -> int:
    """Largest number of independent lattice directions along which one cluster of ``mask`` percolates (0-3)."""
    best = 0
    for loops in _cluster_translations(mask).values():
        if loops:
            best = max(best, int(np.linalg.matrix_rank(np.array(loops))))
    return best


def networking_values(elf: np.ndarray, interstitial: np.ndarray, tol: float = 1e-3) -> dict[int, float]:
    """For d = 1, 2, 3: the largest isovalue v at which {ELF >= v} within ``interstitial`` percolates in at
    least d directions (bisection; 0.0 when it never does). The (Belli et al. 2021) networking value is d = 3."""
    out = {}
    lo = 0.0
    for d in (1, 2, 3):
        hi = min(1.0, out.get(d - 1, 1.0) + tol)
        if dimensionality(interstitial & (elf >= lo)) < d:
            out[d] = 0.0
            continue
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if dimensionality(interstitial & (elf >= mid)) >= d else (lo, mid)
        out[d] = min(lo, out.get(d - 1, 1.0))  # percolating in d directions implies fewer
        lo = 0.0
    return out


@dataclass(frozen=True)
class TemplateDescriptors:
    """The raw quantities of one ELF and the score built from them (see ``template_score``).

    Attributes:
        networking_1d, networking_2d, networking_3d: ``networking_values``.
        dimensionality: percolation dimensionality at ELF 0.5 in the interstitial region (0-3).
        max_elf: highest interstitial maximum (0 when there is none).
        n_maxima: symmetry-distinct interstitial maxima.
        volume_fraction: fraction of the cell volume in the interstitial region with ELF >= 0.5 / 0.6 / 0.7.
        score: ``template_score``.
    """

    networking_1d: float
    networking_2d: float
    networking_3d: float
    dimensionality: int
    max_elf: float
    n_maxima: int
    volume_fraction: dict
    score: float

    def as_dict(self) -> dict:
        return asdict(self)


def template_score(networking_3d: float, max_elf: float, volume_fraction_05: float) -> float:
    """Template score in [0, 1]: (networking_3d + max_elf + volume_fraction_0.5) / 3.

    Each term is a measure of how strongly and how connectedly the metal sublattice localises electrons
    in its interstices (the first two in ELF units, the third a volume fraction): equal weights, so that
    the score says nothing the raw columns beside it do not.
    """
    return float((networking_3d + max_elf + volume_fraction_05) / 3.0)


def distinct_maxima(elf: np.ndarray, lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, rotations: np.ndarray,
                    translations: np.ndarray, core_radius: float = CORE_RADIUS, min_value: float = 0.0,
                    dist: np.ndarray | None = None) -> list[Maximum]:
    """Symmetry-distinct interstitial maxima, highest first, each with its Wyckoff position.

    Args:
        elf, lattice, frac, dist: as for ``local_maxima``; numbers: (n_atoms,) atomic numbers;
        rotations, translations: the cell's Seitz operators (``symmetry.seitz_ops``).
    """
    out = []
    raw = local_maxima(elf, lattice, frac, core_radius, min_value, dist)
    for group in merge_by_symmetry(raw, rotations, translations, lattice):
        top = group[0]
        site = symmetric_site(top[:3], rotations, translations, lattice)
        label, mult = wyckoff_label(lattice, frac, numbers, site, rotations, translations)
        out.append(Maximum(tuple(float(x) for x in site), float(top[3]), mult, label, float(top[4])))
    return out


def describe(elf: np.ndarray, lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, rotations: np.ndarray,
             translations: np.ndarray, core_radius: float = CORE_RADIUS) -> tuple[TemplateDescriptors, list[Maximum]]:
    """All descriptors of one ELF (arguments as for ``distinct_maxima``) and its distinct maxima."""
    elf = np.asarray(elf, float)
    dist = distance_to_nuclei(lattice, frac, elf.shape)
    interstitial = dist > core_radius
    net = networking_values(elf, interstitial)
    maxima = distinct_maxima(elf, lattice, frac, numbers, rotations, translations, core_radius, dist=dist)
    vol = {f"{v:.1f}": float(np.mean(interstitial & (elf >= v))) for v in VOLUME_LEVELS}
    max_elf = max((m.value for m in maxima), default=0.0)
    desc = TemplateDescriptors(net[1], net[2], net[3], dimensionality(interstitial & (elf >= 0.5)), max_elf,
                               len(maxima), vol, template_score(net[3], max_elf, vol["0.5"]))
    return desc, maxima
