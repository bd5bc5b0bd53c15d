"""Hypothesis strategies for claims, built on the vocabulary of :mod:`pain_asp.bench.generate`.

``claims()`` draws valid claims (docs/claim-format.md raw dicts with ISO dates) that reuse a small pool
of codes and dates per claim, so that the pairwise rules (add-on and primary, imaging with
the procedure, E/M on the day of a procedure, duplicates, NCCI pairs, sessions and
frequencies against history) get something to bite on. ``generated_claims()`` draws from the
realistic generator by seed, and ``valid_claims()`` mixes the two.

``hostile_text()`` draws strings built to break a naive translation to ASP (quotes, ``).``,
``#include``, ``#script``, newlines, NUL, non-ASCII, very long strings), and
``hostile_token()`` draws such strings that can never pass a strict field (code, modifier,
diagnosis, side).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from pain_asp.bench import generate as g
from pain_asp.tokens import nerve_token

__all__ = [
    "CODES", "DIAGNOSES", "MODIFIERS", "claims", "documentation", "generated_claims",
    "hostile_text", "hostile_token", "muscle_key", "nerve_key", "unknown_nerve", "valid_claims",
]

# The generator's vocabulary plus a few catalog codes and modifiers it does not use (deleted,
# non-covered, ultrasound facet, care management, home visits, preventive), so that the
# properties also see the corners of the catalog.
CODES = g.ALL_CODES + ("62320", "62322", "0216T", "0217T", "64625", "64418", "64470", "G0260",
                       "99490", "99341", "G0439", "63650")
MODIFIERS = g.MODIFIERS + ("51", "76", "77", "24", "52", "XE", "XU", "XP")
DIAGNOSES = g.BILLABLE_DIAGNOSES + g.INVALID_DIAGNOSES
LEVELS = tuple(sorted({lv for pool in g.LEVELS.values() for lv in pool} | {"T12-L1", "C2-C3"}))

_FIRST = dt.date(2019, 6, 1)
_LAST = dt.date(2026, 12, 31)


def _iso(day: dt.date) -> str:
    return day.isoformat()


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


@st.composite
def documentation(draw: st.DrawFn) -> dict[str, Any]:
    """Chart facts for a line: every field may be absent (unknown)."""
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy)

    return _drop_none({
        "imaging": maybe(st.sampled_from(("fluoroscopy", "ct", "ultrasound", "none"))),
        "images_recorded": maybe(st.booleans()),
        "side": maybe(st.sampled_from(("left", "right", "bilateral"))),
        "purpose": maybe(st.sampled_from(("diagnostic", "therapeutic"))),
        "relief_pct": maybe(st.sampled_from((0, 40, 49, 50, 51, 79, 80, 81, 100))),
        "relief_duration_months": maybe(st.integers(0, 14)),
        "levels": maybe(st.lists(st.sampled_from(LEVELS), min_size=1, max_size=3, unique=True)),
        "nerves": maybe(st.lists(st.sampled_from(g.NERVES), min_size=1, max_size=4, unique=True)),
        "muscles": maybe(st.lists(st.sampled_from(g.MUSCLES), min_size=1, max_size=5, unique=True)),
        "distinct": maybe(st.sampled_from(("separate_structure", "separate_encounter",
                                           "separate_practitioner", "unusual"))),
        "global_relation": maybe(st.sampled_from(("staged", "complication", "unrelated"))),
    })


@st.composite
def _clinical(draw: st.DrawFn) -> dict[str, Any]:
    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy)

    return _drop_none({
        "pain_duration_months": maybe(st.sampled_from((0, 2, 3, 4, 6, 24))),
        "conservative_care_weeks": maybe(st.sampled_from((0, 3, 4, 5, 12, 26))),
        "conservative_care": maybe(st.lists(st.sampled_from(g.CONSERVATIVE_CARE), max_size=3,
                                            unique=True)),
        "em_separate_problem": maybe(st.booleans()),
        "em_decision_for_surgery": maybe(st.booleans()),
        "em_unrelated_to_surgery": maybe(st.booleans()),
        "cpm_minutes": maybe(st.sampled_from((0, 29, 30, 44, 45, 60, 75))),
        "care_plan": maybe(st.booleans()),
    })


@st.composite
def claims(draw: st.DrawFn, claim_id: str | None = None,
           patient_id: str | None = None) -> dict[str, Any]:
    """A valid claim of 1-6 lines that reuses a few codes and dates."""
    diagnoses = draw(st.lists(st.sampled_from(DIAGNOSES), max_size=5, unique=True))
    base = draw(st.dates(_FIRST, _LAST))
    days = [base] + [base + dt.timedelta(days=draw(st.integers(1, 40)))
                     for _ in range(draw(st.integers(0, 2)))]
    pool = draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=4, unique=True))
    pointers = st.lists(st.integers(1, len(diagnoses)), max_size=min(4, len(diagnoses)),
                        unique=True) if diagnoses else st.just([])
    lines = []
    for _ in range(draw(st.integers(1, g.MAX_GENERATED_LINES))):
        line: dict[str, Any] = {
            "code": draw(st.sampled_from(pool)),
            "modifiers": draw(st.lists(st.sampled_from(MODIFIERS), max_size=3, unique=True)),
            "units": draw(st.sampled_from((1, 1, 1, 2, 3))),
            "date": _iso(draw(st.sampled_from(days))),
            "dx": draw(pointers),
        }
        if draw(st.booleans()):
            line["charge"] = draw(st.sampled_from((0, 95.5, 850, 1234.56)))
        if draw(st.integers(0, 3)):
            line["documented"] = draw(documentation())
        lines.append(line)
    history = []
    for _ in range(draw(st.integers(0, 4))):
        entry = {
            "date": _iso(base - dt.timedelta(days=draw(st.integers(1, 420)))),
            "code": draw(st.sampled_from(tuple(pool) + g.ESI_CODES + g.FACET_CODES + g.RFA_CODES)),
            "modifiers": draw(st.lists(st.sampled_from(("50", "RT", "LT", "KX")), max_size=2,
                                       unique=True)),
        }
        doc = draw(documentation())
        for key in ("purpose", "relief_pct", "relief_duration_months", "side", "levels"):
            if key in doc:
                entry[key] = doc[key]
        history.append(entry)
    claim: dict[str, Any] = {
        "claim_id": claim_id or f"H-{draw(st.integers(1, 9999))}",
        "payer": draw(st.sampled_from(g.PAYERS)),
        "place_of_service": draw(st.sampled_from(g.PLACES_OF_SERVICE)),
        "patient": {"id": patient_id or f"P-{draw(st.integers(1, 99))}"},
        "diagnoses": diagnoses,
        "lines": lines,
    }
    if draw(st.booleans()):
        claim["prior_authorization"] = "PA-1001"
    if draw(st.booleans()):
        claim["clinical"] = draw(_clinical())
    if history:
        claim["history"] = history
    return claim


def generated_claims() -> st.SearchStrategy[dict[str, Any]]:
    """One claim of the realistic generator, by seed (shrinks towards seed 0)."""
    return st.integers(0, 2**32 - 1).map(lambda seed: next(g.generate_claims(1, seed)))


def valid_claims() -> st.SearchStrategy[dict[str, Any]]:
    """Random claims and realistic generated ones."""
    return claims() | generated_claims()


# --- hostile strings ------------------------------------------------------------------------

_PIECES = (
    '"', "'", ").", '").', "#include \"x\".", "#script (python) import os; os._exit(3) #end.",
    "#show.", ":- claim(K).", "%", "%*", "*%", "\\", "{line}", "{0}", "}", "\n", "\r\n", "\t",
    "\x00", "é", "名前", "🦴", "\u202e", "\u2028", "claim(0).", "finding(0,\"x\",1,(),deny).",
)


def hostile_text(min_nonspace: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Strings made of pieces that would break ASP source, with random text between them.

    ``min_nonspace``: at least that many characters that are not whitespace (a value that
    must stay present after the models strip whitespace). ``max_size``: the field's length
    limit (ids: models.MAX_ID_LENGTH); long strings are cut to it.
    """
    piece = st.sampled_from(_PIECES) | st.text(max_size=6)
    short = st.lists(piece, min_size=1, max_size=6).map("".join)
    long = st.tuples(short, st.integers(200, 2000)).map(lambda pair: (pair[0] or "#") * pair[1])
    text = short | long
    if max_size is not None:
        text = text.map(lambda s: s[:max_size])
    if min_nonspace:
        text = text.filter(lambda s: len("".join(s.split())) >= min_nonspace)
    return text


# Pieces that keep a strict field invalid wherever they are: each holds a character that no
# code, modifier, diagnosis or side pattern accepts, even after upper-casing.
_STRICT_BREAKERS = ('"', ").", '#include "x".', "#script (python)", "a\nb", "é", "名", "🦴",
                    "\u202e", "\x00", "(", "'", "%", ":-", "\\")


def hostile_token(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid token (code, modifier, ...) with something hostile inserted into it."""
    @st.composite
    def build(draw: st.DrawFn) -> str:
        token = draw(valid)
        cut = draw(st.integers(0, len(token)))
        breaker = draw(st.sampled_from(_STRICT_BREAKERS))
        tail = draw(hostile_text()) if draw(st.booleans()) else ""
        return token[:cut] + breaker + token[cut:] + tail

    return build()


def nerve_key(name: str) -> str:
    """How the facts count nerves: distinct after strip and lower-casing."""
    return name.strip().lower()


def muscle_key(name: str) -> str:
    """How the facts count muscles: distinct after lower-casing and collapsing whitespace."""
    return " ".join(name.lower().split())


def unknown_nerve(text: str) -> bool:
    """True when ``text`` maps to no nerve of the vocabulary (the facts say ``other``)."""
    return nerve_token(text) == "other"
