"""Rule authoring (docs/authoring.md): show a rule, run its cases, measure coverage, lint, scaffold.

Compliance analysts write rules in ``kb/rules/<category>/*.lp`` (metadata as facts, one
concern per file) and example claims in ``tests/cases/<rule-id>/fire_*.yaml`` and
``pass_*.yaml``. This module is what ``pain-asp rules show|test|coverage|lint|new`` run:

- :func:`show_rule`: a rule's metadata, sources, the payer parameters it reads (with every
  payer's values), the payers that switch it off or re-grade it, its cases and its ASP text
  (the violation rules and the helper rules of its file they rest on);
- :func:`run_tests`: the cases of the checkout and an analyst's own folders, through the
  case runner of :mod:`pain_asp.authoring.casefiles` (the pytest suite runs the same code);
- :func:`coverage`: which rules fire in some case, which payer parameters and catalog code
  families the cases exercise, and which never;
- :func:`lint`: metadata complete and consistent with the violation heads, firing and
  non-firing cases for every rule, payer files valid, no clingo warning, generated docs
  current;
- :func:`scaffold_rule`: a new rule file with its metadata block and include line, and a
  firing and a non-firing case.

Nothing here imports clingo at module level; the CLI imports this module inside commands.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..asp_syntax import atom_names, head_function, string_of
from ..errors import PainAspError
from ..payer_schema import value_text
from ..resources import cases_dir, kb_dir

__all__ = [
    "CATEGORIES", "Layout", "layout", "payer_rule_notes", "Statement", "parse_kb", "rule_text", "show_rule",
    "show_text", "TestRun", "collect_cases", "run_tests", "Coverage", "coverage",
    "coverage_text", "LintProblem", "lint", "lint_text", "scaffold_rule", "value_text", "FILL_IN",
    "case_yaml", "include_list", "clingo_warnings", "rule_files",
]

CATEGORIES = ("coding", "payer", "history", "chronic_pain")
FILL_IN = "FILL IN"  # the marker of text a scaffold leaves for the analyst (lint reports it)
_RULE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_META_PREDICATES = {"rule", "rule_meta", "rule_source", "rule_reads", "rule_effective"}
_ALWAYS_PLACEHOLDERS = {"line", "lines", "payer"}


# --- where things are ------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """A knowledge base and, in a source checkout, the folders that go with it."""

    kb: Path
    root: Path | None  # the checkout (kb's parent holding pyproject.toml), else None
    cases_override: Path | None = None

    @property
    def cases(self) -> Path | None:
        """The folder of rule case folders (``--cases``, else ``<checkout>/tests/cases``, else,
        for the installed knowledge base, the cases installed with it)."""
        if self.cases_override is not None:
            return self.cases_override
        if self.root is not None and (self.root / "tests" / "cases").is_dir():
            return self.root / "tests" / "cases"
        if self.kb.resolve() == kb_dir().resolve():
            return cases_dir()
        return None

    @property
    def docs(self) -> Path | None:
        """The checkout's docs folder (generated docs belong to the checkout's KB)."""
        if self.root is None or not (self.root / "docs").is_dir():
            return None
        return self.root / "docs"

    @property
    def installed(self) -> bool:
        """True when the knowledge base lies inside an installed package (site-packages)."""
        return any(part.endswith("-packages") for part in self.kb.resolve().parts)


def _checkout_here() -> Path | None:
    """The current folder's ``kb/`` when the current folder is a pain-asp checkout."""
    here = Path.cwd()
    pyproject = here / "pyproject.toml"
    if (here / "kb" / "check.lp").is_file() and pyproject.is_file() and \
            'name = "pain-asp"' in pyproject.read_text(encoding="utf-8", errors="replace"):
        return here / "kb"
    return None


def layout(kb: Path | None = None, cases: Path | None = None) -> Layout:
    """Resolve ``--kb`` and ``--cases``.

    Without ``--kb``: the checkout in the current folder when there is one (an analyst edits
    the rules there, whether pain-asp was installed from it editable or not), else the
    knowledge base the checker uses.
    """
    folder = (kb or _checkout_here() or kb_dir()).resolve()
    if folder.is_dir() and not (folder / "check.lp").is_file() and (folder / "kb" / "check.lp").is_file():
        folder = folder / "kb"  # a checkout root was given
    if not (folder / "check.lp").is_file():
        raise PainAspError(f"--kb {kb}: expected a knowledge-base folder holding check.lp")
    if cases is not None and not cases.is_dir():
        raise PainAspError(f"--cases {cases}: expected an existing folder of rule case folders")
    root = folder.parent if (folder.parent / "pyproject.toml").is_file() else None
    return Layout(folder, root, cases.resolve() if cases is not None else None)


# --- reading the rule files ------------------------------------------------------------------

@dataclass
class Statement:
    """One statement (rule, fact or comment) of a knowledge-base file, with what it mentions."""

    file: Path
    begin: int
    end: int
    kind: str  # rule | comment | other
    heads: set[str] = field(default_factory=set)  # predicate names in the head
    body: set[str] = field(default_factory=set)   # predicate names in the body
    rule_ids: set[str] = field(default_factory=set)  # the rule ids a violation head names
    meta_of: str | None = None  # the rule id a metadata fact is about
    why: list[str] = field(default_factory=list)  # names of the Why arguments of a violation
    severity: str | None = None  # the fifth argument of violation/5, when a constant
    text: str = ""


