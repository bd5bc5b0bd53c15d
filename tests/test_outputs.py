"""Input and output safety (README.md): outputs never overwrite an input and are written
atomically, output paths are checked up front, killed batches leave nothing behind, claim
text cannot become a spreadsheet formula or a terminal control sequence, and errors are
always summarised on standard error."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pain_asp.bench.generate import write_jsonl
from pain_asp.cli import app
from pain_asp.errors import PainAspError
from pain_asp.modes.batch_frames import Spool
from pain_asp.modes.check import BatchOptions, default_workers

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples" / "claims.yaml"

CLAIM = {
    "claim_id": "C-1", "payer": "medicare", "place_of_service": "11", "patient": {"id": "P-1"},
    "diagnoses": ["M47.816"],
    "lines": [{"code": "64493", "modifiers": ["RT"], "date": "2026-03-02", "dx": [1],
               "documented": {"imaging": "fluoroscopy", "side": "right", "levels": ["L4-L5"],
                              "purpose": "diagnostic"}}],
}


def _claims(tmp_path: Path, *claims: dict, name: str = "claims.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(list(claims) or [CLAIM]))
    return path


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- 1. never overwrite an input; every output through a temporary file and a rename ---------

@pytest.mark.parametrize("command", [["check"], ["check", "-f", "jsonl"], ["fix"]])
def test_an_output_naming_an_input_is_refused_and_the_input_kept(tmp_path: Path, command: list[str]) -> None:
    source = _claims(tmp_path)
    before = source.read_bytes()
    for spelling in (str(source), str(tmp_path / "." / source.name)):
        done = runner.invoke(app, [*command, str(source), "-o", spelling])
        assert done.exit_code == 2, done.output
        assert "is an input" in done.stderr and "Traceback" not in done.output
        assert source.read_bytes() == before
    assert _listing(tmp_path) == ["claims.json"]


def test_an_output_linked_to_an_input_or_inside_an_input_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = _claims(folder, name="a.json")
    (tmp_path / "link.json").symlink_to(source)
    before = source.read_bytes()
    for target in (tmp_path / "link.json", source):
        done = runner.invoke(app, ["check", str(folder), "-o", str(target)])
        assert done.exit_code == 2 and "is an input" in done.stderr, done.output
    assert source.read_bytes() == before
    from pain_asp.store import HistoryStore

    db = tmp_path / "history.sqlite"
    with HistoryStore(db):
        pass
    stored = db.read_bytes()
    done = runner.invoke(app, ["check", str(source), "--history", str(db), "-o", str(db)])
    assert done.exit_code == 2 and "is an input" in done.stderr and db.read_bytes() == stored


def test_atomic_output_replaces_only_on_success_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    from pain_asp.outputs import atomic_output

    target = tmp_path / "out.jsonl"
    target.write_text("old results\n")
    target.chmod(0o640)
    with pytest.raises(RuntimeError):
        with atomic_output(target) as handle:
            handle.write("half a new file")
            if Path("/proc/self/fd").is_dir():  # Linux: the temporary file has no name yet
                assert _listing(tmp_path) == ["out.jsonl"]
            raise RuntimeError("crash")
    assert target.read_text() == "old results\n" and _listing(tmp_path) == ["out.jsonl"]
    with atomic_output(target) as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n" and _listing(tmp_path) == ["out.jsonl"]
    assert target.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its permissions
    with pytest.raises(PainAspError, match="cannot write in"):
        with atomic_output(tmp_path / "missing" / "x.txt"):
            pass
    fresh = tmp_path / "fresh.csv"
    with atomic_output(fresh) as handle:
        handle.write("x\n")
    assert fresh.stat().st_mode & 0o777 == 0o600  # a new one is its owner's only (claims are PHI)


def test_a_check_that_fails_while_writing_keeps_the_old_output(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from pain_asp.render.results import ResultWriter

    source = _claims(tmp_path, CLAIM, {**CLAIM, "claim_id": "C-2"})
    out = tmp_path / "out"
    out.mkdir()
    target = out / "results.jsonl"
    target.write_text("yesterday's results\n")

    def broken_end(self: ResultWriter) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ResultWriter, "end", broken_end)
    done = runner.invoke(app, ["check", str(source), "-f", "jsonl", "-o", str(target)])
    assert done.exit_code != 0
    assert target.read_text() == "yesterday's results\n" and _listing(out) == ["results.jsonl"]


def test_fix_writes_its_corrected_claims_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pain_asp.outputs

    source = _claims(tmp_path)
    target = tmp_path / "out" / "fixed.jsonl"
    target.parent.mkdir()
    used: list[Path] = []
    real = pain_asp.outputs.atomic_output

    def spy(path: Path):  # noqa: ANN202
        used.append(Path(path))
        return real(path)

    monkeypatch.setattr(pain_asp.outputs, "atomic_output", spy)
    done = runner.invoke(app, ["fix", str(source), "-o", str(target)])
    assert done.exit_code in (0, 1), done.output
    # A cold cache (a kb file changed since the last run) writes its files the same way.
    assert [p for p in used if p.parent == target.parent] == [target]
    assert _listing(target.parent) == ["fixed.jsonl"]


# --- 5. output paths in a missing folder or naming a folder: exit 2 with the path's problem ---

@pytest.mark.parametrize("command,name", [(["check"], "r.jsonl"), (["fix"], "f.json"),
                                          (["report"], "r.html")])
def test_output_in_a_missing_folder_or_naming_a_folder_is_exit_2(tmp_path: Path, command: list[str],
                                                                   name: str) -> None:
    source = _claims(tmp_path)
    missing = tmp_path / "nowhere" / name
    done = runner.invoke(app, [*command, str(source), "-o", str(missing)])
    assert done.exit_code == 2, done.output
    assert "does not exist" in done.stderr and str(missing.parent) in done.stderr
    folder = tmp_path / name  # a folder named like the output
    folder.mkdir()
    done = runner.invoke(app, [*command, str(source), "-o", str(folder)])
    assert done.exit_code == 2, done.output
    assert "is a folder" in done.stderr and "Traceback" not in done.output


def test_docs_into_a_missing_folder_or_a_file_is_exit_2(tmp_path: Path) -> None:
    done = runner.invoke(app, ["docs", "--out", str(tmp_path / "nowhere")])
    assert done.exit_code == 2 and "does not exist" in done.stderr, done.output
    file = tmp_path / "docs"
    file.write_text("not a folder")
    done = runner.invoke(app, ["docs", "--out", str(file)])
    assert done.exit_code == 2 and "not a folder" in done.stderr, done.output
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    done = runner.invoke(app, ["docs", "--out", str(fresh)])
    assert done.exit_code == 0, done.output
    assert _listing(fresh) == sorted(["claim-format.md", "encounter-format.md", "payers.md", "rules.md", "sources.md"])


def test_code_on_an_encounter_with_an_impossible_date_is_a_field_error(tmp_path: Path) -> None:
    encounter = tmp_path / "enc.yaml"
    encounter.write_text("payer: medicare\nplace_of_service: \"11\"\ndate: 2026-02-30\n"
                         "diagnoses: [M54.16]\nprocedures:\n  - right L5-S1 TFESI with fluoroscopy\n")
    done = runner.invoke(app, ["code", str(encounter)])
    assert done.exit_code == 2, done.output
    assert "date" in done.stderr and "YYYY-MM-DD" in done.stderr and "Traceback" not in done.output


def test_report_on_malformed_results_records_reports_them_and_builds_the_rest(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    done = runner.invoke(app, ["check", str(EXAMPLES), "-f", "jsonl", "-o", str(results), "--fail-on", "never"])
    assert done.exit_code == 0, done.output
    good = results.read_text().splitlines()
    broken = dict(json.loads(good[1]), findings="not a list")
    bad_finding = dict(json.loads(good[2]), findings=[{"rule": "x", "severity": "deny", "lines": "one"}])
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join([good[0], json.dumps(broken), "{oops", json.dumps(bad_finding), *good[3:]]) + "\n")
    target = tmp_path / "r.html"
    done = runner.invoke(app, ["report", str(mixed), "-o", str(target)])
    assert done.exit_code == 2, done.output
    assert "Traceback" not in done.output
    for line in (2, 3, 4):
        assert f"mixed.jsonl:{line}" in done.stderr
    assert "expected" in done.stderr
    page = target.read_text()
    # the ten good records after the bad ones count too; the three bad ones count as unreadable
    assert f"{len(good) + 1:,} claims" in done.stdout and "3 unreadable" in done.stdout
    assert page.count("mixed.jsonl:") == 3


# --- 9. a killed batch leaves nothing behind ---------------------------------------------------

def test_the_spool_has_no_name_and_is_its_owners_only(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 10, False)
    try:
        assert _listing(tmp_path) == []  # nothing a killed process could leave behind
        if Path("/proc/self/fd").is_dir():
            where = os.readlink(f"/proc/self/fd/{spool.fileno()}")
            assert where.startswith(str(tmp_path))
        assert os.fstat(spool.fileno()).st_mode & 0o777 == 0o600
    finally:
        spool.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_killed_batch_leaves_no_spool_no_partial_output_and_no_worker(tmp_path: Path, short_temp: Path,
                                                                        signum: int) -> None:
    data = tmp_path / "data"
    temp = short_temp
    data.mkdir()
    source = write_jsonl(data / "claims.jsonl", 1300, 4)   # over 1,000 claims: spool and workers
    target = data / "results.jsonl"
    env = {**os.environ, "TMPDIR": str(temp)}
    process = subprocess.Popen([sys.executable, "-m", "pain_asp.cli", "check", str(source), "-f", "jsonl",
                                "-o", str(target), "--workers", "1"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _children(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the fork server starts with the spool, once 1,000 claims are read
    assert process.poll() is None, "the batch ended before it could be killed"
    time.sleep(0.5)
    family = _children(process.pid)
    family += [g for c in family for g in _children(c)]
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err
    assert _listing(data) == ["claims.jsonl"]       # no results, no temporary output
    if signum == signal.SIGKILL:  # no clean-up runs: only the fork server's socket folder stays
        assert process.returncode == -signum
        left = [p for folder in temp.iterdir() for p in [folder, *folder.iterdir()]]
        assert all(p.name.startswith("pymp-") and p.is_dir() or p.is_socket() for p in left), left
    else:
        assert process.returncode == 128 + signum and "stopped" in err, err
        assert _listing(temp) == []                 # no spool, no fork-server folder
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in family) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in family if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]


def test_a_finished_batch_with_workers_leaves_nothing_in_the_temporary_folder(tmp_path: Path,
                                                                             short_temp: Path) -> None:
    """Over 1,000 claims the batch spools its input and its workers fork from a fork server
    with a folder of its own in $TMPDIR: once the command has exited, neither is left."""
    source = write_jsonl(tmp_path / "claims.jsonl", 1100, 4)
    target = tmp_path / "results.jsonl"
    done = subprocess.run([sys.executable, "-m", "pain_asp.cli", "check", str(source), "-f", "jsonl",
                           "-o", str(target), "--workers", "1", "--fail-on", "never"],
                          env={**os.environ, "TMPDIR": str(short_temp)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(target.read_text().splitlines()) == 1100
    assert _listing(short_temp) == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


# --- 10. claim text never becomes a formula or a terminal control sequence ----------------------

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tX", "\rY",
           "A\x1b[31mRED\x1b[0m", "B\nFAKE  CLEAN", "C\u202eD"]


def test_csv_cells_never_start_a_formula(tmp_path: Path) -> None:
    source = _claims(tmp_path, *[{**CLAIM, "claim_id": cid} for cid in HOSTILE])
    done = runner.invoke(app, ["check", str(source), "-f", "csv", "--fail-on", "never"])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(done.stdout, newline="")))
    assert {r["claim_id"] for r in rows} == {("'" if c[0] in "=+-@\t\r" else "") + c.replace("\r", "\n")
                                            for c in HOSTILE}
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r"


def test_text_output_shows_control_characters_escaped(tmp_path: Path) -> None:
    source = _claims(tmp_path, *[{**CLAIM, "claim_id": cid} for cid in HOSTILE])
    done = runner.invoke(app, ["check", str(source), "--fail-on", "never"])
    assert done.exit_code == 0, done.output
    text = done.stdout
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert "A\\x1b[31mRED\\x1b[0m" in text and "B\\nFAKE  CLEAN" in text and "C\\u202eD" in text
    assert not any(line.startswith("FAKE") for line in text.splitlines())
    explained = runner.invoke(app, ["explain", str(source)])
    fixed = runner.invoke(app, ["fix", str(source)])
    for out in (explained.stdout, fixed.stdout):
        assert "\x1b" not in out and "\r" not in out and "B\\nFAKE" in out


def test_json_and_jsonl_keep_claim_ids_exact(tmp_path: Path) -> None:
    source = _claims(tmp_path, *[{**CLAIM, "claim_id": cid} for cid in HOSTILE])
    for fmt in ("json", "jsonl"):
        done = runner.invoke(app, ["check", str(source), "-f", fmt, "--fail-on", "never"])
        rows = json.loads(done.stdout) if fmt == "json" else [json.loads(x) for x in done.stdout.splitlines()]
        assert [r["claim_id"] for r in rows] == HOSTILE


# --- 13. errors are always summarised on standard error ---------------------------------------

def test_check_summarises_unreadable_claims_on_stderr_when_results_go_to_a_file(tmp_path: Path) -> None:
    source = _claims(tmp_path, CLAIM, {"claim_id": "BAD-1", "lines": []}, {"claim_id": "BAD-2"})
    target = tmp_path / "r.jsonl"
    done = runner.invoke(app, ["check", str(source), "-f", "jsonl", "-o", str(target)])
    assert done.exit_code == 2
    assert "2 of 3 claims could not be read" in done.stderr and str(target) in done.stderr
    assert "P-1" not in done.stderr
    to_stdout = runner.invoke(app, ["check", str(source)])
    assert to_stdout.exit_code == 2 and "2 of 3 claims could not be read" in to_stdout.stderr


def test_report_on_unreadable_claims_says_so_and_exits_2(tmp_path: Path) -> None:
    source = _claims(tmp_path, {"claim_id": "BAD-1"}, {"claim_id": "BAD-2", "lines": "x"})
    target = tmp_path / "r.html"
    done = runner.invoke(app, ["report", str(source), "-o", str(target)])
    assert done.exit_code == 2, done.output
    assert "2 of 2 claims could not be read" in done.stderr
    assert "2 unreadable" in done.stdout
    assert target.exists()


# --- 14. --workers is capped at the machine's cores ---------------------------------------------

def test_workers_are_capped_at_the_cores_and_the_cap_is_said(tmp_path: Path) -> None:
    cores = default_workers()
    assert BatchOptions(workers=1000).worker_count() == cores
    assert BatchOptions(workers=1).worker_count() == 1
    done = runner.invoke(app, ["check", str(_claims(tmp_path)), "--workers", "1000", "--fail-on", "never"])
    assert done.exit_code == 0, done.output
    assert f"--workers 1000: this machine has {cores} core" in done.stderr and f"using {cores}" in done.stderr
    quiet = runner.invoke(app, ["check", str(_claims(tmp_path)), "--workers", str(cores), "--fail-on", "never"])
    assert "--workers" not in quiet.stderr


# --- 15. smaller ones ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["check"], ["fix"], ["explain"], ["code"], ["report"]])
def test_help_lists_the_exit_codes(command: list[str]) -> None:
    done = runner.invoke(app, [*command, "--help"])
    assert done.exit_code == 0
    text = " ".join(done.stdout.split())
    assert "Exit codes:" in text and "2 " in text.split("Exit codes:")[1]


def test_report_fix_table_shows_filled_fixes_and_counts_in_words(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    done = runner.invoke(app, ["report", str(EXAMPLES), "-o", str(target)])
    assert done.exit_code == 0, done.output
    page = target.read_text()
    assert "\u2039" not in page and "\u203a" not in page   # no unfilled ‹placeholder›
    assert "1 findings" not in page and " 1 claims" not in page and ">1 claims" not in page
    assert "1 finding on 1 claim" in page


def test_fix_to_837_from_yaml_says_the_provider_data_are_placeholders(tmp_path: Path) -> None:
    target = tmp_path / "fixed.837"
    done = runner.invoke(app, ["fix", str(EXAMPLES), "-o", str(target)])
    assert done.exit_code in (0, 1), done.output
    assert target.exists()
    assert "placeholder" in done.stderr and "not from an 837P" in done.stderr


def test_atomic_output_copes_when_the_nameless_file_cannot_be_linked(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from pain_asp.outputs import atomic_output

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError("linking refused")

    monkeypatch.setattr(os, "link", refused)
    target = tmp_path / "out.jsonl"
    with atomic_output(target) as handle:
        handle.write("line\n" * 50_000)
    assert target.read_text() == "line\n" * 50_000 and _listing(tmp_path) == ["out.jsonl"]
