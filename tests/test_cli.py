"""The pymatgen-elfml command line."""

import shutil
import subprocess

import numpy as np
import pytest
from pymatgen.io.vasp import Poscar
from pymatgen.io.vasp.outputs import Chgcar, Elfcar

from pymatgen_elfml.cli import main


@pytest.fixture
def poscar(tmp_path, NiAl):
    path = tmp_path / "POSCAR"
    Poscar(NiAl).write_file(path)
    return path


def test_sad_command(poscar, tmp_path, capsys):
    out = tmp_path / "CHGCAR_SAD"
    assert main(["sad", str(poscar), "-o", str(out), "--spacing", "0.2"]) == 0
    chg = Chgcar.from_file(out)
    assert chg.data["total"].mean() == pytest.approx(41, rel=1e-6)
    assert "wrote" in capsys.readouterr().out


def test_predict_command_with_grid(poscar, tmp_path, tiny_model_dir):
    out = tmp_path / "ELFCAR"
    args = ["predict", str(poscar), "-o", str(out), "--model", str(tiny_model_dir), "--grid", "12", "12", "12", "--device", "cpu"]
    assert main(args) == 0
    elf = Elfcar.from_file(out).data["total"]
    assert elf.shape == (12, 12, 12) and 0 <= elf.min() and elf.max() <= 1 and np.ptp(elf) > 0
    assert main(args + ["--precision", "bf16"]) == 0
    assert np.abs(Elfcar.from_file(out).data["total"] - elf).max() < 0.02  # random tiny net: bf16 rounding only


def test_errors_are_reported_without_a_traceback(poscar, tmp_path, capsys):
    assert main(["sad", str(tmp_path / "missing.vasp")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["predict", str(poscar), "--model", "no-such-model", "-o", str(tmp_path / "E")]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert not (tmp_path / "E").exists()


def test_console_entry_point_is_installed(poscar, tmp_path):
    exe = shutil.which("pymatgen-elfml")
    assert exe is not None, "the pymatgen-elfml console script is not on PATH (pip install the package)"
    out = tmp_path / "CHGCAR"
    res = subprocess.run([exe, "sad", str(poscar), "-o", str(out), "--spacing", "0.3"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert out.is_file()


def test_version_models_and_unwritable_output_checked_first(poscar, tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and "pymatgen-elfml 0.1" in capsys.readouterr().out
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "elf-metals-v4 (default)" in listing and "elf-metals-v3" in listing

    def must_not_run(*args, **kwargs):
        raise AssertionError("the prediction ran although the output cannot be written")

    monkeypatch.setattr("pymatgen_elfml.predictor.ElfPredictor.from_pretrained", must_not_run)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os

        if os.access(locked, os.W_OK):  # root ignores permissions: use a missing folder instead
            target = tmp_path / "missing" / "ELFCAR"
        else:
            target = locked / "ELFCAR"
        assert main(["predict", str(poscar), "-o", str(target)]) == 2
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err
    assert "cannot write" in err and str(target) in err and "Traceback" not in err


def test_every_subpackage_ships_in_the_wheel():
    """pyproject lists packages explicitly: a new subpackage missing there is absent from a wheel install."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "pymatgen_elfml").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
