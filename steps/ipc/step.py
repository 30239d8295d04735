"""IPCStep: plugin over :func:`steps.ipc.ipc_deconvolution.correct_ipc`."""
import numpy as np

from runner import Step, StepParameters

from .ipc_deconvolution import correct_ipc

#: full-frame (ny, nx) and reference border of the detectors: NIR 4-pixel border,
#: MIRI 4 reference columns on each side
_MIRI_FULL = (1024, 1032)
_NIR_FULL = (2048, 2048)



class IPCParameters(StepParameters):
    """Parameters of ipc (none beyond the common ones)."""


class IPCStep(Step):
    """Interpixel-capacitance correction by convolution with the IPC deconvolution kernel."""

    alias = "ipc"
    class_name = "IPCStep"
    Parameters = IPCParameters
    reference_types = ("ipc",)
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_IPC"
    chunking = "integrations"  # 2-D convolution of whole frames

    def process(self, product):
        product.conform()
        ref = self.reference("ipc")
        kernel = ref.array("SCI")
        if kernel.ndim == 4:
            kernel = ref.array("SCI", product)
        xstart = int(product.get("SUBSTRT1", 1) or 1)
        ystart = int(product.get("SUBSTRT2", 1) or 1)
        ny, nx = product.data.shape[-2:]
        if str(product.get("INSTRUME", "")).upper() == "MIRI":
            X = xstart - 1 + np.arange(nx)
            refcol = (X < 4) | (X >= _MIRI_FULL[1] - 4)
            ref_mask = np.broadcast_to(refcol, (ny, nx))
            correct_ipc(product.data, kernel, ref_mask=np.ascontiguousarray(ref_mask))
        else:
            correct_ipc(product.data, kernel, pixeldq=product.pixeldq, xstart=xstart,
                        ystart=ystart, full_shape=_NIR_FULL)
        return product
