"""Findings and per-claim results: grouping violation atoms and filling in messages (docs/rules.md)."""

from __future__ import annotations

from typing import Any

import msgspec

from .facts import from_day_number
from .kb import Rule, code_catalog
from .models import Claim
from .payer_schema import value_text
from .payers import Payer
from .terms import Fn, parse_term, show_term
from .vocabulary import SEVERITY_RANK

__all__ = ["Finding", "Result", "build_findings", "ncci_data_summary", "record_header",
           "render_value", "status_of"]



class Finding(msgspec.Struct):
    """One finding on one claim."""

    rule: str
    severity: str
    title: str
    message: str
    lines: list[int]
    codes: list[str]
    carc: str | None
    rarc: str | None
    source: list[dict[str, str]]
    payer: str
    fix: str | None
    facts: dict[str, Any] = msgspec.field(default_factory=dict)
    correctable: bool = False
    payer_parameters: list[dict[str, Any]] = msgspec.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the docs/rules.md fields, plus the facts that triggered it)."""
        return {
            "rule": self.rule, "severity": self.severity, "title": self.title,
            "message": self.message, "lines": self.lines, "codes": self.codes,
            "carc": self.carc, "rarc": self.rarc, "source": self.source, "payer": self.payer,
            "fix": self.fix, "facts": self.facts, "payer_parameters": self.payer_parameters,
        }


class Result(msgspec.Struct):
    """The outcome for one input claim: findings, or the errors that stopped it."""

    file: str
    position: int
    claim_id: str | None
    payer: str | None = None
    findings: list[Finding] = msgspec.field(default_factory=list)
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)
    claim: Claim | None = None
    data: dict[str, dict[str, str]] | None = None

    @property
    def status(self) -> str:
        """``error``, the worst severity, or ``clean``."""
        return status_of(self)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = record_header(self.claim_id, self.file, self.position, self.payer, self.status, self.errors)
        if not self.errors:
            out["findings"] = [f.as_dict() for f in self.findings]
        if self.data is not None:
            out["ncci_data"] = ncci_data_summary(self.data)
        return out


def record_header(claim_id: str | None, file: str, position: int, payer: str | None, status: str,
                  errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields every per-claim output record starts with (check and fix results)."""
    out: dict[str, Any] = {"claim_id": claim_id, "file": file, "position": position, "payer": payer,
                           "status": status}
    if errors:
        out["errors"] = errors
    return out


def ncci_data_summary(data: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The NCCI tables a result was checked with, and which of them are not CMS's (docs/architecture.md:
    a check on starter data says so in every record)."""
    return {"ptp": data["ptp"]["name"], "mue": data["mue"]["name"], "aoc": data["aoc"]["name"],
            "not_cms": [kind for kind, info in data.items() if info["cms"] == "no"]}


def status_of(result: Result) -> str:
    """The claim's status: ``error`` for unreadable input, else worst severity or ``clean``."""
    if result.errors:
        return "error"
    if not result.findings:
        return "clean"
    return min((f.severity for f in result.findings), key=SEVERITY_RANK.__getitem__)


def render_value(name: str, value: Any) -> Any:
    """Turn a Why argument from the solver (a clingo Symbol or a :mod:`pain_asp.terms` value)
    into a readable value: day numbers of ``date`` / ``*_date`` arguments become ISO dates,
    strings and numbers stay, tuples become lists, constants their name."""
    if not isinstance(value, (int, str, tuple, Fn)):
        value = parse_term(str(value))
    if isinstance(value, int):
        if name == "date" or name.endswith("_date"):
            return from_day_number(value).isoformat()
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, tuple) and value:
        return [render_value(name, a) for a in value]
    return str(value) if isinstance(value, Fn) else show_term(value)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: str, values: dict[str, Any]) -> str:
    shown = {k: (", ".join(map(str, v)) if isinstance(v, list) else v) for k, v in values.items()}
    return template.format_map(_Blank(shown))


def _payer_parameters(rule: Rule, policy: Payer | None, claim: Claim, line: int,
                      used: dict[tuple[int, str], int]) -> list[dict[str, Any]]:
    """The payer parameters the rule read on the finding's first line, with sources: the
    entries the solve found in force there (``used``: (line, parameter) -> entry start), each
    citing the source of the row the line finds when that row has its own."""
    out = []
    for name in rule.reads:
        start = used.get((line, name))
        if policy is not None and start is not None:
            dated = policy.entry(name, start)
            code = claim.lines[line - 1].code if 0 < line <= len(claim.lines) else ""
            info = code_catalog().get(code)
            source = dated.row_source(code, info.family if info else None, claim.place_of_service)
            out.append({"parameter": name, "value": value_text(policy.specs[name], dated.value),
                        "since": dated.start, "source": dict(source)})
    return out


