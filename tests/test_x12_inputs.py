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
from pain_asp.readers import read_claims

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


def test_a_folder_reads_x12_by_content_and_names_every_file_it_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    _copy(FACET.read_text(encoding="utf-8"), folder / "a.txt")
    _copy((X12 / "two_line_rtlt.837").read_text(encoding="utf-8"), folder / "b.dat")
    _copy("Jane Doe, DOB 1950-01-01, notes\n", folder / "notes.txt")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4 Jane Doe")
    result = runner.invoke(app, ["check", str(folder), "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    assert "2 claim(s)" in result.stdout
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 2
    assert any("notes.txt" in line and "not a claim file" in line for line in skipped)
    assert any("scan.pdf" in line for line in skipped)
    assert "Jane" not in result.stderr and "PDF" not in result.stderr


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
