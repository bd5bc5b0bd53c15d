"""Properties of `pain-asp code` on generated encounters and texts (docs/encounter-format.md).

(a) Every generated structured encounter, coded for every shipped payer and place of
    service, gives a claim with no deny finding, unless the procedure itself breaks the
    payer's policy; then that finding is present. The policy breaks are predicted here from
    the encounter and the payer's parameters (an oracle independent of kb/code/): too many
    levels in a session, two spinal regions, a first RFA without the diagnostic blocks, a
    code the payer does not cover, a code that needs prior authorization at that place of
    service. Review findings (unknown chart facts) are expected and allowed.
(b) Round trip: encounter -> canonical text -> reader gives the same procedures.
(c) Garbage gives a TextError; a canonical text without a field the code depends on gives a
    TextError that names what is missing. Neither ever gives a code.

Generator limits (each would need a decision no coder can make from the encounter):
bilateral blocks of two nerves that share one code; a knee injection together with an
ultrasound-guided nerve block (the shipped starter NCCI rows bundle 76942 into 20610/20611
with modifier indicator 0); the same kind of procedure twice, interlaminar with caudal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pain_asp.inputs.encounter import (
    GENICULAR_BRANCHES,
    KIND_FIELDS,
    NERVES,
    Procedure,
    parse_encounter,
)
from pain_asp.inputs.procedure_text import (
    MUSCLES,
    TextError,
    encounter_text,
    procedure_text,
    read_procedure_text,
)
from pain_asp.modes.code import Coder
from pain_asp.payers import load_registry

PAYERS = ("medicare", "commercial", "commercial_asc_rtlt", "commercial_strict_esi", "commercial_prior_auth")
PLACES = ("11", "19", "22", "24")
LUMBAR = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")
CERVICAL = ("C2-C3", "C3-C4", "C4-C5", "C5-C6", "C6-C7", "C7-T1")
THORACIC = ("T10-T11", "T11-T12", "T12-L1")
PERIPHERAL = tuple(n for n in NERVES if n not in GENICULAR_BRANCHES)
# Billable on every date drawn (2024-2026), by what they support (ICD-10-CM FY2026; A58993 / A57787 covered-diagnosis groups).
DX = {"esi": ("M54.16", "M54.12", "M48.062"), "facet": ("M47.816", "M47.812"), "si": ("M46.1",),
      "knee": ("M17.11",), "occipital": ("M54.81",), "myofascial": ("M79.18",), "pain": ("G89.29",)}
_NERVE_CODE = {"trigeminal": "64400", "greater occipital": "64405", "suprascapular": "64418",
               "ilioinguinal": "64425", "iliohypogastric": "64425", "sciatic": "64445"}


# --- strategies ----------------------------------------------------------------------------

def _levels(regions: tuple[tuple[str, ...], ...], most: int) -> st.SearchStrategy[list[str]]:
    return st.sampled_from(regions).flatmap(
        lambda region: st.lists(st.sampled_from(region), min_size=1, max_size=most, unique=True))


def _maybe(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.sampled_from(values))


@st.composite
def procedures(draw: st.DrawFn, kind: str | None = None) -> Procedure:
    """A procedure of ``kind`` (or any kind) with the fields that kind takes."""
    kind = kind or draw(st.sampled_from(tuple(KIND_FIELDS)))
    spec = KIND_FIELDS[kind]
    allowed = set(spec["required"]) | set(spec["optional"])
    fields: dict[str, Any] = {"procedure": kind}
    sides = ("left", "right", "bilateral")
    if "side" in allowed:
        fields["side"] = draw(st.sampled_from(sides)) if "side" in spec["required"] else draw(_maybe(sides))
    if "guidance" in allowed:
        fields["guidance"] = draw(st.sampled_from(spec["guidance"]) if "guidance" in spec["required"]
                                  else _maybe(spec["guidance"]))
    if "purpose" in allowed:
        fields["purpose"] = draw(_maybe(("diagnostic", "therapeutic")))
    if kind == "transforaminal_esi":
        mixed = st.just(["T12-L1", "L1-L2"])
        fields["levels"] = draw(st.one_of(_levels((LUMBAR, CERVICAL, THORACIC), 3), mixed))
    elif kind == "interlaminar_esi":
        fields["levels"] = draw(_levels((LUMBAR, CERVICAL), 2))
    elif kind == "caudal_esi":
        fields["levels"] = draw(st.one_of(st.none(), _levels((LUMBAR,), 1)))
    elif kind in ("facet_injection", "facet_rfa"):
        fields["levels"] = draw(_levels((LUMBAR, CERVICAL), 4 if kind == "facet_injection" else 3))
    elif kind in ("genicular_nerve_block", "genicular_rfa"):
        nerves = st.lists(st.sampled_from(GENICULAR_BRANCHES), min_size=1, max_size=4, unique=True)
        fields["nerves"] = draw(nerves if kind == "genicular_nerve_block" else st.one_of(st.none(), nerves))
    elif kind == "peripheral_nerve_block":
        fields["nerves"] = draw(st.lists(st.sampled_from(PERIPHERAL), min_size=1, max_size=3, unique=True))
    elif kind == "trigger_point":
        names = st.tuples(st.sampled_from(("", "left ", "right ")), st.sampled_from(MUSCLES)).map("".join)
        fields["muscles"] = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    elif kind.startswith("office_visit"):
        fields["minutes"] = draw(st.integers(15, 90))
        fields["separate_problem"] = draw(st.one_of(st.none(), st.booleans()))
    elif kind == "chronic_pain_management":
        fields["minutes"] = draw(st.integers(30, 150))
    return Procedure(**{k: v for k, v in fields.items() if v is not None})


def _codes_of_nerves(proc: Procedure) -> list[str]:
    return [_NERVE_CODE.get(n, "64450:" + n) for n in proc.nerves or []]


@st.composite
def encounters(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible encounter (payer and place of service chosen later), as raw data."""
    kinds = draw(st.lists(st.sampled_from(tuple(KIND_FIELDS)), min_size=1, max_size=3, unique=True))
    visits = [k for k in kinds if k.startswith("office_visit")]
    assume(len(visits) <= 1 and not {"interlaminar_esi", "caudal_esi"} <= set(kinds))
    procs = [draw(procedures(kind)) for kind in kinds]
    minor = [p for p in procs if not p.procedure.startswith("office_visit") and p.procedure != "chronic_pain_management"]
    for n, proc in enumerate(procs):
        if proc.procedure.startswith("office_visit") and minor and proc.separate_problem is None:
            procs[n] = Procedure(procedure=proc.procedure, minutes=proc.minutes, separate_problem=draw(st.booleans()))
        if proc.procedure == "peripheral_nerve_block" and proc.side == "bilateral":
            codes = [c.split(":")[0] for c in _codes_of_nerves(proc)]
            assume(len(codes) == len(set(codes)))
    ultrasound_line = any(p.procedure == "peripheral_nerve_block" and p.guidance == "ultrasound" for p in procs)
    assume(not (ultrasound_line and any(p.procedure == "major_joint_injection" for p in procs)))
    date = draw(st.dates(dt.date(2024, 1, 2), dt.date(2026, 6, 30)))
    diagnoses = sorted({dx for group in DX.values() for dx in group[:1]} | {draw(st.sampled_from(DX["esi"]))})
    raw: dict[str, Any] = {"date": date.isoformat(), "diagnoses": diagnoses,
                           "procedures": [_as_raw(p) for p in procs]}
    if draw(st.booleans()):
        raw["clinical"] = {"pain_duration_months": 6, "conservative_care_weeks": 12}
    if draw(st.booleans()):
        raw["prior_authorization"] = "PA-1"
    rfa_regions = {_region(lv) for p in procs if p.procedure == "facet_rfa" for lv in p.levels or []}
    if rfa_regions and draw(st.booleans()):
        raw["history"] = [
            {"date": (date - dt.timedelta(days=days)).isoformat(), "code": code, "modifiers": ["50", "KX"],
             "purpose": "diagnostic", "relief_pct": 90}
            for code in sorted({"64490" if r == "cervical_thoracic" else "64493" for r in rfa_regions})
            for days in (60, 30)]
    return raw


