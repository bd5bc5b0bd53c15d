"""Earlier services of a patient, as seen by the history rules (SPEC §7).

Three sources are merged: the claim's own ``history`` list, the patient's other claims in
the same batch (services dated before this claim's, or the same day on another claim), and
a history store (pain_asp.store). This module gathers them into ``HistoryEntry`` lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .models import Claim, HistoryEntry

__all__ = ["batch_history", "claim_services"]


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


def batch_history(claims: Iterable[Claim]) -> Callable[[Claim], list[HistoryEntry]]:
    """A provider giving each claim its own history plus its patient's other claims in ``claims``."""
    by_patient: dict[str, list[Claim]] = {}
    for claim in claims:
        by_patient.setdefault(claim.patient.id, []).append(claim)

    def provider(claim: Claim) -> list[HistoryEntry]:
        entries = list(claim.history)
        for other in by_patient.get(claim.patient.id, []):
            if other is claim or other.claim_id == claim.claim_id:
                continue
            first_day = min(line.date for line in claim.lines)
            entries.extend(e for e in claim_services(other) if e.date <= first_day)
        entries.sort(key=lambda e: (e.date, e.code))
        return entries

    return provider
