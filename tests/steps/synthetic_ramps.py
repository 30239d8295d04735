"""Tiny synthetic up-the-ramp generator with known truth, for unit tests of jump and ramp_fit."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticRamps:
    """Synthetic ramps and their truth.

    Attributes
    ----------
    data : float32 (nints, ngroups, ny, nx), DN
    groupdq : uint8, same shape (SATURATED set where the true signal passed ``saturation``)
    pixeldq : uint32 (ny, nx)
    gain : float32 (ny, nx), e/DN
    readnoise : float32 (ny, nx), CDS read noise, DN
    rate : float64 (ny, nx), true count rate, DN/s
    cr_mask : bool (nints, ngroups, ny, nx), True on the group where a cosmic ray arrived
    cr_amp : float64, same shape, CR amplitude in DN (0 elsewhere)
    tgroup, tframe : float, s
    nframes : int
    """

    data: np.ndarray
    groupdq: np.ndarray
    pixeldq: np.ndarray
    gain: np.ndarray
    readnoise: np.ndarray
    rate: np.ndarray
    cr_mask: np.ndarray
    cr_amp: np.ndarray
    tgroup: float
    tframe: float
    nframes: int


def make_ramps(rate, *, nints=1, ngroups=10, gain=2.0, readnoise=12.0, tgroup=10.0, nframes=1,
               groupgap=0, cr_fraction=0.0, cr_amp_range=(200.0, 2000.0), saturation=None, seed=0):
    """Make ramps with Poisson noise, read noise, optional cosmic rays and saturation.

    Parameters
    ----------
    rate : ndarray (ny, nx)
        True count rate, DN/s.
    nints, ngroups : int
    gain : float
        e/DN.
    readnoise : float
        CDS read noise, DN (each read has rn/sqrt(2)).
    tgroup : float
        Group time, s. With ``nframes == 1`` and ``groupgap == 0`` one frame per group
        (tframe = tgroup); otherwise tframe = tgroup / (nframes + groupgap).
    nframes, groupgap : int
        Frames averaged per group and frames skipped after each group (they still integrate),
        as the JWST readout patterns (BRIGHT2: 2, 0; MEDIUM8: 8, 2). Frame ``f`` is read at
        ``(f + 1) * tframe``; group ``g`` averages frames ``g * (nframes + groupgap) + k``,
        ``k < nframes``; each frame read has noise ``readnoise / sqrt(2)``.
    cr_fraction : float
        Probability per pixel and integration of one cosmic ray (uniformly in groups 1..n-1; with
        multi-frame groups it arrives before a uniformly chosen frame of that group, so the group
        holds a diluted part of it).
    cr_amp_range : (float, float)
        CR amplitude range, DN (uniform).
    saturation : float, optional
        Saturation level, DN: groups whose accumulated true signal exceeds it get SATURATED.
    seed : int

    Returns
    -------
    SyntheticRamps
    """
    rng = np.random.default_rng(seed)
    rate = np.asarray(rate, dtype=np.float64)
    ny, nx = rate.shape
    shape = (nints, ngroups, ny, nx)
    if nframes != 1 or groupgap != 0:
        return _make_multiframe(rng, rate, nints, ngroups, gain, readnoise, tgroup, int(nframes),
                                int(groupgap), cr_fraction, cr_amp_range, saturation)
    # electrons arriving in each group interval (the first read is after one group time)
    lam = np.broadcast_to(rate * gain * tgroup, shape)
    electrons = np.cumsum(rng.poisson(lam).astype(np.float64), axis=1)
    cr_mask = np.zeros(shape, bool)
    cr_amp = np.zeros(shape)
    if cr_fraction > 0 and ngroups > 1:
        hit = rng.random((nints, ny, nx)) < cr_fraction
        grp = rng.integers(1, ngroups, size=(nints, ny, nx))
        amp = rng.uniform(*cr_amp_range, size=(nints, ny, nx))
        ii, yy, xx = np.nonzero(hit)
        gg = grp[ii, yy, xx]
        cr_mask[ii, gg, yy, xx] = True
        cr_amp[ii, gg, yy, xx] = amp[ii, yy, xx]
    signal = electrons / gain + np.cumsum(cr_amp, axis=1)
    noise = rng.normal(0.0, readnoise / np.sqrt(2.0), size=shape)
    data = (signal + noise).astype(np.float32)
    gdq = np.zeros(shape, np.uint8)
    if saturation is not None:
        gdq[signal >= saturation] = 2
        gdq = np.maximum.accumulate(gdq, axis=1).astype(np.uint8)
    return SyntheticRamps(
        data=data, groupdq=gdq, pixeldq=np.zeros((ny, nx), np.uint32),
        gain=np.full((ny, nx), gain, np.float32), readnoise=np.full((ny, nx), readnoise, np.float32),
        rate=rate, cr_mask=cr_mask, cr_amp=cr_amp, tgroup=float(tgroup), tframe=float(tgroup),
        nframes=int(nframes),
    )


def _make_multiframe(rng, rate, nints, ngroups, gain, readnoise, tgroup, nframes, groupgap,
                     cr_fraction, cr_amp_range, saturation):
    """Frame-level simulation: Poisson electrons per frame, groups average their frames."""
    ny, nx = rate.shape
    shape = (nints, ngroups, ny, nx)
    period = nframes + groupgap
    tframe = tgroup / period
    nfr = ngroups * period - groupgap
    data = np.empty(shape, np.float32)
    signal = np.empty(shape)
    cr_mask = np.zeros(shape, bool)
    cr_amp = np.zeros(shape)
    lam = rate * gain * tframe
    for i in range(nints):
        # cosmic ray: group in 1..n-1, arriving just before frame k of that group
        cr_frame_amp = np.zeros((nfr, ny, nx))
        if cr_fraction > 0 and ngroups > 1:
            hit = rng.random((ny, nx)) < cr_fraction
            grp = rng.integers(1, ngroups, size=(ny, nx))
            k = rng.integers(0, nframes, size=(ny, nx))
            amp = rng.uniform(*cr_amp_range, size=(ny, nx))
            yy, xx = np.nonzero(hit)
            cr_mask[i, grp[yy, xx], yy, xx] = True
            cr_amp[i, grp[yy, xx], yy, xx] = amp[yy, xx]
            cr_frame_amp[grp[yy, xx] * period + k[yy, xx], yy, xx] = amp[yy, xx]
        acc = np.zeros((ny, nx))
        crs = np.zeros((ny, nx))
        gsum = np.zeros((ny, nx))
        gtrue = np.zeros((ny, nx))
        for f in range(nfr):
            acc += rng.poisson(lam)
            crs += cr_frame_amp[f]
            g, k = divmod(f, period)
            if k >= nframes:
                continue
            frame = acc / gain + crs
            gtrue += frame
            gsum += frame + rng.normal(0.0, readnoise / np.sqrt(2.0), size=(ny, nx))
            if k == nframes - 1:
                data[i, g] = gsum / nframes
                signal[i, g] = gtrue / nframes
                gsum[...] = 0.0
                gtrue[...] = 0.0
    gdq = np.zeros(shape, np.uint8)
    if saturation is not None:
        gdq[signal >= saturation] = 2
        gdq = np.maximum.accumulate(gdq, axis=1).astype(np.uint8)
    return SyntheticRamps(
        data=data, groupdq=gdq, pixeldq=np.zeros((ny, nx), np.uint32),
        gain=np.full((ny, nx), gain, np.float32), readnoise=np.full((ny, nx), readnoise, np.float32),
        rate=rate, cr_mask=cr_mask, cr_amp=cr_amp, tgroup=float(tgroup), tframe=float(tframe),
        nframes=int(nframes),
    )