def _as_raw(proc: Procedure) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(proc)


def _region(level: str) -> str:
    return "cervical_thoracic" if level[0] in "CT" else "lumbar_sacral"


# --- the oracle ----------------------------------------------------------------------------

# Kinds whose codes include imaging, and the catalog family the payer's imaging list names.
_IMAGED_FAMILY = {"transforaminal_esi": "esi_transforaminal", "facet_injection": "facet_injection",
                  "facet_rfa": "facet_rfa", "si_joint_injection": "si_joint_injection",
                  "si_joint_nerve_block": "si_joint_nerve_block", "si_joint_rfa": "si_joint_rfa",
                  "genicular_nerve_block": "genicular_nerve_block", "genicular_rfa": "genicular_rfa"}

def _param(payer: Any, name: str, on: dt.date) -> Any:
    dated = payer.in_force(name, on)
    return dated.value if dated is not None else None


def _record(value: str) -> list[str]:
    return [v.strip() for v in value.strip("()").split(",")]


def policy_breaks(raw: dict[str, Any], payer_id: str, pos: str, codes: list[str]) -> tuple[set[str], set[str]]:
    """(deny rules that must be present, deny rules that may also be present) for the encounter.

    Predicted from the encounter and the payer's parameters; ``codes`` are the claim's codes,
    used only for the lists keyed by code (prior authorization, non-covered codes).
    """
    payer = load_registry().get(payer_id)
    on = dt.date.fromisoformat(raw["date"])
    procs = [Procedure(**p) for p in raw["procedures"]]
    must: set[str] = set()
    may: set[str] = set()
    esi_regions: set[str] = set()
    rfa_regions = {_region(lv) for p in procs if p.procedure == "facet_rfa" for lv in p.levels or []}
    tf_max, il_max = (int(x) for x in _record(_param(payer, "esi_levels_per_session", on)))
    facet_max = int(_param(payer, "facet_levels_per_session", on))
    appeal = set(_param(payer, "facet_appeal_only_codes", on) or [])
    for proc in procs:
        per_region: dict[str, int] = {}
        for level in proc.levels or []:
            per_region[_region(level)] = per_region.get(_region(level), 0) + 1
        if proc.procedure == "caudal_esi":
            per_region = {"lumbar_sacral": 1}
        if proc.procedure in ("transforaminal_esi", "interlaminar_esi", "caudal_esi"):
            esi_regions |= set(per_region)
            limit = tf_max if proc.procedure == "transforaminal_esi" else il_max
            if any(n > limit for n in per_region.values()):
                must.add("esi-levels-per-session")
        if proc.procedure == "facet_injection" and proc.guidance != "ultrasound":
            for region, n in per_region.items():
                if region in rfa_regions:
                    continue
                third = ("64492" if region == "cervical_thoracic" else "64495") in appeal
                if n > facet_max or (n >= 3 and third):
                    must.add("facet-levels-per-session")
        if proc.procedure == "facet_rfa" and any(n > facet_max for n in per_region.values()):
            must.add("facet-levels-per-session")
        if proc.procedure in ("transforaminal_esi", "facet_rfa") and proc.side == "bilateral" \
                and any(n >= 3 for n in per_region.values()):
            may.add("bilateral-units")      # a third level on both sides: already over the limit
    accepted: dict[str, set[str]] = {}
    for row in _param(payer, "imaging_required", on) or []:
        family, modality = _record(row)
        accepted.setdefault(family, set()).add(modality)
    for proc in procs:
        family = _IMAGED_FAMILY.get(proc.procedure)
        if proc.procedure == "facet_injection" and proc.guidance == "ultrasound":
            family = "facet_injection_us"        # 0213T-0218T: not covered instead
        if family in accepted and proc.guidance is not None and proc.guidance not in accepted[family]:
            must.add("imaging-undocumented")     # documented guidance the payer does not accept
    if len(esi_regions) > int(_param(payer, "esi_regions_per_session", on)):
        must.add("esi-regions-per-session")
    if rfa_regions and not raw.get("history"):
        must.add("rfa-prerequisite")
    not_covered = {c.strip('"') for c in _param(payer, "not_covered", on) or []}
    if not_covered & set(codes):
        must.add("not-covered")
    if not raw.get("prior_authorization"):
        for row in _param(payer, "prior_auth", on) or []:
            code, place, certainty, requester = _record(row)
            # a hospital-requested authorization without number or status is a review
            if code.strip('"') in codes and place in ("0", str(int(pos))) and certainty == "required" \
                    and requester == "practitioner":
                must.add("prior-auth-missing")
    return must, must | may


