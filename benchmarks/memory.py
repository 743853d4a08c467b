"""Peak RSS of a prediction on a 64^3 and a 200^3 grid, each in a fresh process.

Patch inference holds the SAD, the stitching sums and the output on the full grid and
only one batch of patches in the network, so the 200^3 run should need the 64^3 run's
memory plus about the size of its extra full-grid arrays.

    python benchmarks/memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys

from common import save

CHILD = r"""
import json, resource, sys, time
import torch
sys.path.insert(0, "benchmarks")
from common import random_metal_cell
from pymatgen_elfml.nn import PeriodicUNet3D
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.pretrained import ModelSpec
edge, n_atoms, mode = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
spec = ModelSpec()
structure = random_metal_cell(edge, n_atoms)
pred = ElfPredictor(PeriodicUNet3D(spec.arch), spec, device="cpu")
pred.settings = pred.settings.__class__(mode=mode, patch_size=spec.patch_size, halo=spec.halo, batch_size=2)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
elf = pred.predict(structure).data["total"]
print(json.dumps({"grid": list(elf.shape), "mode": mode, "seconds": time.perf_counter() - start,
                  "rss_before_mb": base / 1024, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CASES = [(6.4, 8, "patches"), (20.0, 160, "patches"), (6.4, 8, "auto")]


def main() -> None:
    rows = []
    for edge, n_atoms, mode in CASES:
        out = subprocess.run([sys.executable, "-c", CHILD, str(edge), str(n_atoms), mode],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["full_grid_array_mb"] = 8 * row["grid"][0] * row["grid"][1] * row["grid"][2] / 2**20
        rows.append(row)
        print(f"grid {tuple(row['grid'])} mode {mode:8s} peak RSS {row['peak_rss_mb']:8.1f} MB "
              f"(after imports {row['rss_before_mb']:.1f} MB), one float64 grid {row['full_grid_array_mb']:.1f} MB, "
              f"{row['seconds']:.1f} s")
    print("wrote", save("memory", {"cases": rows}))


if __name__ == "__main__":
    main()
