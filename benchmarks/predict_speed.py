"""ELF prediction wall time for a 4-atom cell at the native spacing, by stage, on this machine.

Uses the default UNetConfig architecture with random weights (the timing does not depend on
the weight values); the shipped models' end-to-end times are in benchmarks/speed.py.

    python benchmarks/predict_speed.py
"""

from __future__ import annotations

import time

import torch
from pymatgen.core import Lattice, Structure

from common import save, timed
from pymatgen_elfml import io, symmetry
from pymatgen_elfml.grid import grid_shape
from pymatgen_elfml.inference import predict_grid
from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.pretrained import ModelSpec
from pymatgen_elfml.sad import sad_density

AG4 = Structure(Lattice.hexagonal(2.911, 9.464), ["Ag"] * 4,
                [[0, 0, 0], [0, 0, 0.5], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])


def main() -> None:
    torch.manual_seed(0)
    spec = ModelSpec()
    predictor = ElfPredictor(PeriodicUNet3D(spec.arch), spec, device="auto")
    total, _ = timed(lambda: predictor.predict(AG4), repeat=3)
    cell = io.validate(AG4)
    stages = {}
    start = time.perf_counter()
    ops = symmetry.seitz_ops(cell)
    shape = grid_shape(cell.lattice, spec.native_spacing, ops, spec.arch.size_multiple)
    stages["symmetry + grid"] = time.perf_counter() - start
    stages["sad"], sad = timed(lambda: sad_density(cell.lattice, cell.frac, cell.numbers, shape, spec.sad_sigma))
    stages["network"], elf = timed(lambda: predict_grid(predictor.net, sad, ops, predictor.settings, predictor.device))
    stages["symmetrize"], _ = timed(lambda: symmetry.symmetrize(elf, ops))
    params = sum(p.numel() for p in predictor.net.parameters())
    print(f"Ag4 hcp, grid {shape} ({len(ops)} ops), {params / 1e6:.2f} M parameters, device {predictor.device}")
    for name, sec in stages.items():
        print(f"  {name:18s} {sec:7.3f} s")
    print(f"  {'predict() total':18s} {total:7.3f} s")
    print("wrote", save("predict_speed", {"structure": "Ag4 hcp (4 atoms)", "grid": shape, "n_ops": len(ops),
                                          "parameters": params, "device": str(predictor.device),
                                          "stages_s": stages, "predict_total_s": total}))


if __name__ == "__main__":
    main()
