"""Variational autoencoders of aligned AU densities: the second paper's 3D Swin Transformer VAE (MONAI blocks), and
a linear-Gaussian VAE (probabilistic PCA) that wins on the data here.

MONAI's ``BasicLayer`` (shifted-window 3D self-attention, the blocks of SwinUNETR) is used instead of writing
window attention by hand: it is a maintained, tested implementation of exactly the paper's building block;
MONAI (with einops) is the optional extra ``generative``. Layout, for an envelope padded to a multiple of 8:

    encoder: Conv3d patch embedding (4^3 patches) -> Swin stage (dim C) -> patch merging -> Swin stage (2C)
             -> 1x1 conv to mean and log-variance of a latent of ``latent`` channels on an (E/8)^3 grid
    decoder: 1x1 conv -> Swin stage (2C) -> transposed conv x2 -> Swin stage (C) -> transposed conv x4 -> crop

The network sees the envelope's DCT coefficients standardised per coefficient (``coeff_mean``, ``coeff_std``:
training-set statistics, stored with the weights) and returns coefficients in the original units.

``arch="linear"`` (``LinearVae``): probabilistic PCA of the real-space AU blocks, fitted in closed form
(``generative.train``): z = principal coordinates over their training standard deviations. Measured on Pm-3m
(data/v2, 138 training densities): it reconstructs the validation densities at 80 dB, the Swin VAE at 27 dB after
100 epochs on 2 CPU cores (``models/density-vae-v1/MODEL_CARD.md``, ``benchmarks/vae.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class VaeConfig:
    """Architecture of one group's VAE.

    Attributes:
        envelope: the group's DCT envelope (n0, n1, n2); filled in from the data by the training run
            (empty in a run's settings, ``generative.train.VaeTrainConfig.vae``).
        dim: channels C of the first Swin stage (the second has 2C).
        depth: Swin blocks per stage.
        heads: attention heads of the first stage (the second has twice as many).
        window: attention window edge in tokens.
        latent: latent channels per latent grid point ("swin"), or latent dimensions ("linear").
        arch: "swin" (``SwinVae``) or "linear" (``LinearVae``).
    """

    envelope: tuple[int, ...] = ()
    dim: int = 32
    depth: int = 2
    heads: int = 2
    window: int = 4
    latent: int = 8
    arch: str = "swin"

    def to_dict(self) -> dict:
        return {**asdict(self), "envelope": list(self.envelope)}

    @property
    def padded(self) -> tuple[int, int, int]:
        return tuple(-(-e // 8) * 8 for e in self.envelope)


def _swin_stage(dim: int, depth: int, heads: int, window: int) -> nn.Module:
    try:
        from monai.networks.nets.swin_unetr import BasicLayer
    except ImportError as exc:  # MONAI and einops are the optional extra "generative"
        raise ImportError("the density VAE needs MONAI: pip install 'pymatgen-elfml[generative]'") from exc
    return BasicLayer(dim=dim, depth=depth, num_heads=heads, window_size=(window,) * 3, drop_path=[0.0] * depth,
                      qkv_bias=True, downsample=None)


class SwinVae(nn.Module):
    """Encoder q(z | c) and decoder p(c | z) of envelope-shaped DCT coefficients c, (B, n0, n1, n2)."""

    def __init__(self, config: VaeConfig):
        super().__init__()
        from monai.networks.nets.swin_unetr import PatchMergingV2

        self.config = config
        c = config.dim
        self.embed = nn.Conv3d(1, c, kernel_size=4, stride=4)
        self.enc1 = _swin_stage(c, config.depth, config.heads, config.window)
        self.merge = PatchMergingV2(dim=c, spatial_dims=3)
        self.enc2 = _swin_stage(2 * c, config.depth, 2 * config.heads, config.window)
        self.to_latent = nn.Conv3d(2 * c, 2 * config.latent, kernel_size=1)
        self.from_latent = nn.Conv3d(config.latent, 2 * c, kernel_size=1)
        self.dec2 = _swin_stage(2 * c, config.depth, 2 * config.heads, config.window)
        self.up2 = nn.ConvTranspose3d(2 * c, c, kernel_size=2, stride=2)
        self.dec1 = _swin_stage(c, config.depth, config.heads, config.window)
        self.up1 = nn.ConvTranspose3d(c, 1, kernel_size=4, stride=4)
        self.register_buffer("coeff_mean", torch.zeros(config.envelope))
        self.register_buffer("coeff_std", torch.ones(config.envelope))

    def set_stats(self, coeffs: torch.Tensor, support: torch.Tensor | None = None) -> None:
        """Per-coefficient standardisation from (n, *envelope) training coefficients (std floored at 1e-6;
        ``support`` is not used)."""
        self.coeff_mean.copy_(coeffs.mean(0))
        self.coeff_std.copy_(coeffs.std(0).clamp_min(1e-6))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        pads = [p - e for p, e in zip(self.config.padded, self.config.envelope)]
        return nn.functional.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]))

    def encode(self, coeffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of q(z | coeffs), each (B, latent, n0/8, n1/8, n2/8) of the padded envelope."""
        x = self._pad((coeffs - self.coeff_mean) / self.coeff_std)[:, None]
        h = self.enc1(self.embed(x))
        h = self.merge(h.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)
        mu, logvar = self.to_latent(self.enc2(h)).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, n0, n1, n2) envelope coefficients (original units) from latents z."""
        h = self.up2(self.dec2(self.from_latent(z)))
        x = self.up1(self.dec1(h))[:, 0]
        e = self.config.envelope
        return x[:, : e[0], : e[1], : e[2]] * self.coeff_std + self.coeff_mean

    def forward(self, coeffs: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mean, log-variance); ``sample`` draws z by the reparameterisation, else z = mean."""
        mu, logvar = self.encode(coeffs)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        return self.decode(z), mu, logvar

    def latent_shape(self) -> tuple[int, int, int, int]:
        return (self.config.latent, *(p // 8 for p in self.config.padded))


def dct_matrix(n: int) -> torch.Tensor:
    """(n, n) orthonormal DCT-II matrix C (scipy's ``dct(norm="ortho")`` is C @ x; its inverse is C.T @ y)."""
    k, i = torch.arange(n, dtype=torch.float64)[:, None], torch.arange(n, dtype=torch.float64)[None, :]
    c = torch.cos(torch.pi * (2 * i + 1) * k / (2 * n)) * (2.0 / n) ** 0.5
    c[0] /= 2.0**0.5
    return c.float()


def dct3(x: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Orthonormal 3D DCT-II (or its inverse) of (B, n0, n1, n2) tensors, by matrix products (differentiable)."""
    c0, c1, c2 = (dct_matrix(n).to(x.device, x.dtype) for n in x.shape[1:])
    spec = "zijk,ai,bj,ck->zabc" if not inverse else "zijk,ia,jb,kc->zabc"
    return torch.einsum(spec, x, c0, c1, c2)


class LinearVae(nn.Module):
    """Linear-Gaussian VAE (probabilistic PCA) with the interface of ``SwinVae`` (encode, decode, forward,
    latent_shape, set_stats). Its components live in real space on the points some training field's AU
    occupies (``mask``; the DCT is orthonormal, so this is the same PCA as on the coefficients, in a fraction of
    the storage: float16 buffers); z = principal coordinates over their training standard deviations, so
    z ~ N(0, 1) samples the Gaussian fitted to the training densities."""

    def __init__(self, config: VaeConfig):
        super().__init__()
        self.config = config
        self.register_buffer("mask", torch.zeros(config.envelope, dtype=torch.bool))
        self.register_buffer("mean", torch.zeros(0, dtype=torch.float16))
        self.register_buffer("basis", torch.zeros(0, config.latent, dtype=torch.float16))
        self.register_buffer("scale", torch.ones(config.latent))
        self.register_buffer("logvar", torch.full((config.latent,), -8.0))

    def resize(self, n_points: int) -> None:
        """Buffers for ``n_points`` masked points (before loading a saved state)."""
        self.mean = torch.zeros(n_points, dtype=torch.float16)
        self.basis = torch.zeros(n_points, self.config.latent, dtype=torch.float16)

    def set_stats(self, coeffs: torch.Tensor, support: torch.Tensor | None = None) -> None:
        """Fit the principal components of (n, *envelope) training coefficients (k = ``latent``, at most n - 1);
        ``support``: the envelope points any training AU occupies (default: where any field is nonzero)."""
        real = dct3(coeffs.double(), inverse=True)
        self.mask = (real.abs() > 1e-9).any(0) if support is None else support.bool()
        x = real[:, self.mask].double()
        mean = x.mean(0)
        _, sing, vt = torch.linalg.svd(x - mean, full_matrices=False)
        k = min(self.config.latent, len(x) - 1)  # n fields span at most n - 1 directions about their mean
        scale = torch.ones(self.config.latent, dtype=torch.float64)
        scale[:k] = sing[:k] / max(len(x) - 1, 1) ** 0.5
        basis = torch.zeros(x.shape[1], self.config.latent, dtype=torch.float64)
        basis[:, :k] = vt[:k].T
        residual = (sing[k:] ** 2).sum() / max((len(x) - 1) * x.shape[1], 1)  # PPCA noise variance
        self.mean, self.basis, self.scale = mean.half(), basis.half(), scale.clamp_min(1e-12).float()
        self.logvar = torch.log((residual + 1e-30) / scale**2).clamp(-30.0, 0.0).float()

    def encode(self, coeffs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = dct3(coeffs.float(), inverse=True)[:, self.mask] - self.mean.float()
        return x @ self.basis.float() / self.scale, self.logvar.expand(len(coeffs), -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        real = torch.zeros((len(z), *self.config.envelope), dtype=torch.float32, device=z.device)
        real[:, self.mask] = (z * self.scale) @ self.basis.float().T + self.mean.float()
        return dct3(real)

    forward = SwinVae.forward

    def latent_shape(self) -> tuple[int]:
        return (self.config.latent,)


def build_vae(config: VaeConfig) -> nn.Module:
    """The VAE of ``config.arch``."""
    if config.arch not in ("swin", "linear"):
        raise ValueError(f"unknown VAE arch {config.arch!r}: 'swin' or 'linear'")
    if len(config.envelope) != 3:
        raise ValueError(f"a VAE needs its group's DCT envelope (n0, n1, n2), got {config.envelope!r}")
    return SwinVae(config) if config.arch == "swin" else LinearVae(config)


WEIGHTS_FILE, CONFIG_FILE = "weights.pt", "config.json"


def save_vae(net: nn.Module, path, info: dict) -> None:
    """Write ``weights.pt`` and ``config.json`` (architecture, ``info``: space group, witness cell, data,
    metrics; sha256 of the weights) into folder ``path``, each atomically."""
    import hashlib
    import io as _io
    import json
    from pathlib import Path

    from pymatgen_elfml.io import atomic_path, write_text_atomic

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    buffer = _io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    with atomic_path(path / WEIGHTS_FILE) as tmp:
        tmp.write_bytes(buffer.getvalue())
    config = {"model_class": "DensityVae", "vae": net.config.to_dict(), **info,
              "weights_sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
    write_text_atomic(path / CONFIG_FILE, json.dumps(config, indent=1))


def load_vae(path) -> tuple[nn.Module, dict]:
    """(network in eval mode, config dict) of a folder written by ``save_vae``.

    Raises:
        pretrained.ModelFileError: missing files, another model class, or weights that fail their checksum.
    """
    import hashlib
    import json
    from pathlib import Path

    from pymatgen_elfml.pretrained import ModelFileError

    path = Path(path)
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        payload = (path / WEIGHTS_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not a readable VAE folder: {exc}") from exc
    if config.get("model_class") != "DensityVae":  # arch ("swin" / "linear") is in config["vae"]
        raise ModelFileError(f"{path / CONFIG_FILE} is not a density VAE (model_class {config.get('model_class')!r})")
    if hashlib.sha256(payload).hexdigest() != config.get("weights_sha256"):
        raise ModelFileError(f"{path / WEIGHTS_FILE} is corrupted: its sha256 does not match {CONFIG_FILE}")
    vae = config["vae"]
    net = build_vae(VaeConfig(**{**vae, "envelope": tuple(vae["envelope"])}))
    state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    if isinstance(net, LinearVae):
        net.resize(state["basis"].shape[0])
    net.load_state_dict(state)
    return net.eval(), config
