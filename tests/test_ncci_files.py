"""CMS's NCCI downloads as they come (pain_asp/inputs/cms_files.py, pain_asp/ncci.py): .zip archives
holding the PTP text files, the MUE table as .csv and .xlsx with its header block, and the
add-on code (AOC) edit table; a file given under the wrong option is named, not read as rows.

The archives and workbooks are built here from the hand-written fixtures in tests/data/ncci
(CMS's layouts; illustrative rows, not CMS's values).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from test_ncci_import import DATA, MUE, PTP, own_data_folder  # noqa: F401  (the autouse fixture: an empty data folder)
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.engine import Checker, CheckOptions
from pain_asp.errors import PainAspError
from pain_asp.inputs.records import validate_claim
from pain_asp.ncci import AOC_FILE, import_ncci, load_tables, read_aoc

AOC = DATA / "AOC_V2026Q2-MCR.txt"
runner = CliRunner()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _xlsx(text_file: Path) -> bytes:
    """A workbook holding ``text_file``'s lines as rows (its header block first, as CMS's)."""
    import csv
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    text = text_file.read_text(encoding="utf-8")
    rows = csv.reader(io.StringIO(text)) if text_file.suffix == ".csv" else (
        line.split("\t") for line in text.splitlines())
    for row in rows:
        sheet.append([int(c) if c.isdigit() and len(c) <= 3 else c for c in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def downloads(tmp_path: Path) -> dict[str, Path]:
    """A quarter's downloads as CMS publishes them: one .zip per PTP file, the MUE .zip with
    the .csv and the .xlsx, the AOC .zip with the .xlsx and the fixed-width .txt."""
    ptp = [_zip(tmp_path / (p.stem + ".zip"), {p.name: p.read_bytes(), "README.pdf": b"%PDF-1.4"}) for p in PTP]
    mue = _zip(tmp_path / "MCR_MUE_PractitionerServices_Eff_04-01-2026.zip",
               {MUE.name: MUE.read_bytes(), MUE.stem + ".xlsx": _xlsx(MUE)})
    aoc = _zip(tmp_path / "AOC_V2026Q2-MCR.zip",
               {"AOC_V2026Q2-MCR.xlsx": _xlsx(AOC), "AOC_V2026Q2-MCR.txt": b"6448464479 1 2013091\n"})
    return {"ptp1": ptp[0], "ptp2": ptp[1], "mue": mue, "aoc": aoc}


def test_the_zip_downloads_import_as_they_come(downloads: dict[str, Path], tmp_path: Path) -> None:
    report = import_ncci([downloads["ptp1"], downloads["ptp2"]], downloads["mue"], tmp_path / "set",
                         aoc_file=downloads["aoc"])
    manifest = report.manifest
    assert (manifest["quarter"], manifest["version"]) == ("2026Q2", "32.1")
    assert [f["tables"] for f in manifest["ptp"]["files"]] == [["ccipra-v321r0-f1.txt"], ["ccipra-v321r0-f2.txt"]]
    assert manifest["mue"]["file"]["tables"] == [MUE.name]          # the .csv, not the .xlsx
    assert manifest["aoc"]["file"]["tables"] == ["AOC_V2026Q2-MCR.xlsx"]   # not the fixed-width .txt
    assert (manifest["aoc"]["quarter"], manifest["aoc"]["rows"]) == ("2026Q2", 4)
    tables = load_tables(str(tmp_path / "set"))
    assert tables.starter() == []
    assert tables.data_sets()["aoc"]["name"] == "CMS NCCI add-on code edits 2026Q2"
    assert sorted(tables.facts({"64484", "64479", "64483"})) == [
        'aoc_edit("64484", "64479", 1, 20130401, 99991231).',
        'aoc_edit("64484", "64483", 1, 20130401, 20191231).',
        'aoc_listed("64484", 1).', 'mue("64483", 1, 2).']
    assert "AOC AOC_V2026Q2-MCR.zip: 5 rows, kept 4 (quarter 2026Q2)" in report.text()


def test_the_mue_workbook_reads_like_the_csv(tmp_path: Path) -> None:
    workbook = tmp_path / "MCR_MUE_PractitionerServices_Eff_04-01-2026.xlsx"
    workbook.write_bytes(_xlsx(MUE))
    from_csv = import_ncci(PTP, MUE, tmp_path / "a").manifest["mue"]
    from_xlsx = import_ncci(PTP, workbook, tmp_path / "b").manifest["mue"]
    assert (from_xlsx["rows"], from_xlsx["file"]["rows"]) == (from_csv["rows"], from_csv["file"]["rows"])
    assert load_tables(str(tmp_path / "b")).mue == load_tables(str(tmp_path / "a")).mue


@pytest.mark.parametrize(("as_ptp", "message"), [
    (MUE, "this is the MUE table (its column header says so), given as --ptp: give it as --mue"),
    (AOC, "this is the add-on code (AOC) table (its column header says so), given as --ptp: give it as --aoc"),
])
def test_a_table_given_under_the_wrong_option_is_named(as_ptp: Path, message: str, tmp_path: Path) -> None:
    with pytest.raises(PainAspError) as caught:
        import_ncci([as_ptp], MUE, tmp_path / "set")
    assert message in str(caught.value)
    assert "got 1" not in str(caught.value)


def test_wrong_files_are_reported_clearly(downloads: dict[str, Path], tmp_path: Path) -> None:
    pdf = tmp_path / "policy.txt"
    pdf.write_bytes(b"%PDF-1.7 binary")
    with pytest.raises(PainAspError, match="not a text table"):
        import_ncci([pdf], MUE, tmp_path / "set")
    with pytest.raises(PainAspError, match=r"AOC_V2026Q2-MCR\.xlsx: this is the add-on code \(AOC\) table "
                                           r"\(its column header says so\), given as --mue: give it as --aoc"):
        import_ncci(PTP, downloads["aoc"], tmp_path / "set")
    manual = _zip(tmp_path / "manual.zip", {"NCCI-manual.pdf": b"%PDF-1.7"})
    with pytest.raises(PainAspError, match=r"a \.zip archive holding no MUE table \(it holds NCCI-manual\.pdf\)"):
        import_ncci(PTP, manual, tmp_path / "set")
    fixed = tmp_path / "AOC_V2026Q2-MCR.txt"
    fixed.write_text("6448464479 1 2013091 9999999\n", encoding="utf-8")
    with pytest.raises(PainAspError, match="no column header naming the add-on code"):
        import_ncci(PTP, MUE, tmp_path / "set", aoc_file=fixed)


def test_aoc_dates_and_types_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "AOC_V2026Q2-MCR.txt"
    header = AOC.read_text(encoding="utf-8").splitlines()[0]
    bad.write_text(header + "\n64484\t64479\t\t\t4\t2013091\t9999999\tx\n64484\t64479\t\t\t1\t2013400\t\tx\n",
                   encoding="utf-8")
    with pytest.raises(PainAspError) as caught:
        read_aoc(bad)
    assert "AOC edit type: expected 1, 2 or 3, got '4'" in str(caught.value)
    assert "'2013400' is not a Julian date (YYYYDDD)" in str(caught.value)


def _rules(raw: dict, ncci_dir: Path | None) -> set[str]:
    checker = Checker(CheckOptions(ncci_dir=str(ncci_dir) if ncci_dir else None))
    record = validate_claim(raw, "t", 1, checker.known_payers())
    return {f.rule for f in checker.check_claim(record.claim).findings}


def _claim(primary: str) -> dict:
    doc = {"imaging": "fluoroscopy", "side": "right", "purpose": "therapeutic", "levels": ["L4-L5", "L5-S1"]}
    return {"claim_id": "AOC-1", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P-AOC"},
            "diagnoses": ["M54.16"],
            "lines": [{"code": primary, "modifiers": ["RT"], "date": "2026-03-02", "dx": [1], "documented": doc},
                      {"code": "64484", "modifiers": ["RT"], "date": "2026-03-02", "dx": [1], "documented": doc}]}


def test_addon_without_primary_uses_cms_primaries_when_imported(tmp_path: Path) -> None:
    """The fixture makes 64484 a Type 1 add-on of 64479 only (its 64483 edit deleted in 2019):
    with it imported, 64483 no longer carries 64484, and 64479 does."""
    import_ncci(PTP, MUE, tmp_path / "set", aoc_file=AOC)
    assert "addon-without-primary" not in _rules(_claim("64483"), None)        # the catalog's primary
    assert "addon-without-primary" in _rules(_claim("64483"), tmp_path / "set")
    assert "addon-without-primary" not in _rules(_claim("64479"), tmp_path / "set")
    assert (tmp_path / "set" / AOC_FILE).is_file()


def test_command_line_import_of_the_zips_names_quarter_and_version(downloads: dict[str, Path]) -> None:
    result = runner.invoke(app, ["data", "import-ncci", "--ptp", str(downloads["ptp1"]), str(downloads["ptp2"]),
                                 "--mue", str(downloads["mue"]), "--aoc", str(downloads["aoc"])])
    assert result.exit_code == 0, result.output
    assert "quarter 2026Q2 (NCCI version 32.1)" in result.stdout
    status = runner.invoke(app, ["data", "status"]).stdout
    assert "add-on code table: CMS NCCI add-on code edits 2026Q2" in status and "missing:" not in status
    wrong = runner.invoke(app, ["data", "import-ncci", "--ptp", str(downloads["mue"]), "--mue", str(downloads["mue"])])
    assert wrong.exit_code == 2 and "this is the MUE table" in wrong.stderr and "give it as --mue" in wrong.stderr
