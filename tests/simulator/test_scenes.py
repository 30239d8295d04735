"""Scenes: injected truth is what the rate images contain."""

import json
import math

import numpy as np
import pytest

from simulator import scenes as S


def test_point_source_flux_is_conserved_at_any_subpixel_position():
    psf = S.PSF.for_instrument(2.0, 0.031)
    for x, y in [(30.0, 30.0), (30.37, 29.81), (31.5, 28.5)]:
        img, landed = S.render_point_sources((64, 64), [x], [y], [1234.5], psf)
        assert img.sum() == pytest.approx(1234.5, rel=5e-3)
        assert landed[0] == pytest.approx(1234.5, rel=1e-9)
        # centroid follows the sub-pixel position
        yy, xx = np.mgrid[0:64, 0:64]
        core = (np.hypot(xx - x, yy - y) < 4)
        cx = (img * xx * core).sum() / (img * core).sum()
        cy = (img * yy * core).sum() / (img * core).sum()
        assert cx == pytest.approx(x, abs=0.02) and cy == pytest.approx(y, abs=0.02)


def test_airy_fwhm_and_encircled_energy():
    psf = S.PSF(kind="airy", lam_over_d=3.0)
    # Airy: first dark ring at 1.22 lambda/D; EE there ~ 0.838 of the total
    assert psf.encircled_energy(1.22 * 3.0) == pytest.approx(0.838, abs=0.02)
    half = psf.profile(np.array([psf.fwhm / 2.0]))[0]
    assert half == pytest.approx(0.5, abs=0.01)


def test_star_field_truth_matches_image():
    psf = S.PSF.for_instrument(7.7, 0.11, radius=8)
    rate, truth = S.star_field((64, 72), 5, seed=3, sky=2.0, psf=psf, margin=9)
    json.dumps(truth)
    total = sum(s["flux_on_array_e_per_s"] for s in truth["sources"])
    assert rate.sum() - 2.0 * 64 * 72 == pytest.approx(total, rel=1e-9)
    for s in truth["sources"]:
        assert s["flux_on_array_e_per_s"] == pytest.approx(s["flux_e_per_s"], rel=5e-3)
        assert rate[int(round(s["y"])), int(round(s["x"]))] > 2.0 + 0.01 * s["flux_e_per_s"]


def test_uniform_disk_transit_depth_is_rp_squared():
    lc = S.transit_light_curve(np.array([0.0]), t0=0.0, period=3.0, rp_rs=0.1, a_rs=10.0,
                               inc_deg=90.0)
    assert 1 - lc[0] == pytest.approx(0.01, rel=1e-6)
    # partial overlap against the analytic lens area (uniform disk)
    z, p = 1.02, 0.1
    k0 = math.acos((p * p + z * z - 1) / (2 * p * z))
    k1 = math.acos((1 - p * p + z * z) / (2 * z))
    area = (p * p * k0 + k1 - 0.5 * math.sqrt(4 * z * z - (1 + z * z - p * p) ** 2)) / math.pi
    assert S.occulted_fraction(z, p)[()] == pytest.approx(area, rel=1e-6)


def test_limb_darkened_transit_depth_small_planet():
    # small-planet limit: depth = p^2 I(mu=1) / <I>, <I> = 1 - u1/3 - u2/6
    p, u1, u2 = 0.02, 0.4, 0.25
    d = S.occulted_fraction(0.0, p, u1, u2)[()]
    assert d == pytest.approx(p * p / (1 - u1 / 3 - u2 / 6), rel=2e-3)


def test_tso_image_cube_follows_light_curve():
    t = np.linspace(60000.0, 60000.2, 41)
    rate, truth = S.tso_image_cube((40, 40), t, star_flux=1e5, sky=1.0, period=2.0,
                                   rp_rs=0.1, a_rs=8.0, inc_deg=89.0, u1=0.3, u2=0.2)
    flux = rate.sum(axis=(1, 2)) - 1600.0
    rel = flux / flux[0]
    assert np.allclose(rel, truth["relative_flux"], rtol=1e-9)
    assert truth["transit_depth"] == pytest.approx(1 - rel.min(), rel=1e-9)
    assert 0.009 < truth["central_depth"] < 0.013       # ~ p^2 with limb darkening
    assert rel[0] == 1.0 and rel[20] < 0.99


def test_slit_spectrum_truth_and_nod():
    r1, t1 = S.slit_spectrum((64, 72), nod_offset=-8.0, sky=3.0)
    r2, t2 = S.slit_spectrum((64, 72), nod_offset=8.0, sky=3.0)
    json.dumps(t1)
    diff = r1 - r2                                         # nod subtraction removes the sky
    pos = np.clip(diff, 0, None).sum(axis=1)
    assert np.allclose(pos, t1["spectrum_e_per_s"], rtol=1e-3)
    assert t1["x_source"] == pytest.approx(t1["x_slit"] - 8.0)
    wav = np.array(t1["wavelength_um"])
    assert np.all(np.diff(wav) < 0) and 4.4 < wav[-1] < 6 and 13 < wav[0] < 17
    assert len(t1["lines"]) == 3
    for ln in t1["lines"]:
        yc = ln["y_center"]
        assert S.lrs_wavelength(yc, t1["wave_coeffs"]) == pytest.approx(ln["wavelength_um"], abs=1e-3)


