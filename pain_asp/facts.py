"""Translate validated claims into ASP facts (docs/architecture.md).

Only validated tokens reach clingo: the claim's position in the solve (K) and its line
numbers are integers chosen here, codes and modifiers have matched the strict patterns of
:mod:`pain_asp.tokens`, dates are integers, documentation is a closed vocabulary, levels
are segment numbers, nerves are mapped to a vocabulary and muscles are only counted. Claim
ids, patient ids, authorization numbers and free text never appear in the facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable

from .icd import dx_facts
from .models import VOID, Claim, Documentation, HistoryEntry, Line
from .tokens import PAYER_ID_RE, nerve_token, npi_status

__all__ = ["CLINGO_INT_MAX", "HistoryItem", "charge_cents", "claim_facts", "claim_money",
           "day_number", "dx_facts", "from_day_number", "money_unit", "muscle_count", "nerve_facts"]

HistoryItem = HistoryEntry

#: The largest integer clingo represents (32 bits, signed; beyond it arithmetic wraps silently).
CLINGO_INT_MAX = 2**31 - 1


def day_number(day: dt.date) -> int:
    """A date as the integer the knowledge base uses for windows (proleptic ordinal)."""
    return day.toordinal()


def from_day_number(number: int) -> dt.date:
    """Inverse of :func:`day_number`."""
    return dt.date.fromordinal(number)


def charge_cents(claim: Claim, line: int) -> int | None:
    """The charge of billed line ``line`` (1-based) in cents; None when the line has none."""
    charge = claim.lines[line - 1].charge
    return None if charge is None else int(charge * 100)


def money_unit(claim: Claim) -> int:
    """Cents per unit of the claim's ``billed_charge`` facts: 1, unless the claim's charges add
    up past :data:`CLINGO_INT_MAX` cents (21,474,836.47), then the fewest cents per unit that
    bring them under it. It depends on the claim alone, so a claim's repair cost never
    depends on the claims solved beside it, and no sum of its charges can overflow."""
    return max(1, -(-sum(_line_cents(claim)) // CLINGO_INT_MAX))


def claim_money(claim: Claim) -> int:
    """The sum of the claim's ``billed_charge`` facts (at most :data:`CLINGO_INT_MAX`)."""
    unit = money_unit(claim)
    return sum(cents // unit for cents in _line_cents(claim))


def _line_cents(claim: Claim) -> list[int]:
    return [charge_cents(claim, n) or 0 for n in range(1, len(claim.lines) + 1)]


def _ymd(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def _flag(value: bool) -> str:
    return "yes" if value else "no"


def claim_facts(k: int, claim: Claim, payer_id: str, history: Iterable[HistoryEntry] = (),
                reads: Container[str] | None = None) -> list[str]:
    """Facts describing ``claim`` as claim number ``k`` of a solve.

    ``payer_id`` has been checked against the payer registry; ``history`` holds the
    patient's earlier services gathered by the caller (claim history, batch, store).
    ``reads``: the predicates the knowledge base reads (:func:`pain_asp.kb.read_predicates`);
    facts of any other predicate are left out, since no rule could see them.
    """
    out = [f"claim({k}).", f'claim_payer({k}, "{payer_id}").', f"claim_pos({k}, {int(claim.place_of_service)})."]
    if claim.prior_authorization:
        out.append(f"claim_prior_auth({k}).")
    if claim.frequency == VOID:
        out.append(f"claim_void({k}).")
    if claim.prior_authorization_status is not None:
        out.append(f"claim_prior_auth_status({k}, {claim.prior_authorization_status}).")
    for i, dx in enumerate(claim.diagnoses, start=1):
        out.append(f'claim_dx({k}, {i}, "{dx}").')
    if claim.payer_id is not None and claim.payer_id.strip().upper() not in _mapped_payer_ids():
        shown = claim.payer_id.strip().upper()
        shown = shown if PAYER_ID_RE.match(shown) else "(not shown: characters other than A-Z and 0-9)"
        out.append(f'claim_payer_id_unmapped({k}, "{shown}").')
    if claim.providers is not None:   # the NPI's check digit is computed here, never in ASP
        for role in ("billing", "rendering", "referring"):
            npi = getattr(claim.providers, role)
            if npi is not None:
                out.append(f"claim_npi({k}, {role}, {npi_status(npi)}).")
    clinical = claim.clinical
    if clinical is not None:
        for name in ("pain_duration_months", "conservative_care_weeks", "cpm_minutes"):
            value = getattr(clinical, name)
            if value is not None:
                out.append(f"clinical({k}, {name}, {value}).")
        for name in ("em_separate_problem", "em_decision_for_surgery", "em_unrelated_to_surgery", "care_plan",
                     "psych_evaluation"):
            value = getattr(clinical, name)
            if value is not None:
                out.append(f"clinical({k}, {name}, {_flag(value)}).")
        for care in sorted(set(clinical.conservative_care or ())):
            out.append(f"clinical_care({k}, {care}).")
    unit = money_unit(claim)
    for n, line in enumerate(claim.lines, start=1):
        if line.not_checked is not None:
            out.append(_unchecked_line(k, n, line))
            continue
        out.append(f'billed_line({k}, {n}, "{line.code}", {line.units}).')
        out.append(f"billed_date({k}, {n}, {day_number(line.date)}, {_ymd(line.date)}).")
        for mod in dict.fromkeys(line.modifiers):
            out.append(f'billed_mod({k}, {n}, "{mod}").')
        for pointer in dict.fromkeys(line.dx):
            out.append(f"billed_ptr({k}, {n}, {pointer}).")
        if line.charge is not None:
            out.append(f"billed_charge({k}, {n}, {charge_cents(claim, n) // unit}).")
        if line.documented is not None:
            out.extend(_documentation(k, n, line.documented))
    for h, entry in enumerate(history, start=1):
        out.extend(_history(k, h, entry))
    if reads is not None:
        out = [fact for fact in out if fact[:fact.index("(")] in reads]
    return out


def _unchecked_line(k: int, n: int, line: Line) -> str:
    """A line the rules cannot check: only its code, first and last day and why, so that it
    is reported and an add-on's primary on it is not taken as missing."""
    last = line.through or line.date
    return (f'unchecked_line({k}, {n}, "{line.code}", {day_number(line.date)}, {day_number(last)}, '
            f"{line.not_checked}).")


def _mapped_payer_ids() -> dict[str, str]:
    from .inputs.x12 import payer_table

    return payer_table()[0]


def _documentation(k: int, n: int, doc: Documentation) -> list[str]:
    out = []
    for name in ("imaging", "side", "purpose", "distinct", "global_relation", "modic",
                 "definitive_reason"):
        value = getattr(doc, name)
        if value is not None:
            out.append(f"doc({k}, {n}, {name}, {value}).")
    if doc.images_recorded is not None:
        out.append(f"doc({k}, {n}, images_recorded, {'yes' if doc.images_recorded else 'no'}).")
    if doc.relief_pct is not None:
        out.append(f"doc_relief({k}, {n}, {doc.relief_pct}).")
    if doc.relief_duration_months is not None:
        out.append(f"doc({k}, {n}, relief_months, {doc.relief_duration_months}).")
    for upper, lower in doc.segments():
        out.append(f"doc_level({k}, {n}, {upper}, {lower}).")
    if doc.nerves is not None:
        tokens, count = nerve_facts(doc.nerves)
        for nerve in sorted(tokens):
            out.append(f"doc_nerve({k}, {n}, {nerve}).")
        out.append(f"doc({k}, {n}, nerve_count, {count}).")
    if doc.muscles is not None:
        out.append(f"doc_muscles({k}, {n}, {muscle_count(doc.muscles)}).")
    return out


def nerve_facts(names: Iterable[str]) -> tuple[frozenset[str], int]:
    """Documented nerve names as the facts give them: their vocabulary tokens and how many
    different names there are."""
    names = list(names)
    return frozenset(nerve_token(name) for name in names), len({name.strip().lower() for name in names})


def muscle_count(names: Iterable[str]) -> int:
    """How many different muscles the names document (the facts only count them)."""
    return len({" ".join(name.lower().split()) for name in names})


def _history(k: int, h: int, entry: HistoryEntry) -> list[str]:
    out = [f'hist_service({k}, {h}, "{entry.code}", {day_number(entry.date)}, {_ymd(entry.date)}).',
           f"hist_units({k}, {h}, {entry.units})."]
    if entry.outcome is not None:
        out.append(f"hist_outcome({k}, {h}, {entry.outcome}).")
    for mod in dict.fromkeys(entry.modifiers):
        out.append(f'hist_mod({k}, {h}, "{mod}").')
    if entry.purpose is not None:
        out.append(f"hist_doc({k}, {h}, purpose, {entry.purpose}).")
    if entry.side is not None:
        out.append(f"hist_doc({k}, {h}, side, {entry.side}).")
    if entry.relief_duration_months is not None:
        out.append(f"hist_doc({k}, {h}, relief_months, {entry.relief_duration_months}).")
    if entry.relief_pct is not None:
        out.append(f"hist_relief({k}, {h}, {entry.relief_pct}).")
    for upper, lower in entry.segments():
        out.append(f"hist_level({k}, {h}, {upper}, {lower}).")
    return out
