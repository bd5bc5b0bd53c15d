"""X12 837P in and out (pain_asp/inputs/x12.py): fixtures written by hand from 005010X222A1.

Each fixture is read field by field and checked; the multi-claim file gives the same
findings as its YAML twin; 837P -> claim -> 837P validates with pyx12 and round-trips;
structural errors name the claim, the segment and its position, and never patient data.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

pytest.importorskip("pyx12", reason="X12 837P needs pyx12 4 (Python 3.11+)")
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.engine import Checker
from pain_asp.errors import PainAspError
from pain_asp.history import batch_history
from pain_asp.inputs.readers import read_claims
from pain_asp.inputs.x12 import (
    Provider,
    X12Context,
    contexts_of,
    records_from_text,
    validate_x12,
    write_837,
)
from pain_asp.models import as_dict, parse_claim

X12 = Path(__file__).resolve().parent / "data" / "x12"
MULTI = X12 / "multi_claim.837"
runner = CliRunner()
# What the fixtures say about the patients (PHI): none of it may reach an error message.
PHI = ["1EG4TE5MK73", "XEH889914501", "ZQA550072113", "DOE", "JANE", "ROE", "ALEX", "POE",
       "MARIA", "19500101", "19800515", "19620711", "12 ELM ST", "40 OAK AVE"]


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


def records(path: Path) -> list:
    return list(read_claims([path], Checker().known_payers()))


def findings(results: list) -> set[tuple[str, str, str, tuple[int, ...]]]:
    return {(r.claim_id, f.rule, f.severity, tuple(f.lines)) for r in results for f in r.findings}


def check(checker: Checker, recs: list) -> list:
    provider = batch_history([r.claim for r in recs if r.claim is not None])
    return list(checker.check(recs, history=provider))


def text_of(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def edited(old: str, new: str, source: Path = MULTI) -> str:
    text = text_of(source)
    assert text.count(old) == 1, old
    return text.replace(old, new)


def fixed_se(text: str) -> str:
    """Recount SE01 of the (single) transaction of an edited fixture."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ST*"))
    end = next(i for i, line in enumerate(lines) if line.startswith("SE*"))
    control = lines[end].split("*")[2]
    lines[end] = f"SE*{end - start + 1}*{control}"
    return "\n".join(lines) + "\n"


# --- the fixtures, field by field ---------------------------------------------------------

def test_every_fixture_but_the_broken_one_validates_with_pyx12() -> None:
    for path in sorted(X12.glob("*.837")):
        problems = validate_x12(text_of(path))
        assert (problems != []) == (path.stem == "broken_segment"), (path.name, problems)


def test_bilateral_facet_at_medicare_field_by_field() -> None:
    (record,) = records(X12 / "bilateral_facet_medicare.837")
    assert record.ok and record.position == 1 and record.claim_id == "PCN0001"
    claim = record.claim
    assert claim.claim_id == "PCN0001"                  # CLM01
    assert claim.payer == "medicare"                    # SBR09 MB (NM109 12345 is not mapped)
    assert claim.place_of_service == "11"               # CLM05-1
    assert claim.patient.id == "1EG4TE5MK73"            # NM1*IL NM109
    assert claim.patient.birth_date == dt.date(1950, 1, 1) and claim.patient.sex == "F"  # DMG
    assert claim.diagnoses == ["M47.816", "M54.50"]     # HI ABK, ABF in order, dotted
    assert claim.prior_authorization is None
    assert claim.clinical is None and claim.history == []
    (line,) = claim.lines
    assert line.code == "64493" and line.modifiers == ["50", "KX"]   # SV101-2, SV101-3..4
    assert line.charge == Decimal("450") and line.units == 1          # SV102, SV104
    assert line.dx == [1, 2]                                          # SV107
    assert line.date == dt.date(2026, 3, 2)                           # DTP*472 D8
    assert line.documented is None                                    # not in an 837P
    assert isinstance(record.source, X12Context)


def test_two_line_rt_lt_field_by_field() -> None:
    (record,) = records(X12 / "two_line_rtlt.837")
    claim = record.claim
    assert claim.claim_id == "PCN0002" and claim.payer == "medicare"
    assert [(l.code, l.modifiers, l.units, l.charge, l.dx, l.date) for l in claim.lines] == [
        ("64493", ["RT", "KX"], 1, Decimal("450"), [1], dt.date(2026, 3, 9)),
        ("64493", ["LT", "KX"], 1, Decimal("450"), [1], dt.date(2026, 3, 9)),
    ]


