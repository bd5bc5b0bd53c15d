"""The knowledge base: where its files are and what its rules say about themselves.

Rule metadata lives in the rule files as facts (``rule/3``, ``rule_meta/3``,
``rule_source/5``, ``rule_effective/3``, ``rule_reads/2``), and so do the declarations of the
payer parameters the rules read (``parameter/3`` and its companions, kb/payer.lp). They are
read once per process by solving the knowledge base with no claims and ``kb/show_meta.lp`` as
output contract.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import msgspec

from .cache import cache_dir, folder_stamp, stamp_key, write_atomic
from .errors import PainAspError
from .payer_schema import ParamSpec, spec_from_dict, specs_from_symbols
from .resources import kb_dir

__all__ = ["Rule", "Source", "rule_catalog", "code_catalog", "parameter_catalog", "read_predicates",
           "main_file", "CodeInfo"]


class Source(msgspec.Struct, frozen=True):
    """A document a rule rests on."""

    document: str
    url: str
    confidence: str
    effective: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"document": self.document, "url": self.url, "confidence": self.confidence,
                "effective": self.effective}


class Rule(msgspec.Struct):
    """One rule of the catalog with its metadata."""

    id: str
    category: str
    severity: str
    meta: dict[str, str] = msgspec.field(default_factory=dict)
    sources: list[Source] = msgspec.field(default_factory=list)
    effective: tuple[int, int] | None = None
    reads: list[str] = msgspec.field(default_factory=list)

    @property
    def title(self) -> str:
        """Short title."""
        return self.meta.get("title", self.id)

    @property
    def confidence(self) -> str:
        """The weakest confidence among the rule's sources."""
        order = ["unverified", "secondary", "payer_policy", "source_verified"]
        levels = [s.confidence for s in self.sources if s.confidence in order]
        return min(levels, key=order.index) if levels else "unverified"

    def summary(self) -> dict[str, Any]:
        """The rule as ``pain-asp rules list --format json`` prints it."""
        return {"id": self.id, "title": self.title, "category": self.category, "severity": self.severity,
                "carc": self.meta.get("carc"), "rarc": self.meta.get("rarc"), "confidence": self.confidence,
                "sources": [s.document for s in self.sources]}


class CodeInfo(msgspec.Struct, frozen=True):
    """Catalog facts about one code."""

    code: str
    family: str
    region: str
    kind: str
    label: str
    confidence: str
    source: str


def main_file(directory: Path | None = None) -> Path:
    """The knowledge base's entry point (the include list)."""
    return (directory or kb_dir()) / "check.lp"


def _solve_meta(directory: Path) -> list:
    import clingo

    messages: list[str] = []
    ctl = clingo.Control(["--warn=none"], logger=lambda code, msg: messages.append(msg))
    try:
        ctl.load(str(main_file(directory)))
        ctl.load(str(directory / "show_meta.lp"))
        ctl.ground([("base", [])])
    except RuntimeError:
        raise PainAspError("the knowledge base does not parse:\n" + "\n".join(messages)) from None
    symbols: list = []
    ctl.solve(on_model=lambda m: symbols.extend(m.symbols(shown=True)))
    return symbols


# The version of what is read from the knowledge base and how (bumped when the reading changes,
# so that a cache written by an older pain-asp is not reused).
_METADATA_FORMAT = 2


def _kb_stamp(folder: Path) -> str:
    """A description of the knowledge base's files that changes whenever any of them changes."""
    return f"format {_METADATA_FORMAT}\n{folder_stamp(folder)}"


class _Metadata(msgspec.Struct, frozen=True):
    rules: dict[str, Rule]
    codes: dict[str, CodeInfo]
    reads: frozenset[str]
    parameters: dict[str, ParamSpec]


@lru_cache(maxsize=4)
def _metadata(directory: str | None) -> _Metadata:
    """Rules, codes, read predicates and payer parameters, from the cache when the knowledge
    base files are unchanged."""
    folder = Path(directory) if directory else kb_dir()
    stamp = _kb_stamp(folder)
    cache = cache_dir() / f"kb-meta-{stamp_key(stamp)}.json"
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data["stamp"] != stamp:
            raise KeyError("stamp")
        rules = {r["id"]: Rule(r["id"], r["category"], r["severity"], r["meta"],
                               [Source(**s) for s in r["sources"]],
                               tuple(r["effective"]) if r["effective"] else None, r["reads"])
                 for r in data["rules"]}
        return _Metadata(rules, {c["code"]: CodeInfo(**c) for c in data["codes"]}, frozenset(data["reads"]),
                         {name: spec_from_dict(spec) for name, spec in data["parameters"].items()})
    except (OSError, ValueError, KeyError, TypeError):
        pass
    rules, codes, parameters = _read_metadata(folder)
    reads = _read_predicates(folder)
    write_atomic(cache, json.dumps({
        "stamp": stamp,
        "reads": sorted(reads),
        "rules": [{"id": r.id, "category": r.category, "severity": r.severity, "meta": r.meta,
                   "sources": [s.as_dict() for s in r.sources], "effective": r.effective,
                   "reads": r.reads} for r in rules.values()],
        "codes": [msgspec.structs.asdict(c) for c in codes.values()],
        "parameters": {name: msgspec.structs.asdict(spec) for name, spec in parameters.items()},
    }))
    return _Metadata(rules, codes, reads, parameters)


