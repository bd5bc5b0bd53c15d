"""kb check (contradicting rules, self-contradicting payer files, rules that never fire) and
kb diff (findings that appear or disappear between two versions of the rules), docs/authoring.md."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.authoring.kbcheck import hypothesis_claims, space_search
from pain_asp.authoring.rules import layout
from pain_asp.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
KB = ROOT / "kb"
CASES = ROOT / "tests" / "cases"

# A rule that contradicts kx-missing: Medicare wants KX on a diagnostic facet injection,
# this rule forbids it. Removing KX clears it, adding KX clears kx-missing, nothing clears both.
NO_KX = '''%# Deliberately contradictory rule (kb check test): KX is never allowed on a facet injection
%
% Source:   none; kx-missing (kb/rules/payer/kx.lp) demands the opposite for Medicare.
% Inputs:   line_family/3, line_mod/3 (claim view)
% Outputs:  violation/4 for no-kx-demo

%## Rule metadata
rule("no-kx-demo", payer, deny).
rule_meta("no-kx-demo", title, "KX on a facet injection").
rule_meta("no-kx-demo", message, "line {line}: KX is not allowed on a facet injection").
rule_meta("no-kx-demo", fix, "Remove KX from line {line}.").
rule_meta("no-kx-demo", carc, "4").
rule_meta("no-kx-demo", correctable, yes).
rule_source("no-kx-demo", "kb check test", "", unverified, "").

%## Violations
violation("no-kx-demo", K, L, ()) :- line_family(K, L, facet_injection), line_mod(K, L, "KX").
'''

# A rule that can never fire: one line never bills two codes.
NEVER = '''%# Deliberately dead rule (kb check test): one line billing two codes
%
% Source:   none.
% Inputs:   line_code/3 (claim view)
% Outputs:  violation/4 for never-demo

rule("never-demo", coding, deny).
rule_meta("never-demo", title, "A line billing 64493 and 64494 at once").
rule_meta("never-demo", message, "line {line} bills two codes").
rule_meta("never-demo", fix, "Split line {line}.").
rule_meta("never-demo", carc, "4").
rule_meta("never-demo", correctable, yes).
rule_source("never-demo", "kb check test", "", unverified, "").
violation("never-demo", K, L, ()) :- line_code(K, L, "64493"), line_code(K, L, "64494").
'''


def invoke(*args: object):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


def _kb_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of the knowledge base with extra rule files included."""
    kb = tmp_path / "kb"
    shutil.copytree(KB, kb)
    includes = []
    for name, text in files.items():
        (kb / "rules" / "payer" / name).write_text(text, encoding="utf-8")
        includes.append(f'#include "rules/payer/{name}".')
    main = kb / "check.lp"
    main.write_text(main.read_text(encoding="utf-8").replace(
        '#include "findings.lp".', "\n".join(includes) + '\n#include "findings.lp".'), encoding="utf-8")
    return kb


# --- contradictions and rules that never fire -------------------------------------------------