def test_multi_claim_file_field_by_field() -> None:
    recs = records(MULTI)
    assert [(r.position, r.claim_id, r.ok) for r in recs] == [
        (1, "MC-1001", True), (2, "MC-1002", True), (3, "CM-2001", True), (4, "CA-3001", True)]
    first, second, third, fourth = (r.claim for r in recs)
    assert first.patient == second.patient                      # same subscriber loop 2000B
    assert [l.code for l in first.lines] == ["64493", "77003"]
    assert second.diagnoses == ["M54.16", "M47.816"] and second.lines[0].dx == [1, 2]
    # loop 2000C: the patient is a dependent; the id adds a digest of name and birth date
    assert third.patient.id.startswith("XEH889914501-") and len(third.patient.id) == len("XEH889914501-") + 8
    assert third.patient.birth_date == dt.date(1980, 5, 15) and third.patient.sex == "M"
    assert third.payer == "commercial"                          # NM109 EXHP01 unmapped, SBR09 CI
    assert third.place_of_service == "22"
    assert third.prior_authorization == "AUTH7781"              # 2300 REF*G1
    assert fourth.payer == "commercial_asc_rtlt"                # NM109 EXASC01 mapped
    assert fourth.prior_authorization == "AUTH9912"             # 2400 REF*G1
    assert recs[3].source.prior_auth_on_lines and not recs[2].source.prior_auth_on_lines
    assert [l.modifiers for l in fourth.lines] == [["RT"], ["LT"]]


def test_multi_claim_file_equals_its_yaml_twin(checker: Checker) -> None:
    x12 = records(MULTI)
    twin = records(X12 / "multi_claim.yaml")
    assert [as_dict(r.claim) for r in x12] == [as_dict(r.claim) for r in twin]
    assert findings(check(checker, x12)) == findings(check(checker, twin))


def test_multi_claim_check_on_the_command_line_matches_the_yaml_twin() -> None:
    out = {}
    for name in ("multi_claim.837", "multi_claim.yaml"):
        result = runner.invoke(app, ["check", str(X12 / name), "--format", "jsonl", "--fail-on", "never"])
        assert result.exit_code == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        out[name] = [{k: v for k, v in row.items() if k != "file"} for row in rows]
    assert out["multi_claim.837"] == out["multi_claim.yaml"]
    assert [row["claim_id"] for row in out["multi_claim.837"]] == ["MC-1001", "MC-1002", "CM-2001", "CA-3001"]


def test_bilateral_facet_through_check(checker: Checker) -> None:
    # Coding is right (one line, 50, one unit, KX; CMS IOM 100-04 ch. 12 §40.7, NOR-FACET-QA Q3, X12 005010X222A1), so no denial. An
    # 837P has no chart documentation: the rules that need it answer review (docs/claim-format.md).
    results = check(checker, records(X12 / "bilateral_facet_medicare.837"))
    assert findings(results) == {
        ("PCN0001", "conservative-care", "review", (1,)),
        ("PCN0001", "imaging-undocumented", "review", (1,)),
        ("PCN0001", "kx-not-applicable", "review", (1,)),
        ("PCN0001", "levels-undocumented", "review", (1,)),
        ("PCN0001", "payer-id-unmapped", "info", (1,)),       # MAC id 12345 not mapped; SBR09 MB
    }


def test_two_line_rt_lt_at_medicare_through_check(checker: Checker) -> None:
    # Medicare takes a bilateral procedure as one line with 50 (CMS IOM 100-04 ch. 12 §40.7): RT and LT
    # lines are the wrong format for it, on both lines.
    found = findings(check(checker, records(X12 / "two_line_rtlt.837")))
    assert ("PCN0002", "bilateral-format", "deny", (1, 2)) in found
    assert {f[2] for f in found} == {"deny", "review", "info"}          # info: payer-id-unmapped
    assert {f[1] for f in found if f[2] == "deny"} == {"bilateral-format"}


