"""The parameters a payer file may set, and how each becomes ASP facts.

Each parameter has a kind that says what its value looks like in YAML and how it is
written as ``payer_param(Payer, Name, Value, From, To)`` facts. Rules in ``kb/`` read the
parameters through ``param/4`` (kb/payer.lp). Adding a parameter means adding it here, in
the rule that reads it (with a ``rule_reads`` fact), and in docs/payers.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .tokens import CODE_RE, normalise_dx

__all__ = ["ParamSpec", "PARAMETERS", "SEVERITIES", "encode_value", "value_text"]

SEVERITIES = ("deny", "review", "warn", "info")
_CONST_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ParamSpec:
    """What a parameter holds.

    kind:
      ``int``       a whole number;
      ``choice``    one of ``choices``;
      ``list``      a list of items of ``item`` type (one fact per item);
      ``record``    a mapping with exactly ``fields`` (one tuple fact, fields in order);
      ``records``   a list of such mappings (one tuple fact each);
      ``mapping``   key -> list of items (one (key, item) fact per item).
    Item and field types: ``family`` (a catalog family), ``code`` (CPT/HCPCS), ``dx``
    (ICD-10-CM code or family), ``int``, ``pos`` (place of service), ``choice:a|b``.
    """

    kind: str
    help: str
    item: str = "family"
    choices: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    key: str = "family"
    default: str | None = None   # what the rules do when a payer does not set it


# --- parameters read by the coding rules -------------------------------------------------
_CODING: dict[str, ParamSpec] = {
    "laterality_required": ParamSpec(
        "list", "Families whose lines must carry RT, LT or 50 (else laterality-missing is deny).",
        item="family",
    ),
    "dx_coverage": ParamSpec(
        "mapping",
        "Per procedure family (or code): the ICD-10-CM families or codes that support it.",
        key="family_or_code", item="dx",
    ),
}

# --- sessions, frequency, prerequisites and global periods (kb/rules/payer/*sessions*, rfa*) --
_SESSIONS: dict[str, ParamSpec] = {
    "esi_frequency": ParamSpec(
        "record",
        "ESI sessions (distinct dates) allowed per spinal region within a rolling window of "
        "window_months calendar months ending on the date of service (from the same date "
        "window_months earlier, which still counts; kb/windows.lp).",
        fields=(("max_sessions", "int"), ("window_months", "int")),
    ),
    "esi_min_interval_days": ParamSpec(
        "int", "Minimum days between two ESI sessions in the same spinal region.",
    ),
    "esi_levels_per_session": ParamSpec(
        "record",
        "ESI levels allowed in one session and region: transforaminal (primary + add-on units, "
        "a bilateral level once) and interlaminar/caudal.",
        fields=(("transforaminal", "int"), ("interlaminar", "int")),
    ),
    "esi_regions_per_session": ParamSpec(
        "int", "Spinal regions (cervical_thoracic, lumbar_sacral) allowed to receive ESI on one date.",
    ),
    "facet_levels_per_session": ParamSpec(
        "int", "Facet levels (joints; a bilateral level once) allowed per session, for injections and for RFA.",
    ),
    "facet_appeal_only_codes": ParamSpec(
        "list", "Facet codes paid only on appeal: billing one is over the per-session level limit.",
        item="code",
    ),
    "facet_thoracolumbar_junction": ParamSpec(
        "choice",
        "How contiguous T12-L1 and L1-L2 facet interventions of one session are billed and "
        "counted: lumbar_session (64490 + 64494 or 64633 + 64636, one lumbar region and one "
        "lumbar session, as several MAC billing articles instruct) or cpt_regions (each code "
        "keeps its CPT region; the default) (kb/rules/payer/facet_sessions.lp).",
        choices=("lumbar_session", "cpt_regions"),
    ),
    "facet_frequency": ParamSpec(
        "records",
        "Facet sessions allowed per region within a rolling window of window_months calendar "
        "months (as esi_frequency), per kind: diagnostic injections (purpose diagnostic or KX), "
        "therapeutic injections, radiofrequency ablation.",
        fields=(("kind", "choice:diagnostic|therapeutic|rfa"), ("max_sessions", "int"),
                ("window_months", "int")),
    ),
    "rfa_prerequisite": ParamSpec(
        "record",
        "Diagnostic facet blocks required in the region before a first facet RFA: how many, the "
        "least relief each must give, and whether they must be on separate dates.",
        fields=(("blocks", "int"), ("min_relief_pct", "int"),
                ("separate_dates", "choice:required|not_required")),
    ),
    "rfa_repeat": ParamSpec(
        "record",
        "Before a repeat facet RFA in a region: relief (percent) the last RFA must have given and "
        "for how many months.",
        fields=(("min_relief_pct", "int"), ("min_months", "int")),
    ),
}

# --- claim-level payer policy: formats, modifiers, authorization, coverage, documentation ----
_CLAIM_POLICY: dict[str, ParamSpec] = {
    "bilateral_format": ParamSpec(
        "records",
        "How a procedure done on both sides is reported, per place of service: single_line_50 "
        "(one line, modifier 50, 1 unit), two_lines_rt_lt (one line RT and one line LT) or "
        "line_plus_50 (a line without modifier plus the same code with 50). pos 0 is the default "
        "for every place of service not listed (kb/rules/payer/bilateral_format.lp).",
        fields=(("pos", "pos"), ("format", "choice:single_line_50|two_lines_rt_lt|line_plus_50")),
    ),
    "distinct_modifiers": ParamSpec(
        "choice",
        "Which distinct-procedure modifiers the payer takes: x_required (XE/XS/XP/XU; 59 is "
        "denied), x_preferred (59 is accepted with a warning), only_59 (X-modifiers are denied), "
        "either (kb/rules/payer/distinct_modifiers.lp).",
        choices=("x_required", "x_preferred", "only_59", "either"),
    ),
    "kx_families": ParamSpec(
        "list",
        "Families whose diagnostic injections must carry KX (kb/rules/payer/kx.lp). Empty: the "
        "payer does not use KX for these services.",
        item="family",
    ),
    "conservative_care": ParamSpec(
        "records",
        "Per family: the weeks of failed conservative care and the months of pain the chart must "
        "document before the procedure; 0 means no requirement "
        "(kb/rules/payer/conservative_care.lp).",
        fields=(("family", "family"), ("min_weeks", "int"), ("min_pain_months", "int")),
    ),
    "imaging_required": ParamSpec(
        "mapping",
        "Per family: the image-guidance modalities the payer accepts in the chart for codes whose "
        "descriptor includes imaging (kb/rules/payer/documentation.lp).",
        key="family", item="choice:fluoroscopy|ct|ultrasound",
    ),
    "prior_auth": ParamSpec(
        "records",
        "Codes that need prior authorization, per place of service (pos 0: any place of "
        "service); certainty unverified gives a review finding instead of a denial; "
        "requested_by says who requests it: practitioner (the professional claim needs the "
        "number) or facility (the hospital requests it, the professional claim is denied only "
        "when the request was not affirmed) (kb/rules/payer/prior_auth.lp). Use `since` for "
        "the start date.",
        fields=(("code", "code"), ("pos", "pos"), ("certainty", "choice:required|unverified"),
                ("requested_by", "choice:practitioner|facility")),
    ),
    "not_covered": ParamSpec(
        "list", "Codes the payer does not cover (kb/rules/payer/coverage.lp).", item="code",
    ),
    "clinical_study_codes": ParamSpec(
        "list", "Codes the payer covers only in an approved clinical study: Q0, Z00.6 and the "
        "study's NCT number (kb/rules/payer/clinical_study.lp).", item="code",
    ),
    "wastage_modifier_codes": ParamSpec(
        "list", "Single-dose drug codes whose lines must carry JW (discarded amount) or JZ "
        "(nothing discarded) (kb/rules/payer/drugs.lp). Use `since` for the start date.",
        item="code",
    ),
    "drug_line_required": ParamSpec(
        "mapping", "Per injection code: the drug codes one of which must be billed on the same "
        "date in the office (kb/rules/payer/drugs.lp).", key="code", item="code",
    ),
    "history_counts": ParamSpec(
        "choice",
        "Which of the patient's earlier services the history rules count (sessions per window, "
        "intervals, diagnostic blocks before RFA, global periods): billed (every service billed, "
        "whatever the payer did) or paid (a service the payer denied, as recorded from its 835 by "
        "history add --remit, does not count). Reversed and voided services never count "
        "(kb/history.lp).",
        choices=("billed", "paid"), default="billed",
    ),
    "care_overlap_severity": ParamSpec(
        "choice",
        "Chronic pain management (G3002/G3003) in the same calendar month as CCM, PCM, RPM or "
        "BHI: deny, or warn that time must not be counted twice "
        "(kb/rules/chronic_pain/care_overlap.lp).",
        choices=("deny", "warn"),
    ),
}

PARAMETERS: dict[str, ParamSpec] = {**_CODING, **_SESSIONS, **_CLAIM_POLICY}


def lookup_key(spec: ParamSpec) -> str | None:
    """How rules look a set-valued parameter up: by the line's ``family``, ``code`` or either.

    Such parameters become ``payer_keyed(Payer, Name, Key, Value, From, To)`` facts as well,
    so kb/payer.lp joins each line only with the entries for its own family or code instead of
    copying every entry onto every line (grounding cost, SPEC §12). None: looked up as a whole.
    """
    keyed = ("family", "code", "family_or_code")
    if spec.kind == "list" and spec.item in keyed:
        return spec.item
    if spec.kind == "mapping" and spec.key in keyed:
        return spec.key
    if spec.kind == "records" and spec.fields and spec.fields[0][1] in keyed:
        return spec.fields[0][1]
    return None


def encode_value(kind: str, value: object) -> str:
    """Write one validated item as an ASP term, or raise ValueError saying what is expected."""
    if kind.startswith("choice:"):
        options = kind.split(":", 1)[1].split("|")
        if value not in options:
            raise ValueError("one of " + ", ".join(options))
        return str(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("a whole number")
        return str(value)
    if kind == "family":
        if not isinstance(value, str) or not _CONST_RE.match(value):
            raise ValueError("a code family name such as esi_transforaminal")
        return value
    if kind == "code":
        text = str(value).upper() if isinstance(value, (str, int)) else ""
        if not CODE_RE.match(text):
            raise ValueError("a CPT or HCPCS code")
        return f'"{text}"'
    if kind == "family_or_code":
        if isinstance(value, (str, int)) and CODE_RE.match(str(value).upper()):
            return f'"{str(value).upper()}"'
        return encode_value("family", value)
    if kind == "dx":
        if isinstance(value, str) and _CONST_RE.match(value):
            return value
        code = normalise_dx(value) if isinstance(value, str) else None
        if code is None:
            raise ValueError("an ICD-10-CM code or a diagnosis family such as radiculopathy")
        return f'"{code}"'
    if kind == "pos":
        text = str(value).zfill(2) if isinstance(value, (str, int)) else ""
        if not (text.isascii() and text.isdigit() and len(text) == 2):
            raise ValueError("a two-digit place-of-service code")
        return str(int(text))
    raise ValueError(f"unknown item kind {kind}")


def value_text(spec: ParamSpec, value: Any) -> str:
    """A payer parameter value (as ASP terms) written back in the YAML shape it came from."""
    def term(text: str) -> str:
        return text.strip().strip('"')

    def record(text: str) -> str:
        parts = [term(p) for p in text.strip()[1:-1].split(",")]
        return "{" + ", ".join(f"{name}: {part}" for (name, _), part in zip(spec.fields, parts)) + "}"

    if spec.kind in ("int", "choice"):
        return term(str(value))
    if spec.kind == "list":
        return "[" + ", ".join(term(v) for v in value) + "]"
    if spec.kind == "record":
        return record(value)
    if spec.kind == "records":
        return "[" + ", ".join(record(v) for v in value) + "]"
    if spec.kind == "mapping":
        grouped: dict[str, list[str]] = {}
        for pair in value:
            key, item = pair.strip()[1:-1].split(",", 1)
            grouped.setdefault(term(key), []).append(term(item))
        return "{" + "; ".join(f"{k}: [{', '.join(v)}]" for k, v in grouped.items()) + "}"
    return str(value)
