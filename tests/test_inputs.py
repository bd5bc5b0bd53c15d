"""Bad input (docs/claim-format.md, README.md): every error names file, claim id, field, value and what is expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.cli import app

runner = CliRunner()


def good_claim(claim_id: str = "C-1") -> dict:
    return {
        "claim_id": claim_id, "payer": "medicare", "place_of_service": "11",
        "patient": {"id": "PT-SECRET-42", "birth_date": "1950-01-01"},
        "diagnoses": ["M54.16"],
        "lines": [{"code": "64483", "modifiers": ["RT"], "date": "2026-03-02", "dx": [1],
                   "documented": {"imaging": "fluoroscopy", "side": "right", "levels": ["L5-S1"],
                                  "purpose": "therapeutic"}}],
        "clinical": {"pain_duration_months": 3, "conservative_care_weeks": 6},
    }


def run_check(tmp_path: Path, claims: object, name: str = "claims.json") -> tuple[int, str, str]:
    path = tmp_path / name
    path.write_text(json.dumps(claims) if name.endswith(".json") else str(claims))
    result = runner.invoke(app, ["check", str(path), "--format", "json"])
    return result.exit_code, result.stdout, result.stderr


def mutate(change) -> dict:  # noqa: ANN001
    claim = good_claim()
    change(claim)
    return claim


BAD = {
    "missing claim_id": (lambda c: c.pop("claim_id"), "claim_id", "required"),
    "missing lines": (lambda c: c.pop("lines"), "lines", "required"),
    "malformed code": (lambda c: c["lines"][0].update(code="6448X"), "lines[1].code", "CPT"),
    "units below 1": (lambda c: c["lines"][0].update(units=0), "lines[1].units", "from 1 to 999"),
    "pointer past list": (lambda c: c["lines"][0].update(dx=[2]), "lines[1].dx", "diagnosis list"),
    "too many lines": (lambda c: c.update(lines=c["lines"] * 51), "lines", "at most 50"),
    "too many diagnoses": (lambda c: c.update(diagnoses=["M54.16"] * 13), "diagnoses", "at most 12"),
    "too many modifiers": (lambda c: c["lines"][0].update(modifiers=["RT", "KX", "59", "XS", "76"]),
                           "lines[1].modifiers", "at most 4"),
    "unknown payer": (lambda c: c.update(payer="medicaer"), "payer", "did you mean 'medicare'"),
    "unknown key": (lambda c: c["lines"][0].update(modifers=["RT"]), "lines[1].modifers",
                    "did you mean 'modifiers'"),
    "bad side": (lambda c: c["lines"][0]["documented"].update(side="both"), "lines[1].documented.side",
                 "one of 'left', 'right', 'bilateral'"),
    "bad level": (lambda c: c["lines"][0]["documented"].update(levels=["L4-L6"]),
                  "lines[1].documented.levels", "adjacent segments"),
    "no such vertebra": (lambda c: c["lines"][0]["documented"].update(levels=["L6"]),
                         "lines[1].documented.levels", "vertebral bodies"),
    "thirteenth thoracic": (lambda c: c["lines"][0]["documented"].update(levels=["T13"]),
                            "lines[1].documented.levels", "vertebral bodies"),
    "sacral body below S1": (lambda c: c["lines"][0]["documented"].update(levels=["S2"]),
                             "lines[1].documented.levels", "vertebral bodies"),
    "level range": (lambda c: c["lines"][0]["documented"].update(levels=["L3-S1"]),
                    "lines[1].documented.levels", "vertebral bodies"),
    "history body": (lambda c: c.update(history=[{"date": "2025-05-04", "code": "64628", "levels": ["L9"]}]),
                     "history[1].levels", "vertebral bodies"),
    "bad diagnosis": (lambda c: c.update(diagnoses=["54.16"]), "diagnoses[1]", "ICD-10-CM"),
    "bad date": (lambda c: c["lines"][0].update(date="2026-13-01"), "lines[1].date", "YYYY-MM-DD"),
    "bad place of service": (lambda c: c.update(place_of_service="ASC"), "place_of_service", "place-of-service"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_claim_is_reported_precisely_and_batch_continues(tmp_path: Path, name: str) -> None:
    change, field, expected = BAD[name]
    bad = mutate(change)
    # The good claims are other patients': one patient's claims billing one service on one
    # date would be suspect duplicates of each other (duplicate-across-claims).
    others = [{**good_claim(claim_id), "patient": {"id": patient, "birth_date": "1950-01-01"}}
              for claim_id, patient in (("C-0", "PT-SECRET-40"), ("C-2", "PT-SECRET-44"))]
    code, out, err = run_check(tmp_path, [others[0], bad, others[1]])
    assert code == 2
    results = json.loads(out)
    assert [r["status"] for r in results] == ["clean", "error", "clean"]
    error = results[1]["errors"][0]
    assert str(tmp_path / "claims.json") == error["file"]
    assert error["field"] == field
    assert expected in error["expected"] or expected in error["message"]
    if "claim_id" in bad:
        assert error["claim_id"] == "C-1"
    assert "Traceback" not in out + err
    assert "PT-SECRET-42" not in out + err and "1950-01-01" not in out + err


def test_patient_data_is_never_echoed(tmp_path: Path) -> None:
    bad = mutate(lambda c: c["patient"].update(birth_date="not a date"))
    code, out, err = run_check(tmp_path, bad)
    assert code == 2
    assert "not a date" not in out + err
    assert json.loads(out)[0]["errors"][0]["field"] == "patient.birth_date"


def test_duplicate_claim_id_in_batch(tmp_path: Path) -> None:
    code, out, _ = run_check(tmp_path, [good_claim("C-1"), good_claim("C-1")])
    assert code == 2
    results = json.loads(out)
    assert results[0]["status"] == "clean"
    assert results[1]["errors"][0]["field"] == "claim_id"
    assert "unique" in results[1]["errors"][0]["expected"]


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"claim_id": "C-1",\n "payer": }')
    result = runner.invoke(app, ["check", str(path), "--format", "json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)[0]["errors"][0]
    assert "line 2" in error["expected"] and "Traceback" not in result.output


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("claim_id: C-1\npayer: [medicare\n")
    result = runner.invoke(app, ["check", str(path), "--format", "json"])
    assert result.exit_code == 2
    assert "valid YAML (line" in json.loads(result.stdout)[0]["errors"][0]["expected"]


def test_json_lines_bad_line_does_not_stop_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps(good_claim("A")) + "\n{not json\n" + json.dumps(good_claim("B")) + "\n")
    result = runner.invoke(app, ["check", str(path), "--format", "jsonl"])
    assert result.exit_code == 2
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["claim_id"] for r in rows] == ["A", None, "B"]
    assert rows[1]["errors"][0]["line"] == 2 and "batch.jsonl:2" in rows[1]["errors"][0]["message"]


def test_yaml_and_json_are_equivalent(tmp_path: Path) -> None:
    import yaml

    claims = [good_claim("Y-1")]
    claims[0]["lines"].append({"code": "77003", "date": "2026-03-02", "dx": [1]})
    (tmp_path / "a.json").write_text(json.dumps(claims))
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(claims))
    outputs = []
    for name in ("a.json", "a.yaml"):
        result = runner.invoke(app, ["check", str(tmp_path / name), "--format", "json"])
        outputs.append([{k: v for k, v in r.items() if k != "file"} for r in json.loads(result.stdout)])
    assert outputs[0] == outputs[1]
    assert outputs[0][0]["findings"], "the 77003 line must be found in both"


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_whole_numbers_in_text_fields_are_read_as_text(tmp_path: Path) -> None:
    """YAML reads 64483, 50, 11 or 1234 as numbers (and a JSON writer may too): codes,
    modifiers, place of service, ids and authorization numbers are text, read the same as
    the quoted claim; a claim with numbers and a real error still names the real error."""
    from pain_asp.models import parse_claim

    numeric = good_claim()
    numeric.update(claim_id=1234, place_of_service=11, prior_authorization=998877,
                   patient={"id": 42, "birth_date": "1950-01-01"})
    numeric["lines"][0].update(code=64483, modifiers=[50])
    numeric["history"] = [{"date": "2025-10-01", "code": 64483, "modifiers": [50]}]
    quoted = good_claim("1234")
    quoted.update(prior_authorization="998877", patient={"id": "42", "birth_date": "1950-01-01"})
    quoted["lines"][0].update(modifiers=["50"])
    quoted["history"] = [{"date": "2025-10-01", "code": "64483", "modifiers": ["50"]}]
    assert parse_claim(numeric) == parse_claim(quoted)
    assert parse_claim(numeric).lines[0].code == "64483" and parse_claim(numeric).place_of_service == "11"
    numeric["lines"][0]["date"] = "2026-13-01"
    code, out, _ = run_check(tmp_path, [numeric])
    assert code == 2
    errors = json.loads(out)[0]["errors"]
    assert [(e["claim_id"], e["field"], e["value"]) for e in errors] == [("1234", "lines[1].date", "text of 10 characters")]


@pytest.mark.parametrize("levels", [["T12"], ["L1", "L2"], ["S1"], ["l5"], ["T12", "L1-L2"]])
def test_vertebral_bodies_are_levels(tmp_path: Path, levels: list[str]) -> None:
    """Vertebral augmentation and basivertebral ablation treat vertebral bodies: a single
    segment is a level, as an interspace is."""
    claim = good_claim()
    claim["lines"][0]["documented"]["levels"] = levels
    code, out, err = run_check(tmp_path, [claim])
    assert code in (0, 1)
    assert json.loads(out)[0]["status"] != "error"
