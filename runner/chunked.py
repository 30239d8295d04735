"""Out-of-core execution: run a plan on chunks of integrations or rows in bounded memory.

When an exposure's working set is larger than the memory budget (``WEBBCAL_MEMORY_BUDGET``
MiB, default 1024; ``run --memory-budget``) and every step of the plan declares how it can
be split (:attr:`runner.step.Step.chunking`), :func:`run_chunked` runs the plan in *phases*:
consecutive steps with the same chunking. The input is read lazily (``section`` of the FITS
image, uint16 -> float32 per chunk); each chunk (a few integrations with whole frames, or a
block of rows with ``chunk_halo`` rows of neighbours and all integrations) goes through the
phase's steps as a small :class:`~runner.product.Product` with the same headers and tables, and
the results are written to raw arrays in a working folder (plain ``pread``/``pwrite``; no
memmap stays mapped). The next phase reads its chunks from there. Emitted products (ramp_fit's
``rateints``) are assembled the same way; the final product and the extras are streamed to FITS
from disk. Results are bit-identical to :func:`runner.execute.execute_plan` in memory.

The runner knows no particular step: only the ``chunking`` / ``chunk_halo`` declarations.
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .product import (ASDF_EXTNAME, KINDS, WCS_EXTNAME, Product, _extension_cards, _guess_kind, native,
                      read_wcs, wcs_hdu)

log = logging.getLogger("webbcal.chunked")

#: environment variable holding the memory budget in MiB
BUDGET_ENV = "WEBBCAL_MEMORY_BUDGET"
DEFAULT_BUDGET_MIB = 1024.0
#: estimated bytes of working memory per element of the input SCI array, by product kind
BYTES_PER_ELEMENT = {"level1b": 16, "ramp": 16, "cube": 64}
#: meta keywords a chunk changes and the final product restores
_CHUNK_KEYS = ("CHUNKI0", "INTSTART", "INTEND", "SUBSTRT2", "SUBSIZE2")


def memory_budget_mib():
    """The memory budget in MiB (``WEBBCAL_MEMORY_BUDGET``, default 1024)."""
    try:
        return float(os.environ.get(BUDGET_ENV) or DEFAULT_BUDGET_MIB)
    except ValueError:
        return DEFAULT_BUDGET_MIB


class MemoryBudgetAction(argparse.Action):
    """argparse action: ``--memory-budget MIB`` sets ``WEBBCAL_MEMORY_BUDGET`` for this run."""

    def __call__(self, parser, namespace, values, option_string=None):
        if float(values) <= 0:
            parser.error(f"{option_string}: must be > 0 MiB")
        os.environ[BUDGET_ENV] = str(float(values))
        setattr(namespace, self.dest, float(values))


# =============================================================================================
# Lazy input
# =============================================================================================
_BITPIX = {8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64, -32: np.float32, -64: np.float64}


def _hdu_dtype(header):
    dt = np.dtype(_BITPIX[int(header["BITPIX"])])
    bzero = header.get("BZERO", 0)
    if dt.kind == "i" and bzero == 2 ** (8 * dt.itemsize - 1):
        dt = np.dtype(f"u{dt.itemsize}")
    return dt


def _hdu_shape(header):
    n = int(header.get("NAXIS", 0))
    return tuple(int(header[f"NAXIS{k}"]) for k in range(n, 0, -1))


class LazyProduct(Product):
    """A :class:`Product` whose image arrays are read from its file on first use.

    Headers, tables and the WCS are read at once; ``arrays`` loads everything (as
    :meth:`Product.open` does) the first time it is touched, so the in-memory path is
    unchanged, while :func:`run_chunked` can read the file chunk by chunk instead.
    """

    def __init__(self, path, kind, meta, tables, ext_headers, shapes, wcs=None):
        object.__setattr__(self, "_arrays", None)
        object.__setattr__(self, "path", Path(path))
        object.__setattr__(self, "shapes", shapes)      # EXTNAME -> (shape, dtype)
        super().__init__(kind, meta, None, tables, ext_headers, filename=Path(path).name, wcs=wcs)

    @property
    def arrays(self):
        if self._arrays is None:
            loaded = Product.open(self.path, kind=self.kind)
            object.__setattr__(self, "_arrays", loaded.arrays)
        return self._arrays

    @arrays.setter
    def arrays(self, value):
        if value:  # Product.__init__ assigns an empty dict: stay unloaded
            object.__setattr__(self, "_arrays", dict(value))

    def __getattr__(self, name):
        from .product import ALIASES

        if name == "wcs":
            return None
        ext = ALIASES.get(name)
        if ext is None or name.startswith("_"):
            raise AttributeError(name)
        return self.arrays.get(ext)

    @property
    def loaded(self):
        """True once the image arrays are in memory."""
        return self._arrays is not None

    def section(self, name):
        """Extension ``name`` read on demand (an :class:`~runner.fits_sections.ImageSection`)."""
        if name not in self.shapes:
            return None
        if self._arrays is not None:
            return self._arrays.get(name)
        from .fits_sections import ImageSection

        shape, dtype = self.shapes[name]
        return ImageSection(self.path, name, shape, dtype)


def open_input(path):
    """Open an exposure for :func:`runner.execute.execute_plan` without reading its images.

    Parameters
    ----------
    path : str or path-like
        A FITS product (uncal, rateints, ...). Anything else falls back to :meth:`Product.open`.

    Returns
    -------
    Product
        A :class:`LazyProduct` checked as :meth:`Product.open` checks it.
    """
    from astropy.io import fits

    from .errors import InputError

    path = Path(path)
    if path.suffix.lower() not in (".fits", ".fit") or not path.is_file() or path.stat().st_size == 0:
        return Product.open(path)
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            meta = hdul[0].header.copy()
            tables, ext_headers, shapes = {}, {}, {}
            wcs = read_wcs(hdul, path)
            for hdu in hdul[1:]:
                name = (hdu.name or "").upper()
                if name in (ASDF_EXTNAME, WCS_EXTNAME):
                    continue
                if isinstance(hdu, fits.BinTableHDU):
                    tables[name] = np.array(hdu.data) if hdu.data is not None else None
                elif isinstance(hdu, fits.ImageHDU) and int(hdu.header.get("NAXIS", 0)) > 0:
                    shapes[name] = (_hdu_shape(hdu.header), _hdu_dtype(hdu.header))
                    ext_headers[name] = _extension_cards(hdu.header)
    except Exception:  # noqa: BLE001 - let Product.open word the error
        return Product.open(path)
    if "SCI" not in shapes:
        raise InputError(f"{path}: no SCI image extension")
    ghosts = {k: np.broadcast_to(np.zeros((), dt), shp) for k, (shp, dt) in shapes.items()}
    kind = _guess_kind(meta, ghosts)
    Product(kind, meta, ghosts, filename=path.name).check(source=str(path))
    return LazyProduct(path, kind, meta, tables, ext_headers, shapes, wcs=wcs)


# =============================================================================================
# Array stores: the input FITS file, then raw files in a working folder
# =============================================================================================
class _FitsStore:
    def __init__(self, path):
        from astropy.io import fits

        self.hdul = fits.open(path, memmap=False, lazy_load_hdus=True)

    def read(self, name, shape, dtype, index):
        return np.ascontiguousarray(native(np.asarray(self.hdul[name].section[index])))

    def close(self):
        self.hdul.close()


class _RawStore:
    """Raw C-order arrays in files; chunk reads/writes by ``pread``/``pwrite`` per plane."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fds = {}

    def create(self, name, shape, dtype):
        path = self.folder / f"{name}.raw"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, int(np.prod(shape)) * np.dtype(dtype).itemsize)
        self.fds[name] = fd

    @staticmethod
    def _planes(shape, dtype, index):
        """(offset, count, out-shape) per contiguous segment for an axis-0 or axis -2 slice."""
        kind, a, b = index
        item = np.dtype(dtype).itemsize
        if kind == "all":
            a, b = 0, shape[0] if len(shape) > 2 else shape[-2]
            kind = "lead" if len(shape) > 2 else "rows"
        if kind == "lead":
            per = int(np.prod(shape[1:]))
            return [(a * per * item, (b - a) * per)], (b - a,) + tuple(shape[1:])
        ny, nx = shape[-2:]
        nplanes = int(np.prod(shape[:-2]))
        segs = [(((p * ny) + a) * nx * item, (b - a) * nx) for p in range(nplanes)]
        return segs, tuple(shape[:-2]) + (b - a, nx)

    def read(self, name, shape, dtype, index):
        segs, oshape = self._planes(shape, dtype, index)
        out = np.empty(oshape, dtype)
        flat = out.reshape(-1).view(np.uint8)
        fd, item, pos = self.fds[name], np.dtype(dtype).itemsize, 0
        for off, count in segs:
            nbytes = count * item
            got = os.preadv(fd, [memoryview(flat[pos:pos + nbytes])], off)
            if got != nbytes:
                raise OSError(f"short read from {name}")
            pos += nbytes
        return out

    def write(self, name, shape, dtype, index, value):
        segs, oshape = self._planes(shape, dtype, index)
        value = np.ascontiguousarray(value, dtype=dtype).reshape(oshape)
        flat = value.reshape(-1).view(np.uint8)
        fd, item, pos = self.fds[name], np.dtype(dtype).itemsize, 0
        for off, count in segs:
            nbytes = count * item
            os.pwrite(fd, flat[pos:pos + nbytes], off)
            pos += nbytes

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


