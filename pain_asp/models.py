"""Validated claim models (docs/claim-format.md), as strict msgspec structs.

Models are strict: unknown keys are errors, codes/modifiers/diagnoses must match the
patterns in :mod:`pain_asp.tokens`, documentation uses a closed vocabulary, levels must be
adjacent spinal segments. A model that validates is safe to translate into ASP facts.

msgspec is used rather than pydantic because a one-claim check must start in well under
200 ms (docs/scaling.md): msgspec imports in ~5 ms, pydantic and these models took ~150 ms.
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

from .tokens import CODE_RE, MODIFIER_RE, normalise_dx, parse_spinal_level

__all__ = [
    "Claim",
    "Clinical",
    "Documentation",
    "HistoryEntry",
    "Line",
    "Patient",
    "Providers",
    "ValidationError",
    "parse_claim",
    "parse_history_entry",
    "as_dict",
    "numbers_as_text",
    "MAX_LINES",
    "MAX_DIAGNOSES",
    "MAX_MODIFIERS",
    "MAX_CHARGE",
    "MAX_ID_LENGTH",
    "MAX_AUTHORIZATION_LENGTH",
    "PLACES_OF_SERVICE",
    "EXPECTED",
    "ORIGINAL",
    "REPLACEMENT",
    "VOID",
    "check_service_date",
]

MAX_LINES = 50
MAX_DIAGNOSES = 12
MAX_MODIFIERS = 4

# Plausible values (docs/claim-format.md, "Input limits"). A date of service before ICD-10-CM
# took effect for US claims (2015-10-01) cannot carry the ICD-10-CM diagnoses a claim needs;
# one more than a year ahead is a typo (a year later is allowed: procedures are checked while
# they are scheduled, e.g. for prior authorization). Earlier services and birth dates go back
# to 1900. Every amount of an 837P (data element 782, CLM02 and SV102) is at most
# 99,999,999.99 under the 005010 implementation guides.
FIRST_SERVICE_DATE = dt.date(2015, 10, 1)
FIRST_DATE = dt.date(1900, 1, 1)
FUTURE_MARGIN = dt.timedelta(days=365)
MAX_CHARGE = Decimal("99999999.99")
# The CMS Place of Service code set (https://www.cms.gov/medicare/coding-billing/place-of-service-codes/code-sets,
# as of 2025): every assigned two-digit code; the others are unassigned and no payer takes them.
PLACES_OF_SERVICE = frozenset(
    [f"{n:02d}" for n in range(1, 28)]
    + ["31", "32", "33", "34", "41", "42", "49", "50", "51", "52", "53", "54", "55", "56", "57",
       "58", "60", "61", "62", "65", "66", "71", "72", "81", "99"])

ConservativeCare = Literal[
    "physical_therapy", "home_exercise", "nsaids", "medications", "chiropractic",
    "activity_modification", "acupuncture", "other",
]
Side = Literal["left", "right", "bilateral"]
Purpose = Literal["diagnostic", "therapeutic"]
Outcome = Literal["paid", "denied"]
Percent = Annotated[int, Meta(ge=0, le=100)]
Months = Annotated[int, Meta(ge=0, le=120)]
Modifiers = Annotated[list[str], Meta(max_length=MAX_MODIFIERS)]
Units = Annotated[int, Meta(ge=1, le=999)]
# Text and list sizes (docs/claim-format.md, "Input limits"): an id is at most 64 characters
# (an 837P claim id, CLM01, is at most 38; a UUID is 36), an authorization number at most 50
# (REF02); a line documents at most 50 levels, nerves or muscles; a claim carries at most
# 1,000 earlier services.
MAX_ID_LENGTH = 64
MAX_AUTHORIZATION_LENGTH = 50
Id = Annotated[str, Meta(max_length=MAX_ID_LENGTH)]
Names = Annotated[list[str], Meta(max_length=50)]
MAX_HISTORY = 1000

# What each strict field expects, in words, for error messages (keyed by field name).
EXPECTED = {
    "code": "a CPT code (5 digits, or 4 digits + F/T/U) or HCPCS code (letter + 4 digits)",
    "modifiers": "two-character modifiers such as 50, RT, LT, KX, 25, 59, XS (at most 4)",
    "diagnoses": "ICD-10-CM codes such as M54.16 or M5416 (at most 12)",
    "place_of_service": "an assigned two-digit CMS place-of-service code such as 11, 19, 22 or 24",
    "levels": "spinal levels as adjacent segments, e.g. L4-L5, L4-5, L5-S1, T12-L1, C5-C6, or "
              "vertebral bodies, e.g. T12, L1, S1",
    "date": "a date as YYYY-MM-DD",
    "birth_date": "a date as YYYY-MM-DD",
    "dx": "diagnosis pointers 1-12 (at most 4)",
    "units": "a whole number from 1 to 999",
    "charge": "an amount from 0.00 to 99,999,999.99 (the largest an 837P carries), such as 850.00",
    "lines": "1 to 50 service lines",
    "through": "the last date of service of a line billed over several days, on or after its date",
    "minutes": "anesthesia time in whole minutes, 1 to 9999",
    "frequency": "a claim frequency: 1 (original), 7 (replacement) or 8 (void)",
    "replaces": "the payer's claim control number of the claim a replacement (7) or void (8) "
                "replaces, and only then",
}

#: Claim frequency codes (837P CLM05-3): an original claim, a replacement of an earlier
#: claim, a void of one.
ORIGINAL, REPLACEMENT, VOID = 1, 7, 8


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
        if mod.upper() in out:
            raise ValueError(f"{field}: each modifier once on a line (one is repeated)")
        out.append(mod.upper())
    return out


def service_dates() -> tuple[dt.date, dt.date]:
    """The first and last plausible date of service, today."""
    return FIRST_SERVICE_DATE, dt.date.today() + FUTURE_MARGIN


def check_service_date(field: str, day: dt.date) -> None:
    first, last = service_dates()
    if not first <= day <= last:
        raise ValueError(f"{field}: a date of service from {first} (ICD-10-CM) to {last} (a year from today)")


def _check_levels(values: Optional[list[str]]) -> None:
    for text in values or ():
        if parse_spinal_level(text) is None:
            raise ValueError(f"levels: {EXPECTED['levels']}")


def _segments(levels: Optional[list[str]]) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    for text in levels or []:
        level = parse_spinal_level(text)
        if level is not None and level not in seen:
            seen.append(level)
    return seen


class Documentation(_Strict):
    """Chart facts for one line. An absent field is unknown, never false."""

    imaging: Optional[Literal["fluoroscopy", "ct", "ultrasound", "none"]] = None
    images_recorded: Optional[bool] = None
    side: Optional[Side] = None
    levels: Optional[Names] = None
    purpose: Optional[Purpose] = None
    relief_pct: Optional[Percent] = None
    relief_duration_months: Optional[Months] = None
    nerves: Optional[Names] = None
    muscles: Optional[Names] = None
    distinct: Optional[Literal[
        "separate_structure", "separate_encounter", "separate_practitioner", "unusual"]] = None
    global_relation: Optional[Literal["staged", "complication", "unrelated"]] = None
    modic: Optional[Literal["type_1", "type_2", "type_3", "none"]] = None
    definitive_reason: Optional[Literal[
        "presumptive_inconsistent", "no_presumptive_test", "patient_specific_rationale", "none"]] = None

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
    through: Optional[dt.date] = None
    minutes: Optional[Annotated[int, Meta(ge=1, le=9999)]] = None

    def __post_init__(self) -> None:
        force_setattr(self, "code", _check_code("code", self.code))
        force_setattr(self, "modifiers", _check_modifiers("modifiers", self.modifiers))
        check_service_date("date", self.date)
        if self.charge is not None and (
                not self.charge.is_finite() or not 0 <= self.charge <= MAX_CHARGE
                or self.charge.as_tuple().exponent < -2):  # type: ignore[operator]
            raise ValueError(f"charge: {EXPECTED['charge']}")
        if self.through is not None and self.through < self.date:
            raise ValueError(f"through: {EXPECTED['through']}")

    @property
    def not_checked(self) -> Optional[Literal["date_range", "minutes"]]:
        """Why the rules cannot check this line, or None: it is billed over several days
        (``through``) or in anesthesia minutes (``minutes``). Such a line is reported, never
        passed (kb/rules/coding/unchecked_lines.lp)."""
        if self.minutes is not None:
            return "minutes"
        if self.through is not None and self.through != self.date:
            return "date_range"
        return None


class Patient(_Strict):
    """The patient. Only ``id`` is required; it is PHI and never logged. White space around it is ignored."""

    id: Id
    birth_date: Optional[dt.date] = None
    sex: Optional[Literal["F", "M", "U"]] = None

    def __post_init__(self) -> None:
        force_setattr(self, "id", self.id.strip())


NpiText = Annotated[str, Meta(max_length=80)]


class Providers(_Strict):
    """The National Provider Identifiers on the claim (837P loops 2010AA, 2310B, 2310A).

    Any text is accepted: a wrong NPI is a finding of the claim, not an input error. An
    absent role is unknown and not checked; an empty one is a missing NPI.
    """

    billing: Optional[NpiText] = None
    rendering: Optional[NpiText] = None
    referring: Optional[NpiText] = None


class Clinical(_Strict):
    """Chart facts for the whole claim."""

    pain_duration_months: Optional[Annotated[int, Meta(ge=0, le=1200)]] = None
    conservative_care_weeks: Optional[Annotated[int, Meta(ge=0, le=5200)]] = None
    conservative_care: Optional[list[ConservativeCare]] = None
    em_separate_problem: Optional[bool] = None
    em_decision_for_surgery: Optional[bool] = None
    em_unrelated_to_surgery: Optional[bool] = None
    cpm_minutes: Optional[Annotated[int, Meta(ge=0, le=10000)]] = None
    care_plan: Optional[bool] = None
    psych_evaluation: Optional[bool] = None


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
    outcome: Optional[Outcome] = None   # what the payer did (835), where known

    def __post_init__(self) -> None:
        force_setattr(self, "code", _check_code("code", self.code))
        force_setattr(self, "modifiers", _check_modifiers("modifiers", self.modifiers))
        _check_levels(self.levels)
        if not FIRST_DATE <= self.date <= service_dates()[1]:
            raise ValueError(f"date: a date from {FIRST_DATE} to {service_dates()[1]}")

    def segments(self) -> list[tuple[int, int]]:
        """The documented levels as (upper, lower) segment numbers, without repeats."""
        return _segments(self.levels)


def place_of_service_code(text: str) -> str:
    """A place of service as its two-digit CMS code (``"9"`` -> ``"09"``); raises ValueError."""
    pos = text.strip()
    if not (pos.isascii() and pos.isdigit() and 1 <= len(pos) <= 2) or pos.zfill(2) not in PLACES_OF_SERVICE:
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
    """One professional claim, as read from a claim file or an 837P."""

    claim_id: Id
    payer: Id
    place_of_service: str
    patient: Patient
    lines: Annotated[list[Line], Meta(min_length=1, max_length=MAX_LINES)]
    prior_authorization: Optional[Annotated[str, Meta(max_length=MAX_AUTHORIZATION_LENGTH)]] = None
    prior_authorization_status: Optional[Literal["affirmed", "non_affirmed"]] = None
    diagnoses: Annotated[list[str], Meta(max_length=MAX_DIAGNOSES)] = []
    clinical: Optional[Clinical] = None
    history: Annotated[list[HistoryEntry], Meta(max_length=MAX_HISTORY)] = []
    frequency: Literal[1, 7, 8] = ORIGINAL
    replaces: Optional[Annotated[str, Meta(max_length=MAX_ID_LENGTH)]] = None
    providers: Optional[Providers] = None
    payer_id: Optional[Annotated[str, Meta(max_length=80)]] = None

    @property
    def first_day(self) -> dt.date:
        """The earliest date of service on the claim (batch and store history end there, docs/architecture.md)."""
        return min(line.date for line in self.lines)

    def __post_init__(self) -> None:
        force_setattr(self, "place_of_service", place_of_service_code(self.place_of_service))
        force_setattr(self, "diagnoses", dotted_diagnoses(self.diagnoses))
        for name in ("claim_id", "payer"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name}: a non-empty value")
        last = max(line.date for line in self.lines)
        birth = self.patient.birth_date
        if birth is not None and not FIRST_DATE <= birth <= min(self.first_day, dt.date.today()):
            raise ValueError(f"patient.birth_date: a date from {FIRST_DATE} to the first date of service, "
                             "not in the future")
        for n, entry in enumerate(self.history, start=1):
            if entry.date > last:
                raise ValueError(f"history[{n}].date: an earlier service's date, on or before the claim's "
                                 "last date of service")
        _check_life(self.frequency, self.replaces)


def _check_life(frequency: int, replaces: Optional[str]) -> None:
    """A replacement or void names the claim it replaces (``replaces``); an original does not."""
    if (frequency != ORIGINAL) != bool(replaces and replaces.strip()):
        raise ValueError(f"replaces: {EXPECTED['replaces']}")


# YAML reads 64483, 50 or 24 as numbers; these fields are text.
_TEXT_FIELDS = {"claim_id", "payer", "place_of_service", "prior_authorization", "code", "id",
                "replaces", "billing", "rendering", "referring", "payer_id"}
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
