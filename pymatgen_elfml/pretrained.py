"""Model folders: ``config.json`` (architecture, grid settings, format version, sha256) + ``weights.pt``.

Registered models live in the repository's top-level ``models/<name>/`` folder, installed
as the package ``pymatgen_elfml.models``. Loading verifies the format version and two
checksums: ``weights_sha256`` of ``weights.pt`` and ``model_sha256`` of everything that defines
the model's behaviour (the weights' checksum plus the config's fields except the free-text
description), so a hand-edited ``sad_sigma`` or ``log_input`` is refused like damaged weights.
Weights load with ``torch.load(weights_only=True)`` and strict keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import torch

from pymatgen_elfml.grid import NATIVE_SPACING, SAD_SIGMA
from pymatgen_elfml.io import atomic_path, write_text_atomic
from pymatgen_elfml.nn import PeriodicUNet3D, UNetConfig

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
DEFAULT_MODEL = "elf-metals-v4"  # models/elf-metals-v4, see its MODEL_CARD.md (v3 stays loadable by name)
DEFAULT_DENSITY_MODEL = "density-metals-v10"  # the default of DensityGenerator.from_pretrained()


class ModelFileError(RuntimeError):
    """A model folder is missing, corrupted or of an incompatible format."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild and run a model, stored in ``config.json``.

    Attributes:
        arch: ``PeriodicUNet3D`` constructor arguments.
        native_spacing: grid spacing the model runs at, Angstrom.
        sad_sigma: SAD smoothing width, Angstrom.
        patch_size, halo: patch inference defaults, voxels.
        trained: False for randomly initialised weights (never shipped as a registered model).
        elements: element symbols of the training structures (empty: not recorded); the
            predictor warns for structures with other elements.
        description: free text (data, metrics) for humans.
    """

    arch: UNetConfig = field(default_factory=UNetConfig)
    native_spacing: float = NATIVE_SPACING
    sad_sigma: float = SAD_SIGMA
    patch_size: int = 48
    halo: int = 8
    trained: bool = False
    elements: tuple[str, ...] = ()
    description: str = "randomly initialised"

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        if not self.native_spacing > 0 or not self.sad_sigma > 0:
            raise ValueError(f"native_spacing and sad_sigma must be positive: {self.native_spacing}, {self.sad_sigma}")
        if (self.patch_size + 2 * self.halo) % self.arch.size_multiple:
            raise ValueError(f"patch_size + 2*halo must be a multiple of {self.arch.size_multiple}")


def save_model(net: PeriodicUNet3D, spec: ModelSpec, path: str | os.PathLike) -> Path:
    """Write ``weights.pt`` and ``config.json`` into folder ``path`` (created), each atomically."""
    if net.config != spec.arch:
        raise ValueError("the network's config differs from spec.arch")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    payload = buffer.getvalue()
    with atomic_path(path / WEIGHTS_FILE) as tmp:
        tmp.write_bytes(payload)
    config = {"format_version": FORMAT_VERSION, "model_class": "PeriodicUNet3D", **asdict(spec)}
    config["weights_sha256"] = hashlib.sha256(payload).hexdigest()
    config["model_sha256"] = model_digest(config)
    write_text_atomic(path / CONFIG_FILE, json.dumps(config, indent=2))
    return path


def model_digest(config: dict) -> str:
    """sha256 of the behaviour-defining content of a config (all fields but description and itself)."""
    fields = {k: v for k, v in config.items() if k not in ("description", "model_sha256")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def load_model(path: str | os.PathLike) -> tuple[PeriodicUNet3D, ModelSpec]:
    """Rebuild a model from a folder written by ``save_model``.

    Raises:
        ModelFileError: missing files, unreadable JSON, wrong format version or class,
            checksum mismatch, unreadable tensors, or keys/shapes that do not match.
    """
    path = Path(path)
    config = _read_config(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelFileError(f"missing weights file {weights}")
    if not isinstance(config.get("weights_sha256"), str):
        raise ModelFileError(f"{path / CONFIG_FILE} has no weights_sha256: the config is incomplete or was edited")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != config["weights_sha256"]:
        raise ModelFileError(f"{weights} is corrupted: sha256 {digest[:12]}... != {config['weights_sha256'][:12]}... in {CONFIG_FILE}")
    if "model_sha256" not in config:  # saved before model_sha256 existed: weights verified, settings not
        warnings.warn(f"{path / CONFIG_FILE} has no model_sha256 (saved by an older version): its settings are "
                      "not verified; load and save_pretrained() the model to add it", stacklevel=2)
    elif model_digest(config) != config["model_sha256"]:
        raise ModelFileError(f"{path / CONFIG_FILE} was changed after the model was saved: its settings (arch, "
                             f"native_spacing, sad_sigma, patch_size, halo, ...) do not match model_sha256")
    try:
        spec = ModelSpec(**{k: v for k, v in config.items() if k in ModelSpec.__dataclass_fields__ and k != "arch"},
                         arch=UNetConfig(**config["arch"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"invalid model configuration in {path / CONFIG_FILE}: {exc}") from exc
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise ModelFileError(f"could not read {weights}: {exc}") from exc
    net = PeriodicUNet3D(spec.arch)
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        raise ModelFileError(f"weights in {weights} do not match the architecture: {exc}") from exc
    return net.eval(), spec


def _read_config(path: Path) -> dict:
    cfg = path / CONFIG_FILE
    if not cfg.is_file():
        raise ModelFileError(f"missing {CONFIG_FILE} in model folder {path}")
    try:
        config = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{cfg} is not valid JSON: {exc}") from exc
    version = config.get("format_version") if isinstance(config, dict) else None
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{cfg} has format_version {version!r}; this code reads version {FORMAT_VERSION}")
    if config.get("model_class") != "PeriodicUNet3D":
        raise ModelFileError(f"{cfg}: unknown model_class {config.get('model_class')!r}")
    return config


def registered_models() -> dict[str, Path]:
    """Name -> folder of every model shipped under ``models/`` (folders holding a config.json)."""
    root = Path(str(resources.files("pymatgen_elfml.models")))
    return {p.name: p for p in sorted(root.iterdir()) if (p / CONFIG_FILE).is_file()}


def resolve(name_or_path: str | os.PathLike | None, default: str = DEFAULT_MODEL) -> Path:
    """A registered model name, or a folder path, to the model folder (None: ``default``).

    Raises:
        ValueError: unknown name (the message lists the known ones), or the default model
            while no trained model is registered.
    """
    known = registered_models()
    name = default if name_or_path is None else name_or_path
    if str(name) in known:
        return known[str(name)]
    if Path(name).is_dir():
        return Path(name)
    names = ", ".join(known) or "none yet"
    if str(name) == default:
        raise ValueError(
            f"the default model {default!r} is not registered: no trained weights ship with this "
            f"version yet. Registered models: {names}. Pass the folder of a model saved with save_pretrained()."
        )
    raise ValueError(f"unknown model {str(name)!r}: not a registered name ({names}) nor a model folder")
