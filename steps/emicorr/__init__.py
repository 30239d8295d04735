"""emicorr: MIRI electromagnetic-interference (EMI) pattern removal.

The algorithm lives in :mod:`steps.emicorr.emi_waveform`.
"""
