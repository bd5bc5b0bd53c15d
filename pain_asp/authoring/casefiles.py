"""Rule test cases: example claims with the complete set of findings they must produce.

A case file lives in ``tests/cases/<rule-id>/`` and is named ``fire_*.yaml`` (the rule
must fire) or ``pass_*.yaml`` (the rule must not fire). It holds:

    description: what the case shows and which source sentence it comes from
    payer_dirs: [relative/dir]        # optional: extra payer files for this case
    ncci: relative/dir                # optional: NCCI tables in CMS layout for this case
    claim: {...}                      # one claim (docs/claim-format.md)  -- or --
    claims: [{...}, {...}]            # several claims checked as one batch
    expect:                           # every finding of every claim, nothing less or more
      - {rule: imaging-included, severity: deny, lines: [2]}
      - {claim: C-2, rule: ..., severity: ..., lines: [...]}   # with `claims:`

The comparison is on (claim, rule, severity, lines): a new spurious finding fails the case
as surely as a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import Checker, CheckOptions
from ..inputs.records import validate_claim
from ..resources import kb_dir as shipped_kb

__all__ = ["Case", "CaseOutcome", "find_cases", "load_case", "run_case", "run_cases", "Expected"]

Expected = tuple[str, str, str, tuple[int, ...]]  # (claim id, rule, severity, lines)
_CASE_KEYS = {"description", "payer_dirs", "ncci", "claim", "claims", "expect"}


@dataclass
class Case:
    """One case file."""

    path: Path
    rule: str
    kind: str  # fire | pass
    description: str
    claims: list[dict[str, Any]]
    expected: set[Expected]
    payer_dirs: list[str] = field(default_factory=list)
    ncci: str | None = None

    @property
    def name(self) -> str:
        """``<rule-id>/<file stem>``."""
        return f"{self.rule}/{self.path.stem}"


@dataclass
class CaseOutcome:
    """The result of running one case."""

    case: Case
    actual: set[Expected]
    problems: list[str]

    @property
    def passed(self) -> bool:
        """True when the finding sets agree and the case is well formed."""
        return not self.problems and self.actual == self.case.expected

    def diff(self) -> str:
        """Expected versus actual findings, as a readable diff."""
        lines = [f"case {self.case.name} ({self.case.path})"]
        lines += [f"  ! {p}" for p in self.problems]
        for item in sorted(self.case.expected | self.actual):
            mark = " " if item in self.case.expected and item in self.actual else (
                "-" if item in self.case.expected else "+")
            claim, rule, severity, found_lines = item
            lines.append(f"  {mark} {claim}: {rule} {severity} lines {list(found_lines)}")
        lines.append("  (- expected but missing, + found but not expected)")
        return "\n".join(lines)


def find_cases(root: Path, rules: list[str] | None = None) -> list[Path]:
    """Case files under ``root`` (a folder of rule folders, or one rule folder), sorted."""
    paths = sorted(p for p in root.rglob("*.yaml") if p.stem.startswith(("fire_", "pass_")))
    if rules:
        paths = [p for p in paths if p.parent.name in rules]
    return paths


def load_case(path: Path) -> Case:
    """Read a case file; raises ValueError naming what is wrong."""
    from ..inputs.yamlsafe import safe_load

    data = safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a case is a mapping with claim(s) and expect")
    unknown = set(data) - _CASE_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(_CASE_KEYS)}")
    if ("claim" in data) == ("claims" in data):
        raise ValueError(f"{path}: give exactly one of claim or claims")
    claims = [data["claim"]] if "claim" in data else list(data["claims"])
    default_id = str(claims[0].get("claim_id")) if claims and isinstance(claims[0], dict) else ""
    expected: set[Expected] = set()
    for item in data.get("expect") or []:
        if not isinstance(item, dict) or not {"rule", "severity", "lines"} <= set(item):
            raise ValueError(f"{path}: each expect item needs rule, severity and lines: {item!r}")
        claim_id = str(item.get("claim", default_id))
        expected.add((claim_id, str(item["rule"]), str(item["severity"]),
                      tuple(sorted(int(n) for n in item["lines"]))))
    kind = "fire" if path.stem.startswith("fire_") else "pass"
    return Case(path=path, rule=path.parent.name, kind=kind,
                description=str(data.get("description", "")), claims=claims, expected=expected,
                payer_dirs=[str((path.parent / d).resolve()) for d in data.get("payer_dirs", [])],
                ncci=str((path.parent / data["ncci"]).resolve()) if data.get("ncci") else None)


def run_case(case: Case, kb_dir: str | None = None) -> CaseOutcome:
    """Check the case's claims and compare the complete finding sets."""
    return run_cases([case], kb_dir)[0]


def run_cases(cases: list[Case], kb_dir: str | None = None,
              extra_payer_dirs: list[str] | None = None) -> list[CaseOutcome]:
    """Run many cases; outcomes come back in the order of ``cases``.

    Cases that share payer folders and NCCI tables are checked in one batch (one solve per
    thousand claims instead of one per case). Each case keeps its own batch history, so the
    claims of one case never see those of another: the outcome is the one the case gets alone.
    ``extra_payer_dirs`` are added to every case's payer folders (an analyst's payer files).
    """
    from ..history import batch_history

    groups: dict[tuple[tuple[str, ...], str | None], list[int]] = {}
    for i, case in enumerate(cases):
        dirs = tuple(case.payer_dirs) + tuple(extra_payer_dirs or ())
        groups.setdefault((dirs, case.ncci), []).append(i)
    outcomes: dict[int, CaseOutcome] = {}
    shipped = str(Path(kb_dir) / "data") if kb_dir else str(shipped_kb() / "data")
    for (payer_dirs, ncci), members in groups.items():
        # a case without ``ncci:`` runs on the shipped tables, never on a data set the user imported
        checker = Checker(CheckOptions(payer_dirs=list(payer_dirs), ncci_dir=ncci or shipped, kb_dir=kb_dir))
        records, owners, providers = [], [], {}
        actual: dict[int, set[Expected]] = {}
        for i in members:
            case = cases[i]
            batch = [validate_claim(raw, str(case.path), n, checker.known_payers())
                     for n, raw in enumerate(case.claims, start=1)]
            problems = [f"claim does not validate: {e}" for r in batch for e in r.errors]
            if problems:
                outcomes[i] = CaseOutcome(case, set(), problems)
                continue
            provider = batch_history([r.claim for r in batch if r.claim])
            for record in batch:
                providers[id(record.claim)] = provider
                records.append(record)
                owners.append(i)
            actual[i] = set()
        results = checker.check(records, history=lambda claim: providers[id(claim)](claim))
        for owner, result in zip(owners, results):
            for finding in result.findings:
                actual[owner].add((str(result.claim_id), finding.rule, finding.severity,
                                   tuple(finding.lines)))
        for i, found in actual.items():
            outcomes[i] = CaseOutcome(cases[i], found, _shape_problems(cases[i], checker))
    return [outcomes[i] for i in range(len(cases))]


def _shape_problems(case: Case, checker: Checker) -> list[str]:
    """What is wrong with the case itself (not with the findings)."""
    problems = []
    fired = {item for item in case.expected if item[1] == case.rule}
    if case.kind == "fire" and not fired:
        problems.append(f"a fire_ case must expect at least one {case.rule} finding")
    if case.kind == "pass" and fired:
        problems.append(f"a pass_ case must not expect any {case.rule} finding")
    if case.rule not in checker.rules:
        problems.append(f"folder {case.rule!r} is not a rule id of the knowledge base")
    return problems
