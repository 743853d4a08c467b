"""Periodic layers, SymmAvg3D and the U-Net: equivariance identities, in float32 and float64."""

import numpy as np
import pytest
import torch

from pymatgen_elfml.grid import grid_shape
from pymatgen_elfml.io import validate
from pymatgen_elfml.nn import PeriodicConv3d, PeriodicUNet3D, SymmAvg3D, UNetConfig, periodic_upsample
from pymatgen_elfml.sad import sad_density
from pymatgen_elfml.symmetry import SeitzOps, apply_op, pad_seitz, patch_frame, seitz_ops

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def _roll(x, shift):
    return torch.roll(x, shifts=tuple(shift), dims=(2, 3, 4))


@pytest.mark.parametrize("dtype", DTYPES)
def test_periodic_conv_commutes_with_any_circular_shift(dtype):
    torch.manual_seed(0)
    conv = PeriodicConv3d(2, 3, 5).to(dtype)
    x = torch.rand(1, 2, 7, 8, 9, dtype=dtype)
    assert torch.allclose(conv(_roll(x, (1, -2, 3))), _roll(conv(x), (1, -2, 3)), atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_periodic_upsample_is_periodic(dtype):
    x = torch.rand(1, 1, 4, 6, 8, dtype=dtype)
    up = periodic_upsample(x)
    assert up.shape[2:] == (8, 12, 16)
    assert torch.allclose(periodic_upsample(_roll(x, (1, 1, 1))), _roll(up, (2, 2, 2)), atol=TOL[dtype])
    c = torch.full((1, 1, 4, 4, 4), 0.3, dtype=dtype)
    assert torch.allclose(periodic_upsample(c), torch.full((1, 1, 8, 8, 8), 0.3, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_unet_commutes_with_shifts_by_two_to_the_depth(dtype, depth):
    torch.manual_seed(depth)
    net = PeriodicUNet3D(UNetConfig(base_channels=4, depth=depth, groups=2)).to(dtype).eval()
    m = 2**depth
    x = torch.rand(2, 1, 2 * m, 3 * m, 2 * m, dtype=dtype)
    shift = (m, -m, 2 * m)
    with torch.no_grad():
        y, y_shift = net(x), net(_roll(x, shift))
    assert torch.allclose(y_shift, _roll(y, shift), atol=TOL[dtype])
    assert float(y.min()) >= 0 and float(y.max()) <= 1


def _whole_cell_inputs(structure, spacing=0.3):
    cell = validate(structure)
    ops = seitz_ops(cell)
    shape = grid_shape(cell.lattice, spacing, ops, multiple_of=4)
    rho = sad_density(cell.lattice, cell.frac, cell.numbers, shape, 0.6)
    return rho, ops


def _op_batch(ops_list, extent, dtype):
    mats, mask = pad_seitz([o.as_matrices() for o in ops_list])
    return (torch.as_tensor(mats, dtype=dtype), torch.as_tensor(mask, dtype=dtype),
            torch.as_tensor(np.tile(extent, (len(ops_list), 1)), dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fixture", ["Al4", "Mg2"])
def test_symmavg_output_is_invariant_under_the_sample_ops(fixture, dtype, request):
    rho, ops = _whole_cell_inputs(request.getfixturevalue(fixture))
    noise = np.random.default_rng(0).random(rho.shape)  # a field with no symmetry at all
    x = torch.as_tensor(np.stack([noise, rho])[:, None], dtype=dtype)
    out = SymmAvg3D()(x, *_op_batch([ops, ops], np.ones(3), dtype)).numpy()[:, 0]
    for field in out:
        dev = max(np.abs(apply_op(field, ops, k) - field).max() for k in range(len(ops)))
        assert dev < 10 * TOL[dtype]
    # a symmetric input is left unchanged; the mean is preserved
    np.testing.assert_allclose(out[1], rho, atol=10 * TOL[dtype] * rho.max())
    assert out[0].mean() == pytest.approx(noise.mean(), rel=1e-5)


def test_symmavg_masks_padding_and_identity_is_a_no_op():
    x = torch.rand(2, 3, 4, 4, 8, dtype=torch.float64)
    ident = SeitzOps.identity()
    flip = SeitzOps(np.array([np.eye(3, dtype=int), -np.eye(3, dtype=int)]), np.zeros((2, 3)))
    mats, mask, ext = _op_batch([ident, flip], np.ones(3), torch.float64)
    out = SymmAvg3D()(x, mats, mask, ext)
    assert torch.allclose(out[0], x[0], atol=1e-12)
    inverted = torch.roll(torch.flip(x[1], dims=(1, 2, 3)), shifts=(1, 1, 1), dims=(1, 2, 3))
    assert torch.allclose(out[1], 0.5 * (x[1] + inverted), atol=1e-12)


def test_symmavg_in_a_shifted_frame_uses_t_prime(Mg2):
    """Pooling the field seen from origin o with {R|t'} = pooling in the cell frame, seen from o."""
    rho, ops = _whole_cell_inputs(Mg2)
    noise = np.random.default_rng(2).random(rho.shape)
    shift = np.array([3, 6, 5])
    origin = shift / np.array(rho.shape)
    layer = SymmAvg3D()
    base = layer(torch.as_tensor(noise)[None, None], *_op_batch([ops], np.ones(3), torch.float64))[0, 0]
    shifted_in = torch.as_tensor(np.roll(noise, -shift, axis=(0, 1, 2)))[None, None]
    shifted = layer(shifted_in, *_op_batch([patch_frame(ops, origin)], np.ones(3), torch.float64))[0, 0]
    np.testing.assert_allclose(shifted.numpy(), np.roll(base.numpy(), -shift, axis=(0, 1, 2)), atol=1e-10)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"base_channels": 0}, "base_channels"),
        ({"depth": 7}, "depth"),
        ({"base_channels": 6, "groups": 4}, "groups"),
        ({"dropout": 1.5}, "dropout"),
        ({"symm_input": "yes"}, "symm_input"),
    ],
)
def test_unet_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNetConfig(**kwargs)


def test_unet_rejects_sizes_not_multiple_of_two_to_the_depth():
    net = PeriodicUNet3D(UNetConfig(base_channels=4, depth=2, groups=2))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 1, 8, 8, 6))
