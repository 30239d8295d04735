"""TweakRegStep: align the WCS of the members of an image association (relative, then absolute).

Follows the reference pipeline's ``TweakRegStep`` (jwst >= 1.13): per member a source catalog
(:func:`steps.tweakreg.catalog.make_tweakreg_catalog`), then ``tweakwcs.align_wcs`` with one
``JWSTWCSCorrector`` per member (members of the same exposure form one group), then optionally
alignment of all members, as one group, to an absolute reference catalog. A successful fit
inserts a ``v2v3corr`` frame in the member's gwcs, refreshes the SIP approximation in its SCI
header and the member is written back with ``ProductSet.update``.

Behaviour at the edges (documented)
-----------------------------------
- A member with fewer than ``minobj`` detected sources is left out of the alignment (warning),
  its WCS is unchanged and its ``S_TWKREG`` is SKIPPED; the step goes on with the others.
- Fewer than two usable members and no ``abs_refcat``: warning, the step is SKIPPED.
- A member whose footprint overlaps no other member: warning, WCS unchanged.
- A fit that moves the footprint by more than ``2 * (searchrad + tolerance)`` is rejected
  (warning, WCS unchanged), as jwst does.
- A member without a WCS (assign_wcs not run): InputError naming the file.
- ``abs_refcat='GAIADR3'`` (or another web catalog): InputError, because the catalog service
  cannot be reached offline; give a local file (ecsv/fits) with RA and DEC columns instead.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field

from runner import SkipStep, Step, StepParameters
from runner.errors import InputError

from .catalog import filter_by_bounding_box, make_tweakreg_catalog

log = logging.getLogger("webbcal.step.tweakreg")

#: catalogs the reference pipeline fetches from the STScI web service
WEB_CATALOGS = ("GAIADR1", "GAIADR2", "GAIADR3", "GAIAREFCAT", "GSC242", "GSC243")

#: DQ DO_NOT_USE bit
_DO_NOT_USE = 1


class TweakRegParameters(StepParameters):
    """Parameters of tweakreg (jwst names and defaults)."""

    # catalog
    save_catalogs: bool = Field(False, description="Write each member's source catalog (_cat.ecsv).")
    use_custom_catalogs: bool = Field(False, description="Use catalogs named in the association (member 'tweakreg_catalog') instead of detecting sources (not supported: ignored with a warning).")
    catalog_format: str = Field("ecsv", description="Format of saved catalogs.")
    kernel_fwhm: float = Field(2.5, gt=0, description="FWHM (pixels) of the Gaussian detection kernel.")
    snr_threshold: float = Field(10.0, gt=0, description="Detection threshold in units of the background RMS.")
    brightest: Optional[int] = Field(200, ge=1, description="Keep the brightest N sources of each image.")
    peakmax: Optional[float] = Field(None, description="Reject sources with a peak above this value (saturation).")
    bkg_boxsize: int = Field(400, ge=1, description="Background mesh box size (pixels).")
    starfinder: Literal["iraf", "dao", "segmentation"] = Field("iraf", description="Source finder: IRAFStarFinder, DAOStarFinder or segmentation.")
    npixels: int = Field(10, ge=1, description="segmentation: minimum connected pixels of a source.")
    connectivity: Literal[4, 8] = Field(8, description="segmentation: pixel connectivity.")
    nlevels: int = Field(32, ge=1, description="segmentation: deblending levels.")
    contrast: float = Field(0.001, ge=0, le=1, description="segmentation: deblending contrast.")
    sharplo: Optional[float] = Field(None, description="Star finder lower sharpness bound (photutils default when None).")
    sharphi: Optional[float] = Field(None, description="Star finder upper sharpness bound.")
    roundlo: Optional[float] = Field(None, description="Star finder lower roundness bound.")
    roundhi: Optional[float] = Field(None, description="Star finder upper roundness bound.")
    minsep_fwhm: float = Field(1.5, ge=0, description="iraf: minimum source separation in units of kernel_fwhm.")
    sigma_radius: float = Field(1.5, gt=0, description="Kernel truncation radius (sigma).")
    exclude_border: bool = Field(False, description="Drop sources near the image border.")
    recentroid: bool = Field(True, description="webbcal addition: refine star-finder centroids with an iterated Gaussian-windowed centroid (photutils IRAF/DAO centroids are biased by ~0.1 pixel).")
    # relative alignment
    enforce_user_order: bool = Field(False, description="Align images in the association order (first is the reference).")
    expand_refcat: bool = Field(False, description="Add unmatched sources of aligned images to the reference catalog.")
    minobj: int = Field(15, ge=1, description="Minimum number of objects (sources, and matches) for a fit.")
    fitgeometry: Literal["shift", "rshift", "rscale", "general"] = Field("rshift", description="Fit geometry: shift, rshift (shift+rotation), rscale (+scale), general.")
    nclip: int = Field(3, ge=0, description="Sigma-clipping iterations of the fit.")
    sigma: float = Field(3.0, gt=0, description="Clipping limit in units of the fit RMSE.")
    searchrad: float = Field(2.0, gt=0, description="Matching search radius (arcsec).")
    use2dhist: bool = Field(True, description="Use a 2-D histogram to find the initial offset.")
    separation: float = Field(1.0, gt=0, description="Minimum separation of sources within a catalog (arcsec).")
    tolerance: float = Field(0.7, gt=0, description="Matching tolerance after the initial offset (arcsec).")
    xoffset: float = Field(0.0, description="Initial guess of the x offset (arcsec).")
    yoffset: float = Field(0.0, description="Initial guess of the y offset (arcsec).")
    # absolute alignment
    abs_refcat: str = Field("", description="Absolute reference: a catalog file with RA, DEC columns (ecsv/fits); GAIADR3 etc. need the network.")
    save_abs_catalog: bool = Field(False, description="Write the absolute reference catalog used.")
    abs_minobj: int = Field(15, ge=1, description="Minimum number of objects for the absolute fit.")
    abs_fitgeometry: Literal["shift", "rshift"] = Field("rshift", description="Fit geometry of the absolute alignment.")
    abs_nclip: int = Field(3, ge=0, description="Sigma-clipping iterations of the absolute fit.")
    abs_sigma: float = Field(3.0, gt=0, description="Clipping limit of the absolute fit (RMSE units).")
    abs_searchrad: float = Field(6.0, gt=0, description="Absolute matching search radius (arcsec).")
    abs_use2dhist: bool = Field(True, description="Use a 2-D histogram in the absolute matching.")
    abs_separation: float = Field(1.0, gt=0, description="Minimum separation in the absolute reference catalog (arcsec).")
    abs_tolerance: float = Field(0.7, gt=0, description="Absolute matching tolerance (arcsec).")
    # SIP
    sip_approx: bool = Field(True, description="Refresh the FITS SIP approximation of the corrected WCS.")
    sip_max_pix_error: float = Field(0.01, gt=0, description="Maximum SIP forward error (pixels).")
    sip_degree: Optional[int] = Field(None, ge=1, le=6, description="SIP degree (None: the lowest that reaches the error).")
    sip_max_inv_pix_error: float = Field(0.01, gt=0, description="Maximum SIP inverse error (pixels).")
    sip_inv_degree: Optional[int] = Field(None, ge=1, le=6, description="SIP inverse degree.")
    sip_npoints: int = Field(12, ge=4, description="Grid points per axis for the SIP fit.")
    in_memory: bool = Field(True, description="Accepted for compatibility; members are streamed and spilled with ProductSet.update.")


class TweakRegStep(Step):
    """Align the WCS of association members to each other and optionally to a reference catalog."""

    alias = "tweakreg"
    class_name = "TweakRegStep"
    Parameters = TweakRegParameters
    reference_types = ()
    input_kind = "any"
    output_kind = "any"
    status_keyword = "S_TWKREG"

    # ------------------------------------------------------------------------------------------
    def process(self, product_set):
        from tweakwcs import JWSTWCSCorrector

        p = self.params
        if not hasattr(product_set, "indices"):
            raise InputError(f"{getattr(product_set, 'filename', 'input')}: tweakreg needs an association "
                             "(a set of exposures), not a single product")
        if p.use_custom_catalogs:
            self.log.warning("use_custom_catalogs is not supported; sources are detected in each image")
        indices = product_set.indices("science")
        refcat = self._read_abs_refcat() if p.abs_refcat.strip() else None

        correctors, skipped = [], []
        group_keys = {}
        for i in indices:
            prod = product_set.open(i)
            name = Path(str(product_set.members[i].path)).name
            if prod.wcs is None:
                raise InputError(f"{name}: has no WCS (run assign_wcs first); tweakreg needs product.wcs")
            if "v2v3" not in prod.wcs.available_frames and "v2v3corr" not in prod.wcs.available_frames:
                raise InputError(f"{name}: WCS has no 'v2v3' frame (frames {prod.wcs.available_frames}); "
                                 "tweakreg corrects JWST gwcs (detector -> v2v3 -> world)")
            wcsinfo = {}
            for key in ("V2_REF", "V3_REF", "ROLL_REF"):
                val = prod.get(key)
                if val is None:
                    raise InputError(f"{name}: missing keyword {key}, which step tweakreg needs")
                wcsinfo[key.lower()] = float(val)
            mask = ~np.isfinite(prod.data)
            if prod.dq is not None:
                mask |= (np.asarray(prod.dq) & _DO_NOT_USE) > 0
            cat = make_tweakreg_catalog(
                prod.data, p.snr_threshold, mask=mask, bkg_boxsize=p.bkg_boxsize,
                starfinder=p.starfinder, kernel_fwhm=p.kernel_fwhm, brightest=p.brightest,
                peakmax=p.peakmax, npixels=p.npixels, connectivity=p.connectivity,
                nlevels=p.nlevels, contrast=p.contrast, sharplo=p.sharplo, sharphi=p.sharphi,
                roundlo=p.roundlo, roundhi=p.roundhi, minsep_fwhm=p.minsep_fwhm,
                sigma_radius=p.sigma_radius, exclude_border=p.exclude_border,
                recentroid=p.recentroid)
            cat = filter_by_bounding_box(cat, _bbox(prod.wcs))
            self.log.info("%s: %d sources detected", name, len(cat))
            if p.save_catalogs:
                self.emit(_Catalog(cat.copy()), "cat", rootname=prod.rootname)
            if len(cat) < p.minobj:
                self.log.warning("%s: only %d sources (< minobj=%d); this exposure is not aligned, "
                                 "its WCS is left unchanged", name, len(cat), p.minobj)
                skipped.append(i)
                continue
            cat.rename_column("xcentroid", "x")
            cat.rename_column("ycentroid", "y")
            cat.meta["name"] = name
            corr = JWSTWCSCorrector(wcs=prod.wcs, wcsinfo=wcsinfo,
                                    meta={"index": i, "name": name, "catalog": cat})
            group_keys[i] = (_group_key(prod), str(prod.get("DETECTOR", "")))
            correctors.append(corr)
            del prod
        _assign_group_ids(correctors, group_keys)

        if len(correctors) < 2 and refcat is None:
            self._mark(product_set, indices, "SKIPPED")
            why = ("single exposure" if len(indices) < 2 else
                   f"{len(correctors)} of {len(indices)} exposures have >= minobj={p.minobj} sources")
            self.log.warning("tweakreg: at least two exposures with enough sources are needed for "
                             "relative alignment (%s); nothing to align", why)
            raise SkipStep(f"nothing to align ({why})")

        self._warn_no_overlap(correctors)
        original = {c.meta["index"]: c.wcs for c in correctors}
        status = {}
        if len(correctors) >= 2:
            self._align_relative(correctors)
            for c in correctors:
                st = c.meta.get("fit_info", {}).get("status", "FAILED: not aligned")
                status[c.meta["index"]] = st
                if st.startswith("FAILED"):
                    self.log.warning("%s: relative alignment failed (%s); WCS left unchanged",
                                     c.meta["name"], st)
                elif st == "SUCCESS" and not self._is_wcs_correction_small(original[c.meta["index"]], c.wcs):
                    self.log.warning("%s: WCS has been tweaked by more than %.3g arcsec; the fit is "
                                     "rejected and the WCS left unchanged (mismatched sources?)",
                                     c.meta["name"], 2 * (p.searchrad + p.tolerance))
                    status[c.meta["index"]] = "FAILED: correction too large"
                    c.meta["fit_info"]["status"] = status[c.meta["index"]]
                    _reset_corrector(correctors, c, original[c.meta["index"]])
                else:
                    self._log_fit(c, "relative")
        if refcat is not None:
            self._align_absolute(correctors, refcat, status)

        self._write_back(product_set, correctors, status)
        self._mark(product_set, skipped, "SKIPPED")
        aligned = [i for i, s in status.items() if s in ("SUCCESS", "REFERENCE")]
        if not aligned:
            raise SkipStep("no exposure could be aligned; WCS unchanged")
        return product_set

    # ------------------------------------------------------------------------------------------
    def _align_relative(self, correctors):
        from tweakwcs import XYXYMatch, align_wcs

        p = self.params
        match = XYXYMatch(searchrad=p.searchrad, separation=p.separation, use2dhist=p.use2dhist,
                          tolerance=p.tolerance, xoffset=p.xoffset, yoffset=p.yoffset)
        try:
            align_wcs(correctors, refcat=None, enforce_user_order=p.enforce_user_order,
                      expand_refcat=p.expand_refcat, minobj=p.minobj, match=match,
                      fitgeom=p.fitgeometry, nclip=p.nclip, sigma=(p.sigma, "rmse"))
        except ValueError as exc:
            msg = str(exc)
            if "Too few input images" in msg:
                self.log.warning("tweakreg: %s At least two exposures are required for alignment.", msg)
                for c in correctors:
                    c.meta["fit_info"] = {"status": "FAILED: " + msg}
                return
            raise
        except RuntimeError as exc:
            if str(exc).startswith("Number of output coordinates exceeded allocation"):
                self.log.error("tweakreg: multiple sources within the tolerance matched one reference "
                               "source; adjust 'tolerance' and/or 'separation'. WCS left unchanged.")
                for c in correctors:
                    c.meta["fit_info"] = {"status": "FAILED: matching"}
                return
            raise

    def _align_absolute(self, correctors, refcat, status):
        from tweakwcs import XYXYMatch, align_wcs

        p = self.params
        if len(refcat) < p.abs_minobj:
            self.log.warning("abs_refcat %s has %d sources (< abs_minobj=%d); absolute alignment skipped",
                             p.abs_refcat, len(refcat), p.abs_minobj)
            return
        if p.save_abs_catalog:
            self.emit(_Catalog(refcat.copy()), "abs_refcat")
        match = XYXYMatch(searchrad=p.abs_searchrad, separation=p.abs_separation,
                          use2dhist=p.abs_use2dhist, tolerance=p.abs_tolerance, xoffset=0, yoffset=0)
        before = {c.meta["index"]: c.wcs for c in correctors}
        for c in correctors:
            c.meta["group_id"] = 987654          # jwst: all members fit as one group
            c.meta.pop("fit_info", None)
        try:
            align_wcs(correctors, refcat=refcat, enforce_user_order=True, expand_refcat=False,
                      minobj=p.abs_minobj, match=match, fitgeom=p.abs_fitgeometry,
                      nclip=p.abs_nclip, sigma=(p.abs_sigma, "rmse"), ref_tpwcs=correctors[0])
        except (ValueError, RuntimeError) as exc:
            self.log.warning("absolute alignment to %s failed (%s); relative solution kept",
                             p.abs_refcat, str(exc).splitlines()[0])
            for c in list(correctors):
                _reset_corrector(correctors, c, before[c.meta["index"]])
            return
        for c in list(correctors):
            st = c.meta.get("fit_info", {}).get("status", "FAILED")
            i = c.meta["index"]
            if st == "SUCCESS":
                status[i] = "SUCCESS"
                self._log_fit(c, "absolute")
            else:
                self.log.warning("%s: absolute alignment failed (%s); relative solution kept",
                                 c.meta["name"], st)
                _reset_corrector(correctors, c, before[i])

    def _read_abs_refcat(self):
        from astropy.table import Table

        ref = self.params.abs_refcat.strip()
        if ref.upper() in WEB_CATALOGS:
            raise InputError(f"abs_refcat={ref!r}: this catalog is fetched from the STScI astrometric "
                             "web service, which cannot be reached offline; give a local catalog file "
                             "(ecsv or fits) with RA and DEC columns instead")
        path = Path(ref)
        if not path.is_file():
            raise InputError(f"{ref}: abs_refcat file not found")
        try:
            table = Table.read(path, format="ascii.ecsv" if path.suffix.lower() == ".ecsv" else None)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{ref}: cannot read abs_refcat ({str(exc).splitlines()[0]})") from None
        names = {c.lower(): c for c in table.colnames}
        if "ra" not in names or "dec" not in names:
            raise InputError(f"{ref}: abs_refcat needs RA and DEC columns (found {table.colnames})")
        for want in ("RA", "DEC"):
            have = names[want.lower()]
            if have != want:
                table.rename_column(have, want)
        table.meta["name"] = path.name
        return table

    def _is_wcs_correction_small(self, wcs, twcs):
        """jwst's check that the tweaked WCS has not moved too far."""
        from astropy.coordinates import SkyCoord

        p = self.params
        if p.use2dhist:
            max_corr = 2 * (p.searchrad + p.tolerance)
        else:
            max_corr = 2 * (max(abs(p.xoffset), abs(p.yoffset)) + p.tolerance)
        try:
            ra, dec = np.asarray(wcs.footprint()).T[:2]
            tra, tdec = np.asarray(twcs.footprint()).T[:2]
        except Exception:  # noqa: BLE001 - no bounding box
            return True
        sep = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(tra, tdec, unit="deg")).arcsec
        return bool(np.all(sep < max_corr))

    def _warn_no_overlap(self, correctors):
        polys = []
        for c in correctors:
            try:
                polys.append(_footprint_polygon(c.wcs))
            except Exception:  # noqa: BLE001
                polys.append(None)
        for k, c in enumerate(correctors):
            if polys[k] is None:
                continue
            others = [q for j, q in enumerate(polys) if j != k and q is not None]
            if others and not any(polys[k].intersects_poly(q) for q in others):
                self.log.warning("%s: footprint overlaps no other exposure; it cannot be aligned "
                                 "relative to the others and its WCS is left unchanged", c.meta["name"])

    def _log_fit(self, c, kind):
        fi = c.meta.get("fit_info", {})
        if fi.get("status") != "SUCCESS":
            return
        self.log.info("%s: %s fit: shift %s arcsec, rotation %s deg, RMSE %.4g arcsec, %d matches",
                      c.meta["name"], kind, np.round(fi.get("shift", [np.nan, np.nan]), 5),
                      np.round(fi.get("proper_rot", np.nan), 6), fi.get("rmse", np.nan),
                      fi.get("nmatches", 0))

    def _write_back(self, product_set, correctors, status):
        p = self.params
        for c in correctors:
            i = c.meta["index"]
            st = status.get(i, "FAILED")
            prod = product_set.open(i)
            if st == "SUCCESS":
                prod.wcs = c.wcs
                fi = c.meta.get("fit_info", {})
                prod.meta["S_TWKREG"] = "COMPLETE"
                shift = fi.get("shift", [0.0, 0.0])
                prod.meta["TWKSHFTX"] = (float(shift[0]), "[arcsec] tweakreg shift in v2 tangent plane")
                prod.meta["TWKSHFTY"] = (float(shift[1]), "[arcsec] tweakreg shift in v3 tangent plane")
                prod.meta["TWKROT"] = (float(fi.get("proper_rot", 0.0)), "[deg] tweakreg rotation")
                prod.meta["TWKRMSE"] = (float(fi.get("rmse", np.nan)), "[arcsec] tweakreg fit RMSE")
                prod.meta["TWKNMTCH"] = (int(fi.get("nmatches", 0)), "tweakreg matched sources")
                if p.sip_approx:
                    self._update_sip(prod)
            elif st == "REFERENCE":
                prod.meta["S_TWKREG"] = "COMPLETE"
                prod.meta["TWKREF"] = (True, "tweakreg reference exposure")
            else:
                prod.meta["S_TWKREG"] = "SKIPPED"
            product_set.update(i, prod)

    def _update_sip(self, prod):
        p = self.params
        try:
            hdr = prod.wcs.to_fits_sip(bounding_box=_bbox(prod.wcs), max_pix_error=p.sip_max_pix_error,
                                       degree=p.sip_degree, max_inv_pix_error=p.sip_max_inv_pix_error,
                                       inv_degree=p.sip_inv_degree, npoints=p.sip_npoints)
        except Exception as exc:  # noqa: BLE001
            self.log.warning("%s: SIP approximation failed (%s); SCI WCS keywords not refreshed",
                             prod.filename, str(exc).splitlines()[0])
            return
        from astropy.io import fits

        sci = prod.ext_headers.get("SCI", fits.Header())
        for key in list(sci.keys()):
            if key.split("_")[0] in ("A", "B", "AP", "BP") and "_" in key:
                del sci[key]
        for card in hdr.cards:
            if card.keyword in ("WCSAXES", "NAXIS", "NAXIS1", "NAXIS2", "", "COMMENT", "HISTORY"):
                continue
            sci[card.keyword] = (card.value, card.comment)
        prod.ext_headers["SCI"] = sci

    def _mark(self, product_set, indices, value):
        for i in indices:
            prod = product_set.open(i)
            prod.meta["S_TWKREG"] = value
            product_set.update(i, prod)


