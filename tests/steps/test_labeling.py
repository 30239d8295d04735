"""Connected regions and hole filling (steps.jump.labeling) agree with scipy.ndimage exactly."""
import numpy as np
import pytest
from scipy import ndimage

from steps.jump.labeling import fill_holes, label_regions


@pytest.mark.parametrize("seed", range(6))
def test_label_and_fill_match_scipy(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        ny, nx = rng.integers(1, 48, 2)
        mask = rng.random((ny, nx)) < rng.uniform(0.02, 0.75)
        labels, n, slices = label_regions(mask)
        want, n_want = ndimage.label(mask, structure=np.ones((3, 3), bool))
        assert n == n_want
        np.testing.assert_array_equal(labels, want)
        assert slices == ndimage.find_objects(want)
        np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))


def test_ring_hole_is_filled_and_diagonal_pixels_join():
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False                      # a 3x3 hole
    filled = fill_holes(ring)
    assert filled[1:6, 1:6].all() and filled.sum() == 25
    diag = np.eye(5, dtype=bool)                # 8-connected: one region
    labels, n, slices = label_regions(diag)
    assert n == 1 and slices == [(slice(0, 5), slice(0, 5))]
    assert label_regions(np.zeros((4, 4), bool))[1] == 0
