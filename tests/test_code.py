"""`pain-asp code`: description -> code set pairs, the reader's refusals, the command (docs/encounter-format.md).

The pairs in ``tests/code_pairs.yaml`` are written from the primary documents each names
in its ``source``; every pair is coded and checked, and its lines and deny findings must match.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.inputs.encounter import (
    Encounter,
    encounter_format_markdown,
    encounter_schema,
    parse_encounter,
)
from pain_asp.inputs.procedure_text import TextError, read_procedure_text
from pain_asp.models import as_dict, parse_claim
from pain_asp.modes.code import Coder, CodingError

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
PAIRS = yaml.safe_load((HERE / "code_pairs.yaml").read_text(encoding="utf-8"))
runner = CliRunner()


@pytest.fixture(scope="module")
def coder() -> Coder:
    return Coder()


def _shown(line: Any, with_dx: bool) -> str:
    text = line.code + "".join(f"-{m}" for m in line.modifiers) + f" x{line.units}"
    return text + (" dx" + ",".join(map(str, line.dx)) if with_dx else "")


def _encounter(pair: dict[str, Any]) -> tuple[Encounter, Any]:
    reading = None
    if "text" in pair:
        reading = read_procedure_text(pair["text"])
        procedures = [as_dict(p) for p in reading.procedures]
    else:
        procedures = pair["procedures"]
    raw = {"payer": pair["payer"], "place_of_service": pair["pos"],
           "date": str(pair.get("date", "2026-03-02")), "diagnoses": pair.get("dx", []),
           "procedures": procedures}
    for key in ("clinical", "prior_authorization", "history"):
        if key in pair:
            raw[key] = pair[key]
    return parse_encounter(json.loads(json.dumps(raw, default=str))), reading


def test_there_are_enough_pairs_across_families_and_payers() -> None:
    assert len(PAIRS) >= 60
    assert len({p["id"] for p in PAIRS}) == len(PAIRS)
    assert {p["payer"] for p in PAIRS} >= {"medicare", "commercial", "commercial_asc_rtlt",
                                           "commercial_strict_esi", "commercial_prior_auth"}
    lines = [line for p in PAIRS for line in p["lines"]]
    assert any("-50" in line for line in lines) and any("-RT" in line for line in lines)
    codes = {line.split()[0].split("-")[0] for line in lines}
    for family_code in ("64483", "64479", "62323", "62321", "64493", "64490", "64635", "64633",
                        "27096", "64451", "64625", "64454", "64624", "64405", "64450", "20552",
                        "20553", "20610", "20611", "99213", "G3002", "77002", "76942", "0216T"):
        assert family_code in codes, family_code
    assert all(p.get("source") for p in PAIRS)


@pytest.mark.parametrize("pair", PAIRS, ids=[p["id"] for p in PAIRS])
def test_pair(pair: dict[str, Any], coder: Coder) -> None:
    encounter, _ = _encounter(pair)
    coded = coder.code(encounter)
    with_dx = any(" dx" in line for line in pair["lines"])
    got = [_shown(line, with_dx and " dx" in want) for line, want in
           zip(coded.claim.lines, pair["lines"] + [""] * len(coded.claim.lines))]
    assert got == pair["lines"], f"{pair['id']}: {got}"
    denied = sorted({f.rule for f in coded.result.findings if f.severity == "deny"})
    assert denied == sorted(pair.get("deny", [])), f"{pair['id']}: {[f.message for f in coded.result.findings]}"


# --- refusals: garbage and ambiguous text give a clear error, never a code ------------------

REFUSED = [
    ("blah blah foo", "no procedure recognised"),
    ("", "empty"),
    ("   ;  ", "empty"),
    ("L5-S1 ESI under fluoroscopy", "which epidural approach"),
    ("facet injection under fluoroscopy", "needs the spinal levels"),
    ("bilateral L4-5 MBB", "needs the image guidance"),
    ("right L4-5 facet RFA; L5-S1 MBB fluoroscopy", "description 2: facet_injection needs"),
    ("RFA L4-5 right", "radiofrequency ablation of what"),
    ("L4-5 TFESI fluoroscopy", "needs the side"),
    ("left and right L4-5 TFESI", "both left and right"),
    ("bilateral right L4-5 TFESI", "more than one side"),
    ("L3-S1 facet RFA bilateral", "spans several levels"),
    ("right L4-6 TFESI", "not a spinal level"),
    ("right L4 facet injection fluoroscopy", "names a segment, not a level"),
    ("right S1 transforaminal, fluoroscopy", "no foramen"),
    ("occipital nerve block right", "which occipital nerve"),
    ("right nerve block under ultrasound", "a block of which nerve"),
    ("right L5-S1 TFESI and L4-5 facet injection fluoroscopy", "more than one procedure"),
    ("right L5-S1 TFESI under CT and ultrasound", "more than one guidance"),
    ("right L5-S1 TFESI diagnostic therapeutic", "more than one purpose"),
    ("right L5-S1 TFESI under ultrasound", "cannot be reported with guidance ultrasound"),
    ("L5-S1 interlaminar and transforaminal ESI", "more than one epidural approach"),
    ("office visit 30 minutes", "new or an established patient"),
    ("established patient visit", "needs the minutes"),
    ("trigger point injections under fluoroscopy", "needs the muscles"),
    ("right genicular nerve block, fluoroscopy", "needs the nerves injected"),
    ("left caudal epidural, fluoroscopy", "side do(es) not apply"),
    ("right L4-5 TFESI fluoroscopy 30 minutes", "minutes do(es) not apply"),
    ("x" * 2001, "longer than 2000"),
    ("spinal cord stimulator trial", "needs the number of percutaneous leads"),
    ("SCS trial with two leads and three leads", "more than one number of leads"),
    ("permanent spinal cord stimulator generator", "of the generator alone (63685), or of the leads"),
    ("permanent SCS implant, 2 leads, with generator", "needs the leads' approach"),
    ("percutaneous SCS implant with two leads", "whether the pulse generator was implanted"),
    ("SCS paddle, 2 leads, with generator", "does not apply to a paddle"),
    ("SCS revision", "revision, replacement or removal of which part"),
    ("SCS lead and generator removal", "describe the lead procedure and the generator procedure"),
    ("removal and replacement of percutaneous SCS leads", "a removal and a revision or replacement"),
    ("SCS trial with paddle", "names a trial and a permanent implant"),
    ("spinal cord stimulator", "which spinal cord stimulator procedure"),
    ("open peripheral nerve stimulator implant, 1 lead", "percutaneous peripheral nerve leads only"),
    ("PNS lead replacement", "a replacement of peripheral nerve leads"),
    ("peripheral nerve stimulator trial", "needs the number of percutaneous leads"),
    ("SCS trial, 2 leads, integrated neurostimulator", "an integrated neurostimulator does not apply"),
    ("PNS lead, 1 lead, integrated, external stimulator", "both with and without an integrated neurostimulator"),
    ("pump refill", "needs whether the pump was reprogrammed"),
    ("intrathecal pump refill with reprogramming", "physician skill (by the physician) or was done by clinical staff"),
    ("intrathecal pump trial", "pump trial is an epidural or intrathecal injection"),
    ("intrathecal pump", "which pump service"),
    ("pump refill without reprogramming by the nurse, two leads", "number of leads does not apply"),
    ("T12-L1 kyphoplasty", "name each vertebral body"),
    ("kyphoplasty under fluoroscopy", "needs the spinal levels"),
    ("L1 kyphoplasty and vertebroplasty", "both kyphoplasty and vertebroplasty"),
    ("L2 kyphoplasty, ultrasound", "cannot be reported with guidance ultrasound"),
    ("left sympathetic block under fluoroscopy", "which sympathetic block"),
    ("bilateral celiac plexus block", "side do(es) not apply"),
    ("lumbar epidural adhesiolysis, 3 days", "does not code epidural adhesiolysis"),
    ("lysis of epidural adhesions, one day, fluoroscopy", "does not code epidural adhesiolysis"),
    ("percutaneous laminotomy L4-5 image guided", "does not code epidural adhesiolysis"),
    ("MILD procedure L3-4, fluoroscopy", "does not code epidural adhesiolysis"),
    ("botox chemodenervation for chronic migraine", "needs the units of onabotulinumtoxinA injected"),
    ("botulinum toxin 155 units for cervical dystonia", "for chronic migraine only"),
    ("dysport 500 units for chronic migraine", "onabotulinumtoxinA only"),
    ("botox 155 units for chronic migraine, 5 units wasted, none wasted", "more than one discarded amount"),
    ("SI joint fusion right", "SI joint fusion with which device"),
    ("left SI joint arthrodesis with intra-articular implants", "only with a transfixing device"),
    ("right knee and wrist injection", "more than one procedure"),
    ("urine drug screen by cup", "does not code drug testing"),
    ("definitive drug testing, 22 drug classes, LC-MS", "does not code drug testing"),
    ("UDT and office visit", "does not code drug testing"),
]


@pytest.mark.parametrize("text,expected", REFUSED, ids=[t[:40] for t, _ in REFUSED])
def test_refused_text_says_what_is_missing(text: str, expected: str) -> None:
    with pytest.raises(TextError) as info:
        read_procedure_text(text)
    assert expected in str(info.value)


def test_reader_reports_recognised_and_unrecognised_words() -> None:
    reading = read_procedure_text("bilateral L4-5 and L5-S1 transforaminal ESIs with sedation")
    assert reading.unrecognised == ["sedation"]
    meanings = {r.text: r.meaning for r in reading.recognised}
    assert meanings["L4-5"] == "level L4-L5" and meanings["bilateral"] == "side bilateral"
    assert meanings["transforaminal"] == "concept transforaminal"
    reading = read_procedure_text("right L5-S1 TFESI, fluoroscopy, M54.17")
    assert reading.diagnoses == ["M54.17"]


@pytest.mark.parametrize("text,levels", [
    ("right L4-L5 TFESI", ["L4-L5"]), ("right L4/5 TFESI", ["L4-L5"]),
    ("right l5-s1 TFESI", ["L5-S1"]), ("right T12-L1 TFESI", ["T12-L1"]),
    ("right C5-6 TFESI", ["C5-C6"]), ("right L4 and L5 TFESI", ["L4-L5", "L5-S1"]),
    ("right C6 and C7 TFESI", ["C5-C6", "C6-C7"]), ("right C8 SNRB", ["C7-T1"]),
    ("right T12 TFESI", ["T12-L1"]), ("right L4-5, L4-L5 TFESI", ["L4-L5"]),
])
def test_level_notations(text: str, levels: list[str]) -> None:
    assert read_procedure_text(text).procedures[0].levels == levels


# --- structured encounters: validation and coding errors -------------------------------------

BASE = {"payer": "medicare", "place_of_service": "11", "date": "2026-03-02", "diagnoses": ["M54.16"]}


def _raw(*procedures: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**BASE, "procedures": list(procedures), **extra}


@pytest.mark.parametrize("raw,expected", [
    (_raw({"procedure": "transforaminal_esi", "levels": ["L4-L6"], "side": "left"}), "levels"),
    (_raw({"procedure": "peripheral_nerve_block", "nerves": ["occipital"], "side": "left"}), "known nerve names"),
    (_raw({"procedure": "facet_injection", "level": ["L4-L5"]}), "unknown field"),
    (_raw({"procedure": "acupuncture"}), "Invalid enum value"),
    ({**BASE, "procedures": []}, "length >= 1"),
    (_raw({"procedure": "trigger_point", "muscles": ["trapezius"]}, place_of_service="ABC"), "place_of_service"),
])
def test_invalid_encounter_is_a_validation_error(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        parse_encounter(raw)
    assert expected in str(info.value)


@pytest.mark.parametrize("levels", [["L4-L5"], ["L6"], ["T12-L1"]])
def test_vertebral_body_procedure_takes_bodies_only(levels: list[str]) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        parse_encounter(_raw({"procedure": "vertebral_augmentation", "levels": levels}))
    assert "the vertebral bodies treated" in str(info.value)


@pytest.mark.parametrize("raw,expected", [
    (_raw({"procedure": "facet_injection", "levels": ["L4-L5"], "side": "left"}), "needs the image guidance"),
    (_raw({"procedure": "trigger_point", "muscles": ["trapezius"], "side": "left"}), "side do(es) not apply"),
    (_raw({"procedure": "peripheral_nerve_block", "nerves": ["superolateral genicular"], "side": "left"}),
     "genicular_nerve_block (64454)"),
    (_raw({"procedure": "genicular_nerve_block", "nerves": ["saphenous"], "side": "left"}),
     "non-genicular nerves"),
    (_raw({"procedure": "peripheral_nerve_block", "nerves": ["sciatic"], "side": "left", "dx": [3]}),
     "past the diagnosis list"),
    (_raw({"procedure": "trigger_point", "muscles": ["trapezius"]}, payer="medcare"), "did you mean 'medicare'"),
    (_raw({"procedure": "chronic_pain_management", "minutes": 29}), "at least 30 minutes"),
    (_raw({"procedure": "chronic_pain_management", "minutes": 40},
          {"procedure": "chronic_pain_management", "minutes": 40}), "once per month"),
    (_raw({"procedure": "chronic_pain_management", "minutes": 45}, date="2022-12-15"),
     "G3002 is valid only from 2023-01-01"),
    (_raw({"procedure": "genicular_nerve_block", "side": "left",
           "nerves": ["superolateral genicular", "superomedial genicular", "inferomedial genicular"]},
          date="2019-06-01"), "64454 is valid only from 2020-01-01"),
    (_raw({"procedure": "office_visit_new", "minutes": 10}), "below the shortest time"),
    (_raw({"procedure": "office_visit_established", "minutes": 20},
          {"procedure": "transforaminal_esi", "levels": ["L5-S1"], "side": "left"}), "separate_problem"),
    (_raw({"procedure": "office_visit_new", "minutes": 30},
          {"procedure": "scs_lead_revision", "approach": "paddle"}), "a visit on the day of a major procedure"),
    (_raw({"procedure": "office_visit_new", "minutes": 30, "separate_problem": False},
          {"procedure": "scs_lead_revision", "approach": "paddle"}), "billed with 57, which code mode does not code"),
    (_raw({"procedure": "caudal_esi", "guidance": "fluoroscopy", "levels": ["C6-C7"]}), "caudal epidural reaches"),
    (_raw({"procedure": "vertebral_augmentation", "levels": ["T12", "L1"]}), "two regions"),
    (_raw({"procedure": "vertebral_augmentation", "levels": ["S1"]}), "vertebral body S1"),
    (_raw({"procedure": "basivertebral_ablation", "levels": ["T12"]}), "vertebral body T12"),
    (_raw({"procedure": "basivertebral_ablation", "levels": ["L4", "L5"]}, date="2021-12-31"),
     "64628 is valid only from 2022-01-01"),
    (_raw({"procedure": "pns_lead", "leads": 1}, date="2026-01-01"),
     "from 2026-01-01 a percutaneous peripheral nerve array with an integrated neurostimulator has codes"),
    (_raw({"procedure": "pns_lead_revision"}, date="2026-01-01"), "another array keeps 64555 / 64585"),
    (_raw({"procedure": "chemodenervation_migraine", "drug_units": 155}), "how many units were discarded"),
])
def test_encounter_that_cannot_be_coded(raw: dict[str, Any], expected: str, coder: Coder) -> None:
    with pytest.raises(CodingError) as info:
        coder.code(parse_encounter(raw))
    assert expected in str(info.value)


def test_dropped_visit_with_procedure_still_codes_the_procedure(coder: Coder) -> None:
    coded = coder.code(parse_encounter(_raw(
        {"procedure": "office_visit_established", "minutes": 20, "separate_problem": False},
        {"procedure": "transforaminal_esi", "levels": ["L5-S1"], "side": "left", "guidance": "ct"})))
    assert [line.code for line in coded.claim.lines] == ["64483"]
    assert any("not billed" in note for note in coded.notes)


def test_clinical_conflict_is_refused(coder: Coder) -> None:
    with pytest.raises(CodingError, match="cpm_minutes"):
        coder.code(parse_encounter(_raw({"procedure": "chronic_pain_management", "minutes": 45},
                                        clinical={"cpm_minutes": 40})))


def test_claim_carries_documentation_and_clinical_facts(coder: Coder) -> None:
    coded = coder.code(parse_encounter(_raw(
        {"procedure": "transforaminal_esi", "levels": ["T12-L1", "L1-L2"], "side": "bilateral",
         "guidance": "fluoroscopy", "purpose": "diagnostic"},
        {"procedure": "office_visit_established", "minutes": 40, "separate_problem": True},
        {"procedure": "chronic_pain_management", "minutes": 60},
        clinical={"pain_duration_months": 8}, prior_authorization="PA-1")))
    claim = coded.claim_dict()
    first, second = claim["lines"][0], claim["lines"][1]
    assert first["documented"] == {"imaging": "fluoroscopy", "side": "bilateral", "levels": ["T12-L1"],
                                   "purpose": "diagnostic"}
    assert second["documented"]["levels"] == ["L1-L2"]
    assert claim["clinical"] == {"pain_duration_months": 8, "em_separate_problem": True, "cpm_minutes": 60}
    assert claim["prior_authorization"] == "PA-1"
    assert [ln["code"] for ln in claim["lines"]] == ["64479", "64483", "99215", "G3002", "G3003"]
    assert claim["lines"][4]["units"] == 2


def test_line_plus_50_format_from_a_payer_file(tmp_path: Path) -> None:
    (tmp_path / "plus50.yaml").write_text(
        "id: plus50\nname: Example line plus 50\nextends: commercial\nexample: true\n"
        "parameters:\n  bilateral_format:\n    value: [{pos: 0, format: line_plus_50}]\n"
        "    source: {document: test, confidence: payer_policy}\n", encoding="utf-8")
    coded = Coder([str(tmp_path)]).code(parse_encounter(
        _raw({"procedure": "transforaminal_esi", "levels": ["L4-L5", "L5-S1"], "side": "bilateral",
              "guidance": "fluoroscopy"}, payer="plus50")))
    assert [_shown(line, False) for line in coded.claim.lines] == ["64483 x1", "64483-50 x1", "64484 x1",
                                                                   "64484-50 x1"]
    assert not [f for f in coded.result.findings if f.severity == "deny"]


def test_hostile_identifiers_change_nothing(coder: Coder) -> None:
    proc = {"procedure": "facet_injection", "levels": ["L4-L5"], "side": "right", "guidance": "fluoroscopy"}
    plain = coder.code(parse_encounter(_raw(proc)))
    hostile = coder.code(parse_encounter(_raw(proc, encounter_id='x"). #include "/etc/passwd".\n',
                                              patient={"id": "é\").%"}, prior_authorization="a).b")))
    assert [(f.rule, f.severity, f.lines) for f in plain.result.findings] == \
        [(f.rule, f.severity, f.lines) for f in hostile.result.findings]
    assert [line.code for line in plain.claim.lines] == [line.code for line in hostile.claim.lines]


# --- the command --------------------------------------------------------------------------

ARGS = ["--payer", "medicare", "--pos", "11", "--date", "2026-03-02", "--dx", "M54.16"]


def test_cli_text_output_and_exit_code() -> None:
    result = runner.invoke(app, ["code", "bilateral L4-5 and L5-S1 transforaminal ESI under fluoroscopy", *ARGS])
    assert result.exit_code == 0, result.output
    assert "64483-50" in result.stdout and "64484-50" in result.stdout
    assert "not recognised: none" in result.stdout and "Check" in result.stdout
    denied = runner.invoke(app, ["code", "right L3-4, L4-5, L5-S1 TFESI, fluoroscopy", *ARGS])
    assert denied.exit_code == 1 and "esi-levels-per-session" in denied.stdout


def test_cli_refusal_is_exit_2_without_traceback() -> None:
    result = runner.invoke(app, ["code", "facet injection under fluoroscopy", *ARGS])
    assert result.exit_code == 2
    assert "needs the spinal levels" in result.stderr and "Traceback" not in result.output
    missing = runner.invoke(app, ["code", "right L5-S1 TFESI"])
    assert missing.exit_code == 2 and "--payer and --pos" in missing.stderr
    nofile = runner.invoke(app, ["code", "nowhere/encounter.yaml"])
    assert nofile.exit_code == 2 and "no such file" in nofile.stderr
    bad_dx = runner.invoke(app, ["code", "right L5-S1 TFESI", "--payer", "medicare", "--pos", "11", "--dx", "XYZ"])
    assert bad_dx.exit_code == 2 and "diagnoses" in bad_dx.stderr


def test_cli_json_output() -> None:
    result = runner.invoke(app, ["code", "right L5-S1 TFESI, fluoroscopy, diagnostic, with sedation",
                                 *ARGS, "--format", "json"])
    data = json.loads(result.stdout)
    assert set(data) == {"reading", "encounter", "lines", "notes", "claim", "status", "findings"}
    assert data["reading"]["unrecognised"] == ["sedation"]
    assert data["lines"] == [{"line": 1, "code": "64483", "modifiers": ["RT", "KX"], "units": 1,
                              "dx": [1], "procedure": 1}]
    assert data["encounter"]["procedures"][0]["purpose"] == "diagnostic"


def test_cli_claim_output_feeds_check(tmp_path: Path) -> None:
    text = "established patient visit 30 minutes, separate problem; bilateral L4-5 MBB fluoroscopy diagnostic"
    coded = runner.invoke(app, ["code", text, "--payer", "medicare", "--pos", "22", "--date", "2026-03-02",
                                "--dx", "M47.816", "--format", "json"])
    data = json.loads(coded.stdout)
    claim = runner.invoke(app, ["code", text, "--payer", "medicare", "--pos", "22", "--date",
                                "2026-03-02", "--dx", "M47.816", "--format", "claim"])
    path = tmp_path / "claim.json"
    path.write_text(claim.stdout, encoding="utf-8")
    assert json.loads(claim.stdout) == data["claim"]
    checked = runner.invoke(app, ["check", str(path), "--format", "json"])
    result = json.loads(checked.stdout)[0]
    assert [(f["rule"], f["severity"], f["lines"]) for f in result["findings"]] == \
        [(f["rule"], f["severity"], f["lines"]) for f in data["findings"]]
    # OPD prior authorization is requested by the hospital: without its status it is a review (exit 0)
    assert checked.exit_code == coded.exit_code == claim.exit_code == 0


def test_cli_encounter_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "encounter.yaml"
    path.write_text(yaml.safe_dump(_raw({"procedure": "si_joint_injection", "side": "bilateral",
                                         "guidance": "fluoroscopy"}, diagnoses=["M46.1"])), encoding="utf-8")
    plain = runner.invoke(app, ["code", str(path), "--format", "json"])
    assert [ln["modifiers"] for ln in json.loads(plain.stdout)["lines"]] == [["50"]]
    other = runner.invoke(app, ["code", str(path), "--payer", "commercial_asc_rtlt", "--pos", "24",
                                "--format", "json"])
    assert [ln["modifiers"] for ln in json.loads(other.stdout)["lines"]] == [["RT"], ["LT"]]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_raw({"procedure": "si_joint_injection", "sied": "left"})), encoding="utf-8")
    result = runner.invoke(app, ["code", str(bad)])
    assert result.exit_code == 2 and "procedures[1]" in result.stderr and "sied" in result.stderr


def test_example_encounter_is_clean_at_medicare() -> None:
    result = runner.invoke(app, ["code", str(DOCS / "examples" / "encounter.yaml"), "--format", "json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["status"] == "clean"
    assert [(ln["code"], ln["modifiers"]) for ln in data["lines"]] == [
        ("99214", ["25"]), ("64493", ["50", "KX"]), ("64494", ["50", "KX"]), ("64405", ["RT"]), ("76942", [])]


def test_bad_date_names_the_field() -> None:
    result = runner.invoke(app, ["code", "right L5-S1 TFESI", "--payer", "medicare", "--pos", "11",
                                 "--date", "2026-13-01"])
    assert result.exit_code == 2 and "2026-13-01" not in result.stderr
    assert "field date: expected a real calendar date as YYYY-MM-DD, got text of 10 characters" in result.stderr


def test_cli_output_is_deterministic() -> None:
    args = ["code", "right L5-S1 TFESI fluoroscopy; right greater occipital nerve block, ultrasound",
            *ARGS, "--format", "json"]
    assert runner.invoke(app, args).stdout == runner.invoke(app, args).stdout


def test_default_date_is_today() -> None:
    result = runner.invoke(app, ["code", "right greater occipital nerve block", "--payer", "medicare",
                                 "--pos", "11", "--dx", "M54.81", "--format", "claim"])
    assert json.loads(result.stdout)["lines"][0]["date"] == dt.date.today().isoformat()


# --- the format documentation is current -----------------------------------------------------

def test_encounter_format_doc_is_current() -> None:
    text = (DOCS / "encounter-format.md").read_text(encoding="utf-8")
    assert text == encounter_format_markdown(), "docs/encounter-format.md is stale: run pain-asp docs"
    schema = text.split("## JSON Schema\n\n```json\n", 1)[1].rsplit("```", 1)[0]
    assert json.loads(schema) == encounter_schema()


def test_the_toxin_lines_are_those_the_drug_rules_expect(coder: Coder) -> None:
    """64615 with J0585-JZ passes chemodenervation-drug-missing and drug-wastage-modifier; the
    same claim without JZ, or without the drug line, fails them (the check reads the lines code
    mode wrote from the same policy, kb/policy/drugs.lp)."""
    import msgspec

    pair = next(p for p in PAIRS if p["id"] == "botox-chronic-migraine-none-wasted-medicare-office")
    coded = coder.code(_encounter(pair)[0])
    drug_rules = {"chemodenervation-drug-missing", "drug-wastage-modifier"}
    assert not [f for f in coded.result.findings if f.rule in drug_rules]
    claim = msgspec.to_builtins(coded.claim)
    without_jz = {**claim, "lines": [{**line, "modifiers": []} for line in claim["lines"]]}
    without_drug = {**claim, "lines": [line for line in claim["lines"] if line["code"] != "J0585"]}
    found = [{(f.rule, tuple(f.lines)) for f in coder.checker.check_claim(parse_claim(c)).findings
              if f.rule in drug_rules} for c in (without_jz, without_drug)]
    assert found == [{("drug-wastage-modifier", (2,))}, {("chemodenervation-drug-missing", (1,))}]
