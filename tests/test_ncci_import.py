"""CMS NCCI data import (pain_asp/ncci.py) and code validity data.

The fixtures in tests/data/ncci are small hand-written files in CMS's practitioner layout
(a copyright line, the column header, tab-separated PTP rows; a comma-separated MUE table);
their rows are illustrative, not CMS's values.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.engine import Checker, CheckOptions
from pain_asp.errors import PainAspError
from pain_asp.inputs.records import validate_claim
from pain_asp.ncci import (
    MANIFEST,
    MUE_FILE,
    PTP_FILE,
    import_ncci,
    installed_dir,
    load_tables,
    ncci_version,
    read_mue,
    read_ptp,
    resolve_dir,
    status,
)
from pain_asp.resources import kb_dir

DATA = Path(__file__).resolve().parent / "data" / "ncci"
PTP = [DATA / "ccipra-v321r0-f1.txt", DATA / "ccipra-v321r0-f2.txt"]
MUE = DATA / "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv"
BAD_PTP = DATA / "ccipra-v321r0-f3-malformed.txt"
BAD_MUE = DATA / "mue_malformed.txt"
runner = CliRunner()


@pytest.fixture(autouse=True)
def own_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty per-user data folder: nothing leaks into ~/.local/share."""
    folder = tmp_path / "user-data"
    monkeypatch.setenv("PAIN_ASP_DATA_DIR", str(folder))
    return folder


def claim(lines: list[dict], claim_id: str = "N-1") -> dict:
    return {"claim_id": claim_id, "payer": "medicare", "place_of_service": "11",
            "patient": {"id": "P-N"}, "diagnoses": ["M47.816", "M54.16"], "lines": lines}


def rules_found(raw: dict, ncci_dir: Path | None) -> set[tuple[str, tuple[int, ...]]]:
    checker = Checker(CheckOptions(ncci_dir=str(ncci_dir) if ncci_dir else None))
    record = validate_claim(raw, "t", 1, checker.known_payers())
    assert record.ok, record.errors
    (result,) = checker.check([record])
    return {(f.rule, tuple(f.lines)) for f in result.findings}


# --- import -------------------------------------------------------------------------------

def test_fixtures_load_and_only_rows_touching_kb_codes_are_kept(tmp_path: Path) -> None:
    report = import_ncci(PTP, MUE, tmp_path / "set")
    manifest = report.manifest
    assert manifest["quarter"] == "2026Q2" and manifest["version"] == "32.1"
    assert [(f["name"], f["rows"], f["kept"], f["preamble_lines"]) for f in manifest["ptp"]["files"]] == [
        ("ccipra-v321r0-f1.txt", 5, 4, 1), ("ccipra-v321r0-f2.txt", 1, 1, 0)]
    assert (manifest["mue"]["file"]["rows"], manifest["mue"]["file"]["kept"]) == (4, 3)
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["ptp"]["files"][0]["sha256"])
    assert report.warnings == [] and report.malformed == []
    tables = load_tables(str(tmp_path / "set"))
    assert tables.ptp_count == 5 and tables.mue_count == 3
    assert "J1030" not in tables.ptp_by_code and "J1030" not in tables.mue
    assert tables.facts({"64493", "77003"}) == [
        'ptp_edit("64493", "77003", 1, 20100101, 99991231).', 'mue("64493", 2, 2).']
    # the stored tables are in the layout the engine reads, and reading them again is stable
    assert read_ptp(tmp_path / "set" / PTP_FILE) == [r for rows in tables.ptp_by_code.values() for r in rows]
    assert "quarter 2026Q2 (NCCI version 32.1)" in report.text()


def test_all_keeps_every_row(tmp_path: Path) -> None:
    report = import_ncci(PTP, MUE, tmp_path / "set", keep_all=True)
    assert report.manifest["ptp"]["rows"] == 6 and report.manifest["mue"]["rows"] == 4
    assert report.manifest["filter"] == "all rows"
    assert load_tables(str(tmp_path / "set")).facts({"J1030", "J3301"}) == [
        'ptp_edit("J1030", "J3301", 0, 20150101, 99991231).', 'mue("J1030", 10, 3).']