class _State:
    """A whole product held in a store: headers in memory, arrays on disk (or in the input)."""

    def __init__(self, kind, meta, tables, ext_headers, wcs, shapes, store, small=None):
        self.kind, self.meta, self.tables, self.ext_headers, self.wcs = kind, meta, tables, ext_headers, wcs
        self.shapes = shapes            # EXTNAME -> (shape, dtype), in product order
        self.store = store
        self.small = small or {}        # EXTNAME -> in-memory array (2-D arrays of integration phases)

    @property
    def sci_shape(self):
        return self.shapes["SCI"][0]

    def per_integration(self, name):
        shape = self.shapes[name][0]
        return self.kind in ("level1b", "ramp", "cube") and len(shape) >= 3

    def read(self, name, index):
        if name in self.small:
            arr, (kind, a, b) = self.small[name], index
            if kind == "lead":
                return arr[a:b].copy()
            return arr.copy() if kind == "all" else arr[..., a:b, :].copy()
        shape, dtype = self.shapes[name]
        if isinstance(self.store, _FitsStore):
            kind, a, b = index
            sl = (slice(None),) * len(shape)
            if kind == "lead":
                sl = (slice(a, b),) + sl[1:]
            elif kind == "rows":
                sl = sl[:-2] + (slice(a, b), slice(None))
            return self.store.read(name, shape, dtype, sl)
        return self.store.read(name, shape, dtype, index)


