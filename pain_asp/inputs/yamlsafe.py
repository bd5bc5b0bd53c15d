"""Safe, bounded YAML loading with YAML 1.2 scalars, for every YAML file the product reads.

Only a safe constructor is ever used: no YAML tag can construct a Python object. libyaml's C
parser is used when PyYAML was built with it (it parses payer files about ten times faster,
which matters for a one-claim check).

Scalars follow the YAML 1.2 JSON schema, not YAML 1.1: only ``null``/``~``/empty, ``true``/
``false``, whole numbers written canonically (``0``, ``64483``, ``-5``) and decimal numbers
(``850.00``, ``1e3``, ``.inf``) are resolved; everything else stays the text it was written as.
So ``000123`` is the id ``"000123"`` (YAML 1.1 read it as the octal number 83), ``01234`` is a
code, ``2026-02-30`` is text that a date field then rejects for its claim alone, and ``yes``,
``on`` or ``1_000`` are text. A canonical whole number reads back to exactly its text.

Every document is bounded before it is built (docs/architecture.md): a key repeated in one mapping is an
error with its line, nesting is at most :data:`MAX_DEPTH` levels, and a document (or one item
of a top-level list) holds at most :data:`MAX_NODES` values once aliases are expanded, so an
alias bomb ("billion laughs") is refused in milliseconds; a recursive alias is refused too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import BaseResolver

__all__ = ["safe_load", "compose", "compose_all", "construct", "check_limits",
           "line_of", "expectation", "YAMLError", "MAX_DEPTH", "MAX_NODES"]

YAMLError = yaml.YAMLError
MAX_DEPTH = 32
MAX_NODES = 100_000



class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer):
    """The pure-Python parser, for a PyYAML built without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)


_Parser: Any = yaml.cyaml.CParser if yaml.__with_libyaml__ else _PyParser


class _Resolver(BaseResolver):
    """The YAML 1.2 JSON schema; a plain scalar that matches none of these stays text."""


for _tag, _pattern, _first in (
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("bool", r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    ("int", r"0|-?[1-9][0-9]*", list("-0123456789")),
    ("float", r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)", list("-+.0123456789")),
):
    _Resolver.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(f"^(?:{_pattern})$"), _first)


class _Refused(ConstructorError):
    """A document this module refuses; its ``problem`` says what is expected instead."""


class _Constructor(SafeConstructor):
    """The safe constructor, refusing a key that repeats one of the same mapping."""

    def construct_yaml_int(self, node: Any) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            raise _Refused(None, None, "a number of at most 4,300 digits", node.start_mark) from None

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) < len(node.value):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in first:
                    raise _Refused(
                        None, None, f"each key once in a mapping (this key repeats the one on line "
                                    f"{first[key]})", key_node.start_mark)
                first[key] = line
        return mapping


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)


class _Loader(_Parser, _Constructor, _Resolver):
    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


def compose_all(text: str) -> Iterator[Any]:
    """The node tree of every document in ``text`` (with line marks), unbuilt and unchecked."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


def compose(text: str) -> Any:
    """The node tree of one document (for line numbers in error messages)."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def check_limits(node: Any) -> None:
    """Raise a YAMLError at the offending node when ``node`` nests deeper than MAX_DEPTH, holds
    more than MAX_NODES values with its aliases expanded, or contains itself through an alias."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        key = id(current)
        children = _children(current)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            depths[key] = 1 + max((depths[id(c)] for c in children), default=0)
            if depths[key] > MAX_DEPTH:
                raise _limit(current, f"at most {MAX_DEPTH} levels of nesting")
            if sizes[key] > MAX_NODES:
                raise _limit(current, f"at most {MAX_NODES:,} values once aliases are expanded "
                                      "(an alias bomb?)")
            continue
        if key in sizes:
            continue
        if key in open_:
            raise _limit(current, "no alias to a node that contains it (a recursive alias)")
        open_.add(key)
        if len(open_) > MAX_DEPTH:
            raise _limit(current, f"at most {MAX_DEPTH} levels of nesting")
        stack.append((current, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return None


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _limit(node: Any, expected: str) -> YAMLError:
    return _Refused(None, None, expected, node.start_mark)


def expectation(exc: YAMLError, text: str = "") -> tuple[str, int | None]:
    """What a YAML error expects, in words that do not quote the input, and its line."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or "syntax error"
    if isinstance(exc, _Refused):
        return problem, line
    if isinstance(exc, yaml.reader.ReaderError):
        return "text without control characters such as NUL", text.count("\n", 0, exc.position) + 1
    if "constructor for the tag" in problem:
        return "standard YAML tags only (no application or Python tags)", line
    if "unhashable key" in problem:
        return "keys that are text or numbers, not lists or mappings", line
    where = f" (line {line}, column {mark.column + 1})" if mark is not None else ""
    return f"valid YAML{where}: {problem}", line


def construct(node: Any) -> Any:
    """Build the Python value of a checked node tree (YAML 1.2 scalars, no repeated keys)."""
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def safe_load(text: str) -> Any:
    """Parse, check and build one YAML document (None when the text holds none)."""
    node = compose(text)
    if node is None:
        return None
    check_limits(node)
    return construct(node)


def line_of(node: Any, keys: list[Any]) -> int:
    """The line (1-based) of the value at ``keys`` (mapping keys and 0-based list positions)
    under ``node``, or of the deepest part of that path the document has."""
    line = node.start_mark.line + 1
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line
