"""Structured encounters for ``pain-asp code`` (docs/encounter-format.md), as strict msgspec structs.

An encounter says what was done, not which codes: the payer, place of service, date,
diagnoses, and each procedure with its levels, side, guidance, purpose, nerves, muscles
and minutes. :mod:`pain_asp.modes.code` turns it into claim lines with the code-selection
program in ``kb/code/``; :mod:`pain_asp.inputs.procedure_text` reads the same procedures from a
line of free text.

Validation is strict, as for claims (:mod:`pain_asp.models`): unknown keys are errors,
levels must be adjacent spinal segments (stored in the canonical form ``L4-L5``), nerves
must be in the vocabulary below, and :func:`procedure_problems` says which fields a kind of
procedure needs, which it cannot take, and which guidance its codes allow. Nothing is
guessed: a missing field that decides the code is an error that names it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Optional

import msgspec
from msgspec import Meta, Struct
from msgspec.structs import force_setattr

from ..models import (
    Clinical,
    HistoryEntry,
    Patient,
    Purpose,
    Side,
    check_service_date,
    dotted_diagnoses,
    numbers_as_text,
    place_of_service_code,
)
from ..tokens import parse_level, parse_spinal_level, segment_name

__all__ = [
    "Encounter",
    "Procedure",
    "ProcedureKind",
    "Guidance",
    "KINDS",
    "NERVES",
    "GENICULAR_STANDARD",
    "KIND_FIELDS",
    "parse_encounter",
    "procedure_problems",
    "device_phrases",
    "encounter_problems",
    "canonical_level",
    "nerve_key",
    "encounter_schema",
    "encounter_format_markdown",
]

ProcedureKind = Literal[
    "transforaminal_esi", "interlaminar_esi", "caudal_esi",
    "facet_injection", "facet_rfa",
    "si_joint_injection", "si_joint_nerve_block", "si_joint_rfa", "si_joint_fusion",
    "genicular_nerve_block", "genicular_rfa",
    "peripheral_nerve_block", "trigger_point", "major_joint_injection",
    "small_joint_injection", "intermediate_joint_injection",
    "stellate_ganglion_block", "lumbar_sympathetic_block", "celiac_plexus_block",
    "hypogastric_plexus_block",
    "office_visit_new", "office_visit_established", "chronic_pain_management",
    "scs_trial", "scs_implant", "scs_lead_revision", "scs_lead_removal",
    "scs_generator_insertion", "scs_generator_removal",
    "pns_lead", "pns_lead_revision", "pns_generator_insertion", "pns_generator_removal",
    "pump_refill", "pump_analysis",
    "vertebroplasty", "vertebral_augmentation", "basivertebral_ablation",
    "chemodenervation_migraine",
]
Guidance = Literal["fluoroscopy", "ct", "ultrasound", "none"]
Approach = Literal["percutaneous", "paddle"]

KINDS: tuple[str, ...] = ProcedureKind.__args__  # type: ignore[attr-defined]

# Nerves a block can name, with the token the code-selection program knows
# (the catalog, kb/catalog/codes.lp nerve_code/2, maps tokens to codes, with its sources). Medial and lateral branches
# are facet and SI joint procedures, not peripheral nerve blocks.
NERVES: dict[str, str] = {
    "superolateral genicular": "superolateral_genicular",
    "superomedial genicular": "superomedial_genicular",
    "inferomedial genicular": "inferomedial_genicular",
    "inferolateral genicular": "inferolateral_genicular",
    "greater occipital": "greater_occipital",
    "lesser occipital": "lesser_occipital",
    "third occipital": "third_occipital",
    "suprascapular": "suprascapular",
    "sciatic": "sciatic",
    "ilioinguinal": "ilioinguinal_iliohypogastric",
    "iliohypogastric": "ilioinguinal_iliohypogastric",
    "trigeminal": "trigeminal",
    "lateral femoral cutaneous": "other_lateral_femoral_cutaneous",
    "saphenous": "other_saphenous",
    "femoral": "other_femoral",
    "obturator": "other_obturator",
    "pudendal": "other_pudendal",
    "intercostal": "other_intercostal",
    "genitofemoral": "other_genitofemoral",
    "superficial peroneal": "other_superficial_peroneal",
    "sural": "other_sural",
    "supraorbital": "other_supraorbital",
    "auriculotemporal": "other_auriculotemporal",
}
GENICULAR_BRANCHES = ("superolateral genicular", "superomedial genicular",
                      "inferomedial genicular", "inferolateral genicular")
# The three branches a complete genicular injection (64454) treats (AAPM 2020, and
# kb/rules/coding/genicular.lp).
GENICULAR_STANDARD = ("superolateral genicular", "superomedial genicular", "inferomedial genicular")

_ALL_FIELDS = ("levels", "side", "guidance", "purpose", "nerves", "muscles", "minutes",
               "separate_problem", "leads", "approach", "generator", "integrated", "reprogramming",
               "physician_skill", "drug_units", "wasted_units")

# Per kind: the fields it needs (*) and may take; the guidance its codes allow.
# Guidance decides the code for interlaminar/caudal ESI (62321/62323 with imaging, 62320/
# 62322 without), facet injections (64490-64495 fluoroscopy/CT, 0213T-0218T ultrasound) and
# major joints (20611 with ultrasound); codes that include fluoroscopy or CT in their
# descriptor cannot report ultrasound or no imaging (A58993, A57787, AAPM 2020).
KIND_FIELDS: dict[str, dict[str, Any]] = {
    "transforaminal_esi": {"required": ("levels", "side"), "optional": ("guidance", "purpose"),
                           "guidance": ("fluoroscopy", "ct")},
    "interlaminar_esi": {"required": ("levels", "guidance"), "optional": ("side", "purpose"),
                         "guidance": ("fluoroscopy", "ct", "none")},
    "caudal_esi": {"required": ("guidance",), "optional": ("levels", "purpose"),
                   "guidance": ("fluoroscopy", "ct", "none")},
    "facet_injection": {"required": ("levels", "side", "guidance"), "optional": ("purpose",),
                        "guidance": ("fluoroscopy", "ct", "ultrasound")},
    "facet_rfa": {"required": ("levels", "side"), "optional": ("guidance",),
                  "guidance": ("fluoroscopy", "ct")},
    "si_joint_injection": {"required": ("side",), "optional": ("guidance", "purpose"),
                           "guidance": ("fluoroscopy", "ct")},
    "si_joint_nerve_block": {"required": ("side",), "optional": ("guidance", "purpose"),
                             "guidance": ("fluoroscopy", "ct")},
    "si_joint_rfa": {"required": ("side",), "optional": ("guidance",),
                     "guidance": ("fluoroscopy", "ct")},
    "si_joint_fusion": {"required": ("side",), "optional": ("guidance",),
                        "guidance": ("fluoroscopy", "ct")},
    "genicular_nerve_block": {"required": ("side", "nerves"), "optional": ("guidance", "purpose"),
                              "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "genicular_rfa": {"required": ("side",), "optional": ("nerves", "guidance"),
                      "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "peripheral_nerve_block": {"required": ("side", "nerves"), "optional": ("guidance", "purpose"),
                               "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "trigger_point": {"required": ("muscles",), "optional": ("guidance",),
                      "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "major_joint_injection": {"required": ("side",), "optional": ("guidance", "purpose"),
                              "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "small_joint_injection": {"required": ("side",), "optional": ("guidance", "purpose"),
                              "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "intermediate_joint_injection": {"required": ("side",), "optional": ("guidance", "purpose"),
                                     "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "stellate_ganglion_block": {"required": ("side",), "optional": ("guidance", "purpose"),
                                "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "lumbar_sympathetic_block": {"required": ("side",), "optional": ("guidance", "purpose"),
                                 "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "celiac_plexus_block": {"required": (), "optional": ("guidance", "purpose"),
                            "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "hypogastric_plexus_block": {"required": (), "optional": ("guidance", "purpose"),
                                 "guidance": ("fluoroscopy", "ct", "ultrasound", "none")},
    "office_visit_new": {"required": ("minutes",), "optional": ("separate_problem",), "guidance": ()},
    "office_visit_established": {"required": ("minutes",), "optional": ("separate_problem",),
                                 "guidance": ()},
    "chronic_pain_management": {"required": ("minutes",), "optional": (), "guidance": ()},
    "scs_trial": {"required": ("leads",), "optional": ("guidance",), "guidance": ("fluoroscopy",)},
    # A permanent system: percutaneous leads (with their number) or a paddle, with or without
    # the generator in the same session; revisions and removals by the leads' approach.
    "scs_implant": {"required": ("approach", "generator"), "optional": ("leads", "guidance"),
                    "guidance": ("fluoroscopy",)},
    "scs_lead_revision": {"required": ("approach",), "optional": ("guidance",), "guidance": ("fluoroscopy",)},
    "scs_lead_removal": {"required": ("approach",), "optional": ("guidance",), "guidance": ("fluoroscopy",)},
    "scs_generator_insertion": {"required": (), "optional": (), "guidance": ()},
    "scs_generator_removal": {"required": (), "optional": (), "guidance": ()},
    "pns_lead": {"required": ("leads",), "optional": ("integrated", "guidance"),
                 "guidance": ("fluoroscopy", "ultrasound")},
    "pns_lead_revision": {"required": (), "optional": ("integrated",), "guidance": ()},
    "pns_generator_insertion": {"required": (), "optional": (), "guidance": ()},
    "pns_generator_removal": {"required": (), "optional": (), "guidance": ()},
    "pump_refill": {"required": ("reprogramming", "physician_skill"), "optional": (), "guidance": ()},
    "pump_analysis": {"required": ("reprogramming",), "optional": (), "guidance": ()},
    "vertebroplasty": {"required": ("levels",), "optional": ("guidance",), "guidance": ("fluoroscopy", "ct")},
    "vertebral_augmentation": {"required": ("levels",), "optional": ("guidance",),
                               "guidance": ("fluoroscopy", "ct")},
    "basivertebral_ablation": {"required": ("levels",), "optional": ("guidance",),
                               "guidance": ("fluoroscopy", "ct")},
    # onabotulinumtoxinA for chronic migraine (64615 + J0585); the discarded amount decides
    # JZ or a JW line where the payer wants them (kb/code/select.lp refuses it unknown there).
    "chemodenervation_migraine": {"required": ("drug_units",), "optional": ("wasted_units",), "guidance": ()},
}
# Kinds whose levels are vertebral bodies (T12, L1), not interspaces (kb/coding/select.lp).
BODY_KINDS = ("vertebroplasty", "vertebral_augmentation", "basivertebral_ablation")

_WHAT = {
    "levels": "the spinal levels (e.g. L4-L5, L5-S1)",
    "side": "the side (left, right or bilateral)",
    "guidance": "the image guidance (fluoroscopy, CT, ultrasound, or none)",
    "purpose": "the purpose (diagnostic or therapeutic)",
    "nerves": "the nerves injected",
    "muscles": "the muscles injected",
    "minutes": "the minutes spent",
    "separate_problem": "whether the visit addressed a problem beyond the decision to do the procedure",
    "leads": "the number of percutaneous leads (electrode arrays) placed",
    "approach": "the leads' approach (percutaneous leads, or a paddle placed by laminectomy)",
    "generator": "whether the pulse generator was implanted in the same session (with or without generator)",
    "integrated": "whether the array has an integrated neurostimulator (integrated neurostimulator, or "
                  "external stimulator)",
    "reprogramming": "whether the pump was reprogrammed (with or without reprogramming)",
    "physician_skill": "whether the refill needed physician skill (by the physician) or was done by clinical staff",
    "drug_units": "the units of onabotulinumtoxinA injected (e.g. 155 units)",
    "wasted_units": "the units of the single-dose vial discarded (0: none wasted)",
}


class _Strict(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, omit_defaults=True):
    """Base: unknown keys are errors; instances are immutable; defaults are not written."""


def canonical_body(text: str) -> Optional[str]:
    """``l1`` -> ``L1``; None when ``text`` is not one vertebral body (an interspace is not)."""
    level = parse_spinal_level(text)
    if level is None or level[0] != level[1]:
        return None
    return segment_name(level[0])


def canonical_level(text: str) -> Optional[str]:
    """``L4-5`` -> ``L4-L5``; None when ``text`` is not one adjacent pair of segments."""
    level = parse_level(text)
    if level is None:
        return None
    return f"{segment_name(level[0])}-{segment_name(level[1])}"


def nerve_key(name: str) -> str:
    """A nerve name as the vocabulary writes it: lower case, single spaces, no 'nerve'.

    A bare genicular branch (``superolateral``) gets ``genicular``.
    """
    key = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    for suffix in (" nerve branch", " nerve", " branch", " branches", " nerves"):
        key = key.removesuffix(suffix)
    if key in ("superolateral", "superomedial", "inferomedial", "inferolateral"):
        key += " genicular"
    return key


class Procedure(_Strict):
    """One procedure of the encounter. Absent fields are unknown, never false."""

    procedure: ProcedureKind
    levels: Optional[list[str]] = None
    side: Optional[Side] = None
    guidance: Optional[Guidance] = None
    purpose: Optional[Purpose] = None
    nerves: Optional[list[str]] = None
    muscles: Optional[list[str]] = None
    minutes: Optional[Annotated[int, Meta(ge=1, le=10000)]] = None
    separate_problem: Optional[bool] = None
    leads: Optional[Annotated[int, Meta(ge=1, le=4)]] = None
    approach: Optional[Approach] = None
    generator: Optional[bool] = None
    integrated: Optional[bool] = None
    reprogramming: Optional[bool] = None
    physician_skill: Optional[bool] = None
    drug_units: Optional[Annotated[int, Meta(ge=1, le=1000)]] = None
    wasted_units: Optional[Annotated[int, Meta(ge=0, le=1000)]] = None
    dx: Annotated[list[Annotated[int, Meta(ge=1, le=12)]], Meta(max_length=4)] = []

    def __post_init__(self) -> None:
        if self.levels is not None:
            seen: list[str] = []
            for text in self.levels:
                if self.procedure in BODY_KINDS:
                    level = canonical_body(str(text))
                    if level is None:
                        raise ValueError("levels: the vertebral bodies treated, e.g. T12, L1")
                else:
                    level = canonical_level(str(text))
                    if level is None:
                        raise ValueError("levels: spinal levels as adjacent segments, e.g. L4-L5, L4-5, "
                                         "L5-S1, T12-L1, C5-C6")
                if level not in seen:
                    seen.append(level)
            force_setattr(self, "levels", seen)
        if self.nerves is not None:
            names: list[str] = []
            for text in self.nerves:
                key = nerve_key(str(text))
                if key not in NERVES:
                    raise ValueError("nerves: known nerve names (" + ", ".join(NERVES) + ")")
                if key not in names:
                    names.append(key)
            force_setattr(self, "nerves", names)
        if self.muscles is not None:
            muscles: list[str] = []
            for text in self.muscles:
                key = " ".join(str(text).lower().split())
                if not key:
                    raise ValueError("muscles: muscle names such as left trapezius")
                if key not in muscles:
                    muscles.append(key)
            force_setattr(self, "muscles", sorted(muscles))

    def segments(self) -> list[tuple[int, int]]:
        """The levels as (upper, lower) segment numbers."""
        return [parse_spinal_level(level) for level in self.levels or []]  # type: ignore[misc]


class Encounter(_Strict):
    """What was done in one encounter, for one payer and place of service (docs/encounter-format.md)."""

    payer: str
    place_of_service: str
    date: dt.date
    procedures: Annotated[list[Procedure], Meta(min_length=1, max_length=20)]
    diagnoses: Annotated[list[str], Meta(max_length=12)] = []
    encounter_id: Optional[str] = None
    patient: Optional[Patient] = None
    prior_authorization: Optional[str] = None
    clinical: Optional[Clinical] = None
    history: list[HistoryEntry] = []

    def __post_init__(self) -> None:
        force_setattr(self, "place_of_service", place_of_service_code(self.place_of_service))
        force_setattr(self, "diagnoses", dotted_diagnoses(self.diagnoses))
        check_service_date("date", self.date)
        if not self.payer.strip():
            raise ValueError("payer: a non-empty value")


_TEXT_FIELDS = {"payer", "place_of_service", "prior_authorization", "code", "id", "encounter_id"}
_TEXT_LISTS = {"modifiers", "diagnoses", "levels"}


def _texts(value: Any) -> Any:
    return numbers_as_text(value, _TEXT_FIELDS, _TEXT_LISTS)


def parse_encounter(raw: Any) -> Encounter:
    """Validate a raw mapping (parsed JSON or YAML) into an Encounter; raises ValidationError."""
    return msgspec.convert(_texts(raw), Encounter, strict=False)


def device_phrases(proc: Procedure) -> list[str]:
    """The lead count, the stimulator facts and the pump-visit facts of ``proc`` as the text
    reader reads them back."""
    phrases = []
    if proc.leads is not None:
        phrases.append(f"{proc.leads} lead" + ("s" if proc.leads > 1 else ""))
    if proc.approach is not None:
        phrases.append(proc.approach)
    if proc.generator is not None:
        phrases.append("with generator" if proc.generator else "without generator")
    if proc.integrated is not None:
        phrases.append("integrated neurostimulator" if proc.integrated else "external stimulator")
    if proc.reprogramming is not None:
        phrases.append("with reprogramming" if proc.reprogramming else "without reprogramming")
    if proc.physician_skill is not None:
        phrases.append("physician skill" if proc.physician_skill else "clinical staff")
    return phrases


def procedure_problems(proc: Procedure) -> list[str]:
    """What is missing from, or does not apply to, one procedure (empty when it can be coded)."""
    spec = KIND_FIELDS[proc.procedure]
    allowed = set(spec["required"]) | set(spec["optional"])
    out = []
    missing = [name for name in spec["required"] if getattr(proc, name) in (None, [])]
    if missing:
        out.append(f"{proc.procedure} needs " + "; ".join(_WHAT[m] for m in missing))
    extra = [name for name in _ALL_FIELDS if name not in allowed and getattr(proc, name) is not None]
    if extra:
        out.append(f"{', '.join(extra)} do(es) not apply to {proc.procedure}")
    if proc.guidance is not None and "guidance" in allowed and proc.guidance not in spec["guidance"]:
        out.append(f"{proc.procedure} cannot be reported with guidance {proc.guidance}: its codes "
                   f"take {', '.join(spec['guidance'])}")
    if proc.nerves:
        out.extend(_nerve_problems(proc))
    if proc.procedure == "scs_implant" and proc.approach == "percutaneous" and proc.leads is None:
        out.append("scs_implant with percutaneous leads needs " + _WHAT["leads"])
    if proc.procedure == "scs_implant" and proc.approach == "paddle" and proc.leads is not None:
        out.append("a number of leads does not apply to a paddle (one paddle electrode by laminectomy, 63655)")
    return out


def _nerve_problems(proc: Procedure) -> list[str]:
    other = [n for n in proc.nerves or [] if n not in GENICULAR_BRANCHES]
    if proc.procedure in ("genicular_nerve_block", "genicular_rfa") and other:
        return [f"{proc.procedure} names non-genicular nerves ({', '.join(other)}): describe them as "
                "a peripheral_nerve_block"]
    genicular = [n for n in proc.nerves or [] if n in GENICULAR_BRANCHES]
    if proc.procedure == "peripheral_nerve_block" and genicular:
        return [f"genicular branches ({', '.join(genicular)}) are one procedure, genicular_nerve_block "
                "(64454): describe them as such"]
    return []


def encounter_problems(enc: Encounter) -> list[str]:
    """Every problem of the encounter's procedures, each prefixed with its position."""
    out = []
    for n, proc in enumerate(enc.procedures, start=1):
        for problem in procedure_problems(proc):
            out.append(f"procedures[{n}]: {problem}")
        for pointer in proc.dx:
            if pointer > len(enc.diagnoses):
                out.append(f"procedures[{n}].dx: pointer {pointer} is past the diagnosis list "
                           f"({len(enc.diagnoses)} diagnoses)")
    return out