@pytest.fixture(scope="module")
def contradictory(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    tmp = tmp_path_factory.mktemp("kbcheck")
    kb = _kb_with(tmp, {"no_kx_demo.lp": NO_KX, "never_demo.lp": NEVER})
    out = tmp / "counter-examples"
    result = invoke("kb", "check", "--kb", kb, "--cases", CASES, "--payer", "medicare", "--budget", "10",
                    "--codes", "64490,64491,64493,64494", "--out", out)
    return kb, out, result


def test_kb_check_catches_a_deliberately_contradictory_rule(contradictory: tuple[Path, Path, object]) -> None:
    kb, out, result = contradictory
    assert result.exit_code == 1, result.output
    assert "[contradictions] rules kx-missing and no-kx-demo" in result.stdout \
        or "[contradictions] rules no-kx-demo and kx-missing" in result.stdout
    assert "each alone can be cleared by an edit of the claim, no edit clears both" in result.stdout
    written = sorted(out.rglob("fire_kbcheck_*.yaml"))
    assert len(written) == 1
    assert "counter-example: " + str(written[0]) in result.stdout
    # The counter-example is a ready-to-run case: it passes as written against that KB ...
    rerun = invoke("rules", "test", written[0], "--kb", kb)
    assert rerun.exit_code == 0, rerun.output
    # ... and pain-asp fix cannot make it clean.
    from pain_asp.authoring.casefiles import load_case
    from pain_asp.inputs.records import validate_claim
    from pain_asp.modes.fix import Repairer, RepairOptions

    case = load_case(written[0])
    repairer = Repairer(RepairOptions(kb_dir=str(kb)))
    record = validate_claim(case.claims[0], str(written[0]), 1, repairer.known_payers())
    assert repairer.fix([record])[0].status == "unfixable"
    assert {item[1] for item in case.expected} & {"kx-missing", "no-kx-demo"}


def test_kb_check_reports_a_rule_that_can_never_fire(contradictory: tuple[Path, Path, object]) -> None:
    _, _, result = contradictory
    assert "[never-fire] rule never-demo" in result.stdout
    assert "fires for no claim of payer medicare (nor in any case)" in result.stdout
    assert "never_demo.lp:7" in result.stdout  # where the rule is declared
    # The shipped rules all fire for Medicare except the one Medicare has no parameter for.
    assert "rule esi-interval: never fires for medicare: the payer does not set esi_min_interval_days" in result.stdout


def test_kb_check_is_clean_on_the_shipped_payers() -> None:
    result = invoke("kb", "check", "--only", "payers")
    assert result.exit_code == 0, result.output
    assert "kb check: 0 error(s), 0 warning(s)" in result.stdout


def test_kb_check_never_fire_for_one_payer_explains_silence() -> None:
    result = invoke("kb", "check", "--only", "never-fire", "--payer", "commercial_strict_esi", "--budget", "20",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    messages = {i["subject"]: i["message"] for i in report["issues"]}
    assert messages["rule kx-missing"] == ("never fires for commercial_strict_esi: the payer sets "
                                           "kx_families to an empty value")
    assert "rule esi-interval" not in messages  # this payer sets the minimum interval
    assert all(i["level"] != "error" for i in report["issues"])


def test_space_search_proves_and_finds() -> None:
    found, undecided = space_search(KB, ["commercial", "medicare"],
                                    {"commercial": {"kx-missing"}, "medicare": {"kx-missing", "esi-interval"}})
    assert found == {"commercial": set(), "medicare": {"kx-missing"}}
    assert undecided == {"commercial": set(), "medicare": set()}


def test_hypothesis_claims_are_valid_and_reproducible() -> None:
    from pain_asp.inputs.records import validate_claim

    first = hypothesis_claims(["medicare", "commercial"], ["64493", "64494", "77003"], 15, seed=3)
    assert first == hypothesis_claims(["medicare", "commercial"], ["64493", "64494", "77003"], 15, seed=3)
    assert first and all(validate_claim(c, "h", 1, ["medicare", "commercial"]).ok for c in first)


# --- payer settings that contradict themselves -------------------------------------------------

BAD_PAYER = '''id: bad_payer
name: A payer file that contradicts itself
extends: commercial
rules:
  kx-not-applicable:
    severity: review
    "off": true
    source: {document: X, confidence: payer_policy}
parameters:
  esi_levels_per_session:
    value: {transforaminal: 0, interlaminar: 1}
    source: {document: X, confidence: payer_policy}
  facet_levels_per_session:
    value: 3
    source: {document: X, confidence: payer_policy}
  bilateral_format:
    value:
      - {pos: 24, format: two_lines_rt_lt}
      - {pos: 24, format: single_line_50}
    source: {document: X, confidence: payer_policy}
  kx_families:
    value: [facet_injections]
    source: {document: X, confidence: payer_policy}
  not_covered:
    value: ["64633"]
    source: {document: X, confidence: payer_policy}
  prior_auth:
    - since: 2020-01-01
      value: [{code: "64633", pos: 0, certainty: required, requested_by: practitioner}]
      source: {document: X, confidence: payer_policy, effective: "2021-01-01"}
  rfa_repeat:
    value: {min_relief_pct: 150, min_months: 6}
    source: {document: X, confidence: payer_policy}
'''


def test_kb_check_finds_payer_settings_that_contradict_themselves(tmp_path: Path) -> None:
    (tmp_path / "bad_payer.yaml").write_text(BAD_PAYER, encoding="utf-8")
    result = invoke("kb", "check", "--only", "payers", "--payer", "bad_payer", "--payer-dir", tmp_path)
    assert result.exit_code == 1
    out = result.stdout
    expected = [
        ("bad_payer.yaml:5", "rule kx-not-applicable", "switched off and re-graded to review on every date"),
        ("bad_payer.yaml:16", "bilateral_format", "two rows for pos 24 disagree: format two_lines_rt_lt or single_line_50"),
        ("bad_payer.yaml:10", "esi_levels_per_session.transforaminal", "every transforaminal ESI is over the level limit"),
        ("bad_payer.yaml:21", "kx_families", "code family 'facet_injections' is not in the catalog"),
        ("bad_payer.yaml:27", "prior_auth", "before its source 'X' takes effect (2021-01-01)"),
        ("bad_payer.yaml:31", "rfa_repeat.min_relief_pct", "no RFA can give more than 100 % relief"),
        ("bad_payer.yaml:27", "prior_auth", "64633 needs prior authorization but the payer does not cover it"),
    ]
    for where, subject, message in expected:
        line = next((ln for ln in out.splitlines() if f"bad_payer: {subject} (" in ln and message in ln), None)
        assert line is not None and where in line, (subject, message, out)


# --- kb diff ---------------------------------------------------------------------------------

def test_kb_diff_between_two_folders(tmp_path: Path) -> None:
    changed = _kb_with(tmp_path, {"no_kx_demo.lp": NO_KX})
    corpus = [ROOT / "docs" / "examples" / "claims.yaml", CASES / "kx-missing"]
    result = invoke("kb", "diff", KB, changed, *corpus)
    assert result.exit_code == 1
    assert "+ deny   no-kx-demo" in result.stdout and "claim EX-01-clean-mbb (medicare)" in result.stdout
    report = json.loads(invoke("kb", "diff", KB, changed, *corpus, "--format", "json").stdout)
    assert report["disappeared"] == 0 and report["appeared"] == report["by_rule"]["no-kx-demo"]["appeared"] > 0
    back = json.loads(invoke("kb", "diff", changed, KB, *corpus, "--format", "json").stdout)
    assert back["appeared"] == 0 and back["disappeared"] == report["appeared"]
    same = invoke("kb", "diff", KB, KB, *corpus)
    assert same.exit_code == 0 and "0 changed" in same.stdout


def test_kb_diff_against_a_git_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(KB, repo / "kb")
    shutil.copytree(ROOT / "payers", repo / "payers")

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c",
                        "commit.gpgsign=false", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q")
    git("add", "kb", "payers")
    git("commit", "-q", "-m", "rules")
    (repo / "kb" / "rules" / "payer" / "no_kx_demo.lp").write_text(NO_KX, encoding="utf-8")
    main = repo / "kb" / "check.lp"
    main.write_text(main.read_text(encoding="utf-8").replace(
        '#include "findings.lp".', '#include "rules/payer/no_kx_demo.lp".\n#include "findings.lp".'),
        encoding="utf-8")
    monkeypatch.chdir(repo)
    result = invoke("kb", "diff", "HEAD", ".", ROOT / "docs" / "examples" / "claims.yaml")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("kb diff: HEAD (") and "+ deny   no-kx-demo" in result.stdout
    bad = invoke("kb", "diff", "no-such-revision", ".", ROOT / "docs" / "examples" / "claims.yaml")
    assert bad.exit_code == 2 and "neither a knowledge-base folder nor a git revision" in bad.output


def test_layout_finds_the_checkout() -> None:
    place = layout()
    assert place.kb == KB and place.cases == CASES and not place.installed


def _addon_pairs() -> set[tuple[str, str]]:
    import clingo

    from pain_asp.resources import kb_dir

    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(kb_dir() / "check.lp"))
    ctl.add("base", [], "#show. #show addon_primary/2.")
    ctl.ground([("base", [])])
    pairs: set[tuple[str, str]] = set()
    ctl.solve(on_model=lambda m: pairs.update((s.arguments[0].string, s.arguments[1].string)
                                              for s in m.symbols(shown=True)))
    return pairs


def test_every_addon_code_of_the_catalog_names_its_primaries() -> None:
    """Each add-on (kind addon) has primaries, each a catalog code that is not an add-on, and
    the CPT/HCPCS pairs of the family descriptors are there (64480 with 64479 ... G3003 with
    G3002, 99439 with 99490: CMS add-on code edits, Type I; A58993, A57787, NGS-CCM)."""
    from pain_asp.kb import code_catalog

    catalog = code_catalog()
    pairs = _addon_pairs()
    addons = {code for code, info in catalog.items() if info.kind == "addon"}
    assert not addons - {addon for addon, _ in pairs}
    for addon, primary in pairs:
        assert primary in catalog and catalog[primary].kind != "addon", (addon, primary)
    expected = {("64480", "64479"), ("64484", "64483"), ("64491", "64490"), ("64492", "64490"),
                ("64494", "64493"), ("64495", "64493"), ("64634", "64633"), ("64636", "64635"),
                ("0214T", "0213T"), ("0215T", "0213T"), ("0217T", "0216T"), ("0218T", "0216T"),
                ("G3003", "G3002"), ("99439", "99490"), ("99437", "99491"), ("99489", "99487"),
                ("99425", "99424"), ("99427", "99426"), ("99458", "99457"), ("G2211", "99213"),
                ("77003", "62322"), ("77002", "64405")}
    assert expected <= pairs, sorted(expected - pairs)
