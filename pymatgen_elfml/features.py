"""Input channels computed from the SAD: what the network (and the gradient-boosting baseline) sees.

The first paper proposes "multi-channel SAD or gradients" as inputs. Every channel is a
periodic, space-group-invariant function of the SAD and the nuclear positions, so no
symmetry pooling of the input is needed. Channels (``FEATURE_SETS["sad_features"]``):

====================  ===============================================================
``log_sad``           ln(max(rho, 1e-6)), rho the SAD in e/A^3
``log1p_s``           ln(1 + s), s = |grad rho| / (2 (3 pi^2)^(1/3) rho^(4/3)) (reduced gradient)
``asinh_q``           asinh(q), q = lap rho / (4 (3 pi^2)^(2/3) rho^(5/3)) (reduced Laplacian)
``semilocal_elf``     the TF + vW/9 + lap/6 ELF of the SAD (``baselines.semilocal_elf``)
``log_sad_g0.4`` ...  ln of the SAD smoothed by periodic Gaussians of sigma 0.4, 0.8, 1.6 A
``dist``              distance to the nearest nucleus in A, capped at 4 A
``valence``           the superposed fitted valence profiles (``sad.valence_profiles``) over their cell
                      mean: the base of a density model (``FEATURE_SETS["valence_features"]``; needs
                      the atomic numbers)
``paw_valence``       the free atoms' PAW valence densities superposed as GPAW starts its SCF
                      (``sad.paw_atoms``) over their cell mean: the base of a density model
                      (``FEATURE_SETS["paw_features"]``; needs the atomic numbers)
``log_paw``           ln of that superposition itself (e/A^3, floored at 1e-6): its absolute level says how
                      compressed the valence electrons are (``FEATURE_SETS["paw_context_features"]``)
``paw_valence_g0.8``  ``paw_valence`` smoothed by a periodic Gaussian of sigma 0.8 A: the neighbourhood's
                      valence density, a non-local input for the forest
``paw_semilocal_elf`` the TF + vW/9 + lap/6 ELF of the PAW superposition, a pseudo valence density as GPAW's ELF
                      is (``FEATURE_SETS["sad_paw_elf_features"]``: the input of elf-metals-v4)
``paw_core_frac`` ... the smooth core's and the s, p, d orbitals' shares of the PAW pseudo density
                      (``sad.paw_atoms.paw_components``; share = part / max(pseudo, 1e-6 e/A^3), clipped to
                      [-1, 2]): which shells fill a region. ``FEATURE_SETS["paw_orbital_features"]`` = paw_context +
                      paw_semilocal_elf + these four: the input of density-metals-v4 and later
``paw_radial`` ...    ``paw_radial_features``: ``paw_orbital_features`` with the corrected superposition
                      ``sad.paw_radial.corrected_superposition`` (the PAW superposition plus radial corrections around
                      each atom, predicted from its environment by a fitted linear table) in place of the PAW one:
                      ``paw_radial`` (over its mean), ``paw_radial_g0.8``, and ``log_paw`` and ``paw_semilocal_elf``
                      of it; the orbital fractions stay those of the free atoms. The input of density-metals-v8.
                      ``paw_radial2_features``: the same with the table that adds periodic-group blocks
                      (``paw_radial_v2.json``; channels ``paw_radial2``, ``paw_radial2_g0.8``);
                      ``paw_radial3_features``: the table refitted with the host-rich training cells
                      (``paw_radial_v3.json``; channels ``paw_radial3``, ...): the input of density-metals-v9 and -v10;
                      ``paw_radial4_features``: v3's layout plus second-shell and contrast descriptors
                      (``paw_radial_v4.json``, ``sad.paw_radial.atom_extras``; channels ``paw_radial4``, ...)
``chi_local``         the Pauling electronegativity of the species owning a point, weighted by each species'
                      share of the PAW superposition there (Hirshfeld weights; ``valence.PAULING_ELECTRONEGATIVITY``)
``chi_contrast``      ``chi_local`` minus the same weighting of species' superpositions smoothed by 1.6 A: which way
                      charge flows between unlike neighbours (0 in an elemental cell). A species' superposition is
                      negative within its compensation charges, where its weight is 0. ``FEATURE_SETS[
                      "paw_chi_features"]`` = paw_orbital_features + these two; no shipped model uses them (their
                      test split result: ``benchmarks/results/density_test_v5cand.md``)
``cell_log_n``        ln(N_valence / V), N_valence the cell's valence electrons (``valence.SETUP_VALENCE``), V its
                      volume in A^3: a constant over the cell, as are the three below
``cell_log_v``        ln(V / n_atoms), the volume per atom in A^3
``cell_n_species``    the number of distinct elements of the cell
``cell_chi_spread``   the largest minus the smallest Pauling electronegativity of its elements (0 for one element).
                      ``FEATURE_SETS["paw_cell_features"]`` = paw_orbital_features + these four: what a voxel's
                      neighbourhood does not say about the whole cell (its compression, its chemistry's spread);
                      no shipped model uses them (better on validation, worse on the test split:
                      ``benchmarks/results/density_test_cellcand.md``). Each is unchanged by a supercell or a
                      choice of cell
====================  ===============================================================

s and q are dimensionless for any consistent length unit. Everything here is numpy.
"""

