"""Careless and hostile inputs (issue 17; docs/claim-format.md, README.md): each is one claim's clear error with
its file, line and field, exit 2, no traceback, nothing quoted back, and the other claims of
the batch are still checked."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.inputs.readers import read_claims

runner = CliRunner()

CLAIM_YAML = """\
- claim_id: {claim_id}
  payer: medicare
  place_of_service: "11"
  patient: {{id: PT-SECRET-42}}
  diagnoses: [M54.16]
  lines:
    - {{code: "64483", modifiers: [RT], date: {date}, dx: [1]}}
"""


def claim_yaml(claim_id: str = "C-1", date: str = "2026-03-02") -> str:
    return CLAIM_YAML.format(claim_id=claim_id, date=date)


def good_claim(claim_id: str = "C-1") -> dict:
    return {"claim_id": claim_id, "payer": "medicare", "place_of_service": "11",
            "patient": {"id": "PT-SECRET-42"}, "diagnoses": ["M54.16"],
            "lines": [{"code": "64483", "modifiers": ["RT"], "date": "2026-03-02", "dx": [1]}]}


def check(path: Path) -> tuple[int, list[dict], str]:
    """Run ``check --format json``: exit code, results, everything printed."""
    result = runner.invoke(app, ["check", str(path), "--format", "json"])
    assert "Traceback" not in result.output + result.stderr, result.stderr
    return result.exit_code, json.loads(result.stdout), result.stdout + result.stderr


def statuses(results: list[dict]) -> list[str]:
    """"error", or "checked" for a claim that was read and checked (whatever its findings)."""
    return ["error" if r["status"] == "error" else "checked" for r in results]


def errors_of(path: Path) -> list[tuple[str | None, str, int | None]]:
    """(claim id, field, line) of every error of every record read from ``path``."""
    return [(e.claim_id, e.field, e.line) for r in read_claims([path]) for e in r.errors]


# --- point 4: YAML 1.1 surprises ---------------------------------------------------------

def test_zero_padded_ids_and_codes_keep_their_text(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(claim_yaml("000123").replace("PT-SECRET-42", "0004567").replace('"64483"', "01992")
                    .replace("[RT]", "[50]"))
    [record] = read_claims([path])
    assert record.errors == []
    assert record.claim is not None
    assert (record.claim.claim_id, record.claim.patient.id) == ("000123", "0004567")
    assert (record.claim.lines[0].code, record.claim.lines[0].modifiers) == ("01992", ["50"])


def test_unquoted_yaml_1_1_words_stay_text(tmp_path: Path) -> None:
    """``yes``, ``0x1F``, ``1_000`` and sexagesimal ``1:30`` are text in YAML 1.2: a field that
    wants a boolean or a number says so instead of reading a surprise value."""
    path = tmp_path / "claims.yaml"
    path.write_text(claim_yaml() + "  clinical: {care_plan: yes}\n")
    assert errors_of(path) == [("C-1", "clinical.care_plan", 8)]
    path.write_text(claim_yaml().replace("dx: [1]", "dx: [1], units: 1_000"))
    assert errors_of(path) == [("C-1", "lines[1].units", 7)]


def test_duplicate_key_is_that_claims_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(claim_yaml("C-1") + claim_yaml("C-2").replace("  payer: medicare\n",
                                                               "  payer: medicare\n  payer: commercial\n")
                    + claim_yaml("C-3"))
    records = list(read_claims([path]))
    assert [r.ok for r in records] == [True, False, True]
    [error] = records[1].errors
    assert error.line == 10 and "each key once" in error.expected and "line 9" in error.expected


def test_impossible_unquoted_date_is_one_fields_error(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(claim_yaml("C-1") + claim_yaml("C-2", date="2026-02-30"))
    code, results, _ = check(path)
    assert code == 2
    assert statuses(results) == ["checked", "error"]
    [error] = results[1]["errors"]
    assert (error["claim_id"], error["field"], error["line"]) == ("C-2", "lines[1].date", 14)
    assert "real calendar date" in error["expected"] and "YYYY-MM-DD" in error["expected"]


# --- point 5: bounded input --------------------------------------------------------------

BOMB = """\
- claim_id: C-2
  payer: medicare
  place_of_service: "11"
  patient: {id: P}
  lines: [{code: "64483", date: 2026-03-02}]
  clinical:
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_alias_bomb_is_one_claims_error_and_fast(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(claim_yaml("C-1") + BOMB + claim_yaml("C-3"))
    start = time.monotonic()
    code, results, out = check(path)
    assert time.monotonic() - start < 10
    assert code == 2
    assert statuses(results) == ["checked", "error", "checked"]
    [error] = results[1]["errors"]
    assert 8 <= error["line"] <= 22 and "aliases are expanded" in error["expected"]


def test_recursive_alias_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(claim_yaml("C-1") + "- &loop [*loop]\n")
    code, results, _ = check(path)
    assert code == 2 and statuses(results) == ["checked", "error"]
    assert "recursive alias" in results[1]["errors"][0]["expected"]


def test_deep_json_line_is_that_lines_error(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    deep = "[" * 5000 + "]" * 5000
    medium = json.dumps({**good_claim("D"), "clinical": {"x": json.loads("[" * 200 + "]" * 200)}})
    path.write_text("\n".join([json.dumps(good_claim("A")), deep, json.dumps(good_claim("B")), medium,
                               json.dumps(good_claim("C"))]) + "\n")
    code, results, _ = check(path)
    assert code == 2
    assert [r["claim_id"] for r in results] == ["A", None, "B", "D", "C"]
    assert statuses(results) == ["checked", "error", "checked", "error", "checked"]
    assert results[1]["errors"][0]["line"] == 2 and "levels of nesting" in results[1]["errors"][0]["expected"]
    assert results[3]["errors"][0]["line"] == 4 and "levels of nesting" in results[3]["errors"][0]["expected"]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deep_file_is_an_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 5000 + "]" * 5000)
    code, results, _ = check(path)
    assert code == 2 and results[0]["status"] == "error"
    assert "nesting" in results[0]["errors"][0]["expected"]


def test_json_lines_line_over_the_size_limit(tmp_path: Path) -> None:
    from pain_asp.inputs.readers import MAX_LINE_BYTES

    path = tmp_path / "batch.jsonl"
    huge = json.dumps({**good_claim("H"), "claim_id": "x" * MAX_LINE_BYTES})
    path.write_text("\n".join([json.dumps(good_claim("A")), huge, json.dumps(good_claim("B"))]) + "\n")
    records = list(read_claims([path]))
    assert [r.ok for r in records] == [True, False, True]
    assert records[1].errors[0].line == 2 and "at most 1,048,576 bytes" in records[1].errors[0].expected


def test_file_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pain_asp.inputs.readers as readers

    monkeypatch.setattr(readers, "MAX_FILE_BYTES", 1 << 10)
    path = tmp_path / "claims.json"
    path.write_text(json.dumps([good_claim(f"C-{n}") for n in range(20)]))
    [record] = read_claims([path])
    assert "at most 1,024 bytes" in record.errors[0].expected and "JSON Lines" in record.errors[0].expected


# --- point 11: errors describe input, never quote it --------------------------------------

@pytest.mark.parametrize("name, text", [
    ("list.yaml", claim_yaml("C-1") + "- Jane Doe, DOB 1950-01-01, SSN 123-45-6789\n"),
    ("note.json", json.dumps("Jane Doe, DOB 1950-01-01, SSN 123-45-6789")),
    ("row.jsonl", json.dumps(["Jane Doe", "1950-01-01"]) + "\n"),
    ("field.yaml", claim_yaml("C-1").replace("PT-SECRET-42", "Jane Doe").replace('"11"', "Jane Doe 1950-01-01")),
    ("key.yaml", claim_yaml("C-1") + "  Jane Doe 1950-01-01: x\n"),
])
def test_errors_describe_input_never_quote_it(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    code, results, out = check(path)
    assert code == 2
    for secret in ("Jane", "Doe", "1950", "123-45", "PT-SECRET"):
        assert secret not in out
    assert any(e["value"].startswith(("text of", "a list of")) or "a key of" in e["expected"]
               for r in results for e in r.get("errors", []))


# --- point 15: small ones -------------------------------------------------------------------

def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    bom = "\ufeff"
    (tmp_path / "a.json").write_text(bom + json.dumps(good_claim("A")), encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(bom + json.dumps(good_claim("B")) + "\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(bom + claim_yaml("C"), encoding="utf-8")
    code, results, _ = check(tmp_path)
    assert code != 2 and [r["claim_id"] for r in results] == ["A", "B", "C"]
    assert statuses(results) == ["checked"] * 3


def test_type_errors_are_said_in_words(tmp_path: Path) -> None:
    path = tmp_path / "claims.json"
    claim = good_claim()
    claim["lines"][0]["documented"] = {"relief_pct": "lots"}
    claim["clinical"] = {"cpm_minutes": [1]}
    path.write_text(json.dumps([claim]))
    code, results, out = check(path)
    assert code == 2 and "expected expected" not in out and "`" not in out
    [error] = results[0]["errors"]
    assert error["expected"] == "a whole number or null" and error["value"] == "text of 4 characters"


# --- point 7: implausible values ------------------------------------------------------------

def _with(change) -> dict:  # noqa: ANN001
    claim = good_claim("C-7")
    claim["patient"]["birth_date"] = "1950-01-01"
    change(claim)
    return claim


def _future(days: int) -> str:
    import datetime as dt

    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


IMPLAUSIBLE = {
    "service in 2099": (lambda c: c["lines"][0].update(date="2099-03-02"), "lines[1].date", "2015-10-01"),
    "service in 1800": (lambda c: c["lines"][0].update(date="1800-03-02"), "lines[1].date", "2015-10-01"),
    "service before ICD-10": (lambda c: c["lines"][0].update(date="2015-09-30"), "lines[1].date", "ICD-10"),
    "service over a year ahead": (lambda c: c["lines"][0].update(date=_future(400)), "lines[1].date",
                                  "a year from today"),
    "born after the service": (lambda c: c["patient"].update(birth_date="2026-03-03"), "patient.birth_date",
                               "first date of service"),
    "born in the future": (lambda c: (c["lines"][0].update(date=_future(30)),
                                      c["patient"].update(birth_date=_future(10))),
                           "patient.birth_date", "not in the future"),
    "born in 1800": (lambda c: c["patient"].update(birth_date="1800-01-01"), "patient.birth_date", "1900-01-01"),
    "history after the claim": (lambda c: c.update(history=[{"date": "2025-01-01", "code": "64483"},
                                                            {"date": "2026-03-03", "code": "64483"}]),
                                "history[2].date", "on or before the claim's last date of service"),
    "history in 1800": (lambda c: c.update(history=[{"date": "1800-01-01", "code": "64483"}]),
                        "history[1].date", "1900-01-01"),
    "charge 1e300": (lambda c: c["lines"][0].update(charge=1e300), "lines[1].charge", "99,999,999.99"),
    "charge over the 837P maximum": (lambda c: c["lines"][0].update(charge=100_000_000), "lines[1].charge",
                                     "837P"),
    "negative charge": (lambda c: c["lines"][0].update(charge=-5), "lines[1].charge", "from 0.00"),
    "NaN charge": (lambda c: c["lines"][0].update(charge="NaN"), "lines[1].charge", "from 0.00"),
    "infinite charge": (lambda c: c["lines"][0].update(charge="Infinity"), "lines[1].charge", "from 0.00"),
    "place of service 00": (lambda c: c.update(place_of_service="00"), "place_of_service", "assigned"),
    "unassigned place of service": (lambda c: c.update(place_of_service="30"), "place_of_service", "assigned"),
    "modifier twice": (lambda c: c["lines"][0].update(modifiers=["RT", "rt"]), "lines[1].modifiers",
                       "each modifier once"),
}


@pytest.mark.parametrize("name", sorted(IMPLAUSIBLE))
def test_implausible_value_is_a_field_error(tmp_path: Path, name: str) -> None:
    change, field, expected = IMPLAUSIBLE[name]
    path = tmp_path / "claims.json"
    path.write_text(json.dumps([good_claim("C-0"), _with(change), good_claim("C-2")]))
    code, results, out = check(path)
    assert code == 2 and statuses(results) == ["checked", "error", "checked"]
    [error] = results[1]["errors"]
    assert (error["claim_id"], error["field"]) == ("C-7", field)
    assert expected in error["expected"], error["expected"]
    assert "1950-01-01" not in out


def test_implausible_value_in_yaml_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(claim_yaml("C-1", date="2099-03-02") + "  history:\n    - {date: 2026-04-01, code: \"64483\"}\n")
    assert errors_of(path) == [("C-1", "lines[1].date", 7)]
    path.write_text(claim_yaml("C-1") + "  history:\n    - {date: 2026-04-01, code: \"64483\"}\n")
    assert errors_of(path) == [("C-1", "history[1].date", 9)]


def test_largest_837p_amount_is_accepted() -> None:
    from pain_asp.models import parse_claim

    claim = good_claim()
    claim["lines"][0]["charge"] = "99999999.99"
    assert str(parse_claim(claim).lines[0].charge) == "99999999.99"


# --- point 12: payer files are checked up front ----------------------------------------------

BROKEN_PAYER = "id: broken\nname: Broken\nparameters:\n  esi_frequency:\n    value: {max_sessions: 3}\n" \
               "    source: {document: POL-1, confidence: payer_policy}\n"


@pytest.mark.parametrize("used", [False, True])
def test_broken_payer_file_fails_the_run_up_front(tmp_path: Path, used: bool) -> None:
    payers = tmp_path / "payers"
    payers.mkdir()
    (payers / "broken.yaml").write_text(BROKEN_PAYER)
    claims = [good_claim("C-1"), good_claim("C-2")]
    if used:
        claims[1]["payer"] = "broken"
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    result = runner.invoke(app, ["check", str(path), "--payer-dir", str(payers), "--format", "json"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stdout == ""
    assert "broken.yaml:5: parameters.esi_frequency.value: also window_months" in result.stderr


def test_payer_file_with_a_repeated_key_names_its_line(tmp_path: Path) -> None:
    payers = tmp_path / "payers"
    payers.mkdir()
    (payers / "twice.yaml").write_text("id: twice\nname: Twice\nname: Again\n")
    path = tmp_path / "claims.json"
    path.write_text(json.dumps([good_claim()]))
    result = runner.invoke(app, ["check", str(path), "--payer-dir", str(payers)])
    assert result.exit_code == 2 and "twice.yaml:3: each key once" in result.stderr


# --- point 15: payers list and show ------------------------------------------------------------

def test_payers_list_and_show_read_as_text() -> None:
    listing = runner.invoke(app, ["payers", "list"]).stdout
    assert "(example) (example)" not in listing
    assert all(("example" in line.lower()) == line.startswith("commercial") for line in listing.splitlines())
    shown = runner.invoke(app, ["payers", "show", "commercial_strict_esi", "--date", "2026-03-02"]).stdout
    assert "1900-01-01" not in shown and "since the start" in shown
    assert "esi_frequency = {max_sessions: 3, window_months: 12}" in shown
    assert '"' not in shown and "(3, 12)" not in shown


# --- more careless and hostile inputs ----------------------------------------------------------

def _claim_with(**changes) -> dict:  # noqa: ANN003
    claim = good_claim("C-1")
    claim["lines"][0].update(changes.pop("line", {}))
    claim.update(changes)
    return claim


_HEAD = "claim_id: C-1\npayer: medicare\nplace_of_service: '11'\npatient: {id: P}\n"
HOSTILE: dict[str, tuple[str, bytes | str, str]] = {
    "fullwidth digits in a code": ("a.json", json.dumps([_claim_with(line={"code": "６４４８３"})]), "CPT code"),
    "Cyrillic letter in a modifier": ("a.json", json.dumps([_claim_with(line={"modifiers": ["R\u0422"]})]),
                                      "two-character modifiers"),
    "Cyrillic letter in a diagnosis": ("a.json", json.dumps([_claim_with(diagnoses=["\u041c54.16"])]), "ICD-10-CM"),
    "Cyrillic letter in a payer id": ("a.json", json.dumps([_claim_with(payer="med\u0456care")]), "payer policy id"),
    "claim id as a mapping": ("a.json", json.dumps([_claim_with(claim_id={"SECRET": 1})]), "text"),
    "claim id of 100,000 characters": ("a.json", json.dumps([_claim_with(claim_id="SECRET" * 20000)]),
                                       "at most 64 characters"),
    "code of 100,000 characters": ("a.json", json.dumps([_claim_with(line={"code": "6" * 100000})]), "CPT code"),
    "20,000 history entries": ("a.json", json.dumps([_claim_with(
        history=[{"date": "2025-01-01", "code": "64483"}] * 20000)]), "at most 1000 item(s)"),
    "100,000 levels on a line": ("a.json", json.dumps([_claim_with(line={"documented": {"levels": ["L4-L5"] * 100000}})]),
                                 "at most 50 item(s)"),
    "a number of 5,000 digits (JSON)": ("a.json", json.dumps([_claim_with()]).replace('"dx": [1]', '"units": ' + "9" * 5000),
                                        "4,300 digits"),
    "a number of 5,000 digits (YAML)": ("a.yaml", _HEAD + "lines: [{code: '64483', date: 2026-03-02, units: "
                                        + "9" * 5000 + "}]\n", "4,300 digits"),
    "units 1e400 and NaN": ("a.json", json.dumps([_claim_with(line={"units": 1e400})]), "whole number"),
    "units as true": ("a.json", json.dumps([_claim_with(line={"units": True})]), "whole number"),
    "date with a time": ("a.json", json.dumps([_claim_with(line={"date": "2026-03-02T10:00:00"})]), "YYYY-MM-DD"),
    "date as a number": ("a.json", json.dumps([_claim_with(line={"date": 20260302})]), "YYYY-MM-DD"),
    "repeated key in JSON": ("a.json", json.dumps([_claim_with()]).replace('"payer": "medicare"',
                                                                           '"payer": "medicare", "payer": "x"'),
                             "each key once"),
    "tab indentation": ("a.yaml", _HEAD + "lines:\n\t- code: '64483'\n", "valid YAML (line 6"),
    "NUL byte in YAML": ("a.yaml", _HEAD.replace("C-1", "C-1\x00SECRET"), "control characters"),
    "non-UTF-8 YAML": ("a.yaml", (_HEAD + "note: caf\xe9 SECRET\n").encode("latin-1"), "UTF-8"),
    "UTF-16 JSON": ("a.json", json.dumps(good_claim()).encode("utf-16"), "UTF-8"),
    "Python tag": ("a.yaml", "claim_id: !!python/object/apply:os.system ['echo SECRET']\n", "standard YAML tags"),
    "list as a key": ("a.yaml", "? [SECRET, b]\n: x\nclaim_id: C-1\n", "keys that are text"),
    "number as a key": ("a.yaml", _HEAD + "lines: [{code: '64483', date: 2026-03-02}]\n1: SECRET\n", "keys that are text"),
    "bytes as an id": ("a.yaml", _HEAD.replace("C-1", "!!binary U0VDUkVU") + "lines: [{code: '64483', date: 2026-03-02}]\n",
                       "text"),
    "merge key": ("a.yaml", "base: &b {payer: medicare}\n<<: *b\nclaim_id: C-1\n", "no such key"),
    "bare number document": ("a.yaml", "42\n", "a claim mapping"),
    "JSON Lines of other shapes": ("a.jsonl", '"SECRET"\n[1, 2]\nnull\n', "a claim mapping"),
    "place of service as a number 0": ("a.json", json.dumps([_claim_with(place_of_service=0)]), "place-of-service"),
    # A JSON escape of half a surrogate pair decodes to no character: it cannot be written
    # out as UTF-8 (text output, hashing a claim id in a batch's index). YAML's scanner refuses it.
    "half a surrogate pair in a claim id (JSON)": (
        "a.json", json.dumps([_claim_with(claim_id="C-SECRET-\ud800")]), "Unicode text"),
    "half a surrogate pair in a patient id (JSON Lines)": (
        "a.jsonl", json.dumps(_claim_with(patient={"id": "SECRET\udfff"})) + "\n", "Unicode text"),
    "half a surrogate pair in a YAML string": (
        "a.yaml", _HEAD.replace("C-1", '"C-1\\ud800SECRET"') + "lines: [{code: '64483', date: 2026-03-02}]\n",
        "valid YAML (line 1"),
    "sex as a word": ("a.json", json.dumps([_claim_with(patient={"id": "P", "sex": "SECRET"})]), "one of 'F', 'M', 'U'"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_a_clear_error(tmp_path: Path, name: str) -> None:
    file_name, content, expected = HOSTILE[name]
    path = tmp_path / file_name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    code, results, out = check(path)
    assert code == 2
    assert "SECRET" not in out
    errors = [e for r in results for e in r.get("errors", [])]
    assert errors and any(expected in e["message"] for e in errors), [e["message"] for e in errors]


@pytest.mark.parametrize("name, content", [
    ("crlf.yaml", _HEAD.replace("\n", "\r\n") + "lines:\r\n  - {code: '64483', date: 2026-03-02}\r\n"),
    ("crlf.jsonl", json.dumps(good_claim("A")) + "\r\n" + json.dumps(good_claim("B")) + "\r\n"),
    ("explicit.yaml", _HEAD + "lines: [{code: !!str 64483, date: !!timestamp 2026-03-02}]\n"),
    ("anchors.yaml", claim_yaml("A").replace("patient: {id: PT-SECRET-42}", "patient: &p {id: P}")
     + claim_yaml("B").replace("patient: {id: PT-SECRET-42}", "patient: *p")),
])
def test_harmless_variants_are_read(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    records = list(read_claims([path]))
    assert records and all(r.ok for r in records), [str(e) for r in records for e in r.errors]


def test_payer_file_with_an_impossible_since_date(tmp_path: Path) -> None:
    from pain_asp.errors import PayerError
    from pain_asp.kb import rule_catalog
    from pain_asp.payers import PayerRegistry
    from pain_asp.resources import payers_dir

    (tmp_path / "p1.yaml").write_text("id: p1\nname: P\nparameters:\n  esi_min_interval_days:\n"
                                      "    - since: 2026-02-30\n      value: 14\n"
                                      "      source: {document: POL-1, confidence: payer_policy}\n")
    with pytest.raises(PayerError) as info:
        PayerRegistry([payers_dir(), tmp_path], set(rule_catalog())).get("p1")
    assert info.value.line == 5 and info.value.expected == "a real calendar date (YYYY-MM-DD)"


@pytest.mark.parametrize("text, expected", [
    ("[" * 5000 + "]" * 5000, "levels of nesting"),
    ('{"payer": "medicare", "payer": "medicare"}', "each key once"),
    ("\ufeff" + '{"payer": "medicare"}', "place_of_service"),
])
def test_encounter_json_is_read_like_claims(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "encounter.json"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["code", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert expected in result.stderr, result.stderr


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes need POSIX")
def test_folder_with_a_named_pipe_and_a_folder_named_like_a_claim_file(tmp_path: Path) -> None:
    import os

    (tmp_path / "a.json").write_text(json.dumps(good_claim("A")))
    os.mkfifo(tmp_path / "pipe.json")  # reading it would block for ever
    (tmp_path / "folder.yaml").mkdir()
    assert [r.claim_id for r in read_claims([tmp_path])] == ["A"]


# --- report reads results and claim files as hostile input too ------------------------------

_RESULT = json.dumps({"status": "clean", "claim_id": "A", "findings": []})
_TOO_DEEP = "[" * 5000 + "]" * 5000
_TOO_LONG_NUMBER = "9" * 5000  # int() refuses more than 4,300 digits


@pytest.mark.parametrize("name, content, readable", [
    # whether a file holds results is decided from its first record: one that does not parse
    # makes it a claim file, read (and refused) as such
    ("deep-first.jsonl", _TOO_DEEP + "\n" + json.dumps(good_claim()) + "\n", True),
    ("long-number-first.jsonl", '{"claim_id": ' + _TOO_LONG_NUMBER + "}\n" + json.dumps(good_claim()) + "\n", True),
    ("deep.json", "[" + _TOO_DEEP + "]", False),
    ("long-number.json", '[{"claim_id": ' + _TOO_LONG_NUMBER + "}]", False),
    ("deep-results.json", "[" + _RESULT + ", " + _TOO_DEEP + "]", False),
    # a results record that does not parse is listed as such
    ("long-number.results.jsonl", _RESULT + '\n{"status": "clean", "findings": [], "position": '
     + _TOO_LONG_NUMBER + "}\n", True),
    ("surrogate.results.jsonl", _RESULT + "\n" + json.dumps(
        {"status": "deny", "claim_id": "SECRET\ud800", "payer": "p\udfff",
         "findings": [{"rule": "r\ud800", "severity": "deny", "message": "SECRET\ud800"}]}) + "\n", True),
])
def test_report_on_hostile_json_is_an_error_not_a_traceback(tmp_path: Path, name: str, content: str,
                                                            readable: bool) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    html = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(path), "-o", str(html)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2 and "SECRET" not in result.stderr, result.stderr
    assert html.exists() == readable  # written when a claim or result was read


def test_report_says_unreadable_results_without_terminal_control(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"status": "error", "errors": [{"message": "\x1b[2J\nforged line"}]}) + "\n")
    result = runner.invoke(app, ["report", str(path), "-o", str(tmp_path / "report.html")])
    assert result.exit_code == 2 and "\x1b" not in result.stderr and "\nforged" not in result.stderr, result.stderr


@pytest.mark.parametrize("suffix", [".jsonl", ".837"])
def test_fix_names_an_unreadable_claim_without_terminal_control(tmp_path: Path, suffix: str) -> None:
    # fix -o names each claim it passes through unchanged (or cannot pass into an 837P) on stderr
    claim = good_claim("C\x1b[2J\nforged line")
    claim["lines"][0]["units"] = 0
    path = tmp_path / "claims.jsonl"
    path.write_text(json.dumps(claim) + "\n")
    result = runner.invoke(app, ["fix", str(path), "-o", str(tmp_path / f"fixed{suffix}")])
    assert result.exit_code == 2 and "claim C" in result.stderr
    assert "\x1b" not in result.stderr and "\nforged" not in result.stderr, result.stderr


def _esi(claim_id: str, patient_id: str, date: str) -> dict:
    return {"claim_id": claim_id, "payer": "medicare", "place_of_service": "11", "patient": {"id": patient_id},
            "diagnoses": ["M54.16"], "lines": [{"code": "62323", "date": date, "dx": [1], "documented": {
                "imaging": "fluoroscopy", "levels": ["L4-L5"], "purpose": "therapeutic"}}]}


def test_a_patient_id_with_surrounding_white_space_is_the_same_patient(tmp_path: Path) -> None:
    # The history store compares patient ids without surrounding white space; the batch
    # compared them as written, so a repeat injection a week later came back clean when one
    # claim's patient id had a trailing space (a false clean).
    path = tmp_path / "claims.jsonl"
    claims = [_esi("A", "P1", "2025-03-01"), _esi("B", "P1", "2025-03-08"),
              _esi("C", "P2", "2025-03-01"), _esi("D", "P2 ", "2025-03-08"),
              _esi("E", "P3", "2025-03-01"), _esi("F", "\tP3\u00a0", "2025-03-08")]
    path.write_text("".join(json.dumps(claim) + "\n" for claim in claims))
    _, results, _ = check(path)
    repeat = results[1]["findings"]
    assert repeat and results[3]["findings"] == results[5]["findings"] == repeat


@pytest.mark.parametrize("bad", [
    '{"claim_id": "SECRET", "claim_id": "B"}',          # a repeated key
    '{"claim_id": "B", "units": ' + "9" * 5000 + "}",  # a number too long
])
def test_one_bad_claim_of_a_json_array_spoils_only_itself(tmp_path: Path, bad: str) -> None:
    # The file is valid JSON; the trouble is in its second claim, which alone is refused (the
    # whole file was one error record: the other claims were not checked, and the error named
    # no claim). Half a surrogate pair, or nesting past the limit, still make the whole file
    # an error (the array is not cut apart then).
    path = tmp_path / "batch.json"
    path.write_text("[" + json.dumps(good_claim("A")) + ",\n" + bad + ",\n" + json.dumps(good_claim("C")) + "]")
    code, results, out = check(path)
    assert code == 2 and "SECRET" not in out
    assert [(r["position"], r["status"] == "error") for r in results] == [(1, False), (2, True), (3, False)]


@pytest.mark.skipif(__import__("os").name == "nt", reason="Windows file names hold no control characters")
def test_a_skipped_file_is_named_without_terminal_control(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(good_claim("A")))
    (tmp_path / "notes\x1b[2J\nforged line.txt").write_text("x")
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert "skipped" in result.stderr
    assert "\x1b" not in result.stderr and "\nforged" not in result.stderr, result.stderr
