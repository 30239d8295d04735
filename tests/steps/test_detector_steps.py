"""The stage-1 step plugins (steps/<alias>/step.py) on tiny in-memory products."""
import numpy as np
import pytest
from astropy.io import fits

from runner import Product, SkipStep
from steps.charge_migration.step import ChargeMigrationStep
from steps.dark_current.step import DarkCurrentStep
from steps.dq_init.step import DQInitStep
from steps.emicorr.emi_waveform import pixel_phase
from steps.emicorr.step import EmiCorrStep
from steps.firstframe.step import FirstFrameStep
from steps.gain_scale.step import GainScaleStep
from steps.group_scale.step import GroupScaleStep
from steps.ipc.step import IPCStep
from steps.lastframe.step import LastFrameStep
from steps.linearity.step import LinearityStep
from steps.persistence.step import PersistenceStep
from steps.refpix.step import RefPixStep
from steps.reset.step import ResetStep
from steps.rscd.step import RscdStep
from steps.saturation.step import SaturationStep
from steps.superbias.step import SuperBiasStep

DNU, SAT = 1, 2


def ramp_product(nints=1, ngroups=5, ny=8, nx=8, instrume="NIRCAM", value=1000.0, **keys):
    meta = fits.Header()
    meta.update({"INSTRUME": instrume, "DETECTOR": "NRCA1" if instrume == "NIRCAM" else "MIRIMAGE",
                 "EXP_TYPE": "NRC_IMAGE" if instrume == "NIRCAM" else "MIR_IMAGE",
                 "NFRAMES": 1, "GROUPGAP": 0, "SUBSTRT1": 1, "SUBSTRT2": 1,
                 "SUBSIZE1": nx, "SUBSIZE2": ny, "SUBARRAY": "FULL", "READPATT": "RAPID"})
    meta.update(keys)
    data = np.full((nints, ngroups, ny, nx), value, np.float32)
    return Product("ramp", meta, {"SCI": data, "PIXELDQ": np.zeros((ny, nx), np.uint32),
                                  "GROUPDQ": np.zeros(data.shape, np.uint8)}, filename="t_uncal.fits")


def write_ref(tmp_path, reftype, arrays, tables=None, **keys):
    hdr = fits.Header()
    hdr.update({"REFTYPE": reftype.upper(), "TELESCOP": "JWST", "SUBSTRT1": 1, "SUBSTRT2": 1})
    hdr.update(keys)
    hdus = [fits.PrimaryHDU(header=hdr)]
    hdus += [fits.ImageHDU(a, name=n) for n, a in arrays.items()]
    for n, t in (tables or {}).items():
        hdus.append(fits.BinTableHDU(t, name=n))
    path = tmp_path / f"{reftype}.fits"
    fits.HDUList(hdus).writeto(path)
    return str(path)


def test_group_scale_step(tmp_path):
    p = ramp_product(NFRAMES=4, FRMDIVSR=4)
    with pytest.raises(SkipStep):
        GroupScaleStep().process(p)
    p = ramp_product(NFRAMES=3, FRMDIVSR=4)
    out = GroupScaleStep().process(p)
    np.testing.assert_allclose(out.data, 1000.0 * 4 / 3, rtol=1e-6)


def test_dq_init_step(tmp_path):
    mask = np.zeros((8, 8), np.uint32)
    mask[2, 3] = 1 | 1024
    path = write_ref(tmp_path, "mask", {"DQ": mask})
    out = DQInitStep(references={"mask": path}).process(ramp_product())
    assert out.pixeldq[2, 3] == 1025 and out.pixeldq.sum() == 1025
    with pytest.raises(SkipStep):
        DQInitStep(references={"mask": None}).process(ramp_product())


def test_saturation_step(tmp_path):
    p = ramp_product()
    p.data[0, 3:, 4, 4] = 60000.0
    path = write_ref(tmp_path, "saturation", {"SCI": np.full((8, 8), 50000.0, np.float32)})
    out = SaturationStep(references={"saturation": path, "superbias": None}).process(p)
    assert (out.groupdq[0, 3:, 3:6, 3:6] == SAT).all() and out.groupdq[0, :3].sum() == 0
    assert (out.groupdq != 0).sum() == 2 * 9


