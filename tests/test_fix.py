"""Corrections (docs/fix.md): case files with their expected edit sets, and properties of fix.

Case files live in ``tests/fix_cases/<rule-id or topic>/<name>.yaml``:

    description: what the case shows and the source sentence the expected edits come from
    payer_dirs: [dir]          # optional, relative to the case file
    ncci: dir                  # optional, NCCI tables in CMS layout
    claim: {...}               # one claim (docs/claim-format.md) -- or --
    claims: [{...}, ...]       # several claims fixed in one batch
    expect:                    # for `claim:`; for `claims:` a mapping claim_id -> this
      status: fixed            # clean | fixed | actions_only | unfixable
      edits:                   # the complete edit set
        - {kind: drop_line, line: 2}
        - {kind: add_modifier, line: 1, modifier: "25"}
        - {kind: remove_modifier, line: 2, modifier: "51"}
        - {kind: replace_modifier, line: 2, from: "59", to: XS}
        - {kind: set_units, line: 2, units: 1}
        - {kind: replace_code, line: 2, code: "77002"}
        - {kind: repoint_dx, line: 1, from: 1, to: 2}       # from: null adds a first pointer
        - {kind: split_bilateral, line: 1, format: two_lines_rt_lt}
        - {kind: merge_bilateral, line: 1, with: 2}
      left: [rule-id, ...]     # correctable deny findings no edit clears (default: none)
      actions: [rule-id, ...]  # the rules of the action items (compared when given)

Every case also checks that the corrected claim, checked again, has exactly the findings
fix reported, and that fixing the corrected claim changes nothing.

Properties (Hypothesis, on the claims of tests/strategies.py):
(a) soundness: a corrected claim re-checks to the findings fix reports, and has no
    correctable deny finding unless the claim is reported unfixable;
(b) idempotence: fix of a corrected claim makes no edit;
(c) safety: no edit adds a service (every corrected line is a billed line, with the same
    code or a code for the same service, and no more units), a diagnosis, or a modifier
    the documentation does not support;
(d) minimality: on small claims the cost equals the least cost of a brute-force search
    over every subset of the candidate edits the repair layer accepts (a proof, not a
    sample);
(e) batching: claims optimised together get the cost each gets alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import claims as random_claims

import pain_asp.modes.fix as repair_module
from pain_asp.bench.generate import generate_claims
from pain_asp.history import batch_history
from pain_asp.inputs.records import validate_claim
from pain_asp.inputs.yamlsafe import safe_load
from pain_asp.models import parse_claim
from pain_asp.modes.fix import FixResult, RawEdit, Repairer, RepairOptions, edit_set_costs

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "fix_cases"
CASE_FILES = sorted(CASES.rglob("*.yaml"))


# --- shared machinery -------------------------------------------------------------------------

@lru_cache(maxsize=16)
def _repairer(payer_dirs: tuple[str, ...] = (), ncci: str | None = None, per_solve: int = 100) -> Repairer:
    return Repairer(RepairOptions(payer_dirs=list(payer_dirs), ncci_dir=ncci, claims_per_solve=per_solve))


def _records(repairer: Repairer, raws: list[dict[str, Any]], file: str = "test") -> list:
    return [validate_claim(raw, file, n, repairer.known_payers()) for n, raw in enumerate(raws, 1)]


def _fix(repairer: Repairer, raws: list[dict[str, Any]]) -> list[FixResult]:
    records = _records(repairer, raws)
    for record in records:
        assert record.ok, [str(e) for e in record.errors]
    return repairer.fix(records, history=batch_history([r.claim for r in records]))


def _check(repairer: Repairer, raws: list[dict[str, Any]]) -> list:
    records = _records(repairer, raws, "recheck")
    for record in records:
        assert record.ok, [str(e) for e in record.errors]
    return list(repairer.checker.check(records, history=batch_history([r.claim for r in records])))


def _edit_view(raw: RawEdit) -> dict[str, Any]:
    """An edit as a case file writes it."""
    out: dict[str, Any] = {"kind": raw.kind, "line": raw.line}
    if raw.op in ("add_mod", "remove_mod"):
        out["modifier"] = raw.args[0]
    elif raw.op == "replace_mod":
        out.update({"from": raw.args[0], "to": raw.args[1]})
    elif raw.op == "set_units":
        out["units"] = raw.args[0]
    elif raw.op == "replace_code":
        out["code"] = raw.args[0]
    elif raw.op == "repoint":
        out.update({"from": raw.args[0] or None, "to": raw.args[1]})
    elif raw.op == "split":
        out["format"] = raw.args[0]
    elif raw.op == "merge":
        out["with"] = raw.args[0]
    return out


def _canon(edits: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({k: (str(v) if k in ("modifier", "from", "to", "code") and v is not None
                                  and not isinstance(v, int) else v) for k, v in e.items()},
                             sort_keys=True) for e in edits)


def _summary(findings: list) -> set[tuple[str, str, tuple[int, ...]]]:
    return {(f.rule, f.severity, tuple(f.lines)) for f in findings}


def _assert_sound(repairer: Repairer, fixes: list[FixResult]) -> None:
    """(a) re-checking each corrected claim gives the findings fix reported."""
    done = [f for f in fixes if f.status not in ("error", "timeout")]
    if not done:
        return
    rechecked = _check(repairer, [f.corrected for f in done])
    for fixed, again in zip(done, rechecked):
        assert _summary(again.findings) == _summary(fixed.after), fixed.claim_id
        left = [f for f in again.findings if f.severity == "deny" and f.correctable]
        if fixed.status == "unfixable":
            assert left and _summary(left) == _summary(fixed.remaining)
        else:
            assert not left, (fixed.claim_id, [f.rule for f in left])


# --- case files -------------------------------------------------------------------------------

def _load(path: Path) -> dict[str, Any]:
    data = safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and {"description", "expect"} <= set(data), path
    assert ("claim" in data) != ("claims" in data), path
    return data


@pytest.mark.parametrize("path", CASE_FILES, ids=[str(p.relative_to(CASES)) for p in CASE_FILES])
def test_fix_case(path: Path) -> None:
    data = _load(path)
    dirs = tuple(str((path.parent / d).resolve()) for d in data.get("payer_dirs", []))
    ncci = str((path.parent / data["ncci"]).resolve()) if data.get("ncci") else None
    repairer = _repairer(dirs, ncci)
    raws = [data["claim"]] if "claim" in data else list(data["claims"])
    expect = {str(raws[0]["claim_id"]): data["expect"]} if "claim" in data else data["expect"]
    fixes = _fix(repairer, raws)
    assert set(expect) == {f.claim_id for f in fixes}, path
    for fixed in fixes:
        want = expect[fixed.claim_id]
        got_edits = [_edit_view(e.raw) for e in fixed.edits if e.raw is not None]
        report = f"{path.name} {fixed.claim_id}: status {fixed.status}, edits {got_edits}, " \
                 f"left {[f.rule for f in fixed.remaining]}, after {sorted(_summary(fixed.after))}"
        assert fixed.optimal, report
        assert fixed.status == want["status"], report
        assert _canon(got_edits) == _canon(want.get("edits") or []), report
        assert sorted({f.rule for f in fixed.remaining}) == sorted(want.get("left") or []), report
        if "actions" in want:
            assert sorted({a.rule for a in fixed.action_items}) == sorted(want["actions"]), report
        for edit in fixed.edits:
            assert edit.description and edit.kind in _KINDS
        if fixed.edits and fixed.status == "fixed":
            resolved = {f.rule for e in fixed.edits for f in e.resolves}
            denied = {f.rule for f in fixed.before if f.severity == "deny" and f.correctable}
            assert denied <= resolved, report
    _assert_sound(repairer, fixes)
    again = _fix(repairer, [f.corrected for f in fixes])
    assert all(not f.edits for f in again), [(f.claim_id, [e.description for e in f.edits]) for f in again]


def test_every_correctable_rule_has_a_fix_case() -> None:
    rules = _repairer().rules
    correctable = {r for r, rule in rules.items() if rule.meta.get("correctable") == "yes"}
    folders = {p.parent.name for p in CASE_FILES}
    assert correctable <= folders, sorted(correctable - folders)


# --- brute force ------------------------------------------------------------------------------

_KINDS = {"drop_line", "add_modifier", "remove_modifier", "replace_modifier", "set_units", "replace_code",
          "repoint_dx", "split_bilateral", "merge_bilateral"}  # docs/fix.md, Edits


def _brute_force(repairer: Repairer, raw: dict[str, Any], limit: int) -> tuple[int, int, int, int, int] | None:
    """The least cost over every subset of the candidate edits the repair layer accepts, each
    solved with its edits fixed (None if there are too many candidates)."""
    records = _records(repairer, [raw])
    provider = batch_history([records[0].claim])
    before = list(repairer.checker.check(records, history=provider))[0]
    costs = edit_set_costs(repairer, before, provider, limit)
    return None if costs is None else min(costs)


def _cost_tuple(fixed: FixResult) -> tuple[int, int, int, int, int]:
    c = fixed.cost
    return (c["unresolved"], c["unpriced_units_removed"], c["revenue_removed_cents"], c["edits"],
            c["minor_findings"])


def _small(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "lines": raw["lines"][:2]}


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_claims().map(_small))
def test_minimal_against_brute_force(raw: dict[str, Any]) -> None:
    """(d) the repair's cost is the least cost of any consistent edit set (exhaustive)."""
    repairer = _repairer()
    fixed = _fix(repairer, [raw])[0]
    assume(fixed.status not in ("error", "timeout") and fixed.edits or fixed.status == "unfixable")
    best = _brute_force(repairer, raw, limit=9)
    assume(best is not None)
    got = _cost_tuple(fixed)
    assert got == best, (fixed.claim_id, got, best, [e.description for e in fixed.edits])