@pytest.fixture(scope="module")
def coder() -> Coder:
    return Coder()


@given(raw=encounters())
def test_generated_encounters_are_clean_unless_the_procedure_breaks_a_policy(raw: dict[str, Any], coder: Coder) -> None:
    combos = [(payer, pos) for payer in PAYERS for pos in PLACES]
    encs = [parse_encounter({**raw, "payer": payer, "place_of_service": pos}) for payer, pos in combos]
    for (payer, pos), coded in zip(combos, coder.code_many(encs)):
        assert not coded.result.errors, coded.result.errors
        codes = [line.code for line in coded.claim.lines]
        must, may = policy_breaks(raw, payer, pos, codes)
        denied = {f.rule for f in coded.result.findings if f.severity == "deny"}
        shown = [(f.rule, f.message) for f in coded.result.findings if f.severity == "deny"]
        assert must <= denied, f"{payer} POS {pos}: expected {must - denied} on {codes}"
        assert denied <= may, f"{payer} POS {pos}: unexpected deny {shown} on {codes}"


# --- free text -----------------------------------------------------------------------------

def _without_dx(proc: Procedure) -> dict[str, Any]:
    data = _as_raw(proc)
    data.pop("dx", None)
    return data


@given(proc=procedures())
def test_round_trip_one_procedure(proc: Procedure) -> None:
    text = procedure_text(proc)
    reading = read_procedure_text(text)
    assert [_without_dx(p) for p in reading.procedures] == [_without_dx(proc)], text
    assert reading.unrecognised == [], text


