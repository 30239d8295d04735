"""assign_wcs: the gwcs against the simulator's geometry, the SIP header, the pointing rotation."""
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from runner.errors import ReferenceFileError
from runner.product import Product
from runner.step import SkipStep
from simulator import headers as H
from simulator import stage2_references as S
from simulator.detectors import get_subarray
from simulator.ramps import readout_for
from steps.assign_wcs.pointing import Pointing, v23tosky
from steps.assign_wcs.step import AssignWcsStep

POINTING = dict(V2_REF=120.67, V3_REF=-527.54, ROLL_REF=37.0, RA_REF=53.16, DEC_REF=-27.78)


@pytest.fixture(scope="module")
def distortion(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    return {det: S.write_distortion(d / f"{det}_distortion.asdf", det)
            for det in ("NRCA1", "MIRIMAGE")}


def rate_product(detector="NRCA1", subarray="SUB400P", *, kind="image", nints=1,
                 exp_type="NRC_IMAGE", roll=37.0, consistent=True):
    """A zero rate product with archive headers from the simulator (pointing made consistent)."""
    sub = get_subarray(detector, subarray)
    instr = "MIRI" if detector.startswith("MIRI") else "NIRCAM"
    ro = readout_for("FAST" if instr == "MIRI" else "RAPID", detector, sub, nints=nints, ngroups=3)
    spec = H.ExposureSpec(instrument=instr, detector=detector, exp_type=exp_type,
                          filter="F770W" if instr == "MIRI" else "F200W",
                          pupil=None if instr == "MIRI" else "CLEAR", subarray=sub, readout=ro,
                          ra_ref=53.16, dec_ref=-27.78, roll_ref=roll, tsovisit=kind == "cube")
    prim = fits.Header([fits.Card(*c) for c in H.primary_cards(spec)])
    sci = fits.Header([fits.Card(*c) for c in H.sci_cards(spec)])
    if consistent:
        sci["V2_REF"], sci["V3_REF"] = S.reference_point_v2v3(detector, sub, *spec.crpix)
    shape = sub.shape if kind == "image" else (nints,) + sub.shape
    arrays = {"SCI": np.zeros(shape, np.float32), "ERR": np.zeros(shape, np.float32),
              "DQ": np.zeros(shape, np.uint32), "VAR_POISSON": np.zeros(shape, np.float32),
              "VAR_RNOISE": np.zeros(shape, np.float32)}
    suffix = "rate" if kind == "image" else "rateints"
    return Product(kind, prim, arrays, ext_headers={"SCI": sci},
                   filename=f"{H.rootname(spec)}_{suffix}.fits")


def test_pointing_reference_point_and_roll():
    from astropy.coordinates import SkyCoord

    p = Pointing(*(POINTING[k] for k in ("V2_REF", "V3_REF", "ROLL_REF", "RA_REF", "DEC_REF")))
    sky = v23tosky(p)
    ra, dec = sky(p.v2_ref, p.v3_ref)
    assert abs(ra - p.ra_ref) < 1e-10 and abs(dec - p.dec_ref) < 1e-10
    ref = SkyCoord(ra, dec, unit="deg")
    up = SkyCoord(*sky(p.v2_ref, p.v3_ref + 10.0), unit="deg")      # +V3
    left = SkyCoord(*sky(p.v2_ref + 0.01, p.v3_ref), unit="deg")    # +V2 (V2 lines curve: small step)
    assert abs(ref.position_angle(up).deg - p.roll_ref) < 1e-6
    assert abs(ref.position_angle(left).deg - (p.roll_ref + 90.0)) < 1e-6
    assert abs(ref.separation(up).arcsec - 10.0) < 1e-6
    # the simulator's numpy attitude matrix is the same rotation, and the model inverts
    v2 = np.array([0.0, 100.0, -300.0, p.v2_ref])
    v3 = np.array([0.0, -480.0, -700.0, p.v3_ref])
    r1, d1 = sky(v2, v3)
    r2, d2 = S.v2v3_to_sky(v2, v3, POINTING)
    assert np.max(np.abs(r1 - r2)) < 1e-10 and np.max(np.abs(d1 - d2)) < 1e-10
    b2, b3 = sky.inverse(r1, d1)
    assert np.max(np.abs(b2 - v2)) < 1e-7 and np.max(np.abs(b3 - v3)) < 1e-7


def test_wcs_round_trip_sip_and_save(distortion, tmp_path):
    from astropy.wcs import WCS

    product = rate_product()
    out = AssignWcsStep(override_distortion=distortion["NRCA1"]).process(product)
    w = out.wcs
    assert [f for f in w.available_frames] == ["detector", "v2v3", "world"]
    assert w.bounding_box.bounding_box() == ((-0.5, 399.5), (-0.5, 399.5))
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 399, 200), rng.uniform(0, 399, 200)
    ra, dec = w(x, y)
    xb, yb = w.invert(ra, dec)
    assert np.max(np.hypot(xb - x, yb - y)) < 1e-6
    # the simulator's own projection (same distortion, numpy attitude) agrees
    sci = out.ext_headers["SCI"]
    ra2, dec2 = S.detector_to_world("NRCA1", "SUB400P", sci, x, y)
    assert np.max(np.abs(ra2 - ra) * 3600) < 1e-6 and np.max(np.abs(dec2 - dec) * 3600) < 1e-6
    xs, ys = S.world_to_detector("NRCA1", "SUB400P", sci, ra, dec)
    assert np.max(np.hypot(xs - x, ys - y)) < 1e-6
    # SIP header through astropy.wcs agrees with the gwcs within 0.01 pixel
    assert sci["CTYPE1"] == "RA---TAN-SIP" and "PC1_1" not in sci and sci["SIPMXERR"] < 0.01
    aw = WCS(sci)
    xa, ya = aw.all_world2pix(ra, dec, 0)
    assert np.max(np.hypot(xa - x, ya - y)) < 0.01
    ra3, dec3 = aw.all_pix2world(x, y, 0)
    assert np.max(np.hypot((ra3 - ra) * np.cos(np.radians(dec)), dec3 - dec)) * 3600 / 0.031 < 0.01
    # the gwcs survives save / open
    path = out.save(tmp_path / "x_assign_wcs.fits")
    back = Product.open(path)
    rb, db = back.wcs(x, y)
    assert np.max(np.abs(rb - ra)) < 1e-12 and np.max(np.abs(db - dec)) < 1e-12