def test_minimal_against_brute_force_on_cases() -> None:
    """(d) the same proof on every one-claim case small enough to enumerate."""
    proved = 0
    for path in CASE_FILES:
        data = _load(path)
        if "claim" not in data or data.get("payer_dirs") or data.get("ncci"):
            continue
        repairer = _repairer()
        fixed = _fix(repairer, [data["claim"]])[0]
        best = _brute_force(repairer, data["claim"], limit=9)
        if best is None:
            continue
        proved += 1
        got = _cost_tuple(fixed)
        assert got == best, (path.name, got, best)
    assert proved >= 20


# --- properties on random claims ---------------------------------------------------------------

_SUPPORT_SIDE = {"RT": "right", "LT": "left", "50": "bilateral"}
_DISTINCT = {"XS": "separate_structure", "XE": "separate_encounter", "XP": "separate_practitioner",
             "XU": "unusual"}
_VISIT_FACT = {"25": "em_separate_problem", "57": "em_decision_for_surgery", "24": "em_unrelated_to_surgery"}
_RELATION = {"58": "staged", "78": "complication", "79": "unrelated"}


def _supported(claim: Any, line_no: int, modifier: str) -> bool:
    """Whether the chart supports adding ``modifier`` to billed line ``line_no`` (docs/fix.md)."""
    line = claim.lines[line_no - 1]
    doc = line.documented
    if modifier in _SUPPORT_SIDE:
        return doc is not None and doc.side == _SUPPORT_SIDE[modifier]
    if modifier in _VISIT_FACT:
        return claim.clinical is not None and getattr(claim.clinical, _VISIT_FACT[modifier]) is True
    if modifier in _RELATION:
        return doc is not None and doc.global_relation == _RELATION[modifier]
    if modifier == "59":
        return doc is not None and doc.distinct is not None
    if modifier in _DISTINCT:
        return doc is not None and doc.distinct == _DISTINCT[modifier]
    if modifier == "KX":
        if doc is not None and doc.purpose is not None:
            return doc.purpose == "diagnostic"
        from pain_asp.kb import code_catalog

        family = getattr(code_catalog().get(line.code), "family", None)
        return family is not None and any(
            other.date == line.date and getattr(code_catalog().get(other.code), "family", None) == family
            and other.documented is not None and other.documented.purpose == "diagnostic"
            for n, other in enumerate(claim.lines, 1) if n != line_no)
    if modifier == "52":  # a genicular code whose chart names fewer than the three standard branches
        from pain_asp.tokens import nerve_token

        standard = {"superolateral_genicular", "superomedial_genicular", "inferomedial_genicular"}
        nerves = {nerve_token(n) for n in (doc.nerves or [])} if doc is not None else set()
        return line.code in ("64454", "64624") and any(n.endswith("_genicular") for n in nerves) \
            and len(nerves & standard) < 3
    return False


