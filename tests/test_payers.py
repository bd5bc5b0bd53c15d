"""Payer policy files (SPEC §6): validation with file, line and key; extends; dates; facts."""

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
    assert 'payer_param("p1", esi_regions_per_session, 2, 20250101).' in facts
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
