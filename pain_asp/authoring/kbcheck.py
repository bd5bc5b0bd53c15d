"""Consistency of the knowledge base (docs/authoring.md): ``pain-asp kb check`` and ``kb diff``.

``kb check`` looks for three kinds of trouble and reports each with where it is:

contradictions
    Claims that no edit can make clean *because two rules contradict each other*. A claim is
    a counter-example for rules A and B when ``pain-asp fix`` (:mod:`pain_asp.modes.fix`) finds
    no edit that makes it clean, and, among the edits that keep every line, some edit clears
    A alone and some edit clears B alone, but none clears both (each question is asked of the
    repair with every other correctable rule switched off, through a temporary payer file
    that extends the claim's payer). Only edits that keep every line decide it, because
    dropping a line answers every demand made on that line: a claim that can only be made
    clean by dropping everything (G3003 after its G3002 was dropped for too few minutes) has
    nothing billable, it is not a contradiction. Nor is a claim that no edit makes clean for
    a single rule alone: the chart lacks what the edit needs (a documented side, a valid
    diagnosis). The claims searched: every catalog code with ten modifier sets and coherent
    chart facts (an add-on code after a line of its primary), every code billed as two
    bilateral halves (RT and LT, plain and 50), at place of service 11 and at each place a
    payer parameter names; the cases of ``tests/cases``; and claims drawn by Hypothesis
    (``--budget``). Each contradiction is reduced to a small witness (parts of the claim are
    removed while the contradiction stays and no other rule starts firing) and written as a
    ready-to-run case file.

payer settings that contradict themselves
    Decided here (each is an error; a YAML key given twice in one mapping is refused when
    the file is read, pain_asp/inputs/yamlsafe.py): a rule switched off and re-graded on
    overlapping dates; two rows of a keyed list that disagree (``bilateral_format`` for
    one place of service, ``conservative_care`` for one family, ``facet_frequency`` for one kind, ``prior_auth``
    for one code and place); a code both ``not_covered`` and needing ``prior_auth``; a
    number outside the range in which its rule can both fire and pass (a level, session or
    region limit below 1 makes every such service a denial; a percentage above 100 or a
    duration beyond what a chart can document makes every claim fail; a window below 1 day
    or a minimum interval below 1 day makes the rule dead); a value dated before the
    effective date its own source gives.

rules and parameters that can never fire
    A rule never fires for a payer when no claim of a corpus (the cases, the cases billed to
    every payer, generated claims) makes it fire and an exhaustive search over a bounded
    space of small claims (``kb/authoring/claim_space.lp``: up to two lines and two
    earlier services over every catalog code) finds no claim that does. A rule that fires
    for no payer is an error; one that does not fire for a single payer is explained when
    the payer switches it off or does not set a parameter it reads, and a warning when not.
    A parameter is dead when no rule reads it, and a payer value is dead when it names a
    code family, code or diagnosis family the catalog does not know.

``kb diff OLD NEW CLAIMS...`` checks a corpus with two versions of the rules (a folder or a
git revision, exported with ``git archive``) and lists the findings that appear or disappear.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PainAspError

__all__ = [
    "CHECKS", "Issue", "CheckReport", "check_kb", "payer_problems", "KbVersion", "resolve_kb",
    "DiffReport", "diff_kbs", "CONTRADICTION_MODIFIER_SETS", "SPACE_BOUND",
]

CHECKS = ("payers", "never-fire", "contradictions")
_LEVELS = ("error", "warning", "info")

# The exhaustive claims of the contradiction search: every catalog code on one line with each
# of these modifier sets (the chart agrees with the modifiers), and every code as two halves.
CONTRADICTION_MODIFIER_SETS: tuple[tuple[str, ...], ...] = (
    (), ("RT",), ("LT",), ("50",), ("KX",), ("RT", "KX"), ("50", "KX"), ("59",), ("XS",), ("25",))
_BILATERAL_HALVES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ((("RT",), ("LT",)), ((), ("50",)))
_SIDE_OF = {"RT": "right", "LT": "left", "50": "bilateral"}
_DIAGNOSES = ["M47.816", "M54.16", "M17.11", "M79.18"]  # facet, radicular, knee, myofascial
_CLINICAL = {"pain_duration_months": 6, "conservative_care_weeks": 12, "em_separate_problem": True,
             "cpm_minutes": 45, "care_plan": True}
_DAY = dt.date(2026, 3, 2)

# The bounded space of the never-fire search (kb/authoring/claim_space.lp).
SPACE_BOUND = {"lines": 2, "history": 2, "units": (1, 2, 3), "max_modifiers": 3}
_SPACE_MODS = ("50", "RT", "LT", "KX", "25", "59", "XS", "XU", "51", "76", "24", "GA")
_SPACE_DX = ("M47.816", "M54.16", "M54.50", "M54.5", "M17.11", "M79.18", "M54.81", "G89.29",
             "M46.1", "M54.12", "M47.812", "M25.561")


# --- report ----------------------------------------------------------------------------------

@dataclass
class Issue:
    """One thing kb check found."""

    check: str  # payers | never-fire | contradictions
    level: str  # error | warning | info
    subject: str
    message: str
    where: str = ""
    case_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


@dataclass
class CheckReport:
    """Everything kb check found, and how much it searched."""

    issues: list[Issue] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not any(i.level == "error" for i in self.issues)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "issues": [i.as_dict() for i in self.issues], "stats": self.stats}

    def text(self) -> str:
        """For people: errors, then warnings, then information, each with where and what."""
        out = []
        for level in _LEVELS:
            items = [i for i in self.issues if i.level == level]
            if not items:
                continue
            out.append(f"{level}s:" if level != "info" else "information:")
            for i in items:
                where = f" ({i.where})" if i.where else ""
                out.append(f"  [{i.check}] {i.subject}{where}: {i.message}")
                if i.case_file:
                    out.append(f"      counter-example: {i.case_file}")
        s = self.stats
        out.append("searched: " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.items()))
        errors = sum(1 for i in self.issues if i.level == "error")
        warnings = sum(1 for i in self.issues if i.level == "warning")
        out.append(f"kb check: {errors} error(s), {warnings} warning(s)")
        return "\n".join(out) + "\n"


# --- payer settings --------------------------------------------------------------------------

def _key_lines(path: Path) -> dict[tuple[str, ...], int]:
    """The line of every mapping key of a YAML file, by key path."""
    import yaml

    from ..inputs.yamlsafe import compose

    out: dict[tuple[str, ...], int] = {}

    def visit(node: Any, where: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                out.setdefault(where + (str(key.value),), key.start_mark.line + 1)
                visit(value, where + (str(key.value),))

    try:
        visit(compose(path.read_text(encoding="utf-8")), ())
    except (OSError, yaml.YAMLError):
        pass
    return out


def _fields(spec: Any, term: str) -> dict[str, str]:
    parts = [p.strip().strip('"') for p in term.strip()[1:-1].split(",")]
    return {name: part for (name, _), part in zip(spec.fields, parts)}


def _rows(spec: Any, value: Any) -> list[dict[str, str]]:
    if spec.kind == "record":
        return [_fields(spec, value)]
    if spec.kind == "records":
        return [_fields(spec, v) for v in value]
    return []


def _terms(spec: Any, value: Any) -> list[str]:
    """The items of a list or mapping value (mapping: (key, item) pairs flattened)."""
    if spec.kind == "list":
        return [v.strip().strip('"') for v in value]
    if spec.kind == "mapping":
        out = []
        for pair in value:
            key, item = pair.strip()[1:-1].split(",", 1)
            out += [key.strip().strip('"'), item.strip().strip('"')]
        return out
    return []


def _catalog_names(kb: Path) -> tuple[set[str], set[str], set[str]]:
    """Code families, codes and diagnosis families the catalog knows."""
    import clingo

    from ..kb import code_catalog

    codes = code_catalog(str(kb))
    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(kb / "check.lp"))
    ctl.add("base", [], "#show. #show dx_family_name(F) : dx_family(_, F).")
    ctl.ground([("base", [])])
    dx_families: set[str] = set()
    ctl.solve(on_model=lambda m: dx_families.update(str(s.arguments[0]) for s in m.symbols(shown=True)))
    return {c.family for c in codes.values()}, set(codes), dx_families


def payer_problems(kb: Path, payer_ids: list[str] | None = None,
                   payer_dirs: list[str] | None = None) -> list[Issue]:
    """Payer settings that contradict themselves or can never take effect (see the module doc)."""
    from ..icd import dx_status
    from ..kb import parameter_catalog, rule_catalog
    from ..payers import load_registry

    rules = rule_catalog(str(kb))
    parameters = parameter_catalog(str(kb))
    registry = load_registry(payer_dirs or [], set(rules), str(kb))
    families, codes, dx_families = _catalog_names(kb)
    readers = {name: [r.id for r in rules.values() if name in r.reads] for name in parameters}
    out: list[Issue] = []
    for name, who in readers.items():
        if not who:
            out.append(Issue("payers", "error", f"parameter {name}",
                             "declared in kb/ (parameter/3) but no rule reads it (rule_reads)", str(kb)))
    for payer_id in payer_ids or registry.ids():
        payer = registry.get(payer_id)
        path = Path(payer.file)
        lines = _key_lines(path)

        def issue(subject: str, message: str, level: str = "error", payer_id: str = payer_id,
                  path: Path = path, lines: dict[tuple[str, ...], int] = lines) -> None:
            name = subject.split(".")[0].removeprefix("rule ")
            line = lines.get(("parameters", name)) or lines.get(("rules", name))
            where = f"{path}:{line}" if line else str(path)
            out.append(Issue("payers", level, f"{payer_id}: {subject}", message, where))

        for rule_id in sorted(set(payer.rule_off) & set(payer.rule_severity)):
            for off in payer.rule_off[rule_id]:
                for sev in payer.rule_severity[rule_id]:
                    if off.since <= sev.until and sev.since <= off.until:
                        start, stop = max(off.since, sev.since), min(off.until, sev.until)
                        dates = "on every date" if not any((off.start, sev.start, off.end, sev.end)) else \
                            f"from {start.isoformat()} to {stop.isoformat()}"
                        issue(f"rule {rule_id}", f"switched off and re-graded to {sev.value} {dates}")
        for name, entries in sorted(payer.parameters.items()):
            spec = payer.specs[name]
            if not readers.get(name):
                issue(name, "no rule reads this parameter: it can never take effect")
            for dated in entries:
                when = "" if dated.start is None else f" (since {dated.start})"
                effective = str(dated.source.get("effective") or "")
                try:
                    source_day = dt.date.fromisoformat(effective) if effective else None
                except ValueError:
                    source_day = None
                if source_day is not None and dated.since < source_day:
                    issue(name, f"in force from {dated.since.isoformat()}, before its source "
                          f"{dated.source.get('document')!r} takes effect ({effective})")
                rows = _rows(spec, dated.value)
                values: list[tuple[str | None, str]] = [(None, str(dated.value))] if spec.kind == "int" else []
                values += [(f, row[f]) for row in rows for f, kind in spec.fields if kind == "int"]
                for field_name, text in values:
                    bound = spec.bound(field_name)
                    if bound is None:
                        continue
                    low, high, below, above = bound
                    number = int(text)
                    label = f"{name}.{field_name}" if field_name else name
                    if low is not None and number < low:
                        issue(label, f"{number}{when}: {below} (a meaningful value is at least {low})")
                    if high is not None and number > high:
                        issue(label, f"{number}{when}: {above} (a meaningful value is at most {high})")
                if spec.row_key and rows:
                    keys = spec.row_key
                    seen: dict[tuple[str, ...], dict[str, str]] = {}
                    for row in rows:
                        key = tuple(row[k] for k in keys)
                        shown = ", ".join(f"{k} {v}" for k, v in zip(keys, key))
                        if key in seen and seen[key] != row:
                            differ = "; ".join(f"{f} {seen[key][f]} or {row[f]}" for f in row
                                               if row[f] != seen[key][f])
                            issue(name, f"two rows for {shown} disagree{when}: {differ}")
                        elif key in seen:
                            issue(name, f"the row for {shown} is listed twice{when}", "warning")
                        seen.setdefault(key, row)
                for item in _dead_references(spec, dated.value, families, codes, dx_families, dx_status):
                    issue(name, f"{item}{when}: can never match a claim", "error")
            for field_name, other, why in spec.conflicts:
                items = {v.strip('"') for d in payer.parameters.get(other, []) for v in d.value}
                for dated in entries:
                    for row in _rows(spec, dated.value):
                        if row[field_name] in items:
                            issue(name, f"{row[field_name]} {why} ({other}): the two settings "
                                  "contradict each other")
    return out


def _dead_references(spec: Any, value: Any, families: set[str], codes: set[str],
                     dx_families: set[str], dx_status: Any) -> list[str]:
    """Items of a value that name nothing the catalog knows."""
    kinds: list[tuple[str, str]] = []
    if spec.kind == "list":
        kinds = [(spec.item, v) for v in _terms(spec, value)]
    elif spec.kind == "mapping":
        items = _terms(spec, value)
        kinds = [(k, v) for i, v in enumerate(items) for k in [spec.key if i % 2 == 0 else spec.item]]
    for row in _rows(spec, value):
        kinds += [(kind, row[f]) for f, kind in spec.fields]
    out = []
    for kind, text in dict.fromkeys(kinds):
        if kind == "family" and text not in families:
            out.append(f"code family {text!r} is not in the catalog")
        elif kind == "code" and text not in codes:
            out.append(f"code {text} is not in the catalog")
        elif kind == "family_or_code" and text not in families and text not in codes:
            out.append(f"{text!r} is neither a code family nor a code of the catalog")
        elif kind == "dx" and "." not in text and text not in dx_families and dx_status(text) is None:
            out.append(f"diagnosis family {text!r} is not in kb/catalog/dx_families.lp")
        elif kind == "dx" and "." in text and dx_status(text) is None:
            out.append(f"diagnosis {text} is not in the ICD-10-CM release")
    return out


# --- claims ----------------------------------------------------------------------------------

def _doc_for(modifiers: Iterable[str], code_family: str) -> dict[str, Any]:
    mods = list(modifiers)
    side = next((_SIDE_OF[m] for m in mods if m in _SIDE_OF), "right")
    doc: dict[str, Any] = {"imaging": "fluoroscopy", "side": side,
                           "purpose": "diagnostic" if "KX" in mods else "therapeutic"}
    if code_family.startswith(("esi_", "facet_")):
        doc["levels"] = ["L4-L5"]
    if code_family.startswith("genicular"):
        doc["nerves"] = ["superolateral genicular", "superomedial genicular", "inferomedial genicular"]
    if code_family == "trigger_point":
        doc["muscles"] = ["left trapezius", "right trapezius", "left levator scapulae"]
    if "59" in mods or any(m.startswith("X") for m in mods):
        doc["distinct"] = "separate_structure"
    return doc


def _claim(claim_id: str, payer: str, pos: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {"claim_id": claim_id, "payer": payer, "place_of_service": pos,
            "patient": {"id": f"P-{claim_id}"}, "diagnoses": list(_DIAGNOSES),
            "clinical": dict(_CLINICAL), "lines": lines}


def _places(payer: Any, codes: Iterable[str]) -> dict[str, list[str]]:
    """Place of service 11 with every code, and each place a payer parameter names with the
    codes its rows name there (every code when a row for the place names no code)."""

    every = sorted(codes)
    places: dict[str, set[str]] = {"11": set(every)}
    for name, entries in payer.parameters.items():
        spec = payer.specs[name]
        for dated in entries:
            for row in _rows(spec, dated.value):
                if row.get("pos") in (None, "0"):
                    continue
                pos = str(row["pos"]).zfill(2)
                places.setdefault(pos, set()).update([row["code"]] if "code" in row else every)
    return {pos: sorted(c for c in named if c in set(every)) for pos, named in sorted(places.items())}


def addon_primaries(kb: Path) -> dict[str, str]:
    """For each add-on code of the catalog, one primary code it is billed with (the lowest)."""
    import clingo

    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(kb / "check.lp"))
    ctl.add("base", [], "#show. #show addon_primary/2.")
    ctl.ground([("base", [])])
    pairs: list[tuple[str, str]] = []
    ctl.solve(on_model=lambda m: pairs.extend((s.arguments[0].string, s.arguments[1].string)
                                              for s in m.symbols(shown=True)))
    out: dict[str, str] = {}
    for addon, primary in sorted(pairs):
        out.setdefault(addon, primary)
    return out


def exhaustive_claims(payer: Any, codes: dict[str, Any], primaries: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The bounded exhaustive claims of the contradiction search for one payer: each code on
    one line (an add-on code after a line of its primary) with each modifier set, and each
    code as two bilateral halves."""
    out = []
    for pos, named in _places(payer, codes).items():
        for code in named:
            info = codes[code]
            for mods in CONTRADICTION_MODIFIER_SETS:
                lines = []
                for billed in ([primaries[code]] if primaries and code in primaries else []) + [code]:
                    family = codes[billed].family if billed in codes else info.family
                    lines.append({"code": billed, "modifiers": list(mods), "date": _DAY.isoformat(),
                                  "dx": [1, 2, 3, 4], "documented": _doc_for(mods, family)})
                out.append(_claim(f"KBX-{payer.id}-{pos}-{code}-{'-'.join(mods) or 'none'}", payer.id, pos, lines))
            for first, second in _BILATERAL_HALVES:
                lines = [{"code": code, "modifiers": list(m), "date": _DAY.isoformat(), "dx": [1, 2, 3, 4],
                          "documented": {**_doc_for(m, info.family), "side": "bilateral"}}
                         for m in (first, second)]
                out.append(_claim(f"KBX-{payer.id}-{pos}-{code}-{'-'.join(first) or 'plain'}+{second[0]}",
                                  payer.id, pos, lines))
    return out