_SAME_SERVICE = {("77003", "77002"), ("20553", "20552"), ("64479", "64480"), ("64483", "64484"),
                 ("64490", "64491"), ("64493", "64494"), ("64633", "64634"), ("64635", "64636"),
                 ("62320", "62321"), ("62322", "62323"), ("G0260", "27096")}
# A per-level add-on billed alone for one documented level becomes its first-level code.
_FIRST_LEVEL = {(addon, first) for first, addon in _SAME_SERVICE if first[:3] == "644" or first[:3] == "646"}
# CPT 2015: the small, intermediate and major joint injections with recorded ultrasound
# guidance, for a chart that documents the ultrasound and does not say the images were not kept.
_WITH_ULTRASOUND = {("20600", "20604"), ("20605", "20606"), ("20610", "20611")}


def _same_service(old: Any, new_code: str) -> bool:
    if new_code == old.code or (old.code, new_code) in _SAME_SERVICE or _deleted_pair(old.code, new_code):
        return True
    if (old.code, new_code) in _WITH_ULTRASOUND:
        return old.documented is not None and old.documented.imaging == "ultrasound" \
            and old.documented.images_recorded is not False
    documented = old.documented.segments() if old.documented is not None else []
    # The one documented level of an add-on billed without its primary is the first level,
    # whatever units were billed (the corrected line keeps at most those units, checked above).
    return (old.code, new_code) in _FIRST_LEVEL and len(set(documented)) == 1