def _describe(statement: Statement, node: Any) -> None:
    from clingo import ast

    statement.heads = atom_names(node.head)
    statement.body = set()
    for literal in node.body:
        statement.body |= atom_names(literal)
    function = head_function(node.head)
    if function is None or not function.arguments:
        return
    first = string_of(function.arguments[0])
    if function.name in _META_PREDICATES and first is not None:
        statement.meta_of = first
    if function.name == "violation" and len(function.arguments) in (4, 5) and first is not None:
        statement.rule_ids.add(first)
        why = function.arguments[3]
        items = why.arguments if (why.ast_type == ast.ASTType.Function and why.name == "") else [why]
        for item in items:
            if item.ast_type == ast.ASTType.Function and item.name:
                statement.why.append(item.name)
        if len(function.arguments) == 5:
            severity = function.arguments[4]
            if severity.ast_type == ast.ASTType.SymbolicTerm:
                statement.severity = str(severity.symbol)
            elif severity.ast_type == ast.ASTType.Function and not severity.arguments:
                statement.severity = severity.name


def include_list(kb: Path) -> list[Path]:
    """The files check.lp includes (recursively), in order, check.lp first."""
    seen: list[Path] = []

    def visit(path: Path) -> None:
        if path in seen or not path.is_file():
            return
        seen.append(path)
        for match in re.finditer(r'^\s*#include\s+"([^"]+)"\s*\.', path.read_text(encoding="utf-8"), re.M):
            visit((path.parent / match.group(1)).resolve())

    visit((kb / "check.lp").resolve())
    return seen


def parse_kb(kb: Path) -> list[Statement]:
    """Every statement of the knowledge base's files (check.lp and what it includes)."""
    from clingo import ast

    nodes: list[Any] = []
    messages: list[str] = []
    try:
        ast.parse_files([str((kb / "check.lp").resolve())], nodes.append,
                        logger=lambda code, msg: messages.append(msg))
    except RuntimeError:
        raise PainAspError("the knowledge base does not parse:\n" + "\n".join(messages)) from None
    texts: dict[str, list[str]] = {}
    out: list[Statement] = []
    for node in nodes:
        if node.ast_type == ast.ASTType.Program:
            continue
        name = node.location.begin.filename
        if name not in texts:
            texts[name] = Path(name).read_text(encoding="utf-8").splitlines()
        begin, end = node.location.begin.line, node.location.end.line
        kind = {ast.ASTType.Rule: "rule", ast.ASTType.Comment: "comment"}.get(node.ast_type, "other")
        statement = Statement(Path(name).resolve(), begin, end, kind,
                              text="\n".join(texts[name][begin - 1:end]))
        if kind == "rule":
            _describe(statement, node)
        out.append(statement)
    return out


def rule_files(statements: list[Statement]) -> dict[str, Path]:
    """The file declaring each rule id (its ``rule/3`` fact)."""
    out: dict[str, Path] = {}
    for s in statements:
        if s.meta_of and "rule" in s.heads and s.text.lstrip().startswith("rule("):
            out.setdefault(s.meta_of, s.file)
    return out


def rule_text(rule_id: str, statements: list[Statement]) -> tuple[Path | None, list[Statement]]:
    """The statements that make up a rule: its metadata, its violation rules, and the rules of
    the same file that those depend on (transitively), with the docstrings just above them."""
    file = rule_files(statements).get(rule_id)
    if file is None:
        return None, []
    mine = [s for s in statements if s.file == file]
    chosen = {id(s) for s in mine if s.meta_of == rule_id or rule_id in s.rule_ids}
    wanted = set().union(*(s.body for s in mine if rule_id in s.rule_ids)) if chosen else set()
    done: set[str] = set()
    while wanted - done:
        name = (wanted - done).pop()
        done.add(name)
        for s in mine:
            if s.kind == "rule" and name in s.heads and not s.rule_ids and not s.meta_of:
                chosen.add(id(s))
                wanted |= s.body
    ordered = [s for s in mine if id(s) in chosen]
    docs = [s for s in mine if s.kind == "comment" and s.text.lstrip().startswith("%*!")
            and any(o.begin == s.end + 1 for o in ordered if o.meta_of is None)]
    chosen |= {id(s) for s in docs}
    return file, [s for s in mine if id(s) in chosen]


# --- rules show ------------------------------------------------------------------------------

def payer_rule_notes(payer_id: str, payer_dirs: list[str] | None = None,
                     kb: Path | None = None) -> dict[str, str]:
    """The rules a payer touches, with how: switched off or re-graded (and since when), or
    reading parameters the payer sets. Rules the payer leaves alone are not listed."""
    from ..kb import rule_catalog
    from ..payers import load_registry

    rules = rule_catalog(str(kb) if kb else None)
    registry = load_registry(payer_dirs or [], set(rules))
    if payer_id not in registry.ids():
        raise PainAspError(f"--payer {payer_id}: not a payer id ({', '.join(registry.ids())})")
    payer = registry.get(payer_id)

    def window(d: Any) -> str:
        since = f" from {d.start}" if d.start else ""
        until = "" if d.until.year >= 9999 else f" to {d.until.isoformat()}"
        return since + until

    notes: dict[str, list[str]] = {}
    for rule_id, entries in payer.rule_off.items():
        notes.setdefault(rule_id, []).extend(f"off{window(d)}" for d in entries)
    for rule_id, entries in payer.rule_severity.items():
        notes.setdefault(rule_id, []).extend(f"severity {d.value}{window(d)}" for d in entries)
    for rule in rules.values():
        params = [name for name in rule.reads if name in payer.parameters]
        if params:
            notes.setdefault(rule.id, []).append("reads " + ", ".join(params))
    return {rule_id: "; ".join(items) for rule_id, items in sorted(notes.items()) if items}


