"""Validated claim models (SPEC §3).

Models are strict: unknown keys are errors, codes/modifiers/diagnoses must match the
patterns in :mod:`pain_asp.tokens`, documentation uses a closed vocabulary. A model that
validates is safe to translate into ASP facts.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from .tokens import CODE_RE, MODIFIER_RE, normalise_dx, parse_level

__all__ = [
    "Claim",
    "Clinical",
    "Documentation",
    "HistoryEntry",
    "Line",
    "Patient",
    "MAX_LINES",
    "MAX_DIAGNOSES",
    "MAX_MODIFIERS",
]

MAX_LINES = 50
MAX_DIAGNOSES = 12
MAX_MODIFIERS = 4

ConservativeCare = Literal[
    "physical_therapy",
    "home_exercise",
    "nsaids",
    "medications",
    "chiropractic",
    "activity_modification",
    "acupuncture",
    "other",
]


def _as_text(value: object) -> object:
    """YAML reads ``64483`` or ``50`` as integers; codes and ids are text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    return value


def _as_code(value: object) -> object:
    value = _as_text(value)
    if isinstance(value, str):
        code = value.strip().upper()
        if not CODE_RE.match(code):
            raise ValueError(
                "a CPT code (5 digits, or 4 digits + F/T/U) or HCPCS code (letter + 4 digits)"
            )
        return code
    return value


def _as_modifier(value: object) -> object:
    value = _as_text(value)
    if isinstance(value, str):
        mod = value.strip().upper()
        if not MODIFIER_RE.match(mod):
            raise ValueError("a two-character modifier such as 50, RT, LT, KX, 25, 59, XS")
        return mod
    return value


def _as_dx(value: object) -> object:
    value = _as_text(value)
    if isinstance(value, str):
        code = normalise_dx(value)
        if code is None:
            raise ValueError("an ICD-10-CM code such as M54.16 or M5416")
        return code
    return value


def _as_pos(value: object) -> object:
    value = _as_text(value)
    if isinstance(value, str):
        pos = value.strip()
        if not (pos.isascii() and pos.isdigit() and 1 <= len(pos) <= 2):
            raise ValueError("a two-digit CMS place-of-service code such as 11, 19, 22 or 24")
        return pos.zfill(2)
    return value


Code = Annotated[str, BeforeValidator(_as_code)]
Modifier = Annotated[str, BeforeValidator(_as_modifier)]
Text = Annotated[str, BeforeValidator(_as_text)]
Diagnosis = Annotated[str, BeforeValidator(_as_dx)]
Pos = Annotated[str, BeforeValidator(_as_pos)]
Percent = Annotated[int, Field(ge=0, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _levels(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    for text in values:
        if not isinstance(text, str) or parse_level(text) is None:
            raise ValueError(
                "spinal levels as adjacent segments, e.g. L4-L5, L4-5, L5-S1, T12-L1, C5-C6"
            )
    return values


class _HasLevels(_Strict):
    """Documented spinal levels (joints treated), parsed strictly."""

    levels: list[str] | None = None

    @field_validator("levels")
    @classmethod
    def _known_levels(cls, values: list[str] | None) -> list[str] | None:
        return _levels(values)

    def segments(self) -> list[tuple[int, int]]:
        """The documented levels as (upper, lower) segment numbers, without repeats."""
        seen: list[tuple[int, int]] = []
        for text in self.levels or []:
            level = parse_level(text)
            if level is not None and level not in seen:
                seen.append(level)
        return seen


class Documentation(_HasLevels):
    """Chart facts for one line. An absent field is unknown, never false."""

    imaging: Literal["fluoroscopy", "ct", "ultrasound", "none"] | None = None
    side: Literal["left", "right", "bilateral"] | None = None
    purpose: Literal["diagnostic", "therapeutic"] | None = None
    relief_pct: Percent | None = None
    relief_duration_months: Annotated[int, Field(ge=0, le=120)] | None = None
    nerves: list[Text] | None = None
    muscles: list[Text] | None = None
    distinct: Literal[
        "separate_structure", "separate_encounter", "separate_practitioner", "unusual"
    ] | None = None


class Line(_Strict):
    """One service line."""

    code: Code
    modifiers: Annotated[list[Modifier], Field(max_length=MAX_MODIFIERS)] = []
    units: Annotated[int, Field(ge=1, le=999)] = 1
    date: dt.date
    dx: Annotated[list[Annotated[int, Field(ge=1, le=MAX_DIAGNOSES)]], Field(max_length=4)] = []
    charge: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = None
    documented: Documentation | None = None


class Patient(_Strict):
    """The patient. Only ``id`` is required; it is PHI and never logged."""

    id: Text
    birth_date: dt.date | None = None
    sex: Literal["F", "M", "U"] | None = None


class Clinical(_Strict):
    """Chart facts for the whole claim."""

    pain_duration_months: Annotated[int, Field(ge=0, le=1200)] | None = None
    conservative_care_weeks: Annotated[int, Field(ge=0, le=5200)] | None = None
    conservative_care: list[ConservativeCare] | None = None
    em_separate_problem: bool | None = None
    cpm_minutes: Annotated[int, Field(ge=0, le=10000)] | None = None
    care_plan: bool | None = None


class HistoryEntry(_HasLevels):
    """An earlier service of this patient."""

    date: dt.date
    code: Code
    modifiers: Annotated[list[Modifier], Field(max_length=MAX_MODIFIERS)] = []
    units: Annotated[int, Field(ge=1, le=999)] = 1
    purpose: Literal["diagnostic", "therapeutic"] | None = None
    relief_pct: Percent | None = None
    relief_duration_months: Annotated[int, Field(ge=0, le=120)] | None = None
    side: Literal["left", "right", "bilateral"] | None = None


class Claim(_Strict):
    """One professional claim (SPEC §3)."""

    claim_id: Text
    payer: Text
    place_of_service: Pos
    patient: Patient
    prior_authorization: Text | None = None
    diagnoses: Annotated[list[Diagnosis], Field(max_length=MAX_DIAGNOSES)] = []
    lines: Annotated[list[Line], Field(min_length=1, max_length=MAX_LINES)]
    clinical: Clinical | None = None
    history: list[HistoryEntry] = []
