"""OutlierDetectionStep: flag residual cosmic rays and bad pixels (jwst ``outlier_detection``, S_OUTLIR).

Modes (chosen from EXP_TYPE / TSOVISIT / the product kind, as jwst does):

- imaging (NRC_IMAGE, MIR_IMAGE, NIS_IMAGE, FGS_IMAGE, ...): a ProductSet of several exposures.
  Each exposure is drizzled alone onto the common grid (``resample_data=True``) and written to a
  disk-backed stack (raw file, plain reads/writes) in the set's working folder (``in_memory=False``, the default) or kept in
  memory; the weighted median is formed in row blocks, blotted back to each exposure and compared
  (:func:`steps.outlier_detection.imaging.flag_cr`). Flagged pixels get DQ
  ``OUTLIER | DO_NOT_USE``; SCI is left as it is (jwst behaviour: later steps skip them through
  DQ). Each member is emitted as ``<member rootname>_crf.fits`` and replaced in the set
  (``ProductSet.update``) so resample uses the flags. With ``resample_data=False`` the stack is
  the inputs themselves (all on one pixel grid) and only the ``snr1`` test applies.
  Memory: the median grid plus one exposure (and one row block of the stack).
- time series (TSOVISIT true, NRC_TSIMAGE, NRC_TSGRISM, NIS_SOSS, NRS_BRIGHTOBJ,
  MIR_LRS-SLITLESS): each science ``cube`` member (``_calints``) is compared with the running
  median over ``rolling_window_width`` integrations; emitted as ``_crfints``. A single cube
  Product is flagged and returned (the recipe saves it as ``_crfints``).
- coronagraphy (NRC_CORON, MIR_LYOT, MIR_4QPM): as time series with one median over all
  integrations (no running window).

Spectroscopic and IFU modes are not implemented (the step is SKIPPED with that message).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from runner import Product, SkipStep, Step, StepParameters
from runner import dqflags
from runner.errors import InputError
from runner.fits_sections import copy_with_primary_header, write_section
from runner.product import rootname as _rootname

from steps.resample.drizzle_images import ImageDrizzler, blot, build_mask
from steps.resample.drizzle_images import intensity_scale
from steps.resample.output_grid import make_output_wcs, mean_pixel_area
from steps.resample.step import (background_to_remove, drizzle_inputs, member_geometry,
                                 product_wcs)

from .imaging import DiskStack, compute_weight_threshold, flag_cr, median_of_stack, parse_pair
from .timeseries import flag_cube_outliers

OUTLIER_BITS = np.uint32(dqflags.pixel["OUTLIER"] | dqflags.pixel["DO_NOT_USE"])
TSO_TYPES = {"NRC_TSIMAGE", "NRC_TSGRISM", "NIS_SOSS", "NRS_BRIGHTOBJ", "MIR_LRS-SLITLESS"}
CORON_TYPES = {"NRC_CORON", "MIR_LYOT", "MIR_4QPM"}
IMAGE_TYPES = {"NRC_IMAGE", "MIR_IMAGE", "NIS_IMAGE", "FGS_IMAGE", "NRC_TACQ", "NRC_TACONFIRM"}
#: working bytes per element of a row block in time-series mode (SCI, ERR, DQ, median, residual, ...)
TSO_BYTES_PER_ELEMENT = 48
GROUP_KEYS = ("PROGRAM", "OBSERVTN", "VISIT", "VISITGRP", "SEQ_ID", "ACT_ID", "EXPOSURE")


class OutlierDetectionParameters(StepParameters):
    """Parameters of outlier_detection (jwst OutlierDetectionStep names and defaults)."""

    weight_type: Literal["ivm", "exptime"] = Field("ivm", description="Drizzle weights of the single resampled images.")
    pixfrac: float = Field(1.0, gt=0.0, le=1.0, description="Drizzle drop size for the single resampled images.")
    kernel: str = Field("square", description="Drizzle kernel for the single resampled images.")
    fillval: str = Field("NaN", description="Fill value of the single resampled images.")
    maskpt: float = Field(0.7, ge=0.0, le=1.0, description="Fraction of the mean weight below which a pixel is left out of the median.")
    snr: str = Field("5.0 4.0", description="Signal-to-noise thresholds (neighbourhood, pixel), in ERR units.")
    scale: str = Field("1.2 0.7", description="Multipliers of the blotted median's derivative (neighbourhood, pixel).")
    backg: float = Field(0.0, description="Background level added to the blotted median (data units).")
    kernel_size: str = Field("7 7", description="IFU mode only (not implemented here).")
    threshold_percent: float = Field(99.8, description="IFU mode only (not implemented here).")
    rolling_window_width: int = Field(25, ge=0, description="Time series: running-median window in integrations (<=1: one median).")
    ifu_second_check: bool = Field(False, description="IFU mode only (not implemented here).")
    save_intermediate_results: bool = Field(False, description="Emit the median image (_median) as well.")
    resample_data: bool = Field(True, description="Imaging: resample exposures onto a common grid before the median.")
    good_bits: str = Field("~DO_NOT_USE", description="DQ bits that do not exclude a pixel (jwst bit-flag syntax).")
    in_memory: bool = Field(False, description="Keep the single resampled images in memory instead of a disk-backed stack.")
    robust_median: bool = Field(
        True, description="Imaging: keep at least 3 values per pixel in the median, reject a lone value beyond 4 robust sigma "
                          "of the others, subtract the blotted median's derivative noise floor (webbcal); False: jwst's median and test.")
    tso_noise: Literal["err", "robust"] = Field(
        "err", description="Time series: sigma from ERR (jwst) or the per-pixel MAD across integrations (webbcal).")


def _member_rootname(pset, index, filename):
    """Rootname of association member ``index`` as the association names it.

    Earlier stage-3 steps spill updated members to ``<working dir>/NNNN_<name>``; the emitted
    per-member product (``_crf``) must keep the exposure's own rootname, not the spill name.
    """
    import re

    asn = getattr(pset, "asn_product", None)
    members = getattr(asn, "members", None) or []
    if 0 <= index < len(members):
        return _rootname(members[index].path)
    return re.sub(r"^(\d{4}_)+", "", _rootname(filename))


class SpilledProduct:
    """An emitted per-member product that already lives in the set's working folder.

    Holding only its primary header keeps memory bounded while the runner collects the emitted
    outputs; ``save`` re-reads the spilled file, applies the (runner-stamped) header, writes it.
    """

    file_extension = ".fits"

    def __init__(self, path, meta, filename):
        self.path = Path(path)
        self.meta = meta.copy()
        self.filename = filename

    @property
    def rootname(self):
        return _rootname(self.filename)

    def save(self, path, overwrite=True):
        """Copy the spilled file with the (stamped) primary header, streaming its arrays."""
        if not overwrite and Path(path).exists():
            raise InputError(f"{path}: exists (overwrite=False)")
        return copy_with_primary_header(self.path, path, self.meta, filename=Path(path).name)


def _truthy(value):
    return value in (True, "T", "True", "TRUE", "true", 1)


def detect_mode(get, kind=None):
    """'imaging', 'tso', 'coron' or 'spec' from EXP_TYPE / TSOVISIT / product kind."""
    exp_type = str(get("EXP_TYPE") or "").strip().upper()
    if exp_type in CORON_TYPES:
        return "coron"
    if exp_type in TSO_TYPES or _truthy(get("TSOVISIT")):
        return "tso"
    if exp_type in IMAGE_TYPES or exp_type.endswith("_IMAGE"):
        return "cube" if kind == "cube" else "imaging"
    if kind == "cube":
        return "tso"
    if exp_type == "":
        return "imaging"
    return "spec"


class OutlierDetectionStep(Step):
    """Flag outliers by comparing each exposure (or integration) with a median."""

    alias = "outlier_detection"
    class_name = "OutlierDetectionStep"
    Parameters = OutlierDetectionParameters
    reference_types = ()
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_OUTLIR"
    chunking = "rows"  # time series: each pixel against its running median over integrations (imaging sets are never chunked)

    # -- dispatch ----------------------------------------------------------------------------
    def process(self, product):
        if isinstance(product, Product):
            mode = detect_mode(product.get, product.kind)
            if product.kind == "cube" and mode in ("tso", "coron", "cube"):
                self.flag_cube(product, rolling=(mode != "coron"))
                return product
            if mode == "spec":
                raise SkipStep(f"outlier detection for EXP_TYPE {product.get('EXP_TYPE')} is not implemented")
            raise SkipStep("imaging outlier detection needs at least two exposures (a product set)")
        indices = product.indices("science")
        if not indices:
            raise InputError(f"{product.name}: no science members")
        first = product.members[indices[0]].path
        from astropy.io import fits

        with fits.open(first, memmap=True) as hdul:
            naxis = hdul["SCI"].header["NAXIS"]
            primary, scihdr = hdul[0].header, hdul["SCI"].header

            def get(key, default=None):
                return primary.get(key, scihdr.get(key, default))
            mode = detect_mode(get, "cube" if naxis == 3 else "image")
        if mode in ("tso", "coron", "cube"):
            for i in indices:
                cube = product.open(i, lazy=True)
                if cube.kind != "cube":
                    raise InputError(f"{cube.filename}: time-series outlier detection needs a cube (calints) product")
                if cube.section("DQ") is None:
                    cube.dq = np.zeros(cube.data.shape, np.uint32)       # small files only: no DQ to update
                    self.flag_cube(cube, rolling=(mode != "coron"))
                    where = product.update(i, cube)
                else:
                    where = product.working_copy(i)
                    self.flag_cube_file(where, cube, rolling=(mode != "coron"))
                    cube.meta["S_OUTLIR"] = "COMPLETE"
                    copy_with_primary_header(where, where, cube.meta)
                self.emit(SpilledProduct(where, cube.meta, cube.filename), "crfints",
                          rootname=_member_rootname(product, i, cube.filename))
                del cube
            return product
        if mode == "spec":
            raise SkipStep(f"outlier detection for EXP_TYPE {get('EXP_TYPE')} is not implemented")
        if len(indices) < 2:
            raise SkipStep("imaging outlier detection needs at least two exposures")
        self.flag_imaging(product, indices)
        return product

    # -- time series -------------------------------------------------------------------------
    def flag_cube(self, cube, rolling=True):
        """Flag a cube product's DQ in place; returns the number of new flags."""
        p = self.params
        snr1, _ = parse_pair(p.snr, "snr")
        usable = build_mask(cube.dq, p.good_bits) if cube.dq is not None else None
        window = p.rolling_window_width if rolling else 0
        mask = flag_cube_outliers(cube.data, cube.err, usable, snr=snr1, rolling_window_width=window,
                                  maskpt=p.maskpt, noise=p.tso_noise)
        if cube.dq is None:
            cube.dq = np.zeros(cube.data.shape, np.uint32)
        before = np.count_nonzero(cube.dq & dqflags.pixel["DO_NOT_USE"])
        cube.dq = np.asarray(cube.dq, np.uint32) | (mask.astype(np.uint32) * OUTLIER_BITS)
        added = int(np.count_nonzero(cube.dq & dqflags.pixel["DO_NOT_USE"]) - before)
        self.log.info("%s: %d new outlier pixels (%.3f %%)", cube.filename, added, 100 * added / mask.size)
        cube.meta["S_OUTLIR"] = "COMPLETE"
        return added

    def flag_cube_file(self, path, cube, rolling=True, max_block_bytes=128 << 20):
        """Flag the DQ of a cube member's working copy ``path`` in blocks of rows.

        Each pixel is compared with its own running median over integrations, so blocks of rows
        (all integrations) give exactly the flags of the whole cube while holding at most
        ``max_block_bytes`` of it; DQ is written back into the file block by block.

        Returns the number of new flags.
        """
        p = self.params
        snr1, _ = parse_pair(p.snr, "snr")
        sci, err, dq = cube.section("SCI"), cube.section("ERR"), cube.section("DQ")
        nints, ny, nx = sci.shape
        window = p.rolling_window_width if rolling else 0
        per_row = nints * nx * TSO_BYTES_PER_ELEMENT
        rows = max(1, int(max_block_bytes // max(per_row, 1)))
        added = 0
        for r0 in range(0, ny, rows):
            key = (slice(None), slice(r0, min(ny, r0 + rows)))
            data = sci[key]
            flags = np.asarray(dq[key], np.uint32)
            mask = flag_cube_outliers(data, err[key] if err is not None else None,
                                      build_mask(flags, p.good_bits), snr=snr1,
                                      rolling_window_width=window, maskpt=p.maskpt, noise=p.tso_noise,
                                      rows_per_block=data.shape[1])
            new = flags | (mask.astype(np.uint32) * OUTLIER_BITS)
            added += int(np.count_nonzero(new & dqflags.pixel["DO_NOT_USE"])
                         - np.count_nonzero(flags & dqflags.pixel["DO_NOT_USE"]))
            write_section(path, "DQ", key, new)
            del data, flags, mask, new
        total = nints * ny * nx
        self.log.info("%s: %d new outlier pixels (%.3f %%)", cube.filename, added, 100 * added / total)
        return added

    # -- imaging ------------------------------------------------------------------------------
    def flag_imaging(self, pset, indices):
        """Single-drizzle, median, blot and flag each science member of ``pset``."""
        p = self.params
        snr = parse_pair(p.snr, "snr")
        scale = parse_pair(p.scale, "scale")
        geos, groups = [], {}
        for i in indices:
            wcs, shape, get = member_geometry(pset.members[i].path)
            geos.append((wcs, shape))
            key = tuple(str(get(k)) for k in GROUP_KEYS) if all(get(k) is not None for k in GROUP_KEYS) else ("member", i)
            groups.setdefault(key, []).append(i)
        group_list = list(groups.values())
        if len(group_list) < 2:
            raise SkipStep("imaging outlier detection needs at least two exposures")

        if p.resample_data:
            grid = make_output_wcs(geos)
            shape = grid.shape
        else:
            shapes = {g[1] for g in geos}
            if len(shapes) != 1:
                raise InputError("resample_data=False needs inputs of one shape")
            grid, shape = None, shapes.pop()
        n = len(group_list)
        workdir = Path(pset.working_dir) if pset.working_dir else Path(tempfile.mkdtemp(prefix="webbcal-outlier-"))
        workdir.mkdir(parents=True, exist_ok=True)
        if p.in_memory:
            sci_stack = np.empty((n,) + tuple(shape), np.float32)
            wht_stack = np.empty((n,) + tuple(shape), np.float32)
            stack_files = []
        else:
            stack_files = [workdir / "outlier_single_sci.dat", workdir / "outlier_single_wht.dat"]
            sci_stack = DiskStack(stack_files[0], (n,) + tuple(shape))
            wht_stack = DiskStack(stack_files[1], (n,) + tuple(shape))
        try:
            thresholds = []
            for g, members in enumerate(group_list):
                if p.resample_data:
                    driz = ImageDrizzler(grid, pixfrac=p.pixfrac, kernel=p.kernel, fillval="NaN",
                                         with_variance=False, with_context=False)
                    for i in members:
                        q = pset.open(i)
                        wcs = product_wcs(q)
                        data, weight, _v, iscale, exptime = drizzle_inputs(q, wcs, p.weight_type, p.good_bits)
                        driz.add(data, wcs, weight, iscale=iscale, exptime=exptime)
                        del q, data, weight
                    arrays = driz.arrays()
                    sci_plane, wht_plane = arrays["SCI"], arrays["WHT"]
                    del driz, arrays
                else:
                    (i,) = members[:1]
                    q = pset.open(i)
                    from steps.resample.drizzle_images import build_driz_weight
                    from steps.resample.step import exposure_time

                    sci_plane = np.asarray(q.data, np.float32) - np.float32(background_to_remove(q.get))
                    wht_plane = build_driz_weight(sci_plane, q.dq, q.var_rnoise, p.weight_type,
                                                  p.good_bits, exposure_time(q.get))
                    del q
                thresholds.append(compute_weight_threshold(wht_plane, p.maskpt))
                sci_stack[g], wht_stack[g] = sci_plane, wht_plane
                del sci_plane, wht_plane
            median = (median_of_stack(sci_stack, wht_stack, thresholds) if p.robust_median else
                      median_of_stack(sci_stack, wht_stack, thresholds, min_good=0, reject_nsigma=None))
        finally:
            del sci_stack, wht_stack
            for f in stack_files:
                Path(f).unlink(missing_ok=True)

        if p.save_intermediate_results:
            from astropy.io import fits as _fits

            med = Product("image", pset.meta.copy(), {"SCI": median}, {}, {"SCI": _fits.Header()},
                          filename=f"{pset.name}_median.fits", wcs=grid.wcs if grid is not None else None)
            self.emit(med, "median")

        total_new = total_pix = 0
        for i in indices:
            q = pset.open(i)
            bkg = background_to_remove(q.get) or p.backg
            if p.resample_data:
                wcs = product_wcs(q)
                pixar = q.get("PIXAR_SR")
                iscale = intensity_scale(pixar, mean_pixel_area(wcs, q.data.shape)) if pixar else 1.0
                blotted = blot(median, grid, wcs, q.data.shape, iscale=1.0 / iscale)
                mask = flag_cr(q.data, q.err if q.err is not None else np.zeros_like(q.data),
                               blotted, snr=snr, scale=scale, backg=bkg, deriv_noise_floor=p.robust_median)
            else:
                err = np.nan_to_num(q.err) if q.err is not None else np.zeros_like(q.data)
                with np.errstate(invalid="ignore"):
                    mask = np.abs(q.data - (median + bkg)) > snr[0] * err
            if q.dq is None:
                q.dq = np.zeros(q.data.shape, np.uint32)
            before = np.count_nonzero(q.dq & dqflags.pixel["DO_NOT_USE"])
            q.dq = np.asarray(q.dq, np.uint32) | (mask.astype(np.uint32) * OUTLIER_BITS)
            added = int(np.count_nonzero(q.dq & dqflags.pixel["DO_NOT_USE"]) - before)
            total_new += added
            total_pix += mask.size
            self.log.info("%s: %d new outlier pixels (%.3f %%)", q.filename, added, 100 * added / mask.size)
            q.meta["S_OUTLIR"] = "COMPLETE"
            where = pset.update(i, q)
            self.emit(SpilledProduct(where, q.meta, q.filename), "crf",
                      rootname=_member_rootname(pset, i, q.filename))
            del q, mask
        return total_new, total_pix
