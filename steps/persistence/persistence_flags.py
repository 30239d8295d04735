"""Persistence: decide whether the correction can run, and flag affected pixels (no subtraction).

The reference pipeline (jwst ``persistence``) models trapped charge with three references
(TRAPDENSITY, TRAPPARS, PERSAT) and a "traps filled" image carried from the previous exposure;
without those references it skips. It subtracts the predicted persistence and flags
PERSISTENCE where the prediction exceeds ``flag_pers_cutoff`` (DN).

This module is deliberately minimal and honest about it:

* :func:`persistence_skip_reason` reproduces the skip logic: with no ``input_trapsfilled``
  and any of the three trap references missing there is nothing to compute.
* :func:`flag_persistence` only flags. Two inputs are accepted:

  - ``persistence``: a per-pixel estimate of the persistence signal (DN), e.g. the
    ``output_pers`` of a reference-pipeline run; pixels above ``flag_pers_cutoff`` are flagged;
  - ``previously_saturated``: a boolean image of pixels that were SATURATED in the last group
    of the previous exposure (our simple model of ``input_trapsfilled``): they are flagged,
    as such pixels are the ones that release charge in the following exposure.

No persistence signal is subtracted.
"""
import numpy as np

__all__ = ["persistence_skip_reason", "previously_saturated_from_groupdq", "flag_persistence"]

PERSISTENCE = np.uint32(32)
SATURATED = np.uint8(2)


def persistence_skip_reason(trapdensity=None, trappars=None, persat=None, input_trapsfilled=None):
    """Return why persistence cannot run, or None when it can.

    Parameters
    ----------
    trapdensity, trappars, persat : object or None
        The three trap reference files (any non-None value counts as present).
    input_trapsfilled : object or None
        Traps-filled / previous-saturation information from the previous exposure.

    Returns
    -------
    str or None
        A one-line reason to skip, or None.
    """
    if input_trapsfilled is not None:
        return None
    missing = [name for name, ref in (("TRAPDENSITY", trapdensity), ("TRAPPARS", trappars),
                                      ("PERSAT", persat)) if ref is None]
    if missing:
        return ("no persistence model: missing reference(s) " + ", ".join(missing)
                + " and no input_trapsfilled")
    return None


def previously_saturated_from_groupdq(previous_groupdq):
    """Pixels SATURATED in the last group of any integration of a previous exposure.

    Parameters
    ----------
    previous_groupdq : numpy.ndarray
        Group DQ of the previous exposure, uint8 (nints, ngroups, ny, nx).

    Returns
    -------
    numpy.ndarray
        bool (ny, nx).
    """
    return (np.bitwise_or.reduce(previous_groupdq[:, -1], axis=0) & SATURATED) != 0


def flag_persistence(pixeldq, *, persistence=None, previously_saturated=None,
                     flag_pers_cutoff=40.0):
    """Set PERSISTENCE in the pixel DQ where persistence is expected (in place).

    Parameters
    ----------
    pixeldq : numpy.ndarray
        Pixel DQ, uint32 (ny, nx). Modified in place.
    persistence : numpy.ndarray, optional
        Estimated persistence signal per pixel (DN), (ny, nx).
    previously_saturated : numpy.ndarray, optional
        bool (ny, nx): pixels saturated at the end of the previous exposure.
    flag_pers_cutoff : float or None, optional
        Threshold in DN on ``persistence`` (default 40, as jwst). None disables that test.

    Returns
    -------
    int
        Number of pixels newly flagged.
    """
    flag = np.zeros(pixeldq.shape, dtype=bool)
    if persistence is not None and flag_pers_cutoff is not None:
        persistence = np.asarray(persistence)
        if persistence.shape != pixeldq.shape:
            raise ValueError(f"persistence shape mismatch: expected {pixeldq.shape}, "
                             f"found {persistence.shape}")
        with np.errstate(invalid="ignore"):
            flag |= persistence > float(flag_pers_cutoff)
    if previously_saturated is not None:
        previously_saturated = np.asarray(previously_saturated, dtype=bool)
        if previously_saturated.shape != pixeldq.shape:
            raise ValueError(f"previously_saturated shape mismatch: expected {pixeldq.shape}, "
                             f"found {previously_saturated.shape}")
        flag |= previously_saturated
    new = int(np.count_nonzero(flag & ((pixeldq & PERSISTENCE) == 0)))
    pixeldq[flag] |= PERSISTENCE
    return new
