"""The pydantic models of a recipe file; the JSON Schema in ``schemas/`` is generated from them."""
from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool

Scalar = Union[StrictBool, int, float, str]


class CrdsPin(BaseModel):
    """The CRDS context a recipe is pinned to."""

    model_config = ConfigDict(extra="forbid")
    context: Optional[str] = Field(
        None, pattern=r"^jwst_\d{4}\.pmap$",
        description="CRDS context (jwst_NNNN.pmap) whose reference files and parameter references are used.",
    )


class Variant(BaseModel):
    """A per-mode variant: applies when every ``when`` keyword matches the input's header."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Short name, shown by `explain` and recorded in provenance.")
    description: str = Field("", description="What the mode is and why it differs.")
    when: Optional[dict[str, Union[Scalar, list[Scalar]]]] = Field(
        None, description="Header keyword -> value (or list of values; shell-style wildcards allowed) that select this variant.")
    steps: Optional[list[str]] = Field(None, description="Replaces the step sequence for this mode.")
    output_suffix: Optional[str] = Field(None, description="Suffix of the final product in this mode (e.g. calints).")
    parameters: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-step parameter overrides for this mode.")


class ChainStage(BaseModel):
    """One stage of a chained recipe, with optional parameter overrides."""

    model_config = ConfigDict(extra="forbid")
    recipe: str = Field(description="Shipped recipe alias or path.")
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)


class RecipeModel(BaseModel):
    """A webbcal recipe: a pipeline's ordered steps, parameters and per-mode variants."""

    model_config = ConfigDict(extra="forbid")
    pipeline: Optional[str] = Field(None, description="Pipeline alias, e.g. calwebb_detector1.")
    pipeline_class: Optional[str] = Field(
        None, description="The reference pipeline's class (Detector1Pipeline); CRDS pars-<class> references apply.")
    stage: Optional[int] = Field(None, ge=1, le=3, description="Pipeline stage, 1 to 3.")
    description: Optional[str] = Field(None, description="What this recipe is for.")
    extends: Optional[str] = Field(None, description="Recipe (shipped alias or path) this one overrides.")
    crds: Optional[CrdsPin] = Field(None, description="CRDS pinning.")
    output_suffix: Optional[str] = Field(None, description="Suffix of the final product (rate, cal, i2d, ...).")
    steps: Optional[list[str]] = Field(None, description="Ordered step aliases.")
    parameters: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-step parameters: step alias -> {parameter: value}.")
    variants: list[Variant] = Field(default_factory=list, description="Per-mode variants, applied in order.")
    chain: Optional[list[Union[str, ChainStage]]] = Field(
        None, description="Run these recipes one after another, each taking the previous stage's products.")