def _cite(payer: str, params: list[dict[str, Any]]) -> str:
    parts = []
    for p in params:
        src = p["source"]
        since = f", since {p['since']}" if p["since"] else ""
        parts.append(f"{payer} {p['parameter']}: {src.get('document')}{since} [{src.get('confidence')}]")
    return " (" + "; ".join(parts) + ")" if parts else ""


def _data_source(rule: Rule, facts: dict[str, Any], data: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """The table that decided a finding of a rule whose metadata names one (``data``): the
    ICD-10-CM release of the date (the finding's ``release``), or the NCCI table in use."""
    kind = rule.meta.get("data")
    if kind == "icd10cm":
        from .icd import release_source

        return [release_source(str(facts.get("release", "none")))]
    if kind in data:
        info = data[kind]
        confidence = {"yes": "data", "no": "starter"}.get(info["cms"], "unverified")
        return [{"document": info["name"], "url": "", "confidence": confidence, "effective": info["effective"]}]
    return []


def build_findings(atoms: list[tuple[str, int, Any, str]], rules: dict[str, Rule], claim: Claim,
                   payer: str, policy: Payer | None = None,
                   data: dict[str, dict[str, str]] | None = None,
                   used: dict[tuple[int, str], int] | None = None) -> list[Finding]:
    """Group ``(rule, line, why, severity)`` atoms of one claim into findings.

    ``policy`` is the claim's payer and ``used`` the entries of its parameters the solve
    found in force per line (``finding_param/4``, kb/findings.lp): each finding names the
    payer parameters its rule read and their sources. ``data`` names the NCCI
    tables in use (:meth:`pain_asp.ncci.NcciTables.data_sets`): a finding of a rule that reads
    one cites it first among its sources, as it does the ICD-10-CM release of its date.
    """
    groups: dict[tuple[str, str, Any], tuple[Any, set[int]]] = {}
    for rule_id, line, why, severity in atoms:
        if not isinstance(why, (int, str, tuple, Fn)):
            why = parse_term(str(why))
        key = (rule_id, severity, why)
        groups.setdefault(key, (why, set()))[1].add(line)
    out = []
    for (rule_id, severity, _), (why, lines) in groups.items():
        rule = rules[rule_id]
        facts = why_facts(why)
        ordered = sorted(lines)
        codes = list(dict.fromkeys(claim.lines[n - 1].code for n in ordered if 0 < n <= len(claim.lines)))
        values = {"lines": ", ".join(map(str, ordered)), "line": ordered[0], "payer": payer, **facts}
        template = rule.meta.get("message", rule.title)
        if severity == "review" and "review_message" in rule.meta:
            template = rule.meta["review_message"]
        params = _payer_parameters(rule, policy, claim, ordered[0], used or {})
        message = _fill(template, values) + _cite(payer, params)
        if any(s.confidence == "unverified" for s in rule.sources):
            message += " [unverified source: check before relying on it]"
        fix = rule.meta.get("fix")
        out.append(Finding(
            rule=rule_id, severity=severity, title=rule.title, message=message, lines=ordered,
            codes=codes, carc=rule.meta.get("carc"), rarc=rule.meta.get("rarc"),
            source=_data_source(rule, facts, data or {}) + [s.as_dict() for s in rule.sources], payer=payer,
            fix=_fill(fix, values) if fix else None, facts=facts,
            correctable=rule.meta.get("correctable") == "yes", payer_parameters=params,
        ))
    out.sort(key=lambda f: (SEVERITY_RANK[f.severity], f.lines[0], f.rule, f.message))
    return out


def why_facts(why: Any) -> dict[str, Any]:
    """The named arguments of a finding's Why tuple, e.g. ``(code("77003"), date(739000))``."""
    if not isinstance(why, (int, str, tuple, Fn)):
        why = parse_term(str(why))
    items = why if isinstance(why, tuple) else (why,)
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, Fn) and len(item.args) == 1:
            out[item.name] = render_value(item.name, item.args[0])
        elif isinstance(item, Fn) and len(item.args) > 1:
            out[item.name] = [render_value(item.name, a) for a in item.args]
        else:
            out[show_term(item) if not isinstance(item, Fn) else item.name] = True
    return out