def test_indicator_9_rows_are_stored_but_never_reach_the_grounder(tmp_path: Path) -> None:
    import_ncci(PTP, MUE, tmp_path / "set")
    tables = load_tables(str(tmp_path / "set"))
    assert any(r.indicator == 9 and r.prior_1996 for r in tables.ptp_by_code["64493"])
    assert not any("64490" in fact for fact in tables.facts({"64493", "64490"}))


def test_a_pair_deleted_before_the_date_of_service_does_not_fire(tmp_path: Path) -> None:
    import_ncci(PTP, MUE, tmp_path / "set")
    lines = [{"code": "64483", "modifiers": ["RT"], "date": "DATE", "dx": [2]},
             {"code": "64493", "modifiers": ["RT"], "date": "DATE", "dx": [1]}]

    def on(day: str) -> list[dict]:
        return [{**line, "date": day} for line in lines]

    # The fixture's (64483, 64493) edit, indicator 0, ran from 2010-01-01 to its deletion on
    # 2020-12-31: in force in 2019, gone the day after its deletion and in 2026.
    assert ("ncci-ptp-bundled", (2,)) in rules_found(claim(on("2019-06-03")), tmp_path / "set")
    assert not any(r == "ncci-ptp-bundled" for r, _ in rules_found(claim(on("2021-01-01")), tmp_path / "set"))
    assert not any(r == "ncci-ptp-bundled" for r, _ in rules_found(claim(on("2026-03-02")), tmp_path / "set"))


def test_an_imported_mue_overrides_the_shipped_value(tmp_path: Path, own_data_folder: Path) -> None:
    two_units = claim([{"code": "64493", "modifiers": ["RT"], "units": 2, "date": "2026-03-02", "dx": [1]}])
    # shipped starter table: 64493 has an MUE of 1 (codingahead, secondary)
    assert ("units-exceed-mue", (1,)) in rules_found(two_units, None)
    # the imported (illustrative) table says 2, whether named or found in the data folder
    import_ncci(PTP, MUE, tmp_path / "set")
    assert not any(r == "units-exceed-mue" for r, _ in rules_found(two_units, tmp_path / "set"))
    import_ncci(PTP, MUE)
    assert installed_dir() == own_data_folder / "ncci"
    assert not any(r == "units-exceed-mue" for r, _ in rules_found(two_units, None))
    three_units = claim([{"code": "64493", "modifiers": ["RT"], "units": 3, "date": "2026-03-02", "dx": [1]}])
    assert ("units-exceed-mue", (1,)) in rules_found(three_units, None)


def test_checks_use_the_imported_set_only_when_complete(own_data_folder: Path) -> None:
    assert resolve_dir() == kb_dir() / "data"
    assert status()["kind"].startswith("shipped starter tables")
    import_ncci(PTP, MUE)
    folder = own_data_folder / "ncci"
    assert resolve_dir() == folder and load_tables().origin == str(folder)
    info = status()
    assert (info["kind"], info["quarter"], info["version"], info["ptp_rows"], info["mue_rows"]) == (
        "imported CMS data set", "2026Q2", "32.1", 5, 3)
    (folder / MANIFEST).unlink()                   # an interrupted import leaves no manifest
    assert installed_dir() is None and resolve_dir() == kb_dir() / "data"
    assert resolve_dir(str(folder)) == folder      # a named folder is used as it is


def test_only_pairs_touching_the_claims_codes_reach_the_grounder(tmp_path: Path) -> None:
    import_ncci(PTP, MUE, tmp_path / "set", keep_all=True)
    checker = Checker(CheckOptions(ncci_dir=str(tmp_path / "set")))
    raw = claim([{"code": "64493", "modifiers": ["50"], "date": "2026-03-02", "dx": [1]},
                 {"code": "77003", "date": "2026-03-02", "dx": [1]}])
    record = validate_claim(raw, "t", 1, checker.known_payers())
    facts = checker.facts([record.claim], None)
    table_facts = sorted(line for line in facts.splitlines() if line.startswith(("ptp_edit(", "mue(")))
    assert table_facts == ['mue("64493", 2, 2).', 'ptp_edit("64493", "77003", 1, 20100101, 99991231).']


