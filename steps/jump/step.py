"""JumpStep: plugin over :func:`steps.jump.twopoint.detect_jumps`."""
from __future__ import annotations

from typing import Union

import numpy as np
from pydantic import Field

from runner import Step, StepParameters

from .twopoint import detect_jumps

_NOT_DONE = ("expand_large_events", "find_showers")


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
    # snowball (NIR) and shower (MIRI) flagging: accepted for CRDS parameter files, not done yet
    expand_large_events: bool = Field(False, description="Snowball flagging (NOT IMPLEMENTED: ignored with a warning).")
    min_sat_area: float = Field(1.0, description="Snowballs: minimum saturated area, pixels (not implemented).")
    min_jump_area: float = Field(5.0, description="Snowballs: minimum jump area, pixels (not implemented).")
    expand_factor: float = Field(2.0, description="Snowballs: ellipse expansion factor (not implemented).")
    use_ellipses: bool = Field(False, description="Snowballs: use ellipses (not implemented).")
    sat_required_snowball: bool = Field(True, description="Snowballs: require a saturated core (not implemented).")
    min_sat_radius_extend: float = Field(2.5, description="Snowballs: minimum core radius to extend (not implemented).")
    sat_expand: int = Field(2, description="Snowballs: pixels added to saturated cores (not implemented).")
    edge_size: int = Field(25, description="Snowballs: edge margin, pixels (not implemented).")
    mask_snowball_core_next_int: bool = Field(True, description="Snowballs: mask cores in the next integration (not implemented).")
    snowball_time_masked_next_int: int = Field(4000, description="Snowballs: time masked in the next integration, s (not implemented).")
    find_showers: bool = Field(False, description="MIRI shower flagging (NOT IMPLEMENTED: ignored with a warning).")
    max_shower_amplitude: float = Field(4.0, description="Showers: maximum amplitude, DN/group (not implemented).")
    extend_snr_threshold: float = Field(1.2, description="Showers: S/N threshold (not implemented).")
    extend_min_area: int = Field(90, description="Showers: minimum area, pixels (not implemented).")
    extend_inner_radius: float = Field(1.0, description="Showers: ring kernel inner radius (not implemented).")
    extend_outer_radius: float = Field(2.6, description="Showers: ring kernel outer radius (not implemented).")
    extend_ellipse_expand_ratio: float = Field(1.1, description="Showers: ellipse expansion (not implemented).")
    time_masked_after_shower: float = Field(15.0, description="Showers: time masked after, s (not implemented).")
    max_extended_radius: int = Field(200, description="Showers/snowballs: largest radius, pixels (not implemented).")


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
        """Whole product when after-jump flagging is on (it scales by the frame's median gain)."""
        if params.after_jump_flag_time1 > 0 or params.after_jump_flag_time2 > 0:
            return None, 0
        return cls.chunking, cls.chunk_halo

    def process(self, product):
        p = self.params
        for name in _NOT_DONE:
            if getattr(p, name):
                self.log.warning("jump: %s is not implemented in webbcal; only two-point flagging is done", name)
        gain = self.reference("gain").array("SCI", product)
        readnoise = self.reference("readnoise").array("SCI", product)
        nframes = int(product.get("NFRAMES", 1) or 1)
        tgroup = product.get("TGROUP")
        if (p.after_jump_flag_time1 > 0 or p.after_jump_flag_time2 > 0) and tgroup is None:
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
            maximum_cores=p.maximum_cores)
        # pixels with an unusable gain, as the reference reports them
        bad_gain = ~(np.asarray(gain) > 0)
        if bad_gain.any():
            pdq = np.asarray(product.pixeldq if product.pixeldq is not None else np.zeros(bad_gain.shape, np.uint32), dtype=np.uint32)
            pdq[bad_gain] |= np.uint32(1 | (1 << 19))
            product.pixeldq = pdq
        return product
