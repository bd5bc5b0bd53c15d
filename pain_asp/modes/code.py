"""From an encounter to payer-correct claim lines, checked by the same rules (docs/encounter-format.md).

The flow is one direction: a validated :class:`~pain_asp.inputs.encounter.Encounter` becomes
facts (validated tokens only: kinds, sides, modalities, nerve tokens, segment numbers,
ICD-10-CM codes that matched the strict pattern), clingo solves the code-selection program
``kb/code/`` (the catalog, the spinal anatomy and the payer's parameters in force on the
date: bilateral format per place of service, KX families, coverage lists), the lines it
chooses become a claim in the input format of docs/claim-format.md (with the documentation the encounter
gives, so that the documentation rules can pass), and :class:`~pain_asp.engine.Checker`
checks that claim with every rule. A procedure that cannot be coded without guessing is a
:class:`CodingError` that says what is missing.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field
from typing import Any

from ..errors import PainAspError, describe
from ..facts import day_number
from ..findings import Result
from ..inputs.encounter import KINDS, NERVES, Encounter, encounter_problems
from ..models import Claim, ValidationError, as_dict, parse_claim
from ..program import program_text
from ..resources import kb_dir
from ..tokens import segment_name

__all__ = ["Coder", "CodeResult", "CodingError", "MODIFIER_ORDER", "read_description", "run_code"]

# Pricing modifiers first, then informational ones (CMS claim convention).
MODIFIER_ORDER = ("25", "26", "50", "52", "RT", "LT", "KX", "JW", "JZ")
_SHARED = 1000          # procedure number of shared guidance lines (kb/code/show.lp)


class CodingError(PainAspError):
    """An encounter that cannot be coded: every reason, each naming its procedure."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "cannot code the encounter: " + "; ".join(self.problems)


