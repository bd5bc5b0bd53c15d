"""Claim facts: only facts of predicates some statement of the knowledge base reads reach clingo.

pain_asp/facts.py can describe more of a claim than the shipped rules use (units and levels of
earlier services, the kinds of conservative care tried); a rule author who starts reading one
of those predicates gets its facts without touching Python.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pain_asp.engine import Checker, CheckOptions
from pain_asp.facts import claim_facts
from pain_asp.kb import read_predicates
from pain_asp.models import parse_claim
from pain_asp.resources import kb_dir

CLAIM = {
    "claim_id": "F-1", "payer": "medicare", "place_of_service": "11",
    "patient": {"id": "P-F"}, "diagnoses": ["M47.816"],
    "clinical": {"pain_duration_months": 6, "conservative_care_weeks": 12,
                 "conservative_care": ["physical_therapy", "nsaids"]},
    "lines": [{"code": "64493", "modifiers": ["RT"], "units": 1, "date": "2026-03-02", "dx": [1],
               "documented": {"imaging": "fluoroscopy", "side": "right", "levels": ["L4-L5"]}}],
    "history": [{"date": "2025-11-03", "code": "64493", "modifiers": ["RT"], "units": 1,
                 "levels": ["L4-L5"], "purpose": "diagnostic", "relief_pct": 85}],
}

CARE_RULE = """
rule("care-listed", coding, info).
rule_meta("care-listed", title, "Conservative care listed on the claim").
rule_meta("care-listed", message, "Line {line}: conservative care tried: {care}").
rule_source("care-listed", "tests/test_facts.py", "https://example.org/test", unverified, "").
violation("care-listed", K, 1, (care(C))) :- clinical_care(K, C).
"""


def _predicates(facts: list[str]) -> set[str]:
    return {fact[:fact.index("(")] for fact in facts}


def test_facts_of_predicates_no_statement_reads_are_left_out() -> None:
    claim = parse_claim(CLAIM)
    every = claim_facts(0, claim, "medicare", claim.history)
    reads = read_predicates()
    # The shipped knowledge base does not read clinical_care (kb/rules/*: grep finds no use;
    # hist_units is read since kb/services.lp gives the units kb/rules/history/neuromodulation.lp
    # counts, hist_level since kb/rules/payer/vertebral.lp counts earlier ablated bodies).
    assert {"clinical_care"} <= _predicates(every) - reads
    sent = [line for line in Checker().facts([claim], None).splitlines() if "(" in line]
    assert [f for f in sent if f[:f.index("(")] in _predicates(every)] == \
        [f for f in every if f[:f.index("(")] in reads]
    assert not {"clinical_care"} & _predicates(sent)


def test_a_rule_that_reads_a_predicate_gets_its_facts(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(kb_dir(), kb)
    with open(kb / "rules" / "coding" / "duplicates.lp", "a", encoding="utf-8") as handle:
        handle.write(CARE_RULE)
    assert "clinical_care" in read_predicates(str(kb))
    checker = Checker(CheckOptions(kb_dir=str(kb)))
    claim = parse_claim(CLAIM)
    assert {'clinical_care(0, nsaids).', 'clinical_care(0, physical_therapy).'} <= \
        set(checker.facts([claim], None).splitlines())
    result = checker.check_claim(claim)
    care = sorted(f.message for f in result.findings if f.rule == "care-listed")
    assert care == ["Line 1: conservative care tried: nsaids [unverified source: check before relying on it]",
                    "Line 1: conservative care tried: physical_therapy [unverified source: check before relying on it]"]
    # The shipped knowledge base, same claim: no such rule, no such fact, same other findings.
    shipped = Checker().check_claim(claim)
    assert [f for f in result.findings if f.rule != "care-listed"] == shipped.findings
