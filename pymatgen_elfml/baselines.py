"""ELF baselines that need no learning: a constant, and a semilocal ELF from the SAD.

The semilocal ELF uses the gradient expansion of the kinetic energy density
(Thomas-Fermi + von Weizsaecker/9 + Laplacian/6, Kirzhnits):

    tau = C_F rho^(5/3) + |grad rho|^2 / (72 rho) + lap rho / 6,   C_F = (3/10)(3 pi^2)^(2/3),
    D = tau - |grad rho|^2 / (8 rho),   chi = D / (C_F rho^(5/3)),   ELF = 1 / (1 + chi^2).

Any consistent length unit works (chi is dimensionless); derivatives are spectral (periodic).
A uniform density gives ELF = 1/2, the electron-gas value.
"""

from __future__ import annotations

import numpy as np
from scipy import fft

C_F = 0.3 * (3.0 * np.pi**2) ** (2.0 / 3.0)


def spectral_derivatives(rho: np.ndarray, lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|grad rho|^2 and lap rho of a periodic field on the cell ``lattice`` (rows, Angstrom).

    Returns:
        (grad2, lap), each (n0, n1, n2), in rho^2/A^2 and rho/A^2.
    """
    g = _cartesian_g(rho.shape, lattice)
    spec = fft.fftn(rho, workers=-1)
    grads = [fft.ifftn(1j * gc * spec, workers=-1).real for gc in g]
    lap = fft.ifftn(-(g[0] ** 2 + g[1] ** 2 + g[2] ** 2) * spec, workers=-1).real
    return sum(d * d for d in grads), lap


def _cartesian_g(shape: tuple[int, int, int], lattice: np.ndarray) -> list[np.ndarray]:
    """Cartesian components of the reciprocal vectors G (1/A, with 2 pi) of an FFT grid, broadcastable."""
    recip = 2.0 * np.pi * np.linalg.inv(np.asarray(lattice, dtype=float)).T
    freqs = np.meshgrid(*[np.fft.fftfreq(n, 1.0 / n) for n in shape], indexing="ij", sparse=True)
    return [sum(freqs[i] * recip[i, c] for i in range(3)) for c in range(3)]


def reciprocal_g2(shape: tuple[int, int, int], lattice: np.ndarray) -> np.ndarray:
    """|G|^2 (1/A^2) on the FFT grid of ``shape`` for the cell ``lattice`` (rows, Angstrom)."""
    g = _cartesian_g(shape, lattice)
    return g[0] ** 2 + g[1] ** 2 + g[2] ** 2


def semilocal_elf(rho: np.ndarray, lattice: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """ELF from a density (e/A^3) with the gradient-expanded kinetic energy density; (n0, n1, n2) in [0, 1]."""
    grad2, lap = spectral_derivatives(rho, lattice)
    return semilocal_elf_from(np.maximum(rho, floor), grad2, lap)


def semilocal_elf_from(rho_c: np.ndarray, grad2: np.ndarray, lap: np.ndarray) -> np.ndarray:
    """The semilocal ELF from a floored density and its |grad rho|^2 and lap rho (see the module docstring)."""
    tau_tf = C_F * rho_c ** (5.0 / 3.0)
    tau_w = grad2 / (8.0 * rho_c)
    tau = tau_tf + tau_w / 9.0 + lap / 6.0
    chi = (tau - tau_w) / tau_tf
    return 1.0 / (1.0 + chi**2)


def constant_elf(shape: tuple[int, int, int], value: float) -> np.ndarray:
    """A constant field (e.g. the training-set mean ELF)."""
    return np.full(shape, float(value))
