"""docs/scaling.md: a year-long batch and the history store give the same findings for the same services."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

from pain_asp.cli import app

runner = CliRunner()
DATES = ["2025-01-10", "2025-03-12", "2025-05-11", "2025-07-10", "2025-09-08", "2025-11-07"]


def year_of_esi(payer: str) -> list[dict]:
    """One patient's lumbar interlaminar ESI every ~60 days: six sessions in one year."""
    return [{
        "claim_id": f"Y-{n}", "payer": payer, "place_of_service": "11", "patient": {"id": "PT-YEAR"},
        "diagnoses": ["M54.16"],
        "clinical": {"pain_duration_months": 6, "conservative_care_weeks": 8},
        "lines": [{"code": "62323", "date": day, "dx": [1],
                   "documented": {"imaging": "fluoroscopy", "levels": ["L4-L5"], "purpose": "therapeutic"}}],
    } for n, day in enumerate(DATES, start=1)]


def findings_by_claim(stdout: str) -> dict[str, set[tuple[str, str]]]:
    return {r["claim_id"]: {(f["rule"], f["severity"]) for f in r["findings"]}
            for r in json.loads(stdout)}


def test_batch_flags_exactly_the_sessions_over_the_medicare_limit(tmp_path: Path) -> None:
    path = tmp_path / "year.json"
    path.write_text(json.dumps(year_of_esi("medicare")))
    found = findings_by_claim(runner.invoke(app, ["check", str(path), "--format", "json"]).stdout)
    # Medicare: at most 4 ESI sessions per region in a rolling 365 days (A58993 / L39240).
    assert {c for c, f in found.items() if ("esi-frequency", "deny") in f} == {"Y-5", "Y-6"}
    # Each repeat session's previous one documents no relief: a review (esi-repeat-relief), no more.
    assert found["Y-1"] == set()
    assert all(f == {("esi-repeat-relief", "review")} for c, f in found.items() if c in ("Y-2", "Y-3", "Y-4"))


def test_stricter_commercial_profile_flags_from_the_fourth_session(tmp_path: Path) -> None:
    path = tmp_path / "year.json"
    path.write_text(json.dumps(year_of_esi("commercial_strict_esi")))
    found = findings_by_claim(runner.invoke(app, ["check", str(path), "--format", "json"]).stdout)
    # The example profile allows 3 sessions in 365 days.
    assert {c for c, f in found.items() if ("esi-frequency", "deny") in f} == {"Y-4", "Y-5", "Y-6"}


def test_history_store_gives_the_same_findings_as_the_batch(tmp_path: Path) -> None:
    claims = year_of_esi("medicare")
    batch = tmp_path / "year.json"
    batch.write_text(json.dumps(claims))
    expected = findings_by_claim(runner.invoke(app, ["check", str(batch), "--format", "json"]).stdout)

    db = tmp_path / "history.sqlite"
    seen: dict[str, set[tuple[str, str]]] = {}
    for claim in claims:  # claims arrive one a day and are recorded once checked
        one = tmp_path / f"{claim['claim_id']}.json"
        one.write_text(json.dumps(claim))
        if db.exists():
            result = runner.invoke(app, ["check", str(one), "--format", "json", "--history", str(db)])
        else:
            result = runner.invoke(app, ["check", str(one), "--format", "json"])
        seen.update(findings_by_claim(result.stdout))
        assert runner.invoke(app, ["history", "add", str(one), "--db", str(db)]).exit_code == 0
    assert seen == expected
    assert (db.stat().st_mode & 0o777) == 0o600


def test_history_show_and_forget(tmp_path: Path) -> None:
    batch = tmp_path / "year.json"
    batch.write_text(json.dumps(year_of_esi("medicare")))
    db = tmp_path / "h.sqlite"
    assert runner.invoke(app, ["history", "add", str(batch), "--db", str(db)]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["history", "show", "PT-YEAR", "--db", str(db), "--format", "json"]).stdout)
    assert [row["date"] for row in shown] == DATES
    assert "PT-YEAR" not in db.read_bytes().decode("latin-1")
    out = runner.invoke(app, ["history", "forget", "PT-YEAR", "--db", str(db)]).stdout
    assert "erased 6" in out
    assert json.loads(runner.invoke(app, ["history", "show", "PT-YEAR", "--db", str(db), "--format", "json"]).stdout) == []


