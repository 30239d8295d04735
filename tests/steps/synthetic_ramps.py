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
               cr_fraction=0.0, cr_amp_range=(200.0, 2000.0), saturation=None, seed=0):
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
        Group time, s (one frame per group: tframe = tgroup, no group gap).
    nframes : int
        Only 1 is simulated exactly (frames are not averaged).
    cr_fraction : float
        Probability per pixel and integration of one cosmic ray (uniformly in groups 1..n-1).
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
