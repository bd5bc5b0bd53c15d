"""Realistic random claims, deterministic from a seed (docs/claim-format.md, docs/scaling.md).

The benchmark (:mod:`pain_asp.bench.batch`) and the property tests (``tests/strategies.py``) use
these claims. Each claim is what a pain-management practice sends in a day: one encounter
of 1-6 lines from the real code mix (epidural and facet injections, radiofrequency
ablation, somatic and genicular blocks, SI joint, trigger points, joint injections,
imaging guidance, office visits, chronic pain management), with the modifiers, units,
levels and diagnoses a careful coder would use for the payer and place of service, the
chart facts sometimes present and sometimes missing, and the patient's earlier injections
in ``history``. About a quarter of the claims carry one realistic coding error (a dropped
laterality or KX modifier, imaging billed with a code that includes it, an invalid
diagnosis header, an add-on without its primary, a duplicate line, ...).

Claims are plain dicts in the input format of docs/claim-format.md with ISO dates, so they can be
written as JSON Lines (:func:`write_jsonl`) or validated with
:func:`pain_asp.inputs.readers.validate_claim`. The same seed always gives the same claims, and
the first ``n`` claims of a longer run are the claims of a run of ``n``.

The vocabulary (codes, modifiers, diagnoses, payers, places of service, levels) is public
so that the Hypothesis strategies draw from the same catalog.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "ALL_CODES",
    "BILLABLE_DIAGNOSES",
    "CHRONIC_PAIN_CODES",
    "CONSERVATIVE_CARE",
    "DATE_FIRST",
    "DATE_LAST",
    "DIAGNOSES",
    "EM_CODES",
    "ERROR_KINDS",
    "ESI_CODES",
    "FACET_CODES",
    "GENICULAR_CODES",
    "IMAGING_CODES",
    "INVALID_DIAGNOSES",
    "JOINT_CODES",
    "LEVELS",
    "MAX_GENERATED_LINES",
    "MODIFIERS",
    "MUSCLES",
    "NERVES",
    "PAYERS",
    "PLACES_OF_SERVICE",
    "RFA_CODES",
    "SI_CODES",
    "SOMATIC_CODES",
    "TRIGGER_POINT_CODES",
    "generate_claims",
    "write_jsonl",
]

# --- vocabulary --------------------------------------------------------------------------

PAYERS = ("medicare", "commercial", "commercial_asc_rtlt", "commercial_strict_esi",
          "commercial_prior_auth")
_PAYER_WEIGHTS = (45, 20, 12, 12, 11)
PLACES_OF_SERVICE = ("11", "19", "22", "24")
_POS_WEIGHTS = (55, 10, 10, 25)
MODIFIERS = ("RT", "LT", "50", "KX", "25", "59", "XS")

ESI_CODES = ("62321", "62323", "64479", "64480", "64483", "64484")
FACET_CODES = ("64490", "64491", "64492", "64493", "64494", "64495")
RFA_CODES = ("64633", "64634", "64635", "64636")
SOMATIC_CODES = ("64405", "64450")
SI_CODES = ("27096", "64451")
GENICULAR_CODES = ("64454", "64624")
TRIGGER_POINT_CODES = ("20552", "20553")
JOINT_CODES = ("20610", "20611")
IMAGING_CODES = ("77002", "77003", "77012", "76942")
EM_CODES = ("99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215")
CHRONIC_PAIN_CODES = ("G3002", "G3003", "G2211")
ALL_CODES = tuple(sorted(set(
    ESI_CODES + FACET_CODES + RFA_CODES + SOMATIC_CODES + SI_CODES + GENICULAR_CODES
    + TRIGGER_POINT_CODES + JOINT_CODES + IMAGING_CODES + EM_CODES + CHRONIC_PAIN_CODES)))

# Billable FY2026 ICD-10-CM codes, grouped by what they support (kb/catalog/dx_families.lp).
DIAGNOSES: dict[str, tuple[str, ...]] = {
    "radicular_lumbar": ("M54.16", "M54.17", "M51.16", "M51.17", "M48.062", "M47.26", "M51.362"),
    "radicular_cervical": ("M54.12", "M54.13", "M50.121", "M50.122", "M47.22"),
    "facet_lumbar": ("M47.816", "M47.817", "M54.50", "M54.59", "M43.16"),
    "facet_cervical": ("M47.812", "M47.813", "M54.2"),
    "knee": ("M17.11", "M17.12", "M17.0", "M25.561", "M25.562"),
    "myofascial": ("M79.18", "M79.12", "M62.830", "M60.88", "M79.7"),
    "occipital": ("M54.81",),
    "sacroiliac": ("M46.1", "M53.3", "M53.2X8"),
    "neuralgia": ("M79.2",),
    "chronic_pain": ("G89.29", "G89.4", "G89.28"),
}
BILLABLE_DIAGNOSES = tuple(sorted({dx for group in DIAGNOSES.values() for dx in group}))
# Headers that are no longer billable (M54.5 since FY2022, M79.1 since FY2023, M51.36/M51.37
# since FY2025, M47.81 always needs a sixth character).
INVALID_DIAGNOSES = ("M54.5", "M79.1", "M51.36", "M51.37", "M47.81")

LEVELS: dict[str, tuple[str, ...]] = {
    "lumbar": ("L3-L4", "L4-L5", "L5-S1"),
    "cervical": ("C3-C4", "C4-C5", "C5-C6", "C6-C7"),
    "interlaminar_lumbar": ("L3-L4", "L4-L5", "L5-S1"),
    "interlaminar_cervical": ("C6-C7", "C7-T1"),
}
NERVES = ("superolateral genicular", "superomedial genicular", "inferomedial genicular",
          "greater occipital", "lesser occipital", "lateral femoral cutaneous")
MUSCLES = ("left trapezius", "right trapezius", "left levator scapulae",
           "right levator scapulae", "left rhomboid", "right rhomboid",
           "left quadratus lumborum", "right quadratus lumborum")
CONSERVATIVE_CARE = ("physical_therapy", "home_exercise", "nsaids", "medications",
                     "chiropractic", "activity_modification")

DATE_FIRST = dt.date(2024, 1, 2)
DATE_LAST = dt.date(2026, 6, 30)
MAX_GENERATED_LINES = 6

ERROR_RATE = 0.25        # share of claims with a deliberate coding error
SECOND_ERROR_RATE = 0.2  # of those, share with a second one
RETURNING_PATIENT = 0.3  # share of claims for a patient seen earlier in the run

ERROR_KINDS = (
    "drop_laterality", "drop_kx", "kx_on_therapeutic", "imaging_included", "wrong_fluoro_code",
    "addon_units", "bilateral_not_allowed", "invalid_dx", "missing_pointer", "em_without_25",
    "em_25_not_separate", "duplicate_line", "orphan_addon", "rt_lt_conflict", "esi_frequency",
    "tpi_few_muscles", "g2211_with_25", "distinct_59", "conservative_short", "levels_mismatch",
    "dx_mismatch", "drop_documentation",
)

# --- the procedures ------------------------------------------------------------------------

# name: (primary, add-on for the 2nd level, add-on for 3rd+ levels, level pool, dx group,
#        sided, takes KX when diagnostic)
_SPINAL = {
    "tf_esi_lumbar": ("64483", "64484", None, "lumbar", "radicular_lumbar", True, True),
    "tf_esi_cervical": ("64479", "64480", None, "cervical", "radicular_cervical", True, True),
    "il_esi_lumbar": ("62323", None, None, "interlaminar_lumbar", "radicular_lumbar", False, False),
    "il_esi_cervical": ("62321", None, None, "interlaminar_cervical", "radicular_cervical", False,
                        False),
    "facet_lumbar": ("64493", "64494", "64495", "lumbar", "facet_lumbar", True, True),
    "facet_cervical": ("64490", "64491", "64492", "cervical", "facet_cervical", True, True),
    "rfa_lumbar": ("64635", "64636", "64636", "lumbar", "facet_lumbar", True, False),
    "rfa_cervical": ("64633", "64634", "64634", "cervical", "facet_cervical", True, False),
}
_IMAGING_INCLUDED = ESI_CODES + FACET_CODES + RFA_CODES + SI_CODES + GENICULAR_CODES
_BLOCK_FOR_RFA = {"64635": ("64493", "64494"), "64633": ("64490", "64491")}

_SCENARIOS = (
    ("tf_esi_lumbar", 16), ("tf_esi_cervical", 5), ("il_esi_lumbar", 7), ("il_esi_cervical", 3),
    ("facet_lumbar", 12), ("facet_cervical", 5), ("rfa_lumbar", 6), ("rfa_cervical", 2),
    ("occipital", 4), ("peripheral", 3), ("si_joint", 6), ("genicular_block", 4),
    ("genicular_rfa", 2), ("trigger_points", 6), ("joint", 5), ("office_visit", 9),
    ("chronic_pain", 5),
)


def _iso(day: dt.date) -> str:
    return day.isoformat()


class _Claim:
    """Builds one claim; lines are raw dicts, diagnoses are added on first use."""

    def __init__(self, rng: random.Random, claim_id: str, patient: dict[str, Any]) -> None:
        self.rng = rng
        self.payer = rng.choices(PAYERS, _PAYER_WEIGHTS)[0]
        self.pos = rng.choices(PLACES_OF_SERVICE, _POS_WEIGHTS)[0]
        self.day = _weekday(rng, DATE_FIRST, DATE_LAST)
        self.claim_id = claim_id
        self.patient = patient
        self.lines: list[dict[str, Any]] = []
        self.diagnoses: list[str] = []
        self.history: list[dict[str, Any]] = []
        self.clinical: dict[str, Any] = {}
        self.prior_auth: str | None = None
        self.procedure_lines: list[int] = []  # indexes of needle procedures (not E/M, imaging)
        self.diagnostic = False

    # -- small helpers ------------------------------------------------------------------------

    def room(self, needed: int = 1) -> bool:
        return len(self.lines) + needed <= MAX_GENERATED_LINES

    def dx(self, code: str) -> int:
        if code not in self.diagnoses:
            self.diagnoses.append(code)
        return self.diagnoses.index(code) + 1

    def add(self, code: str, modifiers: list[str] | None = None, units: int = 1,
            dx: list[int] | None = None, documented: dict[str, Any] | None = None,
            procedure: bool = False, day: dt.date | None = None) -> None:
        line: dict[str, Any] = {"code": code, "modifiers": list(modifiers or []), "units": units,
                                "date": _iso(day or self.day), "dx": list(dx or [])}
        if self.rng.random() < 0.4:
            line["charge"] = round(self.rng.uniform(80, 1800), 2)
        if documented is not None:
            line["documented"] = documented
        if procedure:
            self.procedure_lines.append(len(self.lines))
        self.lines.append(line)

    def bilateral_lines_wanted(self) -> bool:
        """The commercial ASC example wants bilateral as two RT/LT lines in an ASC."""
        return self.payer == "commercial_asc_rtlt" and self.pos == "24"

    def sided(self, codes: list[tuple[str, int]], side: str, extra: list[str], dx: list[int],
              documented: dict[str, Any] | None) -> None:
        """Lines for ``codes`` (code, units) done on ``side``, in the payer's format."""
        if side == "bilateral" and self.bilateral_lines_wanted() and self.room(2 * len(codes)):
            for mod in ("RT", "LT"):
                for code, units in codes:
                    self.add(code, [mod, *extra], units, dx, _copy(documented), procedure=True)
            return
        mod = {"left": "LT", "right": "RT", "bilateral": "50"}[side]
        for code, units in codes:
            self.add(code, [mod, *extra], units, dx, _copy(documented), procedure=True)

    def conservative_care(self, weeks: int) -> None:
        rng = self.rng
        if rng.random() < 0.75:
            self.clinical["pain_duration_months"] = rng.randint(4, 48)
            self.clinical["conservative_care_weeks"] = rng.randint(weeks, 26)
            care = rng.sample(CONSERVATIVE_CARE, rng.randint(1, 3))
            self.clinical["conservative_care"] = sorted(care)
        elif rng.random() < 0.5:
            self.clinical["pain_duration_months"] = rng.randint(4, 48)

    # -- scenarios --------------------------------------------------------------------------

    def spinal(self, name: str) -> None:
        rng = self.rng
        primary, second, further, pool, group, is_sided, takes_kx = _SPINAL[name]
        count = 1 if second is None else rng.choices((1, 2, 3), (35, 55, 10))[0]
        levels = _levels(rng, LEVELS[pool], count)
        if name.startswith("tf_esi") and len(levels) > 2:
            levels = levels[:2]
        rfa = name.startswith("rfa")
        purpose = "therapeutic" if rfa else rng.choices(("diagnostic", "therapeutic"), (35, 65))[0]
        if name.startswith("facet"):
            purpose = rng.choices(("diagnostic", "therapeutic"), (70, 30))[0]
        self.diagnostic = purpose == "diagnostic"
        side = rng.choices(("bilateral", "left", "right"), (50, 25, 25))[0] if is_sided else None
        dx_code = rng.choice(DIAGNOSES[group])
        pointers = [self.dx(dx_code)]
        if rng.random() < 0.25:
            pointers.append(self.dx(rng.choice(DIAGNOSES["chronic_pain"])))
        documented: dict[str, Any] = {"imaging": "fluoroscopy" if rng.random() < 0.9 else "ct",
                                      "levels": levels, "purpose": purpose}
        if side:
            documented["side"] = side
        codes = [(primary, 1)]
        if second is not None and len(levels) >= 2:
            if name.startswith("rfa") or name.startswith("tf_esi"):
                codes.append((second, len(levels) - 1))
            else:
                codes.append((second, 1))
                if len(levels) >= 3 and further is not None:
                    codes.append((further, 1))
        extra = ["KX"] if takes_kx and purpose == "diagnostic" and self.payer == "medicare" else []
        if side:
            self.sided(codes, side, extra, pointers, documented)
        else:
            for code, units in codes:
                self.add(code, list(extra), units, pointers, _copy(documented), procedure=True)
        self.conservative_care(12 if name.startswith(("facet", "rfa")) else 4)
        if name.startswith(("tf_esi", "il_esi")):
            self.esi_history(primary, levels, rng.choices((0, 1, 2, 3), (40, 30, 20, 10))[0])
        elif name.startswith("facet") and purpose == "diagnostic" and rng.random() < 0.4:
            self.block_history(primary, second, levels, side, count=1, gap=(14, 60))
        elif rfa:
            block, block_addon = _BLOCK_FOR_RFA[primary]
            self.block_history(block, block_addon, levels, side,
                               count=rng.choices((2, 1), (85, 15))[0],
                               gap=(21, 120))
            if rng.random() < 0.3:
                self.rfa_history(primary, levels, side)
        if self.pos in ("19", "22") and name.startswith(("facet", "rfa")) and rng.random() < 0.85:
            self.prior_auth = f"PA-{rng.randint(10000, 99999)}"
        if self.payer == "commercial_prior_auth" and rfa and rng.random() < 0.85:
            self.prior_auth = f"PA-{rng.randint(10000, 99999)}"

    def esi_history(self, code: str, levels: list[str], sessions: int) -> None:
        day = self.day
        for _ in range(sessions):
            day -= dt.timedelta(days=self.rng.randint(45, 120))
            self.history.append({"date": _iso(day), "code": code, "purpose": "therapeutic",
                                 "levels": list(levels)})

    def block_history(self, code: str, addon: str | None, levels: list[str], side: str | None,
                      count: int, gap: tuple[int, int]) -> None:
        day = self.day
        relief_floor = 80 if self.payer == "medicare" else 50
        for _ in range(count):
            day -= dt.timedelta(days=self.rng.randint(*gap))
            mods = ["50"] if side == "bilateral" else (["RT"] if side == "right" else ["LT"])
            if self.payer == "medicare":
                mods.append("KX")
            if self.rng.random() < 0.9:
                relief = self.rng.randint(relief_floor, 100)
            else:
                relief = self.rng.randint(20, 60)
            entry = {"date": _iso(day), "code": code, "modifiers": mods, "purpose": "diagnostic",
                     "relief_pct": relief, "levels": list(levels)}
            if side:
                entry["side"] = side
            self.history.append(entry)
            if addon is not None and len(levels) >= 2:
                self.history.append({"date": _iso(day), "code": addon, "modifiers": list(mods),
                                     "purpose": "diagnostic", "relief_pct": relief,
                                     "levels": list(levels)})

    def rfa_history(self, code: str, levels: list[str], side: str | None) -> None:
        day = self.day - dt.timedelta(days=self.rng.randint(200, 400))
        entry = {"date": _iso(day), "code": code, "purpose": "therapeutic",
                 "relief_pct": self.rng.randint(40, 90),
                 "relief_duration_months": self.rng.randint(4, 12), "levels": list(levels)}
        if side:
            entry["side"] = side
            entry["modifiers"] = [{"bilateral": "50", "right": "RT", "left": "LT"}[side]]
        self.history.append(entry)

    def occipital(self) -> None:
        rng = self.rng
        side = rng.choice(("bilateral", "left", "right"))
        pointers = [self.dx("M54.81")]
        documented = {"side": side, "nerves": ["greater occipital"], "imaging": "none"}
        if rng.random() < 0.3:
            documented["nerves"].append("lesser occipital")
        self.sided([("64405", 1)], side, [], pointers, documented)
        self.conservative_care(4)

    def peripheral(self) -> None:
        rng = self.rng
        side = rng.choice(("left", "right"))
        genicular = rng.random() < 0.5
        dx_code = ("M17.11" if side == "right" else "M17.12") if genicular else "M79.2"
        pointers = [self.dx(dx_code)]
        imaging = rng.choice(("ultrasound", "fluoroscopy"))
        nerves = list(NERVES[:3]) if genicular else ["lateral femoral cutaneous"]
        self.sided([("64450", 1)], side, [], pointers,
                   {"side": side, "nerves": nerves, "imaging": imaging})
        if self.room():
            self.add("76942" if imaging == "ultrasound" else "77002", [], 1, pointers)
        self.conservative_care(4)

    def si_joint(self) -> None:
        rng = self.rng
        code = rng.choices(("27096", "64451"), (75, 25))[0]
        side = rng.choice(("bilateral", "left", "right"))
        pointers = [self.dx(rng.choice(DIAGNOSES["sacroiliac"]))]
        purpose = rng.choice(("diagnostic", "therapeutic"))
        self.sided([(code, 1)], side, [], pointers,
                   {"side": side, "imaging": "fluoroscopy", "purpose": purpose})
        self.conservative_care(4)

    def genicular(self, ablation: bool) -> None:
        rng = self.rng
        side = rng.choice(("left", "right"))
        pointers = [self.dx("M17.11" if side == "right" else "M17.12")]
        documented: dict[str, Any] = {"side": side, "imaging": "fluoroscopy",
                                      "nerves": list(NERVES[:3]),
                                      "purpose": "therapeutic" if ablation else "diagnostic"}
        self.sided([("64624" if ablation else "64454", 1)], side, [], pointers, documented)
        if ablation:
            day = self.day - dt.timedelta(days=rng.randint(21, 90))
            self.history.append({"date": _iso(day), "code": "64454",
                                 "modifiers": ["RT" if side == "right" else "LT"],
                                 "purpose": "diagnostic", "relief_pct": rng.randint(50, 100),
                                 "side": side})
        self.conservative_care(12)

    def trigger_points(self) -> None:
        rng = self.rng
        count = rng.choices((1, 2, 3, 4, 5), (15, 25, 30, 20, 10))[0]
        code = "20553" if count >= 3 else "20552"
        pointers = [self.dx(rng.choice(DIAGNOSES["myofascial"]))]
        self.add(code, [], 1, pointers, {"muscles": rng.sample(MUSCLES, count)}, procedure=True)
        self.conservative_care(4)

    def joint(self) -> None:
        rng = self.rng
        side = rng.choice(("left", "right"))
        pointers = [self.dx(("M17.11" if side == "right" else "M17.12") if rng.random() < 0.7
                            else ("M25.561" if side == "right" else "M25.562"))]
        if rng.random() < 0.5:
            self.sided([("20611", 1)], side, [], pointers, {"side": side, "imaging": "ultrasound"})
        else:
            fluoro = rng.random() < 0.3
            self.sided([("20610", 1)], side, [], pointers,
                       {"side": side, "imaging": "fluoroscopy" if fluoro else "none"})
            if fluoro and self.room():
                self.add("77002", [], 1, pointers)

    def office_visit(self) -> None:
        rng = self.rng
        code = rng.choices(EM_CODES, (3, 5, 5, 2, 1, 4, 10, 9, 3))[0]
        group = rng.choice(("facet_lumbar", "radicular_lumbar", "knee", "myofascial"))
        pointers = [self.dx(rng.choice(DIAGNOSES[group]))]
        if rng.random() < 0.5:
            pointers.append(self.dx(rng.choice(DIAGNOSES["chronic_pain"])))
        self.pos = "11" if rng.random() < 0.85 else self.pos
        self.add(code, [], 1, pointers)
        if self.payer == "medicare" and code not in ("99211",) and rng.random() < 0.45:
            self.add("G2211", [], 1, pointers)

    def chronic_pain(self) -> None:
        rng = self.rng
        self.pos = "11"
        minutes = rng.choices((30, 40, 45, 55, 60, 75), (20, 20, 20, 15, 15, 10))[0]
        pointers = [self.dx(rng.choice(DIAGNOSES["chronic_pain"])),
                    self.dx(rng.choice(DIAGNOSES["facet_lumbar"] + DIAGNOSES["radicular_lumbar"]))]
        self.add("G3002", [], 1, pointers)
        extra = (minutes - 30) // 15
        if extra >= 1:
            self.add("G3003", [], extra, pointers)
        if rng.random() < 0.85:
            self.clinical["cpm_minutes"] = minutes
        if rng.random() < 0.85:
            self.clinical["pain_duration_months"] = rng.randint(4, 60)
        if rng.random() < 0.8:
            self.clinical["care_plan"] = True

    def em_with_procedure(self) -> None:
        """A visit on the day of the procedure, with modifier 25 and a separate problem."""
        rng = self.rng
        if not self.procedure_lines or not self.room():
            return
        pointers = [self.dx(rng.choice(DIAGNOSES["chronic_pain"] + DIAGNOSES["myofascial"]))]
        self.add(rng.choice(("99213", "99214", "99204")), ["25"], 1, pointers)
        roll = rng.random()
        if roll < 0.8:
            self.clinical["em_separate_problem"] = True
        elif roll < 0.9:
            self.clinical["em_separate_problem"] = False

    # -- errors -----------------------------------------------------------------------------

    def inject(self, kind: str) -> bool:
        """Apply one deliberate coding error; False when it does not apply to this claim."""
        rng = self.rng
        lines = self.lines
        sided = [i for i, ln in enumerate(lines) if {"RT", "LT", "50"} & set(ln["modifiers"])]
        if kind == "drop_laterality" and sided:
            line = lines[rng.choice(sided)]
            line["modifiers"] = [m for m in line["modifiers"] if m not in ("RT", "LT", "50")]
        elif kind == "drop_kx" and any("KX" in ln["modifiers"] for ln in lines):
            for line in lines:
                line["modifiers"] = [m for m in line["modifiers"] if m != "KX"]
        elif kind == "kx_on_therapeutic" and self.procedure_lines and not self.diagnostic:
            line = lines[self.procedure_lines[0]]
            if "KX" in line["modifiers"] or len(line["modifiers"]) >= 3:
                return False
            line["modifiers"].append("KX")
        elif kind == "imaging_included" and self.procedure_lines and self.room():
            first = lines[self.procedure_lines[0]]
            if first["code"] not in _IMAGING_INCLUDED:
                return False
            self.add(rng.choice(("77003", "77003", "77012")), [], 1, list(first["dx"]))
        elif kind == "wrong_fluoro_code" and self.procedure_lines and self.room():
            first = lines[self.procedure_lines[0]]
            if first["code"] not in ("64405", "64450", "20552", "20553", "20610"):
                return False
            guidance = [ln for ln in lines if ln["code"] in ("77002", "76942")]
            if guidance:
                guidance[0]["code"] = "77003"
            else:
                self.add("77003", [], 1, list(first["dx"]))
        elif kind == "addon_units":
            addons = [ln for ln in lines if ln["code"] in ("64491", "64492", "64494", "64495")]
            if not addons:
                return False
            addons[0]["units"] = rng.randint(2, 3)
        elif kind == "bilateral_not_allowed":
            target = [ln for ln in lines if ln["code"] in TRIGGER_POINT_CODES + ("62321", "62323")]
            if not target:
                return False
            target[0]["modifiers"].append("50")
        elif kind == "invalid_dx" and self.diagnoses:
            self.diagnoses[0] = rng.choice(INVALID_DIAGNOSES)
        elif kind == "missing_pointer" and lines:
            rng.choice(lines)["dx"] = []
        elif kind == "em_without_25" and self.procedure_lines and self.room():
            self.add(rng.choice(("99213", "99214")), [], 1, list(lines[0]["dx"]))
        elif kind == "em_25_not_separate":
            visits = [ln for ln in lines if ln["code"] in EM_CODES and "25" in ln["modifiers"]]
            if not visits:
                return False
            self.clinical["em_separate_problem"] = False
        elif kind == "duplicate_line" and lines and self.room():
            self.lines.append(_copy(rng.choice(lines)))
        elif kind == "orphan_addon":
            kinds = {ln["code"] for ln in lines}
            primaries = [ln for ln in lines if ln["code"] in ("64483", "64479", "64493", "64490",
                                                               "64635", "64633", "G3002")]
            if not primaries or not kinds & {"64484", "64480", "64494", "64491", "64636", "64634",
                                             "G3003"}:
                return False
            code = primaries[0]["code"]
            self.lines = [ln for ln in lines if ln["code"] != code]
            self.procedure_lines = []
        elif kind == "rt_lt_conflict":
            target = [ln for ln in lines if "RT" in ln["modifiers"] or "LT" in ln["modifiers"]]
            if not target:
                return False
            line = target[0]
            line["modifiers"].append("LT" if "RT" in line["modifiers"] else "RT")
        elif kind == "esi_frequency":
            esi = [ln for ln in lines if ln["code"] in ESI_CODES]
            if not esi:
                return False
            levels = (esi[0].get("documented") or {}).get("levels") or []
            self.history = [h for h in self.history if h["code"] not in ESI_CODES]
            self.esi_history(esi[0]["code"], levels, 4)
        elif kind == "tpi_few_muscles":
            target = [ln for ln in lines if ln["code"] == "20553"]
            if not target:
                return False
            target[0]["documented"] = {"muscles": rng.sample(MUSCLES, 2)}
        elif kind == "g2211_with_25" and self.room():
            visits = [ln for ln in lines if ln["code"] in EM_CODES and "25" in ln["modifiers"]]
            if not visits:
                return False
            self.add("G2211", [], 1, list(visits[0]["dx"]))
        elif kind == "distinct_59" and self.procedure_lines:
            line = lines[self.procedure_lines[-1]]
            if len(line["modifiers"]) >= 3:
                return False
            line["modifiers"].append(rng.choice(("59", "XS")))
        elif kind == "conservative_short" and "conservative_care_weeks" in self.clinical:
            self.clinical["conservative_care_weeks"] = rng.randint(0, 3)
        elif kind == "levels_mismatch":
            documented = [ln["documented"] for ln in lines
                          if (ln.get("documented") or {}).get("levels")]
            if not documented:
                return False
            levels = documented[0]["levels"]
            for doc in documented:
                doc["levels"] = (levels[:1] if len(levels) > 1
                                 else list(_LEVEL_NEIGHBOUR.get(levels[0], levels)))
        elif kind == "dx_mismatch" and self.procedure_lines:
            line = lines[self.procedure_lines[0]]
            line["dx"] = [self.dx(rng.choice(DIAGNOSES["knee"] + DIAGNOSES["myofascial"]))]
            for other in lines:
                if other is not line and other["dx"] == []:
                    other["dx"] = list(line["dx"])
        elif kind == "drop_documentation" and self.procedure_lines:
            for line in lines:
                line.pop("documented", None)
            self.clinical.clear()
        else:
            return False
        return True

    # -- result -----------------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        rng = self.rng
        name = rng.choices([s for s, _ in _SCENARIOS], [w for _, w in _SCENARIOS])[0]
        if name in _SPINAL:
            self.spinal(name)
        elif name == "genicular_block":
            self.genicular(ablation=False)
        elif name == "genicular_rfa":
            self.genicular(ablation=True)
        else:
            getattr(self, name)()
        if name not in ("office_visit", "chronic_pain") and rng.random() < 0.25:
            self.em_with_procedure()
        if rng.random() < 0.12:  # documentation not sent for some lines
            for line in self.lines:
                if "documented" in line and rng.random() < 0.5:
                    doc = line["documented"]
                    doc.pop(rng.choice(sorted(doc)), None)
                    if not doc:
                        del line["documented"]
        if rng.random() < ERROR_RATE:
            wanted = 2 if rng.random() < SECOND_ERROR_RATE else 1
            kinds = list(ERROR_KINDS)
            rng.shuffle(kinds)
            done = 0
            for kind in kinds:
                if done >= wanted:
                    break
                done += self.inject(kind)
        claim: dict[str, Any] = {
            "claim_id": self.claim_id,
            "payer": self.payer,
            "place_of_service": self.pos,
            "patient": dict(self.patient),
        }
        if self.prior_auth:
            claim["prior_authorization"] = self.prior_auth
        claim["diagnoses"] = list(self.diagnoses)
        claim["lines"] = self.lines[:MAX_GENERATED_LINES]
        if self.clinical:
            claim["clinical"] = self.clinical
        if self.history:
            claim["history"] = sorted(self.history, key=lambda h: (h["date"], h["code"]))
        return claim