def encounter_schema() -> dict[str, Any]:
    """The JSON Schema of an encounter (msgspec)."""
    return msgspec.json.schema(Encounter)


# --- docs/encounter-format.md ------------------------------------------------------------

_CODES_BY_KIND = {
    "transforaminal_esi": "64479 (+64480 per further level) cervical/thoracic, T12-L1 included; "
                          "64483 (+64484) lumbar/sacral",
    "interlaminar_esi": "62321 / 62323 with fluoroscopy or CT, 62320 / 62322 without imaging; "
                        "one unit per level",
    "caudal_esi": "62323 (62322 without imaging)",
    "facet_injection": "64490 (+64491 second, +64492 third and further: one unit) cervical/thoracic; "
                       "64493 (+64494, +64495) lumbar/sacral; 0213T-0218T under ultrasound",
    "facet_rfa": "64633 (+64634 per further joint) cervical/thoracic; 64635 (+64636) lumbar/sacral",
    "si_joint_injection": "27096",
    "si_joint_nerve_block": "64451",
    "si_joint_rfa": "64625",
    "si_joint_fusion": "27279 (with a transfixing device; imaging included); 27278 (intra-articular "
                       "implants without transfixation) is not chosen: code it by hand",
    "genicular_nerve_block": "64454 (with 52 when fewer than the three standard branches)",
    "genicular_rfa": "64624",
    "peripheral_nerve_block": "64400 trigeminal, 64405 greater occipital, 64418 suprascapular, "
                              "64425 ilioinguinal/iliohypogastric, 64445 sciatic, 64450 every other "
                              "nerve; one unit per nerve; +77002 fluoroscopy, 76942 ultrasound, 77012 CT",
    "trigger_point": "20552 (one or two muscles), 20553 (three or more); +77002 with fluoroscopy",
    "major_joint_injection": "20610 (+77002 fluoroscopy, 77012 CT); 20611 with ultrasound",
    "small_joint_injection": "20600 (+77002 fluoroscopy, 77012 CT); 20604 with ultrasound",
    "intermediate_joint_injection": "20605 (+77002 fluoroscopy, 77012 CT); 20606 with ultrasound",
    "stellate_ganglion_block": "64510; +77002 fluoroscopy, 76942 ultrasound, 77012 CT",
    "lumbar_sympathetic_block": "64520 (lumbar or thoracic sympathetic chain); +77002 fluoroscopy, "
                                "76942 ultrasound, 77012 CT",
    "celiac_plexus_block": "64530; +77002 fluoroscopy, 76942 ultrasound, 77012 CT",
    "hypogastric_plexus_block": "64517 (superior hypogastric plexus); +77002 fluoroscopy, 76942 "
                                "ultrasound, 77012 CT",
    "office_visit_new": "99202 (15 min), 99203 (30), 99204 (45), 99205 (60)",
    "office_visit_established": "99212 (10 min), 99213 (20), 99214 (30), 99215 (40)",
    "chronic_pain_management": "G3002 (30 minutes in the month) + G3003 per further 15 minutes",
    "scs_trial": "63650, one unit per percutaneous lead (electrode array)",
    "scs_implant": "63650 per percutaneous lead, or 63655 for a paddle; +63685 with the generator",
    "scs_lead_revision": "63663 percutaneous leads, 63664 paddle",
    "scs_lead_removal": "63661 percutaneous leads, 63662 paddle",
    "scs_generator_insertion": "63685 (insertion or replacement)",
    "scs_generator_removal": "63688 (revision or removal)",
    "pns_lead": "64555 per percutaneous lead, trial or permanent; from 2026-01-01 an array with an "
                "integrated neurostimulator is 64596 (+64597 per further array), another 64555, and "
                "integrated is then required; imaging not coded",
    "pns_lead_revision": "64585 (revision or removal of percutaneous peripheral nerve arrays); from "
                         "2026-01-01 64598 for arrays with an integrated neurostimulator, and integrated "
                         "is then required",
    "pns_generator_insertion": "64590 (insertion or replacement, with a pocket)",
    "pns_generator_removal": "64595 (revision or removal)",
    "pump_refill": "95990 (clinical staff) or 95991 (physician skill) without reprogramming; "
                   "62369 or 62370 with reprogramming",
    "pump_analysis": "62367 without reprogramming, 62368 with reprogramming (no refill)",
    "vertebroplasty": "22510 cervical/thoracic or 22511 lumbar/sacral first body, +22512 per further body",
    "vertebral_augmentation": "22513 thoracic or 22514 lumbar first body, +22515 per further body",
    "basivertebral_ablation": "64628 the first two lumbar or sacral bodies, +64629 per further body",
    "chemodenervation_migraine": "64615 (both sides, one unit) + J0585 (onabotulinumtoxinA, one unit per "
                                 "unit) in the office: with JZ, or a J0585-JW line for the discarded units",
}