def test_grism_tso_depth_varies_with_wavelength():
    t = np.linspace(0.0, 0.02, 15)
    rate, truth = S.grism_tso((32, 800), t, y_trace=16.0, x_offset=400, period=0.1, a_rs=9.0)
    wav = np.array(truth["wavelength_um"])
    depth = np.array(truth["depth_per_column"])
    assert wav[0] == pytest.approx(2.35 + 0.001 * 400)
    i_feat = np.argmin(abs(wav - 3.3))
    i_cont = np.argmin(abs(wav - 2.9))
    assert depth[i_feat] > depth[i_cont] * 1.1
    col = rate[:, :, i_feat].sum(axis=1) - 32 * truth["sky_e_per_s"]
    assert 1 - col.min() / col[0] == pytest.approx(depth[i_feat], rel=0.05)


def test_coronagraph_companion_contrast():
    psf = S.PSF.for_instrument(4.44, 0.063)
    kw = dict(psf=psf, star_flux=1e6, iwa_pix=9.4, companion_sep_pix=17.5,
              companion_pa_deg=60.0, contrast=2e-3, sky=0.0)
    sci, ts = S.coronagraph_scene((128, 128), **kw)
    ref, tr = S.coronagraph_scene((128, 128), reference=True, reference_flux_ratio=1.12, **kw)
    resid = sci - ref / tr["reference_flux_ratio"]
    c = ts["companion"]
    assert c["x"] < ts["star"]["x"] and c["y"] > ts["star"]["y"]          # PA 60: NE
    assert math.hypot(c["x"] - ts["star"]["x"], c["y"] - ts["star"]["y"]) == pytest.approx(17.5)
    measured = resid.sum()
    assert measured == pytest.approx(c["transmitted_e_per_s"], rel=1e-6)
    contrast = measured / c["transmission_at_center"] / ts["star"]["flux_e_per_s"]
    assert contrast == pytest.approx(2e-3, rel=0.03)
    # the star is suppressed by the mask
    assert ts["star"]["transmitted_e_per_s"] < 0.2 * 1e6


def _splodge_peaks(img, thresh):
    from scipy.ndimage import maximum_filter
    ft = np.abs(np.fft.fftshift(np.fft.fft2(img)))
    ft /= ft.max()
    peaks = (ft == maximum_filter(ft, size=5)) & (ft > thresh)
    return ft, np.argwhere(peaks)


def test_ami_power_spectrum_has_21_baselines():
    n = 80
    img, truth = S.ami_scene((n, n), binary=False, sky=0.0, nfft=513)
    ft, peaks = _splodge_peaks(img, 0.04)
    # 21 baselines, each at +-u, plus the zero-frequency peak
    assert len(peaks) == 43
    pairs, b = S.nrm_baselines()
    lam, pix = 4.8e-6, 0.0656 / 206264.806
    c = n // 2
    found = {tuple(p) for p in peaks}
    for bx, by in b:
        u = bx / lam * pix * n                  # cycles per array along x
        v = by / lam * pix * n
        for sgn in (1, -1):
            target = np.array([c + sgn * v, c + sgn * u])
            d = min(np.hypot(*(np.array(p) - target)) for p in found)
            assert d < 1.5


def test_ami_binary_truth_and_closure_phases():
    n = 80
    b_img, bt = S.ami_scene((n, n), binary=True, separation_mas=150.0, pa_deg=45.0,
                            flux_ratio=0.1, sky=0.0, nfft=513)
    s_img, st = S.ami_scene((n, n), binary=False, sky=0.0, nfft=513)
    comp = bt["companion"]
    sep = math.hypot(comp["x"] - bt["primary"]["x"], comp["y"] - bt["primary"]["y"])
    assert sep * 65.6 == pytest.approx(150.0, rel=1e-6)
    json.dumps(bt)
    # closure phases from the splodge centres: ~0 for a point source, binary signal otherwise
    lam, pix = 4.8e-6, 0.0656 / 206264.806

    def phases(img):
        yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2.0
        out = {}
        for i in range(7):
            for j in range(i + 1, 7):
                bx, by = S.NRM_HOLES_M[j] - S.NRM_HOLES_M[i]
                u, v = bx / lam * pix, by / lam * pix
                out[(i, j)] = np.angle(np.sum(img * np.exp(-2j * np.pi * (u * xx + v * yy))))
        return out

    def closures(ph):
        return np.array([ph[(i, j)] + ph[(j, k)] - ph[(i, k)]
                         for i in range(7) for j in range(i + 1, 7) for k in range(j + 1, 7)])

    wrap = lambda a: (a + np.pi) % (2 * np.pi) - np.pi
    cp_single = wrap(closures(phases(s_img)))
    cp_binary = wrap(closures(phases(b_img)))
    assert np.max(np.abs(cp_single)) < np.radians(0.5)
    assert np.max(np.abs(cp_binary)) > np.radians(2.0)
