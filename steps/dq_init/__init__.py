"""dq_init: combine the MASK reference DQ with the science pixel DQ.

The algorithm lives in :mod:`steps.dq_init.mask_dq`.
"""
