"""The rule authoring commands: rules list --payer, show, test, coverage, lint, new (docs/authoring.md)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.authoring.casefiles import find_cases, load_case, run_case, run_cases
from pain_asp.authoring.rules import layout, parse_kb, rule_text
from pain_asp.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases"
KB = ROOT / "kb"


def invoke(*args: str):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture()
def kb_copy(tmp_path: Path) -> Path:
    """A private copy of the knowledge base (rule files can be added to it)."""
    target = tmp_path / "kb"
    shutil.copytree(KB, target)
    return target


def _include(kb: Path, relative: str) -> None:
    main = kb / "check.lp"
    text = main.read_text(encoding="utf-8")
    main.write_text(text.replace('#include "findings.lp".', f'#include "{relative}".\n#include "findings.lp".'),
                    encoding="utf-8")


# --- rules list --payer ----------------------------------------------------------------------

def test_rules_list_payer_shows_what_the_payer_touches() -> None:
    result = invoke("rules", "list", "--payer", "commercial_strict_esi")
    assert result.exit_code == 0, result.output
    assert "esi-interval" in result.stdout and "reads esi_min_interval_days" in result.stdout
    assert "imaging-included" not in result.stdout  # a coding rule reading no parameter
    rows = json.loads(invoke("rules", "list", "--payer", "medicare", "--format", "json").stdout)
    by_id = {r["id"]: r for r in rows}
    assert by_id["esi-frequency"]["payer"] == "reads esi_frequency"
    assert "esi-interval" not in by_id  # medicare does not set the minimum interval
    assert invoke("rules", "list", "--payer", "nobody").exit_code == 2


def test_rules_list_payer_shows_rules_switched_off_and_regraded(tmp_path: Path) -> None:
    (tmp_path / "quiet.yaml").write_text(
        "id: quiet\nname: Quiet payer\nextends: commercial\nrules:\n"
        "  kx-not-applicable:\n    \"off\": true\n    source: {document: P-1, confidence: payer_policy}\n"
        "  laterality-missing:\n    - since: 2025-01-01\n      severity: review\n"
        "      source: {document: P-1, confidence: payer_policy}\n", encoding="utf-8")
    out = invoke("rules", "list", "--payer", "quiet", "--payer-dir", tmp_path).stdout
    assert "kx-not-applicable" in out and "[quiet: off; reads kx_families]" in out
    assert "severity review from 2025-01-01" in out


# --- rules show ------------------------------------------------------------------------------

def test_rules_show_gives_metadata_sources_parameters_cases_and_asp() -> None:
    result = invoke("rules", "show", "esi-frequency")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("esi-frequency: ")
    assert "CARC 119" in out and "correctable by editing the claim: no" in out
    assert "effective 2021-12-05 [secondary]" in out  # a source with its date and confidence
    assert "esi_frequency: ESI sessions" in out  # the parameter and its meaning
    assert "medicare: {max_sessions: 4, window_months: 12} since 2021-12-05" in out
    assert "commercial_strict_esi: {max_sessions: 3, window_months: 12}" in out
    assert "fire_fifth_lumbar_session_medicare" in out and "pass_fourth_lumbar_session_medicare" in out
    assert 'violation("esi-frequency", K, L' in out  # the ASP text of the rule
    assert "esi_sess_in_window(K, L, R, D, W, N) :-" in out  # a helper rule it rests on
    assert "esi_sess_levels" not in out  # helpers of other rules of the file are left out
    info = json.loads(invoke("rules", "show", "esi-frequency", "--format", "json").stdout)
    assert info["reads"][0]["parameter"] == "esi_frequency"
    assert {c["kind"] for c in info["cases"]} == {"fire", "pass"}


def test_rules_show_unknown_rule_suggests_the_nearest() -> None:
    result = invoke("rules", "show", "esi-frequncy")
    assert result.exit_code == 2
    assert "did you mean esi-frequency" in result.output


def test_rule_text_keeps_only_the_rules_own_statements() -> None:
    file, statements = rule_text("imaging-wrong-code", parse_kb(KB))
    assert file is not None and file.name == "imaging.lp"
    text = "\n".join(s.text for s in statements)
    assert 'violation("imaging-wrong-code"' in text and "nonspinal_unguided(K, L, C, D) :-" in text
    assert 'violation("imaging-included"' not in text and 'rule("imaging-included"' not in text


# --- rules test ------------------------------------------------------------------------------

def test_rules_test_passes_a_rules_cases() -> None:
    result = invoke("rules", "test", "imaging-included", "--verbose")
    assert result.exit_code == 0, result.output
    assert "ok   imaging-included/fire_77003_with_facet_injection" in result.stdout
    n = len(list((CASES / "imaging-included").glob("*.yaml")))
    assert n >= 2 and f"{n} case(s): {n} passed, 0 failed" in result.stdout


def test_rules_test_shows_the_diff_of_a_deliberately_broken_case(tmp_path: Path) -> None:
    folder = tmp_path / "imaging-included"
    folder.mkdir()
    original = (CASES / "imaging-included" / "fire_77003_with_facet_injection.yaml").read_text(encoding="utf-8")
    broken = original.replace("lines: [2]}", "lines: [1]}")
    assert broken != original
    (folder / "fire_broken.yaml").write_text(broken, encoding="utf-8")
    result = invoke("rules", "test", tmp_path)
    assert result.exit_code == 1
    assert "case imaging-included/fire_broken" in result.stdout
    assert "  - II-F1: imaging-included deny lines [1]" in result.stdout  # expected, not found
    assert "  + II-F1: imaging-included deny lines [2]" in result.stdout  # found, not expected
    assert "1 case(s): 0 passed, 1 failed: imaging-included/fire_broken" in result.stdout


def test_rules_test_reports_a_case_that_does_not_load(tmp_path: Path) -> None:
    folder = tmp_path / "imaging-included"
    folder.mkdir()
    (folder / "pass_typo.yaml").write_text("descripton: x\nclaim: {}\nexpect: []\n", encoding="utf-8")
    result = invoke("rules", "test", tmp_path)
    assert result.exit_code == 1
    assert "does not load" in result.stdout and "descripton" in result.stdout


def test_rules_test_rejects_what_is_neither_a_rule_nor_a_path() -> None:
    result = invoke("rules", "test", "no-such-rule")
    assert result.exit_code == 2 and "neither a rule id nor a case file" in result.output


def test_batched_runner_gives_each_case_the_outcome_it_gets_alone() -> None:
    paths = find_cases(CASES, ["esi-frequency", "duplicate-line"])
    cases = [load_case(p) for p in paths]
    together = run_cases(cases)
    for case, outcome in zip(cases, together):
        alone = run_case(case)
        assert outcome.actual == alone.actual, case.name
        assert outcome.passed, outcome.diff()


# --- rules coverage --------------------------------------------------------------------------

def test_rules_coverage_reports_rules_parameters_and_families(tmp_path: Path) -> None:
    for rule in ("esi-interval", "imaging-included"):
        shutil.copytree(CASES / rule, tmp_path / rule)
    result = invoke("rules", "coverage", tmp_path, "--fail-under", "90")
    assert result.exit_code == 1  # two rules' cases cover little of the catalog
    out = result.stdout
    assert "rules: " in out and "never fire: " in out and "addon-units" in out.split("never fire: ")[1]
    assert re.search(r"esi_min_interval_days +commercial_strict_esi", out)
    assert "never billed: " in out
    data = json.loads(invoke("rules", "coverage", tmp_path, "--format", "json").stdout)
    assert data["rules"]["esi-interval"]["fire_cases"] >= 1
    assert set(data["parameters"]["esi_min_interval_days"]) == {"commercial_strict_esi"}
    assert data["families"]["imaging_guidance"] > 0 and data["families"]["bhi"] == 0
    assert invoke("rules", "coverage", tmp_path, "--fail-under", "0").exit_code == 0


def test_rules_coverage_of_the_shipped_cases_is_complete() -> None:
    data = json.loads(invoke("rules", "coverage", "--format", "json").stdout)
    assert data["rule_percent"] == 100.0 and data["parameter_percent"] == 100.0


def test_rules_test_and_lint_work_from_an_installed_package(tmp_path: Path) -> None:
    """An installed wheel (pain_asp with kb/, payers/ and cases/ inside, as pyproject.toml
    builds it) run from a folder that is no checkout tests its own knowledge base."""
    import subprocess
    import sys

    package = tmp_path / "site-packages" / "pain_asp"
    shutil.copytree(ROOT / "pain_asp", package, ignore=shutil.ignore_patterns("__pycache__"))
    for source, target in (("kb", "kb"), ("payers", "payers"), ("tests/cases", "cases")):
        shutil.copytree(ROOT / source, package / target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from pain_asp.cli import app; app()", *args],
                              cwd=elsewhere, capture_output=True, text=True, timeout=300,
                              env={"PYTHONPATH": str(package.parent), "PATH": "/usr/bin:/bin",
                                   # the test's data and cache folders (tests/conftest.py), not the user's
                                   **{name: os.environ[name] for name in ("PAIN_ASP_DATA_DIR", "PAIN_ASP_CACHE_DIR")}})

    tested = run("rules", "test", "esi-frequency")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"\d+ case\(s\): \d+ passed, 0 failed", tested.stdout)
    linted = run("rules", "lint")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "lint: no problems" in linted.stdout


# --- rules lint ------------------------------------------------------------------------------

def test_rules_lint_is_clean_on_the_shipped_knowledge_base() -> None:
    result = invoke("rules", "lint", "--kb", KB, "--cases", CASES)
    problems = [p for p in result.stdout.splitlines() if "[docs]" not in p and p.startswith("/")]
    assert not problems, result.stdout


def test_rules_lint_finds_each_kind_of_problem(kb_copy: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    shutil.copytree(CASES, cases)
    (kb_copy / "rules" / "payer" / "sloppy.lp").write_text(
        "%# A sloppy rule\n%\n% Inputs: line_code/3\n\n"
        'rule("sloppy-rule", payer, deny).\n'
        'rule_meta("sloppy-rule", title, "Sloppy").\n'
        'rule_meta("sloppy-rule", message, "{code} on {when}").\n'
        'rule_meta("sloppy-rule", correctable, yes).\n'
        'rule_reads("sloppy-rule", no_such_parameter).\n'
        'violation("sloppy-rule", K, L, (code(C))) :- line_code(K, L, C), line_mods(K, L, "KX").\n'
        'violation("sloppy-rule", K, L, (code(C)), review) :- line_code(K, L, C), C = "99999".\n'
        'violation("slopy-rule", K, L, ()) :- line_code(K, L, "99999").\n', encoding="utf-8")
    _include(kb_copy, "rules/payer/sloppy.lp")
    (kb_copy / "rules" / "payer" / "orphan.lp").write_text("%# Orphan\n", encoding="utf-8")
    (cases / "not-a-rule").mkdir()
    shutil.copy(CASES / "imaging-included" / "fire_77003_with_facet_injection.yaml",
                cases / "not-a-rule" / "fire_x.yaml")
    (tmp_path / "fix_cases" / "imaging-included").mkdir(parents=True)
    payers = tmp_path / "payers"
    payers.mkdir()
    (payers / "typo.yaml").write_text("id: typo\nname: Typo\nparameters:\n  esi_frequncy:\n"
                                      "    value: {max_sessions: 1, window_months: 1}\n"
                                      "    source: {document: X, confidence: payer_policy}\n", encoding="utf-8")
    result = invoke("rules", "lint", "--kb", kb_copy, "--cases", cases, "--payer-dir", payers)
    assert result.exit_code == 1
    out = result.stdout
    # clingo --warn=all: an atom no rule derives (the typo line_mods)
    assert "[clingo]" in out and "line_mods" in out
    assert "missing rule_meta('sloppy-rule', carc" in out
    assert "a correctable rule needs a fix hint" in out
    assert "no rule_source fact" in out
    assert "rule_reads no_such_parameter: not a parameter" in out
    assert "message uses {when}, which no violation of the rule gives" in out
    assert "the rule can give review: add rule_meta review_message" in out
    assert "violation names 'slopy-rule', which no rule/3 fact declares" in out
    assert "sloppy-rule has no fire_*.yaml case" in out and "sloppy-rule has no pass_*.yaml case" in out
    assert "'not-a-rule' is not a rule id" in out
    assert "sloppy-rule is correctable but has no fix case" in out
    assert "orphan.lp: [files] not included by check.lp" in out
    assert "no '% Source:' line" in out
    assert "typo.yaml:4: [payers] parameters.esi_frequncy" in out and "did you mean 'esi_frequency'" in out


def test_rules_lint_finds_a_rule_outside_its_category_folder(kb_copy: Path) -> None:
    # Rule folders equal rule categories: a history rule filed under rules/coding is reported.
    (kb_copy / "rules" / "coding" / "void.lp").write_text(
        "%# A void\n%\n% Source:   X12.\n\n"
        'rule("void-elsewhere", history, info).\n'
        'violation("void-elsewhere", K, L, ()) :- claim_void(K), billed_line(K, L, _, _).\n', encoding="utf-8")
    _include(kb_copy, "rules/coding/void.lp")
    result = invoke("rules", "lint", "--kb", kb_copy, "--cases", CASES)
    assert result.exit_code == 1
    misfiled = [p for p in result.stdout.splitlines() if "in the folder of its category" in p]
    assert len(misfiled) == 1, result.stdout
    assert "void.lp (void-elsewhere)" in misfiled[0] and "rules/history/" in misfiled[0]


def test_rules_lint_reports_stale_docs(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pain_asp.authoring.rules import _lint_docs

    assert layout(KB).docs == ROOT / "docs"  # the checkout's own knowledge base has docs
    assert layout(KB.parent / "kb").docs is not None
    (tmp_path / "rules.md").write_text("# old\n", encoding="utf-8")
    stale = _lint_docs(SimpleNamespace(docs=tmp_path))
    assert any(p.where.endswith("rules.md") and "stale: run pain-asp docs" in p.message for p in stale)


# --- rules new -------------------------------------------------------------------------------

def test_rules_new_scaffolds_a_rule_with_cases_ready_to_fill_in(kb_copy: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    shutil.copytree(CASES, cases)
    result = invoke("rules", "new", "demo-new-rule", "--category", "payer", "--code", "64483",
                    "--title", "A demonstration rule", "--kb", kb_copy, "--cases", cases)
    assert result.exit_code == 0, result.output
    rule_file = kb_copy / "rules" / "payer" / "demo_new_rule.lp"
    assert rule_file.is_file() and f"wrote {rule_file}" in result.stdout
    text = rule_file.read_text(encoding="utf-8")
    assert 'rule("demo-new-rule", payer, deny).' in text and 'demo_new_rule_line_code("64483").' in text
    assert '#include "rules/payer/demo_new_rule.lp".' in (kb_copy / "check.lp").read_text(encoding="utf-8")
    assert (cases / "demo-new-rule" / "fire_example.yaml").is_file()
    assert (cases / "demo-new-rule" / "pass_example.yaml").is_file()
    shown = invoke("rules", "show", "demo-new-rule", "--kb", kb_copy, "--cases", cases)
    assert shown.exit_code == 0 and "A demonstration rule" in shown.stdout
    # The scaffold flags every 64483 line: its fire case shows the finding (and the diff of
    # whatever else fires on the example claim), its pass case passes.
    tested = invoke("rules", "test", "demo-new-rule", "--kb", kb_copy, "--cases", cases)
    assert "demo-new-rule deny lines [2]" in tested.stdout
    assert "demo-new-rule/pass_example" not in tested.stdout.split("case(s)")[0]
    linted = invoke("rules", "lint", "--kb", kb_copy, "--cases", cases)
    assert linted.exit_code == 1 and "scaffold text left to fill in" in linted.stdout
    again = invoke("rules", "new", "demo-new-rule", "--category", "payer", "--code", "64483",
                   "--kb", kb_copy, "--cases", cases)
    assert again.exit_code == 2 and "already has this rule" in again.output


def test_rules_new_refuses_bad_input_and_installed_packages(kb_copy: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    bad = invoke("rules", "new", "x-rule", "--category", "billing", "--code", "64483", "--kb", kb_copy, "--cases", cases)
    assert bad.exit_code == 2 and "--category billing" in bad.output
    bad = invoke("rules", "new", "X Rule", "--category", "payer", "--code", "64483", "--kb", kb_copy, "--cases", cases)
    assert bad.exit_code == 2 and "lower case letters" in bad.output
    bad = invoke("rules", "new", "x-rule", "--category", "payer", "--code", "6448", "--kb", kb_copy, "--cases", cases)
    assert bad.exit_code == 2 and "CPT or HCPCS" in bad.output
    installed = tmp_path / "lib" / "site-packages" / "pain_asp" / "kb"
    shutil.copytree(kb_copy, installed)
    refused = invoke("rules", "new", "x-rule", "--category", "payer", "--code", "64483",
                     "--kb", installed, "--cases", cases)
    assert refused.exit_code == 2 and "installed package" in refused.output
    assert not (installed / "rules" / "payer" / "x_rule.lp").exists()
