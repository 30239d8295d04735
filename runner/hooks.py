"""Lifecycle hooks (before/after a step, on error) for cross-cutting behaviour.

Timing, memory, progress and logging are hooks, not flags threaded through the engine. A hook
is any object with some of ``before_step(name, product)``, ``after_step(name, product, record)``
and ``on_error(name, error)``.
"""
from __future__ import annotations

import os
import resource
import sys
import threading
import time
from dataclasses import dataclass


def current_rss_mb():
    """Resident memory of this process in MiB (Linux /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover - non-Linux
        return peak_rss_mb()


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class StepRecord:
    """What happened in one step."""

    name: str
    status: str = "COMPLETE"
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    message: str = ""


class MemorySampler:
    """Samples resident memory in a background thread to find each step's peak."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._peak = current_rss_mb()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, current_rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, current_rss_mb())

    @property
    def peak(self):
        return self._peak


class TimingHook:
    """Records wall time and peak resident memory of every step."""

    def __init__(self):
        self._t0 = None
        self._sampler = None

    def before_step(self, name, product):
        self._sampler = MemorySampler().__enter__()
        self._t0 = time.perf_counter()

    def after_step(self, name, product, record):
        record.seconds = time.perf_counter() - self._t0
        self._sampler.__exit__(None, None, None)
        record.peak_rss_mb = self._sampler.peak

    def on_error(self, name, error):
        if self._sampler is not None:
            self._sampler.__exit__(None, None, None)


class ProgressHook:
    """A one-line progress bar on a terminal (stderr); silent otherwise."""

    def __init__(self, total, label="", stream=None):
        self.total = max(total, 1)
        self.done = 0
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()

    def before_step(self, name, product):
        self._draw(name)

    def after_step(self, name, product, record):
        self.done += 1
        self._draw(name if self.done < self.total else "done")
        if self.done >= self.total and self.enabled:
            self.stream.write("\n")

    def on_error(self, name, error):
        if self.enabled:
            self.stream.write("\n")

    def _draw(self, name):
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {name:<20}")
        self.stream.flush()


def call_hooks(hooks, method, *args):
    """Call ``method`` on every hook that has it."""
    for hook in hooks:
        fn = getattr(hook, method, None)
        if fn is not None:
            fn(*args)