def hypothesis_claims(payers: list[str], codes: list[str], budget: int, seed: int) -> list[dict[str, Any]]:
    """``budget`` small claims drawn by Hypothesis: 1-3 lines over a few codes and two dates,
    modifiers, units and chart facts varied, diagnoses and clinical facts present."""
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hypothesis_seed
        from hypothesis import strategies as st
    except ImportError:
        raise PainAspError("kb check draws claims with Hypothesis: pip install 'pain-asp[test]'") from None

    days = [_DAY, _DAY + dt.timedelta(days=1)]
    mods = ("RT", "LT", "50", "KX", "25", "59", "XS", "XU", "51", "76")

    @st.composite
    def claims(draw: Any) -> dict[str, Any]:
        pool = draw(st.lists(st.sampled_from(codes), min_size=1, max_size=3, unique=True))
        lines = []
        for _ in range(draw(st.integers(1, 3))):
            chosen = draw(st.lists(st.sampled_from(mods), max_size=3, unique=True))
            doc = _doc_for(chosen, "")
            doc["side"] = draw(st.sampled_from(("left", "right", "bilateral")))
            if draw(st.booleans()):
                doc["levels"] = draw(st.sampled_from((["L4-L5"], ["L4-L5", "L5-S1"], ["C5-C6"])))
            if draw(st.booleans()):
                doc["relief_pct"] = draw(st.sampled_from((40, 50, 80, 90)))
            lines.append({"code": draw(st.sampled_from(pool)), "modifiers": chosen,
                          "units": draw(st.sampled_from((1, 1, 2, 3))),
                          "date": draw(st.sampled_from(days)).isoformat(), "dx": [1, 2, 3, 4],
                          "documented": doc})
        claim = _claim(f"KBH-{draw(st.integers(1, 10**6))}", draw(st.sampled_from(payers)),
                       draw(st.sampled_from(("11", "19", "22", "24"))), lines)
        history = []
        for _ in range(draw(st.integers(0, 2))):
            history.append({"date": (_DAY - dt.timedelta(days=draw(st.sampled_from((14, 60, 200, 400))))).isoformat(),
                            "code": draw(st.sampled_from(pool)),
                            "purpose": draw(st.sampled_from(("diagnostic", "therapeutic"))),
                            "relief_pct": draw(st.sampled_from((40, 80, 90)))})
        if history:
            claim["history"] = history
        return claim

    drawn: list[dict[str, Any]] = []

    @hypothesis_seed(seed)
    @settings(max_examples=max(1, budget), phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(claims())
    def collect(claim: dict[str, Any]) -> None:
        drawn.append(claim)

    collect()
    seen: set[str] = set()
    out = []
    for n, claim in enumerate(drawn[:budget]):
        key = json.dumps({**claim, "claim_id": "", "patient": {}}, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append({**claim, "claim_id": f"KBH-{n + 1}", "patient": {"id": f"P-KBH-{n + 1}"}})
    return out


def _case_claims(place: Any) -> list[tuple[str, list[dict[str, Any]], list[str], str | None]]:
    """(case name, its claims, payer folders, NCCI folder) of every case that loads."""
    from ..inputs.yamlsafe import YAMLError
    from .casefiles import find_cases, load_case

    if place.cases is None:
        return []
    out = []
    for path in find_cases(place.cases):
        try:
            case = load_case(path)
        except (ValueError, TypeError, AttributeError, KeyError, OSError, YAMLError):
            continue  # rules lint and rules test report cases that do not load
        out.append((case.name, case.claims, case.payer_dirs, case.ncci))
    return out


class _Batch:
    """Claims grouped by (payer folders, NCCI folder), each group with its own batch history."""

    def __init__(self) -> None:
        self.groups: dict[tuple[tuple[str, ...], str | None], list[tuple[str, list[dict[str, Any]]]]] = {}

    def add(self, name: str, claims: list[dict[str, Any]], payer_dirs: Iterable[str] = (),
            ncci: str | None = None) -> None:
        """Add the claims of one source (a case, a generated batch); dates become ISO text."""
        plain = json.loads(json.dumps(claims, default=str))
        self.groups.setdefault((tuple(payer_dirs), ncci), []).append((name, plain))

    def check(self, kb: Path, extra_dirs: list[str]) -> list[tuple[str, dict[str, Any], Any, Any]]:
        """(source name, raw claim, Result, checker) for every claim that validates."""
        from ..engine import Checker, CheckOptions
        from ..history import batch_history
        from ..inputs.records import validate_claim

        out = []
        for (dirs, ncci), members in self.groups.items():
            checker = Checker(CheckOptions(payer_dirs=list(dirs) + extra_dirs, ncci_dir=ncci, kb_dir=str(kb)))
            records, raws, names, providers = [], [], [], {}
            for name, claims in members:
                batch = [validate_claim(raw, name, n, checker.known_payers()) for n, raw in enumerate(claims, 1)]
                good = [(r, raw) for r, raw in zip(batch, claims) if r.claim is not None]
                provider = batch_history([r.claim for r, _ in good])
                for record, raw in good:
                    providers[id(record.claim)] = provider
                    records.append(record)
                    raws.append(raw)
                    names.append(name)
            results = checker.check(records, history=lambda c: providers[id(c)](c))
            out += [(name, raw, result, checker) for name, raw, result in zip(names, raws, results)]
        return out


# --- never fire ------------------------------------------------------------------------------

def _space_facts(checker: Any, payer_ids: list[str], codes: list[str]) -> str:
    from ..bench.generate import ESI_CODES, FACET_CODES, RFA_CODES
    from ..facts import dx_facts

    def day(d: dt.date) -> str:
        return f"{d.toordinal()}, {d.year * 10000 + d.month * 100 + d.day}"

    facts = [checker.payers.get(p).facts() for p in payer_ids]
    facts += [f'space_payer("{p}").' for p in payer_ids]
    facts += [f"space_pos({p})." for p in (11, 19, 22, 24)]
    facts += [f"space_line({n})." for n in range(1, SPACE_BOUND["lines"] + 1)]
    facts += [f'space_code("{c}").' for c in codes]
    facts += [f"space_units({u})." for u in SPACE_BOUND["units"]]
    old = dt.date(2019, 6, 3)
    facts += [f"space_day({day(d)})." for d in (_DAY, _DAY + dt.timedelta(days=1), old)]
    facts += [f'space_mod("{m}").' for m in _SPACE_MODS]
    facts.append(f"space_max_mods({SPACE_BOUND['max_modifiers']}).")
    facts += ["space_dx_slot(1).", "space_dx_slot(2)."]
    facts += [f'space_dx("{d}").' for d in _SPACE_DX]
    facts += dx_facts(_SPACE_DX)
    doc = {"imaging": ("fluoroscopy", "ct", "ultrasound", "none"), "side": ("left", "right", "bilateral"),
           "purpose": ("diagnostic", "therapeutic"), "distinct": ("separate_structure", "unusual"),
           "relief_months": (0, 7), "nerve_count": (1, 3)}
    facts += [f"space_doc({f}, {v})." for f, values in doc.items() for v in values]
    facts += [f"space_relief({p})." for p in (0, 50, 80)]
    facts += [f"space_level({u}, {lo})." for u, lo in ((23, 24), (24, 25), (5, 6), (19, 20))]
    facts += [f"space_nerve({n})." for n in ("superolateral_genicular", "superomedial_genicular",
                                               "inferomedial_genicular", "other")]
    facts += [f"space_muscles({n})." for n in (1, 3, 6)]
    clinical = {"pain_duration_months": (0, 2, 6), "conservative_care_weeks": (0, 3, 12),
                "cpm_minutes": (0, 29, 30, 45, 75), "em_separate_problem": ("yes", "no"),
                "care_plan": ("yes", "no"), "psych_evaluation": ("yes", "no")}
    facts += [f"space_clinical({f}, {v})." for f, values in clinical.items() for v in values]
    facts += [f"space_care({c})." for c in ("physical_therapy", "nsaids")]
    facts += [f"space_hist({h})." for h in range(1, SPACE_BOUND["history"] + 1)]
    history_codes = sorted(set(ESI_CODES + FACET_CODES + RFA_CODES + ("99213", "G3002", "64454", "27096")) & set(codes))
    facts += [f'space_hist_code("{c}").' for c in history_codes]
    facts += [f"space_hist_day({day(_DAY - dt.timedelta(days=n))})." for n in (7, 30, 200, 400)]
    facts += checker.tables.facts(set(codes))
    return "\n".join(facts)


def _sliced_program(kb: Path, targets: set[str]) -> list[Any]:
    """The knowledge base plus the claim space, as AST statements, without what the question
    does not need: violation rules of other rules, and rules defining predicates that nothing
    needed reads (a program slice; the answer sets, projected on what is kept, are the same)."""
    from clingo import ast

    from ..asp_syntax import atom_names, head_function, string_of

    nodes: list[Any] = []
    messages: list[str] = []
    files = [str((kb / "check.lp").resolve()), str(kb / "authoring" / "claim_space.lp")]
    try:
        ast.parse_files(files, nodes.append, logger=lambda code, msg: messages.append(msg))
    except RuntimeError:
        raise PainAspError("the knowledge base does not parse:\n" + "\n".join(messages)) from None
    described: list[tuple[Any, set[str] | None, set[str]]] = []
    needed = {"finding", "space_fires", "space_hit"}
    for node in nodes:
        if node.ast_type != ast.ASTType.Rule:
            needed |= atom_names(node)
            described.append((node, None, set()))
            continue
        head = head_function(node.head)
        if head is not None and head.name == "violation" and head.arguments \
                and string_of(head.arguments[0]) not in targets:
            continue
        body: set[str] = set()
        for literal in node.body:
            body |= atom_names(literal)
        described.append((node, atom_names(node.head), body))
    changed = True
    while changed:
        changed = False
        for _, heads, body in described:
            if heads is not None and (not heads or heads & needed) and not body <= needed:
                needed |= body
                changed = True
    return [node for node, heads, _ in described if heads is None or not heads or heads & needed]


def space_search(kb: Path, payer_ids: list[str], targets: dict[str, set[str]],
                 payer_dirs: list[str] | None = None, timeout: float = 60.0) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Search the bounded claim space for claims on which target rules fire.

    ``targets`` maps a payer to the rules to look for. Returns (found, undecided): the rules
    seen firing per payer, and those the solver could not decide within ``timeout`` seconds
    per question. A target in neither set can never fire for that payer within the bound.
    """
    import clingo

    from ..engine import Checker, CheckOptions
    from ..kb import code_catalog

    wanted = {p: set(r) for p, r in targets.items() if r}
    found: dict[str, set[str]] = {p: set() for p in wanted}
    undecided: dict[str, set[str]] = {p: set() for p in wanted}
    if not wanted:
        return found, undecided
    checker = Checker(CheckOptions(payer_dirs=payer_dirs or [], kb_dir=str(kb)))
    codes = sorted(code_catalog(str(kb)))
    from clingo import ast

    messages: list[str] = []
    ctl = clingo.Control(["--warn=none"], logger=lambda code, msg: messages.append(msg))
    try:
        with ast.ProgramBuilder(ctl) as builder:
            for node in _sliced_program(kb, set().union(*wanted.values())):
                builder.add(node)
        ctl.add("base", [], _space_facts(checker, sorted(wanted), codes))
        ctl.ground([("base", [])])
    except RuntimeError:
        raise PainAspError("the knowledge base failed to load:\n" + "\n".join(messages)) from None
    all_rules = list(checker.rules)
    for payer_id in sorted(wanted):
        remaining = set(wanted[payer_id])
        while remaining:
            for rule_id in all_rules:
                ctl.assign_external(clingo.Function("space_target", [clingo.String(rule_id)]),
                                    rule_id in remaining)
            payer_atom = clingo.Function("claim_payer", [clingo.Number(0), clingo.String(payer_id)])
            model: list[Any] = []
            with ctl.solve(assumptions=[(payer_atom, True)], on_model=lambda m: model.extend(
                    m.symbols(shown=True)), async_=True) as handle:
                if not handle.wait(timeout):
                    handle.cancel()
                    undecided[payer_id] |= remaining
                    break
                result = handle.get()
            if not result.satisfiable:
                break
            fired = {s.arguments[0].string for s in model if s.arguments[1].string == payer_id}
            found[payer_id] |= fired & wanted[payer_id]
            if not fired & remaining:
                break  # cannot happen: the answer set holds a target; guards against a loop
            remaining -= fired
    return found, undecided


def _never_fire(kb: Path, place: Any, payer_ids: list[str], payer_dirs: list[str], budget: int,
                seed: int, stats: dict[str, Any]) -> list[Issue]:
    from ..bench.generate import generate_claims
    from ..kb import code_catalog, rule_catalog
    from ..payers import load_registry

    rules = rule_catalog(str(kb))
    registry = load_registry(payer_dirs, set(rules), str(kb))
    batch = _Batch()
    corpus = 0
    for name, claims, dirs, ncci in _case_claims(place):
        batch.add(name, claims, dirs, ncci)
        corpus += len(claims)
        for payer_id in payer_ids:
            if any(c.get("payer") != payer_id for c in claims if isinstance(c, dict)):
                batch.add(f"{name} (billed to {payer_id})",
                          [{**c, "payer": payer_id} if isinstance(c, dict) else c for c in claims], dirs, ncci)
                corpus += len(claims)
    generated = list(generate_claims(max(1, budget), seed))
    for payer_id in payer_ids:
        batch.add(f"generated claims (seed {seed})", [{**c, "payer": payer_id} for c in generated])
        corpus += len(generated)
    fired: dict[str, set[str]] = {p: set() for p in payer_ids}
    fired_anywhere: set[str] = set()  # the cases as written bill every payer they need
    for _, _, result, _ in batch.check(kb, payer_dirs):
        fired_anywhere |= {f.rule for f in result.findings}
        if result.payer in fired:
            fired[result.payer] |= {f.rule for f in result.findings}
    targets = {p: set(rules) - fired[p] for p in payer_ids}
    found, undecided = space_search(kb, payer_ids, targets, payer_dirs)
    for p in payer_ids:
        fired[p] |= found.get(p, set())
    stats["never_fire_corpus_claims"] = corpus
    stats["never_fire_space"] = (f"every claim of up to {SPACE_BOUND['lines']} lines and "
                                 f"{SPACE_BOUND['history']} earlier services over "
                                 f"{len(code_catalog(str(kb)))} catalog codes, for the rules "
                                 f"the corpus did not fire ({sum(len(t) for t in targets.values())} "
                                 "rule-payer pairs)")
    out: list[Issue] = []
    for rule_id, rule in rules.items():
        silent = [p for p in payer_ids if rule_id not in fired[p]]
        if not silent:
            continue
        reasons = {p: _silence_reason(rule, registry.get(p)) for p in silent}
        open_question = [p for p in silent if rule_id in undecided.get(p, set())]
        if len(silent) == len(payer_ids) and not all(reasons.values()) and rule_id not in fired_anywhere:
            scope = "any payer" if len(payer_ids) > 1 else f"payer {payer_ids[0]} (nor in any case)"
            why = "; ".join(f"{p}: {r}" for p, r in reasons.items() if r)
            out.append(Issue("never-fire", "warning" if open_question else "error", f"rule {rule_id}",
                             f"fires for no claim of {scope}" + (f" ({why})" if why else "")
                             + (" (search undecided within the time limit)" if open_question else ""),
                             _rule_where(kb, rule_id)))
            continue
        for p in silent:
            if reasons[p]:
                out.append(Issue("never-fire", "info", f"rule {rule_id}", f"never fires for {p}: {reasons[p]}"))
            else:
                values = ", ".join(rule.reads) or "settings"
                out.append(Issue("never-fire", "warning" if p in open_question else "info", f"rule {rule_id}",
                                 f"fires for other payers but for no claim of {p}: {p}'s {values} never "
                                 "let it fire" + (" (search undecided within the time limit)"
                                                  if p in open_question else ""), registry.get(p).file))
    for payer_id in payer_ids:
        payer = registry.get(payer_id)
        for name in sorted(payer.parameters):
            users = [r for r in rules.values() if name in r.reads]
            if users and not any(r.id in fired[payer_id] for r in users):
                empty = all(not d.value for d in payer.parameters[name])
                out.append(Issue("never-fire", "info", f"{payer_id}: {name}",
                                 ("set to an empty value: " if empty else "")
                                 + "no rule that reads it (" + ", ".join(r.id for r in users)
                                 + f") ever fires for {payer_id}", payer.file))
    return out


def _silence_reason(rule: Any, payer: Any) -> str:
    """Why a payer never sees a rule fire, when its settings say so ("" when they do not)."""
    if payer.rule_off.get(rule.id):
        return "the payer switches it off"
    # A parameter with a default (parameter_default/2 in kb/) changes how a rule counts, never
    # whether it can fire: leaving it unset silences nothing.
    reads = [name for name in rule.reads if name not in payer.specs or payer.specs[name].default is None]
    unset = [name for name in reads if name not in payer.parameters]
    if reads and len(unset) == len(reads):
        return "the payer does not set " + ", ".join(unset)
    empty = [name for name in reads if name in payer.parameters
             and all(not d.value for d in payer.parameters[name])]
    if empty and len(empty) + len(unset) == len(reads):
        return "the payer sets " + ", ".join(empty) + " to an empty value" + (
            " and does not set " + ", ".join(unset) if unset else "")
    return ""


def _rule_where(kb: Path, rule_id: str) -> str:
    for path in sorted((kb / "rules").rglob("*.lp")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.startswith(f'rule("{rule_id}",'):
                return f"{path}:{n}"
    return ""


# --- contradictions --------------------------------------------------------------------------

_KBCHECK_SOURCE = {"document": "pain-asp kb check: isolates the rules under test", "confidence": "payer_policy"}


class _Isolation:
    """Temporary payer files that keep only some correctable rules of a payer switched on.

    Payer registries are cached per list of folders, so every batch of repairs gets a fresh
    folder holding all the files made so far.
    """

    def __init__(self, folder: Path, correctable: list[str]) -> None:
        self.folder, self.correctable = folder, correctable
        self.made: dict[tuple[str, tuple[str, ...]], str] = {}
        self.texts: dict[str, str] = {}
        self.rounds = 0

    def payer(self, parent: str, keep: Iterable[str]) -> str:
        """The id of a payer extending ``parent`` with only ``keep`` of the correctable rules on."""
        kept = tuple(sorted(set(keep)))
        key = (parent, kept)
        if key not in self.made:
            payer_id = f"kbcheck_{len(self.made) + 1}"
            rules = {r: {"off": True, "source": _KBCHECK_SOURCE} for r in self.correctable if r not in kept}
            self.texts[payer_id] = json.dumps({
                "id": payer_id, "name": f"{parent} with only {', '.join(kept)} of the correctable "
                "rules (kb check)", "extends": parent, "example": True, "rules": rules}, indent=1)
            self.made[key] = payer_id
        return self.made[key]

    def folder_now(self) -> Path:
        """A new folder with every payer file made so far."""
        self.rounds += 1
        folder = self.folder / f"round-{self.rounds}"
        folder.mkdir(parents=True)
        for payer_id, text in self.texts.items():
            (folder / f"{payer_id}.yaml").write_text(text, encoding="utf-8")
        return folder


def _correctable_denials(result: Any) -> set[str]:
    return {f.rule for f in result.findings if f.severity == "deny" and f.correctable}


class _Contradictions:
    """The repair questions of the contradiction search, asked in batches."""

    def __init__(self, kb: Path, payer_dirs: list[str], workdir: Path, timeout: float = 10.0) -> None:
        import shutil

        from ..kb import rule_catalog

        if not (kb / "fix.lp").is_file():
            raise PainAspError(f"{kb}: no repair layer (fix.lp): the contradiction search "
                               "asks pain-asp fix's repair whether claims can be made clean")
        self.kb, self.payer_dirs, self.timeout = kb, payer_dirs, timeout
        rules = rule_catalog(str(kb))
        self.correctable = sorted(r for r, rule in rules.items() if rule.meta.get("correctable") == "yes")
        self.isolation = _Isolation(workdir / "payers", self.correctable)
        self.keep_lines = workdir / "kb-keep-lines"
        shutil.copytree(kb, self.keep_lines)
        with (self.keep_lines / "fix.lp").open("a", encoding="utf-8") as handle:
            handle.write("\n% pain-asp kb check: only edits that keep every line\n:- edit(_, _, drop).\n")
        self.undecided = 0

    def repair(self, claims: list[dict[str, Any]], keep_lines: bool = False) -> list[Any]:
        """FixResult (or None when a claim does not validate or the solver timed out) per claim,
        in order; ``keep_lines``: only edits that keep every line."""
        from ..history import batch_history
        from ..inputs.records import validate_claim
        from ..modes.fix import Repairer, RepairOptions

        if not claims:
            return []
        folder = self.isolation.folder_now()
        kb = self.keep_lines if keep_lines else self.kb
        repairer = Repairer(RepairOptions(payer_dirs=self.payer_dirs + [str(folder)], kb_dir=str(kb),
                                          attribute=False, timeout=self.timeout))
        known = repairer.known_payers()
        records = [validate_claim(c, "kb check", n, known) for n, c in enumerate(claims, 1)]
        good = [i for i, r in enumerate(records) if r.claim is not None]
        fixed = repairer.fix([records[i] for i in good],
                             history=lambda claim: batch_history([claim])(claim))
        out: list[Any] = [None] * len(claims)
        for i, result in zip(good, fixed):
            if result.status == "timeout":
                self.undecided += 1
                continue
            out[i] = result
        return out

    def only(self, claim: dict[str, Any], keep: Iterable[str]) -> dict[str, Any]:
        """The claim billed to its payer with only ``keep`` of the correctable rules on."""
        return {**claim, "payer": self.isolation.payer(claim["payer"], keep)}

    def pairs(self, candidates: list[tuple[dict[str, Any], set[str]]]) -> list[tuple[dict[str, Any], str, str]]:
        """(claim, rule, rule) for every contradiction among unfixable candidates."""
        singles = [(claim, rule) for claim, remaining in candidates for rule in sorted(remaining)]
        alone = self.repair([self.only(c, [r]) for c, r in singles], keep_lines=True)
        followers: list[tuple[dict[str, Any], str, dict[str, Any]]] = []
        for (claim, rule), result in zip(singles, alone):
            if result is not None and result.status == "fixed" and result.corrected:
                followers.append((claim, rule, {**result.corrected, "payer": claim["payer"]}))
        if not followers:
            return []
        rechecked = self.repair([corrected for _, _, corrected in followers])
        questions: list[tuple[dict[str, Any], str, str]] = []
        for (claim, rule, _), result in zip(followers, rechecked):
            if result is None:
                continue
            others = {f.rule for f in result.before if f.severity == "deny" and f.correctable} - {rule}
            questions += [(claim, rule, other) for other in sorted(others)]
        if not questions:
            return []
        answers = self.repair([self.only(c, [a, b]) for c, a, b in questions]
                              + [self.only(c, [b]) for c, _, b in questions], keep_lines=True)
        pair_results, other_alone = answers[:len(questions)], answers[len(questions):]
        out = []
        for (claim, a, b), joint, single in zip(questions, pair_results, other_alone):
            if joint is not None and joint.status == "unfixable" and single is not None \
                    and single.status in ("fixed", "clean", "actions_only"):
                out.append((claim, a, b))
        return out

    def still(self, claims: list[dict[str, Any]], a: str, b: str, allowed: set[str]) -> list[bool]:
        """For each claim: are a and b still a contradiction on it, with findings only of the
        rules in ``allowed`` (a smaller witness must not be a noisier one)?"""
        whole = self.repair(claims)
        n = len(claims)
        answers = self.repair([self.only(c, keep) for keep in ([a, b], [a], [b]) for c in claims],
                              keep_lines=True)
        joint, first, second = answers[:n], answers[n:2 * n], answers[2 * n:]
        fine = ("fixed", "clean", "actions_only")
        return [w is not None and w.status == "unfixable" and {f.rule for f in w.before} <= allowed
                and j is not None and j.status == "unfixable"
                and x is not None and x.status in fine and y is not None and y.status in fine
                for w, j, x, y in zip(whole, joint, first, second)]


def _reductions(claim: dict[str, Any]) -> list[dict[str, Any]]:
    """Claims one step smaller than ``claim``: a line, a modifier, a history entry or a chart
    fact fewer."""
    out = []
    lines = claim["lines"]
    for i in range(len(lines)):
        if len(lines) > 1:
            out.append({**claim, "lines": lines[:i] + lines[i + 1:]})
    for i, line in enumerate(lines):
        for m in line.get("modifiers", []):
            smaller = {**line, "modifiers": [x for x in line["modifiers"] if x != m]}
            out.append({**claim, "lines": lines[:i] + [smaller] + lines[i + 1:]})
        if line.get("units", 1) > 1:
            out.append({**claim, "lines": lines[:i] + [{**line, "units": 1}] + lines[i + 1:]})
        for key in list(line.get("documented", {})):
            doc = {k: v for k, v in line["documented"].items() if k != key}
            out.append({**claim, "lines": lines[:i] + [{**line, "documented": doc}] + lines[i + 1:]})
    history = claim.get("history") or []
    for i in range(len(history)):
        smaller = {**claim, "history": history[:i] + history[i + 1:]}
        if not smaller["history"]:
            del smaller["history"]
        out.append(smaller)
    for key in list(claim.get("clinical") or {}):
        clinical = {k: v for k, v in claim["clinical"].items() if k != key}
        smaller = {**claim, "clinical": clinical}
        if not clinical:
            del smaller["clinical"]
        out.append(smaller)
    return out


def _shrink(search: _Contradictions, claim: dict[str, Any], a: str, b: str, rounds: int = 40) -> dict[str, Any]:
    """Greedily remove parts of ``claim`` while a and b still contradict on it and no finding
    of another rule appears."""
    first = search.repair([claim])[0]
    allowed = {f.rule for f in first.before} | {a, b} if first is not None else {a, b}
    for _ in range(rounds):
        smaller = _reductions(claim)
        if not smaller:
            break
        keep = search.still(smaller, a, b, allowed)
        if not any(keep):
            break
        claim = smaller[keep.index(True)]
    return claim


def _write_case(out_dir: Path, claim: dict[str, Any], a: str, b: str, kb: Path,
                payer_dirs: list[str]) -> Path:
    from ..engine import Checker, CheckOptions
    from ..inputs.records import validate_claim
    from .rules import case_yaml

    checker = Checker(CheckOptions(payer_dirs=payer_dirs, kb_dir=str(kb)))
    record = validate_claim(claim, "kb check", 1, checker.known_payers())
    result = next(checker.check([record]))
    expect = [{"rule": f.rule, "severity": f.severity, "lines": f.lines} for f in result.findings]
    fired = {f.rule for f in result.findings}
    if a not in fired and b in fired:
        a, b = b, a  # the case lives in the folder of a rule it fires
    folder = out_dir / a
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"fire_kbcheck_contradicts_{b.replace('-', '_')}.yaml"
    description = (f"pain-asp kb check: a contradiction between {a} and {b} on this claim "
                   f"(payer {claim['payer']}). Each rule alone can be cleared by an edit of the "
                   "claim, but no edit clears both (pain-asp fix reports it unfixable). expect "
                   "lists the findings the knowledge base gives today; resolve the contradiction "
                   "in the rules, then set expect to what the rules should find.")
    text = case_yaml(description, claim, expect)
    if payer_dirs:
        text = "payer_dirs: " + json.dumps([str(Path(d).resolve()) for d in payer_dirs]) + "\n" + text
    path.write_text(text, encoding="utf-8")
    return path


def _contradictions(kb: Path, place: Any, payer_ids: list[str], payer_dirs: list[str], budget: int,
                    seed: int, out_dir: Path, stats: dict[str, Any],
                    only_codes: set[str] | None = None) -> list[Issue]:
    from ..kb import code_catalog, rule_catalog
    from ..payers import load_registry

    rules = rule_catalog(str(kb))
    registry = load_registry(payer_dirs, set(rules), str(kb))
    codes = {c: info for c, info in code_catalog(str(kb)).items() if not only_codes or c in only_codes}
    primaries = addon_primaries(kb)
    batch = _Batch()
    exhaustive = 0
    for payer_id in payer_ids:
        claims = exhaustive_claims(registry.get(payer_id), codes, primaries)
        exhaustive += len(claims)
        for claim in claims:
            batch.add("exhaustive", [claim])
    drawn = hypothesis_claims(payer_ids, sorted(codes), budget, seed)
    for claim in drawn:
        batch.add("hypothesis", [claim])
    cases = 0
    for name, claims, dirs, ncci in _case_claims(place):
        if dirs or ncci or not all(isinstance(c, dict) and c.get("payer") in payer_ids for c in claims):
            continue
        billed = {str(line.get("code")) for c in claims for line in c.get("lines") or [] if isinstance(line, dict)}
        if only_codes and not billed <= only_codes:
            continue
        batch.add(name, claims)
        cases += len(claims)
    checked = batch.check(kb, payer_dirs)
    stats["contradiction_claims"] = (f"{exhaustive} exhaustive (each code x {len(CONTRADICTION_MODIFIER_SETS)} "
                                     f"modifier sets, and as bilateral halves), {len(drawn)} Hypothesis, "
                                     f"{cases} from cases")
    candidates_raw = [(raw, result) for _, raw, result, _ in checked if _correctable_denials(result)]
    with tempfile.TemporaryDirectory(prefix="pain-asp-kbcheck-") as tmp:
        search = _Contradictions(kb, payer_dirs, Path(tmp))
        fixed = search.repair([raw for raw, _ in candidates_raw])
        unfixable = [(raw, {f.rule for f in res.remaining})
                     for (raw, _), res in zip(candidates_raw, fixed)
                     if res is not None and res.status == "unfixable"]
        stats["repaired"] = f"{len(candidates_raw)} claims with correctable denials, {len(unfixable)} unfixable"
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for claim, a, b in search.pairs(unfixable):
            key = tuple(sorted((a, b)))
            size = len(json.dumps(claim))
            if key not in found or size < len(json.dumps(found[key][0])):
                found[key] = (claim, a, b)  # type: ignore[assignment]
        issues = []
        for (first, second), (claim, a, b) in sorted(found.items()):  # type: ignore[misc]
            small = _shrink(search, claim, a, b)
            small = {**small, "claim_id": f"KBCHECK-{first}-{second}"[:60], "patient": {"id": "P-KBCHECK"}}
            path = _write_case(out_dir, small, a, b, kb, payer_dirs)
            issues.append(Issue("contradictions", "error", f"rules {a} and {b}",
                                f"contradict each other for payer {claim['payer']}: each alone can be "
                                "cleared by an edit of the claim, no edit clears both",
                                _rule_where(kb, a), str(path)))
    return issues


# --- kb check --------------------------------------------------------------------------------

def check_kb(place: Any, payer_ids: list[str] | None = None, budget: int = 200, seed: int = 0,
             out_dir: Path | None = None, payer_dirs: list[str] | None = None,
             checks: Iterable[str] = CHECKS, codes: Iterable[str] | None = None) -> CheckReport:
    """Run the checks of the module docstring on the knowledge base of ``place``.

    ``codes`` narrows the contradiction search (exhaustive, Hypothesis and case claims) to
    claims billing only these codes; the other checks always cover the whole catalog.
    """
    from ..kb import code_catalog, rule_catalog
    from ..payers import load_registry

    kb = place.kb
    dirs = list(payer_dirs or [])
    registry = load_registry(dirs, set(rule_catalog(str(kb))), str(kb))
    scope = list(payer_ids or registry.ids())
    for payer_id in scope:
        if payer_id not in registry.ids():
            raise PainAspError(f"--payer {payer_id}: not a payer id ({', '.join(registry.ids())})")
    wanted = list(checks)
    for name in wanted:
        if name not in CHECKS:
            raise PainAspError(f"--only {name}: expected one of {', '.join(CHECKS)}")
    report = CheckReport(stats={"payers": ", ".join(scope)})
    started = time.monotonic()
    if "payers" in wanted:
        report.issues += payer_problems(kb, scope, dirs)
    if "never-fire" in wanted:
        report.issues += _never_fire(kb, place, scope, dirs, budget, seed, report.stats)
    if "contradictions" in wanted:
        target = out_dir or Path("kbcheck-cases")
        only = {c.strip().upper() for c in codes or [] if c.strip()}
        unknown = sorted(only - set(code_catalog(str(kb))))
        if unknown:
            raise PainAspError(f"--codes: not in the catalog: {', '.join(unknown)}")
        report.issues += _contradictions(kb, place, scope, dirs, budget, seed, target, report.stats,
                                         only or None)
    report.stats["seconds"] = round(time.monotonic() - started, 1)
    order = {level: n for n, level in enumerate(_LEVELS)}
    report.issues.sort(key=lambda i: (order[i.level], i.check, i.subject))
    return report


# --- kb diff ---------------------------------------------------------------------------------

@dataclass
class KbVersion:
    """One version of the rules: its kb folder, the payer folder that goes with it, a label."""

    kb: Path
    payers: Path | None
    label: str


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False,
                          text=not binary)


def resolve_kb(spec: str, workdir: Path, repo: Path | None = None) -> KbVersion:
    """A folder (a kb folder, or a checkout holding kb/) or a git revision of ``repo``
    (exported into ``workdir``)."""
    import io
    import tarfile

    path = Path(spec)
    if path.is_dir():
        if (path / "check.lp").is_file():
            payers = path.parent / "payers"
            return KbVersion(path.resolve(), payers.resolve() if payers.is_dir() else None, str(path))
        if (path / "kb" / "check.lp").is_file():
            payers = path / "payers"
            return KbVersion((path / "kb").resolve(), payers.resolve() if payers.is_dir() else None, str(path))
        raise PainAspError(f"{spec}: a folder without check.lp or kb/check.lp")
    where = repo or Path.cwd()
    top = _git(where, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise PainAspError(f"{spec}: neither a knowledge-base folder nor a git revision (no git repository at {where})")
    root = Path(top.stdout.strip())
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    if commit.returncode != 0:
        raise PainAspError(f"{spec}: neither a knowledge-base folder nor a git revision of {root}")
    sha = commit.stdout.strip()
    names = _git(root, "ls-tree", "--name-only", sha).stdout.split()
    if "kb" not in names:
        raise PainAspError(f"{spec}: revision {sha[:10]} has no kb/ folder")
    wanted = ["kb"] + (["payers"] if "payers" in names else [])
    archive = _git(root, "archive", "--format=tar", sha, *wanted, binary=True)
    if archive.returncode != 0:
        raise PainAspError(f"{spec}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    target = workdir / sha[:12]
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        members = [m for m in tar.getmembers() if not (m.name.startswith("/") or ".." in Path(m.name).parts)]
        tar.extractall(target, members=members)  # noqa: S202 - names checked above
    old_entry = target / "kb" / "main.lp"  # revisions before the entry points were named by mode
    if old_entry.is_file() and not (target / "kb" / "check.lp").exists():
        (target / "kb" / "check.lp").write_text('#include "main.lp".\n', encoding="utf-8")
    payers = target / "payers"
    return KbVersion(target / "kb", payers if payers.is_dir() else None, f"{spec} ({sha[:10]})")


@dataclass
class DiffReport:
    """Findings that appear or disappear between two versions of the rules."""

    old: str
    new: str
    claims: int
    changes: list[dict[str, Any]]

    @property
    def appeared(self) -> int:
        """Findings only the new rules give."""
        return sum(len(c["appeared"]) for c in self.changes)

    @property
    def disappeared(self) -> int:
        """Findings only the old rules give."""
        return sum(len(c["disappeared"]) for c in self.changes)

    def by_rule(self) -> dict[str, list[int]]:
        """Per rule: [appeared, disappeared]."""
        out: dict[str, list[int]] = {}
        for change in self.changes:
            for f in change["appeared"]:
                out.setdefault(f["rule"], [0, 0])[0] += 1
            for f in change["disappeared"]:
                out.setdefault(f["rule"], [0, 0])[1] += 1
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"old": self.old, "new": self.new, "claims": self.claims,
                "appeared": self.appeared, "disappeared": self.disappeared,
                "by_rule": {r: {"appeared": a, "disappeared": d} for r, (a, d) in self.by_rule().items()},
                "changes": self.changes}

    def text(self) -> str:
        """For people: per changed claim, + for a finding that appears, - for one that goes."""
        out = [f"kb diff: {self.old} -> {self.new}",
               f"{self.claims} claim(s) checked; {len(self.changes)} changed; "
               f"{self.appeared} finding(s) appear, {self.disappeared} disappear"]
        for change in self.changes:
            out.append(f"  {change['file']} #{change['position']} claim {change['claim_id']} "
                       f"({change['payer']})")
            for sign, key in (("-", "disappeared"), ("+", "appeared")):
                for f in change[key]:
                    out.append(f"    {sign} {f['severity']:<6} {f['rule']}  lines {f['lines']}  {f['message']}")
            for e in change.get("errors", []):
                out.append(f"    ! {e}")
        if self.changes:
            out.append("by rule: " + "; ".join(f"{r} +{a} -{d}" for r, (a, d) in self.by_rule().items()))
        return "\n".join(out) + "\n"


def _corpus(paths: list[Path]) -> tuple[list[Path], list[tuple[str, list[dict[str, Any]], list[str], str | None]]]:
    """Split CLAIMS into claim files/folders and case files (fire_/pass_ YAML) with their claims."""
    from ..inputs.yamlsafe import YAMLError
    from .casefiles import find_cases, load_case

    plain: list[Path] = []
    cases = []
    for path in paths:
        if not path.exists():
            raise PainAspError(f"{path}: no such file or folder")
        found = find_cases(path) if path.is_dir() else (
            [path] if path.suffix in (".yaml", ".yml") and path.stem.startswith(("fire_", "pass_")) else [])
        if not found:
            plain.append(path)
            continue
        for case_path in found:
            try:
                case = load_case(case_path)
            except (ValueError, TypeError, AttributeError, KeyError, OSError, YAMLError) as exc:
                raise PainAspError(f"{case_path}: does not load: {' '.join(str(exc).split())}") from None
            cases.append((str(case_path), case.claims, case.payer_dirs, case.ncci))
    return plain, cases


def _findings_by_claim(version: KbVersion, plain: list[Path], cases: list[Any],
                       payer_dirs: list[str]) -> dict[tuple[str, int], dict[str, Any]]:
    from ..engine import Checker, CheckOptions
    from ..history import batch_history
    from ..inputs.readers import read_claims

    dirs = ([str(version.payers)] if version.payers else []) + payer_dirs
    out: dict[tuple[str, int], dict[str, Any]] = {}

    def record(result: Any) -> None:
        out[(result.file, result.position)] = {
            "claim_id": result.claim_id, "payer": result.payer,
            "errors": [e.get("message", str(e)) for e in result.errors],
            "findings": {(f.rule, f.severity, tuple(f.lines), f.message) for f in result.findings}}

    if plain:
        checker = Checker(CheckOptions(payer_dirs=dirs, kb_dir=str(version.kb)))
        records = list(read_claims(plain, checker.known_payers()))
        provider = batch_history([r.claim for r in records if r.claim is not None])
        for result in checker.check(records, history=provider):
            record(result)
    batch = _Batch()
    for name, claims, case_dirs, ncci in cases:
        batch.add(name, claims, case_dirs, ncci)
    for name, raw, result, _ in batch.check(version.kb, dirs):
        record(result)
    return out


def diff_kbs(old: KbVersion, new: KbVersion, paths: list[Path],
             payer_dirs: list[str] | None = None) -> DiffReport:
    """Check the corpus with both versions and compare the findings claim by claim."""
    plain, cases = _corpus(paths)
    before = _findings_by_claim(old, plain, cases, payer_dirs or [])
    after = _findings_by_claim(new, plain, cases, payer_dirs or [])
    changes = []

    def shown(items: set[tuple[str, str, tuple[int, ...], str]]) -> list[dict[str, Any]]:
        return [{"rule": r, "severity": s, "lines": list(ln), "message": m} for r, s, ln, m in sorted(items)]

    for key in sorted(set(before) | set(after), key=lambda k: (k[0], k[1])):
        a = before.get(key, {"findings": set(), "errors": [], "claim_id": None, "payer": None})
        b = after.get(key, {"findings": set(), "errors": [], "claim_id": None, "payer": None})
        gone, came = a["findings"] - b["findings"], b["findings"] - a["findings"]
        errors = []
        if a["errors"] != b["errors"]:
            errors = [f"old: {e}" for e in a["errors"]] + [f"new: {e}" for e in b["errors"]]
        if gone or came or errors:
            changes.append({"file": key[0], "position": key[1],
                            "claim_id": b["claim_id"] or a["claim_id"], "payer": b["payer"] or a["payer"],
                            "appeared": shown(came), "disappeared": shown(gone), "errors": errors})
    return DiffReport(old.label, new.label, len(set(before) | set(after)), changes)