# --- structural errors --------------------------------------------------------------------

def test_broken_segment_names_claim_segment_and_position_and_the_others_run(checker: Checker) -> None:
    recs = records(X12 / "broken_segment.837")
    assert [(r.claim_id, r.ok) for r in recs] == [
        ("MC-1001", True), ("MC-1002", True), ("CM-2001", False), ("CA-3001", True)]
    messages = [str(e) for e in recs[2].errors]
    assert any("claim CM-2001" in m and "SV1 (segment 56, loop 2400)" in m for m in messages), messages
    results = check(checker, recs)
    assert [bool(r.findings) for r in results] == [True, True, False, True]
    assert results[2].errors and not results[0].errors
    clean = findings(check(checker, records(MULTI)))
    assert findings(results) == {f for f in clean if f[0] != "CM-2001"}


def test_bad_element_names_element_and_value_where_no_patient_data() -> None:
    text = edited("SV1*HC:64484:RT*300*UN*1***1~", "SV1*HC:64484:RT*300*UN*X***1~")
    recs = list(records_from_text(text, "bad.837"))
    messages = [str(e) for e in recs[2].errors]
    assert any("SV1 (segment 56, loop 2400) SV104: got \"X\"" in m for m in messages), messages
    assert any("lines[2].units (SV104, segment 56)" in m for m in messages), messages
    assert [r.ok for r in recs] == [True, True, False, True]


def test_patient_data_never_appears_in_errors() -> None:
    text = edited("DMG*D8*19500101*F~", "DMG*D8*19501301*Q~")              # bad birth date, sex
    text = text.replace("NM1*IL*1*ROE*RICHARD****MI*XEH889914501~", "NM1*IL*1*ROE*RICHARD****ZZ*XEH889914501~")
    text = text.replace("N3*40 OAK AVE~", "N3*40 OAK AVE*" + "X" * 80 + "~")
    text = fixed_se(text.replace("REF*G1*AUTH9912~\nLX*2~", "REF*G1*AUTH9912~\nREF*6R*" + "MRN7" * 14 + "~\nLX*2~"))
    recs = list(records_from_text(text, "phi.837"))
    messages = [str(e) for r in recs for e in r.errors]
    assert [r.ok for r in recs] == [False, False, False, False]
    assert any("DMG (segment 19, loop 2010BA) DMG02" in m and "not shown: patient data" in m for m in messages)
    assert any("NM108" in m for m in messages) and any("N302" in m for m in messages)
    assert any("REF (segment 69, loop 2400) REF02" in m for m in messages), messages
    for secret in PHI + ["19501301", "XXXXXXXX", "MRN7"]:
        assert not any(secret in m for m in messages), secret


def test_missing_service_date_is_charged_to_its_claim() -> None:
    text = fixed_se(edited("SV1*HC:64483:RT*600*UN*1***1~\nDTP*472*D8*20260316~\n",
                           "SV1*HC:64483:RT*600*UN*1***1~\n"))
    recs = list(records_from_text(text, "nodate.837"))
    assert [r.ok for r in recs] == [True, False, True, True]
    messages = [str(e) for e in recs[1].errors]
    assert any("Date - Service Date" in m and "after SV1 (segment 37, loop 2400)" in m for m in messages)
    assert any("lines[2].date" in m for m in messages)


def test_envelope_error_belongs_to_every_claim_of_the_transaction() -> None:
    text = edited("SE*71*0001~", "SE*70*0001~")
    recs = list(records_from_text(text, "count.837"))
    assert all(not r.ok for r in recs) and len(recs) == 4
    assert all(any("SE01 equal to the number of segments" in str(e) for e in r.errors) for r in recs)
    assert not any("70" in str(e) for r in recs for e in r.errors)        # no value quoted


def test_truncated_file_keeps_the_claims_it_has_and_flags_them() -> None:
    lines = text_of(MULTI).splitlines()
    text = "\n".join(lines[:40]) + "\n"                  # stops inside the second subscriber
    recs = list(records_from_text(text, "cut.837"))
    assert [r.claim_id for r in recs] == ["MC-1001", "MC-1002"]
    assert all(any("an SE segment closing the transaction set" in str(e) for e in r.errors) for r in recs)


