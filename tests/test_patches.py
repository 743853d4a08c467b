"""Wrap-around patch extraction and stitching."""

import numpy as np
import pytest

from pymatgen_elfml.patches import extract, patch_starts, stitch


@pytest.fixture
def field():
    return np.random.default_rng(0).random((20, 24, 18))


def test_extract_equals_np_take_wrap(field):
    starts = np.array([[18, -3, 7], [0, 0, 0], [5, 23, 17]])
    patches = extract(field, starts, (6, 5, 4))
    for p, s in zip(patches, starts):
        ref = field
        for axis, (start, size) in enumerate(zip(s, (6, 5, 4))):
            ref = np.take(ref, np.arange(start, start + size), axis=axis, mode="wrap")
        np.testing.assert_array_equal(p, ref)


@pytest.mark.parametrize("stride,size,offset", [(6, 6, (0, 0, 0)), (4, 4, (1, 3, 2)), (8, 8, (5, 2, 7)), (4, 7, (3, 0, 1))])
def test_extract_then_stitch_is_exact(field, stride, size, offset):
    starts = patch_starts(field.shape, stride, offset)
    out = stitch(extract(field, starts, size), starts, field.shape)
    np.testing.assert_allclose(out, field, rtol=1e-15, atol=0)


def test_non_overlapping_tiling_is_bitwise_exact():
    f = np.random.default_rng(1).random((16, 16, 24))
    starts = patch_starts(f.shape, 8, (3, 5, 1))
    np.testing.assert_array_equal(stitch(extract(f, starts, 8), starts, f.shape), f)


def test_patches_larger_than_the_cell_repeat_it():
    f = np.arange(27.0).reshape(3, 3, 3)
    p = extract(f, np.array([[0, 0, 0]]), 7)[0]
    np.testing.assert_array_equal(p, np.tile(f, (3, 3, 3))[:7, :7, :7])


def test_uncovered_points_are_reported(field):
    with pytest.raises(RuntimeError, match="not covered"):
        stitch(extract(field, np.array([[0, 0, 0]]), 4), np.array([[0, 0, 0]]), field.shape)
    with pytest.raises(ValueError, match="stride"):
        patch_starts(field.shape, 0)