# =============================================================================================
# Planning
# =============================================================================================
def _step_chunking(rs):
    cls = rs.step_class
    if cls is None:
        return None, 0
    fn = getattr(cls, "chunking_for", None)
    ch, halo = fn(rs.params) if fn is not None else (getattr(cls, "chunking", None), getattr(cls, "chunk_halo", 0))
    return ch, int(halo or 0)


def _phases(plan):
    """Consecutive steps with the same chunking -> [(chunking, halo, [ResolvedStep])].

    Skipped steps join the current phase; the halos of a ``rows`` phase add up.
    """
    phases = []
    for rs in plan:
        ch, halo = (None, 0) if rs.params.skip else _step_chunking(rs)
        if phases and (ch is None or phases[-1][0] in (None, ch)):
            if ch is not None:
                phases[-1][0] = ch
                phases[-1][1] += halo
            phases[-1][2].append(rs)
        else:
            phases.append([ch, halo, [rs]])
    return [(p[0] or "integrations", p[1], p[2]) for p in phases]


def why_not_chunked(prepared, product, *, save=True, input_path=None, budget_mib=None):
    """None when :func:`run_chunked` applies, else the reason (a short phrase)."""
    if not isinstance(product, LazyProduct) or product.loaded:
        return "the input is already in memory"
    if not save or input_path is None:
        return "results are not saved to files"
    if product.kind not in BYTES_PER_ELEMENT:
        return f"a {product.kind} product is not chunked"
    budget = (budget_mib if budget_mib is not None else memory_budget_mib()) * 2**20
    shape = product.shapes["SCI"][0]
    need = int(np.prod(shape)) * BYTES_PER_ELEMENT[product.kind]
    if need <= budget:
        return f"fits in the memory budget ({need / 2**20:.0f} <= {budget / 2**20:.0f} MiB)"
    for rs in prepared.plan:
        if rs.params.skip:
            continue
        if _step_chunking(rs)[0] is None:
            return f"step {rs.alias} needs the whole product (chunking None)"
        if rs.params.save_results:
            return f"step {rs.alias} saves its intermediate product"
    return None


