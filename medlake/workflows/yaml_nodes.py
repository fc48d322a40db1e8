"""Read YAML into plain Python values while remembering the line of every key and item.

PyYAML's composer gives nodes with ``start_mark``; walking them once yields the value and a map from each path
(``("steps", 0, "operator")``) to its 1-based line, so validation errors can point at the line to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from medlake.workflows.errors import WorkflowError

__all__ = ["Located", "Path_", "line_of", "read_located"]

Path_ = tuple[str | int, ...]
Located = tuple[Any, dict[Path_, int]]


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], loader: yaml.SafeLoader, file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves ``<<: *anchor`` merge keys
        value: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                raise WorkflowError("expected a plain text key", file=file, line=key_node.start_mark.line + 1)
            if str(key) in value:
                raise WorkflowError(f"duplicate key {key!r}", file=file, line=key_node.start_mark.line + 1)
            value[str(key)] = _walk(value_node, (*path, str(key)), lines, loader, file)
        return value
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), lines, loader, file) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def read_located(path: Path) -> Located:
    """The YAML document in ``path`` and the line of every path inside it."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError(f"cannot read workflow file: {exc}", file=file) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise WorkflowError("empty file; expected a workflow mapping (name, scenario, source, steps, target)",
                                file=file, line=1)
        lines: dict[Path_, int] = {}
        return _walk(node, (), lines, loader, file), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise WorkflowError(f"not valid YAML: {exc.problem or exc.context}", file=file, line=line) from None
    finally:
        loader.dispose()


def line_of(lines: dict[Path_, int], path: Path_) -> int | None:
    """Line of ``path``, or of its nearest enclosing node that has one."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
