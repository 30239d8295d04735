"""The recipe JSON Schema, generated from the pydantic models and the registered steps.

Editors use it through the ``yaml-language-server`` comment at the top of every recipe; a test
regenerates it and fails when the committed ``schemas/recipe.schema.json`` differs.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from . import registry
from .recipe_model import RecipeModel

SCHEMA_FILE = "recipe.schema.json"


def step_parameter_schemas():
    """``{alias: JSON Schema of its parameters}`` for every step that loads."""
    out = {}
    for alias in registry.names():
        if not registry.available(alias):
            continue
        model = registry.get(alias).parameter_model()
        schema = model.model_json_schema()
        schema["additionalProperties"] = False
        schema.pop("title", None)
        schema["description"] = registry.get(alias).describe()
        out[alias] = schema
    return out


def build_schema():
    """The complete recipe schema as a dict."""
    schema = RecipeModel.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://webbcal.invalid/schemas/recipe.schema.json"
    steps = step_parameter_schemas()
    params_schema = {
        "type": "object",
        "description": "Per-step parameters: step alias -> {parameter: value}.",
        "properties": steps,
        "additionalProperties": {"type": "object"},
    }
    schema["properties"]["parameters"] = params_schema
    schema["$defs"]["Variant"]["properties"]["parameters"] = params_schema
    schema["$defs"]["ChainStage"]["properties"]["parameters"] = params_schema
    return schema


def schema_text():
    """The schema serialised exactly as committed."""
    return json.dumps(build_schema(), indent=2, sort_keys=True) + "\n"


def installed_schema_path():
    return Path(str(resources.files("schemas") / SCHEMA_FILE))


def write_schema(path=None):
    path = Path(path) if path else installed_schema_path()
    path.write_text(schema_text())
    return path


def validate_with_schema(data):
    """Validate a recipe dict against the committed schema; returns a list of error messages."""
    import jsonschema

    schema = json.loads(installed_schema_path().read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in validator.iter_errors(data)]
