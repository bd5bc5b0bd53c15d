"""Explain findings: rule, source, triggering facts, payer parameters, and what would pass."""

from __future__ import annotations

from typing import Any

from ..findings import Result
from ..kb import Rule
from ..models import Claim, as_dict
from ..payers import Payer  # noqa: F401  (kept for the public signature)

__all__ = ["explain_result"]


def _line_facts(claim: Claim, number: int) -> str:
    line = claim.lines[number - 1]
    mods = "-".join(line.modifiers)
    parts = [f"line {number}: {line.code}" + (f"-{mods}" if mods else ""),
             f"minutes {line.minutes}" if line.minutes is not None else f"units {line.units}",
             f"date {line.date.isoformat()}"
             + (f" through {line.through.isoformat()}" if line.through else "")]
    pointed = [claim.diagnoses[p - 1] for p in line.dx if p <= len(claim.diagnoses)]
    parts.append("dx " + (", ".join(pointed) if pointed else "(none pointed)"))
    doc = line.documented
    if doc is None:
        parts.append("documentation: none")
    else:
        shown = {k: v for k, v in as_dict(doc).items() if v is not None and k not in ("nerves", "muscles")}
        if doc.nerves is not None:
            shown["nerves"] = len(doc.nerves)
        if doc.muscles is not None:
            shown["muscles"] = len(doc.muscles)
        parts.append("documented " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    return "; ".join(parts)


def _edits_for(finding: Any, fix: Any) -> list[dict[str, Any]]:
    """The edits of ``fix`` (a pain_asp.modes.fix.FixResult) that resolve ``finding``."""
    if fix is None:
        return []
    return [e.as_dict() for e in fix.edits
            if any(f.rule == finding.rule and f.message == finding.message for f in e.resolves)]


def _what_would_pass(fix: Any) -> dict[str, Any] | None:
    """The whole claim's answer: the smallest edits, or the facts that are missing."""
    if fix is None:
        return None
    return {"status": fix.status, "edits": [e.description for e in fix.edits],
            "missing": [f"{a.rule}: {a.action}" for a in fix.action_items],
            "corrected_lines": [line for line in (fix.corrected or {}).get("lines", [])] if fix.edits else []}


def explain_result(result: Result, rules: dict[str, Rule], payer: Payer | None,
                   only_rule: str | None = None, fix: Any = None) -> dict[str, Any]:
    """A structured explanation of every finding of ``result`` (optionally one rule).

    ``fix`` (a :class:`pain_asp.modes.fix.FixResult` of the same claim) adds what would make
    the claim pass: the edits that resolve each finding, or the missing facts.
    """
    claim = result.claim
    items = []
    for finding in result.findings:
        if only_rule and finding.rule != only_rule:
            continue
        rule = rules[finding.rule]
        params = finding.payer_parameters
        edits = _edits_for(finding, fix)
        if edits:
            to_pass = "; ".join(e["description"] for e in edits)
        elif finding.correctable:
            to_pass = finding.fix or "edit the lines named above"
        else:
            to_pass = rule.meta.get("action") or finding.fix or "provide the missing documentation"
        items.append({
            "rule": finding.rule, "title": finding.title, "severity": finding.severity,
            "category": rule.category, "message": finding.message,
            "carc": finding.carc, "rarc": finding.rarc,
            "sources": finding.source, "confidence": rule.confidence,
            "effective": list(rule.effective) if rule.effective else None,
            "triggered_by": {
                "lines": [_line_facts(claim, n) for n in finding.lines] if claim else [],
                "facts": finding.facts,
            },
            "payer": finding.payer, "payer_parameters": params,
            "fix": finding.fix, "correctable": finding.correctable, "to_pass": to_pass,
            "edits": edits,
        })
    return {"claim_id": result.claim_id, "status": result.status, "file": result.file,
            "errors": result.errors, "explanations": items,
            "what_would_make_it_pass": _what_would_pass(fix)}
