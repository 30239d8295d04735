"""TSOPhotometryStep: time-series aperture photometry (jwst ``tso_photometry``) -> ``_phot.ecsv``.

Input: a stage-3 :class:`~runner.product_set.ProductSet` (its science members are ``cube``
products, ``_calints``/``_crfints``), or one ``cube`` Product. Each science member is measured
with :func:`steps.tso_photometry.aperture_photometry.aperture_photometry`; the rows of all
members are stacked, in member order, into one table emitted as ``<rootname>_phot.ecsv``.
The step returns its input unchanged.

What it does, in the reference pipeline's order
------------------------------------------------
1. Target position: ``XREF_SCI``/``YREF_SCI`` (1-based, SCI header) minus 1. A position outside
   the subarray is an :class:`~runner.errors.InputError` naming the file.
2. Units, as jwst's ``convert_data_units``: ``MJy/sr`` -> ``Jy`` (times ``1e6 * PIXAR_SR``);
   ``DN/s`` -> ``electron`` (times ``EFFINTTM * gain`` per pixel, the GAIN reference cut to the
   subarray) when a GAIN reference applies; otherwise the input units are kept, with a warning.
   Variances are scaled by the factor squared.
3. Optional centroiding (``centroid_source``), as jwst's ``tso_source_centroid``: a
   centre-of-mass centroid in a ``search_box_width`` box around the planned position, then in a
   ``fit_box_width`` box around the median of those; the aperture goes to the median centroid,
   or to each integration's centroid with ``moving_centroid`` (failed integrations use the
   median and get a flag). jwst's Gaussian PSF fit (psf_width_x/y, psf_flux) is not done.
4. Aperture sum in a circle of ``radius``, background = mean in the ``radius_inner`` ..
   ``radius_outer`` annulus times the aperture area; errors from ``VAR_POISSON + VAR_RNOISE
   (+ VAR_FLAT)`` (``ERR**2`` when the variances are absent); DO_NOT_USE pixels handled as
   described in :mod:`steps.tso_photometry.aperture_photometry` (``flag`` column).
5. Times: ``MJD`` = INT_TIMES ``int_mid_MJD_UTC`` and ``BJD_TDB`` = ``int_mid_BJD_TDB`` of the
   rows matching ``INTSTART`` .. (``integration_number``). Without a usable INT_TIMES table,
   a warning, ``MJD = EXPSTART + (k - 0.5) * EFFINTTM`` for integration ``k`` (as jwst: resets
   between integrations ignored) and ``BJD_TDB`` NaN.

Reference files: ``gain`` (optional; N/A keeps DN/s) and ``tsophot`` (optional, a retired
CRDS type; when one applies its ``radii`` table row for the exposure's PUPIL, or ``ANY``,
replaces ``radius``/``radius_inner``/``radius_outer``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import QTable, vstack
from pydantic import Field, model_validator

from runner import Product, SkipStep, Step, StepParameters
from runner.atomic import atomic_path
from runner.errors import InputError

from .aperture_photometry import (FLAG_CENTROID_FAILED, FLAG_NAMES, aperture_photometry,
                                  source_centroids)

DO_NOT_USE = 1


class TSOPhotometryParameters(StepParameters):
    """Parameters of tso_photometry (jwst names and defaults)."""

    save_catalog: bool = Field(True, description="Emit the _phot.ecsv catalog (the tso3 product); False only measures.")
    radius: float = Field(3.0, gt=0, description="Aperture radius (pixels).")
    radius_inner: float = Field(4.0, ge=0, description="Background annulus inner radius (pixels).")
    radius_outer: float = Field(5.0, ge=0, description="Background annulus outer radius (pixels); <= radius_inner: no background subtraction.")
    centroid_source: bool = Field(True, description="Centroid the source before photometry (else use XREF_SCI/YREF_SCI).")
    search_box_width: int = Field(41, ge=1, description="Box width (pixels, odd) of the first centroid search around the planned position.")
    fit_box_width: int = Field(11, ge=1, description="Box width (pixels, odd) of the final centroid around the first estimate.")
    moving_centroid: bool = Field(False, description="Place the aperture on each integration's centroid (else on the median centroid).")

    @model_validator(mode="after")
    def _odd_boxes(self):
        for name in ("search_box_width", "fit_box_width"):
            value = getattr(self, name)
            if value % 2 == 0:
                raise ValueError(f"{name}={value}: box widths must be odd")
        return self


class PhotometryCatalog:
    """The light curve (an astropy QTable) saved as ECSV through :meth:`Step.emit`.

    ``meta`` is a FITS header the runner stamps with provenance (CAL_VER, CRDS_CTX, S_*); it is
    copied into the table's metadata (``provenance``) when saved.
    """

    file_extension = ".ecsv"

    def __init__(self, table, rootname=None):
        self.table = table
        self.rootname = rootname
        self.meta = fits.Header()

    def save(self, path):
        """Write the table as ECSV (atomically: temporary file then rename)."""
        path = Path(path)
        table = self.table.copy(copy_data=False)
        table.meta["provenance"] = {k: v for k, v in self.meta.items() if k not in ("COMMENT", "HISTORY", "")}
        with atomic_path(path) as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        return path


class TSOPhotometryStep(Step):
    """Circular-aperture photometry of the target in every integration: the _phot.ecsv light curve."""

    alias = "tso_photometry"
    class_name = "TSOPhotometryStep"
    Parameters = TSOPhotometryParameters
    reference_types = ("tsophot", "gain")
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_TSPHOT"
    chunking = None  # the aperture sits on the median centroid of all integrations; members stream (see measure)

    def process(self, product):
        if isinstance(product, Product):
            if product.kind != "cube":
                raise SkipStep(f"tso_photometry needs a cube (calints) product, not {product.kind}")
            table = self.measure(product)
        else:
            indices = product.indices("science")
            if not indices:
                raise InputError(f"{product.name}: no science members for tso_photometry")
            tables = []
            for i in indices:
                cube = product.open(i, lazy=True)
                if cube.kind != "cube":
                    raise InputError(f"{cube.filename}: tso_photometry needs a cube (calints/crfints) product, "
                                     f"found {cube.kind}")
                tables.append(self.measure(cube))
                del cube
            table = tables[0] if len(tables) == 1 else vstack(tables, metadata_conflicts="silent")
        if self.params.save_catalog:
            self.emit(PhotometryCatalog(table, product.rootname), "phot")
        self.table = table
        return product

    # -----------------------------------------------------------------------------------------
    def measure(self, cube):
        """The light-curve table of one cube product.

        The cube is read through ``cube.section`` (a lazily opened member is read from its
        file): the centroid passes walk blocks of integrations (at most ``_BLOCK_BYTES`` of
        frames at a time) and the photometry reads only the cutout around the aperture and
        annulus, so memory does not grow with the frame size and only by a cutout per
        integration with their number.
        """
        p = self.params
        source = cube.filename or "cube"
        sci = cube.section("SCI")
        nints, ny, nx = sci.shape
        xref, yref = self.require(cube, "XREF_SCI", "YREF_SCI")
        x0, y0 = float(xref) - 1.0, float(yref) - 1.0
        if not (-0.5 <= x0 <= nx - 0.5 and -0.5 <= y0 <= ny - 0.5):
            raise InputError(f"{source}: target position XREF_SCI, YREF_SCI = ({xref}, {yref}) (1-based) is "
                             f"outside the {nx} x {ny} subarray {cube.get('SUBARRAY', '')}")
        radius, r_in, r_out = self._radii(cube)
        reader = _CalibratedReader(self, cube)

        flag_extra = np.zeros(nints, np.int32)
        centroid_x = centroid_y = None
        if p.centroid_source:
            cx, cy = self._centroids(reader, nints, x0, y0, p.search_box_width, r_in)
            if np.isfinite(cx).any() and np.isfinite(cy).any():
                gx, gy = float(np.nanmedian(cx)), float(np.nanmedian(cy))
                centroid_x, centroid_y = self._centroids(reader, nints, gx, gy, p.fit_box_width, r_in)
            else:
                centroid_x, centroid_y = cx, cy
            ok = np.isfinite(centroid_x) & np.isfinite(centroid_y)
            if not ok.any():
                self.log.warning("%s: source could not be centroided; using the planned position", source)
                xc, yc = x0, y0
            else:
                mx, my = float(np.nanmedian(centroid_x[ok])), float(np.nanmedian(centroid_y[ok]))
                if p.moving_centroid:
                    xc = np.where(ok, centroid_x, mx)
                    yc = np.where(ok, centroid_y, my)
                    flag_extra[~ok] |= FLAG_CENTROID_FAILED
                    self.log.info("%s: moving centroid, median x,y = %.2f,%.2f", source, mx, my)
                else:
                    xc, yc = mx, my
                    self.log.info("%s: median centroid x,y = %.2f,%.2f", source, mx, my)
        else:
            xc, yc = x0, y0
            self.log.info("%s: planned centre x,y = %.2f,%.2f", source, x0, y0)

        # the cutout holding every integration's aperture and annulus (clipped to the subarray)
        rmax = max(radius, r_out if r_out > r_in else radius)
        xs, ys = np.atleast_1d(np.asarray(xc, float)), np.atleast_1d(np.asarray(yc, float))
        cx0 = max(int(np.floor(np.nanmin(xs) - rmax - 0.5)), 0)
        cx1 = min(int(np.ceil(np.nanmax(xs) + rmax + 0.5)) + 1, nx)
        cy0 = max(int(np.floor(np.nanmin(ys) - rmax - 0.5)), 0)
        cy1 = min(int(np.ceil(np.nanmax(ys) + rmax + 0.5)) + 1, ny)
        data, var, bad = reader.read((slice(None), slice(cy0, cy1), slice(cx0, cx1)), with_variance=True)
        res = aperture_photometry(data, var, bad, np.asarray(xc, float) - cx0, np.asarray(yc, float) - cy0,
                                  radius, r_in, r_out)
        del data, var, bad
        res["xcenter"] = res["xcenter"] + cx0
        res["ycenter"] = res["ycenter"] + cy0
        res["flag"] |= flag_extra
        if np.any(res["flag"] & 4):
            self.log.warning("%s: %d integration(s) have no good aperture pixel (NaN rows, flag 4)",
                             source, int(np.count_nonzero(res["flag"] & 4)))
        mjd, bjd = self._times(cube, nints)
        return self._table(cube, res, mjd, bjd, reader.unit, radius, r_in, r_out, centroid_x, centroid_y)

    @staticmethod
    def _centroids(reader, nints, x, y, box_width, source_radius):
        """Per-integration centroids, reading whole frames a block of integrations at a time."""
        ny, nx = reader.frame_shape
        step = max(1, int(_BLOCK_BYTES // (ny * nx * 8 * 3)))
        cx = np.full(nints, np.nan)
        cy = np.full(nints, np.nan)
        for i0 in range(0, nints, step):
            data, _var, bad = reader.read((slice(i0, min(i0 + step, nints)),), with_variance=False)
            cx[i0:i0 + len(data)], cy[i0:i0 + len(data)] = source_centroids(
                data, bad, x, y, box_width, source_radius=source_radius)
        return cx, cy

    def _radii(self, cube):
        p = self.params
        ref = self.reference("tsophot", required=False)
        if ref is None:
            return p.radius, p.radius_inner, p.radius_outer
        radii = ref.tables.get("RADII")
        pupil = str(cube.get("PUPIL", "ANY") or "ANY").strip().upper()
        if radii is not None and len(radii):
            names = [str(n).strip().upper() for n in radii["pupil"]]
            row = names.index(pupil) if pupil in names else (names.index("ANY") if "ANY" in names else None)
            if row is not None:
                r = radii[row]
                self.log.info("radii from TSOPHOT %s (pupil %s)", ref.name, names[row])
                return float(r["radius"]), float(r["radius_inner"]), float(r["radius_outer"])
        self.log.warning("TSOPHOT %s has no row for pupil %s; using the step parameters", ref.name, pupil)
        return p.radius, p.radius_inner, p.radius_outer

    def _times(self, cube, nints):
        """Mid-times (MJD UTC) and BJD_TDB (MJD form) of the cube's integrations."""
        tab = cube.tables.get("INT_TIMES")
        source = cube.filename
        if tab is not None and len(tab) > 0:
            names = tab.dtype.names or ()
            if "int_mid_MJD_UTC" in names:
                start = int(cube.get("INTSTART", 1) or 1)
                numbers = np.asarray(tab["integration_number"]) if "integration_number" in names else np.arange(1, len(tab) + 1)
                wanted = np.arange(start, start + nints)
                pos = {int(n): k for k, n in enumerate(numbers)}
                if all(int(w) in pos for w in wanted):
                    rows = np.array([pos[int(w)] for w in wanted])
                    mjd = np.asarray(tab["int_mid_MJD_UTC"], float)[rows]
                    bjd = (np.asarray(tab["int_mid_BJD_TDB"], float)[rows] if "int_mid_BJD_TDB" in names
                           else np.full(nints, np.nan))
                    return mjd, bjd
                self.log.warning("%s: INT_TIMES does not cover integrations %d..%d; times computed from EXPSTART",
                                 source, start, start + nints - 1)
            else:
                self.log.warning("%s: INT_TIMES has no int_mid_MJD_UTC column; times computed from EXPSTART", source)
        else:
            self.log.warning("%s: no INT_TIMES table; MJD computed from EXPSTART and EFFINTTM, BJD_TDB is NaN", source)
        expstart = cube.get("EXPSTART")
        tint = cube.get("EFFINTTM")
        if expstart is None or tint is None:
            self.log.warning("%s: no EXPSTART/EFFINTTM either; MJD is NaN", source)
            return np.full(nints, np.nan), np.full(nints, np.nan)
        start = int(cube.get("INTSTART", 1) or 1)
        k = np.arange(start, start + nints) - start + 1
        mjd = float(expstart) + (k - 0.5) * float(tint) / 86400.0
        return mjd, np.full(nints, np.nan)

    def _table(self, cube, res, mjd, bjd, unit, radius, r_in, r_out, centroid_x, centroid_y):
        if r_out > r_in:
            info = (f"Photometry measured in a circular aperture of r={radius} pixels. Background "
                    f"calculated as the mean in a circular annulus with r_inner={r_in} pixels and "
                    f"r_outer={r_out} pixels.")
        else:
            info = f"Photometry measured in a circular aperture of r={radius} pixels. No background subtraction."
        meta = {
            "instrument": cube.get("INSTRUME"), "detector": cube.get("DETECTOR"),
            "channel": cube.get("CHANNEL"), "subarray": cube.get("SUBARRAY"),
            "filter": cube.get("FILTER"), "pupil": cube.get("PUPIL"),
            "target_name": cube.get("TARGNAME"), "target": cube.get("TARGPROP", cube.get("TARGNAME")),
            "apertures": info, "input_file": cube.filename,
            "flag_bits": {int(k): v for k, v in FLAG_NAMES.items()},
        }
        tbl = QTable(meta={k: v for k, v in meta.items() if v is not None})
        tbl["MJD"] = mjd
        tbl["BJD_TDB"] = bjd
        pix = u.pix
        # annulus_mean is per pixel; jwst labels it with the data unit, as here
        for name in ("aperture_sum", "aperture_sum_err", "annulus_sum", "annulus_sum_err",
                     "annulus_mean", "annulus_mean_err", "aperture_bkg", "aperture_bkg_err",
                     "net_aperture_sum", "net_aperture_sum_err"):
            tbl[name] = res[name] << unit
        tbl["xcenter"] = res["xcenter"] << pix
        tbl["ycenter"] = res["ycenter"] << pix
        if centroid_x is not None:
            tbl["centroid_x"] = np.asarray(centroid_x, float) << pix
            tbl["centroid_y"] = np.asarray(centroid_y, float) << pix
        if cube.wcs is not None:
            try:
                ra, dec = cube.wcs(res["xcenter"], res["ycenter"])
                tbl["aperture_ra_icrs"] = np.asarray(ra, float) << u.deg
                tbl["aperture_dec_icrs"] = np.asarray(dec, float) << u.deg
            except Exception as exc:  # noqa: BLE001 - sky positions are a convenience
                self.log.warning("%s: aperture sky positions not computed (%s)", cube.filename, exc)
        tbl["flag"] = res["flag"]
        return tbl


