"""Earlier services of a patient, as seen by the history rules (docs/architecture.md).

Three sources are merged: the claim's own ``history`` list, the patient's other claims in
the same batch (services dated before this claim's, or the same day on another claim), and
a history store (pain_asp.store). This module gathers them into ``HistoryEntry`` lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .models import ORIGINAL, VOID, Claim, HistoryEntry

__all__ = ["BatchHistory", "ClaimKey", "batch_history", "claim_key", "claim_services", "current_claims",
           "same_claim"]


class ClaimKey(NamedTuple):
    """What tells one claim from another: patient, claim id, dates of service (see
    :func:`same_claim`)."""

    patient_id: str
    claim_id: str
    dates: frozenset[dt.date]


def claim_key(claim: Claim) -> ClaimKey:
    """The :class:`ClaimKey` of ``claim``."""
    dates = frozenset(line.date for line in claim.lines)
    return ClaimKey(claim.patient.id.strip(), claim.claim_id, dates)


def same_claim(a: ClaimKey, b: ClaimKey) -> bool:
    """Whether ``a`` and ``b`` are one claim (the later one a corrected form of the earlier):
    the same patient, the same claim id and at least one date of service in common.

    A claim id alone is not enough: practice systems that number claims per batch ("1",
    "2", ...) send the same id for other services, of the same or another patient, on other
    dates. Dates need only overlap, because a correction may drop lines (pain-asp fix drops
    a claim's earliest line, and its first date moves). The history store replaces a stored
    claim that is the same claim, the batch and the store never give a claim itself as its
    history, and every one of them decides sameness here.
    """
    return (a.patient_id == b.patient_id and a.claim_id == b.claim_id
            and not a.dates.isdisjoint(b.dates))


def claim_services(claim: Claim) -> list[HistoryEntry]:
    """The services of ``claim`` as history entries (what a later claim sees of it)."""
    out = []
    for line in claim.lines:
        doc = line.documented
        out.append(HistoryEntry(
            date=line.date, code=line.code, modifiers=list(line.modifiers), units=line.units,
            purpose=doc.purpose if doc else None, relief_pct=doc.relief_pct if doc else None,
            relief_duration_months=doc.relief_duration_months if doc else None,
            levels=list(doc.levels) if doc and doc.levels else None,
            side=doc.side if doc else None,
        ))
    return out


def current_claims(claims: Iterable[Claim]) -> list[Claim]:
    """The claims whose services count as history, in input order.

    A replacement (frequency 7) or void (8) carries the claim id of the claim it replaces, for
    the same patient: it takes the place of every claim of that patient and claim id read
    before it, whatever their dates (a replacement may correct a date); a void then counts
    for nothing itself.
    """
    held: dict[tuple[str, str], list[tuple[int, Claim]]] = {}
    for n, claim in enumerate(claims):
        key = (claim.patient.id, claim.claim_id)
        if claim.frequency != ORIGINAL:
            held.pop(key, None)
        if claim.frequency != VOID:
            held.setdefault(key, []).append((n, claim))
    counted = sorted((e for kept in held.values() for e in kept), key=lambda e: e[0])
    return [claim for _, claim in counted]


class BatchHistory:
    """Gives each claim its own history plus its patient's other claims of the batch.

    The other claims count with services dated on or before the claim's first date of
    service (same-day services of another claim included); a claim that is
    :func:`same_claim` as it is the claim itself and is left out, and so are a replacement or
    void and the claim it replaces (same patient and claim id, whatever the dates), and the
    claims that a later replacement or void of the batch takes the place of
    (:func:`current_claims`).
    """

    def __init__(self, claims: Iterable[Claim]) -> None:
        self._claims = list(claims)
        self._by_patient: dict[str, list[Claim]] = {}
        self._replaced: dict[str, set[str]] = {}
        for claim in self._claims:
            if claim.frequency != ORIGINAL:
                self._replaced.setdefault(claim.patient.id, set()).add(claim.claim_id)
        for claim in current_claims(self._claims):
            self._by_patient.setdefault(claim.patient.id, []).append(claim)

    def replaced_ids(self, patient_id: str) -> set[str]:
        """The claim ids of the patient that a replacement or void of the batch replaces: a
        history store's copy of those claims no longer counts."""
        return self._replaced.get(patient_id, set())

    def __call__(self, claim: Claim) -> list[HistoryEntry]:
        entries = list(claim.history)
        first_day = claim.first_day
        for other in self._by_patient.get(claim.patient.id, []):
            if other is claim or same_claim(claim_key(other), claim_key(claim)) or (
                    other.claim_id == claim.claim_id
                    and (other.frequency, claim.frequency) != (ORIGINAL, ORIGINAL)):
                continue
            entries.extend(e for e in claim_services(other) if e.date <= first_day)
        entries.sort(key=lambda e: (e.date, e.code))
        return entries

    def replacing(self, replacements: Mapping[int, Claim]) -> BatchHistory:
        """The same batch with claims replaced: ``replacements`` maps ``id(claim)`` of a claim
        of the batch to what stands in its place (``pain-asp fix``: its corrected version)."""
        return BatchHistory(replacements.get(id(c), c) for c in self._claims)


def batch_history(claims: Iterable[Claim]) -> BatchHistory:
    """A provider giving each claim its own history plus its patient's other claims in ``claims``."""
    return BatchHistory(claims)
