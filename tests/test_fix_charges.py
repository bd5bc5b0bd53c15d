"""What each edit of ``pain-asp fix`` does to the charges of the corrected lines (issue 18.6).

The same service reported another way keeps its charge (a modifier, a pointer, a code for the
same service, and the units of a modifier-50 line, whose charge is the charge for both sides:
CMS IOM 100-04 ch. 12 §40.7); a service removed takes its charge with it (a dropped line,
units of a one-side line); a split divides the charge and a merge adds the two charges. The
table is in docs/fix.md ("Charges of corrected lines").
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pytest

from pain_asp.history import batch_history
from pain_asp.inputs.records import validate_claim
from pain_asp.modes.fix import Repairer

THERAPEUTIC = {"imaging": "fluoroscopy", "levels": ["L5-S1"], "purpose": "therapeutic"}


@lru_cache(maxsize=1)
def repairer() -> Repairer:
    return Repairer()


def claim(payer: str, pos: str, *lines: dict[str, Any], diagnoses: tuple[str, ...] = ("M54.16",)) -> dict:
    return {"claim_id": "CHG-1", "payer": payer, "place_of_service": pos, "patient": {"id": "P-CHG"},
            "diagnoses": list(diagnoses),
            "clinical": {"pain_duration_months": 6, "conservative_care_weeks": 8},
            "lines": [{"date": "2026-03-02", "dx": [1], **line} for line in lines]}


CASES = [
    # kind, claim, corrected (code, modifiers, units, charge) per line, revenue removed (cents)
    ("set_units on a 50 line: the charge is for both sides, kept",
     claim("medicare", "11", {"code": "64483", "modifiers": ["50"], "units": 2, "charge": "1200.00",
                              "documented": {**THERAPEUTIC, "side": "bilateral"}}),
     "set_units", [("64483", ["50"], 1, 1200.0)], 0),
    ("set_units on a one-side line: the units taken off are services removed",
     claim("medicare", "11",
           {"code": "64493", "modifiers": ["RT", "KX"], "charge": "500.00",
            "documented": {"imaging": "fluoroscopy", "side": "right", "levels": ["L3-L4", "L4-L5"],
                           "purpose": "diagnostic"}},
           {"code": "64494", "modifiers": ["RT", "KX"], "units": 2, "charge": "400.00"},
           diagnoses=("M47.816",)),
     "set_units", [("64493", ["RT", "KX"], 1, 500.0), ("64494", ["RT", "KX"], 1, 200.0)], 20000),
    ("drop_line: the dropped line's charge goes with it",
     claim("commercial", "11",
           {"code": "64450", "modifiers": ["RT"], "charge": "200.00", "documented": {"side": "right"}},
           {"code": "64450", "modifiers": ["RT"], "charge": "200.00", "documented": {"side": "right"}},
           diagnoses=("M79.2",)),
     "drop_line", [("64450", ["RT"], 1, 200.0)], 20000),
    ("split_bilateral: the charge is divided between the two sides",
     claim("commercial_asc_rtlt", "24", {"code": "64483", "modifiers": ["50"], "charge": "1170.01",
                                         "documented": {**THERAPEUTIC, "side": "bilateral"}}),
     "split_bilateral", [("64483", ["RT"], 1, 585.01), ("64483", ["LT"], 1, 585.0)], 0),
    ("merge_bilateral: the 50 line charges both sides",
     claim("medicare", "11",
           {"code": "64483", "modifiers": ["RT"], "charge": "585.00", "documented": {**THERAPEUTIC, "side": "right"}},
           {"code": "64483", "modifiers": ["LT"], "charge": "585.00", "documented": {**THERAPEUTIC, "side": "left"}}),
     "merge_bilateral", [("64483", ["50"], 1, 1170.0)], 0),
    ("remove_modifier: the same service, charge kept",
     claim("medicare", "11", {"code": "62323", "modifiers": ["50"], "charge": "900.00",
                              "documented": {"imaging": "fluoroscopy", "levels": ["L4-L5"],
                                             "purpose": "therapeutic"}}),
     "remove_modifier", [("62323", [], 1, 900.0)], 0),
    ("repoint_dx: the same service, charge kept",
     claim("commercial", "11", {"code": "20610", "modifiers": ["RT"], "charge": "130.00", "dx": [],
                                "documented": {"side": "right"}}, diagnoses=("M17.11",)),
     "repoint_dx", [("20610", ["RT"], 1, 130.0)], 0),
]


@pytest.mark.parametrize("what,raw,kind,lines,removed", CASES, ids=[c[0].split(":")[0] for c in CASES])
def test_each_edit_kind_does_what_the_table_says_to_charges(what: str, raw: dict, kind: str,
                                                             lines: list, removed: int) -> None:
    fixer = repairer()
    record = validate_claim(raw, "charges.yaml", 1, fixer.known_payers())
    assert record.ok, [str(e) for e in record.errors]
    (fixed,) = fixer.fix([record], history=batch_history([record.claim]))
    assert fixed.status == "fixed" and [e.kind for e in fixed.edits] == [kind], (what, fixed.edits)
    got = [(l["code"], l["modifiers"], l["units"], l["charge"]) for l in fixed.corrected["lines"]]
    assert got == lines, what
    assert fixed.cost["revenue_removed_cents"] == removed, what