#: bytes of frames read at a time by the centroid passes
_BLOCK_BYTES = 64 << 20


class _CalibratedReader:
    """Blocks of a cube in the photometry's output unit (Jy, electron, or the input's).

    Units, as jwst's ``convert_data_units``: ``MJy/sr`` -> ``Jy`` (times ``1e6 * PIXAR_SR``);
    ``DN/s`` -> ``electron`` (times ``EFFINTTM * gain`` per pixel) when a GAIN reference applies;
    anything else keeps the input units, with a warning. Variances scale by the factor squared.
    """

    def __init__(self, step, cube):
        self.cube = cube
        self.sci = cube.section("SCI")
        self.dq = cube.section("DQ")
        self.frame_shape = tuple(self.sci.shape[1:])
        parts = [cube.section(k) for k in ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")]
        self.var_parts = [a for a in parts if a is not None and tuple(a.shape) == tuple(self.sci.shape)]
        self.err = cube.section("ERR") if not self.var_parts else None
        if not self.var_parts and self.err is None:
            raise InputError(f"{cube.filename}: neither VAR_POISSON/VAR_RNOISE nor ERR: no errors can be computed")
        self.factor, self.unit = self._factor(step, cube)

    @staticmethod
    def _factor(step, cube):
        bunit = str((cube.ext_headers.get("SCI") or {}).get("BUNIT", cube.get("BUNIT", "")) or "").strip()
        norm = bunit.replace(" ", "").lower()
        if norm == "mjy/sr":
            pixar = cube.get("PIXAR_SR")
            if pixar is None:
                raise InputError(f"{cube.filename}: BUNIT MJy/sr but no PIXAR_SR keyword to convert to Jy")
            return np.float32(1e6 * float(pixar)), u.Jy
        if norm == "dn/s":
            gain_ref = step.reference("gain", required=False)
            tint = cube.get("EFFINTTM")
            if gain_ref is None or tint is None:
                step.log.warning("%s: DN/s data %s; photometry stays in DN/s", cube.filename,
                                 "without a GAIN reference" if gain_ref is None else "without EFFINTTM")
                return None, u.Unit("DN/s")
            gain = np.asarray(gain_ref.array("SCI", cube), np.float32)
            gain = np.where(np.isfinite(gain) & (gain > 0), gain, np.nan).astype(np.float32)
            return np.float32(tint) * gain, u.electron
        step.log.warning("%s: unexpected BUNIT %r; photometry uses the input units", cube.filename, bunit)
        try:
            unit = u.Unit(bunit) if bunit else u.dimensionless_unscaled
        except ValueError:
            unit = u.dimensionless_unscaled
        return None, unit

    def read(self, key, with_variance=True):
        """``(data, var, bad)`` of ``cube[key]`` (``key``: integrations, then rows and columns).

        ``bad`` marks DO_NOT_USE and non-finite data; ``var`` is None without ``with_variance``.
        """
        key = tuple(key) + (slice(None),) * (3 - len(key))
        data = np.asarray(self.sci[key], dtype=np.float32)
        factor = self.factor
        if factor is not None and np.ndim(factor) == 2:
            factor = factor[key[1:]]
        var = None
        if with_variance:
            if self.var_parts:
                var = np.zeros(data.shape, np.float32)
                for part in self.var_parts:
                    var += np.asarray(part[key], np.float32)
            else:
                var = np.asarray(self.err[key], np.float32) ** 2
            if factor is not None:
                var = var * factor ** 2
        if factor is not None:
            data = data * factor
        bad = ~np.isfinite(data)
        if self.dq is not None:
            bad |= (np.asarray(self.dq[key]) & DO_NOT_USE) != 0
        return data, var, bad
