"""bkg_subtract: background members combined with clipping and subtracted."""
import numpy as np
import pytest
from astropy.io import fits

from runner import Product, SkipStep
from runner.association import AssociationProduct, Member
from steps.bkg_subtract.combine import combine_backgrounds, robust_level
from steps.bkg_subtract.step import BackgroundStep


def test_combine_rejects_outliers():
    rng = np.random.default_rng(1)
    imgs = [5.0 + rng.normal(0, 0.1, (50, 50)).astype(np.float32) for _ in range(5)]
    imgs[2][10, 10] = 500.0          # a cosmic ray in one background member
    bkg, n = combine_backgrounds(imgs)
    assert abs(bkg[10, 10] - 5.0) < 0.3 and n[10, 10] == 4
    assert abs(np.median(bkg) - 5.0) < 0.01
    assert abs(robust_level(imgs[0]) - 5.0) < 0.01


def make(tmp_path, name, value, seed):
    rng = np.random.default_rng(seed)
    data = (value + rng.normal(0, 0.05, (40, 40))).astype(np.float32)
    p = Product("image", fits.Header({"INSTRUME": "MIRI", "DETECTOR": "MIRIMAGE", "EXP_TYPE": "MIR_IMAGE"}),
                {"SCI": data, "ERR": np.ones_like(data), "DQ": np.zeros((40, 40), np.uint32)}, filename=name)
    return p.save(tmp_path / name)


def test_step_subtracts_background_members(tmp_path):
    sci_path = make(tmp_path, "sci_rate.fits", 12.0, 0)
    bkgs = [make(tmp_path, f"b{i}_rate.fits", 7.0, i + 1) for i in range(3)]
    sci = Product.open(sci_path)
    sci.asn_product = AssociationProduct("p", [Member(sci_path, "science")] + [Member(b, "background") for b in bkgs])
    out = BackgroundStep().process(sci)
    assert abs(np.median(out.data) - 5.0) < 0.01


def test_step_skips_without_background(tmp_path):
    sci = Product.open(make(tmp_path, "sci_rate.fits", 12.0, 0))
    with pytest.raises(SkipStep, match="no background members"):
        BackgroundStep().process(sci)
