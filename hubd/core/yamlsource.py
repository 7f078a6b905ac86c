"""Read YAML keeping where each key stands, so errors can name file:line.

PyYAML's plain loaders forget positions and let a duplicate key silently
replace the first one.  This reader composes the node tree, builds plain
Python data from it, records the line of every key and list item by its path,
and reports duplicate keys as problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor as _Constructor

Path_ = tuple[str | int, ...]

# Bounds on what one file may expand to.  Anchors and aliases are legal YAML,
# but nested aliases ("billion laughs") expand exponentially, and deep nesting
# exhausts the stack: a house's configuration is far below both.
MAX_NODES = 100_000
MAX_DEPTH = 64


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; carries the line (1-based) when known."""

    def __init__(self, message: str, line: int | None) -> None:
        self.line = line
        super().__init__(message)


@dataclass
class YamlDocument:
    """Plain data plus the line of each key path and the duplicate keys found."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicates: list[tuple[Path_, int]] = field(default_factory=list)

    def line_of(self, path: Path_) -> int | None:
        """Return the line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document into a :class:`YamlDocument`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise YamlSyntaxError("YAML nested too deeply", None) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = err.problem or str(err)
        context = f" ({err.context})" if err.context else ""
        raise YamlSyntaxError(f"YAML syntax error: {problem}{context}", line) from None
    except yaml.YAMLError as err:
        raise YamlSyntaxError(f"YAML syntax error: {err}", None) from None
    doc = YamlDocument(data=None)
    if node is None:
        return doc
    doc.lines[()] = node.start_mark.line + 1
    try:
        doc.data = _build(node, (), doc, _Constructor())
    except RecursionError:  # a recursive alias (&x [*x]) or extreme nesting
        raise YamlSyntaxError("YAML nested too deeply", None) from None
    return doc


def _build(node: yaml.Node, path: Path_, doc: YamlDocument, ctor: _Constructor) -> Any:
    if len(path) > MAX_DEPTH:
        line = node.start_mark.line + 1
        raise YamlSyntaxError(f"YAML nested deeper than {MAX_DEPTH} levels", line)
    if len(doc.lines) > MAX_NODES:
        line = node.start_mark.line + 1
        raise YamlSyntaxError(
            f"YAML expands to more than {MAX_NODES} values (aliases of aliases?)", line
        )
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = ctor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                key = str(key)
            child = (*path, str(key))
            line = key_node.start_mark.line + 1
            if key in result:
                doc.duplicates.append((child, line))
                continue
            doc.lines[child] = line
            result[key] = _build(value_node, child, doc, ctor)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            doc.lines[child] = item.start_mark.line + 1
            items.append(_build(item, child, doc, ctor))
        return items
    return ctor.construct_object(node, deep=True)
