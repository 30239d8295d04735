"""JumpStep: plugin over :func:`steps.jump.twopoint.detect_jumps`."""
from __future__ import annotations

from typing import Union

import numpy as np
from pydantic import Field

from runner import Step, StepParameters

from .large_events import flag_showers, flag_snowballs
from .twopoint import detect_jumps


class JumpParameters(StepParameters):
    """Parameters of jump (the reference pipeline's names and defaults)."""

    rejection_threshold: float = Field(4.0, ge=0, description="Jump threshold (sigma) with >= 4 usable differences and for sigma clipping.")
    three_group_rejection_threshold: float = Field(6.0, ge=0, description="Jump threshold (sigma) with 2 usable differences.")
    four_group_rejection_threshold: float = Field(5.0, ge=0, description="Jump threshold (sigma) with 3 usable differences.")
    maximum_cores: Union[int, str] = Field("all", description="Threads: an integer, 'none', 'quarter', 'half' or 'all' (results do not depend on it).")
    flag_4_neighbors: bool = Field(True, description="Flag the 4 neighbours of jumps between the min and max sigma below.")
    max_jump_to_flag_neighbors: float = Field(1000.0, ge=0, description="Largest jump (sigma) whose neighbours are flagged.")
    min_jump_to_flag_neighbors: float = Field(10.0, ge=0, description="Smallest jump (sigma) whose neighbours are flagged.")
    after_jump_flag_dn1: float = Field(0.0, ge=0, description="Jumps of at least this many DN flag the groups within after_jump_flag_time1.")
    after_jump_flag_time1: float = Field(0.0, ge=0, description="Time after a jump >= after_jump_flag_dn1 to flag, s.")
    after_jump_flag_dn2: float = Field(0.0, ge=0, description="Jumps of at least this many DN flag the groups within after_jump_flag_time2.")
    after_jump_flag_time2: float = Field(0.0, ge=0, description="Time after a jump >= after_jump_flag_dn2 to flag, s.")
    min_diffs_single_pass: int = Field(10, ge=1, description="Usable differences per integration from which one pass (not iterative) is used.")
    minimum_groups: int = Field(3, ge=2, description="Fewest usable groups per integration for the two-point method.")
    minimum_sigclip_groups: int = Field(100, ge=1, description="Integrations (only_use_ints) or groups from which sigma clipping is used.")
    only_use_ints: bool = Field(True, description="Sigma-clip each difference across integrations only.")
    flag_split_jumps: bool = Field(True, description="Multi-frame groups (NFRAMES > 1): also find cosmic rays arriving between the frames of a group (charge split over two differences) with the two-group difference, and flag both groups; False gives the reference's flags. Not used in sigma-clipping mode.")
    # snowball (NIR) and shower (MIRI) flagging (steps.jump.large_events)
    expand_large_events: bool = Field(False, description="Snowball flagging: expand JUMP_DET around large jump regions with a saturated core.")
    min_sat_area: float = Field(1.0, description="Snowballs: minimum area of the saturated core, pixels.")
    min_jump_area: float = Field(15.0, description="Snowballs: minimum area of a jump region (holes filled), pixels.")
    expand_factor: float = Field(2.0, description="Snowballs: expansion factor of the enclosing circle / ellipse.")
    use_ellipses: bool = Field(False, description="Snowballs: fit ellipses (second moments) instead of enclosing circles (deprecated in jwst).")
    sat_required_snowball: bool = Field(True, description="Snowballs: require a saturated core inside the jump region.")
    min_sat_radius_extend: float = Field(2.5, description="Snowballs: cores wider than this (minor full width, pixels) get their saturation extended.")
    sat_expand: int = Field(2, description="Snowballs: pixels added to the radius of saturated cores.")
    edge_size: int = Field(25, description="Snowballs: distance from the edge (pixels) within which no saturated core is required.")
    mask_snowball_core_next_int: bool = Field(True, description="Snowballs: flag the saturated cores in the next integration.")
    snowball_time_masked_next_int: int = Field(4000, description="Snowballs: time over which cores are flagged in the next integration, s.")
    find_showers: bool = Field(False, description="MIRI shower flagging: faint extended events in smoothed S/N images.")
    max_shower_amplitude: float = Field(4.0, description="Showers: largest change of a pixel's mean rate that shower flags may cause, DN/s.")
    extend_snr_threshold: float = Field(1.2, description="Showers: S/N threshold of the smoothed difference image.")
    extend_min_area: int = Field(90, description="Showers: minimum area, pixels.")
    extend_inner_radius: float = Field(1.0, description="Showers: ring kernel inner radius, pixels.")
    extend_outer_radius: float = Field(2.6, description="Showers: ring kernel width (astropy Ring2DKernel's second argument), pixels.")
    extend_ellipse_expand_ratio: float = Field(1.1, description="Showers: ellipse expansion factor.")
    time_masked_after_shower: float = Field(15.0, description="Showers: time after a shower over which later groups are flagged, s.")
    max_extended_radius: int = Field(200, description="Showers/snowballs: largest radius of an expanded region, pixels.")