def test_ipc_step(tmp_path):
    k = np.zeros((3, 3), np.float32)
    k[1, 1] = 2.0
    path = write_ref(tmp_path, "ipc", {"SCI": k})
    p = ramp_product(ny=16, nx=16)
    out = IPCStep(references={"ipc": path}).process(p)
    # full frame here is 2048x2048 and this 16x16 sits at its corner: rows/cols 0-3 are reference
    assert (out.data[0, 0, 4:, 4:] == 2000.0).all() and (out.data[0, 0, :4] == 1000.0).all()


def test_superbias_step(tmp_path):
    bias = np.full((8, 8), 300.0, np.float32)
    bias[0, 0] = np.nan
    path = write_ref(tmp_path, "superbias", {"SCI": bias, "DQ": np.zeros((8, 8), np.uint32)})
    out = SuperBiasStep(references={"superbias": path}).process(ramp_product())
    assert out.data[0, 0, 1, 1] == 700.0 and out.data[0, 0, 0, 0] == 1000.0
    assert out.pixeldq[0, 0] == 1 << 22


def test_superbias_step_subarray_cut(tmp_path):
    bias = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    path = write_ref(tmp_path, "superbias", {"SCI": bias})
    p = ramp_product(SUBSTRT1=11, SUBSTRT2=21, SUBARRAY="SUB8")
    out = SuperBiasStep(references={"superbias": path}).process(p)
    np.testing.assert_allclose(out.data[0, 0], 1000.0 - bias[20:28, 10:18])


def test_refpix_step_subarray_and_skip():
    p = ramp_product(ny=16, nx=16, SUBARRAY="SUB16", NOUTPUTS=1)
    p.data[..., 0::2] += 10.0
    out = RefPixStep().process(p)
    np.testing.assert_allclose(out.data, 0.0, atol=1e-4)  # all pixels equal their ref level
    p = ramp_product(ny=16, nx=16, SUBSTRT1=100, SUBSTRT2=100, SUBARRAY="SUB16")
    with pytest.raises(SkipStep, match="no reference pixels"):
        RefPixStep().process(p)
    with pytest.raises(SkipStep, match="subarray"):
        RefPixStep().process(ramp_product(instrume="MIRI"))


def test_linearity_step(tmp_path):
    coeffs = np.zeros((3, 8, 8), np.float32)
    coeffs[1] = 1.0
    coeffs[2] = 1e-5
    coeffs[:, 1, 1] = np.nan
    path = write_ref(tmp_path, "linearity", {"COEFFS": coeffs})
    out = LinearityStep(references={"linearity": path}).process(ramp_product())
    assert out.data[0, 0, 0, 0] == pytest.approx(1010.0)
    assert out.data[0, 0, 1, 1] == 1000.0 and out.pixeldq[1, 1] == 1 << 20


def test_dark_current_step(tmp_path):
    frames = np.arange(20, dtype=np.float32)[:, None, None] * np.ones((1, 8, 8), np.float32)
    path = write_ref(tmp_path, "dark", {"SCI": frames}, NFRAMES=1, GROUPGAP=0)
    out_path = tmp_path / "avg_dark.fits"
    p = ramp_product(ngroups=3, NFRAMES=4, GROUPGAP=1)
    out = DarkCurrentStep(references={"dark": path}, dark_output=str(out_path)).process(p)
    np.testing.assert_allclose(out.data[0, :, 0, 0], 1000.0 - np.array([1.5, 6.5, 11.5]))
    assert fits.getdata(out_path, "SCI").shape == (3, 8, 8)
    from runner.errors import ReferenceFileError
    with pytest.raises(ReferenceFileError, match="needs"):
        DarkCurrentStep(references={"dark": path}).process(ramp_product(ngroups=6, NFRAMES=4))


def test_persistence_step(tmp_path):
    with pytest.raises(SkipStep, match="TRAPDENSITY"):
        PersistenceStep(references={}).process(ramp_product())
    prev = ramp_product()
    prev.groupdq[0, -1, 5, 6] = SAT
    prev_path = tmp_path / "prev_jump.fits"
    prev.save(prev_path)
    out = PersistenceStep(references={}, input_trapsfilled=str(prev_path)).process(ramp_product())
    assert out.pixeldq[5, 6] == 32 and (out.pixeldq != 0).sum() == 1


def test_charge_migration_step():
    p = ramp_product()
    p.data[0, 2:, 1, 1] = 30000.0
    out = ChargeMigrationStep().process(p)
    assert (out.groupdq[0, 2:, 1, 1] == 129).all() and (out.groupdq != 0).sum() == 3
    with pytest.raises(SkipStep):
        ChargeMigrationStep().process(ramp_product(ngroups=2))


