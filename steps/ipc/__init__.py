"""ipc: interpixel-capacitance correction by convolution with the reference deconvolution kernel.

The algorithm lives in :mod:`steps.ipc.ipc_deconvolution`.
"""
