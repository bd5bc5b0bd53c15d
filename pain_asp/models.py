"""Validated claim models (SPEC §3), as strict msgspec structs.

Models are strict: unknown keys are errors, codes/modifiers/diagnoses must match the
patterns in :mod:`pain_asp.tokens`, documentation uses a closed vocabulary, levels must be
adjacent spinal segments. A model that validates is safe to translate into ASP facts.

msgspec is used rather than pydantic because a one-claim check must start in well under
200 ms (SPEC §12): msgspec imports in ~5 ms, pydantic and these models took ~150 ms.
``parse_claim`` is the only entry point for raw input; constructing a struct directly runs
the same checks in ``__post_init__``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, TypeVar

import msgspec
from msgspec import Meta, Struct, ValidationError
from msgspec.structs import force_setattr

from .tokens import CODE_RE, MODIFIER_RE, normalise_dx, parse_level

__all__ = [
    "Claim",
    "Clinical",
    "Documentation",
    "HistoryEntry",
    "Line",
    "Patient",
    "ValidationError",
    "parse_claim",
    "parse_history_entry",
    "as_dict",
    "numbers_as_text",
    "MAX_LINES",
    "MAX_DIAGNOSES",
    "MAX_MODIFIERS",
    "EXPECTED",
]

MAX_LINES = 50
MAX_DIAGNOSES = 12
MAX_MODIFIERS = 4

ConservativeCare = Literal[
    "physical_therapy", "home_exercise", "nsaids", "medications", "chiropractic",
    "activity_modification", "acupuncture", "other",
]
Side = Literal["left", "right", "bilateral"]
Purpose = Literal["diagnostic", "therapeutic"]
Percent = Annotated[int, Meta(ge=0, le=100)]
Months = Annotated[int, Meta(ge=0, le=120)]
Modifiers = Annotated[list[str], Meta(max_length=MAX_MODIFIERS)]
Units = Annotated[int, Meta(ge=1, le=999)]

# What each strict field expects, in words, for error messages (keyed by field name).
EXPECTED = {
    "code": "a CPT code (5 digits, or 4 digits + F/T/U) or HCPCS code (letter + 4 digits)",
    "modifiers": "two-character modifiers such as 50, RT, LT, KX, 25, 59, XS (at most 4)",
    "diagnoses": "ICD-10-CM codes such as M54.16 or M5416 (at most 12)",
    "place_of_service": "a two-digit CMS place-of-service code such as 11, 19, 22 or 24",
    "levels": "spinal levels as adjacent segments, e.g. L4-L5, L4-5, L5-S1, T12-L1, C5-C6",
    "date": "a date as YYYY-MM-DD",
    "birth_date": "a date as YYYY-MM-DD",
    "dx": "diagnosis pointers 1-12 (at most 4)",
    "units": "a whole number from 1 to 999",
    "charge": "an amount such as 850.00",
    "lines": "1 to 50 service lines",
}


class _Strict(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=False):
    """Base: unknown keys are errors; instances are immutable."""


def _check_code(field: str, value: str) -> str:
    code = value.strip()
    if not code.isascii() or not CODE_RE.match(code.upper()):
        raise ValueError(f"{field}: {EXPECTED['code']}")
    return code.upper()


def _check_modifiers(field: str, values: list[str]) -> list[str]:
    out = []
    for value in values:
        mod = value.strip()
        if not mod.isascii() or not MODIFIER_RE.match(mod.upper()):
            raise ValueError(f"{field}: {EXPECTED['modifiers']}")
        out.append(mod.upper())
    return out


def _check_levels(values: Optional[list[str]]) -> None:
    for text in values or ():
        if parse_level(text) is None:
            raise ValueError(f"levels: {EXPECTED['levels']}")


def _segments(levels: Optional[list[str]]) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    for text in levels or []:
        level = parse_level(text)
        if level is not None and level not in seen:
            seen.append(level)
    return seen


class Documentation(_Strict):
    """Chart facts for one line. An absent field is unknown, never false."""

    imaging: Optional[Literal["fluoroscopy", "ct", "ultrasound", "none"]] = None
    side: Optional[Side] = None
    levels: Optional[list[str]] = None
    purpose: Optional[Purpose] = None
    relief_pct: Optional[Percent] = None
    relief_duration_months: Optional[Months] = None
    nerves: Optional[list[str]] = None
    muscles: Optional[list[str]] = None
    distinct: Optional[Literal[
        "separate_structure", "separate_encounter", "separate_practitioner", "unusual"]] = None

    def __post_init__(self) -> None:
        _check_levels(self.levels)

    def segments(self) -> list[tuple[int, int]]:
        """The documented levels as (upper, lower) segment numbers, without repeats."""
        return _segments(self.levels)


class Line(_Strict):
    """One service line."""

    code: str
    date: dt.date
    modifiers: Modifiers = []
    units: Units = 1
    dx: Annotated[list[Annotated[int, Meta(ge=1, le=MAX_DIAGNOSES)]], Meta(max_length=4)] = []
    charge: Optional[Decimal] = None
    documented: Optional[Documentation] = None

    def __post_init__(self) -> None:
        force_setattr(self, "code", _check_code("code", self.code))
        force_setattr(self, "modifiers", _check_modifiers("modifiers", self.modifiers))
        if self.charge is not None and (
                not self.charge.is_finite() or self.charge < 0 or self.charge.as_tuple().exponent < -2):
            raise ValueError(f"charge: {EXPECTED['charge']}")


class Patient(_Strict):
    """The patient. Only ``id`` is required; it is PHI and never logged."""

    id: str
    birth_date: Optional[dt.date] = None
    sex: Optional[Literal["F", "M", "U"]] = None


class Clinical(_Strict):
    """Chart facts for the whole claim."""

    pain_duration_months: Optional[Annotated[int, Meta(ge=0, le=1200)]] = None
    conservative_care_weeks: Optional[Annotated[int, Meta(ge=0, le=5200)]] = None
    conservative_care: Optional[list[ConservativeCare]] = None
    em_separate_problem: Optional[bool] = None
    cpm_minutes: Optional[Annotated[int, Meta(ge=0, le=10000)]] = None
    care_plan: Optional[bool] = None


class HistoryEntry(_Strict):
    """An earlier service of this patient."""

    date: dt.date
    code: str
    modifiers: Modifiers = []
    units: Units = 1
    purpose: Optional[Purpose] = None
    relief_pct: Optional[Percent] = None
    relief_duration_months: Optional[Months] = None
    levels: Optional[list[str]] = None
    side: Optional[Side] = None

    def __post_init__(self) -> None:
        force_setattr(self, "code", _check_code("code", self.code))
        force_setattr(self, "modifiers", _check_modifiers("modifiers", self.modifiers))
        _check_levels(self.levels)

    def segments(self) -> list[tuple[int, int]]:
        """The documented levels as (upper, lower) segment numbers, without repeats."""
        return _segments(self.levels)


def place_of_service_code(text: str) -> str:
    """A place of service as its two-digit CMS code (``"9"`` -> ``"09"``); raises ValueError."""
    pos = text.strip()
    if not (pos.isascii() and pos.isdigit() and 1 <= len(pos) <= 2):
        raise ValueError(f"place_of_service: {EXPECTED['place_of_service']}")
    return pos.zfill(2)


def dotted_diagnoses(texts: list[str]) -> list[str]:
    """ICD-10-CM codes in their dotted form (``M5416`` -> ``M54.16``); raises ValueError naming
    the first that is not one."""
    dotted = []
    for n, text in enumerate(texts, start=1):
        code = normalise_dx(text)
        if code is None:
            raise ValueError(f"diagnoses[{n}]: an ICD-10-CM code such as M54.16 or M5416")
        dotted.append(code)
    return dotted


class Claim(_Strict):
    """One professional claim (SPEC §3)."""

    claim_id: str
    payer: str
    place_of_service: str
    patient: Patient
    lines: Annotated[list[Line], Meta(min_length=1, max_length=MAX_LINES)]
    prior_authorization: Optional[str] = None
    prior_authorization_status: Optional[Literal["affirmed", "non_affirmed"]] = None
    diagnoses: Annotated[list[str], Meta(max_length=MAX_DIAGNOSES)] = []
    clinical: Optional[Clinical] = None
    history: list[HistoryEntry] = []

    @property
    def first_day(self) -> dt.date:
        """The earliest date of service on the claim (batch and store history end there, SPEC §7)."""
        return min(line.date for line in self.lines)

    def __post_init__(self) -> None:
        force_setattr(self, "place_of_service", place_of_service_code(self.place_of_service))
        force_setattr(self, "diagnoses", dotted_diagnoses(self.diagnoses))
        for name in ("claim_id", "payer"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name}: a non-empty value")


# YAML reads 64483, 50 or 24 as numbers; these fields are text.
_TEXT_FIELDS = {"claim_id", "payer", "place_of_service", "prior_authorization", "code", "id"}
_TEXT_LISTS = {"modifiers", "diagnoses"}


def numbers_as_text(value: Any, fields: set[str], lists: set[str], key: str | None = None) -> Any:
    """``value`` with whole numbers under the keys ``fields`` (or in the lists ``lists``) as text."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            kind = type(v)
            if kind is int:  # bool is not int here: type() is exact
                out[k] = str(v) if k in fields else v
            elif kind is dict or kind is list:
                out[k] = numbers_as_text(v, fields, lists, k)
            else:  # text, decimals, booleans, null: unchanged (a claim's leaves, checked fast)
                out[k] = v
        return out
    if isinstance(value, list):
        if key in lists:
            return [str(v) if type(v) is int else v for v in value]
        return [numbers_as_text(v, fields, lists) for v in value]
    if key in fields and type(value) is int:
        return str(value)
    return value


def _texts(value: Any) -> Any:
    return numbers_as_text(value, _TEXT_FIELDS, _TEXT_LISTS)


T = TypeVar("T", bound=Struct)


def parse_claim(raw: Any) -> Claim:
    """Validate a raw mapping (parsed JSON or YAML) into a Claim; raises ValidationError."""
    return _convert(raw, Claim)


def parse_history_entry(raw: Any) -> HistoryEntry:
    """Validate a raw mapping into a HistoryEntry; raises ValidationError."""
    return _convert(raw, HistoryEntry)


def _convert(raw: Any, kind: type[T]) -> T:
    """``raw`` as ``kind``, whole numbers in text fields read as text.

    Every text field is typed ``str`` and msgspec never takes a number for one, so a mapping
    that converts as it is has no number to turn into text (the usual JSON claim): it is
    converted without the copy :func:`numbers_as_text` makes. Otherwise the copy is
    converted, and its error is the one reported.
    """
    try:
        return msgspec.convert(raw, kind, strict=False)
    except ValidationError:
        return msgspec.convert(_texts(raw), kind, strict=False)


def as_dict(value: Struct) -> dict[str, Any]:
    """A struct as a plain dict (nested structs too), for rendering."""
    return msgspec.to_builtins(value)
