"""835 remittances: reading, and predicted against actual denials (``pain-asp remit``).

The scenario is written by hand against the bundled examples (docs/examples/claims.yaml), whose
check results are known (tests/test_examples and the README): each expected count below is
derived from what the payer did in the 835 and what the check predicted, line by line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from era_files import interchange, service, transaction

from pain_asp.errors import InputError
from pain_asp.inputs.era import read_835

pytest.importorskip("pyx12")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples" / "claims.yaml"


def _paid(code, charge, paid, date, control="", reduction=None, mods=""):
    code = code + (f":{mods}" if mods else "")
    cas = [f"CO*45*{reduction}"] if reduction else []
    return service(code, charge, paid, date=date, control=control, adjustments=cas)


def scenario() -> str:
    """What the payer did with the examples (see the module docstring)."""
    first = transaction(1, [
        # EX-01: both lines paid, less the contractual reduction: nothing predicted, nothing denied.
        ("EX-01-clean-mbb", ("1*900*500*0*MB*PCN01*11*1", [
            *_paid("64493", "600", "300", "20260302", reduction="300", mods="50:KX"),
            *_paid("64494", "300", "200", "20260302", reduction="100", mods="50:KX")])),
        # EX-02: the injection paid, the fluoroscopy denied CO 97 / N20: imaging-included confirmed.
        ("EX-02-fluoro-included", ("1*900*500*0*MB*PCN02*11*1", [
            *_paid("64483", "780", "500", "20260302", reduction="280", mods="RT"),
            *service("77003", "120", "0", date="20260302", adjustments=["CO*97*120"], remarks=["N20"])])),
        # EX-03: the lone add-on was paid: both predictions are false alarms.
        ("EX-03-addon-alone", ("1*390*200*0*12*PCN03*11*1", [
            *_paid("64484", "390", "200", "20260303", reduction="190", mods="LT:51")])),
        # EX-04: denied CO 4 (modifier). At Medicare a missing side is a review (laterality_review:
        # no CMS text read states the denial), not a predicted denial, so this denial is missed:
        # what remit shows an analyst whose MAC does deny such lines (laterality_required).
        ("EX-04-no-laterality", ("4*780*0*0*MB*PCN04*11*1", [
            *service("64483", "780", "0", date="20260303", adjustments=["CO*4*780"])])),
        # EX-05: denied CO 119 (benefit maximum): esi-frequency confirmed, the CARC agrees.
        ("EX-05-fifth-lumbar-esi", ("4*690*0*0*MB*PCN05*11*1", [
            *service("62323", "690", "0", date="20260304", adjustments=["CO*119*690"], remarks=["N362"])])),
        # EX-06: paid here, reversed in the second transaction and never paid again.
        ("EX-06-rfa-without-blocks", ("1*1650*900*0*MB*PCN06*11*1", [
            *_paid("64635", "1650", "900", "20260305", reduction="750", mods="50")])),
        # EX-07: first denied the visit (CO 97); corrected in the second transaction.
        ("EX-07-em-without-25", ("1*350*150*0*MB*PCN07*11*1", [
            *service("99213", "140", "0", date="20260305", adjustments=["CO*97*140"]),
            *_paid("64405", "210", "150", "20260305", reduction="60", mods="RT")])),
        # EX-12: adjudicated as a whole, no service lines: denied CO 16 / M51 at claim level.
        ("EX-12-cpm-time", ("4*145*0*0*MB*PCN12*11*1", ["CAS*CO*16*145", "MOA***M51"])),
        # EX-13: denied CO 50 / N115 though the check found nothing: a missed denial.
        ("EX-13-clean-tfesi", ("4*780*0*0*MB*PCN13*11*1", [
            *service("64483:RT", "780", "0", date="20260310", adjustments=["CO*50*780"], remarks=["N115"])])),
    ], paid="2350")
    second = transaction(2, [
        # EX-06 reversed (CLP02 22): no standing adjudication remains.
        ("EX-06-rfa-without-blocks", ("22*-1650*-900*0*MB*PCN06*11*1", [
            *service("64635:50", "-1650", "-900", date="20260305", adjustments=["CO*45*-750"])])),
        # EX-07 reversed, then paid in full as corrected (CLP09 7): the visit is now paid.
        ("EX-07-em-without-25", ("22*-350*-150*0*MB*PCN07*11*1", [
            *service("99213", "-140", "0", date="20260305", adjustments=["CO*97*-140"]),
            *service("64405:RT", "-210", "-150", date="20260305", adjustments=["CO*45*-60"])])),
        ("EX-07-em-without-25", ("1*350*250*0*MB*PCN07B*11*7", [
            *_paid("99213", "140", "100", "20260305", reduction="40", mods="25"),
            *_paid("64405", "210", "150", "20260305", reduction="60", mods="RT")])),
        # A claim the check never saw.
        ("EX-99-not-checked", ("1*100*80*0*MB*PCN99*11*1", [
            *_paid("99213", "100", "80", "20260311", reduction="20")])),
    ], payer="EXAMPLE MAC", paid="-550")
    return interchange([first, second])


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remit")
    results = folder / "results.jsonl"
    done = subprocess.run([sys.executable, "-m", "pain_asp.cli", "check", str(EXAMPLES), "--format", "jsonl",
                           "-o", str(results), "--fail-on", "never"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    era = folder / "era.835"
    era.write_text(scenario(), encoding="utf-8")
    return folder, results, era


def _remit(*args):
    return subprocess.run([sys.executable, "-m", "pain_asp.cli", "remit", *map(str, args)],
                          capture_output=True, text=True)


def test_reads_claims_lines_adjustments_and_remarks(checked):
    _, _, era = checked
    items = list(read_835(era))
    assert not [i for i in items if isinstance(i, InputError)]
    assert [c.claim_id for c in items][:3] == ["EX-01-clean-mbb", "EX-02-fluoro-included", "EX-03-addon-alone"]
    assert all(not c.errors for c in items)
    fluoro = items[1]
    assert (fluoro.status, fluoro.charge, fluoro.paid, fluoro.payer_claim_number) == ("1", 90000, 50000, "PCN02")
    assert fluoro.payer == "EXAMPLE MAC" and fluoro.production_date.isoformat() == "2026-01-15"
    injection, imaging = fluoro.lines
    assert (injection.code, injection.modifiers, injection.denied) == ("64483", ("RT",), False)
    assert (imaging.code, imaging.paid, imaging.denied, imaging.remarks) == ("77003", 0, True, ["N20"])
    assert [(a.group, a.reason, a.amount) for a in imaging.adjustments] == [("CO", "97", 12000)]
    whole = next(c for c in items if c.claim_id == "EX-12-cpm-time")
    assert whole.lines == [] and whole.denied and whole.remarks == ["M51"]
    reversal = [c for c in items if c.claim_id == "EX-07-em-without-25"]
    assert [(c.status, c.frequency) for c in reversal] == [("1", "1"), ("22", "1"), ("1", "7")]


def test_counts_against_results_and_claims(checked):
    _, results, era = checked
    done = _remit(era, "--against", results, "--against", EXAMPLES, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["claims"] == {"matched": 8, "remitted_only": 1, "checked_only": 5, "reversed": 1, "unchecked": 0}
    assert data["lines"] == {"predicted_denied": 5, "confirmed": 3, "false_alarm": 2, "missed": 3, "paid": 6,
                             "unmatched": 0}
    rules = {r["rule"]: (r["predicted"], r["confirmed"], r["false_alarm"], r["precision"], r["carc_agreement"])
             for r in data["rules"]}
    assert rules == {
        "imaging-included": (1, 1, 0, 1.0, 1.0),
        "addon-without-primary": (1, 0, 1, 0.0, None),
        "modifier-51-on-addon": (1, 0, 1, 0.0, None),
        "esi-frequency": (1, 1, 0, 1.0, 1.0),
        "em-same-day-no-25": (1, 0, 1, 0.0, None),
        "cpm-time": (1, 1, 0, 1.0, 1.0),
    }
    assert data["missed_by_reason"] == [
        {"carc": "4", "rarc": "", "lines": 1, "amount": 780.0, "codes": ["64483"]},
        {"carc": "50", "rarc": "N115", "lines": 1, "amount": 780.0, "codes": ["64483"]},
        {"carc": "16", "rarc": "M51", "lines": 1, "amount": 145.0, "codes": ["G3002"]},
    ]
    assert data["rates"] == {"predicted_clean_rate": 0.25, "actual_clean_rate": 0.375,
                             "predicted_denial_rate": 0.625, "actual_denial_rate": 0.625}
    assert data["line_matching"] == "claims"
    assert {(d["carc"], d["amount"]) for d in data["denied_by_reason"]} == {
        ("CO-50", 780.0), ("CO-4", 780.0), ("CO-119", 690.0), ("CO-16", 145.0), ("CO-97", 120.0)}


def test_without_claim_files_lines_match_in_order(checked):
    _, results, era = checked
    data = json.loads(_remit(era, "--against", results, "--format", "json").stdout)
    assert data["line_matching"] == "order" and data["claims_matched_by_order"] == 8
    # Only EX-12 differs: without its claim, only the predicted line 2 is known.
    assert data["lines"] == {"predicted_denied": 5, "confirmed": 3, "false_alarm": 2, "missed": 2, "paid": 6,
                             "unmatched": 0}


def test_text_and_html(checked, tmp_path):
    _, results, era = checked
    text = _remit(era, "--against", results, "--against", EXAMPLES)
    assert text.returncode == 0
    assert "8 matched, 1 remitted only, 5 checked only, 1 reversed" in text.stdout
    assert "CARC 50/N115: lines 1, $780.00, codes 64483" in text.stdout
    page = tmp_path / "remit.html"
    done = _remit(era, "--against", results, "--against", EXAMPLES, "--format", "html", "-o", page)
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert 'id="remittance"' in html and "Denials no rule predicted" in html
    assert "DOE" not in html and "123456789A" not in html


def test_lines_match_by_control_number_before_code(tmp_path):
    import datetime as dt

    from pain_asp.inputs.era import RemitLine
    from pain_asp.modes.remit import CheckedLine, _match_lines  # noqa: PLC2701 (the matcher is the unit)

    day = dt.date(2026, 3, 2)
    checked = [CheckedLine("64483", frozenset({"RT"}), "2026-03-02", "A1"),
               CheckedLine("64483", frozenset({"LT"}), "2026-03-02", "A2"),
               CheckedLine("77003", frozenset(), "2026-03-02", None)]
    remitted = [RemitLine("64483", ("LT",), 0, 0, "1", day, "A1"),      # control number wins over modifiers
                RemitLine("77003", ("26",), 0, 0, "1", day, None),      # modifier changed: code + date
                RemitLine("64483", ("RT",), 0, 0, "1", day, None),      # the other 64483
                RemitLine("99213", (), 0, 0, "1", day, None)]           # nothing billed like it
    assert _match_lines(remitted, checked) == [1, 3, 2, None]


def test_bad_file_is_reported_without_patient_data(tmp_path, checked):
    _, results, _ = checked
    bad = scenario().replace("CLP*EX-02-fluoro-included*1*900*500", "CLP*EX-02-fluoro-included*9*9X0*500")
    bad = bad.replace("DTM*472*20260303", "DTM*472*20261399")
    era = tmp_path / "bad.835"
    era.write_text(bad)
    done = _remit(era, "--against", results, "--format", "json")
    assert done.returncode == 2
    data = json.loads(done.stdout)
    messages = [e["message"] for e in data["errors"]]
    assert any("EX-02-fluoro-included" in m and "CLP02" in m for m in messages)
    assert any("EX-02-fluoro-included" in m and "CLP03" in m for m in messages)
    assert any("EX-03-addon-alone" in m and "DTM02" in m for m in messages)
    assert "DOE" not in done.stdout + done.stderr and "123456789A" not in done.stdout + done.stderr
    assert "9X0" not in done.stdout + done.stderr
    # Nothing lost: the other claims are still compared.
    assert data["claims"]["matched"] == 8


def test_not_an_835(tmp_path, checked):
    _, results, _ = checked
    an_837 = scenario().replace("GS*HP*", "GS*HC*").replace("005010X221A1", "005010X222A1")
    for name, body in (("claims.txt", "Jane Doe, DOB 1950-01-01\n"), ("x.837", an_837), ("empty.835", "")):
        path = tmp_path / name
        path.write_text(body)
        done = _remit(path, "--against", results)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr and "Jane" not in done.stderr


def test_report_joins_the_remittance(checked, tmp_path):
    _, results, era = checked
    page = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "pain_asp.cli", "report", str(results), str(EXAMPLES),
                           "--remit", str(era), "-o", str(page)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert 'id="remittance"' in html and 'id="by-rule"' in html
    assert "3 of 5 predicted" in html            # denied lines confirmed, as counted above
    assert "62.5 % actual" in html and "62.5 % predicted" in html


def test_a_folder_of_remittances_and_two_files_in_order(checked, tmp_path):
    """The reversal of EX-06 in a second file cancels its payment in the first."""
    _, results, _ = checked
    folder = tmp_path / "era"
    folder.mkdir()
    paid = transaction(1, [("EX-06-rfa-without-blocks", ("1*1650*900*0*MB*PCN06*11*1", [
        *_paid("64635", "1650", "900", "20260305", reduction="750", mods="50")]))])
    reversal = transaction(1, [("EX-06-rfa-without-blocks", ("22*-1650*-900*0*MB*PCN06*11*1", [
        *service("64635:50", "-1650", "-900", date="20260305", adjustments=["CO*45*-750"])]))])
    (folder / "a-first.txt").write_text(interchange([paid], control=7))
    (folder / "b-second.dat").write_text(interchange([reversal], control=8))
    (folder / "notes.md").write_text("not a remittance\n")
    one = json.loads(_remit(folder / "a-first.txt", "--against", results, "-f", "json").stdout)
    assert one["claims"]["matched"] == 1 and one["lines"]["false_alarm"] == 1
    both = json.loads(_remit(folder, "--against", results, "-f", "json").stdout)
    assert both["claims"]["matched"] == 0 and both["claims"]["reversed"] == 1


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pain_asp.cli", *map(str, args)], capture_output=True, text=True)


ESI_HISTORY = """\
- claim_id: "1"
  payer: commercial_strict_esi
  place_of_service: "11"
  patient: {id: P-REMIT}
  diagnoses: [M54.16]
  clinical: {conservative_care_weeks: 6, pain_duration_months: 4}
  lines:
    - {code: "64483", modifiers: [RT], date: DATE, dx: [1], charge: 780.00,
       documented: {imaging: fluoroscopy, side: right, levels: [L4-L5], purpose: therapeutic}}
