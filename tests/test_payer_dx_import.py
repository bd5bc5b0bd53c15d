"""pain-asp payers import-dx: billing articles' covered-diagnosis lists from CMS's Medicare
Coverage Database download become a payer file that extends Medicare (docs/payers.md)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import yaml
from typer.testing import CliRunner

from pain_asp.cli import app
from pain_asp.engine import Checker, CheckOptions
from pain_asp.models import parse_claim

# The layout of the MCD current-articles download (article.csv and the article_x_* tables);
# the rows are made up for the test: article 99901 is not a real article.
ARTICLE_CSV = (
    "article_id,article_version,article_type,title,article_eff_date,article_end_date,status\n"
    '99901,3,1,"Billing and Coding: Test Stimulators",2024-04-01 00:00:00,,A\n'
    '99901,2,1,"Billing and Coding: Test Stimulators (old)",2021-01-01 00:00:00,2024-03-31 00:00:00,A\n'
    '99902,1,1,"Billing and Coding: Retired Test",2019-01-01 00:00:00,2022-01-01 00:00:00,R\n'
    '99903,1,1,"Billing and Coding: No Codes",2019-01-01 00:00:00,,A\n'
)
COVERED_CSV = (
    "article_id,article_version,icd10_code_id,icd10_code_version,icd10_covered_group,range,description\n"
    "99901,3,M96.1,1,1,,postlaminectomy\n"
    "99901,3,G90.521,1,1,,crps\n"
    "99901,3,G89.29,1,2,,other chronic pain\n"
    "99901,2,Z00.00,1,1,,an older version's code\n"
    "99902,1,M96.1,1,1,,retired\n"
)
GROUPS_CSV = (
    "article_id,article_version,icd10_covered_group,paragraph,icd10_covered_ast\n"
    "99901,3,1,Group 1 paragraph,\n"
    "99901,3,2,Group 2 paragraph,*Report only with a code of group 1\n"
)


def download(tmp_path: Path, covered: str = COVERED_CSV, nested: bool = False) -> Path:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("current_article_csv/article.csv", ARTICLE_CSV)
        archive.writestr("current_article_csv/article_x_icd10_covered.csv", covered)
        archive.writestr("current_article_csv/article_x_icd10_covered_group.csv", GROUPS_CSV)
    path = tmp_path / "current_article.zip"
    if nested:
        with zipfile.ZipFile(path, "w") as outer:
            outer.writestr("current_article_csv.zip", inner.getvalue())
    else:
        path.write_bytes(inner.getvalue())
    return path


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["payers", "import-dx", *args])


def claim(code: str, dx: str, date: str) -> dict:
    return {"claim_id": "DX-1", "payer": "medicare_test", "place_of_service": "24", "patient": {"id": "P"},
            "diagnoses": [dx], "clinical": {"psych_evaluation": True},
            "lines": [{"code": code, "units": 2, "date": date, "dx": [1]}]}


def test_an_imported_list_judges_its_family_from_the_article_date_and_keeps_the_parents_lists(tmp_path: Path) -> None:
    out = tmp_path / "payers"
    out.mkdir()
    result = run(str(download(tmp_path, nested=True)), "--list", "scs=A99901", "--id", "medicare_test",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "scs: 3 covered code(s) of A99901 version 3, in force from 2024-04-01" in result.output
    written = yaml.safe_load((out / "medicare_test.yaml").read_text())
    entries = written["parameters"]["dx_coverage"]
    assert [e.get("since") for e in entries] == [None, __import__("datetime").date(2024, 4, 1)]
    scs = entries[1]["value"]["scs"]
    assert scs["value"] == ["G89.29", "G90.521", "M96.1"]
    assert scs["source"]["url"].endswith("articleId=99901&ver=3")
    assert "group(s) 2 carry an asterisk note" in scs["source"]["note"]
    assert "scs" not in entries[0]["value"] and "esi_transforaminal" in entries[0]["value"]

    checker = Checker(CheckOptions(payer_dirs=[str(out)]))

    def rules(code: str, dx: str, date: str) -> set[tuple[str, str]]:
        found = checker.check_claim(parse_claim(claim(code, dx, date))).findings
        return {(f.rule, f.severity) for f in found if f.rule.startswith("dx-")}

    assert rules("63650", "M96.1", "2026-03-02") == set()                                  # listed
    assert rules("63650", "M54.50", "2026-03-02") == {("dx-not-supporting", "deny")}       # not listed
    assert rules("63650", "M96.1", "2024-03-31") == {("dx-coverage-unknown", "info")}      # before the article
    assert rules("64483", "M54.50", "2026-03-02") == {("dx-not-supporting", "deny")}       # the parent's ESI list


def test_a_folder_download_and_a_code_key(tmp_path: Path) -> None:
    folder = tmp_path / "unpacked"
    folder.mkdir()
    (folder / "article.csv").write_text(ARTICLE_CSV)
    (folder / "article_x_icd10_covered.csv").write_text(COVERED_CSV)
    result = run(str(folder), "--list", "63685=99901", "--id", "medicare_gen", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    entries = yaml.safe_load((tmp_path / "medicare_gen.yaml").read_text())["parameters"]["dx_coverage"]
    assert entries[-1]["value"]["63685"]["value"] == ["G89.29", "G90.521", "M96.1"]
    assert "asterisk" not in entries[-1]["value"]["63685"]["source"]["note"]   # no group table given


def test_bad_input_is_exit_2_with_what_was_expected_and_writes_nothing(tmp_path: Path) -> None:
    good = download(tmp_path)
    bad_code = tmp_path / "bad"
    bad_code.mkdir()
    bad = download(bad_code, covered=COVERED_CSV + "99901,3,NOT-A-CODE,1,1,,x\n")
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("patient text that must not be echoed")
    cases = [
        ((str(good), "--list", "scs=A12345"), "no article A12345 in article.csv"),
        ((str(good), "--list", "scs=A99902"), "article A99902 (version 1) ended on 2022-01-01"),
        ((str(good), "--list", "scs=A99903"), "A99903 (version 1) lists no covered ICD-10-CM code"),
        ((str(bad), "--list", "scs=A99901"), "article_x_icd10_covered.csv, line 7, column icd10_code_id: "
                                             "expected an ICD-10-CM code"),
        ((str(good), "--list", "spinal=A99901"), "--list 1: expected KEY=ARTICLE with KEY a family or code"),
        ((str(good), "--list", "scs=B1"), "--list 1: expected KEY=ARTICLE with ARTICLE a billing article id"),
        ((str(not_zip), "--list", "scs=A99901"), "expected the MCD current-articles download"),
        ((str(good), "--list", "scs=A99901", "--extends", "nobody"), "--extends nobody: not a payer id"),
    ]
    for args, message in cases:
        result = run(*args, "--id", "medicare_x", "--out", str(tmp_path))
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output and "patient text" not in result.output
    assert not (tmp_path / "medicare_x.yaml").exists()


def test_an_existing_payer_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("hand-written\n")
    result = run(str(download(tmp_path)), "--list", "scs=A99901", "--id", "mine", "--out", str(tmp_path))
    assert result.exit_code == 2 and "refusing to overwrite" in result.output
    assert (tmp_path / "mine.yaml").read_text() == "hand-written\n"
    result = run(str(download(tmp_path)), "--list", "scs=A99901", "--id", "medicare", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_damaged_table_is_named_by_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "unpacked"
    folder.mkdir()
    (folder / "article.csv").write_text(ARTICLE_CSV)
    (folder / "article_x_icd10_covered.csv").write_text(COVERED_CSV + '99901,3,"M96.1' + "x" * 200_000 + "\n")
    result = run(str(folder), "--list", "scs=A99901", "--id", "medicare_y", "--out", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "article_x_icd10_covered.csv, line 7: not a readable CSV row" in result.output
    (folder / "article.csv").write_text("article_id,title\n1,x\n")
    result = run(str(folder), "--list", "scs=A99901", "--id", "medicare_y", "--out", str(tmp_path))
    assert result.exit_code == 2 and "article.csv: no column article_version, article_eff_date" in result.output
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(download(tmp_path).read_bytes()[:300])
    result = run(str(truncated), "--list", "scs=A99901", "--id", "medicare_y", "--out", str(tmp_path))
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "medicare_y.yaml").exists()


def test_a_payer_id_that_no_payer_file_could_carry_is_refused(tmp_path: Path) -> None:
    result = run(str(download(tmp_path)), "--list", "scs=A99901", "--id", "../Medicare", "--out", str(tmp_path))
    assert result.exit_code == 2 and "--id: expected a payer id" in result.output, result.output
    assert list(tmp_path.glob("*.yaml")) == [] and not (tmp_path.parent / "Medicare.yaml").exists()
