"""Earlier services of a patient, as seen by the history rules (SPEC §7).

Three sources are merged: the claim's own ``history`` list, the patient's other claims in
the same batch (services dated before this claim's, or the same day on another claim), and
a history store (pain_asp.store). This module gathers them into ``HistoryEntry`` lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .models import Claim, HistoryEntry

__all__ = ["BatchHistory", "ClaimKey", "batch_history", "claim_key", "claim_services", "same_claim"]


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


class BatchHistory:
    """Gives each claim its own history plus its patient's other claims of the batch.

    The other claims count with services dated on or before the claim's first date of
    service (same-day services of another claim included); a claim that is
    :func:`same_claim` as it is the claim itself and is left out.
    """

    def __init__(self, claims: Iterable[Claim]) -> None:
        self._by_patient: dict[str, list[Claim]] = {}
        for claim in claims:
            self._by_patient.setdefault(claim.patient.id, []).append(claim)

    def __call__(self, claim: Claim) -> list[HistoryEntry]:
        entries = list(claim.history)
        first_day = claim.first_day
        for other in self._by_patient.get(claim.patient.id, []):
            if other is claim or same_claim(claim_key(other), claim_key(claim)):
                continue
            entries.extend(e for e in claim_services(other) if e.date <= first_day)
        entries.sort(key=lambda e: (e.date, e.code))
        return entries

    def replacing(self, replacements: Mapping[int, Claim]) -> BatchHistory:
        """The same batch with claims replaced: ``replacements`` maps ``id(claim)`` of a claim
        of the batch to what stands in its place (``pain-asp fix``: its corrected version)."""
        return BatchHistory(replacements.get(id(c), c) for claims in self._by_patient.values() for c in claims)


def batch_history(claims: Iterable[Claim]) -> BatchHistory:
    """A provider giving each claim its own history plus its patient's other claims in ``claims``."""
    return BatchHistory(claims)