def test_distortion_reference_validates(distortion):
    import warnings

    from stdatamodels.jwst.datamodels import DistortionModel

    for det, path in distortion.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with DistortionModel(path, strict_validation=True) as m:
                m.validate()
                assert m.meta.instrument.detector == det
                assert m.meta.input_units == "pix" and m.meta.output_units == "arcsec"
                v2, v3 = m.model(1023.5 if det == "NRCA1" else 515.5, 1023.5 if det == "NRCA1" else 511.5)
                assert (v2, v3) == pytest.approx(S.detector_aperture(det)[:2], abs=1e-9)


def test_cube_full_frame_miri_and_skips(distortion):
    cube = rate_product("MIRIMAGE", "SUB64", kind="cube", nints=3, exp_type="MIR_IMAGE")
    out = AssignWcsStep(override_distortion=distortion["MIRIMAGE"]).process(cube)
    ra, dec = out.wcs(10.0, 20.0)
    r2, d2 = S.detector_to_world("MIRIMAGE", "SUB64", out.ext_headers["SCI"], 10.0, 20.0)
    assert abs(ra - r2) < 1e-12 and abs(dec - d2) < 1e-12
    assert out.ext_headers["SCI"]["SIPMXERR"] < 0.01
    spec = rate_product("MIRIMAGE", "SUB64", exp_type="MIR_LRS-FIXEDSLIT")
    with pytest.raises(SkipStep, match="MIR_LRS-FIXEDSLIT"):
        AssignWcsStep(override_distortion=distortion["MIRIMAGE"]).process(spec)
    with pytest.raises(ReferenceFileError, match="MIRIMAGE.*NRCA1"):
        AssignWcsStep(override_distortion=distortion["MIRIMAGE"]).process(rate_product())


def _sources_through_assign_wcs(sset, distortion):
    """Per exposure: (max miss in pixels of the truth RA/Dec through our gwcs, |dV2|+|dV3| of
    the header against the reference pixel's V2V3)."""
    out = []
    for uncal, truth_path in zip(sset.exposures, sset.truths):
        truth = json.loads(Path(truth_path).read_text())
        with fits.open(uncal) as hdul:
            prim, sci = hdul[0].header.copy(), hdul["SCI"].header.copy()
        det = prim["DETECTOR"]
        sub = get_subarray(det, prim["SUBARRAY"])
        product = Product("image", prim, {"SCI": np.zeros(sub.shape, np.float32)},
                          ext_headers={"SCI": sci}, filename=Path(uncal).name)
        out_p = AssignWcsStep(override_distortion=distortion[det], sip_approx=False).process(product)
        src = truth["scene"]["sources"]
        ra, dec = [s["ra"] for s in src], [s["dec"] for s in src]
        x, y = out_p.wcs.invert(ra, dec, with_bounding_box=False)
        miss = np.hypot(x - [s["x"] for s in src], y - [s["y"] for s in src])
        # and forward: the truth pixel goes to the truth sky position
        rf, df = out_p.wcs([s["x"] for s in src], [s["y"] for s in src])
        sky_miss = np.hypot((rf - ra) * np.cos(np.radians(dec)), df - np.asarray(dec)) * 3600
        v2, v3 = S.reference_point_v2v3(det, sub, sci["XREF_SCI"], sci["YREF_SCI"])
        out.append((float(miss.max()), float(sky_miss.max() / S.pixel_scale(det)),
                    abs(sci["V2_REF"] - v2) + abs(sci["V3_REF"] - v3)))
    return out


@pytest.mark.parametrize("mode", ["nircam_image", "miri_image"])
def test_simulator_sources_land_on_their_true_pixels(tiny_sets, distortion, mode):
    """The imaging truth (RA, Dec of every source) through our WCS gives the truth pixel."""
    worst = _sources_through_assign_wcs(tiny_sets[mode], distortion)
    assert len(worst) >= 2                                       # every dither
    for miss, sky_miss, dv in worst:
        assert dv < 1e-6, worst                                  # V2/V3_REF of the subarray
        assert miss < 0.05 and sky_miss < 0.05, worst
        assert miss < 1e-4, worst                                # in fact exact


def test_simulator_sources_land_on_their_true_pixels_demo(distortion, tmp_path):
    """Same on the 400x400 demo subarray (distortion and V2/V3_REF offsets larger)."""
    from simulator import modes

    sset = modes.simulate("nircam_image", tmp_path, size="demo", seed=2)
    worst = _sources_through_assign_wcs(sset, distortion)
    for miss, sky_miss, dv in worst:
        assert dv < 1e-6 and miss < 0.05 and sky_miss < 0.05, worst
