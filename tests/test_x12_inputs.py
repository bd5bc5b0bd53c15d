"""837P files as they arrive (issue 18) and inputs that hold nothing (issue 17.6).

The test files are written by hand after the 005010X222A1 examples: an X12 file is known by
its content (an ISA segment at the start) whatever its name; a folder says which files it
skipped; no claims read is exit 2 with a message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyx12", reason="X12 837P needs pyx12 4 (Python 3.11+)")
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.inputs.readers import read_claims

X12 = Path(__file__).resolve().parent / "data" / "x12"
FACET = X12 / "bilateral_facet_medicare.837"
runner = CliRunner()
PHI = ["1EG4TE5MK73", "DOE", "JANE", "19500101"]


def _copy(text: str, path: Path) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


# --- 18.1: X12 by content, not by name ------------------------------------------------------

@pytest.mark.parametrize("name, prefix", [
    ("claims.txt", ""), ("claims.dat", ""), ("CLAIMS", ""), ("claims.txt", "\ufeff"),
    ("claims.dat", "\r\n\n  "), ("claims.json", ""),
])
def test_an_837p_is_read_by_its_content_whatever_its_name(tmp_path: Path, name: str, prefix: str) -> None:
    path = _copy(prefix + FACET.read_text(encoding="utf-8"), tmp_path / name)
    records = list(read_claims([path]))
    assert [(r.claim_id, r.ok) for r in records] == [("PCN0001", True)]
    assert records[0].claim.lines[0].code == "64493"


def test_other_delimiters_and_one_line_files_are_read_by_content(tmp_path: Path) -> None:
    # Exports often put every segment on one line, or use | between elements.
    one_line = FACET.read_text(encoding="utf-8").replace("\n", "").replace("*", "|")
    records = list(read_claims([_copy(one_line, tmp_path / "export.dat")]))
    assert [(r.claim_id, r.ok) for r in records] == [("PCN0001", True)]
    crlf = FACET.read_text(encoding="utf-8").replace("\n", "\r\n")
    records = list(read_claims([_copy(crlf, tmp_path / "export.txt")]))
    assert [(r.claim_id, r.ok) for r in records] == [("PCN0001", True)]


def test_a_folder_reads_x12_by_content_and_names_every_file_it_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    _copy(FACET.read_text(encoding="utf-8"), folder / "a.txt")
    _copy((X12 / "two_line_rtlt.837").read_text(encoding="utf-8"), folder / "b.dat")
    _copy("Jane Doe, DOB 1950-01-01, notes\n", folder / "notes.txt")
    _copy("ISABEL DOE, DOB 1950-01-01\n", folder / "isabel.txt")       # starts with ISA, no segment
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4 Jane Doe")
    result = runner.invoke(app, ["check", str(folder), "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    assert "2 claim(s)" in result.stdout
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 3
    assert any("notes.txt" in line and "not a claim file" in line for line in skipped)
    assert any("isabel.txt" in line for line in skipped)
    assert any("scan.pdf" in line for line in skipped)
    assert "Jane" not in result.stderr and "PDF" not in result.stderr and "ISABEL" not in result.stderr


def test_a_single_non_claim_txt_file_is_not_quoted_back(tmp_path: Path) -> None:
    path = _copy("DOE*JANE*19500101 clinic notes\n", tmp_path / "notes.txt")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert not any(value in result.output for value in PHI)


# --- 17.6: nothing read is never silent -------------------------------------------------------

def _empty_inputs(tmp_path: Path) -> dict[str, Path]:
    empty_yaml = _copy("", tmp_path / "empty.yaml")
    blank_jsonl = _copy("\n\n", tmp_path / "blank.jsonl")
    empty_837 = _copy("", tmp_path / "empty.837")
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    skipped_dir = tmp_path / "skipped_dir"
    skipped_dir.mkdir()
    _copy("not a claim\n", skipped_dir / "readme.txt")
    return {"yaml": empty_yaml, "jsonl": blank_jsonl, "837": empty_837, "dir": empty_dir,
            "skipped": skipped_dir}


@pytest.mark.parametrize("kind", ["yaml", "jsonl", "837", "dir", "skipped"])
@pytest.mark.parametrize("command", ["check", "fix", "report", "history"])
def test_no_claims_read_is_exit_2_with_a_message(tmp_path: Path, kind: str, command: str) -> None:
    path = _empty_inputs(tmp_path)[kind]
    args = {"check": ["check", str(path)], "fix": ["fix", str(path)],
            "report": ["report", str(path), "-o", str(tmp_path / "r.html")],
            "history": ["history", "add", str(path), "--db", str(tmp_path / "h.db")]}[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "no claim" in result.output.lower() or "at least one claim" in result.output.lower()
    assert "0 claim(s): \n" not in result.output


# --- 18.2: the envelope, element by element --------------------------------------------------

def _facet(old: str, new: str) -> str:
    text = FACET.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    return text.replace(old, new)


ISA = "ISA*00*          *00*          *ZZ*SUBMIT01       *ZZ*PAYER01        *260302*1200*^*00501*000000001*0*T*:~"


def _isa(n: int, value: str) -> str:
    elements = ISA[:-1].split("*")
    elements[n] = value
    return _facet(ISA, "*".join(elements) + "~")


@pytest.mark.parametrize("text, field, expected", [
    (_facet("*20260302*1200*1*X*", "*20171399*1200*1*X*"), "GS04", "a real date"),
    (_facet("*20260302*1200*1*X*", "*20260302*2599*1*X*"), "GS05", "a time"),
    (_facet("GS*HC*SUBMIT01*", "GS*HC*SUBMITTER0123456789*"), "GS02", "2 to 15 characters"),
    (_facet("*PAYER01*20260302", "*P*20260302"), "GS03", "2 to 15 characters"),
    (_facet("*1200*1*X*", "*1200*1A*X*"), "GS06", "1 to 9 digits"),
    (_facet("*1200*1*X*", "*1200*1*T*"), "GS07", "X"),
    (_isa(9, "261199"), "ISA09", "a real date"),
    (_isa(10, "2599"), "ISA10", "a time"),
    (_isa(1, "07"), "ISA01", "one of 00, 03"),
    (_isa(5, "99"), "ISA05", "one of"),
    (_isa(13, "00000001X"), "ISA13", "9 digits"),
    (_isa(14, "5"), "ISA14", "one of 0, 1"),
    (_isa(15, "X"), "ISA15", "one of P, T"),
    (_isa(8, "PAYER01       "), "ISA08", "exactly 15 characters"),
    (_isa(2, "         "), "ISA02", "exactly 10 characters"),
    (_facet("IEA*1*000000001", "IEA*1*000000002"), "IEA02", "ISA13"),
    (_facet("IEA*1*000000001", "IEA*2*000000001"), "IEA01", "number of functional groups"),
    (_facet("GE*1*1~", "GE*1*2~"), "GE02", "GS06"),
    (_facet("GE*1*1~", "GE*3*1~"), "GE01", "number of transaction sets"),
    (_facet("SE*23*0001", "SE*22*0001"), "SE01", "number of segments"),
    (_facet("SE*23*0001", "SE*23*0002"), "SE02", "ST02"),
])
def test_every_envelope_error_is_reported_without_its_value(tmp_path: Path, text: str, field: str,
                                                           expected: str) -> None:
    path = _copy(text, tmp_path / "claims.837")
    result = runner.invoke(app, ["check", str(path), "--format", "json"])
    assert result.exit_code == 2, result.output
    errors = [e for r in __import__("json").loads(result.stdout) for e in r.get("errors", [])]
    hits = [e for e in errors if field in e["field"] + " " + e["expected"]]
    assert hits, errors
    assert any(expected in e["expected"] for e in hits), hits
    changed = [b for a, b in zip(FACET.read_text().split("*"), text.split("*")) if a != b]
    for e in errors:
        assert e["value"] == ""
        for value in changed:
            assert len(value.strip("~ ")) < 4 or value.strip("~") not in e["message"], e


def test_an_isa_error_belongs_to_the_claims_of_its_interchange(tmp_path: Path) -> None:
    path = _copy(_isa(9, "261199"), tmp_path / "claims.837")
    records = list(read_claims([path]))
    assert [r.claim_id for r in records] == ["PCN0001"]
    assert not records[0].ok
    assert any("ISA09" in e.field for e in records[0].errors)


def test_fix_never_writes_an_invalid_envelope(tmp_path: Path) -> None:
    path = _copy(_facet("*20260302*1200*1*X*", "*20171399*1200*1*X*"), tmp_path / "claims.837")
    out = tmp_path / "out.837"
    result = runner.invoke(app, ["fix", str(path), "-o", str(out)])
    assert result.exit_code == 2
    assert not out.exists()
    assert "GS04" in result.output


def test_the_writer_refuses_an_envelope_its_own_validation_rejects() -> None:
    from pain_asp.errors import PainAspError
    from pain_asp.inputs.x12 import contexts_of, records_from_text, write_837

    good = list(records_from_text(FACET.read_text(encoding="utf-8")))
    contexts = contexts_of(good)
    contexts["PCN0001"].transaction.gs.set(4, "20171399")
    with pytest.raises(PainAspError, match="GS04"):
        write_837([good[0].claim], contexts)


# --- 18.5: fix -o never drops a claim ---------------------------------------------------------

MULTI = X12 / "multi_claim.837"
ICD9 = ("HI*ABK:M5416*ABF:M47816~", "HI*BK:7242*BF:72210~")   # MC-1002: valid X12, not checkable


def _claim_loops(text: str) -> dict[str, list[str]]:
    """CLM01 -> the segments of its 2300 loop (up to the next CLM, HL or SE)."""
    out: dict[str, list[str]] = {}
    current = None
    for segment in text.replace("\n", "").split("~"):
        tag = segment.split("*")[0]
        if tag == "CLM":
            current = segment.split("*")[1]
            out[current] = []
        elif tag in ("HL", "SE"):
            current = None
        if current is not None:
            out[current].append(segment)
    return out


def test_fix_837_passes_an_unreadable_claim_through_untouched(tmp_path: Path) -> None:
    from pain_asp.inputs.x12 import validate_x12

    source = _copy(MULTI.read_text(encoding="utf-8").replace(*ICD9), tmp_path / "in.837")
    out = tmp_path / "out.837"
    result = runner.invoke(app, ["fix", str(source), "-o", str(out)])
    assert result.exit_code == 2, result.output
    written = out.read_text(encoding="utf-8")
    assert validate_x12(written) == []
    loops = _claim_loops(written)
    assert list(loops) == ["MC-1001", "MC-1002", "CM-2001", "CA-3001"]
    assert loops["MC-1002"] == _claim_loops(source.read_text(encoding="utf-8"))["MC-1002"]
    note = [line for line in result.stderr.splitlines() if "MC-1002" in line]
    assert note and "passed through unchanged" in note[0] and "ICD-9" in note[0]
    assert "left out" not in result.stderr


def _yaml_claim(claim_id: str, side: str, units: int, day: str) -> str:
    return (f"- claim_id: {claim_id}\n  payer: medicare\n  place_of_service: \"11\"\n"
            f"  patient: {{id: P-{claim_id}}}\n  diagnoses: [M54.16]\n  lines:\n"
            f"    - {{code: \"64483\", modifiers: [{side}], units: {units}, date: {day}, dx: [1], charge: 600}}\n")


# BAD-2 has 0 units: an input error between two good claims.
YAML_BATCH = (_yaml_claim("GOOD-1", "RT", 1, "2026-03-02") + _yaml_claim("BAD-2", "RT", 0, "2026-03-02")
              + _yaml_claim("GOOD-3", "LT", 1, "2026-03-03"))


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".jsonl"])
def test_fix_yaml_passes_an_unreadable_claim_through_untouched(tmp_path: Path, suffix: str) -> None:
    import json

    import yaml

    source = _copy(YAML_BATCH, tmp_path / "in.yaml")
    out = tmp_path / f"out{suffix}"
    result = runner.invoke(app, ["fix", str(source), "-o", str(out)])
    assert result.exit_code == 2, result.output
    text = out.read_text(encoding="utf-8")
    claims = (yaml.safe_load(text) if suffix == ".yaml" else json.loads(text) if suffix == ".json"
              else [json.loads(line) for line in text.splitlines()])
    assert [c["claim_id"] for c in claims] == ["GOOD-1", "BAD-2", "GOOD-3"]
    original = yaml.safe_load(YAML_BATCH)[1]
    assert claims[1]["lines"][0]["units"] == 0
    assert {k: v for k, v in claims[1].items() if k != "lines"} == {k: v for k, v in original.items() if k != "lines"}
    assert any("BAD-2" in line and "passed through unchanged" in line for line in result.stderr.splitlines())


def test_fix_837_output_refuses_a_claim_it_cannot_write_untouched(tmp_path: Path) -> None:
    source = _copy(YAML_BATCH, tmp_path / "in.yaml")
    out = tmp_path / "out.837"
    result = runner.invoke(app, ["fix", str(source), "-o", str(out)])
    assert result.exit_code == 2
    assert not out.exists()
    assert "BAD-2" in result.stderr


def test_fix_837_refuses_to_pass_through_a_claim_that_breaks_the_guide(tmp_path: Path) -> None:
    out = tmp_path / "out.837"
    result = runner.invoke(app, ["fix", str(X12 / "broken_segment.837"), "-o", str(out)])
    assert result.exit_code == 2
    assert not out.exists()
    assert "does not validate" in result.stderr


# --- 18.7: provider NPIs from the 837P ---------------------------------------------------------

def test_837p_provider_npis_are_read_and_checked(tmp_path: Path) -> None:
    import json

    records = list(read_claims([MULTI]))
    assert records[0].claim.providers.billing == "1234567893"          # 2010AA NM109
    assert records[0].claim.providers.rendering == "1987654328"        # 2310B NM109
    assert records[1].claim.providers.rendering is None                # no 2310B: not checked
    path = _copy(FACET.read_text(encoding="utf-8").replace("XX*1987654328", "XX*1987654382"),
                 tmp_path / "claims.837")
    result = runner.invoke(app, ["check", str(path), "--format", "json", "--fail-on", "never"])
    (row,) = json.loads(result.stdout)
    npi = [f for f in row["findings"] if "npi" in f["rule"]]
    assert [(f["rule"], f["severity"], f["carc"], f["rarc"], f["lines"]) for f in npi] == [
        ("rendering-npi-invalid", "deny", "16", "N290", [1])]
    assert "1987654382" not in result.stdout


def test_837p_billing_provider_without_an_npi_is_a_finding(tmp_path: Path) -> None:
    import json

    text = FACET.read_text(encoding="utf-8").replace(
        "NM1*85*2*EXAMPLE PAIN CLINIC*****XX*1234567893~", "NM1*85*2*EXAMPLE PAIN CLINIC~")
    path = _copy(text, tmp_path / "claims.837")
    result = runner.invoke(app, ["check", str(path), "--format", "json", "--fail-on", "never"])
    rows = json.loads(result.stdout)
    rules = {(f["rule"], f["facts"].get("status")) for r in rows for f in r.get("findings", [])}
    assert ("billing-npi-invalid", "missing") in rules


# --- 18.8: payer mapping ------------------------------------------------------------------------

def test_an_unmapped_payer_id_is_a_finding_and_the_claim_is_checked_against_its_indicator() -> None:
    import json

    result = runner.invoke(app, ["check", str(MULTI), "--format", "json", "--fail-on", "never"])
    rows = {row["claim_id"]: row for row in json.loads(result.stdout)}
    unmapped = {cid: [(f["severity"], f["facts"]["payer_id"]) for f in row["findings"]
                      if f["rule"] == "payer-id-unmapped"] for cid, row in rows.items()}
    assert unmapped == {"MC-1001": [("info", "MCRJF")], "MC-1002": [("info", "MCRJF")],   # SBR09 MB
                        "CM-2001": [("warn", "EXHP01")], "CA-3001": []}                 # SBR09 CI
    (finding,) = [f for f in rows["CM-2001"]["findings"] if f["rule"] == "payer-id-unmapped"]
    assert finding["lines"] == [1, 2]
    assert "EXHP01" in finding["message"] and "payers/ids/payer_ids.yaml" in finding["fix"]
    assert rows["CM-2001"]["payer"] == "commercial" and not rows["CM-2001"].get("errors")


def test_a_payer_neither_id_nor_indicator_maps_is_one_claims_error_saying_what_to_add(tmp_path: Path) -> None:
    text = MULTI.read_text(encoding="utf-8").replace("SBR*P**GRP4471******CI~", "SBR*P**GRP4471******16~")
    records = list(read_claims([_copy(text, tmp_path / "in.837")]))
    assert [(r.claim_id, r.ok) for r in records] == [
        ("MC-1001", True), ("MC-1002", True), ("CM-2001", False), ("CA-3001", True)]
    (error,) = records[2].errors
    message = str(error)
    assert 'NM109 "EXHP01"' in message and 'SBR09 "16"' in message
    assert "payer_ids: EXHP01" in message and "claim_filing_indicators: 16" in message
    assert "payers/ids/payer_ids.yaml" in message


def test_a_mapped_payer_id_gives_no_payer_finding() -> None:
    from pain_asp.engine import Checker

    records = list(read_claims([MULTI]))
    assert records[3].claim.payer == "commercial_asc_rtlt" and records[3].claim.payer_id == "EXASC01"
    results = list(Checker().check(records[3:]))
    assert not [f for f in results[0].findings if f.rule == "payer-id-unmapped"]
