"""Shared helpers for the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from pymatgen_elfml.io import write_text_atomic

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d"),
    }


def save(name: str, payload: dict) -> Path:
    """Write results/<name>.json (atomically) and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    return write_text_atomic(path, json.dumps({"machine": machine(), **payload}, indent=2))


def random_metal_cell(edge: float, n_atoms: int, seed: int = 0, min_dist: float = 2.3) -> Structure:
    """A P1 cubic cell of ``edge`` Angstrom with randomly placed Al/Cu atoms (no two closer than min_dist)."""
    rng = np.random.default_rng(seed)
    lat = Lattice.cubic(edge)
    frac: list[np.ndarray] = []
    while len(frac) < n_atoms:
        x = rng.random(3)
        if all(lat.get_distance_and_image(x, y)[0] >= min_dist for y in frac):
            frac.append(x)
    species = ["Al" if i % 2 else "Cu" for i in range(n_atoms)]
    return Structure(lat, species, frac)


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    """Best wall time in seconds over ``repeat`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out