def test_not_x12_and_wrong_version_are_one_clear_error(tmp_path: Path) -> None:
    (record,) = list(records_from_text("hello\n", "x.837"))
    assert record.claim_id is None and "ISA" in str(record.errors[0])
    text = text_of(MULTI).replace("005010X222A1", "005010X223A2")
    (record,) = list(records_from_text(text, "i.837"))
    assert "GS08 005010X222A1" in str(record.errors[0]) and "005010X223A2" in str(record.errors[0])
    path = tmp_path / "binary.edi"
    path.write_bytes(b"\xff\xfe\x00ISA")
    (record,) = records(path)
    assert "X12 text" in str(record.errors[0])


@pytest.mark.parametrize("old,new,field,expected", [
    ("SV1*HC:64484:RT*300*UN*1***1~", "SV1*HC:64484:RT*300*F2*1***1~", "lines[2].units (SV103",
     "UN (units) or MJ"),
    ("SV1*HC:64484:RT*300*UN*1***1~", "SV1*HC:64484:RT*300*UN*1.5***1~", "lines[2].units (SV104", "whole number"),
    ("DTP*472*D8*20260304~\nLX*2~", "DTP*472*RD8*20260305-20260304~\nLX*2~", "lines[1].date (DTP03",
     "last day is not before its first"),
    ("HI*ABK:M5416*ABF:M5450~", "HI*BK:7242*BF:7245~", "HI (segment 51) HI01-1", "ICD-10-CM"),
    ("SV1*HC:64484:RT*300*UN*1***1~", "SV1*HC:64484:RT*300*UN*1*21**1~", "place_of_service (CLM05-1, SV105)",
     "one place of service"),
])
def test_claims_pain_asp_cannot_check_are_input_errors(old: str, new: str, field: str, expected: str) -> None:
    recs = list(records_from_text(edited(old, new), "x.837"))
    assert [r.ok for r in recs] == [True, True, False, True]
    assert any(field in str(e) and expected in str(e) for e in recs[2].errors), [str(e) for e in recs[2].errors]


def test_same_day_range_and_line_places_that_agree_are_accepted() -> None:
    text = edited("DTP*472*D8*20260304~\nLX*2~", "DTP*472*RD8*20260304-20260304~\nLX*2~")
    text = text.replace("SV1*HC:64483:RT*600*UN*1***1~\nDTP*472*RD8", "SV1*HC:64483:RT*600*UN*1*22**1~\nDTP*472*RD8")
    recs = list(records_from_text(text, "x.837"))
    assert recs[2].ok, [str(e) for e in recs[2].errors]
    assert recs[2].claim.lines[0].date == dt.date(2026, 3, 4) and recs[2].claim.place_of_service == "22"


def test_unmapped_payer_names_both_ids_and_the_mapping_file() -> None:
    text = edited("SBR*P**GRP4471******CI~", "SBR*P**GRP4471******MC~")
    recs = list(records_from_text(text, "x.837"))
    (error,) = recs[2].errors
    assert "NM109 \"EXHP01\", SBR09 \"MC\"" in str(error) and "payer_ids.yaml" in str(error)
    assert not any(secret in str(error) for secret in PHI)


def test_payer_mapping_can_be_extended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "ids.yaml"
    extra.write_text("payer_ids:\n  EXHP01: commercial_strict_esi\nclaim_filing_indicators: {}\n")
    monkeypatch.setenv("PAIN_ASP_PAYER_IDS", str(extra))
    recs = list(records_from_text(text_of(MULTI), "x.837"))
    assert recs[2].claim.payer == "commercial_strict_esi" and recs[0].claim.payer == "medicare"
    extra.write_text("payer_ids: [EXHP01]\n")
    monkeypatch.setenv("PAIN_ASP_PAYER_IDS", str(tmp_path / "ids.yaml") + "")
    from pain_asp.inputs.x12 import _payer_table

    _payer_table.cache_clear()
    with pytest.raises(PainAspError, match="payer_ids: a mapping"):
        list(records_from_text(text_of(MULTI), "x.837"))
    _payer_table.cache_clear()


def test_mapping_file_is_not_a_payer_policy() -> None:
    ids = Checker().known_payers()
    assert "payer_ids" not in ids and "medicare" in ids