from __future__ import annotations

import numpy as np
from scipy import fft
from scipy.spatial import cKDTree

from pymatgen_elfml.baselines import reciprocal_g2, semilocal_elf, semilocal_elf_from, spectral_derivatives

RHO_FLOOR = 1e-6  # e/A^3
SMOOTHING = (0.4, 0.8, 1.6)  # Angstrom
DIST_CAP = 4.0  # Angstrom

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "log_sad": ("log_sad",),
    "sad_features": ("log_sad", "log1p_s", "asinh_q", "semilocal_elf",
                     *(f"log_sad_g{s}" for s in SMOOTHING), "dist"),
}
FEATURE_SETS["valence_features"] = (*FEATURE_SETS["sad_features"], "valence")
FEATURE_SETS["paw_features"] = (*FEATURE_SETS["sad_features"], "paw_valence")
PAW_SMOOTHING = (0.8,)  # Angstrom; 0.4 or 1.6 A as well scored worse on validation (forest, 400 cells)
FEATURE_SETS["paw_context_features"] = (*FEATURE_SETS["paw_features"], "log_paw",
                                        *(f"paw_valence_g{s}" for s in PAW_SMOOTHING))
PAW_ELF_CHANNEL = "paw_semilocal_elf"
FEATURE_SETS["sad_paw_elf_features"] = (*FEATURE_SETS["sad_features"], PAW_ELF_CHANNEL)
ORBITAL_FRACTIONS = ("paw_core_frac", "paw_s_frac", "paw_p_frac", "paw_d_frac")  # f: 1 minus the rest, left out
FEATURE_SETS["paw_orbital_features"] = (*FEATURE_SETS["paw_context_features"], PAW_ELF_CHANNEL, *ORBITAL_FRACTIONS)
RADIAL_CHANNEL = "paw_radial"
RADIAL_TABLES = {RADIAL_CHANNEL: "paw_radial_v1.json", "paw_radial2": "paw_radial_v2.json",
                 "paw_radial3": "paw_radial_v3.json", "paw_radial4": "paw_radial_v4.json"}  # channel: its table
FEATURE_SETS.update({f"{channel}_features": tuple(name.replace("paw_valence", channel)  # paw_radial_features, ...
                                                   for name in FEATURE_SETS["paw_orbital_features"])
                     for channel in RADIAL_TABLES})
CHI_CHANNELS, CHI_SMOOTHING = ("chi_local", "chi_contrast"), 1.6  # Angstrom
FEATURE_SETS["paw_chi_features"] = (*FEATURE_SETS["paw_orbital_features"], *CHI_CHANNELS)
CELL_CHANNELS = ("cell_log_n", "cell_log_v", "cell_n_species", "cell_chi_spread")
FEATURE_SETS["paw_cell_features"] = (*FEATURE_SETS["paw_orbital_features"], *CELL_CHANNELS)
FRACTION_FLOOR, FRACTION_CLIP = 1e-6, (-1.0, 2.0)  # e/A^3; the range the fractions are clipped to
SEMILOCAL_CHANNEL = "semilocal_elf"
VALENCE_CHANNEL = "valence"
BASE_CHANNELS = (VALENCE_CHANNEL, "paw_valence", *RADIAL_TABLES)  # valence-density channels a density model can build on


def base_channel(feature_set: str) -> str | None:
    """The valence-density channel of a feature set (the base of a density model), None if it has none."""
    return next((name for name in channel_names(feature_set) if name in BASE_CHANNELS), None)


def n_channels(feature_set: str) -> int:
    """Number of input channels of a named feature set."""
    return len(channel_names(feature_set))


