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
