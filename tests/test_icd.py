"""ICD-10-CM by fiscal year: the shipped tables (kb/data/icd10cm) and their provenance.

Transitions are checked against CMS's published changes (the rule cases under
tests/cases/dx-invalid and dx-unknown check the same through the knowledge base).
"""

from __future__ import annotations

import datetime as dt
import json

from pain_asp.icd import dx_marks, dx_status, periods
from pain_asp.resources import kb_dir


def _status(code: str, day: str) -> str:
    """B, H, - or ? for ``code`` on ISO date ``day``; ``x`` when no period covers the day."""
    ymd = int(day.replace("-", ""))
    for period, mark in zip(periods(), dx_marks(code)):
        if period.start <= ymd <= period.end:
            return mark
    return "x"


def test_periods_are_contiguous_from_fy2021_to_fy2026_with_provenance() -> None:
    spans = periods()
    assert spans[0].start == 20201001 and spans[-1].end == 20260930
    for before, after in zip(spans, spans[1:]):
        day = dt.date.fromisoformat(f"{before.end // 10000}-{before.end // 100 % 100:02}-{before.end % 100:02}")
        assert int((day + dt.timedelta(days=1)).strftime("%Y%m%d")) == after.start
    data = json.loads((kb_dir() / "data" / "icd10cm" / "releases.json").read_text(encoding="utf-8"))
    for item in data["periods"]:
        assert {"package", "version", "file", "cms_release"} <= set(item), item
    assert [p.label for p in spans][:4] == ["FY2021", "FY2022", "FY2023", "FY2023 April update"]


def test_m54_5_billable_through_fy2021_then_a_header_with_new_subcodes() -> None:
    assert _status("M54.5", "2021-09-30") == "B"
    for day in ("2021-10-01", "2022-09-30", "2022-10-01", "2023-09-30"):
        assert _status("M54.5", day) == "H"
    for code in ("M54.50", "M54.51", "M54.59"):
        assert _status(code, "2021-09-30") == "-"
        for day in ("2021-10-01", "2022-09-30", "2022-10-01", "2026-09-30"):
            assert _status(code, day) == "B"


def test_fy2022_additions_and_deletions_from_its_own_release() -> None:
    # CMS FY2022: U09.9 (post COVID-19 condition), F32.A, G04.82 new; R05 (cough) became a header
    for code in ("U09.9", "F32.A", "G04.82"):
        assert _status(code, "2021-09-30") == "-"
        assert _status(code, "2021-10-01") == "B"
    assert _status("R05", "2021-09-30") == "B"
    assert _status("R05", "2021-10-01") == "H"


def test_fy2023_additions_billable_from_2022_10_01() -> None:
    # CMS FY2023: G90.A (POTS), F02.A0 (dementia by severity) new; B37.3 expanded to B37.31/B37.32
    for code in ("G90.A", "F02.A0", "B37.31", "B37.32"):
        assert _status(code, "2022-09-30") == "-"
        assert _status(code, "2022-10-01") == "B"
    assert _status("B37.3", "2022-09-30") == "B"
    assert _status("B37.3", "2022-10-01") == "H"


def test_fy2023_april_update_has_its_own_period() -> None:
    # CMS April 1 2023 update: Z55.6 (health literacy) new, Z59.1 expanded to Z59.10-Z59.19
    assert _status("Z55.6", "2023-03-31") == "-"
    assert _status("Z55.6", "2023-04-01") == "B"
    assert _status("Z59.1", "2023-03-31") == "B"
    assert _status("Z59.1", "2023-04-01") == "H"
    assert _status("Z59.10", "2023-03-31") == "-"
    assert _status("Z59.10", "2023-04-01") == "B"


def test_m51_36_and_m51_37_expanded_in_fy2025() -> None:
    for header, subs in (("M51.36", ("M51.360", "M51.361", "M51.362", "M51.369")),
                         ("M51.37", ("M51.370", "M51.371", "M51.372", "M51.379"))):
        assert _status(header, "2021-10-01") == "B"
        assert _status(header, "2022-10-01") == "B"
        assert _status(header, "2024-09-30") == "B"
        assert _status(header, "2024-10-01") == "H"
        for code in subs:
            assert _status(code, "2024-09-30") == "-"
            assert _status(code, "2024-10-01") == "B"


def test_fy2026_expansion_of_pelvic_pain() -> None:
    assert _status("R10.2", "2025-09-30") == "B"
    assert _status("R10.2", "2025-10-01") == "H"
    for code in ("R10.20", "R10.21", "R10.22", "R10.23", "R10.24"):
        assert _status(code, "2025-09-30") == "-"
        assert _status(code, "2025-10-01") == "B"


def test_dates_outside_every_release_are_not_decided() -> None:
    assert _status("M54.16", "2020-09-30") == "x"
    assert _status("M54.16", "2026-10-01") == "x"   # FY2027: no release shipped


def test_latest_status_and_unknown_codes() -> None:
    assert dx_status("M47.816") == "billable"
    assert dx_status("M54.5") == "header"
    assert dx_status("Z99.999") is None
    assert set(dx_marks("Z99.999")) == {"-"}
