"""Every rule case under tests/cases: the complete set of findings must match."""

from __future__ import annotations

from pathlib import Path

import pytest

from pain_asp.authoring.casefiles import CaseOutcome, find_cases, load_case, run_cases

CASES = Path(__file__).parent / "cases"
PATHS = find_cases(CASES)


@pytest.fixture(scope="module")
def outcomes() -> dict[Path, CaseOutcome]:
    """Every case, run in batches by the same runner as `pain-asp rules test`."""
    cases = [load_case(path) for path in PATHS]
    return {case.path: outcome for case, outcome in zip(cases, run_cases(cases))}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_case(path: Path, outcomes: dict[Path, CaseOutcome]) -> None:
    outcome = outcomes[path]
    assert outcome.passed, outcome.diff()
