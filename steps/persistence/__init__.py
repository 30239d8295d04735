"""persistence: flag pixels expected to carry persistence (flagging only).

The algorithm lives in :mod:`steps.persistence.persistence_flags`.
"""