@dataclass
class CodeResult:
    """The coded claim, the notes on how it was coded, and the findings of checking it."""

    encounter: Encounter
    claim: Claim
    result: Result
    notes: list[str] = field(default_factory=list)
    line_procedures: list[int | None] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The claim's status after checking: worst severity, or ``clean``."""
        return self.result.status

    def claim_dict(self) -> dict[str, Any]:
        """The claim in the input format of docs/claim-format.md, without empty fields (feeds ``check``)."""
        return _prune(as_dict(self.claim))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: encounter, lines, notes, claim, status and findings."""
        return {
            "encounter": _prune(as_dict(self.encounter)),
            "lines": [{"line": n, "code": line.code, "modifiers": list(line.modifiers),
                       "units": line.units, "dx": list(line.dx),
                       "procedure": self.line_procedures[n - 1]}
                      for n, line in enumerate(self.claim.lines, start=1)],
            "notes": self.notes,
            "claim": self.claim_dict(),
            "status": self.status,
            "findings": [f.as_dict() for f in self.result.findings],
        }


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


class Coder:
    """Codes encounters; one instance serves many (the checker and payers load once)."""

    def __init__(self, payer_dirs: list[str] | None = None, ncci_dir: str | None = None) -> None:
        from ..engine import Checker, CheckOptions

        self.checker = Checker(CheckOptions(payer_dirs=list(payer_dirs or []), ncci_dir=ncci_dir))
        self.program = kb_dir()
        self._payer_facts: dict[str, str] = {}

    def known_payers(self) -> list[str]:
        """Ids of the payer policies available."""
        return self.checker.known_payers()

    def code(self, encounter: Encounter) -> CodeResult:
        """Code ``encounter`` and check the claim; raises CodingError when it cannot be coded."""
        return self.code_many([encounter])[0]

    def code_many(self, encounters: list[Encounter]) -> list[CodeResult]:
        """Code several encounters, then check their claims in one solve (in order).

        Raises CodingError for the first encounter that cannot be coded.
        """
        from ..inputs.records import Record

        coded = [self._lines(encounter) for encounter in encounters]
        records = [Record("<encounter>", n, claim=claim, claim_id=claim.claim_id)
                   for n, (claim, _, _) in enumerate(coded, start=1)]
        results = list(self.checker.check(records))
        return [CodeResult(encounter, claim, result, notes, owners)
                for encounter, (claim, notes, owners), result in zip(encounters, coded, results)]

    def _lines(self, encounter: Encounter) -> tuple[Claim, list[str], list[int | None]]:
        problems = encounter_problems(encounter)
        payers = self.known_payers()
        if encounter.payer not in payers:
            close = difflib.get_close_matches(encounter.payer, payers, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.insert(0, f"payer ({describe(encounter.payer)}) is not a payer policy id "
                               f"({', '.join(payers)}){hint}")
        if sum(p.procedure == "chronic_pain_management" for p in encounter.procedures) > 1:
            problems.append("chronic pain management is billed once per month: give its minutes in "
                            "one procedure")
        if problems:
            raise CodingError(problems)
        return self._claim(encounter, self._solve(encounter))

    # -- facts and solving ------------------------------------------------------------------

    def facts(self, enc: Encounter) -> str:
        """The facts of ``enc`` for kb/code/ (plus its payer's parameters)."""
        ymd = enc.date.year * 10000 + enc.date.month * 100 + enc.date.day
        out = [f"enc_date({day_number(enc.date)}, {ymd}).",
               f'enc_payer("{enc.payer}").', f"enc_pos({int(enc.place_of_service)})."]
        for i, dx in enumerate(enc.diagnoses, start=1):
            out.append(f'enc_dx({i}, "{dx}").')
        for p, proc in enumerate(enc.procedures, start=1):
            out.append(f"enc_proc({p}, {proc.procedure}).")
            for upper, lower in proc.segments():
                out.append(f"enc_level({p}, {upper}, {lower}).")
            for name in ("side", "guidance", "purpose"):
                value = getattr(proc, name)
                if value is not None:
                    out.append(f"enc_{name}({p}, {value}).")
            for i, nerve in enumerate(proc.nerves or [], start=1):
                out.append(f"enc_nerve({p}, {i}, {NERVES[nerve]}).")
            if proc.muscles:
                out.append(f"enc_muscles({p}, {len(proc.muscles)}).")
            if proc.minutes is not None:
                out.append(f"enc_minutes({p}, {int(proc.minutes)}).")
            if proc.separate_problem is not None:
                out.append(f"enc_separate({p}, {'yes' if proc.separate_problem else 'no'}).")
            if proc.leads is not None:
                out.append(f"enc_leads({p}, {int(proc.leads)}).")
            if proc.approach is not None:
                out.append(f"enc_approach({p}, {proc.approach}).")
            for name in ("generator", "integrated"):
                value = getattr(proc, name)
                if value is not None:
                    out.append(f"enc_{name}({p}, {'yes' if value else 'no'}).")
            for name in ("reprogramming", "physician_skill"):
                value = getattr(proc, name)
                if value is not None:
                    out.append(f"enc_{name}({p}, {'yes' if value else 'no'}).")
            for name in ("drug_units", "wasted_units"):
                value = getattr(proc, name)
                if value is not None:
                    out.append(f"enc_{name}({p}, {int(value)}).")
            for pointer in dict.fromkeys(proc.dx):
                out.append(f"enc_ptr({p}, {int(pointer)}).")
        if enc.payer not in self._payer_facts:
            self._payer_facts[enc.payer] = self.checker.payers.get(enc.payer).facts()
        out.append(self._payer_facts[enc.payer])
        return "\n".join(out)

    def _solve(self, enc: Encounter) -> list[Any]:
        import clingo

        messages: list[str] = []
        def logger(code: Any, message: str) -> None:
            messages.append(message)

        ctl = clingo.Control(["--warn=none"], logger=logger)
        try:
            ctl.add("base", [], program_text([self.program / "code.lp", self.program / "code" / "show.lp"], logger))
            ctl.add("base", [], self.facts(enc))
            ctl.ground([("base", [])])
        except RuntimeError:
            raise PainAspError("the code-selection program failed to load:\n" + "\n".join(messages)) from None
        symbols: list[Any] = []
        result = ctl.solve(on_model=lambda m: symbols.extend(m.symbols(shown=True)))
        if not result.satisfiable:
            raise PainAspError("the code-selection program has no answer (it must only derive lines)")
        return symbols

    # -- from atoms to a claim --------------------------------------------------------------

    def _claim(self, enc: Encounter, atoms: list[Any]) -> tuple[Claim, list[str], list[int | None]]:
        lines: dict[tuple, dict[str, Any]] = {}
        problems: list[str] = []
        clinical: dict[str, Any] = {}
        extra: dict[tuple, dict[str, Any]] = {}
        dropped: set[int] = set()
        noted: list[tuple[int, str]] = []

        def key_of(sym: Any) -> tuple:
            return tuple(a.number if a.type.name == "Number" else a.string for a in sym.arguments)

        for sym in atoms:
            name, args = sym.name, sym.arguments
            if name == "cod_line":
                lines[key_of(args[0])] = {"code": args[1].string, "units": args[2].number}
        for sym in atoms:
            name, args = sym.name, sym.arguments
            if name in ("cod_mod", "cod_line_ptr", "cod_line_level", "cod_line_nerve", "cod_guidance_line"):
                slot = extra.setdefault(key_of(args[0]), {"mods": [], "ptrs": [], "levels": [],
                                                          "nerves": [], "imaging": None})
                if name == "cod_mod":
                    slot["mods"].append(args[1].string)
                elif name == "cod_line_ptr":
                    slot["ptrs"].append(args[1].number)
                elif name == "cod_line_level":
                    slot["levels"].append((args[1].number, args[2].number))
                elif name == "cod_line_nerve":
                    slot["nerves"].append(args[1].number)
                else:
                    slot["imaging"] = str(args[1])
            elif name == "cod_problem":
                problems.append(self._problem(enc, args[0].number, args[1]))
            elif name == "cod_note":
                noted.append((args[0].number, self._note(enc, args[0].number, args[1])))
                if args[1].name in ("em_included", "included_in_rfa", "analysis_in_refill"):
                    dropped.add(args[0].number)
            elif name == "cod_clinical":
                value = args[1]
                clinical[str(args[0])] = value.number if value.type.name == "Number" else str(value) == "yes"
        notes = [text for _, text in sorted(noted)]
        coded = {key[0] for key in lines}
        for p, proc in enumerate(enc.procedures, start=1):
            stopped = any(x.startswith(f"procedures[{p}]") for x in problems)
            if p not in coded and p not in dropped and not stopped:
                problems.append(f"procedures[{p}] ({proc.procedure}): no code in the catalog")
        if problems:
            raise CodingError(list(dict.fromkeys(sorted(problems))))
        raw_lines, owners = [], []
        for key in sorted(lines):
            info = lines[key]
            slot = extra.get(key, {"mods": [], "ptrs": [], "levels": [], "nerves": [], "imaging": None})
            p = key[0]
            line: dict[str, Any] = {
                "code": info["code"], "units": info["units"], "date": enc.date.isoformat(),
                "modifiers": sorted(slot["mods"], key=MODIFIER_ORDER.index),
                "dx": sorted(slot["ptrs"]),
            }
            documented = self._documented(enc, p, slot)
            if documented:
                line["documented"] = documented
            raw_lines.append(line)
            owners.append(p if p != _SHARED else None)
        raw = {
            "claim_id": enc.encounter_id or "ENCOUNTER-1",
            "payer": enc.payer,
            "place_of_service": enc.place_of_service,
            "patient": as_dict(enc.patient) if enc.patient else {"id": "unknown"},
            "diagnoses": list(enc.diagnoses),
            "lines": raw_lines,
        }
        if enc.prior_authorization:
            raw["prior_authorization"] = enc.prior_authorization
        merged = self._clinical(enc, clinical)
        if merged:
            raw["clinical"] = merged
        if enc.history:
            raw["history"] = [as_dict(h) for h in enc.history]
        try:
            claim = parse_claim(_prune(raw))
        except ValidationError as exc:
            raise CodingError([f"the coded claim does not validate ({exc})"]) from None
        return claim, notes, owners

    @staticmethod
    def _documented(enc: Encounter, p: int, slot: dict[str, Any]) -> dict[str, Any]:
        if p == _SHARED:
            return {"imaging": slot["imaging"]} if slot["imaging"] else {}
        proc = enc.procedures[p - 1]
        if proc.procedure.startswith("office_visit") or proc.procedure == "chronic_pain_management":
            return {}
        documented: dict[str, Any] = {}
        if proc.guidance is not None:
            documented["imaging"] = proc.guidance
        if proc.side is not None:
            documented["side"] = proc.side
        if slot["levels"]:
            wanted = set(slot["levels"])
            documented["levels"] = [name for name, seg in zip(proc.levels or [], proc.segments())
                                    if seg in wanted]
        if proc.purpose is not None:
            documented["purpose"] = proc.purpose
        if slot["nerves"]:
            documented["nerves"] = [proc.nerves[i - 1] for i in sorted(slot["nerves"])]  # type: ignore[index]
        if proc.muscles:
            documented["muscles"] = list(proc.muscles)
        return documented

    @staticmethod
    def _clinical(enc: Encounter, derived: dict[str, Any]) -> dict[str, Any]:
        given = _prune(as_dict(enc.clinical)) if enc.clinical else {}
        for name, value in derived.items():
            if name in given and given[name] != value:
                raise CodingError([f"clinical.{name} is {given[name]!r}, but the procedures say {value!r}"])
            given[name] = value
        return given

    @staticmethod
    def _problem(enc: Encounter, p: int, why: Any) -> str:
        proc = enc.procedures[p - 1]
        head = f"procedures[{p}] ({proc.procedure}): "
        kind, args = why.name, why.arguments
        if kind == "not_valid":
            first = str(args[1].number)
            since = dt.date(int(first[:4]), int(first[4:6]), int(first[6:]))
            return (head + f"its code {args[0].string} is valid only from {since.isoformat()}; the catalog "
                    f"has no code for it on {enc.date.isoformat()}")
        if kind == "family_revised":
            first = str(args[1].number)
            since = dt.date(int(first[:4]), int(first[4:6]), int(first[6:]))
            return head + (f"from {since.isoformat()} a percutaneous peripheral nerve array with an "
                           "integrated neurostimulator has codes of its own (64596, +64597 per further "
                           "array; 64598 its revision or removal), another array keeps 64555 / 64585: "
                           "say which (integrated neurostimulator, or external stimulator)")
        if kind == "caudal_levels":
            return head + ("a caudal epidural reaches lumbar and sacral levels; the levels given are "
                           "cervical or thoracic")
        if kind == "vertebral_regions":
            return head + ("the vertebral bodies lie in two regions, and the first-level code is billed "
                           "once a session: choose it and code the other bodies as further bodies")
        if kind == "vertebral_body_not_coded":
            return head + (f"no code of this procedure describes vertebral body {segment_name(args[0].number)} "
                           "(kyphoplasty: thoracic and lumbar bodies; basivertebral ablation: lumbar and "
                           "sacral bodies)")
        if kind == "cpm_minutes":
            return head + (f"{args[0].number} minutes: G3002 needs at least 30 minutes of chronic pain "
                           "management in the calendar month")
        if kind == "em_minutes":
            return head + (f"{args[0].number} minutes is below the shortest time of any level "
                           f"({args[1].number} minutes): choose the level by medical decision making")
        if kind == "wastage_unknown":
            return head + (f"{enc.payer} wants JZ (nothing discarded) or a JW line (the amount discarded) "
                           f"on {args[0].string}: say how many units were discarded (wasted_units: 0 "
                           "when none was wasted)")
        if kind == "drug_units":
            return head + (f"{args[1].number} units is not a whole number of {args[0].string} billing "
                           f"units ({args[2].number} units each)")
        if kind == "em_major_day":
            return head + ("a visit on the day of a major procedure (90-day global): if it made the "
                           "decision to operate it is billed with 57, which code mode does not code "
                           "(write the visit line by hand, and em_decision_for_surgery in the chart); "
                           "if it addressed a separate problem, say so (separate_problem: true bills "
                           "it with 25); otherwise it is part of the procedure: leave it out")
        if kind == "em_separate_unknown":
            return head + ("a visit on the day of a procedure: say whether it addressed a problem "
                           "beyond the decision to do the procedure (separate_problem: true bills it "
                           "with 25; false leaves it in the procedure)")
        return head + str(why)

    @staticmethod
    def _note(enc: Encounter, p: int, why: Any) -> str:
        proc = enc.procedures[p - 1]
        head = f"procedures[{p}] ({proc.procedure}): "
        kind, args = why.name, why.arguments
        if kind == "em_included":
            return head + ("not billed: a visit that only decided on the procedure is included in "
                           "it (CMS IOM 100-04 ch. 12 §40.1.C)")
        if kind == "included_in_rfa":
            region = str(args[0]).replace("_", "/")
            return head + (f"not billed in the {region} region: a facet injection in the session "
                           "of a facet radiofrequency ablation there is included in it (older MAC guidance, secondary)")
        if kind == "analysis_in_refill":
            return head + ("not billed: the pump analysis of a refill visit is part of the refill "
                           "code (62369/62370 when the pump was reprogrammed), never billed beside it")
        if kind == "guidance_not_separate":
            return head + (f"{args[1]} guidance for {args[0]} has no separate code here: documented "
                           "on the line, not billed")
        if kind == "kx_purpose_unknown":
            return head + (f"purpose not stated: {enc.payer} marks diagnostic {args[0]} with KX, so "
                           "state diagnostic or therapeutic (the check asks for review)")
        if kind == "drug_by_facility":
            return head + (f"{args[0].string} not billed: outside the office the facility buys and bills "
                           "the drug")
        if kind == "wastage_not_billed":
            return head + (f"the {args[1].number} units discarded are not billed: {enc.payer} does not ask "
                           f"for JW/JZ on {args[0].string}")
        if kind == "no_supporting_dx":
            return head + (f"no diagnosis given supports {args[0].string} at {enc.payer}; its line "
                           "points to the first diagnoses")
        return head + str(why)


# --- the `pain-asp code` command ----------------------------------------------------------

_ENCOUNTER_SUFFIXES = (".yaml", ".yml", ".json")


def run_code(source: str, payer: str | None, pos: str | None, date: str | None, dx: list[str],
             payer_dirs: list[str]) -> tuple[CodeResult, Any]:
    """Code ``source`` (an encounter file or a description); returns the coded encounter and the
    reading of the description (None for a file), for :func:`pain_asp.render.code.coded_output`.

    Raises PainAspError (exit 2) for unreadable input, an ambiguous description, or an
    encounter that cannot be coded.
    """
    from pathlib import Path

    reading = None
    path = Path(source)
    is_file = len(source) < 4096 and "\n" not in source and path.suffix.lower() in _ENCOUNTER_SUFFIXES
    if is_file or (len(source) < 4096 and path.is_file()):
        raw = _read_encounter_file(path)
        if payer is not None:
            raw["payer"] = payer
        if pos is not None:
            raw["place_of_service"] = pos
        if date is not None:
            raw["date"] = date
        if dx:
            raw["diagnoses"] = list(raw.get("diagnoses") or []) + list(dx)
        encounter = _validate_encounter(raw, str(path))
    else:
        if payer is None or pos is None:
            raise PainAspError("a description needs --payer and --pos (e.g. --payer medicare --pos 11)")
        reading, encounter = read_description(source, payer, pos, date, dx)
    return Coder(payer_dirs).code(encounter), reading


def read_description(text: str, payer: str, pos: str, date: str | None, dx: list[str]) -> tuple[Any, Any]:
    """A procedure description read into (its reading, the encounter to code); date default today."""
    from ..inputs.procedure_text import read_procedure_text

    reading = read_procedure_text(text)
    day = date or dt.date.today().isoformat()
    raw = {"payer": payer, "place_of_service": pos, "date": day,
           "diagnoses": list(dict.fromkeys(list(dx) + reading.diagnoses)),
           "procedures": [_prune(as_dict(p)) for p in reading.procedures]}
    return reading, _validate_encounter(raw, "<description>")


def _read_encounter_file(path: Any) -> dict[str, Any]:
    if not path.is_file():
        raise PainAspError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PainAspError(f"{path}: expected a readable UTF-8 file ({exc})") from None
    if path.suffix.lower() == ".json":
        from ..inputs.records import json_problem, load_json

        try:
            raw = load_json(text)
        except (ValueError, RecursionError) as exc:
            raise PainAspError(f"{path}: expected {json_problem(exc)}") from None
    else:
        from ..inputs.yamlsafe import YAMLError, safe_load

        try:
            raw = safe_load(text)
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise PainAspError(f"{path}: expected valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise PainAspError(f"{path}: expected one encounter (a mapping with payer, place_of_service, "
                           "date, diagnoses, procedures)")
    return raw


def _validate_encounter(raw: dict[str, Any], where: str) -> Encounter:
    import re

    import msgspec

    from ..inputs.encounter import parse_encounter

    try:
        return parse_encounter(raw)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = re.match(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", text, re.S)
        message = match.group("message") if match else text
        where_at = (match.group("path") or "") if match else ""
        path = re.sub(r"\[(\d+)\]", lambda m: f"[{int(m.group(1)) + 1}]", where_at)
        field = path.lstrip(".")
        name = re.sub(r"\[\d+\]$", "", field.rsplit(".", 1)[-1])
        value = _lookup(raw, path)
        if "RFC3339" in message:
            real = isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", value)
            kind = "a real calendar date" if real else "a date"
            message = f"expected {kind} as YYYY-MM-DD, got {describe(value)}"
        if message.startswith("Invalid enum value"):
            message = f"got {describe(value)}; expected one of " + ", ".join(_CHOICES.get(name, ()))
        raise PainAspError(f"{where}: " + (f"field {field}: " if field else "") + f"{message}") from None


def _lookup(raw: Any, path: str) -> Any:
    import re

    value = raw
    for name, index in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        try:
            value = value[name] if name else value[int(index) - 1]
        except (KeyError, IndexError, TypeError):
            return None
    return value


_CHOICES = {
    "procedure": KINDS,
    "side": ("left", "right", "bilateral"),
    "guidance": ("fluoroscopy", "ct", "ultrasound", "none"),
    "purpose": ("diagnostic", "therapeutic"),
}