def test_malformed_rows_are_reported_with_file_and_line(tmp_path: Path) -> None:
    target = tmp_path / "set"
    result = runner.invoke(app, ["data", "import-ncci", "--ptp", str(BAD_PTP), "--mue", str(BAD_MUE),
                                 "--into", str(target)])
    assert result.exit_code == 2 and not target.exists()
    for where in ("f3-malformed.txt:3: modifier indicator", "f3-malformed.txt:4: column 1",
                  "f3-malformed.txt:5: effective date", "f3-malformed.txt:6: expected at least 6",
                  "mue_malformed.txt:2: MUE value", "mue_malformed.txt:3: MUE adjudication indicator"):
        assert where in result.stderr, (where, result.stderr)
    assert "nothing was imported" in result.stderr and "Traceback" not in result.stderr
    result = runner.invoke(app, ["data", "import-ncci", "--ptp", str(BAD_PTP), "--mue", str(BAD_MUE),
                                 "--into", str(target), "--skip-malformed"])
    assert result.exit_code == 0, result.stderr
    assert "skipped 6 malformed row(s)" in result.stdout and "f3-malformed.txt:4" in result.stdout
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["malformed_skipped"] == 6 and manifest["ptp"]["rows"] == 1


def test_a_hand_edited_table_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    shutil.copy(BAD_PTP, folder / PTP_FILE)
    shutil.copy(kb_dir() / "data" / MUE_FILE, folder / MUE_FILE)
    with pytest.raises(PainAspError, match=rf"{PTP_FILE}:3: modifier indicator"):
        Checker(CheckOptions(ncci_dir=str(folder)))
    with pytest.raises(PainAspError, match=r"mue_malformed.txt:2: MUE value"):
        read_mue(BAD_MUE)


def test_the_shipped_tables_still_read() -> None:
    shipped = kb_dir() / "data"
    assert [(r.column1, r.column2, r.indicator) for r in read_ptp(shipped / PTP_FILE)] == [
        ("20610", "76942", 0), ("20611", "76942", 0), ("20600", "76942", 0), ("20604", "76942", 0),
        ("20605", "76942", 0), ("20606", "76942", 0), ("62263", "62264", 0),
        ("20604", "76881", 1), ("20604", "76882", 1), ("20606", "76881", 1), ("20606", "76882", 1),
        ("20611", "76881", 1), ("20611", "76882", 1), ("63685", "63688", 1),
        ("22510", "20225", 1), ("22511", "20225", 1), ("22513", "20225", 1), ("22514", "20225", 1),
        ("20611", "20610", 1), ("95971", "95970", 1), ("95972", "95970", 1), ("95972", "95971", 1)]
    assert [(r.code, r.value, r.mai) for r in read_mue(shipped / MUE_FILE)] == [
        ("64493", 1, 2), ("64494", 1, 2), ("76942", 1, 2), ("77002", 1, 2), ("77003", 1, 2), ("77012", 1, 2),
        ("64615", 1, 2), ("62263", 1, 2), ("62264", 1, 2), ("95970", 1, 2), ("95971", 1, 2), ("95972", 1, 2),
        ("63650", 2, 2), ("62367", 1, 2), ("62368", 1, 2), ("62369", 1, 2), ("62370", 1, 2), ("95990", 1, 2),
        ("95991", 1, 2), ("80305", 1, 2), ("80306", 1, 2), ("80307", 1, 2), ("G0480", 1, 2), ("G0481", 1, 2),
        ("G0482", 1, 2), ("G0483", 1, 2), ("G0659", 1, 2), ("27096", 1, 2), ("64451", 1, 2)]


def test_hospital_files_mixed_releases_and_bad_quarters_are_refused(tmp_path: Path) -> None:
    hospital = tmp_path / "ccioph-v321r0-f1.txt"
    shutil.copy(PTP[0], hospital)
    with pytest.raises(PainAspError, match="hospital outpatient PTP file"):
        import_ncci([hospital], MUE, tmp_path / "set")
    older = tmp_path / "ccipra-v320r0-f2.txt"
    shutil.copy(PTP[1], older)
    with pytest.raises(PainAspError, match="different NCCI versions"):
        import_ncci([PTP[0], older], MUE, tmp_path / "set")
    with pytest.raises(PainAspError, match="--quarter 2026-1"):
        import_ncci(PTP, MUE, tmp_path / "set", quarter="2026-1")
    with pytest.raises(PainAspError, match="no such file"):
        import_ncci([tmp_path / "missing.txt"], MUE, tmp_path / "set")
    with pytest.raises(PainAspError, match="no row touches"):
        import_ncci([PTP[0]], MUE, tmp_path / "set", known_codes={"00000"})


