"""Reading YAML and JSON text into plain values, safely, with line numbers.

The result is a :class:`Document`: plain dicts, lists, strings, numbers and
booleans, plus a map from each value's path (``blocks[2].rounds``) to the line
it was written on (YAML only), so problems found later can name the line.

Safety, since routine files come from anyone:

- YAML anchors and aliases (``&name``, ``*name``) are refused outright: they are
  how a "billion laughs" file makes a few hundred bytes expand to gigabytes.
- Nesting deeper than :data:`~classroom.domain.limits.MAX_TEXT_DEPTH` is refused
  before it is built.
- Only plain YAML types are read (PyYAML's safe loader); duplicate keys are
  refused rather than silently overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from classroom.domain.errors import Problem, RoutineFormatError
from classroom.domain.limits import MAX_TEXT_DEPTH

ALIASES_REFUSED = (
    "YAML anchors and aliases (& and *) aren't allowed in a routine; write each part out in full"
)
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
TOO_DEEP = f"the text is nested more than {MAX_TEXT_DEPTH} levels deep"


@dataclass(frozen=True, slots=True)
class Document:
    """Plain values read from a text, and the line each path starts on."""

    value: object
    lines: dict[str, int] = field(default_factory=dict)


def child_path(path: str, key: str | int) -> str:
    """``blocks`` + 2 → ``blocks[2]``; ``blocks[2]`` + ``rounds`` → ``blocks[2].rounds``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Refused(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses anchors and aliases and bounds nesting."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(ALIASES_REFUSED, event.start_mark.line + 1)
        self.depth += 1
        try:
            if self.depth > MAX_TEXT_DEPTH:
                raise _Refused(TOO_DEEP, event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(text: str) -> Document:
    """Read YAML text; raise :class:`RoutineFormatError` if it isn't plain, safe YAML."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as error:  # a character YAML doesn't allow
        raise RoutineFormatError([Problem("", f"this isn't valid YAML: {error}")]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise RoutineFormatError([Problem("", "the file is empty")])
        lines: dict[str, int] = {}
        problems: list[Problem] = []
        value = _convert(loader, node, "", lines, problems)
    except _Refused as refused:
        raise RoutineFormatError([Problem("", refused.message, refused.line)]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"this isn't valid YAML: {error.problem or error.context}"
        raise RoutineFormatError([Problem("", message, line)]) from None
    except yaml.YAMLError as error:
        raise RoutineFormatError([Problem("", f"this isn't valid YAML: {error}")]) from None
    finally:
        loader.dispose()
    if problems:
        raise RoutineFormatError(problems)
    return Document(value, lines)


def _convert(
    loader: _Loader, node: yaml.Node, path: str, lines: dict[str, int], problems: list[Problem]
) -> object:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        raise _Refused(f"YAML tags such as {node.tag!r} aren't allowed", node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                problems.append(Problem(path, f"a key must be text, not {key!r}", line))
                continue
            sub = child_path(path, key)
            if key in result:
                problems.append(Problem(sub, f"the key {key!r} is written twice", line))
                continue
            lines[sub] = line
            result[key] = _convert(loader, value_node, sub, lines, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, child_path(path, i), lines, problems)
            for i, item in enumerate(node.value)
        ]
    value: object = loader.construct_object(node)
    return value


def load_json(text: str) -> Document:
    """Read JSON text; raise :class:`RoutineFormatError` if it isn't valid JSON."""
    problems: list[Problem] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                problems.append(Problem(key, f"the key {key!r} is written twice"))
            result[key] = value
        return result

    try:
        value = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as error:
        message = f"this isn't valid JSON: {error.msg} (column {error.colno})"
        raise RoutineFormatError([Problem("", message, error.lineno)]) from None
    except RecursionError:
        raise RoutineFormatError([Problem("", TOO_DEEP)]) from None
    if _depth(value) > MAX_TEXT_DEPTH:
        raise RoutineFormatError([Problem("", TOO_DEEP)])
    if problems:
        raise RoutineFormatError(problems)
    return Document(value)


def _depth(value: object) -> int:
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest
