"""`pain-asp kb profile`: grounding time per rule, so an author can see where check time goes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from pain_asp.authoring.kbprofile import profile_kb
from pain_asp.cli import app
from pain_asp.resources import kb_dir

# Every pair of lines, three times over: on 200 claims ~360,000 atoms, about 0.2 s of ground time
# (CPU time: a busy second core does not count), while no rule of the knowledge base takes more
# than ~15 ms even when a single timing is inflated under load.
SLOW_RULE = "profile_slow_pair(K, L, K2, L2, N) :- line(K, L), line(K2, L2), N = 1..3.\n"


def _kb_with_slow_rule(tmp_path: Path) -> Path:
    """A copy of the knowledge base with one rule that joins every line with every other line."""
    kb = tmp_path / "kb"
    shutil.copytree(kb_dir(), kb)
    with open(kb / "rules" / "coding" / "duplicates.lp", "a", encoding="utf-8") as handle:
        handle.write("\n% A deliberately quadratic rule (tests/test_kbprofile.py).\n" + SLOW_RULE)
    return kb


def test_every_rule_is_timed_once_and_points_at_its_source() -> None:
    profile = profile_kb(claims=40, seed=2, repeats=1)
    assert profile.claims == 40 and profile.model_atoms > 40
    places = [(r.file, r.line) for r in profile.rules]
    assert len(places) == len(set(places)) > 300
    kb = kb_dir()
    for rule in profile.rules:
        assert rule.seconds >= 0.0
        source = (kb / rule.file).read_text(encoding="utf-8").splitlines()
        head = rule.text.split("(", 1)[0].split(" :-", 1)[0]
        assert head in source[rule.line - 1], (rule.file, rule.line, rule.text)
    totals = dict(profile.by_file())
    for file, seconds in totals.items():
        assert abs(seconds - sum(r.seconds for r in profile.rules if r.file == file)) < 1e-9
    assert "rules/payer/esi_sessions.lp" in totals and "claim_view.lp" in totals


def test_an_expensive_rule_comes_first(tmp_path: Path) -> None:
    kb = _kb_with_slow_rule(tmp_path)
    profile = profile_kb(claims=200, seed=3, repeats=1, kb_dir=str(kb))
    ranked = sorted(profile.rules, key=lambda r: -r.seconds)
    assert ranked[0].text.startswith("profile_slow_pair(") and ranked[0].file == "rules/coding/duplicates.lp"
    assert ranked[0].seconds > 2 * ranked[1].seconds
    plain = profile_kb(claims=200, seed=3, repeats=1)
    before = dict(plain.by_file())["rules/coding/duplicates.lp"]
    after = dict(profile.by_file())["rules/coding/duplicates.lp"]
    assert after >= before + ranked[0].seconds * 0.5


def test_cli_text_and_json() -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["kb", "profile", "--claims", "30", "--repeats", "1", "--top", "5"])
    assert done.exit_code == 0, done.output
    assert "by file:" in done.output and "top 5 rules:" in done.output
    assert len(done.output.split("top 5 rules:")[1].strip().splitlines()) == 5
    done = runner.invoke(app, ["kb", "profile", "--claims", "30", "--repeats", "1", "--format", "json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["claims"] == 30 and len(data["rules"]) > 300
    assert {f["file"] for f in data["files"]} == {r["file"] for r in data["rules"]}
