"""Read procedures from a line of free text (docs/encounter-format.md): what was recognised, what was not.

``bilateral L4-5 and L5-S1 transforaminal ESI under fluoroscopy`` becomes a
:class:`~pain_asp.inputs.encounter.Procedure` (transforaminal_esi, levels L4-L5 and L5-S1, side
bilateral, guidance fluoroscopy). Several procedures are separated by ``;``. The reader
reports every phrase it recognised and every word it did not, and it refuses to guess:
text that names no procedure, names two in one description, leaves out a field the code
depends on (no level for a facet injection, no approach for an epidural, no side for a
transforaminal injection) or contradicts itself (left and right, CT and ultrasound) is a
:class:`TextError` that says what is missing. Text never reaches clingo: the result is a
validated structured procedure.

Level notations: ``L4-5``, ``L4-L5``, ``L4/5``, ``L5-S1``, ``T12-L1``, ``C5-6``. A single
segment (``L4 and L5``, ``C6``) names a nerve root, which only a transforaminal injection
targets: it is read as the foramen the root leaves through (lumbar and thoracic roots below
their vertebra, L5 -> L5-S1, T12 -> T12-L1; cervical roots above it, C6 -> C5-C6, C8 ->
C7-T1). A range over several levels (``L3-S1``) is an error that asks for the levels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import PainAspError
from ..tokens import SEGMENTS, normalise_dx, parse_level, segment_name
from .encounter import (
    BODY_KINDS,
    GENICULAR_BRANCHES,
    GENICULAR_STANDARD,
    NERVES,
    Procedure,
    device_phrases,
    procedure_problems,
)

__all__ = ["Recognised", "TextReading", "TextError", "read_procedure_text", "procedure_text",
           "encounter_text", "MUSCLES"]


@dataclass(frozen=True)
class Recognised:
    """A piece of the text and what it was read as."""

    text: str
    meaning: str

    def as_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"text": self.text, "meaning": self.meaning}


@dataclass
class TextReading:
    """The procedures read from a text, with what was recognised and what was not."""

    text: str
    procedures: list[Procedure]
    diagnoses: list[str] = field(default_factory=list)
    recognised: list[Recognised] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"text": self.text, "procedures": [msgspec.to_builtins(p) for p in self.procedures],
                "diagnoses": self.diagnoses, "recognised": [r.as_dict() for r in self.recognised],
                "unrecognised": self.unrecognised}


class TextError(PainAspError):
    """A text that cannot be coded without guessing: what is missing or contradictory."""

    def __init__(self, text: str, problems: list[str], recognised: list[Recognised],
                 unrecognised: list[str]) -> None:
        self.text, self.problems = text, problems
        self.recognised, self.unrecognised = recognised, unrecognised
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = self.text if len(self.text) <= 120 else self.text[:117] + "..."
        seen = "; ".join(f"{r.text!r} = {r.meaning}" for r in self.recognised) or "nothing"
        unknown = ", ".join(repr(w) for w in self.unrecognised) or "none"
        return (f"cannot code {shown!r}: " + "; ".join(self.problems)
                + f" [recognised: {seen}] [not recognised: {unknown}]")


# --- vocabulary ----------------------------------------------------------------------------

# Muscles commonly injected for trigger points (names as written in the chart).
MUSCLES = (
    "trapezius", "upper trapezius", "middle trapezius", "lower trapezius", "levator scapulae",
    "rhomboid", "rhomboid major", "rhomboid minor", "supraspinatus", "infraspinatus",
    "teres major", "teres minor", "latissimus dorsi", "quadratus lumborum", "gluteus maximus",
    "gluteus medius", "gluteus minimus", "piriformis", "paraspinal", "cervical paraspinal",
    "thoracic paraspinal", "lumbar paraspinal", "erector spinae", "multifidus",
    "sternocleidomastoid", "splenius capitis", "splenius cervicis", "semispinalis capitis",
    "suboccipital", "scalene", "anterior scalene", "middle scalene", "pectoralis major",
    "pectoralis minor", "serratus anterior", "iliopsoas", "psoas", "tensor fasciae latae",
    "deltoid", "masseter", "temporalis", "gastrocnemius",
)

_GUIDANCE_TEXT = {"fluoroscopy": "fluoroscopy", "ct": "CT", "ultrasound": "ultrasound",
                  "none": "without imaging"}

_P: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}


def _stem(word: str) -> str:
    """A lower-case word without a plural ending, so that vocabulary and text compare equal."""
    if len(word) > 4 and word.endswith(("ches", "shes", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _add(category: str, value: str, *phrases: str) -> None:
    for phrase in phrases:
        _P[tuple(_stem(w) for w in phrase.split())] = ((category, value),)


_add("side", "left", "left", "lt", "left sided", "left side")
_add("side", "right", "right", "rt", "right sided", "right side")
_add("side", "bilateral", "bilateral", "bilat", "b/l", "bilaterally", "both sides", "bilateral sides")
_add("guidance", "fluoroscopy", "fluoroscopy", "fluoro", "fluoroscopic", "fluoroscopically", "c arm",
     "fluoroscopic guidance")
_add("guidance", "ct", "ct", "computed tomography", "ct guided", "ct guidance")
_add("guidance", "ultrasound", "ultrasound", "sonographic", "ultrasonographic", "us_upper",
     "ultrasound guided", "ultrasound guidance", "sonography")
_add("guidance", "none", "without imaging", "no imaging", "without guidance", "no guidance",
     "landmark", "landmark guided", "blind", "without image guidance")
_add("purpose", "diagnostic", "diagnostic", "diag")
_add("purpose", "therapeutic", "therapeutic", "ther")
_add("concept", "transforaminal", "transforaminal", "tfesi", "tf", "tfe", "tf esi", "snrb",
     "selective nerve root block", "nerve root block", "selective nerve root injection",
     "transforaminal epidural", "transforaminal epidural steroid injection")
_add("concept", "interlaminar", "interlaminar", "ilesi", "il", "il esi", "translaminar",
     "interlaminar epidural", "interlaminar epidural steroid injection")
_add("concept", "caudal", "caudal", "caudal epidural", "caudal esi", "caudal epidural steroid injection")
_add("concept", "epidural", "epidural", "esi", "esis", "lesi", "epidural steroid injection",
     "epidural steroid", "epidural injection")
_add("concept", "facet", "facet", "facet joint", "facet joint injection", "facet injection",
     "zygapophyseal joint", "z joint")
_add("concept", "medial_branch", "mbb", "medial branch", "medial branch block", "medial branch nerve",
     "medial branch nerve block")
_add("concept", "ablation", "rfa", "rf", "rftc", "radiofrequency", "radio frequency", "ablation",
     "neurotomy", "rhizotomy", "rf neurotomy", "rf ablation", "radiofrequency ablation",
     "radiofrequency neurotomy", "radiofrequency denervation", "denervation", "lesioning",
     "radiofrequency lesioning", "thermal radiofrequency")
_add("concept", "genicular", "genicular", "gnb", "genicular nerve", "genicular nerve block")
_add("concept", "si_joint", "si joint", "sij", "si", "sacroiliac", "sacroiliac joint", "sacro iliac")
_add("concept", "fusion", "fusion", "arthrodesis", "fused", "fuse")
_add("concept", "transfixing", "transfixing", "transfixation", "transfixing device",
     "transfixing implant", "transfixing implants", "transfixation device")
_add("concept", "intra_articular_implant", "intra articular implant", "intra articular implants",
     "intra-articular implant", "intra-articular implants", "allograft", "bone graft")
_add("concept", "lateral_branch", "lateral branch", "lateral branch block", "lateral branch nerve",
     "lateral branch nerve block", "lbb")
_add("concept", "nerve_block", "nerve block", "nb")
_add("concept", "block", "block")
_add("concept", "injection", "injection", "inj", "injected", "shot", "arthrocentesis", "aspiration")
_add("concept", "trigger_point", "trigger point", "tpi", "tpis", "trigger point injection")
_add("concept", "major_joint", "knee", "shoulder", "hip", "major joint", "knee joint",
     "shoulder joint", "hip joint", "intra articular knee", "glenohumeral joint")
_add("concept", "small_joint", "finger joint", "toe joint", "small joint", "interphalangeal joint",
     "metacarpophalangeal joint", "metatarsophalangeal joint", "finger", "toe")
_add("concept", "intermediate_joint", "wrist", "elbow", "ankle", "intermediate joint", "wrist joint",
     "elbow joint", "ankle joint", "acromioclavicular joint", "ac joint", "temporomandibular joint",
     "tmj", "olecranon bursa")
_add("concept", "stellate", "stellate", "stellate ganglion", "stellate ganglion block", "sgb",
     "cervical sympathetic")
_add("concept", "lumbar_sympathetic", "lumbar sympathetic", "lumbar sympathetic block", "lsb",
     "thoracic sympathetic", "paravertebral sympathetic", "sympathetic chain")
_add("concept", "celiac", "celiac", "celiac plexus", "celiac plexus block", "coeliac plexus")
_add("concept", "hypogastric", "hypogastric", "superior hypogastric", "superior hypogastric plexus",
     "hypogastric plexus", "hypogastric plexus block")
_add("concept", "sympathetic", "sympathetic", "sympathetic block")
_add("concept", "not_coded", "adhesiolysis", "lysis of adhesions", "racz", "epidural lysis",
     "lysis of epidural adhesions", "epidural adhesions", "pild", "percutaneous decompression",
     "lumbar decompression", "percutaneous laminotomy", "mild procedure")
_add("concept", "drug_test", "drug test", "drug tests", "drug testing", "drug screen", "drug screening",
     "urine drug test", "urine drug screen", "urine drug testing", "uds", "udt", "tox screen",
     "urine toxicology", "toxicology screen", "presumptive drug test", "definitive drug test")
_add("concept", "toxin", "botox", "botulinum", "botulinum toxin", "botulinum toxin a", "onabotulinumtoxina",
     "onabotulinum toxin a", "chemodenervation", "botox injections")
_add("concept", "other_toxin", "dysport", "abobotulinumtoxina", "xeomin", "incobotulinumtoxina", "myobloc",
     "rimabotulinumtoxinb", "daxxify", "daxibotulinumtoxina")
_add("concept", "migraine", "migraine", "migraines", "chronic migraine", "chronic migraines")
_add("concept", "occipital", "occipital", "onb", "occipital nerve", "occipital nerve block")
_add("concept", "visit", "office visit", "visit", "e/m", "em", "evaluation and management",
     "outpatient visit", "consult")
_add("concept", "new_patient", "new patient", "new")
_add("concept", "established_patient", "established patient", "established", "est patient",
     "follow up", "followup", "return patient")
_add("concept", "cpm", "chronic pain management", "cpm", "chronic pain care management")
_add("concept", "kyphoplasty", "kyphoplasty", "kyphoplasties", "balloon kyphoplasty", "vertebral augmentation",
     "vertebral body augmentation")
_add("concept", "vertebroplasty", "vertebroplasty", "vertebroplasties")
_add("concept", "basivertebral", "basivertebral", "basivertebral nerve", "bvn", "bvna", "intracept",
     "intraosseous basivertebral nerve", "basivertebral nerve ablation")
_add("concept", "separate_yes", "separate problem", "separately identifiable", "separate issue",
     "significant and separately identifiable", "separate complaint")
_add("concept", "separate_no", "procedure decision only", "decision for procedure",
     "decision to perform procedure", "no separate problem")
_add("concept", "scs", "scs", "spinal cord stimulator", "spinal cord stimulation", "spinal cord stim",
     "dorsal column stimulator", "dorsal column stimulation")
_add("concept", "trial", "trial", "trialing", "temporary", "trial lead", "trial leads")
_add("concept", "pns", "pns", "peripheral nerve stimulator", "peripheral nerve stimulation",
     "peripheral nerve stim", "peripheral neurostimulator")
_add("concept", "permanent", "permanent", "implant", "implantation", "implanted", "permanent implant")
_add("concept", "lead", "lead", "electrode", "electrode array", "array")
_add("concept", "percutaneous", "percutaneous", "perc", "percutaneous lead", "percutaneous leads")
_add("concept", "paddle", "paddle", "paddle lead", "paddle electrode", "plate electrode", "laminectomy",
     "laminotomy", "surgical lead")
_add("concept", "open", "open", "open implantation", "incision")
_add("concept", "generator_yes", "generator", "pulse generator", "ipg", "implantable pulse generator",
     "battery", "receiver", "with generator")
_add("concept", "generator_no", "without generator", "no generator", "leads only", "generator later")
_add("concept", "integrated_yes", "integrated", "integrated neurostimulator", "integrated stimulator",
     "with integrated neurostimulator")
_add("concept", "integrated_no", "external stimulator", "external generator", "external pulse generator",
     "not integrated", "without integrated neurostimulator", "no integrated neurostimulator")
_add("concept", "insert", "insertion", "insert", "inserted")
_add("concept", "replace", "replacement", "replace", "replaced", "exchange", "battery change")
_add("concept", "revise", "revision", "revise", "revised", "reposition", "repositioned", "repositioning")
_add("concept", "remove", "removal", "remove", "removed", "explant", "explanted", "explantation")
_add("concept", "pump", "pump", "intrathecal pump", "pain pump", "drug pump", "infusion pump",
     "implanted pump", "intrathecal drug pump", "itp", "baclofen pump")
_add("concept", "refill", "refill", "refilled", "refilling", "pump refill")
_add("concept", "analysis", "analysis", "interrogation", "interrogated", "electronic analysis")
_add("concept", "reprogram_yes", "reprogramming", "reprogrammed", "reprogram", "with reprogramming",
     "and reprogramming", "dose change", "rate change")
_add("concept", "reprogram_no", "without reprogramming", "no reprogramming", "not reprogrammed",
     "no dose change", "no rate change")
_add("concept", "physician_yes", "physician", "by physician", "by the physician", "md", "physician skill",
     "requiring physician skill")
_add("concept", "physician_no", "clinical staff", "by clinical staff", "nurse", "by nurse", "by the nurse",
     "rn")
_add("leads", "1", "one lead", "1 lead", "single lead", "one array", "1 array")
_add("leads", "2", "two leads", "2 leads", "dual lead", "dual leads", "two arrays", "2 arrays")
_add("leads", "3", "three leads", "3 leads", "three arrays", "3 arrays")
_add("leads", "4", "four leads", "4 leads", "four arrays", "4 arrays")
for _count, _words in (("1", ("one", "1", "single")), ("2", ("two", "2", "dual")), ("3", ("three", "3")),
                       ("4", ("four", "4"))):
    for _word in _words:    # "two percutaneous leads": the count and the approach in one phrase
        for _noun in ("lead", "leads", "array", "arrays", "electrode array", "electrode arrays"):
            _P[tuple(_stem(w) for w in f"{_word} percutaneous {_noun}".split())] = (
                ("leads", _count), ("concept", "percutaneous"))
_add("concept", "all_three", "all three", "all 3", "three branches", "3 branches",
     "three standard branches", "all three branches", "all 3 branches")
_add("nerve", "superolateral genicular", "superolateral", "slgn", "superior lateral",
     "superolateral genicular")
_add("nerve", "superomedial genicular", "superomedial", "smgn", "superior medial", "superomedial genicular")
_add("nerve", "inferomedial genicular", "inferomedial", "imgn", "inferior medial", "inferomedial genicular")
_add("nerve", "inferolateral genicular", "inferolateral", "ilgn", "inferior lateral",
     "inferolateral genicular")
_add("nerve", "greater occipital", "greater occipital", "gon", "gonb")
_add("nerve", "lesser occipital", "lesser occipital", "lon")
_add("nerve", "third occipital", "third occipital", "ton")
_add("nerve", "lateral femoral cutaneous", "lateral femoral cutaneous", "lfcn")
_add("nerve", "suprascapular", "suprascapular", "ssnb")
for _name in NERVES:
    if (_name,) not in _P and tuple(_name.split()) not in _P:
        _add("nerve", _name, _name)
for _muscle in MUSCLES:
    _add("muscle", _muscle, _muscle)
_add("muscle", "paraspinal", "paraspinals", "paraspinal muscles")
_add("muscle", "scalene", "scalenes")

# Words that carry no meaning of their own here.
_FILLER = {_stem(w) for w in """
under with using at of the a an and or to on in via for guided guidance performed procedure
nerve nerves joint joints level levels steroid steroids anesthetic local needle placement approach
side sided patient plus x was were is each one two three four single total times image imaging
contrast time spent face bilevel multilevel multiple muscle muscles point points by also then
including included injections blocks this that from done as per target targeted targeting lumbar
cervical thoracic sacral spine spinal region mg ml into branch vertebral body bodies vertebra vertebrae
cement
""".split()}

_ICD = re.compile(r"(?<![A-Za-z0-9.])([A-TV-Za-tv-z][0-9][0-9A-Za-z]\.[0-9A-Za-z]{1,4})(?![A-Za-z0-9])")
_MINUTES = re.compile(r"(?<![A-Za-z0-9])(\d{1,4})\s*-?\s*(minutes|minute|mins|min)(?![A-Za-z0-9])", re.I)
# Drug units: "45 units wasted", "none wasted" / "no waste" / "nothing discarded", "155 units".
_WASTED = re.compile(r"(?<![A-Za-z0-9])(\d{1,4})\s*(?:units?|u)\s+(?:wasted|discarded)(?![A-Za-z0-9])", re.I)
_NONE_WASTED = re.compile(r"(?<![A-Za-z0-9])(?:none|nothing|no)\s+(?:wasted|discarded|waste|wastage)(?![A-Za-z0-9])",
                          re.I)
_UNITS = re.compile(r"(?<![A-Za-z0-9])(\d{1,4})\s*(?:units?|u)(?![A-Za-z0-9])", re.I)
_PAIR = re.compile(r"(?<![A-Za-z0-9])([CTLS])\s?(\d{1,2})\s*[-\u2013/]\s*([CTLS]?)\s?(\d{1,2})"
                   r"(?![A-Za-z0-9])", re.I)
_SINGLE = re.compile(r"(?<![A-Za-z0-9])([CTLS])(\d{1,2})(?![A-Za-z0-9])", re.I)
_WORD = re.compile(r"[A-Za-z0-9]+(?:/[A-Za-z0-9]+)*")

_GROUP = {"transforaminal": "epidural", "interlaminar": "epidural", "caudal": "epidural",
          "epidural": "epidural", "facet": "facet", "medial_branch": "facet",
          "genicular": "genicular", "si_joint": "si_joint", "lateral_branch": "si_joint",
          "trigger_point": "trigger_point", "visit": "visit", "new_patient": "visit",
          "established_patient": "visit", "cpm": "cpm", "major_joint": "major_joint",
          "occipital": "peripheral", "scs": "scs", "pns": "pns", "pump": "pump", "refill": "pump",
          "kyphoplasty": "vertebral", "vertebroplasty": "vertebral", "basivertebral": "basivertebral",
          "small_joint": "small_joint", "intermediate_joint": "intermediate_joint", "stellate": "stellate",
          "lumbar_sympathetic": "lumbar_sympathetic", "celiac": "celiac", "hypogastric": "hypogastric",
          "not_coded": "not_coded", "drug_test": "drug_test", "toxin": "chemodenervation", "other_toxin": "chemodenervation"}
_GROUP_TEXT = {"epidural": "an epidural injection", "facet": "a facet procedure",
               "genicular": "a genicular procedure", "si_joint": "an SI joint procedure",
               "trigger_point": "trigger point injections", "visit": "an office visit",
               "cpm": "chronic pain management", "major_joint": "a major joint injection",
               "peripheral": "a peripheral nerve block", "scs": "a spinal cord stimulator procedure",
               "pns": "a peripheral nerve stimulator procedure",
               "pump": "an implanted pump visit", "vertebral": "a vertebral augmentation",
               "basivertebral": "a basivertebral nerve ablation", "small_joint": "a small joint injection",
               "intermediate_joint": "an intermediate joint injection",
               "stellate": "a stellate ganglion block", "lumbar_sympathetic": "a lumbar sympathetic block",
               "celiac": "a celiac plexus block", "hypogastric": "a superior hypogastric plexus block",
               "chemodenervation": "a botulinum toxin chemodenervation"}


def _root_foramen(region: str, number: int) -> tuple[str, str] | None:
    """The foramen a spinal nerve root leaves through, as (upper, lower) segment names."""
    if region == "C":
        if number == 8:
            return "C7", "T1"
        if 2 <= number <= 7:
            return f"C{number - 1}", f"C{number}"
        return None
    name = f"{region}{number}"
    if name not in SEGMENTS or region == "S":
        return None
    upper = SEGMENTS[name]
    if upper + 1 not in SEGMENTS.values():
        return None
    return name, segment_name(upper + 1)


@dataclass
class _Segment:
    """What one description (between semicolons) holds."""

    text: str
    items: list[tuple[str, str, str]] = field(default_factory=list)   # (category, value, text)
    levels: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)
    minutes: list[int] = field(default_factory=list)
    drug_units: list[int] = field(default_factory=list)
    wasted_units: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def values(self, category: str) -> list[str]:
        return list(dict.fromkeys(v for c, v, _ in self.items if c == category))


def read_procedure_text(text: str) -> TextReading:
    """Read every procedure of ``text`` (descriptions separated by ``;``); raises TextError."""
    if len(text) > 2000:
        raise TextError(text, ["the text is longer than 2000 characters: describe one encounter"], [], [])
    recognised: list[Recognised] = []
    unrecognised: list[str] = []
    diagnoses: list[str] = []
    procedures: list[Procedure] = []
    problems: list[str] = []
    parts = [p for p in re.split(r"[;\n]", text) if p.strip()]
    for n, part in enumerate(parts, start=1):
        seg = _scan(part, recognised, unrecognised, diagnoses)
        prefix = f"description {n}: " if len(parts) > 1 else ""
        try:
            procedure = _build(seg)
        except _Refuse as exc:
            problems.extend(prefix + p for p in exc.problems)
            continue
        procedures.append(procedure)
    if not parts:
        problems.append("the text is empty: describe the procedure (e.g. 'right L5-S1 transforaminal "
                        "ESI under fluoroscopy')")
    if problems:
        raise TextError(text, problems, recognised, unrecognised)
    return TextReading(text, procedures, diagnoses, recognised, unrecognised)


class _Refuse(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _scan(part: str, recognised: list[Recognised], unrecognised: list[str], diagnoses: list[str]) -> _Segment:
    seg = _Segment(part)
    taken = [False] * len(part)

    def claim(match: re.Match[str]) -> bool:
        if any(taken[match.start():match.end()]):
            return False
        for i in range(match.start(), match.end()):
            taken[i] = True
        return True

    for m in _ICD.finditer(part):
        code = normalise_dx(m.group(1))
        if code is not None and claim(m):
            if code not in diagnoses:
                diagnoses.append(code)
            recognised.append(Recognised(m.group(0), f"diagnosis {code}"))
    for m in _MINUTES.finditer(part):
        if claim(m):
            seg.minutes.append(int(m.group(1)))
            recognised.append(Recognised(m.group(0), f"minutes {int(m.group(1))}"))
    for pattern, found in ((_WASTED, seg.wasted_units), (_NONE_WASTED, seg.wasted_units),
                           (_UNITS, seg.drug_units)):
        for m in pattern.finditer(part):
            if claim(m):
                amount = int(m.group(1)) if m.groups() else 0
                found.append(amount)
                what = "units injected" if found is seg.drug_units else "units discarded"
                recognised.append(Recognised(m.group(0), f"{what} {amount}"))
    for m in _PAIR.finditer(part):
        if not claim(m):
            continue
        upper = f"{m.group(1).upper()}{int(m.group(2))}"
        lower = f"{(m.group(3) or m.group(1)).upper()}{int(m.group(4))}"
        level = parse_level(f"{upper}-{lower}")
        if level is not None:
            name = f"{segment_name(level[0])}-{segment_name(level[1])}"
            seg.levels.append(name)
            recognised.append(Recognised(m.group(0), f"level {name}"))
        elif upper in SEGMENTS and lower in SEGMENTS and SEGMENTS[lower] > SEGMENTS[upper] + 1:
            names = [f"{segment_name(s)}-{segment_name(s + 1)}"
                     for s in range(SEGMENTS[upper], SEGMENTS[lower])]
            seg.problems.append(f"{m.group(0)!r} spans several levels: list each level treated "
                                f"(e.g. {', '.join(names)})")
            recognised.append(Recognised(m.group(0), "a range of levels"))
        else:
            seg.problems.append(f"{m.group(0)!r} is not a spinal level: give two adjacent segments "
                                "such as L4-L5, L5-S1 or C5-C6")
            unrecognised.append(m.group(0))
    for m in _SINGLE.finditer(part):
        if claim(m):
            root = f"{m.group(1).upper()}{int(m.group(2))}"
            seg.roots.append(root)
            recognised.append(Recognised(m.group(0), f"segment or nerve root {root}"))
    rest = "".join(" " if taken[i] else ch for i, ch in enumerate(part))
    words = [(w.group(0), _normal(w.group(0))) for w in _WORD.finditer(rest)]
    i = 0
    while i < len(words):
        for size in range(min(6, len(words) - i), 0, -1):
            key = tuple(w for _, w in words[i:i + size])
            if key in _P:
                shown = " ".join(o for o, _ in words[i:i + size])
                for category, value in _P[key]:
                    seg.items.append((category, value, shown))
                    recognised.append(Recognised(shown, f"{category} {value}"))
                i += size
                break
        else:
            original, word = words[i]
            if word not in _FILLER:
                unrecognised.append(original)
            i += 1
    return seg


def _normal(word: str) -> str:
    return "us_upper" if word == "US" else _stem(word.lower())


def _one(seg: _Segment, category: str, what: str) -> str | None:
    values = seg.values(category)
    if len(values) > 1:
        if category == "side" and set(values) == {"left", "right"}:
            seg.problems.append("the text names both left and right: write 'bilateral' if both sides "
                                "were done at the same levels, or describe each side separately")
        else:
            seg.problems.append(f"the text gives more than one {what} ({', '.join(values)})")
        return None
    return values[0] if values else None


def _kind(seg: _Segment) -> str | None:
    concepts = set(seg.values("concept"))
    nerves = seg.values("nerve")
    genicular_nerves = [n for n in nerves if n in GENICULAR_BRANCHES]
    groups = {_GROUP[c] for c in concepts if c in _GROUP}
    if genicular_nerves or "all_three" in concepts:
        groups.add("genicular")
    if [n for n in nerves if n not in GENICULAR_BRANCHES]:
        groups.add("peripheral")
    if "genicular" in groups:
        groups.discard("major_joint")          # "knee": where the genicular nerves are
    if "peripheral" in groups and "occipital" in concepts and len(nerves) > 0:
        concepts.discard("occipital")
    if "not_coded" in groups:       # "epidural adhesiolysis" names it, not an epidural injection
        seg.problems.append("code mode does not code epidural adhesiolysis or percutaneous lumbar "
                            "decompression: they depend on the days of the series or the clinical "
                            "study; write the claim lines (62263/62264, 0275T)")
        return None
    if "drug_test" in groups:       # a laboratory service: its code is not in the description
        seg.problems.append("code mode does not code drug testing: the presumptive code (80305-80307) "
                            "follows how the test was read and whether the device is CLIA-waived "
                            "(modifier QW), the definitive code (G0480-G0483, G0659) the laboratory's "
                            "method and the number of drug classes it reported for the day; write the "
                            "claim line from the laboratory's report")
        return None
    if len(groups) > 1:
        shown = " and ".join(sorted(_GROUP_TEXT[g] for g in groups))
        seg.problems.append(f"the text describes more than one procedure ({shown}): describe one "
                            "procedure per description, separated by ';'")
        return None
    group = next(iter(groups), None)
    ablation = "ablation" in concepts
    if ablation:
        targets = {"facet": "facet_rfa", "genicular": "genicular_rfa", "si_joint": "si_joint_rfa",
                   "basivertebral": "basivertebral_ablation"}
        target = targets.get(group or "")
        if target is None:
            seg.problems.append("radiofrequency ablation of what: facet joints (medial branches), "
                                "genicular nerves, or the SI joint (lateral branches)?"
                                if group is None else
                                f"radiofrequency ablation does not apply to {_GROUP_TEXT[group]}")
        return target
    if group == "epidural":
        approaches = [c for c in ("transforaminal", "interlaminar", "caudal") if c in concepts]
        if len(approaches) > 1:
            seg.problems.append(f"the text names more than one epidural approach ({', '.join(approaches)})")
            return None
        if not approaches:
            seg.problems.append("which epidural approach: transforaminal (TFESI), interlaminar (ILESI) "
                                "or caudal?")
            return None
        return {"transforaminal": "transforaminal_esi", "interlaminar": "interlaminar_esi",
                "caudal": "caudal_esi"}[approaches[0]]
    if group == "facet":
        return "facet_injection"
    if group == "genicular":
        return "genicular_nerve_block"
    if group == "si_joint" and "fusion" in concepts:
        devices = concepts & {"transfixing", "intra_articular_implant"}
        if devices == {"transfixing"}:
            return "si_joint_fusion"
        seg.problems.append("SI joint fusion with which device: a transfixing device (27279), or "
                            "intra-articular implants without transfixation (27278, coded by hand)?"
                            if not devices else
                            "code mode codes an SI joint fusion only with a transfixing device (27279): "
                            "write the claim line for intra-articular implants (27278) by hand")
        return None
    if group == "si_joint":
        nerve_block = concepts & {"lateral_branch", "nerve_block"}
        return "si_joint_nerve_block" if nerve_block else "si_joint_injection"
    if group == "trigger_point":
        return "trigger_point"
    if group == "basivertebral":
        return "basivertebral_ablation"
    if group == "vertebral":
        if {"kyphoplasty", "vertebroplasty"} <= concepts:
            seg.problems.append("the text names both kyphoplasty and vertebroplasty: describe each "
                                "procedure separately")
            return None
        return "vertebral_augmentation" if "kyphoplasty" in concepts else "vertebroplasty"
    if group == "cpm":
        return "chronic_pain_management"
    if group == "chemodenervation":
        if "other_toxin" in concepts:
            seg.problems.append("code mode codes onabotulinumtoxinA only (J0585, the toxin labelled for "
                                "chronic migraine): write the claim lines for another toxin by hand")
            return None
        if "migraine" not in concepts:
            seg.problems.append("code mode codes botulinum toxin chemodenervation for chronic migraine only "
                                "(64615): write the claim lines for another indication by hand")
            return None
        return "chemodenervation_migraine"
    if group == "visit":
        status = [c for c in ("new_patient", "established_patient") if c in concepts]
        if len(status) != 1:
            seg.problems.append("an office visit for a new or an established patient?" if not status
                                else "the visit is said to be for both a new and an established patient")
            return None
        return "office_visit_new" if status[0] == "new_patient" else "office_visit_established"
    simple = {"major_joint": "major_joint_injection", "small_joint": "small_joint_injection",
              "intermediate_joint": "intermediate_joint_injection",
              "stellate": "stellate_ganglion_block", "lumbar_sympathetic": "lumbar_sympathetic_block",
              "celiac": "celiac_plexus_block", "hypogastric": "hypogastric_plexus_block"}
    if group in simple:
        return simple[group]
    if group in ("scs", "pns"):
        return _stimulator_kind(seg, group, concepts)
    if group == "pump":
        if "trial" in concepts:
            seg.problems.append("an intrathecal pump trial is an epidural or intrathecal injection or "
                                "catheter infusion: describe that procedure instead")
            return None
        if "refill" in concepts:
            return "pump_refill"
        if concepts & {"analysis", "reprogram_yes", "reprogram_no"}:
            return "pump_analysis"
        seg.problems.append("which pump service: a refill (with or without reprogramming), or an "
                            "analysis (interrogation) without refill?")
        return None
    if group == "peripheral":
        if "occipital" in concepts:
            seg.problems.append("which occipital nerve: greater, lesser or third occipital?")
            return None
        return "peripheral_nerve_block"
    if "sympathetic" in concepts:
        seg.problems.append("which sympathetic block: stellate ganglion, lumbar (or thoracic) "
                            "sympathetic chain, celiac plexus or superior hypogastric plexus?")
        return None
    if concepts & {"nerve_block", "block"}:
        seg.problems.append("a block of which nerve (e.g. greater occipital, suprascapular, genicular, "
                            "medial branch, SI joint lateral branch)?")
        return None
    seg.problems.append("no procedure recognised: name one (e.g. transforaminal ESI, interlaminar ESI, "
                        "caudal ESI, facet injection or MBB, RFA, SI joint injection, genicular block, "
                        "occipital nerve block, trigger point injection, knee, wrist or finger joint "
                        "injection, stellate ganglion or lumbar sympathetic block, office visit, "
                        "chronic pain management, botulinum toxin for chronic migraine)")
    return None


def _stimulator_kind(seg: _Segment, group: str, concepts: set[str]) -> str | None:
    """The kind of a spinal cord (scs) or peripheral nerve (pns) stimulator procedure, or None
    with the problem: what the text leaves open is asked, never guessed."""
    actions = concepts & {"revise", "replace", "remove"}
    leads = bool(concepts & {"lead", "percutaneous", "paddle"} or seg.values("leads"))
    generator = "generator_yes" in concepts
    if (actions or "insert" in concepts) and generator and leads:
        seg.problems.append("the text names the leads and the generator: describe the lead procedure and "
                            "the generator procedure separately, separated by ';'")
        return None
    if group == "pns" and not generator:
        if "open" in concepts:
            seg.problems.append("code mode codes percutaneous peripheral nerve leads only: write the line "
                                "for an open implantation (64575) by hand")
            return None
        if "replace" in actions:
            seg.problems.append("a replacement of peripheral nerve leads: from 2026 an array with an "
                                "integrated neurostimulator is replaced with 64596, otherwise the old array's "
                                "removal (64585) and the new placement (64555) are separate: describe each")
            return None
        return "pns_lead_revision" if actions else "pns_lead"
    if "remove" in actions and actions & {"revise", "replace"}:
        seg.problems.append("the text names a removal and a revision or replacement: describe each "
                            "procedure separately, separated by ';'")
        return None
    if group == "pns":
        return "pns_generator_insertion" if not actions or "replace" in actions else "pns_generator_removal"
    if actions:
        if generator:
            return "scs_generator_insertion" if "replace" in actions else "scs_generator_removal"
        if leads or "trial" in concepts:
            return "scs_lead_removal" if "remove" in actions else "scs_lead_revision"
        seg.problems.append("a revision, replacement or removal of which part: the leads (percutaneous or "
                            "paddle) or the pulse generator?")
        return None
    if "trial" in concepts:
        if concepts & {"permanent", "paddle", "generator_yes", "generator_no"}:
            seg.problems.append("the text names a trial and a permanent implant: a trial places "
                                "percutaneous leads only (63650); describe each procedure separately")
            return None
        return "scs_trial"
    if generator and not leads:
        if "permanent" in concepts and "insert" not in concepts:
            seg.problems.append("a permanent implant of the generator alone (63685), or of the leads and "
                                "the generator: name the leads (percutaneous with their number, or a "
                                "paddle), or write 'generator insertion'")
            return None
        return "scs_generator_insertion"
    if leads or "permanent" in concepts:
        return "scs_implant"
    seg.problems.append("which spinal cord stimulator procedure: a trial (percutaneous leads), a "
                        "permanent implant (percutaneous leads with their number, or a paddle; with or "
                        "without generator), a generator insertion or replacement, or a lead or "
                        "generator revision or removal?")
    return None


def _muscles(seg: _Segment) -> list[str]:
    out: list[str] = []
    current: str | None = None
    unsided: list[str] = []
    trailing: str | None = None
    for category, value, _ in seg.items:
        if category == "side":
            current, trailing = value, value
        elif category == "muscle":
            trailing = None
            if current is None:
                unsided.append(value)
            else:
                out.extend(_sided(value, current))
    if trailing is not None and unsided and len(seg.values("side")) == 1:
        out = [m for name in unsided for m in _sided(name, trailing)] + out
    else:
        out = unsided + out
    return out


def _sided(name: str, side: str) -> list[str]:
    if side == "bilateral":
        return [f"left {name}", f"right {name}"]
    return [f"{side} {name}"]


def _build(seg: _Segment) -> Procedure:
    kind = _kind(seg)
    if kind is None or seg.problems:
        raise _Refuse(seg.problems)
    fields: dict[str, Any] = {"procedure": kind}
    if kind != "trigger_point":
        fields["side"] = _one(seg, "side", "side")
    fields["guidance"] = _one(seg, "guidance", "guidance")
    fields["purpose"] = _one(seg, "purpose", "purpose")
    levels = list(seg.levels)
    if kind in BODY_KINDS:
        if levels:
            seg.problems.append(f"{', '.join(levels)}: name each vertebral body treated (e.g. T12, L1), "
                                "not an interspace")
        levels = list(seg.roots)
    elif seg.roots:
        if kind == "transforaminal_esi":
            for root in seg.roots:
                foramen = _root_foramen(root[0], int(root[1:]))
                if foramen is None:
                    seg.problems.append(f"{root}: no foramen in the level vocabulary (C2-C8, T1-T12, "
                                        "L1-L5 roots)")
                else:
                    levels.append(f"{foramen[0]}-{foramen[1]}")
        else:
            seg.problems.append(f"{', '.join(seg.roots)} names a segment, not a level: give the "
                                "interspace or joint (e.g. L4-L5, L5-S1)")
    if levels:
        fields["levels"] = list(dict.fromkeys(levels))
    nerves = seg.values("nerve")
    if "all_three" in seg.values("concept"):
        nerves = list(dict.fromkeys(nerves + list(GENICULAR_STANDARD)))
    if nerves:
        fields["nerves"] = nerves
    if kind == "trigger_point":
        muscles = _muscles(seg)
        if muscles:
            fields["muscles"] = muscles
    elif seg.values("muscle"):
        seg.problems.append(f"muscles do not apply to {kind}")
    if len(set(seg.minutes)) > 1:
        shown = ", ".join(map(str, seg.minutes))
        seg.problems.append(f"the text gives more than one time ({shown} minutes)")
    elif seg.minutes:
        fields["minutes"] = seg.minutes[0]
    concepts = seg.values("concept")
    if "separate_yes" in concepts and "separate_no" in concepts:
        seg.problems.append("the visit is said both to address a separate problem and not to")
    elif "separate_yes" in concepts or "separate_no" in concepts:
        fields["separate_problem"] = "separate_yes" in concepts
    _pump_and_leads(seg, kind, fields)
    _drug_units(seg, kind, fields)
    if seg.problems:
        raise _Refuse(seg.problems)
    try:
        procedure = msgspec.convert({k: v for k, v in fields.items() if v is not None}, Procedure)
    except msgspec.ValidationError as exc:
        raise _Refuse([str(exc)]) from None
    problems = procedure_problems(procedure)
    if problems:
        raise _Refuse(problems)
    return procedure


def _yes_no(seg: _Segment, yes: str, no: str, what: str) -> bool | None:
    concepts = seg.values("concept")
    if yes in concepts and no in concepts:
        seg.problems.append(f"the text says both with and without {what}")
        return None
    if yes in concepts or no in concepts:
        return yes in concepts
    return None


def _pump_and_leads(seg: _Segment, kind: str, fields: dict[str, Any]) -> None:
    """The lead count, approach and generator of a stimulator procedure, and what a pump visit
    did (reprogramming, who refilled)."""
    leads = _one(seg, "leads", "number of leads")
    reprogramming = _yes_no(seg, "reprogram_yes", "reprogram_no", "reprogramming")
    physician = _yes_no(seg, "physician_yes", "physician_no", "physician skill")
    if kind in ("scs_trial", "scs_implant", "pns_lead"):
        if leads is not None:
            fields["leads"] = int(leads)
    elif leads is not None:
        seg.problems.append(f"a number of leads does not apply to {kind}")
    if kind in ("scs_implant", "scs_lead_revision", "scs_lead_removal"):
        approaches = [a for a in ("percutaneous", "paddle") if a in seg.values("concept")]
        if len(approaches) > 1:
            seg.problems.append("the text names percutaneous leads and a paddle: describe each separately")
        elif approaches:
            fields["approach"] = approaches[0]
        elif "trial" in seg.values("concept"):
            fields["approach"] = "percutaneous"      # trial leads are percutaneous (63650)
    if kind == "scs_implant":
        fields["generator"] = _yes_no(seg, "generator_yes", "generator_no", "generator")
    integrated = _yes_no(seg, "integrated_yes", "integrated_no", "an integrated neurostimulator")
    if kind in ("pns_lead", "pns_lead_revision"):
        fields["integrated"] = integrated
    elif integrated is not None:
        seg.problems.append(f"an integrated neurostimulator does not apply to {kind}")
    if kind in ("pump_refill", "pump_analysis"):
        fields["reprogramming"] = reprogramming
    if kind == "pump_refill":
        fields["physician_skill"] = physician


def _drug_units(seg: _Segment, kind: str, fields: dict[str, Any]) -> None:
    """The units a chemodenervation injected and discarded."""
    for found, what, name in ((seg.drug_units, "dose", "drug_units"),
                              (seg.wasted_units, "discarded amount", "wasted_units")):
        if len(set(found)) > 1:
            seg.problems.append(f"the text gives more than one {what} ({', '.join(map(str, found))} units)")
        elif found and kind != "chemodenervation_migraine":
            seg.problems.append(f"units of a drug do not apply to {kind}")
        elif found:
            fields[name] = found[0]


# --- canonical text ------------------------------------------------------------------------

_KIND_TEXT = {
    "transforaminal_esi": "transforaminal epidural steroid injection",
    "interlaminar_esi": "interlaminar epidural steroid injection",
    "caudal_esi": "caudal epidural steroid injection",
    "facet_injection": "facet joint injection",
    "facet_rfa": "facet radiofrequency ablation",
    "si_joint_injection": "sacroiliac joint injection",
    "si_joint_nerve_block": "sacroiliac joint lateral branch nerve block",
    "si_joint_rfa": "sacroiliac joint radiofrequency ablation",
    "si_joint_fusion": "sacroiliac joint fusion with a transfixing device",
    "genicular_nerve_block": "genicular nerve block",
    "genicular_rfa": "genicular radiofrequency ablation",
    "peripheral_nerve_block": "nerve block",
    "trigger_point": "trigger point injections",
    "major_joint_injection": "major joint injection",
    "small_joint_injection": "small joint injection",
    "intermediate_joint_injection": "intermediate joint injection",
    "stellate_ganglion_block": "stellate ganglion block",
    "lumbar_sympathetic_block": "lumbar sympathetic block",
    "celiac_plexus_block": "celiac plexus block",
    "hypogastric_plexus_block": "superior hypogastric plexus block",
    "office_visit_new": "new patient office visit",
    "office_visit_established": "established patient office visit",
    "chronic_pain_management": "chronic pain management",
    "scs_trial": "spinal cord stimulator trial",
    "scs_implant": "spinal cord stimulator permanent implant",
    "scs_lead_revision": "spinal cord stimulator lead revision",
    "scs_lead_removal": "spinal cord stimulator lead removal",
    "scs_generator_insertion": "spinal cord stimulator generator insertion",
    "scs_generator_removal": "spinal cord stimulator generator removal",
    "pns_lead": "peripheral nerve stimulator lead",
    "pns_lead_revision": "peripheral nerve stimulator lead revision",
    "pns_generator_insertion": "peripheral nerve stimulator generator insertion",
    "pns_generator_removal": "peripheral nerve stimulator generator removal",
    "pump_refill": "intrathecal pump refill",
    "pump_analysis": "intrathecal pump analysis",
    "vertebroplasty": "vertebroplasty",
    "vertebral_augmentation": "kyphoplasty",
    "basivertebral_ablation": "basivertebral nerve ablation",
    "chemodenervation_migraine": "botulinum toxin chemodenervation for chronic migraine",
}


def procedure_text(proc: Procedure) -> str:
    """The canonical description of ``proc``: reading it back gives ``proc`` (without ``dx``)."""
    head = []
    if proc.side is not None:
        head.append(proc.side)
    if proc.levels:
        head.append(", ".join(proc.levels))
    head.append(_KIND_TEXT[proc.procedure])
    text = " ".join(head)
    if proc.nerves:
        text += ": " + ", ".join(proc.nerves)
    if proc.muscles:
        unsided = [m for m in proc.muscles if not m.startswith(("left ", "right "))]
        sided = [m for m in proc.muscles if m.startswith(("left ", "right "))]
        text += ": " + ", ".join(unsided + sided)
    extras = []
    if proc.guidance is not None:
        extras.append(_GUIDANCE_TEXT[proc.guidance])
    if proc.purpose is not None:
        extras.append(proc.purpose)
    if proc.minutes is not None:
        extras.append(f"{proc.minutes} minutes")
    if proc.separate_problem is not None:
        extras.append("separate problem" if proc.separate_problem else "procedure decision only")
    extras.extend(device_phrases(proc))
    if proc.drug_units is not None:
        extras.append(f"{proc.drug_units} units")
    if proc.wasted_units is not None:
        extras.append(f"{proc.wasted_units} units wasted" if proc.wasted_units else "none wasted")
    return text + ", " + ", ".join(extras) if extras else text


def encounter_text(procedures: list[Procedure]) -> str:
    """The canonical description of several procedures, separated by ``;``."""
    return "; ".join(procedure_text(p) for p in procedures)