def _assert_safe(fixed: FixResult) -> None:
    """(c) no service, diagnosis or unsupported modifier is added."""
    claim = fixed.claim
    corrected = parse_claim(fixed.corrected)
    assert corrected.diagnoses == claim.diagnoses
    splits = sum(1 for e in fixed.edits if e.kind == "split_bilateral")
    assert len(corrected.lines) <= len(claim.lines) + splits
    for line in corrected.lines:
        assert any(line.date == old.date and line.units <= old.units and _same_service(old, line.code)
                   for old in claim.lines), (fixed.claim_id, line.code)
    for e in fixed.edits:
        raw = e.raw
        assert raw is not None
        if raw.op == "add_mod":
            assert _supported(claim, raw.line, raw.args[0]), (fixed.claim_id, e.description)
        if raw.op == "replace_mod":
            assert _supported(claim, raw.line, raw.args[1]), (fixed.claim_id, e.description)
        if raw.op == "set_units":
            assert raw.args[0] < claim.lines[raw.line - 1].units
        if raw.op == "repoint":
            assert 1 <= raw.args[1] <= len(claim.diagnoses)


def _deleted_pair(old: str, new: str) -> bool:
    deleted = {"64470": "64490", "64472": "64491", "64475": "64493", "64476": "64494",
               "64622": "64635", "64623": "64636", "64626": "64633", "64627": "64634",
               "62310": "62321", "62311": "62323", "62318": "62321", "62319": "62323", "99201": "99202",
               "22520": "22510", "22521": "22511", "22522": "22512", "22523": "22513", "22524": "22514",
               "22525": "22515"}
    return deleted.get(old) == new or deleted.get(new) == old


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(random_claims(), min_size=1, max_size=4))
def test_fix_is_sound_safe_and_idempotent(raws: list[dict[str, Any]]) -> None:
    """(a), (b), (c) on random claims fixed together."""
    for n, raw in enumerate(raws):
        raw["claim_id"] = f"R-{n}"
    repairer = _repairer()
    fixes = _fix(repairer, raws)
    assert [f.claim_id for f in fixes] == [r["claim_id"] for r in raws]
    for fixed in fixes:
        assert fixed.status in ("clean", "fixed", "actions_only", "unfixable"), fixed.errors
        assert fixed.optimal
        _assert_safe(fixed)
    _assert_sound(repairer, fixes)
    again = _fix(repairer, [f.corrected for f in fixes])
    for first, second in zip(fixes, again):
        assert not second.edits, (first.claim_id, [e.description for e in second.edits])
        assert second.status == first.status or first.status == "fixed" and second.status in ("clean", "actions_only")


