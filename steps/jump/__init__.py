"""Jump detection (stage 1): two-point difference cosmic-ray flagging."""
from .twopoint import detect_jumps

__all__ = ["detect_jumps"]
