"""Payer policy files (docs/payers.md): validation with file, line and key; extends; dates; facts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.errors import PayerError
from pain_asp.kb import rule_catalog
from pain_asp.payers import PayerRegistry, load_registry
from pain_asp.resources import payers_dir

SRC = "source: {document: POL-1, confidence: payer_policy}"


def registry_with(tmp_path: Path, name: str, text: str) -> PayerRegistry:
    (tmp_path / f"{name}.yaml").write_text(text)
    return PayerRegistry([payers_dir(), tmp_path], set(rule_catalog()))


def error_of(tmp_path: Path, text: str) -> PayerError:
    with pytest.raises(PayerError) as info:
        registry_with(tmp_path, "p1", text).get("p1")
    return info.value


def test_misspelt_parameter_names_file_line_key_and_suggestion(tmp_path: Path) -> None:
    error = error_of(tmp_path, f"id: p1\nname: P\nparameters:\n  esi_frequncy:\n    value: {{max_sessions: 3, window_months: 12}}\n    {SRC}\n")
    assert error.file.endswith("p1.yaml") and error.line == 4
    assert error.key == "parameters.esi_frequncy" and "did you mean 'esi_frequency'" in error.expected


def test_unknown_rule_id_and_bad_severity(tmp_path: Path) -> None:
    error = error_of(tmp_path, f"id: p1\nname: P\nrules:\n  imaging-include:\n    severity: warn\n    {SRC}\n")
    assert error.line == 4 and "did you mean 'imaging-included'" in error.expected
    error = error_of(tmp_path, f"id: p1\nname: P\nrules:\n  imaging-included:\n    severity: fatal\n    {SRC}\n")
    assert error.key == "rules.imaging-included.severity" and "deny" in error.expected


def test_every_value_needs_a_source(tmp_path: Path) -> None:
    error = error_of(tmp_path, "id: p1\nname: P\nparameters:\n  esi_regions_per_session:\n    value: 1\n")
    assert error.line == 4 and "source" in error.expected


def test_bad_value_type_and_record_fields(tmp_path: Path) -> None:
    error = error_of(tmp_path, f"id: p1\nname: P\nparameters:\n  esi_regions_per_session:\n    value: one\n    {SRC}\n")
    assert error.key == "parameters.esi_regions_per_session.value" and "whole number" in error.expected
    error = error_of(tmp_path, f"id: p1\nname: P\nparameters:\n  esi_frequency:\n    value: {{max_session: 3, window_months: 12}}\n    {SRC}\n")
    assert "did you mean 'max_sessions'" in error.expected


def test_id_must_match_file_and_extends_must_exist_without_cycles(tmp_path: Path) -> None:
    assert "file name" in error_of(tmp_path, "id: other\nname: P\n").expected
    assert "known payer id" in error_of(tmp_path, "id: p1\nname: P\nextends: nobody\n").expected
    (tmp_path / "p2.yaml").write_text("id: p2\nname: P2\nextends: p1\n")
    (tmp_path / "p1.yaml").write_text("id: p1\nname: P1\nextends: p2\n")
    with pytest.raises(PayerError) as info:
        PayerRegistry([tmp_path], set(rule_catalog())).get("p1")
    assert "no cycle" in info.value.expected


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    error = error_of(tmp_path, "id: p1\nname: [P\n")
    assert error.line is not None and "valid YAML" in error.expected


def test_date_indexed_values_and_extends(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, "p1", f"""id: p1
name: P
extends: commercial
parameters:
  esi_regions_per_session:
    - since: 2025-01-01
      value: 2
      {SRC}
    - since: 2026-01-01
      value: 1
      {SRC}
