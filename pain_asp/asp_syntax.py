"""Read clingo's abstract syntax of a knowledge-base statement: the predicates it names, the
function in its head, a string constant. Shared by the knowledge-base loader (which predicates
are read) and the authoring tools (lint, consistency check)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["atom_names", "head_function", "string_of", "walk"]


def walk(node: Any) -> Iterator[Any]:
    """Every node of ``node``'s tree, ``node`` first."""
    from clingo import ast

    if isinstance(node, ast.AST):
        yield node
        for key in node.child_keys:
            value = getattr(node, key)
            if value is None:
                continue
            if isinstance(value, ast.AST):
                yield from walk(value)
            else:
                for item in value:
                    yield from walk(item)


def atom_names(node: Any) -> set[str]:
    """The predicate names of the atoms in ``node``."""
    from clingo import ast

    names = set()
    for item in walk(node):
        if item.ast_type == ast.ASTType.SymbolicAtom:
            term = item.symbol
            if term.ast_type == ast.ASTType.Function:
                names.add(term.name)
            elif term.ast_type == ast.ASTType.SymbolicTerm and term.symbol.type.name == "Function":
                names.add(term.symbol.name)
    return names


def head_function(head: Any) -> Any:
    """The function term of a plain atom head, else None."""
    from clingo import ast

    if head.ast_type == ast.ASTType.Literal and head.atom.ast_type == ast.ASTType.SymbolicAtom:
        term = head.atom.symbol
        if term.ast_type == ast.ASTType.Function:
            return term
    return None


def string_of(term: Any) -> str | None:
    """The text of a string constant term, else None."""
    from clingo import ast

    if term.ast_type == ast.ASTType.SymbolicTerm and term.symbol.type.name == "String":
        return term.symbol.string
    return None