def _esi_line(code: str, day: str, charge: float, pointer: int = 1) -> dict[str, Any]:
    return {"code": code, "units": 1, "date": day, "dx": [pointer], "charge": charge,
            "documented": {"imaging": "fluoroscopy", "purpose": "therapeutic"}}


# One patient, two claims of one batch (docs/scaling.md: B sees A as history). A bills a lumbar and a
# cervical ESI on one date: Medicare allows one region per session (esi-regions-per-session,
# correctable). B is a cervical ESI whose own history holds three cervical sessions in the 365
# days before it; with A's cervical line B is the fifth session (Medicare esi_frequency: at most
# 4 sessions per region per rolling 365 days; not correctable).
_ESI_A = {"claim_id": "A", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P-9"},
          "diagnoses": ["M54.16", "M54.12"],
          "lines": [_esi_line("62323", "2025-03-03", 600.0), _esi_line("62321", "2025-03-03", 400.0, 2)]}
_ESI_B = {"claim_id": "B", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P-9"},
          "diagnoses": ["M54.12"], "lines": [_esi_line("62321", "2025-09-01", 400.0)],
          "history": [{"date": "2024-11-04", "code": "62321"}, {"date": "2025-01-06", "code": "62321"},
                      {"date": "2025-05-05", "code": "62321", "relief_pct": 70, "relief_duration_months": 3}]}


def test_claims_of_one_patient_are_fixed_against_each_other_as_corrected() -> None:
    """The smallest fix of A drops its cheaper cervical line (one edit; 400.00 removed rather
    than 600.00). That leaves B the fourth cervical session: judged beside the corrected A it
    has no esi-frequency denial, and re-checking the corrected batch gives every result's
    findings; fixing the output again changes nothing."""
    repairer = _repairer()
    billed = {r.claim_id: _summary(r.findings) for r in _check(repairer, [_ESI_A, _ESI_B])}
    assert billed == {"A": {("conservative-care", "review", (1, 2)), ("esi-regions-per-session", "deny", (1, 2))},
                      "B": {("conservative-care", "review", (1,)), ("esi-frequency", "deny", (1,))}}
    a, b = _fix(repairer, [_ESI_A, _ESI_B])
    assert (a.status, [_edit_view(e.raw) for e in a.edits if e.raw]) == ("fixed", [{"kind": "drop_line", "line": 2}])
    assert _summary(a.after) == {("conservative-care", "review", (1,))}
    assert (b.status, b.edits, b.optimal, b.errors) == ("actions_only", [], True, [])
    assert _summary(b.before) == _summary(b.after) == {("conservative-care", "review", (1,))}
    _assert_sound(repairer, [a, b])
    again = _fix(repairer, [a.corrected, b.corrected])
    assert [f.edits for f in again] == [[], []]


