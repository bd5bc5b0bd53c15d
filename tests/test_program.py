"""The program clingo grounds: anonymous body variables named, the answer unchanged
(pain_asp/program.py)."""

from __future__ import annotations

from pathlib import Path

import clingo
import pytest

from pain_asp.bench.generate import generate_claims
from pain_asp.engine import Checker
from pain_asp.history import batch_history
from pain_asp.inputs.records import validate_claim
from pain_asp.kb import main_file
from pain_asp.program import program_text

SMALL = """
p(1, 2). p(1, 3). p(2, 2). s(2, 9).
q(X) :- p(X, _).
r(X) :- p(X, _), not s(X, _).
n(N) :- N = #count { X : p(X, _) }.
t(X) :- s(X, _), q(Y) : p(Y, _).
#show q/1. #show r/1. #show n/1. #show t/1.
"""


def _answer(text: str) -> list[str]:
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], text)
    ctl.ground([("base", [])])
    shown: list[str] = []
    ctl.solve(on_model=lambda m: shown.extend(sorted(map(str, m.symbols(shown=True)))))
    return shown


@pytest.fixture()
def small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAIN_ASP_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "small.lp"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_positive_body_variables_are_named_negative_ones_stay_anonymous(small: Path) -> None:
    text = program_text([small])
    assert "q(X) :- p(X,Anon1)." in text
    assert "r(X) :- p(X,Anon2); not s(X,_)." in text
    assert "#count { X: p(X,Anon3) }" in text
    assert "t(X) :- s(X,Anon4); q(Y): p(Y,Anon5)." in text
    assert _answer(text) == _answer(SMALL) == ["n(2)", "q(1)", "q(2)", "r(1)", "t(2)"]


def test_the_text_is_cached_per_file_contents(small: Path) -> None:
    first = program_text([small])
    small.write_text(SMALL + "extra(X) :- p(_, X).\n", encoding="utf-8")
    second = program_text([small])
    assert "extra(X) :- p(Anon" in second and "extra" not in first


READERS = """
meta(r1, "a long citation no rule reads").
meta(r2, "another").
kept(1). kept(2). counted(5). shown(7). conditional(1). pooled(1;2).
label(X) :- kept(X).
n(N) :- N = #count { X : counted(X) }.
c :- kept(X) : conditional(X).
#show shown/1. #show label/1. #show n/1. #show c/0.
"""


def test_facts_no_rule_reads_are_left_out_and_the_answer_is_the_same(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A fact of a predicate that no rule body, aggregate, condition or #show mentions cannot
    change the answer: it is not parsed and grounded for every solve. Facts every reader
    needs stay."""
    monkeypatch.setenv("PAIN_ASP_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "readers.lp"
    path.write_text(READERS, encoding="utf-8")
    text = program_text([path])
    assert "meta(" not in text
    for kept in ("kept(1).", "kept(2).", "counted(5).", "shown(7).", "conditional(1).", "pooled("):
        assert kept in text
    assert _answer(text) == _answer(READERS) == ["c", "label(1)", "label(2)", "n(1)", "shown(7)"]


def test_a_file_that_does_not_parse_raises_with_its_messages(small: Path) -> None:
    small.write_text("p(1 :- .\n", encoding="utf-8")
    messages: list[str] = []
    with pytest.raises(RuntimeError):
        program_text([small], lambda code, message: messages.append(message))
    assert any("syntax error" in m for m in messages)


def test_the_knowledge_base_answers_the_same_with_and_without_named_variables() -> None:
    """Every shown atom of a check solve over 300 generated claims (with history) is the same
    whether clingo reads the kb files as written or the rewritten text."""
    checker = Checker()
    payers = checker.known_payers()
    records = [validate_claim(c, "gen", i, payers) for i, c in enumerate(generate_claims(300, 11), 1)]
    claims = [r.claim for r in records if r.claim is not None]
    facts = checker.facts(claims, batch_history(claims))
    files = [main_file(checker.kb), checker.kb / "show.lp"]

    def solve(load: object) -> list[str]:
        ctl = clingo.Control(["--warn=none"])
        load(ctl)  # type: ignore[operator]
        ctl.add("base", [], facts)
        ctl.ground([("base", [])])
        shown: list[str] = []
        ctl.solve(on_model=lambda m: shown.extend(map(str, m.symbols(shown=True))))
        return sorted(shown)

    as_written = solve(lambda ctl: [ctl.load(str(f)) for f in files])
    rewritten = solve(lambda ctl: ctl.add("base", [], program_text(files)))
    assert any(a.startswith("finding(") for a in as_written)
    assert rewritten == as_written