def _first_line(text: str, width: int = 110) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def show_rule(rule_id: str, place: Layout, payer_dirs: list[str] | None = None) -> dict[str, Any]:
    """Everything about one rule, JSON-ready."""
    from ..kb import parameter_catalog, rule_catalog
    from ..payers import load_registry
    from .casefiles import find_cases, load_case

    rules = rule_catalog(str(place.kb))
    if rule_id not in rules:
        import difflib

        close = difflib.get_close_matches(rule_id, list(rules), n=1, cutoff=0.6)
        raise PainAspError(f"{rule_id}: not a rule id" + (f" (did you mean {close[0]}?)" if close else
                                                          " (see pain-asp rules list)"))
    rule = rules[rule_id]
    registry = load_registry(payer_dirs or [], set(rules), str(place.kb))
    parameters = parameter_catalog(str(place.kb))
    reads = []
    for name in rule.reads:
        spec = parameters.get(name)
        values = []
        for payer_id in registry.ids():
            payer = registry.get(payer_id)
            entries = payer.parameters.get(name, [])
            values.append({"payer": payer_id, "values": [{
                "since": d.start, "until": d.until.isoformat(),
                "value": value_text(spec, d.value) if spec else str(d.value),
                "source": dict(d.source)} for d in entries]})
        reads.append({"parameter": name, "help": spec.help if spec else "(not a declared parameter)",
                      "payers": values})
    settings = []
    for payer_id in registry.ids():
        payer = registry.get(payer_id)
        for d in payer.rule_off.get(rule_id, []):
            settings.append({"payer": payer_id, "setting": "off", "since": d.start,
                             "until": d.until.isoformat(), "source": dict(d.source)})
        for d in payer.rule_severity.get(rule_id, []):
            settings.append({"payer": payer_id, "setting": f"severity {d.value}",
                             "since": d.start, "until": d.until.isoformat(),
                             "source": dict(d.source)})
    cases = []
    if place.cases is not None:
        for path in find_cases(place.cases, [rule_id]):
            try:
                description = load_case(path).description
            except (ValueError, OSError) as exc:
                description = f"(does not load: {exc})"
            cases.append({"file": str(path), "kind": "fire" if path.stem.startswith("fire_") else "pass",
                          "name": path.stem, "description": " ".join(description.split())})
    file, statements = rule_text(rule_id, parse_kb(place.kb))
    return {
        "id": rule.id, "title": rule.title, "category": rule.category, "severity": rule.severity,
        "meta": dict(rule.meta), "effective": list(rule.effective) if rule.effective else None,
        "sources": [s.as_dict() for s in rule.sources], "reads": reads, "payer_settings": settings,
        "cases": cases, "file": str(file) if file else None,
        "text": [{"line": s.begin, "text": s.text} for s in statements],
    }


def _ymd_text(value: int) -> str:
    text = str(value)
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if len(text) == 8 else text


def show_text(info: dict[str, Any]) -> str:
    """``rules show`` for people."""
    meta = info["meta"]
    out = [f"{info['id']}: {info['title']}"]
    denial = ", ".join(f"{k.upper()} {meta[k]}" for k in ("carc", "rarc") if k in meta) or "no denial code"
    out.append(f"  category {info['category']}; default severity {info['severity']}; {denial}; "
               f"correctable by editing the claim: {meta.get('correctable', 'no')}")
    if info["effective"]:
        start, stop = info["effective"]
        out.append(f"  in force for dates of service {_ymd_text(start)} to {_ymd_text(stop)}")
    for key, label in (("message", "message"), ("review_message", "when documentation is unknown"),
                       ("fix", "fix"), ("action", "action")):
        if key in meta:
            out.append(f"  {label}: {meta[key]}")
    out.append("sources:")
    for s in info["sources"]:
        effective = f", effective {s['effective']}" if s["effective"] else ""
        out.append(f"  {s['document']}{effective} [{s['confidence']}]" + (f" {s['url']}" if s["url"] else ""))
    out.append("payer parameters read:" if info["reads"] else "payer parameters read: none")
    for read in info["reads"]:
        out.append(f"  {read['parameter']}: {read['help']}")
        for payer in read["payers"]:
            if not payer["values"]:
                out.append(f"    {payer['payer']}: not set (the rule does not apply)")
            for v in payer["values"]:
                since = f" since {v['since']}" if v["since"] else ""
                until = "" if v["until"] == "9999-12-31" else f" until {v['until']}"
                src = v["source"]
                out.append(f"    {payer['payer']}: {v['value']}{since}{until} "
                           f"({src.get('document')} [{src.get('confidence')}])")
    if info["payer_settings"]:
        out.append("payer settings of this rule:")
        for s in info["payer_settings"]:
            since = f" since {s['since']}" if s["since"] else ""
            out.append(f"  {s['payer']}: {s['setting']}{since} ({s['source'].get('document')})")
    if info["cases"]:
        out.append(f"example claims ({Path(info['cases'][0]['file']).parent}):")
        for case in info["cases"]:
            out.append(f"  {case['name']}: {_first_line(case['description'])}")
    else:
        out.append("example claims: none (add tests/cases/<rule-id>/fire_*.yaml and pass_*.yaml)")
    out.append(f"rule text ({info['file']}):")
    for item in info["text"]:
        for n, line in enumerate(item["text"].splitlines(), start=item["line"]):
            out.append(f"  {n:>4}  {line}")
    return "\n".join(out) + "\n"