def test_corrections_that_do_not_settle_are_not_called_optimal(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no round of fixing again allowed, B's first result (judged beside the billed A)
    disagrees with the corrected batch: it is kept, marked not optimal, with the reason."""
    monkeypatch.setattr(repair_module, "SETTLE_ROUNDS", 0)
    a, b = _fix(_repairer(), [_ESI_A, _ESI_B])
    assert a.optimal and not a.errors
    assert ("esi-frequency", "deny", (1,)) in _summary(b.after)
    assert not b.optimal
    assert [e["message"] for e in b.errors] == [
        "the correction still changed the claim's history (or its patient's other claims) after "
        "0 rounds; run fix on the corrected claims again"]


def _lumbar_tf(code: str, day: str) -> dict[str, Any]:
    levels = ["L4-L5", "L5-S1"] if code == "64484" else ["L4-L5"]
    return {"code": code, "modifiers": ["RT"], "date": day, "dx": [1],
            "documented": {"imaging": "fluoroscopy", "side": "right", "levels": levels, "purpose": "therapeutic"}}


def test_a_dropped_first_line_moves_the_history_window(tmp_path: Path) -> None:
    """Store history counts services dated on or before the claim's first day (docs/scaling.md).
    Line 1 is a lone 64484 documenting two levels (addon-without-primary: dropped, as in
    fix_cases/addon-without-primary/drop_addon_on_other_date.yaml), so the corrected claim
    starts on 2025-03-17 and the stored session of 2025-03-10 becomes history: with the three
    of 2024 that makes the 2025-03-17 injection the fifth lumbar session in 365 days (Medicare
    esi_frequency 4). The fix reports that denial, as a re-check of its output does, and the
    review of the repeat session whose previous one documents no relief (esi-repeat-relief)."""
    from pain_asp.store import HistoryStore, store_history

    stored = {"claim_id": "S-1", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P-7"},
              "diagnoses": ["M54.16"],
              "lines": [_lumbar_tf("64483", d) for d in ("2024-05-06", "2024-08-05", "2024-11-04", "2025-03-10")]}
    claim = {"claim_id": "C-7", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P-7"},
             "diagnoses": ["M54.16"], "clinical": {"pain_duration_months": 6, "conservative_care_weeks": 16},
             "lines": [_lumbar_tf("64484", "2025-03-03"), _lumbar_tf("64483", "2025-03-17")]}
    repairer = _repairer()
    with HistoryStore(tmp_path / "history.db") as store:
        store.add_claims([parse_claim(stored)])
        records = _records(repairer, [claim])
        provider = store_history(store, base=batch_history([records[0].claim]))
        (fixed,) = repairer.fix(records, history=provider)
        assert [_edit_view(e.raw) for e in fixed.edits if e.raw] == [{"kind": "drop_line", "line": 1}]
        assert (fixed.status, fixed.optimal, fixed.errors) == ("fixed", True, [])
        assert _summary(fixed.after) == {("esi-frequency", "deny", (1,)), ("esi-repeat-relief", "review", (1,))}
        corrected = _records(repairer, [fixed.corrected], "recheck")
        (again,) = repairer.checker.check(corrected, history=store_history(store, base=batch_history([corrected[0].claim])))
        assert _summary(again.findings) == _summary(fixed.after)


def test_batch_costs_equal_single_claim_costs() -> None:
    """(e) many claims per solve keep every claim's optimum (usc over independent claims: a
    claim whose patient has other claims in the batch is judged with them as history, so only
    claims of patients with one claim are compared alone)."""
    raws = list(generate_claims(400, 11))
    batch = _fix(_repairer(per_solve=100), raws)
    single = _repairer(per_solve=1)
    claims_of = Counter(raw["patient"]["id"] for raw in raws)
    picked = [n for n, f in enumerate(batch) if f.edits and claims_of[raws[n]["patient"]["id"]] == 1][:25]
    assert len(picked) >= 10
    alone = _fix(single, [raws[n] for n in picked])
    for n, one in zip(picked, alone):
        assert batch[n].cost == {**one.cost, "tie_break": batch[n].cost["tie_break"]} or \
            batch[n].cost == one.cost, (batch[n].claim_id, batch[n].cost, one.cost)
        assert batch[n].optimal and one.optimal


# --- errors, time-outs, the command line -------------------------------------------------------

def _visit_and_injection(claim_id: str, injection_charge: str) -> dict[str, Any]:
    """A visit without 25 (140.00) beside an ESI: the visit goes, whatever the ESI costs."""
    return {"claim_id": claim_id, "payer": "medicare", "place_of_service": "11", "patient": {"id": claim_id},
            "diagnoses": ["M54.16"], "clinical": {"pain_duration_months": 6, "conservative_care_weeks": 8},
            "lines": [{"code": "99213", "date": "2026-03-05", "dx": [1], "charge": "140.00"},
                      {"code": "64483", "modifiers": ["RT"], "date": "2026-03-05", "dx": [1],
                       "charge": injection_charge,
                       "documented": {"imaging": "fluoroscopy", "side": "right", "levels": ["L5-S1"],
                                      "purpose": "therapeutic"}}]}


def _duplicated(claim_id: str, charge: str) -> dict[str, Any]:
    """One nerve block billed twice: the repeated line goes, removing ``charge``."""
    line = {"code": "64450", "modifiers": ["RT"], "date": "2026-03-02", "dx": [1], "charge": charge,
            "documented": {"side": "right"}}
    return {"claim_id": claim_id, "payer": "commercial", "place_of_service": "11", "patient": {"id": claim_id},
            "diagnoses": ["M79.2"], "lines": [line, dict(line)]}


def _solved(fixed: FixResult) -> tuple[str, list[str], int, bool]:
    return (fixed.status, sorted(e.description for e in fixed.edits), fixed.cost["revenue_removed_cents"],
            fixed.optimal)


def test_an_enormous_charge_neither_overflows_nor_changes_another_claims_fix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/fix.md: a claim's cost never overflows (clingo's integers end at 2**31 - 1: a charge of
    21,474,836.48 is 2**31 cents) nor depends on another claim solved beside it."""
    repairer = _repairer()
    solves: list[list[str]] = []
    solve = Repairer._repair
    monkeypatch.setattr(Repairer, "_repair", lambda self, chunk, history: (
        solves.append([r.claim_id for r in chunk]), solve(self, chunk, history))[1])
    ordinary = _visit_and_injection("ORDINARY", "780.00")
    alone = _solved(_fix(repairer, [ordinary])[0])
    assert alone == ("fixed", ["drop line 1 (99213, 140.00 removed)"], 14000, True)
    # With a charge of 21,474,836.48 or 99,999,999.99 (the largest a claim may carry, the 837P
    # maximum; a larger one is an input error) the two claims share one solve.
    for huge, together in (("21474836.48", True), ("99999999.99", True)):
        solves.clear()
        fixed = _fix(repairer, [_visit_and_injection("HUGE", huge), ordinary])
        assert solves == ([["HUGE", "ORDINARY"]] if together else [["HUGE"], ["ORDINARY"]]), huge
        assert _solved(fixed[0]) == ("fixed", ["drop line 1 (99213, 140.00 removed)"], 14000, True), huge
        assert _solved(fixed[1]) == alone, huge


