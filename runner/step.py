"""The public Step API: what a science step plugin declares and implements.

API READY — plugins in ``steps/<alias>/step.py`` follow this module.

A step is a thin class over a pure algorithm function: it reads the arrays it needs from the
:class:`~runner.product.Product`, opens its reference files through :meth:`Step.reference`,
calls the algorithm, stores the results back and returns the product. The runner does the rest:
parameter precedence, CRDS selection, S_* status and R_* provenance keywords, saving, timing.

Example
-------
::

    from pydantic import Field
    from runner import Step, StepParameters

    class GainScaleParameters(StepParameters):
        '''Parameters of gain_scale.'''

    class GainScaleStep(Step):
        '''Rescale count rates by the gain reference's GAINFACT.'''
        alias = "gain_scale"
        class_name = "GainScaleStep"          # jwst class: CRDS pars-gainscalestep maps here
        Parameters = GainScaleParameters
        reference_types = ("gain",)
        input_kind = "image"                   # runner.product.KINDS name, or "any"
        output_kind = "image"
        status_keyword = "S_GANSCL"

        def process(self, product):
            ref = self.reference("gain")       # ReferenceFile, or SkipStep when CRDS says N/A
            factor = ref.get("GAINFACT")
            if factor is None:
                raise SkipStep("gain reference has no GAINFACT")
            product.data *= factor
            return product

Parameters are pydantic models (``extra='forbid'``): every field has a type, a default, a
one-line ``description`` and, where meaningful, bounds (``Field(4.0, gt=0)``). Every step gets
``skip``, ``save_results``, ``suffix``, ``output_dir``, ``output_file`` and one
``override_<reftype>`` per reference type automatically. Use the reference pipeline's names.

Ways to run a single step, as jwst users expect:

- ``JumpStep.call("x_ramp.fits", rejection_threshold=5)``: CRDS ``pars-jumpstep`` parameters of
  the context applied, then the keyword arguments;
- ``JumpStep(rejection_threshold=5).run(product_or_path)``: step defaults plus arguments only.
"""
from __future__ import annotations

import logging
from typing import ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from .errors import ReferenceFileError, WebbcalError


class SkipStep(Exception):
    """Raised by ``process`` when the step does not apply; the runner records SKIPPED."""


