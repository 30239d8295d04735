"""webbcal science steps: one sub-package per step, each a thin plugin over a pure algorithm module."""
