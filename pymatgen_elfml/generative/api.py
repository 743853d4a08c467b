"""Reconstruction and sampling with a space group's density VAE (arrays in, arrays out; ``DensityGenerator``
wraps them as pymatgen ``Chgcar`` objects).

Shipped VAEs live in ``models/<name>/sg<G>/`` (default name ``DEFAULT_VAE``); a folder written by
``python -m pymatgen_elfml.train vae`` (its ``model/``) can be passed instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pymatgen_elfml import io, symmetry
from pymatgen_elfml.generative.data import cell_grid, decode, encode
from pymatgen_elfml.generative.codec import au_box

DEFAULT_VAE = "density-vae-v1"


def vae_folder(spacegroup: int, name_or_path: str | os.PathLike | None = None) -> Path:
    """The folder of the VAE for ``spacegroup``: a shipped family name (default ``DEFAULT_VAE``) or a folder.

    Raises:
        ValueError: no VAE trained for this space group (the message lists the groups there are).
    """
    from importlib import resources

    if name_or_path is not None and (Path(name_or_path) / "config.json").is_file():
        return Path(name_or_path)
    root = Path(str(resources.files("pymatgen_elfml.models"))) / str(name_or_path or DEFAULT_VAE)
    folder = root / f"sg{spacegroup}"
    if not (folder / "config.json").is_file():
        have = sorted(p.name[2:] for p in root.glob("sg*") if (p / "config.json").is_file()) if root.is_dir() else []
        raise ValueError(f"no density VAE for space group {spacegroup} in {root.name}: trained groups are "
                         f"{', '.join(have) or 'none'}")
    return folder


def _load(spacegroup: int, name_or_path):
    from pymatgen_elfml.generative.vae import load_vae

    net, config = load_vae(vae_folder(spacegroup, name_or_path))
    if int(config["spacegroup"]) != spacegroup:
        raise ValueError(f"the VAE in {name_or_path} is for space group {config['spacegroup']}, not {spacegroup}")
    return net, config


def _checked_setting(ops, config: dict, what: str) -> None:
    """The cell's operators must be in the setting of the VAE's witness cell (its training cells' usual setting)."""
    from pymatgen_elfml.generative.train import rotation_key

    w = config["witness"]
    witness = io.Cell(np.asarray(w["lattice"], float), np.asarray(w["frac"], float), np.asarray(w["numbers"], int))
    if rotation_key(ops.rotations) != rotation_key(cell_grid(witness)[1].rotations):
        raise ValueError(f"{what}: the cell is in another setting of space group {config['spacegroup']} than the VAE's "
                         "(e.g. a conventional instead of a primitive cell): use pymatgen's "
                         "SpacegroupAnalyzer(structure).get_primitive_standard_structure()")


def _checked_box(shape, ops, envelope, what: str) -> None:
    box = au_box(shape, ops)
    if any(b > e for b, e in zip(box, envelope)):
        raise ValueError(f"{what}: the asymmetric unit of grid {tuple(shape)} spans {box}, beyond the VAE's envelope "
                         f"{tuple(envelope)} (a larger cell or finer grid than any it was trained on)")


def _decode_batch(net, latents, shapes_ops_scales) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        coeffs = net.decode(latents).double().numpy()
    return [decode(c, shape, ops, scale) for c, (shape, ops, scale) in zip(coeffs, shapes_ops_scales)]


def reconstruct_density(rho: np.ndarray, cell: io.Cell, name_or_path=None) -> tuple[np.ndarray, int]:
    """Encode and decode (latent mean) a density of a cell; returns (density in e/A^3 on the same grid, space
    group). The reconstruction is exactly symmetric and integrates to the input's electron count.

    Args:
        rho: (n0, n1, n2) density in e/A^3 on the cell's reference-rule grid (``generative.data.cell_grid``).
        cell: validated cell.

    Raises:
        ValueError: another grid than the rule's (non-commensurate or differently sized), no VAE for the group,
            or an asymmetric unit beyond the VAE's envelope.
    """
    import torch

    shape, ops = cell_grid(cell)
    if tuple(rho.shape) != shape:
        raise ValueError(f"density grid {tuple(rho.shape)} is not the grid {shape} this cell's VAE works on "
                         f"(spacing <= 0.1 A, multiples of 8, commensurate with the space group)")
    group = _group(cell)
    net, config = _load(group, name_or_path)
    _checked_setting(ops, config, "reconstruct")
    _checked_box(shape, ops, net.config.envelope, "reconstruct")
    rho = symmetry.symmetrize(np.asarray(rho, float), ops)
    n_electrons = float(rho.mean() * abs(np.linalg.det(cell.lattice)))
    scale = n_electrons / abs(np.linalg.det(cell.lattice))
    with torch.no_grad():
        mu, _ = net.encode(torch.from_numpy(encode(rho, ops, net.config.envelope, scale))[None])
    out = _decode_batch(net, mu, [(shape, ops, scale)])[0]
    return out * (n_electrons / (out.mean() * abs(np.linalg.det(cell.lattice)))), group


def _group(cell: io.Cell) -> int:
    import spglib

    data = spglib.get_symmetry_dataset((cell.lattice, cell.frac, cell.numbers), symprec=0.01)
    return int(data.number)


def sample_densities(spacegroup: int, lattice: np.ndarray, n: int = 1, seed: int | None = None,
                     n_electrons: float | None = None, name_or_path=None) -> tuple[list[np.ndarray], io.Cell]:
    """``n`` densities drawn from the group's VAE (z ~ N(0, 1)) on ``lattice``; returns (densities in e/A^3, the
    witness cell in ``lattice``). Each is exactly symmetric (expanded from the AU by the operators), clipped at
    0 and scaled to ``n_electrons`` (default: the training densities' mean N/V times the cell volume).

    Raises:
        ValueError: n < 1, no VAE for the group, a lattice on which the VAE's witness cell does not have the
            group (another Bravais lattice or setting), or a cell whose grid exceeds the envelope.
    """
    import torch

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n_electrons is not None and not n_electrons > 0:
        raise ValueError(f"n_electrons must be positive, got {n_electrons}")
    net, config = _load(spacegroup, name_or_path)
    lattice = np.asarray(lattice, float).reshape(3, 3)
    witness = config["witness"]
    cell = io.Cell(lattice, np.asarray(witness["frac"], float), np.asarray(witness["numbers"], int))
    if _group(cell) != spacegroup:
        raise ValueError(f"this lattice is incompatible with space group {spacegroup} in the VAE's setting (the "
                         f"witness cell on it has group {_group(cell)}); the VAE's lattice is {np.round(witness['lattice'], 3).tolist()}")
    shape, ops = cell_grid(cell)
    _checked_setting(ops, config, "sample")
    _checked_box(shape, ops, net.config.envelope, "sample")
    volume = abs(np.linalg.det(lattice))
    target = float(n_electrons) if n_electrons is not None else float(config["mean_scale"]) * volume
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
    z = torch.randn((n, *net.latent_shape()), generator=generator)
    fields = _decode_batch(net, z, [(shape, ops, target / volume)] * n)
    return [np.clip(f, 0.0, None) * (target / (np.clip(f, 0.0, None).mean() * volume)) for f in fields], cell
