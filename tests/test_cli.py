"""The command line: formats, exit codes, determinism, explain (README.md)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.cli import app

runner = CliRunner()
DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples" / "claims.yaml"

DENIED = {
    "claim_id": "D-1", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P-9"},
    "diagnoses": ["M47.816"],
    "clinical": {"pain_duration_months": 6, "conservative_care_weeks": 12},
    "lines": [
        {"code": "64493", "modifiers": ["50", "KX"], "date": "2026-03-02", "dx": [1],
         "documented": {"imaging": "fluoroscopy", "side": "bilateral", "levels": ["L4-L5"],
                        "purpose": "diagnostic"}},
        {"code": "77003", "date": "2026-03-02", "dx": [1]},
    ],
}
# Another patient: the same patient's two claims billing one service on one date would be a
# suspect duplicate of each other (duplicate-across-claims).
CLEAN = {**DENIED, "claim_id": "OK-1", "patient": {"id": "P-10"}, "lines": DENIED["lines"][:1]}


def write(tmp_path: Path, claims: object) -> Path:
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    return path


def test_exit_codes(tmp_path: Path) -> None:
    assert runner.invoke(app, ["check", str(write(tmp_path, CLEAN))]).exit_code == 0
    assert runner.invoke(app, ["check", str(write(tmp_path, DENIED))]).exit_code == 1
    assert runner.invoke(app, ["check", str(write(tmp_path, DENIED)), "--fail-on", "never"]).exit_code == 0
    assert runner.invoke(app, ["check", "--format", "xml", str(write(tmp_path, CLEAN))]).exit_code == 2


def test_json_finding_has_every_spec_field(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(write(tmp_path, [CLEAN, DENIED])), "--format", "json"])
    results = json.loads(result.stdout)
    assert [r["status"] for r in results] == ["clean", "deny"]
    finding = results[1]["findings"][0]
    for key in ("rule", "severity", "title", "message", "lines", "codes", "carc", "rarc", "source",
                "payer", "fix"):
        assert key in finding
    assert finding["rule"] == "imaging-included" and finding["lines"] == [2]
    assert finding["codes"] == ["77003"] and finding["carc"] == "97"
    assert {s["document"] for s in finding["source"]} >= {"A57787"}


def test_jsonl_one_record_per_claim_in_order(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(write(tmp_path, [DENIED, CLEAN])), "--format", "jsonl"])
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["claim_id"] for r in rows] == ["D-1", "OK-1"]


def test_csv_one_row_per_finding(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(write(tmp_path, [DENIED, CLEAN])), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["claim_id"], r["rule"]) for r in rows] == [("D-1", "imaging-included"), ("OK-1", "")]


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    for fmt in ("text", "json", "jsonl", "csv"):
        first = runner.invoke(app, ["check", str(EXAMPLES), "--format", fmt]).stdout
        second = runner.invoke(app, ["check", str(EXAMPLES), "--format", fmt]).stdout
        assert first == second and first


def test_text_groups_by_claim_without_colour_when_piped(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(write(tmp_path, [DENIED, CLEAN]))])
    assert "\x1b[" not in result.stdout
    assert result.stdout.index("D-1") < result.stdout.index("imaging-included") < result.stdout.index("OK-1")
    assert "2 claim(s)" in result.stdout


def test_explain_names_rule_source_facts_and_fix(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(write(tmp_path, DENIED))])
    assert result.exit_code == 1
    out = result.stdout
    assert "imaging-included" in out and "A57787" in out and "2021-04-25" in out
    assert "line 2: 77003" in out and "to pass:" in out and "source_verified" in out
    as_json = json.loads(runner.invoke(app, ["explain", str(write(tmp_path, DENIED)), "--format", "json"]).stdout)
    item = as_json[0]["explanations"][0]
    assert item["rule"] == "imaging-included" and item["triggered_by"]["facts"]["code"] == "77003"


def test_explain_shows_the_block_whose_relief_fell_short(tmp_path: Path) -> None:
    """A first facet RFA whose diagnostic blocks (one in the claim's history, one on another claim
    of the batch) gave 60 % and 70 % relief, where Medicare requires 80 %: explain names the block
    that came closest, with its relief, beside the threshold."""
    block = {"claim_id": "B-1", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P-9"},
             "diagnoses": ["M47.816"], "clinical": {"pain_duration_months": 6, "conservative_care_weeks": 12},
             "lines": [{"code": "64493", "modifiers": ["RT", "KX"], "date": "2026-02-02", "dx": [1],
                        "documented": {"imaging": "fluoroscopy", "side": "right", "levels": ["L4-L5"],
                                       "purpose": "diagnostic", "relief_pct": 70}}]}
    rfa = {**block, "claim_id": "RFA-1",
           "lines": [{"code": "64635", "modifiers": ["RT"], "date": "2026-03-02", "dx": [1],
                      "documented": {"imaging": "fluoroscopy", "side": "right", "levels": ["L4-L5"]}}],
           "history": [{"date": "2026-01-12", "code": "64493", "modifiers": ["RT", "KX"],
                        "purpose": "diagnostic", "relief_pct": 60, "levels": ["L4-L5"]}]}
    path = write(tmp_path, [block, rfa])
    result = runner.invoke(app, ["explain", str(path), "--claim", "RFA-1", "--rule", "rfa-prerequisite"])
    assert result.exit_code == 1
    assert "fact:     min_relief = 80" in result.stdout
    assert "fact:     block_below_date = 2026-02-02" in result.stdout
    assert "fact:     block_below_relief = 70" in result.stdout
    as_json = json.loads(runner.invoke(app, ["explain", str(path), "--claim", "RFA-1", "--format", "json"]).stdout)
    facts = as_json[0]["explanations"][0]["triggered_by"]["facts"]
    assert (facts["min_relief"], facts["block_below_date"], facts["block_below_relief"]) == (80, "2026-02-02", 70)


def test_explain_filters_and_rejects_unknown_ids(tmp_path: Path) -> None:
    path = write(tmp_path, [DENIED, CLEAN])
    assert runner.invoke(app, ["explain", str(path), "--claim", "OK-1"]).exit_code == 0
    assert runner.invoke(app, ["explain", str(path), "--claim", "NOPE"]).exit_code == 2
    assert runner.invoke(app, ["explain", str(path), "--rule", "no-such-rule"]).exit_code == 2


def test_examples_have_denials_and_clean_claims() -> None:
    result = runner.invoke(app, ["check", str(EXAMPLES), "--format", "json"])
    assert result.exit_code == 1
    statuses = {r["claim_id"]: r["status"] for r in json.loads(result.stdout)}
    assert statuses["EX-01-clean-mbb"] == "clean"
    assert statuses["EX-13-clean-tfesi"] == "clean"
    assert statuses["EX-02-fluoro-included"] == "deny"


def test_rules_list_and_payers(tmp_path: Path) -> None:
    out = runner.invoke(app, ["rules", "list"]).stdout
    assert "imaging-included" in out
    out = runner.invoke(app, ["payers", "list"]).stdout
    assert "medicare" in out and "commercial" in out
    out = runner.invoke(app, ["payers", "show", "medicare", "--date", "2026-03-02"]).stdout
    assert "laterality_review" in out and "source" in out
    assert runner.invoke(app, ["payers", "show", "nobody"]).exit_code == 2


@pytest.mark.parametrize("command", [["rules", "list"], ["data", "status"], ["kb", "profile", "--claims", "1"],
                                     ["explain", "docs/examples/claims.yaml"], ["rules", "coverage"]])
def test_commands_that_report_one_thing_take_text_or_json_only(command: list[str]) -> None:
    done = runner.invoke(app, [*command, "--format", "csv"])
    assert done.exit_code == 2
    assert "'csv' is not one of 'text', 'json'" in done.output
