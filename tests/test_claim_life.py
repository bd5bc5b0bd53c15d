"""A claim's life after its first submission (issue 18.3): frequency (CLM05-3) and ``replaces``.

A void (8) is reported as a void and never edited; a replacement (7) takes the place of the
claim it replaces, in a batch and in the history store. The 837P texts are written here from
the shapes of the 005010X222A1 TR3 (2300 CLM05-3 claim frequency type code, 2300 REF*F8
payer claim control number); the values are invented.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from pain_asp.engine import Checker
from pain_asp.history import batch_history
from pain_asp.inputs.readers import read_claims
from pain_asp.inputs.records import validate_claim
from pain_asp.models import parse_claim
from pain_asp.modes.batch_frames import PatientIndex
from pain_asp.modes.fix import Repairer
from pain_asp.store import HistoryStore, store_history

D = dt.date


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


def raw_claim(claim_id: str, *lines: dict, patient: str = "P-LIFE-1", **extra: object) -> dict:
    return {"claim_id": claim_id, "payer": "medicare", "place_of_service": "11",
            "patient": {"id": patient}, "diagnoses": ["M54.16"],
            "lines": [{"dx": [1], **line} for line in lines], **extra}


def esi(date: dt.date, code: str = "62323", **extra: object) -> dict:
    return {"code": code, "date": date, **extra}


def keys(entries: list) -> list[tuple[str, str]]:
    return [(e.date.isoformat(), e.code) for e in entries]


# --- the model -----------------------------------------------------------------------------

def test_frequency_defaults_to_original_and_replaces_is_required_for_7_and_8() -> None:
    claim = parse_claim(raw_claim("L-1", esi(D(2026, 3, 2))))
    assert (claim.frequency, claim.replaces) == (1, None)
    assert parse_claim(raw_claim("L-1", esi(D(2026, 3, 2)), frequency=7, replaces="26061000123")).frequency == 7
    assert parse_claim(raw_claim("L-1", esi(D(2026, 3, 2)), frequency="8", replaces="26061000123")).frequency == 8
    for extra in ({"frequency": 7}, {"frequency": 8}, {"frequency": 1, "replaces": "26061000123"},
                  {"frequency": 5, "replaces": "26061000123"}):
        record = validate_claim(raw_claim("L-1", esi(D(2026, 3, 2)), **extra), "life.yaml", 1)
        assert not record.ok, extra
        fields = [e.field for e in record.errors]
        assert any(f in ("replaces", "frequency") for f in fields), (extra, fields)


# --- 837P in and out -------------------------------------------------------------------------

ONE_LINE = [("HC:64483:RT*850*UN*1***1", "D8*20260302")]


def x12_text(frequency: str = "1", payer_number: str | None = None, claim_id: str = "LIFE-100",
             lines: list[tuple[str, str]] = ONE_LINE) -> str:
    """One claim in one 837P, frequency in CLM05-3 and the payer's number in REF*F8; each line
    is (SV1 elements, DTP*472 elements)."""
    service = []
    for n, (sv1, dtp) in enumerate(lines, start=1):
        service += [f"LX*{n}", f"SV1*{sv1}", f"DTP*472*{dtp}"]
    total = sum(int(sv1.split("*")[1]) for sv1, _ in lines)
    head = [
        "ISA*00*          *00*          *ZZ*LIFESUB        *ZZ*LIFEPAYER      *260402*0900*^*00501*000000417*0*T*:",
        "GS*HC*LIFESUB*LIFEPAYER*20260402*0900*417*X*005010X222A1",
    ]
    body = [
        "ST*837*0417*005010X222A1",
        "BHT*0019*00*LIFE0417*20260402*0900*CH",
        "NM1*41*2*LIFECYCLE PAIN GROUP*****46*LIFESUB",
        "PER*IC*CLAIMS DESK*TE*5555550142",
        "NM1*40*2*LIFE PAYER*****46*LIFEPAYER",
        "HL*1**20*1",
        "NM1*85*2*LIFECYCLE PAIN GROUP*****XX*1234567893",
        "N3*9 CEDAR RD",
        "N4*ANYTOWN*TX*750010000",
        "REF*EI*123456789",
        "HL*2*1*22*0",
        "SBR*P*18*******MB",
        "NM1*IL*1*LANE*ROBIN****MI*7QX2PL4KD19",
        "DMG*D8*19480212*M",
        "NM1*PR*2*MEDICARE MAC*****PI*12345",
        f"CLM*{claim_id}*{total}***11:B:{frequency}*Y*A*Y*Y",
        *([f"REF*F8*{payer_number}"] if payer_number else []),
        "HI*ABK:M5416",
        *service,
    ]
    body.append(f"SE*{len(body) + 1}*0417")
    return "~\n".join(head + body + ["GE*1*417", "IEA*1*000000417"]) + "~\n"


def read_text(tmp_path: Path, text: str, name: str = "life.837") -> list:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return list(read_claims([path], Checker().known_payers()))


def test_837_frequency_and_payer_claim_number_are_read(tmp_path: Path) -> None:
    pytest.importorskip("pyx12")
    (original,) = read_text(tmp_path, x12_text())
    assert original.ok and (original.claim.frequency, original.claim.replaces) == (1, None)
    (replacement,) = read_text(tmp_path, x12_text("7", "26061000123"))
    assert replacement.ok, [str(e) for e in replacement.errors]
    assert (replacement.claim.frequency, replacement.claim.replaces) == (7, "26061000123")
    (void,) = read_text(tmp_path, x12_text("8", "26061000123"))
    assert (void.claim.frequency, void.claim.replaces) == (8, "26061000123")
    (unnamed,) = read_text(tmp_path, x12_text("7"))
    assert not unnamed.ok
    assert any(e.field.startswith("replaces") and "REF*F8" in e.field for e in unnamed.errors), \
        [str(e) for e in unnamed.errors]


def test_writer_writes_frequency_and_ref_f8_back(tmp_path: Path) -> None:
    pytest.importorskip("pyx12")
    from pain_asp.inputs.x12 import contexts_of, write_837

    claim = parse_claim(raw_claim("L-W", esi(D(2026, 3, 2), charge="850.00"), frequency=8,
                                  replaces="26061000999"))
    text = write_837([claim], created=dt.datetime(2026, 4, 2, 9, 0))
    assert "*11:B:8*" in text and "REF*F8*26061000999~" in text
    (back,) = read_text(tmp_path, text, "written.837")
    assert (back.claim.frequency, back.claim.replaces) == (8, "26061000999")
    records = read_text(tmp_path, x12_text("7", "26061000123"), "replacement.837")
    again = write_837([records[0].claim], contexts_of(records))
    assert again.count("REF*F8*26061000123~") == 1 and "*11:B:7*" in again
    as_original = msgspec.structs.replace(records[0].claim, frequency=1, replaces=None)
    plain = write_837([as_original], contexts_of(records))
    assert "REF*F8" not in plain and "*11:B:1*" in plain


# --- check and fix --------------------------------------------------------------------------

def test_a_void_is_reported_as_a_void_with_no_rule_findings(checker: Checker) -> None:
    # As an original, this line has deny findings (50 with 2 units, undocumented ESI).
    lines = [esi(D(2026, 3, 2), "64483", modifiers=["50"], units=2, charge="1200.00")]
    original = validate_claim(raw_claim("L-V", *lines), "life.yaml", 1)
    assert {f.rule for f in checker.check_claim(original.claim).findings} >= {"bilateral-units"}
    void = validate_claim(raw_claim("L-V", *lines, frequency=8, replaces="26061000123"), "life.yaml", 1)
    result = checker.check_claim(void.claim)
    assert [(f.rule, f.severity, f.lines) for f in result.findings] == [("claim-void", "info", [1])]
    assert result.status == "info"


def test_fix_leaves_a_void_untouched() -> None:
    repairer = Repairer()
    lines = [esi(D(2026, 3, 2), "64483", modifiers=["50"], units=2, charge="1200.00")]
    record = validate_claim(raw_claim("L-V", *lines, frequency=8, replaces="26061000123"), "life.yaml", 1,
                            repairer.known_payers())
    (fixed,) = repairer.fix([record])
    assert fixed.edits == []
    assert fixed.corrected["lines"][0]["units"] == 2 and fixed.corrected["lines"][0]["charge"] == 1200.0
    assert (fixed.corrected["frequency"], fixed.corrected["replaces"]) == (8, "26061000123")


# --- history: a batch --------------------------------------------------------------------------

def _batch(*raws: dict) -> list:
    return [parse_claim(raw) for raw in raws]


def _later() -> dict:
    return raw_claim("L-LATER", esi(D(2026, 6, 1), "64483"))


def test_a_replacement_in_the_batch_takes_the_place_of_its_original() -> None:
    claims = _batch(raw_claim("L-1", esi(D(2026, 3, 2))),
                    raw_claim("L-1", esi(D(2026, 3, 3), "62321"), frequency=7, replaces="26061000123"),
                    _later())
    later = claims[-1]
    assert keys(batch_history(claims)(later)) == [("2026-03-03", "62321")]
    index = PatientIndex()
    for claim in claims:
        index.add(claim)
    index.freeze()
    assert keys(index.history(later)) == [("2026-03-03", "62321")]


def test_an_original_never_sees_its_replacement_of_another_date() -> None:
    # A replacement may correct the date of service: the original it replaces must not count
    # the corrected service as an earlier session. Batch history did when the two dates had
    # nothing in common (the workers' patient index did not, so a large batch said otherwise).
    claims = _batch(raw_claim("L-1", esi(D(2026, 3, 9))),
                    raw_claim("L-1", esi(D(2026, 3, 2)), frequency=7, replaces="26061000123"))
    original = claims[0]
    assert batch_history(claims)(original) == []
    index = PatientIndex()
    for claim in claims:
        index.add(claim)
    index.freeze()
    assert index.history(original) == []


def test_a_void_in_the_batch_removes_its_claim_from_history() -> None:
    claims = _batch(raw_claim("L-1", esi(D(2026, 3, 2))),
                    raw_claim("L-1", esi(D(2026, 3, 2)), frequency=8, replaces="26061000123"),
                    _later())
    assert batch_history(claims)(claims[-1]) == []
    index = PatientIndex()
    for claim in claims:
        index.add(claim)
    index.freeze()
    assert index.history(claims[-1]) == []


def test_a_replacement_or_void_may_repeat_the_claim_id_of_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "batch.yaml"
    import yaml

    raws = [raw_claim("L-1", esi(D(2026, 3, 2))),
            raw_claim("L-1", esi(D(2026, 3, 3)), frequency=7, replaces="26061000123"),
            raw_claim("L-1", esi(D(2026, 3, 3)), frequency=8, replaces="26061000124"),
            raw_claim("L-1", esi(D(2026, 3, 4)))]
    path.write_text(yaml.safe_dump(raws, default_flow_style=False), encoding="utf-8")
    records = list(read_claims([path], ["medicare"]))
    assert [r.ok for r in records] == [True, True, True, False]
    assert "claim_id" in records[3].errors[0].field


# --- history: the store ------------------------------------------------------------------------

def test_store_replaces_on_a_replacement_and_forgets_on_a_void(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.db") as store:
        store.add_claims(_batch(raw_claim("L-1", esi(D(2026, 3, 2))),
                                raw_claim("L-2", esi(D(2026, 4, 6), "64483"))))
        store.add_claims(_batch(raw_claim("L-1", esi(D(2026, 3, 3), "62321"), frequency=7,
                                          replaces="26061000123")))
        assert [(r["date"], r["code"], r["claim_id"]) for r in store.show("P-LIFE-1")] == [
            ("2026-03-03", "62321", "L-1"), ("2026-04-06", "64483", "L-2")]
        store.add_claims(_batch(raw_claim("L-1", esi(D(2026, 3, 3), "62321"), frequency=8,
                                          replaces="26061000124")))
        assert [(r["date"], r["code"], r["claim_id"]) for r in store.show("P-LIFE-1")] == [
            ("2026-04-06", "64483", "L-2")]


def test_a_replacement_in_the_batch_hides_its_stored_original(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "history.db") as store:
        store.add_claims(_batch(raw_claim("L-1", esi(D(2026, 3, 2)))))
        claims = _batch(raw_claim("L-1", esi(D(2026, 3, 3), "62321"), frequency=7, replaces="26061000123"),
                        _later())
        provider = store_history(store, base=batch_history(claims))
        assert keys(provider(claims[-1])) == [("2026-03-03", "62321")]
        index = PatientIndex()  # the same through the index large batches use
        for claim in claims:
            index.add(claim)
        index.freeze()
        assert keys(store_history(store, base=index)(claims[-1])) == [("2026-03-03", "62321")]
        void = _batch(raw_claim("L-1", esi(D(2026, 3, 2)), frequency=8, replaces="26061000123"), _later())
        assert store_history(store, base=batch_history(void))(void[-1]) == []


# --- lines the rules cannot check (issue 18.4) ------------------------------------------------

RANGE_PRIMARY = [("HC:64483:RT*850*UN*1***1", "RD8*20260302-20260303"),
                 ("HC:64484:RT*300*UN*1***1", "D8*20260302")]
MINUTES = [("HC:64483:RT*850*UN*1***1", "D8*20260302"),
           ("HC:01992*600*MJ*45***1", "D8*20260302")]


def rules_on(result) -> set[tuple[str, str, tuple[int, ...]]]:
    return {(f.rule, f.severity, tuple(f.lines)) for f in result.findings}


def test_a_date_range_line_is_reported_and_the_other_lines_are_checked(tmp_path: Path,
                                                                       checker: Checker) -> None:
    pytest.importorskip("pyx12")
    (record,) = read_text(tmp_path, x12_text(lines=RANGE_PRIMARY))
    assert record.ok, [str(e) for e in record.errors]
    first = record.claim.lines[0]
    assert (first.date, first.through) == (D(2026, 3, 2), D(2026, 3, 3))
    found = rules_on(checker.check_claim(record.claim))
    assert ("line-not-checked", "review", (1,)) in found
    # Line 2 is checked (its documentation is unknown) ...
    assert any(2 in lines and rule != "line-not-checked" for rule, _, lines in found), found
    # ... and its primary, on the unchecked line 1, is not "missing".
    assert not any(rule == "addon-without-primary" for rule, _, _ in found), found
    assert not any(1 in lines for rule, _, lines in found if rule != "line-not-checked"), found


def test_an_anesthesia_minutes_line_is_reported_and_the_other_lines_are_checked(
        tmp_path: Path, checker: Checker) -> None:
    pytest.importorskip("pyx12")
    (record,) = read_text(tmp_path, x12_text(lines=MINUTES))
    assert record.ok, [str(e) for e in record.errors]
    assert record.claim.lines[1].minutes == 45
    found = rules_on(checker.check_claim(record.claim))
    assert ("line-not-checked", "review", (2,)) in found
    assert any(1 in lines for rule, _, lines in found if rule != "line-not-checked"), found
    assert not any(2 in lines for rule, _, lines in found if rule != "line-not-checked"), found


def test_unchecked_lines_are_written_back_as_read_and_never_edited(tmp_path: Path) -> None:
    pytest.importorskip("pyx12")
    from pain_asp.inputs.x12 import contexts_of, write_837

    for lines in (RANGE_PRIMARY, MINUTES):
        text = x12_text(lines=lines)
        records = read_text(tmp_path, text)
        assert write_837([records[0].claim], contexts_of(records)) == text
        assert parse_claim(msgspec.to_builtins(records[0].claim)) == records[0].claim
    fresh = parse_claim(raw_claim("L-N", {"code": "64483", "date": D(2026, 3, 2), "through": D(2026, 3, 3)},
                                  {"code": "01992", "date": D(2026, 3, 2), "minutes": 45}))
    text = write_837([fresh], created=dt.datetime(2026, 4, 2, 9, 0))
    assert "DTP*472*RD8*20260302-20260303~" in text and "SV1*HC:01992*0*MJ*45" in text
    (back,) = read_text(tmp_path, text, "fresh.837")
    assert [(l.date, l.through, l.minutes) for l in back.claim.lines] == [
        (D(2026, 3, 2), D(2026, 3, 3), None), (D(2026, 3, 2), None, 45)]
    repairer = Repairer()
    raw = raw_claim("L-U", {"code": "64483", "modifiers": ["50"], "units": 2, "date": D(2026, 3, 2),
                            "through": D(2026, 3, 4), "charge": "1200.00"},
                    esi(D(2026, 3, 2), "64483", modifiers=["50"], units=2, charge="1200.00"))
    record = validate_claim(raw, "life.yaml", 1, repairer.known_payers())
    (fixed,) = repairer.fix([record])
    assert fixed.edits and all(e.line == 2 for e in fixed.edits)
    kept = fixed.corrected["lines"][0]
    assert (kept["units"], kept["through"], kept["charge"]) == (2, "2026-03-04", 1200.0)


def test_a_line_through_a_date_before_its_date_is_an_input_error() -> None:
    record = validate_claim(raw_claim("L-T", {"code": "64483", "date": D(2026, 3, 2), "through": D(2026, 3, 1)}),
                            "life.yaml", 1)
    assert not record.ok and record.errors[0].field == "lines[1].through"
    assert "on or after its date" in record.errors[0].expected


def test_history_add_and_check_on_the_command_line(tmp_path: Path) -> None:
    import json

    import yaml
    from typer.testing import CliRunner

    from pain_asp.cli import app

    def write(name: str, *raws: dict) -> str:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(list(raws)), encoding="utf-8")
        return str(path)

    runner = CliRunner()
    db = str(tmp_path / "history.db")
    original = write("original.yaml", raw_claim("L-1", esi(D(2026, 3, 2))))
    void = write("void.yaml", raw_claim("L-1", esi(D(2026, 3, 2)), frequency=8, replaces="26061000123"))
    assert runner.invoke(app, ["history", "add", original, "--db", db]).exit_code == 0
    assert runner.invoke(app, ["history", "add", void, "--db", db]).exit_code == 0
    shown = runner.invoke(app, ["history", "show", "P-LIFE-1", "--db", db, "--format", "json"])
    assert json.loads(shown.stdout) == []
    checked = runner.invoke(app, ["check", void, "--format", "json"])
    assert checked.exit_code == 0, checked.stdout
    (result,) = json.loads(checked.stdout)
    assert result["status"] == "info" and [f["rule"] for f in result["findings"]] == ["claim-void"]


def test_fix_writes_a_void_837_back_unchanged(tmp_path: Path) -> None:
    pytest.importorskip("pyx12")
    from typer.testing import CliRunner

    from pain_asp.cli import app

    text = x12_text("8", "26061000123", lines=[("HC:64483:50*1200*UN*2***1", "D8*20260302")])
    source, out = tmp_path / "void.837", tmp_path / "out.837"
    source.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["fix", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.stdout
    assert out.read_text(encoding="utf-8") == text


def test_the_payer_claim_number_never_reaches_the_rules(checker: Checker) -> None:
    lines = [esi(D(2026, 3, 2), "64483", modifiers=["50"], units=2, charge="1200.00")]
    results = []
    for number in ("26061000123", 'x"). claim_void(0). #include "kb/check.lp".\n'):
        for frequency in (7, 8):
            claim = parse_claim(raw_claim("L-I", *lines, frequency=frequency, replaces=number))
            results.append([(f.rule, f.severity, f.lines, f.message) for f in checker.check_claim(claim).findings])
    assert results[0] == results[2] and results[1] == results[3]
    assert results[0] != results[1]


def test_explain_shows_the_days_and_minutes_of_an_unchecked_line(checker: Checker) -> None:
    from pain_asp.modes.explain import explain_result

    claim = parse_claim(raw_claim("L-X", {"code": "64483", "date": D(2026, 3, 2), "through": D(2026, 3, 3)},
                                  {"code": "01992", "date": D(2026, 3, 2), "minutes": 45}))
    result = checker.check_claim(claim)
    text = str(explain_result(result, checker.rules, checker.payers.get("medicare")))
    assert "date 2026-03-02 through 2026-03-03" in text and "minutes 45" in text