class StepParameters(BaseModel):
    """Parameters every step has."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    skip: bool = Field(False, description="Skip this step (status SKIPPED, data unchanged).")
    save_results: bool = Field(False, description="Save this step's output product.")
    suffix: Optional[str] = Field(None, description="Suffix of the saved output (default: the step alias).")
    output_dir: Optional[str] = Field(None, description="Folder for this step's saved output.")
    output_file: Optional[str] = Field(None, description="File name for this step's saved output.")


class Step:
    """Base class of science step plugins.

    Class attributes to declare
    ---------------------------
    alias : str
        Name used in recipes and on the command line (``jump``).
    class_name : str
        The reference pipeline's class name (``JumpStep``): CRDS ``pars-<class_name lower>``
        parameter references apply to this step.
    Parameters : type[StepParameters]
        The parameter model.
    reference_types : tuple of str
        CRDS reference types used (lower case: ``gain``, ``readnoise``).
    input_kind, output_kind : str
        Product kinds taken and returned (:data:`runner.product.KINDS` or ``"any"``).
    status_keyword : str
        The ``S_*`` keyword recording this step's status.
    chunking : str or None
        How the runner may split a product too large for its memory budget
        (:mod:`runner.chunked`); results must then be bit-identical to one call on the whole
        product. ``"integrations"``: every integration is independent; ``process`` sees whole
        frames of a subset of the integrations (the chunk's primary header has ``CHUNKI0``, the
        0-based index of its first integration in the exposure, and shifted ``INTSTART`` /
        ``INTEND`` when the input has them; ``INT_TIMES`` holds the chunk's rows). ``"rows"``:
        every pixel is independent along y except for ``chunk_halo`` rows of neighbours;
        ``process`` sees all integrations and groups of a block of rows (the chunk's
        ``SUBSTRT2`` / ``SUBSIZE2`` describe the block, so ``reference(...).array(.., product)``
        cuts references to it). ``None`` (default): the step needs the whole product.
    chunk_halo : int
        ``"rows"`` only: rows of neighbours above and below a block that the step reads.
    """

    alias: ClassVar[str] = ""
    class_name: ClassVar[str] = ""
    Parameters: ClassVar[type] = StepParameters
    reference_types: ClassVar[tuple] = ()
    input_kind: ClassVar[str] = "any"
    output_kind: ClassVar[str] = "any"
    status_keyword: ClassVar[str] = ""
    #: "integrations", "rows" or None (needs the whole product); see the class docstring
    chunking: ClassVar[str | None] = None
    #: rows of neighbours a "rows" step reads above and below its block
    chunk_halo: ClassVar[int] = 0

    _full_parameters: ClassVar[type] = None

    def __init__(self, params=None, references=None, **kwargs):
        model = self.parameter_model()
        if params is None:
            params = model(**kwargs)
        elif kwargs:
            params = params.model_copy(update=kwargs)
            params = model.model_validate(params.model_dump())
        self.params = params
        #: reftype -> local path, or None when CRDS says N/A; filled by the runner
        self.references = dict(references or {})
        self.log = logging.getLogger(f"webbcal.step.{self.alias}")
        self._opened = {}
        self._extra_outputs = []

    # -- declared metadata --------------------------------------------------------------------
    @classmethod
    def parameter_model(cls):
        """The parameter model including ``override_<reftype>`` fields."""
        cached = cls.__dict__.get("_full_parameters")
        if cached is not None:
            return cached
        fields = {
            f"override_{r}": (Optional[str], Field(None, description=f"Use this {r.upper()} reference file instead of the CRDS choice."))
            for r in cls.reference_types
        }
        model = create_model(f"{cls.__name__}Parameters", __base__=cls.Parameters, **fields)
        model.__doc__ = (cls.Parameters.__doc__ or "").strip() or f"Parameters of {cls.alias}."
        cls._full_parameters = model
        return model

    @classmethod
    def chunking_for(cls, params):
        """``(chunking, chunk_halo)`` for these parameters (default: the class attributes).

        Override when some parameter values make the step need the whole product.
        """
        return cls.chunking, cls.chunk_halo

    @classmethod
    def describe(cls):
        """One-line summary from the class docstring."""
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else ""

    # -- what process() may use ----------------------------------------------------------------
    def reference_path(self, reftype):
        """Local path chosen for ``reftype`` (override or CRDS), or None when N/A."""
        override = getattr(self.params, f"override_{reftype}", None)
        if override:
            return override
        return self.references.get(reftype)

    def reference(self, reftype, required=True):
        """Open the reference file of ``reftype``.

        Raises :class:`SkipStep` when none applies (CRDS N/A) and ``required``; returns None
        when none applies and not ``required``.
        """
        from .reffile import open_reference

        if reftype not in self._opened:
            path = self.reference_path(reftype)
            if path is None:
                if required:
                    raise SkipStep(f"no {reftype.upper()} reference applies to this exposure (N/A)")
                return None
            self._opened[reftype] = open_reference(path, reftype)
        return self._opened[reftype]

    def require(self, product, *keywords):
        """Header values of ``keywords``; a missing one raises InputError naming the file."""
        from .errors import InputError

        values = []
        for key in keywords:
            value = product.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise InputError(f"{product.filename}: missing keyword {key}, which step {self.alias} needs")
            values.append(value)
        return values[0] if len(values) == 1 else tuple(values)

    def emit(self, product, suffix, rootname=None):
        """Hand the runner an extra output to save as ``<rootname>_<suffix><ext>``.

        ``product`` is a :class:`~runner.product.Product` (saved as FITS) or any object with a
        ``save(path)`` method and a ``file_extension`` attribute (e.g. ``".ecsv"`` for a catalog).
        ``rootname`` defaults to the product's own rootname (stage 3: the association product).
        """
        self._extra_outputs.append((suffix, product, rootname))

    def process(self, product):  # pragma: no cover - abstract
        """Apply the step to ``product`` and return the result."""
        raise NotImplementedError

    # -- ways to run a single step -------------------------------------------------------------
    def run(self, input, *, crds_context=None, output_dir=None):
        """Run this step with its own parameters (no CRDS parameter references).

        Parameters
        ----------
        input : str, path-like or Product
        crds_context : str, optional
            Context used to choose reference files.
        output_dir : str, optional
            Folder for saved results (when ``save_results``).
        """
        from .execute import run_single_step

        return run_single_step(self, input, crds_context=crds_context, apply_crds_pars=False,
                               output_dir=output_dir)

    @classmethod
    def call(cls, input, *, crds_context=None, output_dir=None, **params):
        """Run with CRDS ``pars-*`` parameters of the context applied, then ``params``."""
        from .execute import run_single_step

        return run_single_step(cls, input, crds_context=crds_context, apply_crds_pars=True,
                               overrides=params, output_dir=output_dir)


def available_cores(maximum_cores="half"):
    """Number of cores a step may use.

    Parameters
    ----------
    maximum_cores : int or str
        As jwst users write it: an integer, or 'none' (1), 'quarter', 'half', 'all' of this
        machine's cores. Capped by the ``WEBBCAL_MAX_CORES`` environment variable, which batch
        executors set to 1 per worker.

    Returns
    -------
    int
        At least 1.
    """
    import os

    ncpu = os.cpu_count() or 1
    text = str(maximum_cores).strip().lower()
    if text in ("none", "1", ""):
        n = 1
    elif text == "quarter":
        n = ncpu // 4
    elif text == "half":
        n = ncpu // 2
    elif text == "all":
        n = ncpu
    else:
        try:
            n = int(text)
        except ValueError:
            raise ValueError(f"maximum_cores={maximum_cores!r}: expected an integer or none/quarter/half/all") from None
    cap = os.environ.get("WEBBCAL_MAX_CORES")
    if cap:
        n = min(n, int(cap))
    return max(1, min(n, ncpu))


__all__ = ["available_cores", "Step", "StepParameters", "SkipStep", "ReferenceFileError", "WebbcalError"]
