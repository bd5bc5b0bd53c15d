"""The parameters a payer file may set, and how each becomes ASP facts.

Each parameter has a kind that says what its value looks like in YAML and how it is
written as ``payer_param(Payer, Name, Value, From, To)`` facts. Rules in ``kb/`` read the
parameters through ``param/4`` (kb/payer.lp). Adding a parameter means adding it here, in
the rule that reads it (with a ``rule_reads`` fact), and in docs/payers.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .tokens import CODE_RE, normalise_dx

__all__ = ["ParamSpec", "PARAMETERS", "SEVERITIES", "encode_value"]

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
}

# --- claim-level payer policy: formats, modifiers, authorization, coverage, documentation ----
_CLAIM_POLICY: dict[str, ParamSpec] = {
}

PARAMETERS: dict[str, ParamSpec] = {**_CODING, **_SESSIONS, **_CLAIM_POLICY}


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