class JumpStep(Step):
    """Flag cosmic-ray jumps (JUMP_DET) with the two-point difference method."""

    alias = "jump"
    class_name = "JumpStep"
    Parameters = JumpParameters
    reference_types = ("gain", "readnoise")
    input_kind = "ramp"
    output_kind = "ramp"
    status_keyword = "S_JUMP"
    chunking = "rows"  # per pixel over all integrations; flag_4_neighbors reaches 1 row
    chunk_halo = 1

    @classmethod
    def chunking_for(cls, params):
        """Whole product when after-jump flagging (frame median gain) or snowball/shower flagging is on."""
        if params.after_jump_flag_time1 > 0 or params.after_jump_flag_time2 > 0:
            return None, 0
        if params.expand_large_events or params.find_showers:  # regions span many rows
            return None, 0
        return cls.chunking, cls.chunk_halo

    def process(self, product):
        p = self.params
        gain = self.reference("gain").array("SCI", product)
        readnoise = self.reference("readnoise").array("SCI", product)
        nframes = int(product.get("NFRAMES", 1) or 1)
        tgroup = product.get("TGROUP")
        if (p.after_jump_flag_time1 > 0 or p.after_jump_flag_time2 > 0 or p.find_showers) and tgroup is None:
            tgroup = self.require(product, "TGROUP")
        data = np.asarray(product.data, dtype=np.float32)
        gdq = np.asarray(product.groupdq if product.groupdq is not None else np.zeros(data.shape, np.uint8), dtype=np.uint8)
        product.data = data
        product.groupdq = detect_jumps(
            data, gdq, gain, readnoise, nframes=nframes,
            rejection_threshold=p.rejection_threshold,
            three_group_rejection_threshold=p.three_group_rejection_threshold,
            four_group_rejection_threshold=p.four_group_rejection_threshold,
            flag_4_neighbors=p.flag_4_neighbors,
            max_jump_to_flag_neighbors=p.max_jump_to_flag_neighbors,
            min_jump_to_flag_neighbors=p.min_jump_to_flag_neighbors,
            after_jump_flag_dn1=p.after_jump_flag_dn1, after_jump_flag_time1=p.after_jump_flag_time1,
            after_jump_flag_dn2=p.after_jump_flag_dn2, after_jump_flag_time2=p.after_jump_flag_time2,
            tgroup=None if tgroup is None else float(tgroup),
            minimum_groups=p.minimum_groups, minimum_sigclip_groups=p.minimum_sigclip_groups,
            only_use_ints=p.only_use_ints, min_diffs_single_pass=p.min_diffs_single_pass,
            flag_split_jumps=p.flag_split_jumps, maximum_cores=p.maximum_cores)
        if p.expand_large_events:
            product.groupdq, n = flag_snowballs(
                product.groupdq, min_jump_area=p.min_jump_area, min_sat_area=p.min_sat_area,
                expand_factor=p.expand_factor, use_ellipses=p.use_ellipses,
                sat_required_snowball=p.sat_required_snowball,
                min_sat_radius_extend=p.min_sat_radius_extend, sat_expand=p.sat_expand,
                edge_size=p.edge_size, max_extended_radius=p.max_extended_radius,
                mask_snowball_core_next_int=p.mask_snowball_core_next_int,
                snowball_time_masked_next_int=p.snowball_time_masked_next_int,
                tgroup=None if tgroup is None else float(tgroup))
            self.log.info("jump: %d snowballs flagged", n)
        if p.find_showers:
            product.groupdq, n = flag_showers(
                data, product.groupdq, gain, readnoise, pixeldq=product.pixeldq, nframes=nframes,
                tgroup=float(tgroup), extend_snr_threshold=p.extend_snr_threshold,
                extend_min_area=p.extend_min_area, extend_inner_radius=p.extend_inner_radius,
                extend_outer_radius=p.extend_outer_radius,
                extend_ellipse_expand_ratio=p.extend_ellipse_expand_ratio,
                time_masked_after_shower=p.time_masked_after_shower,
                max_shower_amplitude=p.max_shower_amplitude,
                max_extended_radius=p.max_extended_radius,
                minimum_sigclip_groups=p.minimum_sigclip_groups, maximum_cores=p.maximum_cores)
            self.log.info("jump: %d showers flagged", n)
        # pixels with an unusable gain, as the reference reports them
        bad_gain = ~(np.asarray(gain) > 0)
        if bad_gain.any():
            pdq = np.asarray(product.pixeldq if product.pixeldq is not None else np.zeros(bad_gain.shape, np.uint32), dtype=np.uint32)
            pdq[bad_gain] |= np.uint32(1 | (1 << 19))
            product.pixeldq = pdq
        return product