# --- rules test ------------------------------------------------------------------------------

@dataclass
class TestRun:
    """The outcome of running case files."""

    outcomes: list[Any]  # casefiles.CaseOutcome
    broken: list[tuple[Path, str]]  # case files that do not load, with the reason

    @property
    def failed(self) -> list[Any]:
        """Outcomes whose finding sets differ (or whose case is malformed)."""
        return [o for o in self.outcomes if not o.passed]

    @property
    def ok(self) -> bool:
        """True when every case loaded and passed."""
        return not self.failed and not self.broken

    def text(self, verbose: bool = False) -> str:
        """Per failing case the expected and actual findings as a diff, then a summary."""
        out = []
        for outcome in self.outcomes:
            if not outcome.passed:
                out.append(outcome.diff())
                out.append("")
            elif verbose:
                out.append(f"ok   {outcome.case.name}")
        for path, reason in self.broken:
            out.append(f"case {path}: does not load: {reason}")
            out.append("")
        total = len(self.outcomes) + len(self.broken)
        bad = len(self.failed) + len(self.broken)
        summary = f"{total} case(s): {total - bad} passed, {bad} failed"
        if bad:
            names = [o.case.name for o in self.failed] + [str(p) for p, _ in self.broken]
            summary += ": " + ", ".join(names)
        out.append(summary)
        return "\n".join(out) + "\n"


def collect_cases(ids: list[str], paths: list[Path], place: Layout) -> list[Path]:
    """Case files to run: those under ``paths`` (files or folders), else the checkout's cases;
    only the given rule ids' when ``ids`` is not empty."""
    from .casefiles import find_cases

    roots = list(paths)
    if not roots:
        if place.cases is None:
            raise PainAspError("no case folder: give one (a folder of <rule-id>/fire_*.yaml and "
                               "pass_*.yaml files) or --cases DIR")
        roots = [place.cases]
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            if ids and root.parent.name not in ids:
                continue
            found.append(root)
        elif root.is_dir():
            found.extend(find_cases(root, ids or None))
        else:
            raise PainAspError(f"{root}: no such case file or folder")
    return list(dict.fromkeys(p.resolve() for p in found))


def run_tests(files: list[Path], place: Layout, payer_dirs: list[str] | None = None) -> TestRun:
    """Load and run case files (in one batch per set of payer folders and NCCI tables)."""
    from ..inputs.yamlsafe import YAMLError
    from .casefiles import load_case, run_cases

    cases, broken = [], []
    for path in files:
        try:
            cases.append(load_case(path))
        except (ValueError, OSError, TypeError, AttributeError, KeyError, YAMLError) as exc:
            broken.append((path, " ".join(str(exc).split())))
    outcomes = run_cases(cases, str(place.kb), payer_dirs) if cases else []
    return TestRun(outcomes, broken)


# --- rules coverage --------------------------------------------------------------------------

@dataclass
class Coverage:
    """What the cases exercise."""

    cases: int
    rules: dict[str, dict[str, int]]  # rule -> {fire_cases, pass_cases, fired}
    parameters: dict[str, dict[str, int]]  # parameter -> {payer: cases}
    parameters_set: dict[str, list[str]]  # parameter -> payers that set it
    families: dict[str, int]  # catalog family -> lines billed in cases
    failing: list[str]

    @staticmethod
    def _percent(hit: int, total: int) -> float:
        return 100.0 * hit / total if total else 100.0

    @property
    def rule_percent(self) -> float:
        """Share of rules that fire in at least one case."""
        return self._percent(sum(1 for r in self.rules.values() if r["fired"]), len(self.rules))

    @property
    def parameter_percent(self) -> float:
        """Share of declared parameters that some case exercises."""
        return self._percent(sum(1 for p in self.parameters.values() if p), len(self.parameters))

    @property
    def family_percent(self) -> float:
        """Share of catalog families billed in some case."""
        return self._percent(sum(1 for n in self.families.values() if n), len(self.families))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"cases": self.cases, "rule_percent": round(self.rule_percent, 1),
                "parameter_percent": round(self.parameter_percent, 1),
                "family_percent": round(self.family_percent, 1), "rules": self.rules,
                "parameters": self.parameters, "parameters_set": self.parameters_set,
                "families": self.families, "failing_cases": self.failing}