_FORMAT_HEAD = """# Encounter format (`pain-asp code`)

Coders start from what was done, not from codes. `pain-asp code` takes an **encounter** (a
file, YAML or JSON) or **a line of free text** and returns the claim lines the payer takes
at that place of service: codes, modifiers in the payer's bilateral format, units, diagnosis
pointers. The lines are then checked by every rule, so the output also shows the findings.
This page is generated by `pain-asp docs` from `pain_asp/inputs/encounter.py`; the JSON Schema at
the end is the exact contract.

```sh
pain-asp code "bilateral L4-5 and L5-S1 transforaminal ESI under fluoroscopy" \\
    --payer medicare --pos 11 --date 2026-03-02 --dx M54.16
pain-asp code encounter.yaml                      # payer, place of service, date from the file
pain-asp code encounter.yaml --payer commercial_asc_rtlt --pos 24   # same encounter, other payer
pain-asp code "right L5-S1 TFESI, fluoroscopy" --payer medicare --pos 11 --format claim > claim.json
pain-asp check claim.json                          # the claim feeds check unchanged
```

`--format text` (default) shows the encounter as read, what the text reader recognised and
did not, the lines, notes and findings; `--format json` gives the same as one object
(`reading`, `encounter`, `lines`, `notes`, `claim`, `status`, `findings`); `--format claim`
prints only the claim (the format of docs/claim-format.md), ready for `pain-asp check`. Exit codes: 0 no `deny`
finding, 1 some `deny` finding, 2 input that cannot be coded (with what is missing).

## Encounter file

```yaml
encounter_id: ENC-17             # optional: becomes the claim id (default ENCOUNTER-1)
payer: medicare                  # required: a payer policy id (pain-asp payers list)
place_of_service: "22"           # required: CMS POS code
date: 2026-03-02                 # required: date of service
diagnoses: [M47.816, M54.16]     # ICD-10-CM; lines point to those that support them
patient: {id: P-001}             # optional (default id "unknown")
prior_authorization: PA-7781     # optional
clinical: {pain_duration_months: 6, conservative_care_weeks: 8}   # optional, as in a claim
history: []                      # optional: earlier services, as in a claim
procedures:
  - procedure: facet_injection   # one of the kinds below
    levels: [L4-L5, L5-S1]       # spinal levels (joints for facet procedures)
    side: bilateral              # left | right | bilateral
    guidance: fluoroscopy        # fluoroscopy | ct | ultrasound | none
    purpose: diagnostic          # diagnostic | therapeutic
  - procedure: office_visit_established
    minutes: 30
    separate_problem: true       # addressed more than the decision to do the procedure
  - procedure: peripheral_nerve_block
    nerves: [greater occipital]
    side: right
    dx: [1]                      # optional explicit diagnosis pointers (1-based)
```

An absent field is unknown, never false. A field the code depends on is required (the
encounter is refused with what is missing, never guessed); a field that does not apply to a
kind is an error; fields that only document (purpose where no KX applies, guidance for a code
that includes it) travel with the claim so that the documentation rules can verify it.

## Procedure kinds

| procedure | needs | may give | guidance its codes take | codes |
|---|---|---|---|---|
"""

