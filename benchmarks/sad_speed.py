"""SAD rasterization throughput: fcc Al on 48^3 and a 512-atom cell on 192^3.

    python benchmarks/sad_speed.py
"""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

from common import save, timed
from pymatgen_elfml.io import validate
from pymatgen_elfml.sad import sad_density

CASES = {
    "fcc Al (4 atoms), 48^3": (Structure(Lattice.cubic(4.05), ["Al"] * 4,
                                         [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]]), (48, 48, 48)),
    "fcc Al 8x8x8 primitive (512 atoms), 192^3": (
        Structure(Lattice.from_parameters(2.864, 2.864, 2.864, 60, 60, 60), ["Al"], [[0, 0, 0]]) * (8, 8, 8),
        (192, 192, 192)),
}


def main() -> None:
    rows = {}
    for name, (structure, shape) in CASES.items():
        cell = validate(structure)
        seconds, rho = timed(lambda: sad_density(cell.lattice, cell.frac, cell.numbers, shape, 0.2))
        n_vox = shape[0] * shape[1] * shape[2]
        electrons = float(rho.sum() * cell.volume / n_vox)
        rows[name] = {"atoms": len(structure), "grid": shape, "seconds": seconds,
                      "voxels_per_s": n_vox / seconds, "electrons": electrons, "sum_Z": int(cell.numbers.sum())}
        print(f"{name:45s} {seconds:8.3f} s  {n_vox / seconds:12.3e} voxels/s  electrons {electrons:.6f}")
    print("wrote", save("sad_speed", {"cases": rows}))


if __name__ == "__main__":
    main()
