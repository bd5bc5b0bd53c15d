"""The knowledge base's text as clingo grounds it: anonymous body variables named.

gringo projects every anonymous variable ``_`` of a positive body literal: for
``service(K, S, C, D, _)`` it adds an auxiliary predicate holding each ``service`` atom with
that argument dropped, and grounds it for every claim of a batch. Here the rules always
derive facts, so a projection saves no work later and only costs grounding: check mode
spent a fifth of its clingo instructions on them (valgrind, 300 generated claims).

:func:`program_text` parses the given files (with their ``#include`` files) with clingo's own
parser and gives each such ``_`` a name of its own (``Anon1``, ``Anon2``, ...). A named
variable that occurs once ranges over the same values as ``_``, so every rule derives the
same atoms: the answer is the same, without the projections. Negative literals keep their
``_`` (a variable there would be unsafe), and so do heads. The kb files themselves keep
``_`` and read as the policy they encode; the rewritten text is cached per file contents
(parsing takes about 120 ms, loading the cached text as little as loading the files).

The text also leaves out the facts that nothing in the program reads: a fact whose predicate
no rule body, aggregate, condition, ``#show`` or other statement mentions cannot change the
answer. Most of them are the rules' metadata (``rule_meta/3``, ``rule_source/5``, the
parameter declarations), read by the metadata solve (:mod:`pain_asp.kb`, which loads the files
as written) and not by a check: leaving them out halves the text clingo parses for every
check (about 7 ms of a one-claim ``pain-asp check``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .cache import folder_stamp, read_cached, stamp_key, write_cached

__all__ = ["named_anonymous", "program_text"]

# Bumped when the rewriting changes, so that text cached by an older pain-asp is not reused.
_FORMAT = 2


def program_text(files: Sequence[Path], logger: Callable[[Any, str], None] | None = None) -> str:
    """``files`` (and everything they include) as one program text, anonymous variables of
    positive body literals named; from the cache when no ``.lp`` file beside them changed.

    A file that does not parse raises RuntimeError, its messages sent to ``logger``."""
    stamp = _stamp(files)
    name = f"program-{stamp_key(stamp)}.lp"
    cached = read_cached(name, stamp)
    if cached is not None:
        return cached
    text = _rewritten(files, logger)
    write_cached(name, stamp, text)
    return text


def _stamp(files: Sequence[Path]) -> str:
    """Changes whenever any ``.lp`` file in the folders of ``files`` (or below) changes."""
    folders = sorted({f.resolve().parent for f in files})
    return "\n".join([f"format {_FORMAT}", *(str(f.resolve()) for f in files), *map(folder_stamp, folders)])


def named_anonymous(statements: Sequence[Any]) -> list[Any]:
    """Parsed statements (clingo.ast) with the anonymous variables of their positive body
    literals named, each by a name of its own."""
    namer = _AnonymousNamer()
    return [namer.statement(s) for s in statements]


def _rewritten(files: Sequence[Path], logger: Callable[[Any, str], None] | None) -> str:
    from clingo import ast

    statements: list[Any] = []
    ast.parse_files([str(f) for f in files], statements.append, logger=logger)
    kept = [s for s in statements if s.ast_type != ast.ASTType.Comment]
    return "\n".join(map(str, named_anonymous(read_facts_only(kept)))) + "\n"


def read_facts_only(statements: Sequence[Any]) -> list[Any]:
    """Parsed statements without the facts whose predicate no other statement mentions.

    Only plain facts (no body, one atom, no pool) are left out; if some statement mentions an
    atom whose predicate cannot be told (a pool of terms in a body), every fact stays."""
    facts = [_fact_signature(s) for s in statements]
    mentioned: set[tuple[str, int]] = set()
    collect = _MentionCollector(mentioned)
    for statement, signature in zip(statements, facts):
        if signature is None:
            collect(statement)
    if collect.unknown:
        return list(statements)
    return [s for s, signature in zip(statements, facts) if signature is None or signature in mentioned]


def _fact_signature(statement: Any) -> tuple[str, int] | None:
    """Name and arity of a plain fact's atom; None for any other statement."""
    from clingo import ast

    if statement.ast_type != ast.ASTType.Rule or statement.body:
        return None
    head = statement.head
    if head.ast_type != ast.ASTType.Literal or head.sign != ast.Sign.NoSign:
        return None
    if head.atom.ast_type != ast.ASTType.SymbolicAtom:
        return None
    return _signature(head.atom.symbol)


def _signature(term: Any) -> tuple[str, int] | None:
    from clingo import SymbolType, ast

    if term.ast_type == ast.ASTType.Function and not term.external:
        return (term.name, len(term.arguments))
    if term.ast_type == ast.ASTType.SymbolicTerm and term.symbol.type == SymbolType.Function:
        return (term.symbol.name, len(term.symbol.arguments))
    return None


class _MentionCollector:
    """Adds the signature of every atom a statement mentions (and of each ``#show p/n``) to
    ``mentioned``; ``unknown`` turns true at an atom whose predicate cannot be told."""

    def __init__(self, mentioned: set[tuple[str, int]]) -> None:
        from clingo import ast

        self.unknown = False
        collector = self

        class Visit(ast.Transformer):
            def visit_SymbolicAtom(self, node: Any) -> Any:
                collector.add(node.symbol)
                return node

            def visit_ShowSignature(self, node: Any) -> Any:
                mentioned.add((node.name, node.arity))
                return node

        self.mentioned = mentioned
        self.visit = Visit()

    def __call__(self, statement: Any) -> None:
        self.visit(statement)

    def add(self, term: Any) -> None:
        from clingo import ast

        if term.ast_type == ast.ASTType.Pool:
            for argument in term.arguments:
                self.add(argument)
            return
        signature = _signature(term)
        if signature is None:
            self.unknown = True
        else:
            self.mentioned.add(signature)


class _AnonymousNamer:
    """Names ``_`` in the positive literals of rule bodies, aggregate and condition elements,
    and ``#show`` conditions."""

    def __init__(self) -> None:
        from clingo import ast

        self.ast = ast
        self.count = 0
        namer = self

        class Rename(ast.Transformer):
            def visit_Variable(self, node: Any) -> Any:
                if node.name != "_":
                    return node
                namer.count += 1
                return node.update(name=f"Anon{namer.count}")

        self.rename = Rename()

    def statement(self, node: Any) -> Any:
        kinds = self.ast.ASTType
        if node.ast_type in (kinds.Rule, kinds.ShowTerm, kinds.Minimize):
            return node.update(body=[self.body_element(b) for b in node.body])
        return node

    def body_element(self, node: Any) -> Any:
        kinds = self.ast.ASTType
        if node.ast_type == kinds.Literal:
            return self.literal(node)
        if node.ast_type == kinds.ConditionalLiteral:
            return node.update(literal=self.literal(node.literal),
                               condition=[self.literal(c) for c in node.condition])
        return node

    def literal(self, node: Any) -> Any:
        ast = self.ast
        if node.ast_type != ast.ASTType.Literal:
            return node
        atom = node.atom
        if atom.ast_type == ast.ASTType.SymbolicAtom:
            return self.rename(node) if node.sign == ast.Sign.NoSign else node
        if atom.ast_type == ast.ASTType.BodyAggregate:
            elements = [e.update(condition=[self.literal(c) for c in e.condition]) for e in atom.elements]
            return node.update(atom=atom.update(elements=elements))
        return node