def channel_names(feature_set: str) -> tuple[str, ...]:
    """Channel names of a feature set; ValueError lists the known sets."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    return FEATURE_SETS[feature_set]


def nearest_nucleus_distance(lattice: np.ndarray, frac: np.ndarray, shape: tuple[int, int, int],
                             cap: float = DIST_CAP) -> np.ndarray:
    """(n0, n1, n2) distance in Angstrom from each grid point (i/n0, j/n1, k/n2) to the nearest nucleus.

    Exact for any cell shape: every periodic image of every nucleus that can lie within ``cap`` of
    the cell is put in a k-d tree (the image range per axis is bounded by the interplanar spacing
    1/|b_i|). Distances above ``cap`` are returned as ``cap``.
    """
    lattice = np.asarray(lattice, float)
    reach = np.ceil(cap * np.linalg.norm(np.linalg.inv(lattice).T, axis=1)).astype(int) + 1
    shifts = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), -1).reshape(-1, 3)
    frac = np.atleast_2d(np.asarray(frac, float)) % 1.0
    images = ((frac[:, None, :] + shifts[None]).reshape(-1, 3)) @ lattice
    pts = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), -1).reshape(-1, 3) @ lattice
    dist, _ = cKDTree(images).query(pts, distance_upper_bound=cap, workers=-1)
    return np.minimum(dist, cap).reshape(shape)


def smooth_periodic(rho: np.ndarray, lattice: np.ndarray, sigma: float) -> np.ndarray:
    """The periodic field convolved with a normalised Gaussian of width ``sigma`` (Angstrom)."""
    g2 = reciprocal_g2(rho.shape, lattice)
    return fft.ifftn(fft.fftn(rho, workers=-1) * np.exp(-0.5 * sigma**2 * g2), workers=-1).real


def sad_features(sad: np.ndarray, lattice: np.ndarray, frac: np.ndarray, feature_set: str = "sad_features",
                 numbers: np.ndarray | None = None) -> np.ndarray:
    """Input channels of ``feature_set`` for one cell.

    Args:
        sad: (n0, n1, n2) SAD in e/A^3 on the cell's grid.
        lattice: (3, 3) lattice vectors as rows, Angstrom.
        frac: (n_atoms, 3) fractional coordinates of the nuclei.
        feature_set: a key of ``FEATURE_SETS``.
        numbers: (n_atoms,) atomic numbers; needed by every channel beyond ``sad_features``.

    Returns:
        (C, n0, n1, n2) float32.
    """
    names = channel_names(feature_set)
    sad = np.asarray(sad, float)
    rho = np.maximum(sad, RHO_FLOOR)
    out: dict[str, np.ndarray] = {"log_sad": np.log(rho)}
    if len(names) > 1:
        grad2, lap = spectral_derivatives(sad, lattice)
        kf = (3.0 * np.pi**2) ** (1.0 / 3.0)
        s = np.sqrt(np.maximum(grad2, 0.0)) / (2.0 * kf * rho ** (4.0 / 3.0))
        q = lap / (4.0 * kf**2 * rho ** (5.0 / 3.0))
        out.update(log1p_s=np.log1p(s), asinh_q=np.arcsinh(q), semilocal_elf=semilocal_elf_from(rho, grad2, lap))
        for sigma in SMOOTHING:
            out[f"log_sad_g{sigma}"] = np.log(np.maximum(smooth_periodic(sad, lattice, sigma), RHO_FLOOR))
        out["dist"] = nearest_nucleus_distance(lattice, frac, sad.shape)
    base_name = base_channel(feature_set)
    if base_name is not None or PAW_ELF_CHANNEL in names:
        out.update(_superposition_channels(names, base_name or "paw_valence", lattice, frac, numbers, sad.shape))
    if any(name in names for name in CELL_CHANNELS):  # constants of the cell, not of its superposition
        out.update({name: np.full(sad.shape, value) for name, value in cell_descriptors(lattice, numbers).items()})
    return np.stack([out[n] for n in names]).astype(np.float32)


def _superposition_channels(names: tuple[str, ...], base_name: str, lattice: np.ndarray, frac: np.ndarray,
                            numbers: np.ndarray | None, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Channels built from the valence superposition ``base_name``: it over its mean, and those of ``names`` among
    ``log_paw``, its smoothings and ``paw_semilocal_elf``; (n0, n1, n2) each."""
    valence = _valence_superposition(base_name, lattice, frac, numbers, shape)
    out = {base_name: valence / valence.mean()}
    if "log_paw" in names:
        out["log_paw"] = np.log(np.maximum(valence, RHO_FLOOR))
    for sigma in PAW_SMOOTHING:
        if f"{base_name}_g{sigma}" in names:
            out[f"{base_name}_g{sigma}"] = smooth_periodic(out[base_name], lattice, sigma)
    if PAW_ELF_CHANNEL in names:
        out[PAW_ELF_CHANNEL] = semilocal_elf(valence, lattice, RHO_FLOOR)
    if any(name in names for name in ORBITAL_FRACTIONS):
        out.update(_orbital_fractions(lattice, frac, numbers, shape))
    if any(name in names for name in CHI_CHANNELS):
        out.update(_electronegativity_channels(lattice, frac, numbers, shape))
    return out