@given(procs=st.lists(procedures(), min_size=1, max_size=4))
def test_round_trip_several_procedures(procs: list[Procedure]) -> None:
    reading = read_procedure_text(encounter_text(procs))
    assert [_without_dx(p) for p in reading.procedures] == [_without_dx(p) for p in procs]


_GARBAGE_WORDS = ("lorem", "ipsum", "tolerated", "well", "sterile", "prep", "betadine", "drape",
                  "lidocaine", "depomedrol", "complications", "discharged", "home", "stable",
                  "vitals", "consent", "obtained", "timeout", "recovery", "ambulated")
_garbage = st.lists(st.one_of(
    st.sampled_from(_GARBAGE_WORDS),
    st.text(alphabet="0123456789.,:()!?'\"#%&*+=<>@[]{}|~αβγδ漢字Ωé ", max_size=12),
), max_size=12).map(" ".join)


@given(text=_garbage)
def test_garbage_is_an_error_never_a_code(text: str) -> None:
    with pytest.raises(TextError):
        read_procedure_text(text)


_ASKED = {"levels": "spinal levels", "side": "side", "guidance": "image guidance",
          "nerves": "nerve", "muscles": "muscles", "minutes": "minutes"}


@given(data=st.data())
def test_text_without_a_needed_field_is_an_error_naming_it(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from([k for k, s in KIND_FIELDS.items() if s["required"]]))
    proc = data.draw(procedures(kind))
    missing = data.draw(st.sampled_from(KIND_FIELDS[kind]["required"]))
    values = {k: v for k, v in _as_raw(proc).items() if k not in (missing, "dx")}
    text = procedure_text(Procedure(**{**values, missing: None}))
    with pytest.raises(TextError) as info:
        read_procedure_text(text)
    assert _ASKED[missing] in str(info.value), text