def test_the_money_of_a_solve_never_overflows() -> None:
    """Each claim removes 12,000,000.00 (1.2e9 cents): three of them add up past 2**31 - 1."""
    fixed = _fix(_repairer(), [_duplicated(f"DUP-{n}", "12000000.00") for n in range(3)])
    for one in fixed:
        assert one.status == "fixed" and one.optimal, (one.claim_id, one.errors)
        assert [e.kind for e in one.edits] == ["drop_line"]
        assert one.cost["revenue_removed_cents"] == 1_200_000_000


def test_bad_record_and_timeout_do_not_stop_the_batch() -> None:
    repairer = _repairer()
    good = {"claim_id": "G-1", "payer": "commercial_asc_rtlt", "place_of_service": "11", "patient": {"id": "P"},
            "diagnoses": ["M54.16"], "clinical": {"pain_duration_months": 5, "conservative_care_weeks": 6},
            "lines": [{"code": "64483", "date": "2026-03-03", "dx": [1],
                       "documented": {"imaging": "fluoroscopy", "side": "left", "levels": ["L4-L5"],
                                      "purpose": "therapeutic"}}]}
    bad = {"claim_id": "B-1", "payer": "medicare"}
    records = _records(repairer, [bad, good])
    fixes = repairer.fix(records)
    assert [f.status for f in fixes] == ["error", "fixed"]

    class SlowOnG1(Repairer):
        """A solve that holds G-1 runs out of time (a real time-out cannot be forced on a small claim)."""

        def _repair(self, chunk, history):  # noqa: ANN001, ANN202
            if any(r.claim_id == "G-1" for r in chunk):
                raise repair_module.TimedOut()
            return super()._repair(chunk, history)

    slow = SlowOnG1(RepairOptions(), checker=repairer.checker)
    fixes = slow.fix(_records(repairer, [good, {**good, "claim_id": "G-2"}, {**good, "claim_id": "G-3"}]))
    assert [f.status for f in fixes] == ["timeout", "fixed", "fixed"]
    assert fixes[0].errors and fixes[0].corrected is not None and not fixes[0].optimal


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pain_asp.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_examples_fixed_then_checked(tmp_path: Path) -> None:
    """Done-when: the examples, fixed and checked again, keep only the denials no edit clears."""
    out = tmp_path / "fixed.yaml"
    done = _cli("fix", "docs/examples/claims.yaml", "--format", "json", "-o", str(out))
    assert done.returncode == 1, done.stderr  # one example is unfixable by design
    fixes = json.loads(done.stdout)
    unfixable = {f["claim_id"] for f in fixes if f["status"] == "unfixable"}
    # EX-11's only diagnosis (M54.5) is a header code: no edit may add or replace a diagnosis.
    assert unfixable == {"EX-11-dx-problems"}
    # EX-03's lone 64484 documents one level: that level is the first, coded 64483 (docs/fix.md).
    addon_alone = next(f for f in fixes if f["claim_id"] == "EX-03-addon-alone")
    assert [(e["kind"], e["details"]["to"]) for e in addon_alone["edits"]] == [("replace_code", "64483")]
    for item in fixes:
        assert {"edits", "corrected", "action_items", "cost"} <= set(item)
    checked = _cli("check", str(out), "--format", "json", "--fail-on", "never")
    assert checked.returncode == 0, checked.stderr
    rules = _repairer().rules
    for result in json.loads(checked.stdout):
        left = [f["rule"] for f in result["findings"]
                if f["severity"] == "deny" and rules[f["rule"]].meta.get("correctable") == "yes"]
        assert not left or result["claim_id"] in unfixable, (result["claim_id"], left)
    text = _cli("fix", "docs/examples/claims.yaml")
    assert "before:" in text.stdout and "after:" in text.stdout and "resolves" in text.stdout
    assert "action items:" in text.stdout