def coverage(run: TestRun, place: Layout, payer_dirs: list[str] | None = None) -> Coverage:
    """Rules fired, payer parameters exercised and code families billed by the cases of ``run``.

    A case exercises parameter P of payer X when one of its claims is billed to X, X sets P
    on the date of one of its lines, and the case concerns a rule that reads P: the case is
    in that rule's folder, or the claim gets a finding of that rule.
    """
    from ..kb import code_catalog, parameter_catalog, rule_catalog
    from ..payers import load_registry

    rules = rule_catalog(str(place.kb))
    codes = code_catalog(str(place.kb))
    parameters = parameter_catalog(str(place.kb))
    readers: dict[str, set[str]] = {}
    for rule in rules.values():
        for name in rule.reads:
            readers.setdefault(name, set()).add(rule.id)
    registry = load_registry(payer_dirs or [], set(rules), str(place.kb))
    by_rule = {r: {"fire_cases": 0, "pass_cases": 0, "fired": 0} for r in rules}
    params: dict[str, dict[str, int]] = {name: {} for name in parameters}
    families: dict[str, int] = {f: 0 for f in sorted({c.family for c in codes.values()})}
    for outcome in run.outcomes:
        case = outcome.case
        if case.rule in by_rule:
            by_rule[case.rule][f"{case.kind}_cases"] += 1
        for rule_id in {item[1] for item in outcome.actual}:
            if rule_id in by_rule:
                by_rule[rule_id]["fired"] += 1
        touched: set[tuple[str, str]] = set()
        for raw in case.claims:
            if not isinstance(raw, dict):
                continue
            lines = [ln for ln in raw.get("lines") or [] if isinstance(ln, dict)]
            for line in lines:
                info = codes.get(str(line.get("code", "")).upper())
                if info is not None:
                    families[info.family] = families.get(info.family, 0) + 1
            payer_id = str(raw.get("payer", ""))
            if payer_id not in registry.ids():
                continue
            payer = registry.get(payer_id)
            claim_rules = {item[1] for item in outcome.actual if item[0] == str(raw.get("claim_id"))}
            concerned = claim_rules | {case.rule}
            for name in params:
                if not readers.get(name, set()) & concerned:
                    continue
                for line in lines:
                    day = _as_date(line.get("date"))
                    if day is not None and payer.in_force(name, day) is not None:
                        touched.add((name, payer_id))
                        break
        for name, payer_id in touched:
            params[name][payer_id] = params[name].get(payer_id, 0) + 1
    set_by: dict[str, list[str]] = {name: [] for name in parameters}
    for payer_id in registry.ids():
        for name in registry.get(payer_id).parameters:
            set_by.setdefault(name, []).append(payer_id)
    return Coverage(len(run.outcomes), by_rule, params, set_by, families,
                    [o.case.name for o in run.failed])


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def coverage_text(cov: Coverage) -> str:
    """``rules coverage`` for people."""
    fired = [r for r, v in cov.rules.items() if v["fired"]]
    out = [f"{cov.cases} case(s) run" + (f"; {len(cov.failing)} failing (run pain-asp rules test)"
                                         if cov.failing else "")]
    out.append(f"rules: {len(fired)} of {len(cov.rules)} fire in some case ({cov.rule_percent:.0f} %)")
    width = max((len(r) for r in cov.rules), default=10)
    for rule_id, v in cov.rules.items():
        out.append(f"  {rule_id.ljust(width)}  fired in {v['fired']:>3} case(s); "
                   f"{v['fire_cases']} fire_, {v['pass_cases']} pass_")
    never = [r for r, v in cov.rules.items() if not v["fired"]]
    no_fire = [r for r, v in cov.rules.items() if not v["fire_cases"]]
    no_pass = [r for r, v in cov.rules.items() if not v["pass_cases"]]
    out.append("  never fire: " + (", ".join(never) or "none"))
    out.append("  without a fire_ case: " + (", ".join(no_fire) or "none"))
    out.append("  without a pass_ case: " + (", ".join(no_pass) or "none"))
    exercised = [p for p, v in cov.parameters.items() if v]
    out.append(f"payer parameters: {len(exercised)} of {len(cov.parameters)} exercised "
               f"({cov.parameter_percent:.0f} %)")
    width = max((len(p) for p in cov.parameters), default=10)
    for name, by_payer in cov.parameters.items():
        shown = ", ".join(f"{p} {n}" for p, n in sorted(by_payer.items())) or "never"
        unexercised = [p for p in cov.parameters_set.get(name, []) if p not in by_payer]
        tail = f"; set but not exercised for: {', '.join(unexercised)}" if unexercised else ""
        out.append(f"  {name.ljust(width)}  {shown}{tail}")
    out.append("  never exercised: " + (", ".join(p for p, v in cov.parameters.items() if not v) or "none"))
    billed = [f for f, n in cov.families.items() if n]
    out.append(f"catalog families: {len(billed)} of {len(cov.families)} billed in some case "
               f"({cov.family_percent:.0f} %)")
    out.append("  billed: " + ", ".join(f"{f} {cov.families[f]}" for f in billed))
    out.append("  never billed: " + (", ".join(f for f, n in cov.families.items() if not n) or "none"))
    return "\n".join(out) + "\n"


# --- rules lint ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LintProblem:
    """One thing lint found: which check, where (file:line or rule id), what."""

    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.check}] {self.message}"


def _placeholders(template: str) -> set[str]:
    names = set()
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            names.add(name)
    return names