# --- writing ------------------------------------------------------------------------------

def test_round_trip_837_claim_837_is_identical_and_validates() -> None:
    recs = records(MULTI)
    text = write_837([r.claim for r in recs], contexts_of(recs))
    assert text == text_of(MULTI)
    assert validate_x12(text) == []
    again = list(records_from_text(text, "again.837"))
    assert [as_dict(r.claim) for r in again] == [as_dict(r.claim) for r in recs]


def test_single_claim_fixtures_round_trip() -> None:
    for name in ("bilateral_facet_medicare.837", "two_line_rtlt.837"):
        recs = records(X12 / name)
        assert write_837([r.claim for r in recs], contexts_of(recs)) == text_of(X12 / name)


def test_corrected_claims_are_written_back_and_validate() -> None:
    recs = records(MULTI)
    contexts = contexts_of(recs)
    first, second, third, fourth = (r.claim for r in recs)
    fixed = [
        msgspec.structs.replace(first, lines=first.lines[:1]),                      # drop 77003
        msgspec.structs.replace(second, lines=[
            msgspec.structs.replace(second.lines[0], modifiers=["25"]), second.lines[1]]),
        third,
        msgspec.structs.replace(fourth, lines=[                                     # RT + LT -> one 50 line
            msgspec.structs.replace(fourth.lines[0], modifiers=["50"])]),
    ]
    text = write_837(fixed, contexts)
    assert validate_x12(text) == []
    back = list(records_from_text(text, "fixed.837"))
    assert [as_dict(r.claim) for r in back] == [as_dict(c) for c in fixed]
    assert "CLM*MC-1001*450***11:B:1*Y*A*Y*Y~" in text          # CLM02 is the new total
    assert "SV1*HC:99213:25*150*UN*1***1:2~" in text
    assert "NM1*82*1*SMITH*JOHN****XX*1987654328~" in text      # provider loops kept
    assert text.count("REF*G1*AUTH9912~") == 1                   # line REF*G1 kept on the kept line


def test_split_bilateral_line_keeps_line_segments_once() -> None:
    recs = records(X12 / "bilateral_facet_medicare.837")
    claim = recs[0].claim
    line = claim.lines[0]
    split = msgspec.structs.replace(claim, lines=[
        msgspec.structs.replace(line, modifiers=["RT", "KX"], charge=Decimal("225")),
        msgspec.structs.replace(line, modifiers=["LT", "KX"], charge=Decimal("225"))])
    text = write_837([split], contexts_of(recs))
    assert validate_x12(text) == []
    assert "LX*2~\nSV1*HC:64493:LT:KX*225*UN*1***1:2~\nDTP*472*D8*20260302~" in text
    (back,) = list(records_from_text(text, "split.837"))
    assert as_dict(back.claim) == as_dict(split)


def test_claims_from_yaml_are_written_with_placeholders_and_read_back() -> None:
    twin = records(X12 / "multi_claim.yaml")
    text = write_837([r.claim for r in twin], created=dt.datetime(2026, 3, 20, 9, 30))
    assert validate_x12(text) == []
    assert "*T*:~" in text.splitlines()[0]                        # ISA15 test data
    back = list(records_from_text(text, "from-yaml.837"))
    assert [as_dict(r.claim) for r in back] == [as_dict(r.claim) for r in twin]
    assert write_837([r.claim for r in twin], created=dt.datetime(2026, 3, 20, 9, 30)) == text
    provider = Provider(name="EXAMPLE PAIN CLINIC", npi="1234567893")
    assert "NM1*85*2*EXAMPLE PAIN CLINIC*****XX*1234567893~" in write_837(
        [twin[0].claim], provider=provider, created=dt.datetime(2026, 3, 20))


def test_writer_refuses_values_that_would_break_the_file() -> None:
    claim = records(X12 / "multi_claim.yaml")[0].claim
    bad = msgspec.structs.replace(claim, claim_id="MC*1001")
    with pytest.raises(PainAspError, match="CLM segment .* delimiter"):
        write_837([bad])
    too_long = msgspec.structs.replace(claim, claim_id="C" * 39)
    with pytest.raises(PainAspError, match=r"(?s)does not validate.*CLM01"):
        write_837([too_long])
    with pytest.raises(PainAspError, match="at least one claim"):
        write_837([])


