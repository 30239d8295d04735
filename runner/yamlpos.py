"""YAML loading that remembers where every key and value stands, and rejects duplicate keys.

Recipes must produce errors like ``recipe.yaml, line 12, column 7: unknown parameter ...``; the
plain PyYAML loaders forget positions and silently keep the last of two duplicate keys.
"""
from __future__ import annotations

import yaml

from .errors import RecipeError


class _Loader(yaml.SafeLoader):
    pass


def load_with_positions(text, source="<string>"):
    """Parse YAML text.

    Parameters
    ----------
    text : str
        YAML document.
    source : str
        File name for messages.

    Returns
    -------
    data : object
        The plain Python value (dicts, lists, scalars).
    positions : dict
        ``{path_tuple: (line, column)}`` (1-based) for every mapping key and sequence item;
        the key ``()`` is the document start.

    Raises
    ------
    RecipeError
        Syntax errors and duplicate keys, with line and column.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{source}{where}: invalid YAML ({problem})") from None
    positions = {(): (1, 1)}
    if node is None:
        return None, positions
    data = _build(node, (), positions, source)
    return data, positions


def _build(node, path, positions, source):
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = _Loader.construct_object(_Loader(""), key_node, deep=True) if not isinstance(key_node, yaml.ScalarNode) else _scalar(key_node)
            if isinstance(key, (dict, list)):
                raise RecipeError(f"{source}, line {key_node.start_mark.line + 1}: a key must be a plain name")
            if key in out:
                first = positions[path + (key,)]
                raise RecipeError(
                    f"{source}, line {key_node.start_mark.line + 1}, column {key_node.start_mark.column + 1}: "
                    f"duplicate key '{key}' (first defined at line {first[0]})"
                )
            positions[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _build(value_node, path + (key,), positions, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            positions[path + (i,)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_build(item, path + (i,), positions, source))
        return items
    return _scalar(node)


def _scalar(node):
    loader = _Loader("")
    return loader.construct_object(node)
