"""Reference data is never silent (README.md, docs/reference-data.md): which NCCI tables and ICD-10-CM release a
check used is in every output, a finding names the table that decided it, --require-data
refuses starter tables, and rule cases never read a data set the user imported."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.authoring.casefiles import load_case, run_cases
from pain_asp.cli import app
from pain_asp.ncci import MANIFEST, MUE_FILE, PTP_FILE, PTP_HEADER
from pain_asp.resources import kb_dir

runner = CliRunner()
CASES = Path(__file__).resolve().parent / "cases"
CLAIM = """\
claim_id: RD-1
payer: medicare
place_of_service: "11"
patient: {id: P-RD}
diagnoses: [M54.5]
lines:
  - {code: "64493", modifiers: [RT], units: 3, date: 2025-03-02, dx: [1]}
  - {code: "64494", modifiers: [RT], date: 2025-03-02, dx: [1]}
"""


@pytest.fixture
def claim_file(tmp_path: Path) -> Path:
    path = tmp_path / "claim.yaml"
    path.write_text(CLAIM, encoding="utf-8")
    return path


def _plant_import(folder: Path, ptp_rows: list[str]) -> None:
    """An imported data set as ``data import-ncci`` leaves it (manifest and both tables)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PTP_FILE).write_text("\n".join([PTP_HEADER, *ptp_rows]) + "\n", encoding="utf-8")
    (folder / MUE_FILE).write_text((kb_dir() / "data" / MUE_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / MANIFEST).write_text(json.dumps({"format": 1, "quarter": "2026Q2", "version": "32.1"}),
                                   encoding="utf-8")


def test_text_output_says_the_ncci_tables_are_the_starter_set(claim_file: Path) -> None:
    result = runner.invoke(app, ["check", str(claim_file)])
    first = result.stdout.splitlines()[0]
    assert first.startswith("NCCI data:") and "not CMS's" in first and "PTP, MUE, add-on code" in first


def test_every_jsonl_record_names_the_tables_and_which_are_not_cms(claim_file: Path) -> None:
    result = runner.invoke(app, ["check", str(claim_file), "-f", "jsonl"])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1
    assert records[0]["ncci_data"]["not_cms"] == ["ptp", "mue", "aoc"]
    assert "starter" in records[0]["ncci_data"]["ptp"]


def test_require_data_fails_on_starter_tables(claim_file: Path) -> None:
    result = runner.invoke(app, ["check", str(claim_file), "--require-data"])
    assert result.exit_code == 2
    assert "--require-data" in result.stderr and "not CMS's" in result.stderr
    assert result.stdout == ""


def test_data_status_says_what_is_missing_and_lists_the_icd_releases() -> None:
    result = runner.invoke(app, ["data", "status"])
    assert "missing: CMS's PTP table, CMS's MUE table, CMS's add-on code table" in result.stdout
    assert "FY2021: 2020-10-01 to 2021-09-30" in result.stdout
    info = json.loads(runner.invoke(app, ["data", "status", "-f", "json"]).stdout)
    assert [p["release"] for p in info["icd10cm"]][-1] == "FY2026"


def test_findings_name_the_release_or_table_that_decided_them(claim_file: Path, tmp_path: Path) -> None:
    record = json.loads(runner.invoke(app, ["check", str(claim_file), "-f", "jsonl"]).stdout)
    by_rule = {f["rule"]: f["source"][0] for f in record["findings"]}
    assert by_rule["dx-invalid"]["document"].startswith("ICD-10-CM FY2025 (2024-10-01 to 2025-03-31)")
    assert by_rule["units-exceed-mue"]["document"].startswith("pain-asp starter MUE table")
    assert by_rule["units-exceed-mue"]["confidence"] == "starter"
    folder = tmp_path / "imported"
    _plant_import(folder, ["64493\t64494\t\t20200101\t*\t0\tplanted"])
    record = json.loads(runner.invoke(app, ["check", str(claim_file), "-f", "jsonl", "--ncci-dir", str(folder)]).stdout)
    ptp = [f for f in record["findings"] if f["rule"] == "ncci-ptp-bundled"]
    assert ptp and ptp[0]["source"][0]["document"] == "CMS NCCI practitioner PTP edits 2026Q2 (NCCI version 32.1)"
    assert ptp[0]["source"][0]["effective"] == "2026-04-01"
    assert record["ncci_data"]["not_cms"] == ["aoc"]
    text = runner.invoke(app, ["explain", str(claim_file), "--ncci-dir", str(folder)]).stdout
    assert "CMS NCCI practitioner PTP edits 2026Q2" in text and "ICD-10-CM FY2025" in text


def test_the_html_report_shows_starter_tables(claim_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(claim_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert 'id="ncci-data"' in page and "pain-asp starter PTP table" in page


def test_rule_cases_run_on_the_shipped_tables_even_with_a_data_set_imported() -> None:
    """A PTP pair planted in the user's data folder would fire on this case if it were read."""
    import os

    _plant_import(Path(os.environ["PAIN_ASP_DATA_DIR"]) / "ncci", ["64493\t64494\t\t20200101\t*\t0\tplanted"])
    try:
        case = load_case(CASES / "addon-without-primary" / "pass_facet_two_levels_bilateral.yaml")
        outcome = run_cases([case])[0]
        assert outcome.passed, outcome.diff()
    finally:
        for name in (MANIFEST, PTP_FILE, MUE_FILE):
            (Path(os.environ["PAIN_ASP_DATA_DIR"]) / "ncci" / name).unlink()


def _catalog_model() -> list:
    import clingo

    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(kb_dir() / "catalog" / "codes.lp"))
    ctl.ground([("base", [])])
    with ctl.solve(yield_=True) as handle:
        return list(next(iter(handle)).symbols(atoms=True))


def test_every_catalog_code_has_validity_dates_through_2026() -> None:
    """The yearly update step (docs/reference-data.md) keeps every code of the catalog dated:
    each has a window, each window is ordered, every code not deleted is valid on 2026-12-31,
    and a deleted code names a replacement that is itself valid after the deletion."""
    atoms = _catalog_model()
    codes = {a.arguments[0].string for a in atoms if a.name == "code" and len(a.arguments) == 4}
    windows: dict[str, list[tuple[int, int]]] = {}
    for a in atoms:
        if a.name == "code_valid":
            windows.setdefault(a.arguments[0].string, []).append((a.arguments[1].number, a.arguments[2].number))
    deleted = {a.arguments[0].string: (a.arguments[1].number, a.arguments[2].string)
               for a in atoms if a.name == "deleted_code"}
    assert codes and codes <= set(windows), sorted(codes - set(windows))
    assert all(start <= end for spans in windows.values() for start, end in spans)
    for code in codes - set(deleted):
        assert any(start <= 20261231 <= end for start, end in windows[code]), code
    for code, (last, successor) in deleted.items():
        assert max(end for _, end in windows[code]) == last
        day = dt.date(last // 10000, last // 100 % 100, last % 100) + dt.timedelta(days=1)
        after = day.year * 10000 + day.month * 100 + day.day
        assert any(start <= after <= end for start, end in windows[successor]), (code, successor)
    assert windows["99439"] == [(20210101, 99991231)] and windows["77002"] == [(20070101, 99991231)]