# --- the command line and the batch path --------------------------------------------------

def test_check_explain_and_folders_take_837_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(X12 / "bilateral_facet_medicare.837")])
    assert result.exit_code == 0 and "PCN0001" in result.stdout
    result = runner.invoke(app, ["check", str(X12 / "broken_segment.837"), "--format", "json"])
    assert result.exit_code == 2
    rows = json.loads(result.stdout)
    assert [r["claim_id"] for r in rows] == ["MC-1001", "MC-1002", "CM-2001", "CA-3001"]
    result = runner.invoke(app, ["explain", str(MULTI), "--claim", "MC-1001", "--rule", "imaging-included"])
    assert "imaging-included" in result.stdout and "A57787" in result.stdout
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.x12").write_text(text_of(X12 / "bilateral_facet_medicare.837"))
    (folder / "b.edi").write_text(text_of(X12 / "two_line_rtlt.837"))
    (folder / "c.json").write_text(json.dumps(as_dict(records(X12 / "multi_claim.yaml")[2].claim), default=str))
    ids = [r.claim_id for r in read_claims([folder])]
    assert ids == ["PCN0001", "PCN0002", "CM-2001"]


def test_claim_ids_stay_unique_across_837_and_yaml_in_one_batch() -> None:
    recs = list(read_claims([MULTI, X12 / "multi_claim.yaml"]))
    assert [r.ok for r in recs] == [True] * 4 + [False] * 4
    assert "already used in" in str(recs[4].errors[0])


def test_parse_claim_accepts_what_the_reader_builds() -> None:
    for record in records(MULTI):
        assert as_dict(parse_claim(json.loads(json.dumps(as_dict(record.claim), default=str)))) == as_dict(record.claim)


# --- fix -o corrected.837 -----------------------------------------------------------------

def test_fix_writes_837_with_the_same_findings_as_the_yaml_twin(tmp_path: Path) -> None:
    outputs = {}
    for name, out in (("multi_claim.837", "fixed.837"), ("multi_claim.yaml", "fixed.yaml")):
        result = runner.invoke(app, ["fix", str(X12 / name), "-o", str(tmp_path / out), "--format", "json"])
        assert result.exit_code == 0, result.stderr
        outputs[name] = [{k: v for k, v in row.items() if k != "file"} for row in json.loads(result.stdout)]
    assert outputs["multi_claim.837"] == outputs["multi_claim.yaml"]
    assert {row["status"] for row in outputs["multi_claim.837"]} >= {"fixed"}
    fixed_837 = (tmp_path / "fixed.837").read_text()
    assert validate_x12(fixed_837) == []
    assert "NM1*82*1*SMITH*JOHN****XX*1987654328~" in fixed_837      # the 837P's own loops stay
    checked = {}
    for out in ("fixed.837", "fixed.yaml"):
        result = runner.invoke(app, ["check", str(tmp_path / out), "--format", "jsonl", "--fail-on", "never"])
        assert result.exit_code == 0, result.stderr
        checked[out] = [{k: v for k, v in json.loads(line).items() if k != "file"} for line in result.stdout.splitlines()]
    assert checked["fixed.837"] == checked["fixed.yaml"]
    assert not any(f["severity"] == "deny" for row in checked["fixed.837"] for f in row["findings"])
    # fixing the corrected file changes nothing
    result = runner.invoke(app, ["fix", str(tmp_path / "fixed.837"), "-o", str(tmp_path / "again.837")])
    assert result.exit_code == 0 and (tmp_path / "again.837").read_text() == fixed_837


def test_fix_of_yaml_claims_can_write_837(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fix", str(X12 / "multi_claim.yaml"), "-o", str(tmp_path / "out.edi")])
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "out.edi").read_text()
    assert validate_x12(text) == [] and "NM1*IL*1*UNKNOWN*****MI*1EG4TE5MK73~" in text


# --- large files: a transaction set at a time ----------------------------------------------