def cell_descriptors(lattice: np.ndarray, numbers: np.ndarray) -> dict[str, float]:
    """``CELL_CHANNELS`` of a cell of (3, 3) ``lattice`` (rows, A) holding atoms of atomic numbers ``numbers``
    (n_atoms,): ln(N_valence / V) with V in A^3, ln(V / n_atoms), the number of elements and the spread of
    their Pauling electronegativities. ValueError for an element without a valence count or electronegativity."""
    from ase.data import chemical_symbols

    from pymatgen_elfml.valence import electronegativities, valence_electrons

    numbers = np.asarray(numbers, int).reshape(-1)
    volume = abs(float(np.linalg.det(np.asarray(lattice, float))))
    species = np.unique(numbers)
    chi = electronegativities(species)
    return {"cell_log_n": float(np.log(valence_electrons(chemical_symbols[z] for z in numbers) / volume)),
            "cell_log_v": float(np.log(volume / len(numbers))), "cell_n_species": float(len(species)),
            "cell_chi_spread": float(max(chi) - min(chi))}


def _electronegativity_channels(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray,
                                shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """``CHI_CHANNELS``, (n0, n1, n2) each: the electronegativities of the species weighted by their shares of the
    PAW superposition (negative parts floored at 0), locally and smoothed by ``CHI_SMOOTHING``; minus the first."""
    from pymatgen_elfml.sad.paw_atoms import paw_species
    from pymatgen_elfml.valence import electronegativities

    frac, numbers = np.atleast_2d(np.asarray(frac, float)), np.asarray(numbers, int)
    species = np.unique(numbers)
    chi = np.array(electronegativities(species))
    if len(species) == 1:  # one species: its weight is 1 everywhere
        return {"chi_local": np.full(shape, chi[0]), "chi_contrast": np.zeros(shape)}
    parts = np.maximum(paw_species(lattice, frac, numbers, shape)[1], 0.0)
    smooth = np.stack([np.maximum(smooth_periodic(part, lattice, CHI_SMOOTHING), 0.0) for part in parts])
    local = np.tensordot(chi, parts, 1) / np.maximum(parts.sum(axis=0), RHO_FLOOR)
    around = np.tensordot(chi, smooth, 1) / np.maximum(smooth.sum(axis=0), RHO_FLOOR)
    return {"chi_local": local, "chi_contrast": local - around}


def _orbital_fractions(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray,
                       shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """``ORBITAL_FRACTIONS``: each part of the PAW pseudo density over the whole pseudo density (the parts are
    ``paw_components``' first rows; the f share, one minus the rest, is left out); (n0, n1, n2) each, clipped."""
    from pymatgen_elfml.sad.paw_atoms import ORBITAL_PARTS, paw_components

    parts = paw_components(lattice, frac, numbers, shape)[: len(ORBITAL_PARTS)]
    pseudo = np.maximum(parts.sum(axis=0), FRACTION_FLOOR)
    return {name: np.clip(part / pseudo, *FRACTION_CLIP) for name, part in zip(ORBITAL_FRACTIONS, parts)}


def _valence_superposition(name: str, lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray | None,
                           shape: tuple[int, int, int]) -> np.ndarray:
    """(n0, n1, n2) valence-density channel ``name`` before normalisation, e/A^3 (mean > 0, checked)."""
    if numbers is None:
        raise ValueError(f"the {name!r} channel is a superposition of per-element densities: pass the atomic numbers")
    if name == VALENCE_CHANNEL:
        from pymatgen_elfml.sad.valence_profiles import valence_superposition as superpose
    elif name in RADIAL_TABLES:
        from pymatgen_elfml.sad.paw_radial import corrected_superposition, load_table

        def superpose(*args):
            return corrected_superposition(*args, table=load_table(RADIAL_TABLES[name]))
    else:
        from pymatgen_elfml.sad.paw_atoms import paw_superposition as superpose
    base = superpose(lattice, frac, numbers, shape)
    if not base.mean() > 0:
        raise ValueError(f"the {name!r} channel has mean {base.mean():.3g} e/A^3 on this cell: not a usable density base")
    return base