def test_gain_scale_step(tmp_path):
    meta = fits.Header()
    rate = Product("image", meta, {"SCI": np.full((4, 4), 2.0, np.float32),
                                   "ERR": np.full((4, 4), 1.0, np.float32),
                                   "VAR_POISSON": np.full((4, 4), 0.5, np.float32)})
    path = write_ref(tmp_path, "gain", {"SCI": np.ones((4, 4), np.float32)}, GAINFACT=2.0)
    out = GainScaleStep(references={"gain": path}).process(rate)
    assert out.data[0, 0] == 4.0 and out.err[0, 0] == 2.0 and out.var_poisson[0, 0] == 2.0
    path2 = str(tmp_path / "g2.fits")
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"REFTYPE": "GAIN"})),
                  fits.ImageHDU(np.ones((4, 4), np.float32), name="SCI")]).writeto(path2)
    with pytest.raises(SkipStep, match="GAINFACT"):
        GainScaleStep(references={"gain": path2}).process(rate)


def test_emicorr_step():
    p = ramp_product(nints=2, ngroups=10, ny=40, nx=64, instrume="MIRI")
    emi = 4.0 * np.sin(2 * np.pi * pixel_phase(2, 10, 40, 64, 390.625))
    p.data += emi.astype(np.float32)
    out = EmiCorrStep(onthefly_corr_freq=[390.625]).process(p)
    assert np.abs(out.data - 1000.0).max() < 0.2
    with pytest.raises(SkipStep, match="MIRI"):
        EmiCorrStep().process(ramp_product())


def test_first_last_frame_steps():
    p = ramp_product(instrume="MIRI")
    FirstFrameStep().process(p)
    LastFrameStep().process(p)
    assert (p.groupdq[:, 0] == DNU).all() and (p.groupdq[:, -1] == DNU).all()
    assert not p.groupdq[:, 1:-1].any()
    with pytest.raises(SkipStep):
        FirstFrameStep().process(ramp_product(ngroups=3))


def test_reset_step(tmp_path):
    ref = np.zeros((2, 3, 8, 8), np.float32)
    ref[:, 1] = 5.0
    path = write_ref(tmp_path, "reset", {"SCI": ref})
    out = ResetStep(references={"reset": path}).process(ramp_product(nints=3, instrume="MIRI"))
    assert (out.data[:, 1] == 995.0).all() and (out.data[:, 2:] == 1000.0).all()


def test_rscd_step(tmp_path):
    table = np.array([("FULL", "FAST", 3), ("GENERIC", "GENERIC", 2)],
                     dtype=[("SUBARRAY", "S12"), ("READPATT", "S12"), ("GROUP_SKIP", "i4")])
    path = write_ref(tmp_path, "rscd", {}, tables={"RSCD_GROUP_SKIP": table})
    p = ramp_product(nints=2, ngroups=8, instrume="MIRI", READPATT="FAST")
    out = RscdStep(references={"rscd": path}).process(p)
    assert not out.groupdq[0].any() and (out.groupdq[1, :3] == DNU).all()
    assert not out.groupdq[1, 3:].any()
    p = ramp_product(nints=2, ngroups=8, instrume="MIRI", READPATT="SLOW", SUBARRAY="SUB64")
    out = RscdStep(references={"rscd": path}).process(p)
    assert (out.groupdq[1, :2] == DNU).all() and not out.groupdq[1, 2:].any()


def test_step_parameters_validated():
    with pytest.raises(Exception):
        SaturationStep(n_pix_grow_sat=-1)
    with pytest.raises(Exception):
        ChargeMigrationStep(signal_threshold=0)
    assert RefPixStep().params.side_smoothing_length == 11
    assert "override_dark" in DarkCurrentStep.parameter_model().model_fields


def test_emicorr_step_timing_from_tframe():
    # subarray rows longer than nx/4 + 13 clocks: the plugin takes the frame time from TFRAME
    ny, nx, extra = 40, 64, 41
    tframe = ny * (nx // 4 + extra) * 10e-6
    p = ramp_product(nints=2, ngroups=10, ny=ny, nx=nx, instrume="MIRI", TFRAME=tframe)
    emi = 4.0 * np.sin(2 * np.pi * pixel_phase(2, 10, ny, nx, 218.3, extra_rowclocks=extra))
    p.data += emi.astype(np.float32)
    out = EmiCorrStep(onthefly_corr_freq=[218.3]).process(p)
    assert np.abs(out.data - 1000.0).max() < 0.2
