"""Properties of the whole checker on random claims (README.md, docs/scaling.md).

Hypothesis draws claims from ``tests/strategies.py`` (the vocabulary of
``pain_asp.bench.generate``). The properties:

(a) a valid claim never crashes the checker or makes the program unsatisfiable, and its
    findings carry known rule ids, valid severities, lines of the claim and filled-in
    messages; the same holds for several claims of one patient (batch history);
(b) findings do not depend on the order of the lines (nor of the history entries);
(c) the claim id and patient id change nothing;
(d) the output is byte-identical from run to run, also across processes;
(e) hostile free text (quotes, ``).``, ``#include``, ``#script``, newlines, non-ASCII, very
    long strings) changes no finding; hostile strict fields are input errors that never
    reach clingo;
(f) a batch gives each claim the findings it gets alone (chunking does not leak);
(g) one result per input, in input order, bad records included as error results.

Properties (b), (c) and (e) solve the two claims they compare in one batch, which is sound
because (f) holds: claims of one solve do not see each other (only batch history joins
claims, and it is not used there).

The generator and the benchmark are tested at the end.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    CODES,
    DIAGNOSES,
    MODIFIERS,
    claims,
    hostile_text,
    hostile_token,
    muscle_key,
    nerve_key,
    unknown_nerve,
    valid_claims,
)

from pain_asp.bench import generate as g
from pain_asp.engine import Checker, CheckOptions
from pain_asp.findings import Result
from pain_asp.history import batch_history
from pain_asp.inputs.readers import read_claims
from pain_asp.inputs.records import Record, validate_claim
from pain_asp.models import MAX_AUTHORIZATION_LENGTH, MAX_ID_LENGTH
from pain_asp.modes.check import BatchOptions, check_files
from pain_asp.tokens import nerve_token
from pain_asp.vocabulary import SEVERITY_RANK

_PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*\}")  # the template placeholders: {code}, {lines}


# --- fixtures and helpers ------------------------------------------------------------------

@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


@pytest.fixture(scope="module")
def second_checker() -> Checker:
    return Checker()


@pytest.fixture(scope="module")
def small_chunks() -> Checker:
    return Checker(CheckOptions(chunk_size=2))


class _Spy:
    """Counts solves of a checker (to prove that rejected input never reaches clingo)."""

    def __init__(self, checker: Checker) -> None:
        self.calls = 0
        self._solve = checker._solve

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._solve(*args, **kwargs)


@pytest.fixture(scope="module")
def spied() -> tuple[Checker, _Spy]:
    checker = Checker()
    spy = _Spy(checker)
    checker._solve = spy  # type: ignore[method-assign]
    return checker, spy


def _record(checker: Checker, raw: Any, position: int = 1) -> Record:
    record = validate_claim(raw, "<property>", position, checker.known_payers())
    assert record.ok, [str(e) for e in record.errors]
    return record


def _check(checker: Checker, raws: list[dict[str, Any]], batch: bool = False) -> list[Result]:
    records = [_record(checker, raw, n) for n, raw in enumerate(raws, start=1)]
    history = batch_history([r.claim for r in records if r.claim]) if batch else None
    results = list(checker.check(records, history=history))
    for result in results:
        assert not result.errors, result.errors
    return results


def _findings(result: Result) -> list[dict[str, Any]]:
    return [f.as_dict() for f in result.findings]


def _line_key(line: Any) -> tuple[Any, ...]:
    """What the knowledge base can see of a validated line, without its number.

    Two lines with equal keys are indistinguishable to the rules (modifiers and pointers are
    sets, ``documented: {}`` is no documentation, nerves are tokens and a count, muscles a
    count), so a finding may name either of them.
    """
    doc = line.documented
    seen: tuple[Any, ...] = ()
    if doc is not None:
        seen = (doc.imaging, doc.side, doc.purpose, doc.relief_pct, doc.relief_duration_months,
                doc.distinct, tuple(sorted(doc.segments())),
                None if doc.nerves is None else (
                    tuple(sorted({nerve_token(n) for n in doc.nerves})),
                    len({nerve_key(n) for n in doc.nerves})),
                None if doc.muscles is None else len({muscle_key(m) for m in doc.muscles}))
        if not any(value not in (None, ()) for value in seen):
            seen = ()
    # The charge is not part of it: no rule of a check reads charges (only fix weighs them).
    return (line.code, tuple(sorted(set(line.modifiers))), line.units, line.date,
            tuple(sorted(set(line.dx))), seen)


# Every rule names lines by what they are, not by their position (duplicate-line names every
# line of a group of identical lines; test_duplicate_line_does_not_depend_on_line_order).
_NAMES_BY_POSITION: set[str] = set()


def _order_free(result: Result) -> list[tuple[Any, ...]]:
    """Findings with each line replaced by what the rules see of it (see ``_line_key``)."""
    assert result.claim is not None
    lines = result.claim.lines
    out = []
    for f in result.findings:
        named: Any = len(f.lines) if f.rule in _NAMES_BY_POSITION else tuple(
            sorted((_line_key(lines[n - 1]) for n in f.lines), key=repr))
        out.append((f.rule, f.severity, tuple(sorted(f.codes)), named))
    return sorted(out, key=repr)


def _distinct_ids(raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for n, raw in enumerate(raws, start=1):
        raw = copy.deepcopy(raw)
        raw["claim_id"] = f"B-{n}"
        raw["patient"] = {**raw["patient"], "id": f"BP-{n}"}
        out.append(raw)
    return out


# --- (a) no crash, well-formed findings -------------------------------------------------------

def _assert_well_formed(checker: Checker, result: Result, raw: dict[str, Any]) -> None:
    assert result.status != "error"
    assert result.status in ("clean", *SEVERITY_RANK)
    for f in result.findings:
        assert f.rule in checker.rules, f"unknown rule id {f.rule!r}"
        assert f.severity in SEVERITY_RANK, f"{f.rule}: severity {f.severity!r}"
        assert f.lines, f"{f.rule}: a finding without lines"
        assert f.lines == sorted(set(f.lines)), f"{f.rule}: lines {f.lines}"
        assert 1 <= f.lines[0] and f.lines[-1] <= len(raw["lines"]), \
            f"{f.rule}: lines {f.lines} of a {len(raw['lines'])}-line claim"
        assert not _PLACEHOLDER.search(f.message), f"{f.rule}: unfilled message {f.message!r}"
        assert not (f.fix and _PLACEHOLDER.search(f.fix)), f"{f.rule}: unfilled fix {f.fix!r}"
    json.dumps(result.as_dict())


@given(raw=valid_claims())
def test_valid_claims_give_well_formed_results(checker: Checker, raw: dict[str, Any]) -> None:
    [result] = _check(checker, [raw])
    _assert_well_formed(checker, result, raw)


@given(raws=st.lists(valid_claims(), min_size=2, max_size=4))
def test_claims_of_one_patient_give_well_formed_results(checker: Checker,
                                                        raws: list[dict[str, Any]]) -> None:
    raws = [{**copy.deepcopy(raw), "claim_id": f"S-{n}", "patient": {"id": "SAME"}}
            for n, raw in enumerate(raws, start=1)]
    for result, raw in zip(_check(checker, raws, batch=True), raws):
        _assert_well_formed(checker, result, raw)


# --- (b) line order ---------------------------------------------------------------------------

@given(data=st.data())
def test_findings_do_not_depend_on_line_order(checker: Checker, data: st.DataObject) -> None:
    raw = data.draw(valid_claims(), label="claim")
    order = data.draw(st.permutations(range(len(raw["lines"]))), label="new order")
    permuted = copy.deepcopy(raw)
    # each line keeps its diagnosis pointers: the diagnosis list itself does not move
    permuted["lines"] = [copy.deepcopy(raw["lines"][i]) for i in order]
    first, second = _check(checker, [raw, permuted])
    assert _order_free(first) == _order_free(second)


def test_duplicate_line_does_not_depend_on_line_order(checker: Checker) -> None:
    with_pointer = {"code": "20552", "date": "2025-06-02", "dx": [1]}
    without = {"code": "20552", "date": "2025-06-02", "dx": []}
    raw = {"claim_id": "D-1", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P"},
           "diagnoses": ["M79.18"], "lines": [without, with_pointer]}
    swapped = {**raw, "lines": [with_pointer, without]}
    first, second = _check(checker, [raw, swapped])
    named = [sorted(r.claim.lines[n - 1].dx for f in r.findings if f.rule == "duplicate-line"
                    for n in f.lines) for r in (first, second)]
    assert named[0] == named[1] == [[], [1]]


@given(data=st.data())
def test_findings_do_not_depend_on_history_order(checker: Checker, data: st.DataObject) -> None:
    raw = data.draw(valid_claims().filter(lambda c: len(c.get("history", [])) >= 2), label="claim")
    order = data.draw(st.permutations(range(len(raw["history"]))), label="new order")
    shuffled = copy.deepcopy(raw)
    shuffled["history"] = [copy.deepcopy(raw["history"][i]) for i in order]
    first, second = _check(checker, [raw, shuffled])
    assert _findings(first) == _findings(second)


# --- (c) identifiers ----------------------------------------------------------------------------

_IDS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.",
               min_size=1, max_size=24)


@given(raw=valid_claims(), claim_id=_IDS, patient_id=_IDS)
def test_claim_and_patient_ids_change_nothing(checker: Checker, raw: dict[str, Any], claim_id: str,
                                              patient_id: str) -> None:
    renamed = copy.deepcopy(raw)
    renamed["claim_id"] = claim_id
    renamed["patient"]["id"] = patient_id
    first, second = _check(checker, [raw, renamed])
    assert _findings(first) == _findings(second)
    assert first.status == second.status


# --- (d) determinism ------------------------------------------------------------------------------

@given(raws=st.lists(valid_claims(), min_size=1, max_size=3))
def test_output_is_byte_identical_across_runs(checker: Checker, second_checker: Checker,
                                              raws: list[dict[str, Any]]) -> None:
    raws = _distinct_ids(raws)
    once = json.dumps([r.as_dict() for r in _check(checker, raws, batch=True)])
    again = json.dumps([r.as_dict() for r in _check(second_checker, raws, batch=True)])
    assert once == again


def test_output_is_byte_identical_across_processes(tmp_path: Path) -> None:
    """Two interpreters with different hash seeds write the same bytes for the same batch."""
    source = g.write_jsonl(tmp_path / "claims.jsonl", 150, seed=20)
    outputs = []
    for seed in ("1", "2"):
        target = tmp_path / f"out-{seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "pain_asp.cli", "check", str(source), "--format", "jsonl",
                        "-o", str(target), "--fail-on", "never"], env=env, check=True, timeout=300)
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") == 150


# --- (e) hostile strings ------------------------------------------------------------------------

@given(raw=valid_claims(), claim_id=hostile_text(min_nonspace=1, max_size=MAX_ID_LENGTH),
       patient_id=hostile_text(max_size=MAX_ID_LENGTH), authorization=hostile_text(min_nonspace=1, max_size=MAX_AUTHORIZATION_LENGTH),
       data=st.data())
def test_hostile_free_text_changes_no_finding(checker: Checker, raw: dict[str, Any], claim_id: str,
                                              patient_id: str, authorization: str,
                                              data: st.DataObject) -> None:
    plain = copy.deepcopy(raw)
    plain["claim_id"], plain["patient"]["id"] = "PLAIN-1", "PLAIN-P"
    hostile = copy.deepcopy(raw)
    hostile["claim_id"], hostile["patient"]["id"] = claim_id, patient_id
    if "prior_authorization" in raw:
        plain["prior_authorization"], hostile["prior_authorization"] = "PA-PLAIN", authorization
    for line_plain, line_hostile in zip(plain["lines"], hostile["lines"]):
        doc_plain, doc_hostile = line_plain.get("documented"), line_hostile.get("documented")
        if not doc_plain:
            continue
        if doc_plain.get("muscles"):
            count = len({muscle_key(m) for m in doc_plain["muscles"]})
            doc_hostile["muscles"] = data.draw(st.lists(
                hostile_text(), min_size=count, max_size=count, unique_by=muscle_key),
                label="muscles")
        if doc_plain.get("nerves") is not None:
            extra = data.draw(st.integers(1, 3), label="extra nerves")
            taken = {nerve_key(n) for n in doc_plain["nerves"]}
            doc_plain["nerves"] = doc_plain["nerves"] + [f"plain nerve {i}" for i in range(extra)]
            doc_hostile["nerves"] = doc_hostile["nerves"] + data.draw(st.lists(
                hostile_text().filter(lambda s: unknown_nerve(s) and nerve_key(s) not in taken),
                min_size=extra, max_size=extra, unique_by=nerve_key), label="nerves")
    first, second = _check(checker, [plain, hostile])
    assert _findings(first) == _findings(second)


_STRICT_FIELDS = ("code", "modifier", "diagnosis", "side", "place_of_service", "payer",
                  "history code", "history modifier")


@given(raw=valid_claims(), field=st.sampled_from(_STRICT_FIELDS), data=st.data())
def test_hostile_strict_fields_are_input_errors(spied: tuple[Checker, Any], raw: dict[str, Any],
                                                field: str, data: st.DataObject) -> None:
    checker, spy = spied
    bad = copy.deepcopy(raw)
    line = bad["lines"][data.draw(st.integers(0, len(bad["lines"]) - 1), label="line")]
    if field == "code":
        line["code"] = data.draw(hostile_token(st.sampled_from(CODES)), label="code")
    elif field == "modifier":
        hostile = data.draw(hostile_token(st.sampled_from(MODIFIERS)), label="modifier")
        line["modifiers"] = line["modifiers"][:3] + [hostile]
    elif field == "diagnosis":
        bad["diagnoses"] = (bad["diagnoses"] or ["M54.16"])[:11]
        bad["diagnoses"][data.draw(st.integers(0, len(bad["diagnoses"]) - 1))] = data.draw(
            hostile_token(st.sampled_from(DIAGNOSES)), label="diagnosis")
    elif field == "side":
        line.setdefault("documented", {})["side"] = data.draw(
            hostile_token(st.sampled_from(("left", "right", "bilateral"))), label="side")
    elif field == "place_of_service":
        bad["place_of_service"] = data.draw(hostile_token(st.sampled_from(g.PLACES_OF_SERVICE)))
    elif field == "payer":
        bad["payer"] = data.draw(hostile_token(st.sampled_from(g.PAYERS)), label="payer")
    else:
        bad["history"] = list(bad.get("history", [])) or [{"date": "2024-01-02", "code": "64483"}]
        if field == "history code":
            bad["history"][0]["code"] = data.draw(hostile_token(st.sampled_from(CODES)))
        else:
            bad["history"][0]["modifiers"] = [data.draw(hostile_token(st.sampled_from(MODIFIERS)))]
    record = validate_claim(bad, "<hostile>", 1, checker.known_payers())
    assert not record.ok and record.errors
    for error in record.errors:
        assert error.expected
        if error.field != "payer":  # see test_unknown_payer_is_shown_escaped
            assert "\n" not in error.value and error.value.isascii(), repr(error.value)
    before = spy.calls
    [result] = checker.check([record])
    assert spy.calls == before, "a rejected claim reached clingo"
    assert result.status == "error" and not result.findings and result.errors


def test_strict_fields_reject_non_ascii_that_upper_cases_to_ascii(checker: Checker) -> None:
    base = {"claim_id": "U-1", "payer": "medicare", "place_of_service": "11",
            "patient": {"id": "P"},
            "diagnoses": ["M54.16"],
            "lines": [{"code": "64483", "modifiers": ["RT"], "date": "2026-03-02", "dx": [1]}]}
    variants = []
    for path, value in (("modifier", "ß"), ("diagnosis", "M5ı.16"), ("code", "ſ3002")):
        bad = copy.deepcopy(base)
        if path == "modifier":
            bad["lines"][0]["modifiers"] = [value]
        elif path == "diagnosis":
            bad["diagnoses"] = [value]
        else:
            bad["lines"][0]["code"] = value
        variants.append(validate_claim(bad, "<fold>", 1, checker.known_payers()))
    assert all(not record.ok for record in variants)


def test_unknown_payer_is_shown_escaped(checker: Checker) -> None:
    raw = {"claim_id": "E-1", "payer": 'medicare\n#include "x".\x80', "place_of_service": "11",
           "patient": {"id": "P"}, "lines": [{"code": "99213", "date": "2026-03-02"}]}
    record = validate_claim(raw, "<payer>", 1, checker.known_payers())
    assert not record.ok
    assert all("\n" not in e.value and e.value.isascii() for e in record.errors)


# --- (f) batches ----------------------------------------------------------------------------------

@given(raws=st.lists(valid_claims(), min_size=2, max_size=3))
def test_batch_gives_each_claim_its_own_findings(checker: Checker, small_chunks: Checker,
                                                 raws: list[dict[str, Any]]) -> None:
    """Chunks of two: claims share a Control, and a batch of three crosses a chunk boundary."""
    raws = _distinct_ids(raws)
    in_pairs = [_findings(r) for r in _check(small_chunks, raws, batch=True)]
    alone = [_findings(_check(checker, [raw], batch=True)[0]) for raw in raws]
    assert in_pairs == alone


# --- (g) one result per input, in order ---------------------------------------------------

def _bad_records() -> st.SearchStrategy[Any]:
    def broken(change: str) -> Any:
        def apply(raw: dict[str, Any]) -> dict[str, Any]:
            raw = copy.deepcopy(raw)
            if change == "missing lines":
                del raw["lines"]
            elif change == "bad code":
                raw["lines"][0]["code"] = "6448"
            elif change == "zero units":
                raw["lines"][0]["units"] = 0
            elif change == "pointer past list":
                raw["lines"][0]["dx"] = [len(raw["diagnoses"]) + 1]
            elif change == "unknown payer":
                raw["payer"] = "medicaree"
            elif change == "unknown key":
                raw["lines"][0]["modifier"] = ["RT"]
            elif change == "five modifiers":
                raw["lines"][0]["modifiers"] = ["RT", "KX", "59", "XS", "25"]
            elif change == "bad date":
                raw["lines"][0]["date"] = "2026-02-30"
            return raw
        return apply

    changes = ("missing lines", "bad code", "zero units", "pointer past list", "unknown payer",
               "unknown key", "five modifiers", "bad date")
    not_a_claim = st.sampled_from([[], "claim", 42, None, ["a", "b"]])
    return not_a_claim | st.sampled_from(changes).flatmap(lambda c: claims().map(broken(c)))


@given(kinds=st.lists(st.booleans(), min_size=1, max_size=6), duplicate=st.booleans(),
       data=st.data())
def test_one_result_per_input_in_input_order(checker: Checker, kinds: list[bool], duplicate: bool,
                                             data: st.DataObject) -> None:
    raws: list[Any] = []
    good: list[bool] = []
    for n, is_good in enumerate(kinds, start=1):
        raw = data.draw(valid_claims() if is_good else _bad_records())
        if isinstance(raw, dict):
            raw = {**raw, "claim_id": f"G-{n}"}
        raws.append(raw)
        good.append(is_good)
    if duplicate and sum(good) >= 2:  # the second valid claim reuses the first one's id
        first, second = [n for n, ok in enumerate(good) if ok][:2]
        raws[second]["claim_id"] = raws[first]["claim_id"]
        good[second] = False
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.jsonl"
        text = [json.dumps(raw) for raw in raws]
        broken_at = len(text) // 2
        text.insert(broken_at, '{"claim_id": "X", "lines": [')  # a line that is not JSON
        good.insert(broken_at, False)
        path.write_text("\n".join(text) + "\n", encoding="utf-8")
        records = list(read_claims([path], checker.known_payers()))
        results = list(checker.check(records, history=batch_history(
            [r.claim for r in records if r.claim])))
    assert len(results) == len(text)
    assert [r.position for r in results] == list(range(1, len(text) + 1))
    for result, raw_text, ok in zip(results, text, good):
        try:
            raw = json.loads(raw_text)
        except json.JSONDecodeError:
            raw = None
        expected_id = str(raw["claim_id"]) if isinstance(raw, dict) and "claim_id" in raw else None
        assert result.claim_id == expected_id
        if ok:
            assert result.status != "error", result.errors
        else:
            assert result.status == "error" and result.errors and not result.findings
            for error in result.errors:
                assert {"file", "claim_id", "field", "value", "expected", "message"} <= set(error)


# --- the generator --------------------------------------------------------------------------

def test_generator_is_deterministic_realistic_and_valid(checker: Checker) -> None:
    claims_a = list(g.generate_claims(400, seed=11))
    assert claims_a == list(g.generate_claims(400, seed=11))
    assert claims_a[:50] == list(g.generate_claims(50, seed=11))
    assert claims_a != list(g.generate_claims(400, seed=12))
    assert len({c["claim_id"] for c in claims_a}) == 400
    payers = checker.known_payers()
    multi_line = with_history = documented = 0
    for n, raw in enumerate(claims_a, start=1):
        json.dumps(raw)
        record = validate_claim(raw, "<generated>", n, payers)
        assert record.ok, [str(e) for e in record.errors]
        assert 1 <= len(raw["lines"]) <= g.MAX_GENERATED_LINES
        assert raw["payer"] in g.PAYERS and raw["place_of_service"] in g.PLACES_OF_SERVICE
        assert set(raw["diagnoses"]) <= set(g.BILLABLE_DIAGNOSES) | set(g.INVALID_DIAGNOSES)
        for line in raw["lines"]:
            assert line["code"] in g.ALL_CODES
            assert set(line["modifiers"]) <= set(g.MODIFIERS)
            assert str(g.DATE_FIRST) <= line["date"] <= str(g.DATE_LAST)
        multi_line += len(raw["lines"]) > 1
        with_history += bool(raw.get("history"))
        documented += any("documented" in line for line in raw["lines"])
    assert multi_line > 120 and with_history > 80 and 200 < documented < 400
    assert len({raw["patient"]["id"] for raw in claims_a}) < 400  # some patients come back


def test_generated_batch_checks_with_a_realistic_mix(tmp_path: Path) -> None:
    source = g.write_jsonl(tmp_path / "claims.jsonl", 300, seed=3)
    with open(tmp_path / "results.jsonl", "w", encoding="utf-8") as out:
        statuses = check_files([source], out, fmt="jsonl").statuses
    assert sum(statuses.values()) == 300
    assert "error" not in statuses
    assert statuses["clean"] >= 100 and statuses["deny"] >= 20


# --- the batch path with workers ---------------------------------------------------------------

def test_worker_batch_writes_what_one_process_writes(tmp_path: Path) -> None:
    """Bad lines, a reused claim id and an invalid claim keep their places; small chunks and
    workers that retire after two chunks change nothing in the output."""
    source = tmp_path / "claims.jsonl"
    rows = [json.dumps(c) for c in g.generate_claims(240, seed=4)]
    rows.insert(17, "{not json")
    rows.insert(30, rows[5])            # a claim id used twice
    rows.insert(40, json.dumps({"claim_id": "BAD-1", "payer": "medicare"}))
    source.write_text("\n".join(rows) + "\n\n", encoding="utf-8")
    outputs, summaries = [], []
    for workers, limit in ((1, 1000), (2, 0)):  # limit 0: always the spooled worker path
        target = tmp_path / f"out-{workers}.jsonl"
        options = BatchOptions(workers=workers, chunk_size=50, in_memory_limit=limit, recycle_claims=100)
        with open(target, "w", encoding="utf-8") as out:
            summaries.append(check_files([source], out, fmt="jsonl", options=options))
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]
    assert summaries[0].mode == "in-process" and summaries[1].mode == "workers"
    assert summaries[1].workers_retired >= 1
    for summary in summaries:
        assert summary.statuses["error"] == 3 and summary.claims == 243