""")
    payer = registry.get("p1")
    assert payer.in_force("esi_regions_per_session", dt.date(2024, 12, 31)) is None
    assert payer.in_force("esi_regions_per_session", dt.date(2025, 12, 31)).value == "2"
    assert payer.in_force("esi_regions_per_session", dt.date(2026, 1, 1)).value == "1"
    # inherited unchanged from commercial
    assert payer.in_force("esi_frequency", dt.date(2026, 1, 1)).value == \
        registry.get("commercial").in_force("esi_frequency", dt.date(2026, 1, 1)).value
    facts = payer.facts()
    assert 'payer_entry("p1", esi_regions_per_session, 20250101, 20251231).' in facts
    assert 'payer_entry("p1", esi_regions_per_session, 20260101, 99991231).' in facts
    assert 'payer_param("p1", esi_regions_per_session, 2, 20250101, 20251231).' in facts
    assert 'payer_value("p1", esi_regions_per_session, 1, 20260101).' in facts


def test_shipped_payers_load_and_every_value_has_a_source() -> None:
    registry = load_registry(known_rules=set(rule_catalog()))
    assert {"medicare", "commercial", "commercial_asc_rtlt", "commercial_strict_esi",
            "commercial_prior_auth"} <= set(registry.ids())
    for payer_id in registry.ids():
        payer = registry.get(payer_id)
        for values in payer.parameters.values():
            for dated in values:
                assert dated.source.get("document") and dated.source.get("confidence")
    medicare = registry.get("medicare")
    assert not medicare.example
    assert all(registry.get(p).example for p in registry.ids() if p.startswith("commercial"))


def test_cli_reports_payer_file_errors_with_exit_2(tmp_path: Path) -> None:
    payers = tmp_path / "payers"
    payers.mkdir()
    (payers / "p1.yaml").write_text("id: p1\nname: P\nparameterz: {}\n")
    claim = tmp_path / "c.yaml"
    claim.write_text("claim_id: C\npayer: p1\nplace_of_service: '11'\npatient: {id: X}\n"
                     "lines: [{code: '99213', date: 2026-01-02}]\n")
    result = CliRunner().invoke(app, ["check", str(claim), "--payer-dir", str(payers)])
    assert result.exit_code == 2
    assert "p1.yaml:3" in result.stderr and "did you mean 'parameters'" in result.stderr
    assert "Traceback" not in result.output


def test_rule_off_and_severity_with_an_unquoted_off_key(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, "p1", f"""id: p1
name: P
extends: medicare
rules:
  kx-not-applicable:
    off: true
    {SRC}
  laterality-missing:
    - since: 2026-01-01
      severity: warn
      {SRC}
""")
    facts = registry.get("p1").facts()
    assert 'payer_rule_off("p1", "kx-not-applicable", 19000101, 99991231).' in facts
    assert 'payer_severity("p1", "laterality-missing", warn, 20260101, 99991231).' in facts


# A payer-parameterised rule written in kb/ only: its parameter is declared beside it.
DEMO_RULE = '''
rule("demo-units", payer, deny).
rule_meta("demo-units", title, "More units than the payer pays").
rule_meta("demo-units", message, "{units} units; {payer} pays {max} (parameter demo_max_units)").
rule_meta("demo-units", correctable, no).
rule_meta("demo-units", carc, "151").
rule_meta("demo-units", action, "Appeal.").
rule_source("demo-units", "demo", "", unverified, "").
rule_reads("demo-units", demo_max_units).
parameter(demo_max_units, int, "Units a line may carry (a test rule).").
parameter_min(demo_max_units, 2, "a demo value below 2 means nothing").
violation("demo-units", K, L, (units(U), max(M))) :- line_units(K, L, U), param(K, L, demo_max_units, M), U > M.
'''


def test_a_parameter_declared_in_kb_is_validated_checked_resolved_and_cited(tmp_path: Path) -> None:
    """A parameter declared in a rule file (no Python) can be set by a payer file, is bounded by
    kb check, reaches the rule in force on the line's date, and the finding cites that entry."""
    import shutil

    from pain_asp.authoring.kbcheck import payer_problems
    from pain_asp.engine import Checker, CheckOptions
    from pain_asp.models import parse_claim
    from pain_asp.resources import kb_dir

    kb = tmp_path / "kb"
    shutil.copytree(kb_dir(), kb)
    (kb / "rules" / "payer" / "demo_units.lp").write_text(DEMO_RULE, encoding="utf-8")
    main = kb / "check.lp"
    main.write_text(main.read_text(encoding="utf-8").replace(
        '#include "findings.lp".', '#include "rules/payer/demo_units.lp".\n#include "findings.lp".'))
    payers = tmp_path / "payers"
    payers.mkdir()
    (payers / "demo.yaml").write_text(f"""id: demo
name: Demo
extends: medicare
parameters:
  demo_max_units:
    - value: 1
      {SRC}
    - since: 2026-03-01
      value: 3
      source: {{document: POL-2, confidence: payer_policy}}
""")
    checker = Checker(CheckOptions(kb_dir=str(kb), payer_dirs=[str(payers)]))
    claim = parse_claim({"claim_id": "D-1", "payer": "demo", "place_of_service": "11", "patient": {"id": "P"},
                         "diagnoses": ["M54.16"],
                         "lines": [{"code": "99213", "date": "2026-02-27", "units": 2, "dx": [1]},
                                   {"code": "99213", "date": "2026-03-02", "units": 4, "dx": [1]}]})
    found = {(f.rule, tuple(f.lines)): f for f in checker.check_claim(claim).findings if f.rule == "demo-units"}
    assert set(found) == {("demo-units", (1,)), ("demo-units", (2,))}
    assert [(p["parameter"], p["value"], p["since"], p["source"]["document"])
            for p in found[("demo-units", (1,))].payer_parameters] == [("demo_max_units", "1", None, "POL-1")]
    assert [(p["parameter"], p["value"], p["since"], p["source"]["document"])
            for p in found[("demo-units", (2,))].payer_parameters] == [("demo_max_units", "3", "2026-03-01", "POL-2")]
    issues = [i for i in payer_problems(kb, ["demo"], [str(payers)]) if i.subject == "demo: demo_max_units"]
    assert [i.message for i in issues] == ["1: a demo value below 2 means nothing (a meaningful value is at least 2)"]