def _lint_metadata(rules: dict[str, Any], statements: list[Statement], files: dict[str, Path],
                   parameters: dict[str, Any]) -> list[LintProblem]:
    from ..vocabulary import CONFIDENCE_LEVELS, SEVERITIES

    out = []
    heads: dict[str, list[Statement]] = {}
    for s in statements:
        for rule_id in s.rule_ids:
            heads.setdefault(rule_id, []).append(s)
    for rule in rules.values():
        where = f"{files.get(rule.id, '?')} ({rule.id})"

        def problem(message: str, where: str = where) -> None:
            out.append(LintProblem("metadata", where, message))

        if not _RULE_ID_RE.match(rule.id):
            problem("rule ids are lower case letters, digits and hyphens")
        if rule.category not in CATEGORIES:
            problem(f"category {rule.category}: expected one of {', '.join(CATEGORIES)}")
        elif rule.id in files and files[rule.id].parent.name != rule.category:
            problem(f"a {rule.category} rule: its file belongs in the folder of its category, "
                    f"rules/{rule.category}/")
        if rule.severity not in SEVERITIES:
            problem(f"default severity {rule.severity}: expected one of {', '.join(SEVERITIES)}")
        required = ["title", "message", "correctable"]
        if rule.severity in ("deny", "review"):
            required.append("carc")  # the denial code a payer would likely send
        for key in required:
            if not rule.meta.get(key):
                problem(f"missing rule_meta({rule.id!r}, {key}, ...)")
        correctable = rule.meta.get("correctable")
        if correctable not in (None, "yes", "no"):
            problem(f"correctable {correctable}: expected yes or no")
        if correctable == "yes" and not rule.meta.get("fix"):
            problem("a correctable rule needs a fix hint (rule_meta fix)")
        if correctable == "no" and not rule.meta.get("action"):
            problem("a rule that is not correctable needs an action (rule_meta action)")
        if not rule.sources:
            problem("no rule_source fact: every rule cites what it rests on")
        for source in rule.sources:
            if source.confidence not in CONFIDENCE_LEVELS:
                problem(f"source {source.document!r}: confidence {source.confidence}, expected one of "
                        + ", ".join(CONFIDENCE_LEVELS))
            if source.effective and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", source.effective):
                problem(f"source {source.document!r}: effective {source.effective!r}, expected "
                        "YYYY-MM-DD or empty")
        for name in rule.reads:
            if name not in parameters:
                problem(f"rule_reads {name}: not a parameter declared in kb/ (parameter/3, kb/payer.lp)")
        texts = [rule.title] + [str(v) for v in rule.meta.values()] + [s.document for s in rule.sources]
        if any(FILL_IN in t for t in texts):
            problem(f"scaffold text left to fill in ({FILL_IN!r})")
        mine = heads.get(rule.id, [])
        if not mine:
            problem("no violation rule derives this rule id")
            continue
        why = set().union(*(set(s.why) for s in mine)) | _ALWAYS_PLACEHOLDERS
        for key in ("message", "review_message", "fix", "action"):
            missing = _placeholders(rule.meta.get(key, "")) - why
            if missing:
                problem(f"{key} uses {', '.join('{' + m + '}' for m in sorted(missing))}, which no "
                        "violation of the rule gives (Why names: " + ", ".join(sorted(why)) + ")")
        severities = {s.severity for s in mine if s.severity}
        for severity in sorted(severities - set(SEVERITIES)):
            problem(f"a violation/5 gives severity {severity}: expected one of {', '.join(SEVERITIES)}")
        if "review" in severities and not rule.meta.get("review_message"):
            problem("the rule can give review: add rule_meta review_message")
    for s in statements:
        for rule_id in s.rule_ids - set(rules):
            out.append(LintProblem("metadata", f"{s.file}:{s.begin}",
                                   f"violation names {rule_id!r}, which no rule/3 fact declares"))
    return out


def _lint_cases(rules: dict[str, Any], place: Layout) -> list[LintProblem]:
    from ..inputs.yamlsafe import YAMLError
    from .casefiles import find_cases, load_case

    if place.cases is None:
        return [LintProblem("cases", str(place.kb), "no case folder found (give --cases DIR)")]
    out = []
    by_rule: dict[str, set[str]] = {}
    for path in find_cases(place.cases):
        by_rule.setdefault(path.parent.name, set()).add(path.stem.split("_", 1)[0])
        try:
            load_case(path)
        except (ValueError, OSError, TypeError, AttributeError, KeyError, YAMLError) as exc:
            out.append(LintProblem("cases", str(path), f"does not load: {' '.join(str(exc).split())}"))
    for rule_id in rules:
        kinds = by_rule.get(rule_id, set())
        for kind in ("fire", "pass"):
            if kind not in kinds:
                out.append(LintProblem("cases", f"{place.cases / rule_id}",
                                       f"{rule_id} has no {kind}_*.yaml case"))
    for folder in sorted(set(by_rule) - set(rules)):
        out.append(LintProblem("cases", str(place.cases / folder), f"{folder!r} is not a rule id"))
    fix_cases = place.cases.parent / "fix_cases"
    if fix_cases.is_dir():  # pain-asp fix: every correctable rule shows its correction
        covered = {p.parent.name for p in fix_cases.rglob("*.yaml")}
        for rule_id, rule in rules.items():
            if rule.meta.get("correctable") == "yes" and rule_id not in covered:
                out.append(LintProblem("cases", str(fix_cases / rule_id),
                                       f"{rule_id} is correctable but has no fix case (*.yaml)"))
    return out


def _lint_payers(rules: dict[str, Any], payer_dirs: list[str], kb: Path,
                 parameters: dict[str, Any]) -> list[LintProblem]:
    from ..errors import PayerError
    from ..payers import PayerRegistry
    from ..resources import payers_dir

    out = []
    registry = PayerRegistry([payers_dir()] + [Path(d) for d in payer_dirs], set(rules), str(kb))
    for payer_id in registry.ids():
        try:
            payer = registry.get(payer_id)
        except PayerError as exc:
            out.append(LintProblem("payers", str(exc).split(": ", 1)[0], str(exc).split(": ", 1)[-1]))
            continue
        for name in payer.parameters:
            if not any(name in r.reads for r in rules.values()):
                out.append(LintProblem("payers", payer.file, f"sets {name}, which no rule reads"))
    for name in parameters:
        if not any(name in r.reads for r in rules.values()):
            out.append(LintProblem("payers", str(kb),
                                   f"parameter {name} is declared but no rule reads it (rule_reads)"))
    return out


