"""``DensityGenerator``: densities from structures: the superposed atomic density, and a learned valence density."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pymatgen.io.vasp.outputs import Chgcar

from pymatgen_elfml import io, symmetry
from pymatgen_elfml.grid import NATIVE_SPACING, SAD_SIGMA, check_spacing, grid_shape, voxel_spacing
from pymatgen_elfml.sad import sad_density

if TYPE_CHECKING:
    from pymatgen_elfml.predictor import ValenceDensityPredictor

COARSE_VOXEL = 0.5  # Angstrom: on coarser grids the smoothing (2 voxels) washes out the atoms


class DensityGenerator:
    """Densities on VASP grids: ``sad`` (no model) and ``predict`` (a learned valence density,
    ``DensityGenerator.from_pretrained()``).

    >>> from pymatgen.core import Lattice, Structure
    >>> al = Structure(Lattice.cubic(4.05), ["Al"] * 4, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    >>> chg = DensityGenerator().sad(al, spacing=0.15)
    >>> chg.data["total"].shape, round(float(chg.data["total"].mean()), 6)
    ((30, 30, 30), 52.0)

    Args:
        predictor: the learned-density model (``from_pretrained`` makes one); None: ``sad`` only.
    """

    def __init__(self, predictor: ValenceDensityPredictor | None = None):
        self.predictor = predictor

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None, device: str = "auto",
                        **settings: Any) -> DensityGenerator:
        """A generator with a learned valence-density model: a registered name (default
        ``density-metals-v10``) or a folder written by ``save_pretrained``; ``settings`` as for
        ``ElfPredictor.from_pretrained`` (whole-cell / patch inference, precision).

        Raises:
            ValueError: unknown name, or a model that does not predict a density.
            pretrained.ModelFileError: missing or corrupted model files.
        """
        from pymatgen_elfml.predictor import ValenceDensityPredictor  # torch: only for the learned density

        return cls(ValenceDensityPredictor.from_pretrained(name_or_path, device, **settings))

    def predict(self, structure: Any, grid: tuple[int, int, int] | None = None, spacing: float | None = None,
                **kwargs: Any) -> Chgcar:
        """Learned valence density (the reference data's PAW valence: ``valence.SETUP_VALENCE``) as a
        ``Chgcar`` (data = rho * V, rho in e/A^3) whose grid mean equals the valence electron count.

        Args:
            structure: pymatgen ``Structure``, ``ase.Atoms`` or a structure file path.
            grid: output grid (n0, n1, n2), e.g. an existing CHGCAR's; spacing: its spacing in A
                (default: the model's native 0.10 A); kwargs: ``symmetrize``, ``precision``.

        Raises:
            ValueError: bad structure, or an element without a valence electron count.
        """
        return self._model().predict(structure, grid=grid, spacing=spacing, **kwargs)

    def predict_many(self, structures: Iterable[Any], progress: bool = True, errors: str = "raise",
                     batch_size: int | None = None, **kwargs: Any) -> Iterator[Chgcar | Exception]:
        """``predict`` lazily over many structures with a progress bar (``ElfPredictor.predict_many``'s options)."""
        return self._model().predict_many(structures, progress=progress, errors=errors, batch_size=batch_size, **kwargs)

    def _model(self) -> ValenceDensityPredictor:
        if self.predictor is None:
            raise RuntimeError("this DensityGenerator has no learned model: use DensityGenerator.from_pretrained() "
                               "(DensityGenerator().sad() needs none)")
        return self.predictor

    def sad(self, structure: Any, spacing: float | None = None, grid: tuple[int, int, int] | None = None,
            sigma: float | None = None) -> Chgcar:
        """Superposed all-electron free-atom density as a ``Chgcar`` (data = rho * V_cell).

        Args:
            structure: pymatgen ``Structure``, ``ase.Atoms`` or a structure file path.
            spacing: target grid spacing in Angstrom (default 0.10, the models' native
                spacing); the grid is made commensurate with the space group.
            grid: an explicit grid (n0, n1, n2), e.g. an existing CHGCAR's; overrides spacing.
            sigma: Gaussian smoothing in Angstrom; default max(0.2, 2 x the coarsest voxel spacing),
                which keeps the band-limited grid free of truncation ripples.

        Returns:
            ``Chgcar`` whose grid sum / n_grid equals the number of electrons (sum of Z).
        """
        structure, cell = io.load_cell(structure)
        check_spacing(spacing)
        if grid is not None:
            shape = tuple(int(n) for n in grid)
            if len(shape) != 3 or min(shape) < 1:
                raise ValueError(f"grid must be three positive integers, got {grid}")
        else:
            shape = grid_shape(cell.lattice, spacing or NATIVE_SPACING, symmetry.seitz_ops(cell))
        coarsest = float(voxel_spacing(cell.lattice, shape).max())
        if coarsest > COARSE_VOXEL:
            warnings.warn(f"grid {shape} has voxels up to {coarsest:.2f} A: too coarse to resolve the atoms "
                          f"(the SAD is nearly uniform); use a grid of spacing <= {COARSE_VOXEL} A", stacklevel=2)
        if sigma is None:
            sigma = max(SAD_SIGMA, 2.0 * coarsest)
        rho = sad_density(cell.lattice, cell.frac, cell.numbers, shape, sigma)
        return io.to_chgcar(structure, rho)

    @staticmethod
    def reconstruct(chgcar_or_structure: Any, vae: str | os.PathLike | None = None) -> Chgcar:
        """The second paper's VAE reconstruction (encode, decode at the latent mean) of a density, as a ``Chgcar``.

        Args:
            chgcar_or_structure: a pymatgen ``Chgcar`` (or a CHGCAR path) whose grid is the one the VAEs work on
                (``generative.data.cell_grid``: spacing <= 0.1 A, multiples of 8, commensurate with the group),
                or a structure, whose free atoms' PAW valence densities (``sad.paw_atoms``) are reconstructed.
            vae: a VAE family name (default ``generative.api.DEFAULT_VAE``) or a trained VAE folder.

        Returns:
            ``Chgcar`` on the same grid, exactly symmetric, with the input's electron count.

        Raises:
            ValueError: no VAE for the structure's space group, another grid, or a cell beyond the VAE's envelope.
        """
        from pymatgen_elfml.generative.api import reconstruct_density
        from pymatgen_elfml.generative.data import cell_grid
        from pymatgen_elfml.sad.paw_atoms import paw_superposition

        if isinstance(chgcar_or_structure, (str, os.PathLike)):
            chgcar_or_structure = _chgcar_or_path(chgcar_or_structure)
        if isinstance(chgcar_or_structure, Chgcar):
            structure, cell = io.load_cell(chgcar_or_structure.structure)
            rho = io.density_from_chgcar(chgcar_or_structure)
        else:
            structure, cell = io.load_cell(chgcar_or_structure)
            rho = paw_superposition(cell.lattice, cell.frac, cell.numbers, cell_grid(cell)[0])
        return io.to_chgcar(structure, reconstruct_density(rho, cell, vae)[0])

    @staticmethod
    def sample(spacegroup: int, lattice: Any, n: int = 1, seed: int | None = None, n_electrons: float | None = None,
               vae: str | os.PathLike | None = None) -> list[Chgcar]:
        """``n`` densities generated by the group's VAE (z ~ N(0, 1)) on ``lattice`` (a pymatgen ``Lattice`` or
        3x3 rows in A, in the VAE's setting: its card gives it), exactly symmetric, non-negative, integrating to
        ``n_electrons`` (default: the training densities' mean electrons per A^3 times the volume). The
        ``Chgcar``'s structure is the VAE's witness cell placed in ``lattice``: a sample is a density, the atoms
        are a placeholder that carries the lattice and the group.

        Raises:
            ValueError: n < 1, no VAE for ``spacegroup``, or a lattice incompatible with the group.
        """
        from pymatgen.core import Lattice, Structure

        from pymatgen_elfml.generative.api import sample_densities

        matrix = lattice.matrix if isinstance(lattice, Lattice) else lattice
        fields, cell = sample_densities(int(spacegroup), matrix, n, seed, n_electrons, vae)
        structure = Structure(Lattice(cell.lattice), [int(z) for z in cell.numbers], cell.frac)
        return [io.to_chgcar(structure, rho) for rho in fields]


def _chgcar_or_path(path: str | os.PathLike) -> Chgcar | str:
    """A file's ``Chgcar`` if it holds volumetric data (whatever its name), else the path (a structure file).

    Raises:
        ValueError: a file named like a CHGCAR that pymatgen cannot read as one.
    """
    try:
        return Chgcar.from_file(str(path))
    except FileNotFoundError:
        raise
    except Exception as exc:  # pymatgen raises ValueError/IndexError/... for files without a density block
        if "CHGCAR" in os.path.basename(str(path)).upper():
            raise ValueError(f"{path}: not a readable CHGCAR ({exc})") from exc
        return str(path)
