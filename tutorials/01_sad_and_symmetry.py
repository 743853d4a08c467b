"""Tutorial 1: the superposed atomic density of a crystal, its symmetry, and the ELF predictor.

Run from the repository root:

    python tutorials/01_sad_and_symmetry.py [OUTPUT_DIR]

1. Read a structure (any file pymatgen reads, an ase.Atoms works too).
2. Write its superposed atomic density (SAD) as a VASP CHGCAR: rho * V_cell convention,
   electron count = sum of Z.
3. Look at the Seitz operators the model uses and the grid they make commensurate.
4. Predict the ELF with the shipped default model (elf-metals-v2) and write an ELFCAR.
"""

import sys
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from pymatgen_elfml import DensityGenerator, ElfPredictor
from pymatgen_elfml.grid import grid_shape
from pymatgen_elfml.io import validate
from pymatgen_elfml.symmetry import grid_orbits, seitz_ops

HERE = Path(__file__).parent
out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
structure = Structure.from_file(HERE / "structures" / "Ag4_dhcp.vasp")
print(structure.composition.reduced_formula, structure.lattice.abc)

# 2. SAD as a CHGCAR (default grid spacing 0.10 A, smoothing 0.2 A)
chgcar = DensityGenerator().sad(structure)
data = chgcar.data["total"]
print(f"SAD grid {data.shape}, electrons {data.mean():.4f} (sum of Z = {sum(s.specie.Z for s in structure)})")
chgcar.write_file(out_dir / "CHGCAR_SAD")

# 3. symmetry: operators of the cell as given, and the asymmetric unit of the grid
cell = validate(structure)
ops = seitz_ops(cell)
shape = grid_shape(cell.lattice, 0.2, ops)
rep, stab = grid_orbits(shape, ops)
n_au = int((rep == np.arange(rep.size).reshape(shape)).sum())
print(f"{len(ops)} Seitz operators; 0.2 A grid {shape}: {n_au} of {rep.size} points in the asymmetric unit")

# 4. ELF with the shipped default model (elf-metals-v2; see its MODEL_CARD.md for what it can and cannot do)
predictor = ElfPredictor.from_pretrained()
predictor.predict(structure).write_file(out_dir / "ELFCAR")
print("wrote", out_dir / "ELFCAR")