def _three_sets(monkeypatch: pytest.MonkeyPatch) -> tuple[str, list]:
    """The multi-claim YAML twin written with at most 2 claims per transaction set."""
    import pain_asp.inputs.x12 as x12

    twin = records(X12 / "multi_claim.yaml")
    claims = [r.claim for r in twin]
    claims += [msgspec.structs.replace(c, claim_id=c.claim_id + "-B") for c in claims]
    monkeypatch.setattr(x12, "CLAIMS_PER_TRANSACTION", 2)
    text = write_837(claims, created=dt.datetime(2026, 3, 20, 9, 30))
    return text, claims


def test_writer_starts_a_new_transaction_set_after_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    text, claims = _three_sets(monkeypatch)
    sets = [line for line in text.splitlines() if line.startswith("ST*")]
    assert len(claims) == 8 and len(sets) == 4
    assert [s.split("*")[2] for s in sets] == ["0001", "0002", "0003", "0004"]
    assert sum(1 for line in text.splitlines() if line.startswith("GS*")) == 1
    assert "GE*4*" in text
    assert validate_x12(text) == []
    back = list(records_from_text(text, "sets.837"))
    assert sorted(as_dict(r.claim)["claim_id"] for r in back) == sorted(c.claim_id for c in claims)


class _Counting:
    """A text handle that remembers how much of the file has been read."""

    def __init__(self, text: str) -> None:
        import io

        self._inner, self.read_so_far = io.StringIO(text), 0

    def read(self, size: int = -1) -> str:
        chunk = self._inner.read(size)
        self.read_so_far += len(chunk)
        return chunk


def test_claims_are_released_a_transaction_set_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import pain_asp.inputs.x12 as x12
    from pain_asp.inputs.x12 import records_from_handle

    twin = [r.claim for r in records(X12 / "multi_claim.yaml")]
    claims = [msgspec.structs.replace(c, claim_id=f"{c.claim_id}-{n}") for n in range(50) for c in twin]
    monkeypatch.setattr(x12, "CLAIMS_PER_TRANSACTION", 20)
    text = write_837(claims, created=dt.datetime(2026, 3, 20, 9, 30), validate=False)
    assert text.count("\nST*") == 10
    handle = _Counting(text)
    stream = records_from_handle(handle, "sets.837")
    first = next(stream)
    assert first.ok and handle.read_so_far < len(text) // 3    # the first set, not the file
    rest = list(stream)
    assert len(rest) == 199 and all(r.ok for r in rest) and handle.read_so_far == len(text)


def test_set_trailer_error_stays_with_its_set_and_group_trailer_error_is_its_own_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    text, claims = _three_sets(monkeypatch)
    lines = text.splitlines()
    second_se = [i for i, line in enumerate(lines) if line.startswith("SE*")][1]
    count = int(lines[second_se].split("*")[1])
    lines[second_se] = lines[second_se].replace(f"SE*{count}*", f"SE*{count + 3}*")
    recs = list(records_from_text("\n".join(lines) + "\n", "se.837"))
    bad = [r for r in recs if not r.ok]
    assert len(recs) == 8 and len(bad) == 2                       # the two claims of set 0002
    assert all(any("SE01 equal to the number of segments" in str(e) for e in r.errors) for r in bad)
    ge = next(line for line in text.splitlines() if line.startswith("GE*"))
    broken = text.replace(ge, ge.replace("GE*4*", "GE*5*"))
    recs = list(records_from_text(broken, "ge.837"))
    assert len(recs) == 9 and all(r.ok for r in recs[:8])
    assert recs[8].claim is None and any("GS/GE" in str(e) for e in recs[8].errors)


def test_fix_writes_a_large_837_back_into_its_envelopes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Past the number of claims whose envelopes are kept, -o reads the input again."""
    import pain_asp.inputs.x12 as x12
    from pain_asp.inputs.x12 import write_corrected_837

    source = tmp_path / "multi.837"
    source.write_text(text_of(MULTI), encoding="utf-8")
    monkeypatch.setattr(x12, "_CONTEXTS_KEPT", 1)
    x12._CONTEXTS.clear()
    recs = list(read_x12_records(source))
    assert not x12._CONTEXTS                                       # too many claims to keep
    written = write_corrected_837([r.claim for r in recs], [source])
    assert written == text_of(MULTI)                                # same envelopes, same bytes


def read_x12_records(path: Path) -> list:
    from pain_asp.inputs.x12 import read_x12

    return list(read_x12(path))