def forget_metadata() -> None:
    """Drop the in-process catalog (after a rule file was written)."""
    _metadata.cache_clear()


def _read_predicates(folder: Path) -> frozenset[str]:
    """Names of the predicates some statement of the knowledge base reads: every atom except
    the plain head of a rule (bodies, conditions, ``#minimize``, ``#external`` ...), over all
    of the folder's .lp files (check, fix and code programs alike; not kb/authoring/, the claim
    space of ``kb check``, which chooses every input predicate)."""
    from clingo import ast

    from .asp_syntax import atom_names

    names: set[str] = set()

    def statement(node: Any) -> None:
        if node.ast_type == ast.ASTType.Rule and node.head.ast_type == ast.ASTType.Literal:
            for literal in node.body:
                names.update(atom_names(literal))
        else:
            names.update(atom_names(node))

    messages: list[str] = []
    try:  # files included by others are parsed once; the "already included" notes are dropped
        ast.parse_files([str(p) for p in sorted(folder.rglob("*.lp")) if p.parent.name != "authoring"], statement,
                        logger=lambda code, msg: messages.append(msg))
    except RuntimeError:
        raise PainAspError("the knowledge base does not parse:\n" + "\n".join(messages)) from None
    return frozenset(names)


def _read_metadata(folder: Path) -> tuple[dict[str, Rule], dict[str, CodeInfo], dict[str, ParamSpec]]:
    symbols = _solve_meta(folder)
    rules: dict[str, Rule] = {}
    codes: dict[str, dict[str, str]] = {}
    for sym in symbols:
        name, args = sym.name, sym.arguments
        if name == "rule":
            rules[args[0].string] = Rule(args[0].string, str(args[1]), str(args[2]))
    for sym in symbols:
        name, args = sym.name, sym.arguments
        if name == "rule_meta" and args[0].string in rules:
            value = args[2]
            rules[args[0].string].meta[str(args[1])] = value.string if value.type.name == "String" else str(value)
        elif name == "rule_source" and args[0].string in rules:
            rules[args[0].string].sources.append(
                Source(args[1].string, args[2].string, str(args[3]), args[4].string))
        elif name == "rule_effective" and args[0].string in rules:
            rules[args[0].string].effective = (args[1].number, args[2].number)
        elif name == "rule_reads" and args[0].string in rules:
            rules[args[0].string].reads.append(str(args[1]))
        elif name == "code":
            codes.setdefault(args[0].string, {}).update(
                family=str(args[1]), region=str(args[2]), kind=str(args[3]))
        elif name == "code_label":
            codes.setdefault(args[0].string, {})["label"] = args[1].string
        elif name == "code_evidence":
            codes.setdefault(args[0].string, {}).update(confidence=str(args[1]), source=args[2].string)
    for rule in rules.values():
        rule.sources.sort(key=lambda s: s.document)
        rule.reads.sort()
    catalog = {
        code: CodeInfo(code, info.get("family", ""), info.get("region", ""), info.get("kind", ""),
                       info.get("label", ""), info.get("confidence", ""), info.get("source", ""))
        for code, info in codes.items()
        if "family" in info
    }
    return dict(sorted(rules.items())), catalog, specs_from_symbols(symbols)


def rule_catalog(directory: str | None = None) -> dict[str, Rule]:
    """Every rule of the knowledge base, by id (sorted)."""
    return _metadata(directory).rules


def code_catalog(directory: str | None = None) -> dict[str, CodeInfo]:
    """Every code the catalog knows, by code."""
    return _metadata(directory).codes


def parameter_catalog(directory: str | None = None) -> dict[str, ParamSpec]:
    """Every payer parameter the rules declare (``parameter/3`` ...), by name (sorted)."""
    return _metadata(directory).parameters


def read_predicates(directory: str | None = None) -> frozenset[str]:
    """Names of the predicates the knowledge base's statements read (an input fact of any
    other predicate cannot change a finding, so the engine does not send it to clingo)."""
    return _metadata(directory).reads