def test_version_and_quarter_come_from_the_file_names(tmp_path: Path) -> None:
    assert ncci_version("ccipra-v320r0-f1.txt") == ("32.0", "2026Q1")
    assert ncci_version("CCIPRA-V313R0-F4.TXT") == ("31.3", "2025Q4")
    assert ncci_version("ptp.txt") is None
    renamed = tmp_path / "practitioner_ptp.txt"
    shutil.copy(PTP[0], renamed)
    report = import_ncci([renamed], MUE, tmp_path / "a")
    assert report.manifest["quarter"] == "2026Q2" and report.manifest["quarter_from"] == "the MUE file name"
    assert any("not named like CMS's practitioner PTP files" in w for w in report.warnings)
    mue = tmp_path / "mue.csv"
    shutil.copy(MUE, mue)
    report = import_ncci([renamed], mue, tmp_path / "b")
    assert report.manifest["quarter"] is None and any("--quarter" in w for w in report.warnings)
    report = import_ncci([renamed], mue, tmp_path / "c", quarter="2026Q1")
    assert (report.manifest["quarter"], report.manifest["quarter_from"]) == ("2026Q1", "--quarter")
    july = tmp_path / "MUE_Practitioner_2026-07-01.csv"
    shutil.copy(MUE, july)
    report = import_ncci(PTP, july, tmp_path / "d")
    assert any("same release" in w for w in report.warnings)


def test_tab_separated_mue_and_header_without_preamble(tmp_path: Path) -> None:
    mue = tmp_path / "mue.txt"
    mue.write_text("HCPCS/CPT Code\tPractitioner Services MUE Values\tMUE Adjudication Indicator\t"
                   "MUE Rationale\n64495\t1\t2 Date of Service Edit: Policy\tIllustrative\n")
    assert [(r.code, r.value, r.mai) for r in read_mue(mue)] == [("64495", 1, 2)]
    dup = tmp_path / "dup.txt"
    dup.write_text(mue.read_text() + "64495\t2\t2\tagain\n")
    with pytest.raises(PainAspError, match="dup.txt:3: code 64495 already has an MUE on line 2"):
        read_mue(dup)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Copyright \u00a9 text\n".encode("latin-1") + PTP[1].read_bytes())
    assert [r.column1 for r in read_ptp(latin)] == ["99213"]


def test_command_line_import_and_status(tmp_path: Path, own_data_folder: Path) -> None:
    result = runner.invoke(app, ["data", "status"])
    assert result.exit_code == 0 and "shipped starter tables" in result.stdout
    result = runner.invoke(app, ["data", "import-ncci", "--ptp", str(PTP[0]), str(PTP[1]), "--mue", str(MUE)])
    assert result.exit_code == 0, result.stderr
    assert "checks now use this data set" in result.stdout
    result = runner.invoke(app, ["data", "status"])
    assert "imported CMS data set" in result.stdout and "quarter: 2026Q2 (NCCI version 32.1)" in result.stdout
    assert str(own_data_folder / "ncci") in result.stdout
    result = runner.invoke(app, ["data", "status", "--format", "json", "--ncci-dir", str(kb_dir() / "data")])
    assert json.loads(result.stdout)["ptp_rows"] == 22
    result = runner.invoke(app, ["data", "status", "--ncci-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 2


def test_large_imported_tables_are_read_code_by_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pain_asp.ncci as ncci

    import_ncci(PTP, MUE, tmp_path / "set", keep_all=True)
    eager = load_tables(str(tmp_path / "set"))
    assert eager.lazy is None                       # small: parsed whole
    monkeypatch.setattr(ncci, "LAZY_ROWS", 0)
    ncci._load.cache_clear()
    lazy = load_tables(str(tmp_path / "set"))
    assert lazy.lazy is not None and lazy.ptp_count == eager.ptp_count == 6
    for codes in ({"64493", "77003", "64490"}, {"64483", "64493"}, {"J1030", "J3301", "99213", "64483"}):
        assert lazy.facts(codes) == eager.facts(codes)
    table = tmp_path / "set" / PTP_FILE
    table.write_text(table.read_text() + "64495\t77003\t\t20100101\t*\t1\tadded by hand\n")
    edited = load_tables(str(tmp_path / "set"))     # the index no longer matches: read whole
    assert edited.lazy is None and edited.ptp_count == 7
    ncci._load.cache_clear()
