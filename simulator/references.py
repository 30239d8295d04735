"""Reference files in the CRDS JWST formats, describing the simulator's detector truth.

:func:`write_reference` writes one FITS reference file for a (detector, subarray) window,
cut from the full-frame :func:`simulator.detectors.detector_properties` arrays, so that the
values are exactly the truth the ramps were simulated with.

==========  ===================================================================  ==========
REFTYPE     extensions (dtype, shape)                                             datamodel
==========  ===================================================================  ==========
MASK        DQ (uint32, ny x nx), DQ_DEF                                          MaskModel
SATURATION  SCI (float32, raw DN, NaN = NO_SAT_CHECK), DQ, DQ_DEF                 SaturationModel
SUPERBIAS   SCI (float32 DN), ERR (float32 DN, measurement error), DQ, DQ_DEF     SuperBiasModel
LINEARITY   COEFFS (float32, ncoeffs x ny x nx, NaN = NO_LIN_CORR), DQ, DQ_DEF    LinearityModel
DARK        SCI (float32 DN, ngroups x ny x nx; MIRI 2 x ngroups x ny x nx),      DarkModel /
            ERR (same shape), DQ (uint32; MIRI 1 x 1 x ny x nx), DQ_DEF           DarkMIRIModel
GAIN        SCI (float32 e/DN, NaN = NO_GAIN_VALUE, 0 on reference pixels)        GainModel
READNOISE   SCI (float32 DN, CDS noise)                                           ReadnoiseModel
==========  ===================================================================  ==========

The DARK is made for one readout (READPATT, NFRAMES, GROUPGAP, NGROUPS keywords): plane
``g`` is ``dark_rate * t_g`` with ``t_g`` the mean time since reset of group ``g``'s frames
(:meth:`simulator.ramps.Readout.group_times`), so it subtracts directly from data taken with
that readout. Its ERR and the SUPERBIAS ERR are the expected error of a 50-ramp calibration
(``readnoise_cds / sqrt(100)``); SCI values carry no error.

Every primary header has TELESCOP, REFTYPE, INSTRUME, DETECTOR, SUBARRAY, SUBSTRT1/2,
SUBSIZE1/2, FASTAXIS, SLOWAXIS, USEAFTER ('2022-01-01T00:00:00'), PEDIGREE ('GROUND' for
version 1, 'INFLIGHT 2022-07-01 2022-07-30' for version 2), DESCRIP, AUTHOR, DATAMODL,
FILENAME, HISTORY and ``SIMSPEC``, a hash of everything the content depends on (used by
:mod:`simulator.crds_cache` to skip rewriting unchanged files).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from astropy.io import fits

from .detectors import DQ, Subarray, detector_properties, get_detector, get_subarray

__all__ = ["REFTYPES", "write_reference", "reference_spec", "reference_arrays", "USEAFTER",
           "PEDIGREE", "DATAMODEL"]

#: bump when the generated content changes (invalidates cached files)
GENERATOR_VERSION = 2

REFTYPES = ("mask", "saturation", "superbias", "linearity", "dark", "gain", "readnoise")
USEAFTER = "2022-01-01T00:00:00"
PEDIGREE = {1: "GROUND", 2: "INFLIGHT 2022-07-01 2022-07-30"}
DATAMODEL = {"mask": "MaskModel", "saturation": "SaturationModel",
             "superbias": "SuperBiasModel", "linearity": "LinearityModel",
             "dark": "DarkModel", "gain": "GainModel", "readnoise": "ReadnoiseModel"}

_DQ_DESCRIPTIONS = {
    "DO_NOT_USE": "Bad pixel. Do not use.",
    "DEAD": "Dead pixel",
    "HOT": "Hot pixel",
    "WARM": "Warm pixel",
    "NO_GAIN_VALUE": "Gain cannot be measured",
    "NO_LIN_CORR": "Linearity correction not available",
    "NO_SAT_CHECK": "Saturation check not available",
    "UNRELIABLE_BIAS": "Bias variance large",
    "UNRELIABLE_DARK": "Dark variance large",
    "REFERENCE_PIXEL": "Reference pixel",
}
_DQ_NAMES = {
    "mask": ("DO_NOT_USE", "DEAD", "HOT", "WARM", "NO_GAIN_VALUE", "REFERENCE_PIXEL"),
    "saturation": ("DO_NOT_USE", "NO_SAT_CHECK"),
    "superbias": ("DO_NOT_USE", "UNRELIABLE_BIAS"),
    "linearity": ("DO_NOT_USE", "NO_LIN_CORR"),
    "dark": ("DO_NOT_USE", "UNRELIABLE_DARK"),
}
_DARK_EXP_TYPE = {"NIRCAM": "NRC_DARK", "NIRISS": "NIS_DARK", "NIRSPEC": "NRS_DARK",
                  "FGS": "FGS_DARK", "MIRI": "MIR_DARKIMG"}
_SCIENCE_EXP_TYPES = {
    "NIRCAM": "NRC_IMAGE|NRC_GRISM|NRC_WFSS|NRC_CORON|NRC_TSIMAGE|NRC_TSGRISM|NRC_TACQ|",
    "NIRISS": "NIS_IMAGE|NIS_WFSS|NIS_SOSS|NIS_AMI|NIS_TACQ|",
    "NIRSPEC": "NRS_FIXEDSLIT|NRS_IFU|NRS_MSASPEC|NRS_BRIGHTOBJ|NRS_IMAGE|",
    "FGS": "FGS_IMAGE|FGS_FOCUS|",
    "MIRI": "MIR_IMAGE|MIR_LRS-FIXEDSLIT|MIR_LRS-SLITLESS|MIR_4QPM|MIR_LYOT|MIR_CORONCAL|",
}
#: ramps averaged per pixel by the (imaginary) calibration programme; sets the ERR arrays
CALIBRATION_RAMPS = 50


def common_cards(path, rt, det, model, descrip, spec, *, pedigree="GROUND", subarray=None):
    """The primary-header cards every CRDS reference file carries, as (key, value, comment).

    ``subarray`` (a Subarray) adds SUBARRAY, SUBSTRT1/2, SUBSIZE1/2, FASTAXIS, SLOWAXIS.
    """
    cards = [
        ("DATE", "2022-08-01T00:00:00.000", "date this file was created (UTC)"),
        ("ORIGIN", "WEBBCAL", "organization responsible for creating file"),
        ("FILENAME", Path(path).name, "name of the file"),
        ("FILETYPE", "REFERENCE", "type of data in the file"),
        ("DATAMODL", model, "type of data model"),
        ("TELESCOP", "JWST", "telescope used to acquire the data"),
        ("REFTYPE", rt.upper(), "reference file type"),
        ("INSTRUME", det.instrument, "instrument used to acquire the data"),
        ("DETECTOR", det.name, "name of detector used to acquire the data"),
    ]
    if subarray is not None:
        cards += [
            ("SUBARRAY", subarray.name, "subarray used"),
            ("SUBSTRT1", subarray.xstart, "starting pixel in axis 1 direction"),
            ("SUBSTRT2", subarray.ystart, "starting pixel in axis 2 direction"),
            ("SUBSIZE1", subarray.xsize, "number of pixels in axis 1 direction"),
            ("SUBSIZE2", subarray.ysize, "number of pixels in axis 2 direction"),
            ("FASTAXIS", subarray.fastaxis, "fast readout axis direction"),
            ("SLOWAXIS", subarray.slowaxis, "slow readout axis direction"),
        ]
    cards += [
        ("USEAFTER", USEAFTER, "use after date of the reference file"),
        ("PEDIGREE", pedigree, "the pedigree of the reference file"),
        ("DESCRIP", descrip[:68], "description of the reference file"),
        ("AUTHOR", "webbcal simulator", "author of the reference file"),
        ("SIMSPEC", spec, "hash of the simulator inputs of this file"),
    ]
    return cards


def header_from_cards(cards):
    """A FITS header from (key, value, comment) cards; comments dropped where they would not fit."""
    hdr = fits.Header()
    for key, value, comment in cards:
        hdr[key] = (value, comment if len(str(value)) + len(comment) < 55 else "")
    return hdr


def _dq_def(names) -> fits.BinTableHDU:
    values = [DQ[n] for n in names]
    bits = [int(v).bit_length() - 1 for v in values]
    cols = [
        fits.Column(name="BIT", format="J", array=np.array(bits, np.int32)),
        fits.Column(name="VALUE", format="J", bzero=2 ** 31,
                    array=np.array(values, np.uint32)),
        fits.Column(name="NAME", format="40A", array=np.array(names)),
        fits.Column(name="DESCRIPTION", format="80A",
                    array=np.array([_DQ_DESCRIPTIONS[n] for n in names])),
    ]
    return fits.BinTableHDU.from_columns(cols, name="DQ_DEF")


def reference_spec(reftype: str, detector: str, subarray: Subarray | str, *, version: int = 1,
                   readout=None) -> str:
    """A short hash of everything a reference file's content depends on.

    Parameters
    ----------
    reftype, detector, subarray, version, readout
        As for :func:`write_reference`.

    Returns
    -------
    str
        16 hex digits.
    """
    det = get_detector(detector)
    sub = get_subarray(det.name, subarray) if isinstance(subarray, str) else subarray
    rt = reftype.lower()
    parts = [GENERATOR_VERSION, rt, det.name, sub, version if rt in ("gain", "readnoise") else 1]
    if rt == "dark":
        parts.append((readout.readpatt, readout.ngroups, readout.nframes, readout.groupgap,
                      readout.tframe, readout.drop_frames1))
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]


def reference_arrays(reftype: str, detector: str, subarray: Subarray | str, *,
                     version: int = 1, readout=None) -> dict:
    """The arrays a reference file holds, keyed by extension name.

    Parameters
    ----------
    reftype : str
        One of :data:`REFTYPES` (case-insensitive).
    detector : str
    subarray : Subarray or str
    version : int
        Property version (1 or 2); only GAIN and READNOISE differ between versions.
    readout : simulator.ramps.Readout
        Required for DARK.

    Returns
    -------
    dict
        e.g. ``{'SCI': ..., 'ERR': ..., 'DQ': ...}`` (float32 / uint32 arrays).
    """
    det = get_detector(detector)
    sub = get_subarray(det.name, subarray) if isinstance(subarray, str) else subarray
    rt = reftype.lower()
    props = detector_properties(det.name, version=version)
    cut = sub.cut
    err_scale = np.float32(1.0 / np.sqrt(2.0 * CALIBRATION_RAMPS))
    if rt == "mask":
        return {"DQ": cut(props.dq).astype(np.uint32)}
    if rt == "saturation":
        return {"SCI": cut(props.saturation).astype(np.float32),
                "DQ": cut(props.saturation_dq).astype(np.uint32)}
    if rt == "superbias":
        return {"SCI": cut(props.bias).astype(np.float32),
                "ERR": (cut(props.readnoise_cds) * err_scale).astype(np.float32),
                "DQ": cut(props.superbias_dq).astype(np.uint32)}
    if rt == "linearity":
        return {"COEFFS": cut(props.linearity_coeffs).astype(np.float32),
                "DQ": cut(props.linearity_dq).astype(np.uint32)}
    if rt == "gain":
        return {"SCI": cut(props.gain).astype(np.float32)}
    if rt == "readnoise":
        return {"SCI": cut(props.readnoise_cds).astype(np.float32)}
    if rt == "dark":
        if readout is None:
            raise ValueError("a DARK reference needs the readout it is made for (readout=...)")
        times = readout.group_times().astype(np.float32)
        rate = cut(props.dark_rate).astype(np.float32)
        sci = times[:, None, None] * rate[None, :, :]
        err = np.broadcast_to(cut(props.readnoise_cds) * err_scale, sci.shape).astype(np.float32)
        dq = cut(props.dark_dq).astype(np.uint32)
        if det.is_miri:
            sci = np.stack([sci, sci])
            err = np.stack([err, err])
            dq = dq[None, None, :, :]
        return {"SCI": sci.astype(np.float32), "ERR": err, "DQ": dq}
    raise ValueError(f"unknown reference type {reftype!r}; expected one of {REFTYPES}")


def write_reference(reftype: str, path, detector: str, subarray: Subarray | str, *,
                    version: int = 1, readout=None) -> str:
    """Write one reference file.

    Parameters
    ----------
    reftype : str
        'mask', 'saturation', 'superbias', 'linearity', 'dark', 'gain' or 'readnoise'
        (case-insensitive).
    path : str or Path
        Output file (overwritten).
    detector : str
        DETECTOR keyword value.
    subarray : Subarray or str
        The window the reference covers ('FULL' for full frame).
    version : int
        1 or 2 (see :func:`simulator.detectors.detector_properties`).
    readout : simulator.ramps.Readout, optional
        The readout a DARK is made for (required for DARK).

    Returns
    -------
    str
        ``path``.
    """
    det = get_detector(detector)
    sub = get_subarray(det.name, subarray) if isinstance(subarray, str) else subarray
    rt = reftype.lower()
    arrays = reference_arrays(rt, det.name, sub, version=version, readout=readout)
    path = Path(path)

    model = DATAMODEL[rt]
    if rt == "dark" and det.is_miri:
        model = "DarkMIRIModel"
    cards = common_cards(path, rt, det, model,
                         f"Simulated {rt.upper()} for {det.name} {sub.name}",
                         reference_spec(rt, det.name, sub, version=version, readout=readout),
                         pedigree=PEDIGREE[version if rt in ("gain", "readnoise") else 1],
                         subarray=sub)
    cards.append(("SIMVER", version, "detector property version described"))
    hdr = header_from_cards(cards)
    if rt in ("gain", "readnoise", "superbias", "dark"):
        hdr["NOUTPUTS"] = (sub.namps, "number of outputs")
    if rt == "dark":
        hdr["EXP_TYPE"] = (_DARK_EXP_TYPE[det.instrument]
                           if not det.name.startswith("MIRIFU") else "MIR_DARKMRS",
                           "type of data")
        p_exp = _SCIENCE_EXP_TYPES[det.instrument]
        hdr["P_EXP_TY"] = (p_exp, "applicable EXP_TYPE values") if len(p_exp) < 40 else p_exp
        hdr["READPATT"] = (readout.readpatt, "readout pattern")
        hdr["NFRAMES"] = (readout.nframes, "number of frames in group")
        hdr["GROUPGAP"] = (readout.groupgap, "number of frames dropped between groups")
        hdr["NGROUPS"] = (readout.ngroups, "number of groups in integration")
        hdr["DRPFRMS1"] = (readout.drop_frames1, "frames dropped at start of integration")
        if det.is_miri:
            hdr["NINTS"] = (2, "number of integrations")
    hdr.add_history(f"Generated by webbcal simulator.references from detector_properties("
                    f"{det.name!r}, version={version}); values are the simulation truth.")
    hdr.add_history("Documentation: simulator/references.py and simulator/detectors.py.")

    hdus = [fits.PrimaryHDU(header=hdr)]
    for name, array in arrays.items():
        h = fits.ImageHDU(np.ascontiguousarray(array), name=name)
        if rt == "gain" and name == "SCI":
            h.header["BUNIT"] = "ELECTRONS/DN"
        elif name in ("SCI", "ERR") and rt in ("readnoise", "superbias", "dark", "saturation"):
            h.header["BUNIT"] = "DN"
        hdus.append(h)
    if rt in _DQ_NAMES:
        hdus.append(_dq_def(_DQ_NAMES[rt]))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return str(path)
