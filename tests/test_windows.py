"""Rolling windows of calendar months (kb/windows.lp): one definition for every frequency rule."""

from __future__ import annotations

import calendar
import datetime as dt

import clingo

from pain_asp.facts import day_number
from pain_asp.resources import kb_dir


def _expected_start(end: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` earlier, or that month's last day (kb/windows.lp)."""
    year, month = divmod(end.year * 12 + end.month - 1 - months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(end.day, last))


def _starts(ends: list[dt.date], months: tuple[int, ...]) -> dict[tuple[int, int], int]:
    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(kb_dir() / "windows.lp"))
    wanted = "".join(f"window_wanted({day_number(d)}, {d.year * 10000 + d.month * 100 + d.day}, {m}).\n"
                     for d in ends for m in months)
    ctl.add("base", [], wanted + "#show window_start/3.")
    ctl.ground([("base", [])])
    atoms: list[clingo.Symbol] = []
    ctl.solve(on_model=lambda m: atoms.extend(m.symbols(shown=True)))
    return {(a.arguments[0].number, a.arguments[1].number): a.arguments[2].number for a in atoms}


def test_window_start_is_the_same_calendar_date_months_earlier() -> None:
    """Every day of 2023-2029 (leap years 2024 and 2028) and windows of 1, 6, 12 and 24 months."""
    first = dt.date(2023, 1, 1)
    ends = [first + dt.timedelta(days=i) for i in range((dt.date(2029, 12, 31) - first).days + 1)]
    got = _starts(ends, (1, 6, 12, 24))
    assert len(got) == 4 * len(ends)
    for end in ends:
        for months in (1, 6, 12, 24):
            assert dt.date.fromordinal(got[day_number(end), months]) == _expected_start(end, months), (end, months)


def test_twelve_months_across_february_29() -> None:
    """The boundaries the frequency cases use: 12 months before 2024-02-29 start on 2023-02-28,
    before 2025-02-28 on 2024-02-28 (so 2024-02-29 is inside), before 2025-03-01 on 2024-03-01
    (366 days back: the window holds February 29), and 2027-2028 likewise."""
    pairs = {dt.date(2024, 2, 29): dt.date(2023, 2, 28), dt.date(2025, 2, 28): dt.date(2024, 2, 28),
             dt.date(2025, 3, 1): dt.date(2024, 3, 1), dt.date(2028, 2, 29): dt.date(2027, 2, 28),
             dt.date(2028, 3, 1): dt.date(2027, 3, 1), dt.date(2026, 3, 2): dt.date(2025, 3, 2)}
    got = _starts(list(pairs), (12,))
    assert {end: dt.date.fromordinal(got[day_number(end), 12]) for end in pairs} == pairs