"""


def test_history_from_remittances_counts_only_paid_services_where_the_payer_says_so(tmp_path):
    """Three stored lumbar sessions; the payer's 835 denies one and reverses nothing. The example
    payer commercial_strict_esi allows 3 sessions a year and counts only what it paid, so the
    fourth session is within its limit once the denial is recorded; a reversal of a paid one
    removes it from the count too."""
    db = tmp_path / "history.sqlite"
    earlier = tmp_path / "earlier.yaml"
    earlier.write_text("".join(ESI_HISTORY.replace('"1"', f'"{n}"').replace("DATE", day)
                               for n, day in ((1, "2025-07-06"), (2, "2025-09-07"), (3, "2025-12-07"))))
    new = tmp_path / "new.yaml"
    new.write_text(ESI_HISTORY.replace('"1"', '"4"').replace("DATE", "2026-03-02"))
    assert _cli("history", "add", earlier, "--db", db).returncode == 0

    def esi_frequency():
        done = _cli("check", new, "--history", db, "--format", "json", "--fail-on", "never")
        assert done.returncode == 0, done.stderr
        return [f["rule"] for r in json.loads(done.stdout) for f in r["findings"] if f["rule"] == "esi-frequency"]

    assert esi_frequency() == ["esi-frequency"]        # three billed sessions: the fourth is over 3
    era = tmp_path / "era.835"
    era.write_text(interchange([transaction(1, [
        ("1", ("1*780*500*0*12*A1*11*1", [*_paid("64483:RT", "780", "500", "20250706", reduction="280")])),
        ("2", ("4*780*0*0*12*A2*11*1", [*service("64483:RT", "780", "0", date="20250907",
                                                 adjustments=["CO*50*780"])])),
        ("3", ("1*780*500*0*12*A3*11*1", [*_paid("64483:RT", "780", "500", "20251207", reduction="280")])),
        ("99", ("1*100*80*0*12*A9*11*1", [*_paid("99213", "100", "80", "20251207", reduction="20")])),
    ])]))
    done = _cli("history", "add", "--remit", era, "--db", db)
    assert done.returncode == 0, done.stderr
    assert "marked 2 service(s) paid, 1 denied, 0 reversed" in done.stdout
    assert "not in the store: 1 (99)" in done.stderr
    assert esi_frequency() == []                       # the denied session no longer counts
    from pain_asp.store import HistoryStore

    with HistoryStore(db) as store:
        assert [(s["date"], s["outcome"]) for s in store.show("P-REMIT")] == [
            ("2025-07-06", "paid"), ("2025-09-07", "denied"), ("2025-12-07", "paid")]


def test_a_reversal_takes_a_service_out_of_history(tmp_path):
    db = tmp_path / "history.sqlite"
    earlier = tmp_path / "earlier.yaml"
    earlier.write_text(ESI_HISTORY.replace("DATE", "2025-12-07").replace("commercial_strict_esi", "medicare"))
    assert _cli("history", "add", earlier, "--db", db).returncode == 0
    from pain_asp.store import HistoryStore

    with HistoryStore(db) as store:
        assert len(store.show("P-REMIT")) == 1
    era = tmp_path / "era.835"
    era.write_text(interchange([transaction(1, [
        ("1", ("1*780*500*0*MB*A1*11*1", [*_paid("64483:RT", "780", "500", "20251207", reduction="280")])),
        ("1", ("22*-780*-500*0*MB*A1*11*1", [*service("64483:RT", "-780", "-500", date="20251207",
                                                       adjustments=["CO*45*-280"])])),
    ])]))
    done = _cli("history", "add", "--remit", era, "--db", db)
    assert done.returncode == 0, done.stderr
    assert "0 service(s) paid, 0 denied, 1 reversed" in done.stdout
    with HistoryStore(db) as store:
        assert store.show("P-REMIT") == []


def test_rule_precision_is_recorded_once_per_remittance_and_shown_per_payer(checked, tmp_path):
    _, results, era = checked
    db = tmp_path / "stats.sqlite"
    for _ in range(2):    # recording the same remittances twice replaces, never doubles
        done = _remit(era, "--against", results, "--against", EXAMPLES, "--record", db, "-f", "json")
        assert done.returncode == 0, done.stderr
    listed = json.loads(_cli("rules", "list", "--remit-stats", db, "--format", "json").stdout)
    observed = {r["id"]: r["observed"] for r in listed}
    assert observed["imaging-included"] == [{"payer": "medicare", "predicted": 1, "confirmed": 1, "false_alarm": 0,
                                             "precision": 1.0, "carc_agreement": 1.0}]
    assert observed["addon-without-primary"] == [{"payer": "commercial", "predicted": 1, "confirmed": 0,
                                                  "false_alarm": 1, "precision": 0.0, "carc_agreement": None}]
    assert observed["kx-missing"] == []
    shown = _cli("rules", "show", "em-same-day-no-25", "--remit-stats", db)
    assert shown.returncode == 0, shown.stderr
    assert "medicare: precision 0.0 % (0 of 1 predicted denials confirmed, 1 false alarms)" in shown.stdout


def test_remittance_text_cannot_drive_the_terminal(checked, tmp_path):
    """Claim ids and codes come from the payer's file: printed for a person, control
    characters are shown escaped (as check does), never sent to the terminal raw."""
    _, results, _ = checked
    era = tmp_path / "ansi.835"
    era.write_text(interchange([transaction(1, [
        ("EX-13-clean-tfesi", ("4*780*0*0*MB*PCN13*11*1", [
            *service("6448\x1b[2J", "780", "0", date="20260310", adjustments=["CO*50*780"])])),
        ("BAD\x1b[31m", ("9*100*0*0*MB*PCNX*11*1", [*service("99213", "100", "0", date="20260310",
                                                              adjustments=["CO*50*100"])])),
    ])]))
    done = _remit(era, "--against", results)
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
    assert "\\x1b" in done.stderr                   # the bad claim's id, escaped in its error