def clingo_warnings(kb: Path) -> list[str]:
    """The messages clingo gives grounding the knowledge base with ``--warn=all`` and no claim."""
    import clingo

    messages: list[str] = []
    ctl = clingo.Control(["--warn=all"], logger=lambda code, msg: messages.append(msg))
    try:
        ctl.load(str(kb / "check.lp"))
        if (kb / "show.lp").is_file():
            ctl.load(str(kb / "show.lp"))
        ctl.ground([("base", [])])
    except RuntimeError:
        if not messages:
            messages.append("the knowledge base does not ground")
    return [" ".join(m.split()) for m in messages]


def _lint_files(kb: Path) -> list[LintProblem]:
    out = []
    included = set(include_list(kb))
    for path in sorted((kb / "rules").rglob("*.lp")) if (kb / "rules").is_dir() else []:
        if path.resolve() not in included:
            out.append(LintProblem("files", str(path), "not included by check.lp (add an #include line)"))
            continue
        head = path.read_text(encoding="utf-8")
        if not head.lstrip().startswith("%#"):
            out.append(LintProblem("files", f"{path}:1", "starts without a '%# title' header comment"))
        if "% Source:" not in head:
            out.append(LintProblem("files", str(path), "no '% Source:' line in the header"))
        if FILL_IN in head:
            line = head[: head.index(FILL_IN)].count("\n") + 1
            out.append(LintProblem("files", f"{path}:{line}", f"scaffold text left to fill in ({FILL_IN!r})"))
        for n, text in enumerate(head.splitlines(), start=1):
            if re.match(r"^\s*:-", text):
                out.append(LintProblem("files", f"{path}:{n}",
                                       "integrity constraint in a rule file: rules only derive violations"))
    return out


def _lint_docs(place: Layout) -> list[LintProblem]:
    from .docs import generated_docs

    if place.docs is None:
        return []
    out = []
    for name, text in generated_docs().items():
        path = place.docs / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            out.append(LintProblem("docs", str(path), "stale: run pain-asp docs"))
    return out


def lint(place: Layout, payer_dirs: list[str] | None = None) -> list[LintProblem]:
    """Every problem the linter finds (empty when the knowledge base is clean)."""
    from ..kb import parameter_catalog, rule_catalog

    problems = [LintProblem("clingo", str(place.kb), w) for w in clingo_warnings(place.kb)]
    if problems and any("does not ground" in p.message or "error" in p.message for p in problems):
        return problems  # nothing else can be read from a knowledge base that does not load
    rules = rule_catalog(str(place.kb))
    parameters = parameter_catalog(str(place.kb))
    statements = parse_kb(place.kb)
    problems += _lint_files(place.kb)
    problems += _lint_metadata(rules, statements, rule_files(statements), parameters)
    problems += _lint_cases(rules, place)
    problems += _lint_payers(rules, payer_dirs or [], place.kb, parameters)
    problems += _lint_docs(place)
    return problems


# --- rules new -------------------------------------------------------------------------------

_RULE_TEMPLATE = '''%# {title}
%
% Source:   {fill}: the document, section and sentence this rule encodes, with its
%           document id, URL and confidence tag (source_verified, secondary, unverified,
%           payer_policy).
% Inputs:   line_code/3, line_dos/3 (claim view, kb/claim_view.lp)
% Outputs:  violation/4 for {rule_id}
%
% Not formalised: {fill}: what the rule cannot decide from the claim (clinical judgement).

%## Rule metadata
rule("{rule_id}", {category}, {severity}).
rule_meta("{rule_id}", title, "{title}").
rule_meta("{rule_id}", message, "{{code}} on {{date}}: {fill}: what is wrong, in words a biller understands").
rule_meta("{rule_id}", fix, "{fill}: what to change on line {{line}}").
rule_meta("{rule_id}", carc, "16").
rule_meta("{rule_id}", correctable, yes).
rule_source("{rule_id}", "{fill}: document id", "{fill}: URL", unverified, "").

%## Define
%*! {helper}(K, L, C, D)
Line L of claim K bills code C, one of the codes this rule is about, on day D.
*%
{codes}
{helper}(K, L, C, D) :- line_code(K, L, C), {helper}_code(C), line_dos(K, L, D).
% Achieved: {helper}/4 lists the lines the rule looks at.

%## Violations
violation("{rule_id}", K, L, (code(C), date(D))) :- {helper}(K, L, C, D).
% Achieved: every line billing one of the codes is flagged; narrow the condition to the policy.
'''

_BASE_CLAIM = {
    "payer": "medicare", "place_of_service": "11", "diagnoses": ["M47.816"],
    "clinical": {"pain_duration_months": 6, "conservative_care_weeks": 12},
}
_BASE_LINE = {"code": "64493", "modifiers": ["50", "KX"], "date": "2026-03-02", "dx": [1],
              "documented": {"imaging": "fluoroscopy", "side": "bilateral", "levels": ["L4-L5"],
                             "purpose": "diagnostic"}}


def case_yaml(description: str, claim: dict[str, Any], expect: list[dict[str, Any]]) -> str:
    """A case file: description, the claim (one line per claim line) and the expected findings."""
    import json

    def flow(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, default=str)

    lines = ["description: >"]
    lines += ["  " + chunk for chunk in _wrap(description, 88)]
    lines.append("claim:")
    for key, value in claim.items():
        if key == "lines":
            lines.append("  lines:")
            lines += [f"    - {flow(item)}" for item in value]
        else:
            lines.append(f"  {key}: {flow(value)}")
    lines.append("expect:" + ("" if expect else " []"))
    lines += [f"  - {flow(item)}" for item in expect]
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(" ".join(text.split()), width) or [""]


