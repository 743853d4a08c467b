"""Build the shipped free-atom radial density table from the atomref-proatoms data.

Run once (needs the ``atomref`` package, installed by the ``tables`` extra)::

    python -m pymatgen_elfml.sad.build_table

Source: the neutral, spherical, all-electron proatomic densities for Z = 1-103 of
atomref-proatoms 2.0.0 (PBE0 / spin-free X2C / dyall-v4z), as packaged by ``atomref``
(dataset ``pbe0_sfx2c_dyallv4z_h-lr_neutral_v2``; data licence CC BY 4.0, see
``data/README.md``). The source grid (1127 log-spaced radii, 1e-6 to 20.16 bohr,
e/bohr^3) is resampled log-log onto a coarser log grid in Angstrom and stored as
float32 with each profile renormalised so that 4 pi int r^2 rho dr = Z exactly on the
stored grid (the renormalisation factor is recorded; it stays within ~1e-5 of 1).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from pymatgen_elfml.io import atomic_path

BOHR_TO_ANGSTROM = 0.529177210903
DATASET_ID = "pbe0_sfx2c_dyallv4z_h-lr_neutral_v2"
N_RADII = 600
R_MIN_BOHR = 1e-6
R_MAX_BOHR = 20.0
OUT = Path(__file__).parent / "data" / "proatoms_pbe0.npz"


def radial_integral(r: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """4 pi int r^2 rho dr on a log grid, by the trapezoid rule in ln r.

    Args:
        r: (n,) radii, strictly increasing and log-spaced.
        rho: (..., n) densities in electrons per unit length^3 of ``r``.

    Returns:
        (...,) electron counts.
    """
    return 4.0 * np.pi * np.trapezoid(rho * r**3, np.log(r), axis=-1)


def load_source() -> tuple[np.ndarray, np.ndarray, bytes]:
    """Read the atomref CSV: radii (n,) in bohr, densities (103, n) in e/bohr^3, raw bytes."""
    blob = resources.files("atomref.data").joinpath("proatomic_density_neutral.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        text = zf.read("proatomic_density_neutral.csv").decode()
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], np.array(rows[1:], dtype=float)
    if header[0] != "r_bohr" or header[1:] != [f"z{z:03d}" for z in range(1, 104)]:
        raise ValueError(f"unexpected atomref CSV header: {header[:3]} ...")
    return body[:, 0], body[:, 1:].T, blob


def resample(r_src: np.ndarray, rho_src: np.ndarray, r_new: np.ndarray) -> np.ndarray:
    """Log-log interpolation (atomref's interpolation contract) of (103, n) profiles."""
    log_r = np.log(r_src)
    out = np.empty((rho_src.shape[0], r_new.size))
    for i, prof in enumerate(rho_src):
        out[i] = np.exp(np.interp(np.log(r_new), log_r, np.log(np.maximum(prof, 1e-300))))
    return out


def build(out: Path = OUT) -> dict:
    """Resample, renormalise and write the table; returns the metadata written."""
    r_src, rho_src, blob = load_source()
    z = np.arange(1, 104)
    src_err = radial_integral(r_src, rho_src) - z
    r_new = np.geomspace(R_MIN_BOHR, R_MAX_BOHR, N_RADII)
    rho_new = resample(r_src, rho_src, r_new)
    scale = z / radial_integral(r_new, rho_new)
    rho_new *= scale[:, None]
    r_ang = r_new * BOHR_TO_ANGSTROM
    rho_ang = (rho_new / BOHR_TO_ANGSTROM**3).astype(np.float32)
    stored_err = radial_integral(r_ang, rho_ang.astype(np.float64)) - z
    meta = {
        "source": "atomref " + DATASET_ID + " (atomref-proatoms 2.0.0)",
        "source_zip_sha256": hashlib.sha256(blob).hexdigest(),
        "licence": "CC BY 4.0",
        "units": {"r": "Angstrom", "rho": "electrons / Angstrom^3"},
        "max_abs_source_count_error": float(np.abs(src_err).max()),
        "max_abs_renormalisation": float(np.abs(scale - 1).max()),
        "max_abs_stored_count_error": float(np.abs(stored_err).max()),
    }
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez_compressed(tmp, r=r_ang, rho=rho_ang, z=z, meta=json.dumps(meta))
    return meta


if __name__ == "__main__":
    print(json.dumps(build(), indent=2))