_FORMAT_TAIL = """
## How the lines are chosen

The code-selection program is ASP in `kb/code/` and reads the same catalog
(`kb/catalog/codes.lp`), spinal anatomy (`kb/spine.lp`) and payer parameters as the rules.

- **Levels and regions**: each level belongs to the region of its upper segment (T12-L1 is
  cervical/thoracic, A58993). Per region, the first level is the primary code and each further
  level an add-on: 64480/64484/64634/64636 one unit per level; 64491/64494 the second level;
  64492/64495 the third and every further level in **one** unit. Levels in two regions give
  two primaries (and the check reports `esi-regions-per-session` where the payer allows one).
- **Sides**: one side is RT or LT. Both sides follow the payer's `bilateral_format` for the
  place of service: one line with 50 (`single_line_50`), a line each with RT and LT
  (`two_lines_rt_lt`), or a plain line plus a 50 line (`line_plus_50`). Codes whose bilateral
  indicator is 0 (62320-62323, 20552/20553) never take 50.
- **KX** on every line of a diagnostic procedure whose family is in the payer's `kx_families`
  (Medicare: transforaminal ESI and facet injections). Purpose not stated: no KX, and a note.
  KX also on every line of a family in `kx_attestation_families`, where it attests the
  coverage requirements of the billing article (Medicare: basivertebral nerve ablation, whose
  bodies and Modic changes the check then judges from the chart).
- **Imaging guidance** only where the procedure's code does not include it: 77002
  (fluoroscopy), 76942 (ultrasound) or 77012 (CT) for peripheral nerve blocks; 77002 for
  trigger points and major joints (20611 replaces 20610 under ultrasound). One guidance line
  per code for the encounter. Never 77003.
- **Genicular**: 64454 (block) or 64624 (radiofrequency ablation) for the genicular branches,
  with 52 when fewer than the superolateral, superomedial and inferomedial branches were treated.
- **Visits** by total time (CPT 2021/2024 times, unverified: no public source read). On the
  day of a 0- or 10-day global procedure, or of a pump refill or analysis or a neurostimulator
  analysis (global XXX, payment includes the evaluation: CGS quoting NCCI), a visit is billed
  with 25 only when it addressed a
  separate problem (`separate_problem: true`, which also documents `em_separate_problem`), is
  left out when it did not, and is refused when the encounter does not say. On the day of a
  90-day global (major) procedure a visit is billed with 25 when it addressed a separate
  problem and is refused otherwise: the visit that made the decision to operate takes 57
  (CMS IOM 100-04 ch. 12 §40.2.A), which the encounter format cannot state; write that line by hand.
- **Chronic pain management**: G3002 for 30 minutes in the month, G3003 per further full
  15 minutes; the minutes become `clinical.cpm_minutes`.
- **Diagnosis pointers**: those the procedure gives, else the diagnoses on the payer's
  coverage list for the code (`dx_coverage`), in order, at most four; else the first four
  (and the check says `dx-not-supporting`).
- **Vertebral bodies** (vertebroplasty, kyphoplasty, basivertebral nerve ablation): levels are
  the bodies treated (`T12`, `L1`). The first body is the primary code (22510/22511,
  22513/22514 by region; 64628 covers the first two bodies) and each further body one unit of
  the add-on (22512, 22515, 64629). Bodies in two regions are refused (the first-level code is
  billed once a session: the coder chooses it), as are bodies no code describes (a sacral
  kyphoplasty, a thoracic basivertebral ablation).
- **Stimulators**: a spinal cord stimulator trial or permanent implant with percutaneous leads
  is 63650 per lead; a paddle by laminectomy 63655; the generator placed in the same session
  adds 63685. A generator insertion or replacement is 63685 alone, its revision or removal
  63688; leads are revised (63663 percutaneous, 63664 paddle) or removed (63661, 63662) by
  their approach. Peripheral nerve leads are 64555 per percutaneous lead (trial or
  permanent) before 2026-01-01; from then on an array with an integrated neurostimulator is
  64596 (+64597 per further array) and another 64555, and a description that does not say
  which is refused. Their revision or removal is 64585 (from 2026-01-01 64598 for an array
  with an integrated neurostimulator). A peripheral generator is 64590 (insertion or
  replacement) or 64595.
- **Chemodenervation for chronic migraine** (`drug_units`, `wasted_units`): 64615 and, where
  the practitioner bills the drug (the office; in a facility the facility does), J0585 for the
  units of onabotulinumtoxinA injected. Where the payer lists the drug in
  `wastage_modifier_codes` (Medicare from 2023-07-01, CMS JW/JZ policy), the line carries JZ
  when nothing was discarded, and a second J0585 line with JW carries the units discarded;
  an encounter that does not say what was discarded is refused there (`wasted_units: 0` when
  none was). The drug lines are those the rules `chemodenervation-drug-missing` and
  `drug-wastage-modifier` expect (kb/policy/drugs.lp).
- **Imaging guidance at a hospital or ASC** (place of service 19, 21, 22, 23 or 24): the
  guidance line (77002, 77003, 77012, 76942) carries 26, the professional component; the
  facility bills the technical part. In the office it is the global service, without 26. These
  are the lines the rule `professional-component-missing` expects
  (kb/policy/professional_component.lp).
- **Validity**: a code not valid on the date of service (64454 before 2020, G3002 before
  2023) refuses the encounter.

The claim carries the encounter's documentation per line (guidance as `imaging`, side, the
levels of the line's region, purpose, the nerves coded on the line, muscles), its clinical
facts, prior authorization and history. Facts the encounter does not give stay unknown: the
check then asks for `review` (conservative care, pain duration), never denies on them.

## Free text

One description per procedure; several are separated by `;`. The reader reports every
phrase it recognised and every word it did not, and refuses to guess.

- Levels: `L4-5`, `L4-L5`, `L4/5`, `L5-S1`, `T12-L1`, `C5-6`. A single segment (`L4 and L5`,
  `C6`) is a nerve root, read only for transforaminal injections as the foramen it leaves by
  (`L5` is L5-S1, `T12` is T12-L1, `C6` is C5-C6, `C8` is C7-T1). A range over several levels
  (`L3-S1`) is an error asking for the levels.
- Sides: left, right, bilateral (`lt`, `rt`, `bilat`, `b/l`, `both sides`). Left and right
  together is an error (write bilateral, or one description per side).
- Procedures: transforaminal (`TFESI`, `TF`, `SNRB`, selective nerve root block),
  interlaminar (`ILESI`, `IL`), caudal, facet / medial branch (`MBB`), ablation (`RFA`, `RF`,
  radiofrequency, neurotomy, rhizotomy) of facet, genicular or SI joint targets, genicular
  (`GNB`, branches `SLGN`, `SMGN`, `IMGN`, `ILGN`, "all three"), SI joint (`SIJ`, sacroiliac;
  with lateral branch or nerve block: 64451), named nerves (`GON`, greater/lesser/third
  occipital, suprascapular, sciatic, ilioinguinal, lateral femoral cutaneous ...), trigger
  points (`TPI`, with the muscles named, sides per muscle), knee/shoulder/hip injections,
  office visits (new or established patient, minutes, "separate problem" or "procedure
  decision only"), chronic pain management (`CPM`, minutes), kyphoplasty (vertebral
  augmentation), vertebroplasty and basivertebral nerve ablation (`BVN`, Intracept) with the
  vertebral bodies named one by one (`T12 and L1`; an interspace or a range is an error),
  spinal cord stimulators (`SCS`: trial, permanent implant, percutaneous or paddle /
  laminectomy, generator / `IPG` / battery, with or without generator, insertion,
  replacement, revision, removal / explant), peripheral nerve stimulators (`PNS`;
  integrated neurostimulator or external stimulator), and botulinum toxin (`botox`,
  onabotulinumtoxinA, chemodenervation) for chronic migraine with the units injected (`155
  units`) and discarded (`45 units wasted`, `none wasted`, `no waste`).
  A stimulator description that leaves open the part (leads or generator), the leads'
  approach, their number, or whether the generator was placed is refused with the question;
  another toxin (Dysport, Xeomin, Myobloc) or another indication is refused.
- Guidance: fluoroscopy (`fluoro`, C-arm), CT, ultrasound (`US`), without imaging.
- Purpose: diagnostic, therapeutic. Diagnoses written with a dot (`M54.16`) are taken too.
- Errors name what is missing: no procedure; a toxin without its units; an epidural without its approach; an ablation
  without its target; "occipital" without greater/lesser/third; a facet injection without
  levels, side or guidance; two procedures in one description; two sides, guidances or
  purposes.

Not supported: S1 (and lower) foramina, interlaminar/transforaminal injections under
ultrasound, G0260, visits by medical decision making, prolonged services, and more than one
chronic pain management procedure per encounter.

## JSON Schema

```json
"""


def encounter_format_markdown() -> str:
    """docs/encounter-format.md: the format, how it is coded, the free text, the schema."""
    import json

    rows = []
    for kind in KINDS:
        spec = KIND_FIELDS[kind]
        rows.append(f"| `{kind}` | {', '.join(spec['required']) or '-'} | "
                    f"{', '.join(spec['optional']) or '-'} | {', '.join(spec['guidance']) or '-'} | "
                    f"{_CODES_BY_KIND[kind]} |")
    schema = json.dumps(encounter_schema(), indent=2, sort_keys=True)
    return _FORMAT_HEAD + "\n".join(rows) + "\n" + _FORMAT_TAIL + schema + "\n```\n"