@dataclass
class Scaffold:
    """The files ``rules new`` wrote or changed."""

    rule_file: Path
    main_file: Path
    cases: list[Path]

    def text(self) -> str:
        """What was written and what to do next."""
        out = [f"wrote {self.rule_file}", f"added its #include to {self.main_file}"]
        out += [f"wrote {p}" for p in self.cases]
        out.append(f"next: replace every '{FILL_IN}' (pain-asp rules lint lists them), narrow the "
                   "rule to its policy, make the cases show it, and run pain-asp rules test "
                   f"{self.cases[0].parent.name}")
        return "\n".join(out) + "\n"


def scaffold_rule(rule_id: str, category: str, codes: list[str], place: Layout,
                  severity: str = "deny", title: str | None = None) -> Scaffold:
    """Write a rule file (metadata block, a helper and a violation), include it in check.lp,
    and write a firing and a non-firing case for it."""
    from ..kb import rule_catalog
    from ..tokens import CODE_RE
    from ..vocabulary import SEVERITIES

    if not _RULE_ID_RE.match(rule_id):
        raise PainAspError(f"{rule_id}: a rule id is lower case letters, digits and hyphens (esi-same-day-facet)")
    if category not in CATEGORIES:
        raise PainAspError(f"--category {category}: expected one of {', '.join(CATEGORIES)}")
    if severity not in SEVERITIES:
        raise PainAspError(f"--severity {severity}: expected one of {', '.join(SEVERITIES)}")
    if place.installed:
        raise PainAspError(f"{place.kb} is inside an installed package: give --kb with the "
                           "knowledge base of a source checkout (or a copy) to write into")
    if place.cases is None:
        raise PainAspError("no case folder: give --cases DIR (usually <checkout>/tests/cases)")
    checked = [c.strip().upper() for c in codes]
    for code in checked:
        if not CODE_RE.match(code):
            raise PainAspError(f"--code {code}: expected a CPT or HCPCS code such as 64483")
    if not checked:
        raise PainAspError("give at least one --code: the code the rule is about")
    if rule_id in rule_catalog(str(place.kb)):
        raise PainAspError(f"{rule_id}: the knowledge base already has this rule")
    stem = rule_id.replace("-", "_")
    rule_file = place.kb / "rules" / category / f"{stem}.lp"
    case_dir = place.cases / rule_id
    if rule_file.exists():
        raise PainAspError(f"{rule_file} exists already")
    if case_dir.exists():
        raise PainAspError(f"{case_dir} exists already")
    helper = f"{stem}_line"
    text = _RULE_TEMPLATE.format(
        title=title or f"{FILL_IN}: a one-line title", fill=FILL_IN, rule_id=rule_id,
        category=category, severity=severity, helper=helper,
        codes="\n".join(f'{helper}_code("{c}").' for c in checked))
    main = place.kb / "check.lp"
    include = f'#include "rules/{category}/{stem}.lp".'
    main_text = main.read_text(encoding="utf-8")
    lines = main_text.splitlines()
    same = [i for i, ln in enumerate(lines) if ln.startswith(f'#include "rules/{category}/')]
    findings = [i for i, ln in enumerate(lines) if ln.startswith('#include "findings.lp"')]
    if same:
        lines.insert(same[-1] + 1, include)
    elif findings:
        lines[findings[0]:findings[0]] = [include, ""]
    else:
        lines.append(include)
    base_id = "".join(word[0] for word in rule_id.split("-") if word).upper()

    def claim(suffix: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        return {"claim_id": f"{base_id}-{suffix}", "payer": _BASE_CLAIM["payer"],
                "place_of_service": _BASE_CLAIM["place_of_service"],
                "patient": {"id": f"P-{base_id}-{suffix}"}, "diagnoses": _BASE_CLAIM["diagnoses"],
                "clinical": _BASE_CLAIM["clinical"], "lines": lines}

    fire_claim = claim("F1", [_BASE_LINE, {"code": checked[0], "date": "2026-03-02", "dx": [1]}])
    pass_claim = claim("P1", [_BASE_LINE])
    fire = case_yaml(f"{FILL_IN}: what this claim shows and the source sentence it comes from. "
                      f"Scaffold: {checked[0]} billed on line 2 is flagged.", fire_claim,
                      [{"rule": rule_id, "severity": severity, "lines": [2]}])
    passing = case_yaml(f"{FILL_IN}: the nearest claim the rule must accept (a boundary). "
                         "Scaffold: the same claim without the code.", pass_claim, [])
    rule_file.parent.mkdir(parents=True, exist_ok=True)
    case_dir.mkdir(parents=True)
    rule_file.write_text(text, encoding="utf-8")
    main.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written = [case_dir / "fire_example.yaml", case_dir / "pass_example.yaml"]
    written[0].write_text(fire, encoding="utf-8")
    written[1].write_text(passing, encoding="utf-8")
    from ..kb import forget_metadata

    forget_metadata()  # the in-process catalog of this knowledge base is now stale
    return Scaffold(rule_file, main, written)


def lint_text(problems: Iterable[LintProblem]) -> str:
    """``rules lint`` for people."""
    items = list(problems)
    if not items:
        return "lint: no problems\n"
    body = "\n".join(str(p) for p in items)
    return f"{body}\nlint: {len(items)} problem(s)\n"