def test_missing_history_database_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(year_of_esi("medicare")[0]))
    result = runner.invoke(app, ["check", str(path), "--history", str(tmp_path / "nope.sqlite")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_window_boundary_day_365_counts_day_366_does_not(tmp_path: Path) -> None:
    first = dt.date(2025, 3, 1)
    base = year_of_esi("medicare")[:1]

    def claims_with_fifth_after(days: int) -> list[dict]:
        out = []
        offsets = [0, 60, 120, 180, days]
        for n, off in enumerate(offsets, start=1):
            claim = json.loads(json.dumps(base[0]))
            claim["claim_id"] = f"B-{n}"
            claim["lines"][0]["date"] = (first + dt.timedelta(days=off)).isoformat()
            out.append(claim)
        return out

    for days, fires in ((365, True), (366, False)):
        # The fifth session `days` after the first: a session 365 days before the date of
        # service is still inside the rolling year, one 366 days before is not.
        path = tmp_path / f"w{days}.json"
        path.write_text(json.dumps(claims_with_fifth_after(days)))
        found = findings_by_claim(runner.invoke(app, ["check", str(path), "--format", "json"]).stdout)
        assert (("esi-frequency", "deny") in found["B-5"]) is fires, days


def test_claim_ids_numbered_per_batch_keep_every_session(tmp_path: Path) -> None:
    """Practice systems that number claims per batch send "1" every time: each batch's claim "1"
    is another claim (another date of service), so the store keeps them all and the fifth
    session is still flagged; the other patient's claim "1" takes nothing away either."""
    db = tmp_path / "history.sqlite"
    claims = year_of_esi("medicare")
    for n, claim in enumerate(claims[:4]):
        batch = tmp_path / f"batch-{n}.json"
        other = {**claims[0], "patient": {"id": "PT-OTHER"}, "lines": [{**claims[0]["lines"][0], "date": DATES[n]}]}
        batch.write_text(json.dumps([{**claim, "claim_id": "1"}, {**other, "claim_id": "2"}]))
        added = runner.invoke(app, ["history", "add", str(batch), "--db", str(db)])
        assert added.exit_code == 0, added.output
        assert "2 claim(s) added, 0 replaced" in added.stderr
    fifth = tmp_path / "fifth.json"
    fifth.write_text(json.dumps({**claims[4], "claim_id": "1"}))
    result = runner.invoke(app, ["check", str(fifth), "--format", "json", "--history", str(db)])
    assert findings_by_claim(result.stdout) == {"1": {("esi-frequency", "deny"), ("esi-repeat-relief", "review")}}


def test_history_add_says_what_it_replaced_and_warns_about_reused_ids(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    claims = year_of_esi("medicare")
    first = tmp_path / "first.json"
    first.write_text(json.dumps([{**claims[0], "claim_id": "7"}, {**claims[1], "claim_id": "8"}]))
    assert runner.invoke(app, ["history", "add", str(first), "--db", str(db)]).exit_code == 0
    again = tmp_path / "again.json"
    again.write_text(json.dumps([{**claims[0], "claim_id": "7"},     # the same claim again
                                 {**claims[2], "claim_id": "8"}]))   # id 8, another date
    result = runner.invoke(app, ["history", "add", str(again), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "1 claim(s) added, 1 replaced" in result.stderr
    assert "claim 8: the store already holds a claim 8 of this patient on other dates of service; " \
           "both are kept" in result.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**claims[0], "claim_id": "7", "patient": {"id": "PT-SECOND"}}))
    result = runner.invoke(app, ["history", "add", str(other), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "1 claim(s) added, 0 replaced" in result.stderr
    assert "claim 7: the store already holds a claim 7 of another patient; both are kept" in result.stderr
    assert "PT-SECOND" not in result.output and "PT-YEAR" not in result.output
    shown = json.loads(runner.invoke(app, ["history", "show", "PT-YEAR", "--db", str(db), "--format", "json"]).stdout)
    assert [(row["claim_id"], row["date"]) for row in shown] == [("7", DATES[0]), ("8", DATES[1]), ("8", DATES[2])]