# ----------------------------------------------------------------------------------------------
class _Catalog:
    """An astropy Table saved as ECSV through :meth:`Step.emit`."""

    file_extension = ".ecsv"

    def __init__(self, table):
        self.table = table

    def save(self, path):
        self.table.write(path, format="ascii.ecsv", overwrite=True)
        return path


def _bbox(wcs):
    bb = getattr(wcs, "bounding_box", None)
    if bb is None:
        return None
    try:
        return tuple(tuple(float(v) for v in iv) for iv in bb.bounding_box(order="F"))
    except AttributeError:
        return tuple(tuple(float(v) for v in iv) for iv in bb)


def _footprint_polygon(wcs):
    from spherical_geometry.polygon import SphericalPolygon

    ra, dec = np.asarray(wcs.footprint()).T[:2]
    return SphericalPolygon.from_radec(np.append(ra, ra[0]), np.append(dec, dec[0]), degrees=True)


_GROUP_KEYWORDS = ("PROGRAM", "OBSERVTN", "VISIT", "VISITGRP", "SEQ_ID", "ACT_ID", "EXPOSURE")


def _group_key(prod):
    """jwst's exposure group id (members of one exposure, e.g. several detectors, move together)."""
    vals = [prod.get(k) for k in _GROUP_KEYWORDS]
    if any(v is None or str(v).strip() == "" for v in vals):
        return None
    return "jw" + "_".join(str(v).strip() for v in vals)


def _assign_group_ids(correctors, keys):
    """Group members by exposure; fall back to one group per member when the keywords are
    missing or two members of a 'group' share a detector (so they cannot be one exposure)."""
    groups = {}
    for c in correctors:
        key, det = keys[c.meta["index"]]
        groups.setdefault(key, []).append(det)
    valid = all(k is not None and len(set(d)) == len(d) for k, d in groups.items())
    for n, c in enumerate(correctors):
        key = keys[c.meta["index"]][0]
        c.meta["group_id"] = key if valid else f"member{n}"


def _reset_corrector(correctors, c, wcs):
    """Replace corrector ``c`` in ``correctors`` by a fresh one on ``wcs`` (undoes a fit)."""
    from tweakwcs import JWSTWCSCorrector

    fresh = JWSTWCSCorrector(wcs=wcs, wcsinfo=c.ref_angles, meta=dict(c.meta))
    correctors[correctors.index(c)] = fresh
