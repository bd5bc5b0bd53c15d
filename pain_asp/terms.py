"""Read clingo's printed form of a ground term into plain Python values.

Turning a model's atoms into Python through the Symbol API costs one call into clingo per
argument, per type test and per name; printing the atom once (``str(symbol)``) and reading
the text here is several times faster for the nested ``Why`` tuples of findings.

Values: integers are ``int``, strings ``str``, tuples ``tuple``, and functions and constants
:class:`Fn` (``name``, ``args``; a constant has no arguments). ``#inf`` and ``#sup`` are
``Fn("#inf")`` and ``Fn("#sup")``.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["Fn", "parse_term"]


class Fn(msgspec.Struct, frozen=True):
    """A function term ``name(args)``, or a constant when ``args`` is empty (not a tuple)."""

    name: str
    args: tuple[Any, ...] = ()

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return self.name + "(" + ",".join(show_term(a) for a in self.args) + ")"


_TOKEN = re.compile(r'\s*(?:(-?\d+)|"((?:[^"\\]|\\.)*)"|(#?[A-Za-z_\'][A-Za-z0-9_\']*)|([(),]))')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def parse_term(text: str) -> Any:
    """The value of a ground term printed by clingo (``str(symbol)``)."""
    tokens = _TOKEN.findall(text)
    value, end = _parse(tokens, 0)
    if end != len(tokens):
        raise ValueError(f"not one ground term: {text!r}")
    return value


def _parse(tokens: list[tuple[str, str, str, str]], i: int) -> tuple[Any, int]:
    number, string, name, punct = tokens[i]
    if number:
        return int(number), i + 1
    if name:
        if i + 1 < len(tokens) and tokens[i + 1][3] == "(":
            args, i = _arguments(tokens, i + 2)
            return Fn(name, tuple(args)), i
        return Fn(name), i + 1
    if punct == "(":
        args, end = _arguments(tokens, i + 1)
        return tuple(args), end
    if punct:
        raise ValueError(f"unexpected {punct!r}")
    return _unescape(string), i + 1


def _arguments(tokens: list[tuple[str, str, str, str]], i: int) -> tuple[list[Any], int]:
    """Comma-separated terms up to the closing parenthesis (a trailing comma is allowed)."""
    args: list[Any] = []
    while tokens[i][3] != ")":
        value, i = _parse(tokens, i)
        args.append(value)
        if tokens[i][3] == ",":
            i += 1
        elif tokens[i][3] != ")":
            raise ValueError("expected , or )")
    return args, i + 1


def show_term(value: Any) -> str:
    """The clingo text of a value read by :func:`parse_term` (its inverse)."""
    if isinstance(value, bool):
        raise TypeError("booleans are not terms")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, Fn):
        return str(value)
    if isinstance(value, tuple):
        inner = ",".join(show_term(a) for a in value)
        return "(" + inner + ("," if len(value) == 1 else "") + ")"
    raise TypeError(f"not a term: {value!r}")