_LEVEL_NEIGHBOUR = {"L3-L4": ("L3-L4", "L4-L5"), "L4-L5": ("L4-L5", "L5-S1"),
                    "L5-S1": ("L4-L5", "L5-S1"), "C3-C4": ("C3-C4", "C4-C5"),
                    "C4-C5": ("C4-C5", "C5-C6"), "C5-C6": ("C5-C6", "C6-C7"),
                    "C6-C7": ("C5-C6", "C6-C7"), "C7-T1": ("C6-C7", "C7-T1")}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _weekday(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    day = first + dt.timedelta(days=rng.randint(0, (last - first).days))
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return max(day, first)


def _levels(rng: random.Random, pool: tuple[str, ...], count: int) -> list[str]:
    count = min(count, len(pool))
    start = rng.randint(0, len(pool) - count)
    return list(pool[start:start + count])


def _new_patient(rng: random.Random, seed: int, number: int) -> dict[str, Any]:
    birth = dt.date(1938, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 55))
    return {"id": f"PT-{seed}-{number:06d}", "birth_date": _iso(birth),
            "sex": rng.choice(("F", "M"))}


def generate_claims(n: int, seed: int) -> Iterator[dict[str, Any]]:
    """Yield ``n`` realistic claims (docs/claim-format.md dicts, ISO dates), the same for the same seed."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    patients: list[dict[str, Any]] = []
    for number in range(n):
        if patients and rng.random() < RETURNING_PATIENT:
            patient = rng.choice(patients[-500:])
        else:
            patient = _new_patient(rng, seed, len(patients) + 1)
            patients.append(patient)
        yield _Claim(rng, f"GEN-{seed}-{number + 1:07d}", patient).build()


def write_jsonl(path: str | Path, n: int, seed: int) -> Path:
    """Write ``n`` generated claims to ``path`` as JSON Lines; returns the path."""
    target = Path(path)
    with target.open("w", encoding="utf-8") as out:
        for claim in generate_claims(n, seed):
            out.write(json.dumps(claim, separators=(",", ":")))
            out.write("\n")
    return target
