"""Simulated exposures: archive layout, stdatamodels validation, headers, truth, associations."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from simulator import modes
from simulator.ramps import RampTruth


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    return {m: modes.simulate(m, root / m, size="tiny", seed=0) for m in modes.MODES}


EXPECTED = {
    "nircam_image": ("NIRCAM", "NRCA1", "NRC_IMAGE", "F200W", "SUB64P", 3),
    "nircam_tso_image": ("NIRCAM", "NRCA3", "NRC_TSIMAGE", "F210M", "SUB64P", 1),
    "miri_lrs_slit": ("MIRI", "MIRIMAGE", "MIR_LRS-FIXEDSLIT", "P750L", "SUB64", 2),
    "nircam_tso_grism": ("NIRCAM", "NRCALONG", "NRC_TSGRISM", "F322W2", "SUBGRISM64", 1),
    "nircam_coron": ("NIRCAM", "NRCALONG", "NRC_CORON", "F444W", "SUB320A335R", 2),
    "niriss_ami": ("NIRISS", "NIS", "NIS_AMI", "F480M", "SUB80", 2),
    "miri_image": ("MIRI", "MIRIMAGE", "MIR_IMAGE", "F770W", "SUB64", 2),
}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_mode_files_validate_with_stdatamodels(tiny_sets, mode):
    from stdatamodels.jwst import datamodels as dm
    s = tiny_sets[mode]
    instr, det, exptype, filt, subname, nexp = EXPECTED[mode]
    assert len(s.exposures) == nexp == len(s.truths) == len(s.ramp_truths)
    for path in s.exposures:
        with warnings.catch_warnings():
            warnings.simplefilter("error")           # validation problems warn by default
            with dm.Level1bModel(path) as m:
                m.validate()
                assert m.data.dtype == np.uint16
                assert m.meta.instrument.name == instr
                assert m.meta.instrument.detector == det
                assert m.meta.exposure.type == exptype
                assert m.meta.instrument.filter == filt
                assert m.meta.subarray.name == subname
                assert m.meta.model_type == "Level1bModel"
                assert len(m.int_times) == m.meta.exposure.nints
                assert len(m.group) == m.meta.exposure.nints * m.meta.exposure.ngroups
            with dm.RampModel(path) as r:
                r.validate()
                assert r.data.dtype == np.float32
                assert r.data.shape == (r.meta.exposure.nints, r.meta.exposure.ngroups,
                                        r.meta.subarray.ysize, r.meta.subarray.xsize)


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_headers_match_request_and_archive_layout(tiny_sets, mode):
    s = tiny_sets[mode]
    for path, tpath in zip(s.exposures, s.truths):
        truth = json.loads(Path(tpath).read_text())
        asked = truth["exposure"]
        with fits.open(path) as h:
            assert [x.name for x in h] == ["PRIMARY", "SCI", "GROUP", "INT_TIMES"]
            p, sci = h[0].header, h["SCI"].header
            assert sci["BITPIX"] == 16 and sci["BZERO"] == 32768
            for key in ("INSTRUME", "DETECTOR", "EXP_TYPE", "FILTER", "SUBARRAY", "SUBSTRT1",
                        "SUBSTRT2", "SUBSIZE1", "SUBSIZE2", "READPATT", "NINTS", "NGROUPS",
                        "NFRAMES", "GROUPGAP", "DRPFRMS1", "FRMDIVSR", "TSOVISIT"):
                assert p[key] == asked[key], key
            for key in ("TFRAME", "TGROUP", "EFFINTTM", "EFFEXPTM"):
                assert p[key] == pytest.approx(asked[key]), key
            assert p["FILENAME"] == Path(path).name
            assert p["DATAMODL"] == "Level1bModel" and p["TELESCOP"] == "JWST"
            assert p["EXPSTART"] < p["EXPMID"] < p["EXPEND"]
            assert sci["NAXIS4"] == p["NINTS"] and sci["NAXIS3"] == p["NGROUPS"]
            assert sci["NAXIS2"] == p["SUBSIZE2"] and sci["NAXIS1"] == p["SUBSIZE1"]
            for key in ("RA_V1", "DEC_V1", "PA_V3", "V2_REF", "V3_REF", "ROLL_REF", "RA_REF",
                        "DEC_REF", "V3I_YANG", "VPARITY", "XREF_SCI", "YREF_SCI"):
                assert key in sci, key
            it = h["INT_TIMES"].data
            assert list(it.columns.names) == [
                "integration_number", "int_start_MJD_UTC", "int_mid_MJD_UTC",
                "int_end_MJD_UTC", "int_start_BJD_TDB", "int_mid_BJD_TDB", "int_end_BJD_TDB"]
            assert np.allclose(it["int_mid_MJD_UTC"], truth["int_mid_mjd_utc"], rtol=0, atol=1e-9)
            assert it["int_start_MJD_UTC"][0] == pytest.approx(p["EXPSTART"], abs=1e-9)
            assert it["int_end_MJD_UTC"][-1] == pytest.approx(p["EXPEND"], abs=1e-9)
            assert Path(path).name.startswith("jw01234")
            assert Path(path).name.endswith(f"_{p['DETECTOR'].lower()}_uncal.fits")
        if mode in ("nircam_tso_image", "nircam_tso_grism"):
            assert p["TSOVISIT"] is True and p["NINTS"] > 1
        if mode == "nircam_coron":
            assert p["CORONMSK"] == "MASKA335R" and p["PUPIL"] == "MASKRND"
        rt = RampTruth.load(Path(path).parent / truth["ramp_truth"])
        assert rt.rate_dn.shape == (p["NINTS"], p["SUBSIZE2"], p["SUBSIZE1"])


def test_imaging_dithers_and_sky_truth(tiny_sets):
    from astropy.wcs import WCS

    from simulator import stage2_references as S2
    from simulator.detectors import get_subarray

    s = tiny_sets["nircam_image"]
    t0 = json.loads(Path(s.truths[0]).read_text())
    to_jy = S2.rate_e_to_jy("NIRCAM", "NRCA1", "F200W", "CLEAR")
    pts = []
    for path, tpath in zip(s.exposures, s.truths):
        t = json.loads(Path(tpath).read_text())
        with fits.open(path) as h:
            assert h[0].header["NUMDTHPT"] == 3
            pts.append(h[0].header["PATT_NUM"])
            sci = h["SCI"].header
            w = WCS(sci, naxis=2)
        sub = get_subarray("NRCA1", h[0].header["SUBARRAY"])
        # V2_REF/V3_REF are the subarray reference pixel's, not the full frame's (~31" away)
        v2, v3 = S2.reference_point_v2v3("NRCA1", sub, sci["XREF_SCI"], sci["YREF_SCI"])
        assert sci["V2_REF"] == pytest.approx(v2, abs=1e-9)
        assert sci["V3_REF"] == pytest.approx(v3, abs=1e-9)
        assert abs(sci["V2_REF"] - S2.detector_aperture("NRCA1")[0]) > 10.0
        src = t["scene"]["sources"]
        ra, dec = [q["ra"] for q in src], [q["dec"] for q in src]
        x, y = np.array([q["x"] for q in src]), np.array([q["y"] for q in src])
        # every source's truth RA/Dec maps to its truth pixel through the distortion ...
        xs, ys = S2.world_to_detector("NRCA1", sub, sci, ra, dec)
        assert np.max(np.hypot(xs - x, ys - y)) < 1e-6
        # ... and, nearly, through the header's linearised TAN WCS
        xa, ya = w.all_world2pix(ra, dec, 0)
        assert np.max(np.hypot(xa - x, ya - y)) < 0.02
        for q in src:
            assert q["flux_jy"] == pytest.approx(q["flux_e_per_s"] * to_jy, rel=1e-12)
        # the scene moves by minus the dither offset (to the distortion's few 1e-4 pixel)
        for a, b in zip(t0["scene"]["sources"], src):
            assert b["x"] - a["x"] == pytest.approx(-t["exposure"]["XOFFSET"] / 0.031, abs=2e-3)
            assert b["y"] - a["y"] == pytest.approx(-t["exposure"]["YOFFSET"] / 0.031, abs=2e-3)
            assert b["ra"] == a["ra"] and b["flux_jy"] == a["flux_jy"]
    assert pts == [1, 2, 3]


@pytest.mark.parametrize("mode", ["nircam_image", "miri_image"])
def test_ramp_truth_includes_qe_and_flat_recovers_scene(tiny_sets, mode):
    """rate_dn = scene * qe / gain, so rate_dn / FLAT = scene / nominal_gain, and the photometric
    chain (x PHOTMJSR x PIXAR_SR) returns the truth flux_jy."""
    from simulator import stage2_references as S2
    from simulator.detectors import detector_properties, get_subarray
    from simulator.scenes import PSF, render_point_sources

    s = tiny_sets[mode]
    t = json.loads(Path(s.truths[0]).read_text())
    exp = t["exposure"]
    det, filt, pupil = exp["DETECTOR"], exp["FILTER"], exp.get("PUPIL")
    instr = exp["INSTRUME"]
    sub = get_subarray(det, exp["SUBARRAY"])
    assert t["pixel_response"]["qe_response"] == {"detector": det, "subarray": sub.name,
                                                  "filter": filt}
    scene = t["scene"]
    psf = PSF(**{k: v for k, v in scene["psf"].items() if k != "half_width"})
    src = scene["sources"]
    rate_e, _ = render_point_sources(sub.shape, [q["x"] for q in src], [q["y"] for q in src],
                                     [q["flux_e_per_s"] for q in src], psf, scene["sky_e_per_s"])
    rate_dn = RampTruth.load(Path(s.exposures[0]).parent / t["ramp_truth"]).rate_dn[0]
    flat = S2.flat_arrays(det, sub, filt)["SCI"]
    g = detector_properties(det).nominal_gain
    good = np.isfinite(flat) & (rate_dn > 0)
    good &= ~sub.cut(detector_properties(det).detector.reference_pixel_mask())
    assert good.mean() > 0.8                               # reference pixels excluded
    rel = (rate_dn / flat * g)[good] / rate_e[good] - 1
    assert np.max(np.abs(rel)) < 1e-5
    # without the QE in the scene the flat would be off by its QE pattern (> 0.8 % rms)
    qe = S2.qe_response(det, sub, filt)
    assert np.std((rate_dn / qe / flat * g)[good] / rate_e[good]) > 0.005
    # MJy/sr x PIXAR_SR: summed over the good pixels, minus the sky, = the sources' janskys
    pixar_sr, _ = S2.pixel_area_sr(det)
    mjysr = rate_dn / flat * S2.photmjsr(instr, filt, pupil)
    to_jy = S2.rate_e_to_jy(instr, det, filt, pupil)
    jy = (mjysr[good].astype(float) * pixar_sr * 1e6).sum() - scene["sky_e_per_s"] * to_jy * good.sum()
    src_only, _ = render_point_sources(sub.shape, [q["x"] for q in src], [q["y"] for q in src],
                                       [q["flux_jy"] for q in src], psf, 0.0)
    assert jy == pytest.approx(src_only[good].sum(), rel=1e-4)
    # and the whole-array truth, where every stamp is on the array
    for q in src:
        assert q["flux_on_array_e_per_s"] * to_jy == pytest.approx(q["flux_jy"], rel=5e-3)


def test_header_cards_need_no_truncation():
    import warnings as _w

    from simulator import headers as H

    for mode in modes.MODES:
        m, sub, ro, _ = modes._setup(mode, "tiny")
        spec = modes._spec(mode, m, sub, ro, dither={"PATTTYPE": "SUBARRAY_DITHER", "PATT_NUM": 1,
                                                     "NUMDTHPT": 3, "XOFFSET": 0.123456789,
                                                     "YOFFSET": -0.333333333, "NOD_TYPE": "X"})
        for cards in (H.primary_cards(spec), H.sci_cards(spec)):
            with _w.catch_warnings():
                _w.simplefilter("error")
                fits.Header([fits.Card(*c) for c in cards if c[0]])


def test_slope_truth_consistent_with_ramps(tiny_sets):
    # the last-minus-first group difference of a bright pixel matches rate_dn * dt
    s = tiny_sets["miri_image"]
    t = json.loads(Path(s.truths[0]).read_text())
    rt = RampTruth.load(Path(s.exposures[0]).parent / t["ramp_truth"])
    with fits.open(s.exposures[0]) as h:
        data = h["SCI"].data.astype(float)
        tgroup = h[0].header["TGROUP"]
        ng = h[0].header["NGROUPS"]
    iy, ix = np.unravel_index(np.argmax(rt.rate_dn[0]), rt.rate_dn[0].shape)
    slope = (data[0, -1, iy, ix] - data[0, 0, iy, ix]) / ((ng - 1) * tgroup)
    assert slope == pytest.approx(rt.rate_dn[0, iy, ix], rel=0.1)


def test_associations_members_exist(tiny_sets):
    kinds = set()
    for mode, s in tiny_sets.items():
        stems = {Path(p).name.replace("_uncal.fits", "") for p in s.exposures}
        assert s.associations
        for apath in s.associations:
            asn = json.loads(Path(apath).read_text())
            kinds.add(asn["asn_type"])
            for key in ("asn_type", "asn_rule", "asn_id", "asn_pool", "program", "target",
                        "version_id", "code_version", "products"):
                assert key in asn
            assert Path(apath).name.endswith("_asn.json")
            for prod in asn["products"]:
                assert prod["name"] and prod["members"]
                for mem in prod["members"]:
                    assert mem["exptype"] in ("science", "psf", "background")
                    stem, suffix = mem["expname"].rsplit("_", 1)
                    assert stem in stems
                    assert (Path(apath).parent / f"{stem}_uncal.fits").exists()
                    if asn["asn_type"] in ("image2", "spec2"):
                        assert suffix in ("rate.fits", "rateints.fits")
                    else:
                        assert suffix in ("cal.fits", "calints.fits")
    assert kinds == {"image2", "image3", "spec2", "spec3", "tso3", "coron3", "ami3"}
    coron = json.loads(Path(tiny_sets["nircam_coron"].associations[-1]).read_text())
    assert [m["exptype"] for m in coron["products"][0]["members"]] == ["science", "psf"]


def test_same_seed_same_bytes(tmp_path):
    a = modes.simulate("miri_image", tmp_path / "a", size="tiny", seed=7)
    b = modes.simulate("miri_image", tmp_path / "b", size="tiny", seed=7)
    c = modes.simulate("miri_image", tmp_path / "c", size="tiny", seed=8)
    for pa, pb, pc in zip(a.exposures + a.truths + a.associations,
                          b.exposures + b.truths + b.associations,
                          c.exposures + c.truths + c.associations):
        assert Path(pa).read_bytes() == Path(pb).read_bytes()
    assert Path(a.exposures[0]).read_bytes() != Path(c.exposures[0]).read_bytes()
    assert not list(Path(tmp_path / "a").glob("*.tmp"))


def test_configurations_and_errors(tiny_sets):
    cfgs = modes.configurations(tiny_sets.values())
    names = {(d, s) for d, s, _ in cfgs}
    assert ("NRCA1", "SUB64P") in names and ("NIS", "SUB80") in names
    assert all(r.ngroups >= 3 for _, _, r in cfgs)
    with pytest.raises(ValueError):
        modes.simulate("nope", "/tmp/x")
    with pytest.raises(ValueError):
        modes.simulate("miri_image", "/tmp/x", size="huge")
