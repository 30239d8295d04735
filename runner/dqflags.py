"""JWST data-quality bit values (pixel DQ; group DQ uses the first eight bits).

Values are those of the reference pipeline, so our products mean the same as the archive's.
"""

pixel = {
    "GOOD": 0,
    "DO_NOT_USE": 1 << 0,
    "SATURATED": 1 << 1,
    "JUMP_DET": 1 << 2,
    "DROPOUT": 1 << 3,
    "OUTLIER": 1 << 4,
    "PERSISTENCE": 1 << 5,
    "AD_FLOOR": 1 << 6,
    "CHARGELOSS": 1 << 7,
    "RESERVED_4": 1 << 8,
    "NON_SCIENCE": 1 << 9,
    "DEAD": 1 << 10,
    "HOT": 1 << 11,
    "WARM": 1 << 12,
    "LOW_QE": 1 << 13,
    "RC": 1 << 14,
    "TELEGRAPH": 1 << 15,
    "NONLINEAR": 1 << 16,
    "BAD_REF_PIXEL": 1 << 17,
    "NO_FLAT_FIELD": 1 << 18,
    "NO_GAIN_VALUE": 1 << 19,
    "NO_LIN_CORR": 1 << 20,
    "NO_SAT_CHECK": 1 << 21,
    "UNRELIABLE_BIAS": 1 << 22,
    "UNRELIABLE_DARK": 1 << 23,
    "UNRELIABLE_SLOPE": 1 << 24,
    "UNRELIABLE_FLAT": 1 << 25,
    "OPEN": 1 << 26,
    "ADJ_OPEN": 1 << 27,
    "FLUX_ESTIMATED": 1 << 28,
    "MSA_FAILED_OPEN": 1 << 29,
    "OTHER_BAD_PIXEL": 1 << 30,
    "REFERENCE_PIXEL": 1 << 31,
}

group = {name: value for name, value in pixel.items() if value < 256}


def interpret_dq_def(table):
    """Map a reference file's DQ_DEF table onto standard pixel bit values.

    Parameters
    ----------
    table : structured array or None
        Rows with ``VALUE`` and ``NAME`` columns, as CRDS reference files carry.

    Returns
    -------
    dict
        ``{reference_bit_value: standard_bit_value}`` for every row whose NAME is a standard flag.
    """
    if table is None:
        return {}
    names = {n.upper(): n for n in table.dtype.names}
    out = {}
    for row in table:
        name = str(row[names["NAME"]]).strip().upper()
        value = int(row[names["VALUE"]])
        if name in pixel and value:
            out[value] = pixel[name]
    return out


def translate(dq, dq_def):
    """Translate a reference DQ array to standard bit values using its DQ_DEF table.

    Parameters
    ----------
    dq : numpy.ndarray
        Integer DQ array from a reference file.
    dq_def : structured array or None
        Its DQ_DEF table; None means the array already uses standard values.

    Returns
    -------
    numpy.ndarray
        uint32 array in standard pixel bit values.
    """
    import numpy as np

    dq = np.asarray(dq).astype(np.uint32)
    mapping = interpret_dq_def(dq_def)
    if not mapping or all(k == v for k, v in mapping.items()):
        return dq
    out = np.zeros_like(dq)
    for ref_value, std_value in mapping.items():
        out[(dq & np.uint32(ref_value)) != 0] |= np.uint32(std_value)
    return out
