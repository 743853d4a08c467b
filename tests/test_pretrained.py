"""Model folders: registry, save/load, and every way a weights folder can be broken."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from pymatgen_elfml import pretrained
from pymatgen_elfml.nn import PeriodicUNet3D, UNetConfig
from pymatgen_elfml.predictor import ElfPredictor
from pymatgen_elfml.pretrained import ModelFileError, ModelSpec, load_model, save_model


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def test_saved_folder_is_complete_and_reloads_strictly(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    assert config["format_version"] == pretrained.FORMAT_VERSION
    assert config["trained"] is False and len(config["weights_sha256"]) == 64
    net, spec = load_model(model_copy)
    assert spec.arch == UNetConfig(**config["arch"])
    assert not net.training


def test_default_model_is_trained_and_beats_the_best_constant():
    """The shipped default model on the ten smallest held-out test-split structures (never seen
    in training or model selection): its mean ELF error must be clearly below that of the best
    constant for each cell (the cell's own mean ELF, an oracle baseline). Measured when it
    shipped: 0.073 vs 0.089; the same network with random weights: 0.37."""
    import json

    import numpy as np

    from pymatgen_elfml.io import elf_from_elfcar
    from pymatgen_elfml.reference.build import read_jsonl
    from pymatgen_elfml.reference.store import read_record

    predictor = ElfPredictor.from_pretrained(device="cpu")
    assert predictor.spec.trained
    folder = Path(__file__).resolve().parents[1] / "data" / "v1"
    splits = json.loads((folder / "splits.json").read_text())
    rows = sorted((r for r in read_jsonl(folder / "manifest.jsonl") if splits[r["id"]] == "test"),
                  key=lambda r: (int(np.prod(r["grid"])), r["id"]))[:10]
    model, constant = [], []
    for row in rows:
        rec = read_record(folder / row["file"], sha256=row["sha256"])
        elf = elf_from_elfcar(predictor.predict(rec.structure, grid=rec.elf.shape))
        model.append(float(np.abs(elf - rec.elf).mean()))
        constant.append(float(np.abs(rec.elf.mean() - rec.elf).mean()))
    assert np.mean(model) < 0.9 * np.mean(constant), (model, constant)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'no-such-model'.*registered name \("):
        ElfPredictor.from_pretrained("no-such-model")


def test_registered_models_are_loadable():
    for name in pretrained.registered_models():
        net, spec = load_model(pretrained.resolve(name))
        assert spec.trained, f"registered model {name} must be a trained one"


def test_missing_weights(model_copy):
    (model_copy / "weights.pt").unlink()
    with pytest.raises(ModelFileError, match="missing weights"):
        ElfPredictor.from_pretrained(model_copy)


def test_missing_config(model_copy):
    (model_copy / "config.json").unlink()
    with pytest.raises(ModelFileError, match="missing config.json"):
        load_model(model_copy)


def test_truncated_weights_fail_the_checksum(model_copy):
    blob = (model_copy / "weights.pt").read_bytes()
    (model_copy / "weights.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelFileError, match="corrupted"):
        load_model(model_copy)


def _rewrite(model_copy, payload: bytes):
    """Replace weights.pt and fix the checksum, so that the later checks are reached."""
    import hashlib

    (model_copy / "weights.pt").write_bytes(payload)
    config = json.loads((model_copy / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256(payload).hexdigest()
    (model_copy / "config.json").write_text(json.dumps(config))


def test_garbage_weights_with_matching_checksum(model_copy):
    _rewrite(model_copy, b"not a torch file at all")
    with pytest.raises(ModelFileError, match="could not read"):
        load_model(model_copy)


def test_pickled_objects_are_refused(model_copy, tmp_path):
    """weights_only=True: a checkpoint holding arbitrary Python objects is not loaded."""
    path = tmp_path / "evil.pt"
    torch.save({"payload": ModelSpec()}, path)
    _rewrite(model_copy, path.read_bytes())
    with pytest.raises(ModelFileError, match="could not read"):
        load_model(model_copy)


def test_strict_keys(model_copy, tmp_path):
    other = PeriodicUNet3D(UNetConfig(base_channels=4, depth=1, groups=2))
    path = tmp_path / "other.pt"
    torch.save(other.state_dict(), path)
    _rewrite(model_copy, path.read_bytes())
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        load_model(model_copy)


def test_bad_json_version_and_arch(model_copy):
    cfg = model_copy / "config.json"
    good = json.loads(cfg.read_text())
    cfg.write_text("{ not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(model_copy)
    cfg.write_text(json.dumps({**good, "format_version": 99}))
    with pytest.raises(ModelFileError, match="format_version 99"):
        load_model(model_copy)
    cfg.write_text(json.dumps({**good, "arch": {**good["arch"], "groups": 3}}))
    with pytest.raises(ModelFileError, match="invalid model configuration"):
        load_model(model_copy)


def test_spec_must_match_the_network(tmp_path):
    net = PeriodicUNet3D(UNetConfig(base_channels=4, depth=1, groups=2))
    with pytest.raises(ValueError, match="differs"):
        save_model(net, ModelSpec(), tmp_path)
    with pytest.raises(ValueError, match="multiple of"):
        ModelSpec(arch=UNetConfig(base_channels=4, depth=3, groups=2), patch_size=10, halo=1)