def test_one_resolver_decides_the_entry_in_force_for_check_fix_and_code() -> None:
    """kb/payer.lp decides which payer entry is in force on a date (policy_period/3 and
    param_entry/4); code mode includes it, and every file that reads payer values reads them
    through it: none tests an entry's window itself."""
    import re

    from pain_asp.resources import kb_dir

    kb = kb_dir()
    code = {p.relative_to(kb).as_posix(): "\n".join(ln for ln in p.read_text().splitlines() if not ln.startswith("%"))
            for p in kb.rglob("*.lp")}
    assert {name for name, text in code.items() if "payer_entry(" in text} == {"payer.lp"}
    readers = {name for name, text in code.items() if re.search(r"payer_(param|value|keyed)\(", text)}
    assert readers == {"payer.lp", "code/input.lp", "fix/candidates.lp"}
    assert all("param_entry(" in code[name] for name in readers)
    window = re.compile(r"payer_\w+\([^)]*\b(From|F), *(To|T)\)")
    assert [name for name, text in code.items() if name != "payer.lp" and window.search(text)] == []
    assert "payer.lp" in code["code/input.lp"]  # code mode includes the same resolver
    facts = load_registry(known_rules=set(rule_catalog())).get("medicare").facts()
    assert all(re.fullmatch(r'payer_(entry|param|value|keyed|rule_off|severity)\(.*\)\.', ln) for ln in facts.splitlines())


ROW_SOURCES = """id: rows
name: Rows
extends: commercial
parameters:
  conservative_care:
    value:
      - {family: facet_injection, min_weeks: 0, min_pain_months: 3}
      - {family: si_joint_fusion, min_weeks: 26, min_pain_months: 0,
         source: {document: POL-FUSION, url: "https://example.org/fusion", effective: "2025-01-01", confidence: payer_policy}}
    source: {document: POL-CARE, confidence: payer_policy}
  dx_coverage:
    value:
      facet_injection: [low_back_pain]
      chemodenervation_migraine:
        value: [chronic_migraine]
        source: {document: POL-MIGRAINE, confidence: secondary}
    source: {document: POL-DX, confidence: payer_policy}
"""


def test_a_finding_about_a_row_with_its_own_source_cites_it(tmp_path: Path) -> None:
    """A row (a record, or a mapping key) may carry its own source; a finding about that row
    cites it, and a finding about another row of the entry cites the entry's source."""
    from pain_asp.engine import Checker, CheckOptions
    from pain_asp.models import parse_claim

    (tmp_path / "rows.yaml").write_text(ROW_SOURCES)
    checker = Checker(CheckOptions(payer_dirs=[str(tmp_path)]))
    claim = parse_claim({"claim_id": "R-1", "payer": "rows", "place_of_service": "22", "patient": {"id": "P"},
                         "diagnoses": ["M54.16"], "clinical": {"conservative_care_weeks": 6, "pain_duration_months": 1},
                         "lines": [{"code": "64493", "date": "2026-03-02", "units": 1, "dx": [1]},
                                   {"code": "27279", "date": "2026-03-02", "units": 1, "dx": [1]},
                                   {"code": "64615", "date": "2026-03-02", "units": 1, "dx": [1]}]})
    cited = {(f.rule, tuple(f.lines), p["parameter"], p["source"]["document"])
             for f in checker.check_claim(claim).findings for p in f.payer_parameters
             if f.rule in ("conservative-care", "dx-not-supporting")}
    assert cited == {("conservative-care", (1,), "conservative_care", "POL-CARE"),
                     ("conservative-care", (2,), "conservative_care", "POL-FUSION"),
                     ("dx-not-supporting", (1,), "dx_coverage", "POL-DX"),
                     ("dx-not-supporting", (3,), "dx_coverage", "POL-MIGRAINE")}
    fusion = next(f for f in checker.check_claim(claim).findings if f.rule == "conservative-care" and f.lines == [2])
    assert "rows conservative_care: POL-FUSION [payer_policy]" in fusion.message
    assert fusion.payer_parameters[0]["source"]["url"] == "https://example.org/fusion"


