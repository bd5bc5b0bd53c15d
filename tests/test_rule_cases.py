"""Every rule case under tests/cases: the complete set of findings must match."""

from __future__ import annotations

from pathlib import Path

import pytest

from pain_asp.casefiles import find_cases, load_case, run_case

CASES = Path(__file__).parent / "cases"


@pytest.mark.parametrize("path", find_cases(CASES), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_case(path: Path) -> None:
    outcome = run_case(load_case(path))
    assert outcome.passed, outcome.diff()