def test_explain_says_what_would_make_it_pass() -> None:
    done = _cli("explain", "docs/examples/claims.yaml", "--claim", "EX-02-fluoro-included")
    assert "what would make it pass (fixed)" in done.stdout
    assert "drop line 2 (77003, 120.00 removed)" in done.stdout
    # A review (Medicare's missing side, laterality_review) is not edited: the action is named.
    done = _cli("explain", "docs/examples/claims.yaml", "--claim", "EX-04-no-laterality")
    assert "what would make it pass (actions_only)" in done.stdout
    assert "needs:    laterality-missing: Add RT, LT or 50 to line(s) 1" in done.stdout
    done = _cli("explain", "docs/examples/claims.yaml", "--claim", "EX-05-fifth-lumbar-esi", "--format", "json")
    item = json.loads(done.stdout)[0]
    assert item["what_would_make_it_pass"]["status"] == "actions_only"
    assert item["what_would_make_it_pass"]["missing"]


def test_fix_exit_codes_and_output_formats(tmp_path: Path) -> None:
    claim = tmp_path / "one.json"
    claim.write_text(json.dumps({
        "claim_id": "C-1", "payer": "commercial_asc_rtlt", "place_of_service": "11", "patient": {"id": "P"},
        "diagnoses": ["M54.16"], "clinical": {"pain_duration_months": 5, "conservative_care_weeks": 6},
        "lines": [{"code": "64483", "date": "2026-03-03", "dx": [1], "charge": 780.0,
                   "documented": {"imaging": "fluoroscopy", "side": "left", "levels": ["L4-L5"],
                                  "purpose": "therapeutic"}}]}))
    for suffix in (".jsonl", ".json", ".yaml"):
        out = tmp_path / f"out{suffix}"
        done = _cli("fix", str(claim), "-o", str(out))
        assert done.returncode == 0, done.stderr
        again = _cli("check", str(out))
        assert again.returncode == 0 and "CLEAN" in again.stdout, again.stdout
    assert _cli("fix", str(tmp_path / "missing.json")).returncode == 2
    assert _cli("fix", str(claim), "-o", str(tmp_path / "x.txt")).returncode == 2


def test_bench_fix_reports_throughput() -> None:
    """The shipped fix benchmark runs on generated claims with deny findings, all optimal."""
    from pain_asp.bench.fix import bench_fix

    figures = bench_fix(30, 5, claims_per_solve=10)
    assert figures["claims"] == 30 and figures["claims_per_s"] > 0
    assert figures["optimal"] + figures["not_proven"] + figures["statuses"].get("timeout", 0) \
        + figures["statuses"].get("error", 0) == 30
    assert figures["not_proven"] == 0 and "timeout" not in figures["statuses"]
    assert figures["command"].startswith("python -m pain_asp.bench.fix --claims 30 --seed 5")