# =============================================================================================
# Execution
# =============================================================================================
def run_chunked(prepared, product, *, output_dir=None, hooks=(), save=True, input_path=None):
    """Run ``prepared`` on ``product`` chunk by chunk when it applies; else return None.

    Parameters and result as :func:`runner.execute.execute_plan`; ``result.product`` is the
    saved main product opened lazily.
    """
    if (not isinstance(product, LazyProduct) and isinstance(product, Product) and input_path is not None
            and product.kind in BYTES_PER_ELEMENT and Path(input_path).name == product.filename):
        # already read by the caller (e.g. a batch worker): chunk from the file all the same
        lazy = open_input(input_path)
        if isinstance(lazy, LazyProduct) and why_not_chunked(prepared, lazy, save=save, input_path=input_path) is None:
            lazy.meta = product.meta
            for attr in ("association", "asn_product"):
                if attr in product.__dict__:
                    setattr(lazy, attr, product.__dict__[attr])
            product = lazy
    why = why_not_chunked(prepared, product, save=save, input_path=input_path)
    if why is not None:
        if isinstance(product, LazyProduct) and not product.loaded and "budget" not in why:
            log.info("%s: in-memory execution: %s", product.filename, why)
        return None
    return _Chunked(prepared, product, output_dir, hooks, input_path).run()


class _Extra:
    """An emitted product assembled chunk by chunk on disk."""

    def __init__(self, suffix, root, template, store, name):
        self.suffix, self.root, self.template = suffix, root, template
        self.store, self.name, self.shapes, self.small = store, name, {}, {}