def test_a_one_field_record_is_keyed_by_its_field_and_its_finding_cites_the_row() -> None:
    """A records parameter of one field (Medicare's dx_coverage_unread: a family per row) is
    looked up by that field: the unjudged stimulator and SI-joint lines each cite the document
    of their own row. (Before, the key of a one-field row kept the closing parenthesis and the
    knowledge base failed to load.)"""
    from pain_asp.engine import Checker, CheckOptions
    from pain_asp.models import parse_claim

    claim = parse_claim({"claim_id": "U-1", "payer": "medicare", "place_of_service": "24", "patient": {"id": "P"},
                         "diagnoses": ["M96.1", "M46.1"], "clinical": {"psych_evaluation": True},
                         "lines": [{"code": "63650", "date": "2026-03-02", "units": 2, "dx": [1]},
                                   {"code": "64451", "date": "2026-04-06", "units": 1, "dx": [2],
                                    "modifiers": ["RT"]}]})
    cited = {(tuple(f.lines), p["parameter"], p["source"]["document"].split(" (")[0].split(":")[0])
             for f in Checker(CheckOptions()).check_claim(claim).findings for p in f.payer_parameters
             if f.rule == "dx-coverage-unknown"}
    assert cited == {((1,), "dx_coverage_unread", "CMS article A56876"),
                     ((2,), "dx_coverage_unread", "MAC Sacroiliac Joint Injections and Procedures LCDs")}


def test_a_finding_cites_only_the_parameters_that_hold_a_value_for_its_line() -> None:
    """A rule may read several parameters; its finding cites those with a value for the line's
    code or family, not every one the payer sets (62322's not-covered finding cited NCD 150.13,
    the decompression coverage_review list; an ESI dx finding cited the vertebral open lists)."""
    from pain_asp.engine import Checker, CheckOptions
    from pain_asp.models import parse_claim

    claim = parse_claim({"claim_id": "C-1", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P"},
                         "diagnoses": ["M54.50"], "clinical": {"conservative_care_weeks": 6, "pain_duration_months": 4},
                         "lines": [{"code": "62322", "date": "2026-03-02", "units": 1, "dx": [1]}]})
    cited = {(f.rule, p["parameter"]) for f in Checker(CheckOptions()).check_claim(claim).findings
             for p in f.payer_parameters if f.rule in ("not-covered", "dx-not-supporting")}
    assert cited == {("not-covered", "not_covered"), ("dx-not-supporting", "dx_coverage")}


def test_a_row_source_is_validated_like_an_entry_source(tmp_path: Path) -> None:
    text = ROW_SOURCES.replace(", confidence: payer_policy}}", "}}")
    error = error_of(tmp_path, text.replace("id: rows", "id: p1"))
    assert error.line == 9 and error.key == "parameters.conservative_care.value.1.source"
    assert "document and confidence" in error.expected
    text = ROW_SOURCES.replace("source: {document: POL-MIGRAINE", "sourc: {document: POL-MIGRAINE")
    error = error_of(tmp_path, text.replace("id: rows", "id: p1"))
    assert error.key == "parameters.dx_coverage.value.chemodenervation_migraine.sourc"
    assert "did you mean 'source'" in error.expected
    (tmp_path / "p1.yaml").unlink()
    (tmp_path / "rows.yaml").write_text(ROW_SOURCES.replace(", confidence: secondary}", "}"))
    result = CliRunner().invoke(app, ["payers", "show", "rows", "--payer-dir", str(tmp_path)])
    assert result.exit_code == 2 and "rows.yaml" in result.output and "Traceback" not in result.output


def test_payers_show_lists_row_sources(tmp_path: Path) -> None:
    (tmp_path / "rows.yaml").write_text(ROW_SOURCES)
    result = CliRunner().invoke(app, ["payers", "show", "rows", "--date", "2026-03-02", "--payer-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "row si_joint_fusion: source POL-FUSION [payer_policy] https://example.org/fusion" in result.output
    assert "row chemodenervation_migraine: source POL-MIGRAINE [secondary]" in result.output
