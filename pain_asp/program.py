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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .cache import folder_stamp, read_cached, stamp_key, write_cached

__all__ = ["named_anonymous", "program_text"]

# Bumped when the rewriting changes, so that text cached by an older pain-asp is not reused.
_FORMAT = 1


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
    return "\n".join(map(str, named_anonymous(kept))) + "\n"


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