class _Chunked:
    def __init__(self, prepared, product, output_dir, hooks, input_path):
        from .hooks import ProgressHook, TimingHook

        self.prepared = prepared
        self.output_dir = Path(output_dir or ".")
        self.input_path = input_path
        self.source = str(input_path or product.filename)
        hooks = list(hooks) or [TimingHook()]
        self.once_hooks = [h for h in hooks if isinstance(h, ProgressHook)]
        self.chunk_hooks = [h for h in hooks if not isinstance(h, ProgressHook)]
        self.product = product
        self.budget = memory_budget_mib() * 2**20
        self.original = {k: product.meta.get(k) for k in _CHUNK_KEYS if k in product.meta}
        self.work = Path(tempfile.mkdtemp(prefix=".webbcal-chunks-", dir=self._work_parent()))
        self.extras = {}
        self.nstore = 0

    def _work_parent(self):
        self.output_dir.mkdir(parents=True, exist_ok=True)
        return self.output_dir

    def _new_store(self):
        self.nstore += 1
        return _RawStore(self.work / f"s{self.nstore}")

    # -- chunk geometry -----------------------------------------------------------------------
    def _chunks(self, state, chunking, halo):
        shape = state.sci_shape
        factor = BYTES_PER_ELEMENT.get(state.kind, 16)
        if chunking == "integrations" and state.kind in ("level1b", "ramp", "cube"):
            per = int(np.prod(shape[1:])) * factor
            n = max(1, int(self.budget // 2 // max(per, 1)))
            nints = shape[0]
            return [("lead", a, min(nints, a + n), 0, 0) for a in range(0, nints, n)]
        if chunking == "integrations":
            return [("all", 0, 0, 0, 0)]
        ny = shape[-2]
        per_row = int(np.prod(shape)) // ny * factor
        n = max(1, int(self.budget // 2 // max(per_row, 1)) - 2 * halo)
        out = []
        for y0 in range(0, ny, n):
            y1 = min(ny, y0 + n)
            a, b = max(0, y0 - halo), min(ny, y1 + halo)
            out.append(("rows", a, b, y0 - a, b - y1))
        return out

    def _chunk_product(self, state, chunk):
        kind, a, b, _lo, _hi = chunk
        arrays = {}
        for name in state.shapes:
            if kind == "lead" and not state.per_integration(name):
                arrays[name] = state.read(name, ("all", 0, 0))
            else:
                arrays[name] = state.read(name, (kind, a, b))
        meta = state.meta.copy()
        tables = dict(state.tables)
        if kind == "lead":
            meta["CHUNKI0"] = (a, "first integration of this chunk (webbcal chunked run)")
            start = int(self.original.get("INTSTART", 1) or 1)
            if "INTSTART" in meta:
                meta["INTSTART"] = start + a
            if "INTEND" in meta:
                meta["INTEND"] = start + b - 1
            nints = state.sci_shape[0]
            tab = tables.get("INT_TIMES")
            if tab is not None and getattr(tab, "dtype", None) is not None and tab.dtype.names:
                if "integration_number" in tab.dtype.names:
                    num = tab["integration_number"]
                    tables["INT_TIMES"] = tab[(num >= start + a) & (num <= start + b - 1)]
                elif len(tab) == nints:
                    tables["INT_TIMES"] = tab[a:b]
        elif kind == "rows":
            meta["SUBSTRT2"] = int(self.original.get("SUBSTRT2", 1) or 1) + a
            meta["SUBSIZE2"] = b - a
        p = Product(state.kind, meta, arrays, tables, {k: v.copy() for k, v in state.ext_headers.items()},
                    self.product.filename, wcs=state.wcs)
        for attr in ("association", "asn_product"):
            if attr in self.product.__dict__:
                setattr(p, attr, self.product.__dict__[attr])
        return p

    # -- collecting outputs ---------------------------------------------------------------------
    def _put(self, target, prod, chunk, full_state, first, nints):
        """Write a chunk's output ``prod`` into ``target`` (a _State or _Extra)."""
        kind, a, b, lo, hi = chunk
        for name, arr in prod.arrays.items():
            arr = np.asarray(arr)
            per_int = prod.kind in ("level1b", "ramp", "cube") and arr.ndim >= 3
            if first:
                if kind == "lead" and per_int:
                    shape = (nints,) + arr.shape[1:]
                elif kind == "rows" and arr.ndim >= 2:
                    shape = arr.shape[:-2] + (full_state.sci_shape[-2], arr.shape[-1])
                else:
                    shape = arr.shape
                target.shapes[name] = (shape, arr.dtype)
                if kind in ("lead", "all") and not per_int:
                    target.small[name] = arr.copy()
                else:
                    target.store.create(name, shape, arr.dtype)
            shape, dtype = target.shapes[name]
            if arr.dtype != dtype:
                raise RuntimeError(f"chunked run: {name} changes dtype between chunks")
            if name in target.small:
                if not first:
                    if dtype.kind in "ui":
                        np.bitwise_or(target.small[name], arr, out=target.small[name])
                continue
            if kind == "lead":
                target.store.write(name, shape, dtype, ("lead", a, b), arr)
            else:
                part = arr[..., lo:arr.shape[-2] - hi, :]
                target.store.write(name, shape, dtype, ("rows", a + lo, b - hi), part)

    # -- one step on one chunk (the body of execute_plan's loop) -------------------------------
    def _run_step(self, rs, step, prod, record, first):
        from .execute import _coerce_kind
        from .errors import WebbcalError
        from .hooks import StepRecord, call_hooks
        from .step import SkipStep
        from . import crds_refs

        keyword = rs.step_class.status_keyword if rs.step_class is not None else ""
        if rs.params.skip:
            if keyword:
                prod.meta[keyword] = "SKIPPED"
            return prod
        prod = _coerce_kind(prod, step, self.source)
        scratch = StepRecord(rs.alias)
        if first:
            call_hooks(self.once_hooks, "before_step", rs.alias, prod)
        call_hooks(self.chunk_hooks, "before_step", rs.alias, prod)
        step._extra_outputs = []
        try:
            out = step.process(prod)
            if out is None:
                raise WebbcalError(f"step {rs.alias} returned no product (a plugin bug)")
            prod = out
        except SkipStep as why:
            scratch.status = "SKIPPED"
            scratch.message = str(why)
        except WebbcalError as exc:
            call_hooks(self.chunk_hooks, "on_error", rs.alias, exc)
            raise type(exc)(f"{self.source}: step {rs.alias}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - as execute_plan: one line naming file and step
            call_hooks(self.chunk_hooks, "on_error", rs.alias, exc)
            msg = str(exc).splitlines()[0] if str(exc) else ""
            raise WebbcalError(f"{self.source}: step {rs.alias} failed: {type(exc).__name__}: {msg}") from exc
        call_hooks(self.chunk_hooks, "after_step", rs.alias, prod, scratch)
        if first:
            record.status, record.message = scratch.status, scratch.message
            if scratch.status == "SKIPPED":
                log.info("%s: %s skipped: %s", self.source, rs.alias, scratch.message)
        elif scratch.status != record.status:
            raise WebbcalError(f"{self.source}: step {rs.alias}: {record.status} in the first chunk but "
                               f"{scratch.status} in another; run it without chunking (a larger memory budget)")
        record.seconds += scratch.seconds
        record.peak_rss_mb = max(record.peak_rss_mb, scratch.peak_rss_mb)
        if keyword:
            prod.meta[keyword] = record.status
        if record.status == "COMPLETE":
            for reftype, path in self.prepared.references.get(rs.alias, {}).items():
                kw = crds_refs.reftype_keyword(reftype)
                if path is None:
                    prod.meta[kw] = "N/A"
                elif self.prepared.reference_sources[rs.alias].get(reftype) == "crds":
                    prod.meta[kw] = f"crds://{Path(path).name}"
                else:
                    prod.meta[kw] = str(path)[-68:]
            prod.meta.add_history(f"webbcal {rs.alias}: COMPLETE")
        return prod

    # -- the whole run ---------------------------------------------------------------------------
    def run(self):
        from .execute import RunResult
        from .hooks import StepRecord, call_hooks

        p = self.product
        state = _State(p.kind, p.meta.copy(), dict(p.tables), dict(p.ext_headers), p.wcs,
                       dict(p.shapes), _FitsStore(p.path))
        result = RunResult(input=self.source, config_hash=self.prepared.config_hash)
        records = {}
        try:
            phases = _phases(self.prepared.plan)
            for chunking, halo, steps in phases:
                chunks = self._chunks(state, chunking, halo)
                log.info("%s: %s in %d chunk(s) by %s", self.source, "+".join(r.alias for r in steps),
                         len(chunks), chunking)
                instances = {}
                for rs in steps:
                    records[rs.alias] = StepRecord(rs.alias)
                    if rs.params.skip:
                        records[rs.alias].status, records[rs.alias].message = "SKIPPED", "skip=True"
                    else:
                        instances[rs.alias] = rs.step_class(params=rs.params,
                                                            references=self.prepared.references.get(rs.alias, {}))
                store = self._new_store()
                nints = state.sci_shape[0] if state.kind in ("level1b", "ramp", "cube") else 0
                new = None
                for ci, chunk in enumerate(chunks):
                    first = ci == 0
                    prod = self._chunk_product(state, chunk)
                    for rs in steps:
                        prod = self._run_step(rs, instances.get(rs.alias), prod, records[rs.alias], first)
                        if rs.alias in instances:
                            for sfx, extra, root in instances[rs.alias]._extra_outputs:
                                self._put_extra(rs.alias, sfx, extra, root, chunk, state, first, nints)
                            instances[rs.alias]._extra_outputs = []
                    if first:
                        new = _State(prod.kind, prod.meta, dict(prod.tables), prod.ext_headers, prod.wcs,
                                     {}, store)
                        if chunk[0] == "lead":
                            new.tables = dict(state.tables) if "INT_TIMES" in state.tables else new.tables
                    self._put(new, prod, chunk, state, first, nints)
                    del prod
                for rs in steps:
                    if not rs.params.skip:
                        call_hooks(self.once_hooks, "after_step", rs.alias, None, records[rs.alias])
                old = state
                state = new
                old.store.close()
                self._restore(state.meta)
            result.records = [records[rs.alias] for rs in self.prepared.plan]
            return self._save(state, result)
        finally:
            try:
                state.store.close()
            except Exception:  # noqa: BLE001
                pass
            shutil.rmtree(self.work, ignore_errors=True)

    def _restore(self, meta):
        for k in _CHUNK_KEYS:
            if k in self.original:
                meta[k] = self.original[k]
            elif k in meta:
                del meta[k]

    def _put_extra(self, alias, sfx, extra, root, chunk, state, first, nints):
        if not isinstance(extra, Product):
            from .errors import WebbcalError

            raise WebbcalError(f"{self.source}: step {alias} emits a {type(extra).__name__}, which a "
                               f"chunked run cannot assemble; use a larger memory budget")
        key = (alias, sfx, root)
        if first:
            name = f"x{len(self.extras)}"
            self.extras[key] = _Extra(sfx, root, extra, self._new_store(), name)
            self.extras[key].full_tables = dict(state.tables)
        self._put(self.extras[key], extra, chunk, state, first, nints)

    def _save(self, state, result):
        from .execute import _check_not_input, _stamp

        final_meta = state.meta
        extras = []
        for (_alias, sfx, root), ex in self.extras.items():
            t = ex.template
            meta = t.meta
            self._restore(meta)
            tables = dict(t.tables)
            if "INT_TIMES" in tables and "INT_TIMES" in ex.full_tables:
                tables["INT_TIMES"] = ex.full_tables["INT_TIMES"]
            extras.append((sfx, _State(t.kind, meta, tables, t.ext_headers, t.wcs, ex.shapes, ex.store, ex.small),
                           root, t.rootname))
        for _sfx, ex, _root, _rn in extras:
            for kw, value in final_meta.items():
                if kw.startswith(("S_", "R_")) and kw not in ex.meta:
                    ex.meta[kw] = value
            _stamp(ex, self.prepared)
        _stamp(state, self.prepared)
        rootname = self.product.rootname
        suffix = self.prepared.output_suffix or (self.prepared.plan[-1].alias if self.prepared.plan else "out")
        targets = [(self.output_dir / f"{rootname}_{suffix}.fits", state)]
        for sfx, ex, root, rn in extras:
            targets.append((self.output_dir / f"{root or rn or rootname}_{sfx}.fits", ex))
        for where, _ in targets:
            _check_not_input(where, self.input_path)
        for where, st in targets:
            write_fits(st, where)
            result.outputs.append(str(where))
            st.store.close()
        result.main_output = str(targets[0][0])
        result.product = open_input(targets[0][0])
        return result


# =============================================================================================
# Streaming FITS writer (the same file Product.save writes, without the arrays in memory)
# =============================================================================================
def _hdu_bytes_header(hdu):
    from astropy.io import fits

    bio = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(bio, output_verify="silentfix")
    bio.seek(0)
    with fits.open(bio) as h:
        return h[1].header.copy()


def write_fits(state, path):
    """Write a :class:`_State` as :meth:`Product.save` would, streaming arrays from its store."""
    from astropy.io import fits

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = state.meta.copy()
    spec = KINDS.get(state.kind)
    if spec is not None:
        meta["DATAMODL"] = (spec.datamodel, "Type of data model")
    meta["FILENAME"] = (path.name, "Name of the file")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        bio = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(header=meta)]).writeto(bio, output_verify="silentfix")
        fh.write(bio.getvalue())
        names = list(state.shapes)
        for name in names:
            shape, dtype = state.shapes[name]
            if spec is not None and name in spec.extensions and dtype != spec.extensions[name][1]:
                dtype_out = np.dtype(spec.extensions[name][1])
            else:
                dtype_out = np.dtype(dtype)
            hdr = fits.Header()
            hdr.update(state.ext_headers.get(name, fits.Header()))
            ghost = np.zeros((1,) * len(shape), dtype_out)
            head = _hdu_bytes_header(fits.ImageHDU(data=ghost, header=hdr, name=name))
            for k, n in enumerate(reversed(shape)):
                head[f"NAXIS{k + 1}"] = n
            fh.write(head.tostring().encode("ascii"))
            nbytes = 0
            lead = shape[0] if len(shape) > 2 else shape[-2]
            kind = "lead" if len(shape) > 2 else "rows"
            per = int(np.prod(shape)) // max(lead, 1) * dtype_out.itemsize
            step = max(1, int(min(4 << 20, memory_budget_mib() * 2**20 / 16) // max(1, per)))
            for a in range(0, lead, step):
                b = min(lead, a + step)
                block = state.read(name, (kind, a, b) if len(shape) >= 2 else ("all", 0, 0))
                fh.write(_to_fits_bytes(block.astype(dtype_out, copy=False)))
                nbytes += block.size * dtype_out.itemsize
                if len(shape) < 2:
                    break
            fh.write(b"\0" * (-nbytes % 2880))
        for name, table in state.tables.items():
            if table is None:
                continue
            fh.write(_small_hdu_bytes(fits.BinTableHDU(data=table, name=name)))
        if state.wcs is not None:
            fh.write(_small_hdu_bytes(wcs_hdu(state.wcs)))
    return path


def _to_fits_bytes(block):
    dt = block.dtype
    if dt.kind == "u" and dt.itemsize > 1:
        signed = np.dtype(f"i{dt.itemsize}")
        block = (block ^ np.array(1 << (8 * dt.itemsize - 1), dt)).view(signed)
        dt = signed
    return np.ascontiguousarray(block, dtype=dt.newbyteorder(">")).tobytes()


def _small_hdu_bytes(hdu):
    from astropy.io import fits

    bio = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(bio, output_verify="silentfix")
    return bio.getvalue()[2880:]
