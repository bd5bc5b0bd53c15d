"""Predicted against actual denials: check results held against the payer's 835s.

``pain-asp remit ERA.835 … --against RESULTS.jsonl [CLAIMS …]`` reads the remittances
(:mod:`pain_asp.inputs.era`), takes each claim's final adjudication, matches it to the checked claim
and its lines, and counts for every line:

* predicted denied: a ``deny`` finding of the check names the line;
* actually denied: the payer paid nothing for it, with an adjustment other than the patient's
  share (PR 1, 2, 3) or the contractual reduction (CO 45);
* confirmed (both), false alarm (predicted, paid), missed (denied, not predicted), paid.

Claims match by claim id (CLP01 is the submitter's CLM01). Lines match, within a claim, by
line item control number (2110 REF*6R against the 837P's 2400 REF*6R), then by code,
modifiers and date of service, then by code and date (payers reorder or drop modifiers).
Without the claim files, the lines of a claim are taken in order (the n-th SVC is line n),
and the result says so. A claim the payer adjudicated without service lines counts every
checked line with the claim's outcome.

The claim's life in the remittances: a reversal (CLP02 22) or a void (CLP09 8) cancels the
adjudication before it; a later adjudication of the same claim id (a correction or a
replacement, CLP09 7) replaces it. Only the last standing adjudication is counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError, PainAspError
from ..inputs.era import Adjustment, RemitClaim, RemitLine, read_835

__all__ = ["Counts", "Comparison", "CheckedLine", "checked_lines_of", "compare", "comparison_id",
           "remittances", "require_remittances"]


@dataclass
class Counts:
    """Line counts for one group (all lines, a payer, a rule)."""

    predicted_denied: int = 0
    confirmed: int = 0
    false_alarm: int = 0
    missed: int = 0
    paid: int = 0
    carc_agreed: int = 0

    def add(self, predicted: bool, denied: bool) -> None:
        self.predicted_denied += predicted
        self.confirmed += predicted and denied
        self.false_alarm += predicted and not denied
        self.missed += denied and not predicted
        self.paid += not denied

    @property
    def precision(self) -> Optional[float]:
        return round(self.confirmed / self.predicted_denied, 4) if self.predicted_denied else None

    @property
    def carc_agreement(self) -> Optional[float]:
        return round(self.carc_agreed / self.confirmed, 4) if self.confirmed else None

    def lines(self) -> dict[str, int]:
        return {"predicted_denied": self.predicted_denied, "confirmed": self.confirmed,
                "false_alarm": self.false_alarm, "missed": self.missed, "paid": self.paid}


@dataclass
class _ClaimRates:
    """Claim-level figures of one group: predicted and actual clean-claim and denial rates."""

    claims: int = 0
    predicted_clean: int = 0
    predicted_denied: int = 0
    actual_clean: int = 0
    actual_denied: int = 0

    def add(self, status: str, denied_lines: int, claim_denied: bool) -> None:
        self.claims += 1
        self.predicted_clean += status == "clean"
        self.predicted_denied += status == "deny"
        denied = denied_lines > 0 or claim_denied
        self.actual_denied += denied
        self.actual_clean += not denied

    def rates(self) -> dict[str, Optional[float]]:
        def share(n: int) -> Optional[float]:
            return round(n / self.claims, 4) if self.claims else None
        return {"predicted_clean_rate": share(self.predicted_clean),
                "actual_clean_rate": share(self.actual_clean),
                "predicted_denial_rate": share(self.predicted_denied),
                "actual_denial_rate": share(self.actual_denied)}


@dataclass
class _Missed:
    lines: int = 0
    amount: int = 0
    codes: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class CheckedLine:
    """What the claim files say of a checked line (for matching)."""

    code: str
    modifiers: frozenset[str]
    date: str
    control: Optional[str]


@dataclass
class Comparison:
    """Everything ``remit`` reports."""

    matched: int = 0
    remitted_only: int = 0
    checked_only: int = 0
    reversed: int = 0
    unchecked: int = 0                 # matched claims whose check ended in an error
    unmatched_lines: int = 0           # remitted lines with no checked line
    by_order: int = 0                  # claims whose lines were matched by order (no claim file)
    totals: Counts = field(default_factory=Counts)
    claim_rates: _ClaimRates = field(default_factory=_ClaimRates)
    rules: dict[str, Counts] = field(default_factory=dict)
    rule_payers: dict[tuple[str, str], Counts] = field(default_factory=dict)
    payers: dict[str, Counts] = field(default_factory=dict)
    payer_rates: dict[str, _ClaimRates] = field(default_factory=dict)
    missed: dict[tuple[str, str], _Missed] = field(default_factory=dict)
    denied_amount: dict[str, int] = field(default_factory=dict)    # CARC -> cents, all denied lines
    errors: list[InputError] = field(default_factory=list)
    remittance_files: list[str] = field(default_factory=list)
    result_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``remit --format json``."""
        rules = []
        for rule, c in sorted(self.rules.items()):
            per_payer = [{"payer": payer, "predicted": pc.predicted_denied, "confirmed": pc.confirmed,
                          "false_alarm": pc.false_alarm, "precision": pc.precision}
                         for (r, payer), pc in sorted(self.rule_payers.items()) if r == rule]
            rules.append({"rule": rule, "predicted": c.predicted_denied, "confirmed": c.confirmed,
                          "false_alarm": c.false_alarm, "precision": c.precision,
                          "carc_agreement": c.carc_agreement, "by_payer": per_payer})
        missed = [{"carc": carc, "rarc": rarc, "lines": m.lines, "amount": _dollars(m.amount),
                   "codes": sorted(m.codes)}
                  for (carc, rarc), m in sorted(self.missed.items(),
                                                key=lambda kv: (-kv[1].amount, -kv[1].lines, kv[0]))]
        payers = [{"payer": payer, "claims": self.payer_rates[payer].claims, "lines": c.lines(),
                   **self.payer_rates[payer].rates()}
                  for payer, c in sorted(self.payers.items())]
        return {
            "claims": {"matched": self.matched, "remitted_only": self.remitted_only,
                       "checked_only": self.checked_only, "reversed": self.reversed,
                       "unchecked": self.unchecked},
            "lines": {**self.totals.lines(), "unmatched": self.unmatched_lines},
            "rates": self.claim_rates.rates(),
            "rules": rules,
            "missed_by_reason": missed,
            "denied_by_reason": [{"carc": carc, "amount": _dollars(cents)}
                                 for carc, cents in sorted(self.denied_amount.items(),
                                                           key=lambda kv: (-kv[1], kv[0]))],
            "by_payer": payers,
            "line_matching": "order" if self.by_order else "claims",
            "claims_matched_by_order": self.by_order,
            "errors": [e.as_dict() for e in self.errors],
            "sources": {"remittances": self.remittance_files, "results": self.result_files},
        }


def _dollars(cents: int) -> float:
    return round(cents / 100, 2)


# --- remittances ------------------------------------------------------------------------------

def remittances(files: Iterable[str | Path],
                errors: list[InputError]) -> tuple[dict[str, RemitClaim], dict[str, RemitClaim]]:
    """The standing adjudication of every claim id, and the claims whose last word is a
    reversal or void (claim id -> that reversal).

    Files are read in the order given, claims in file order: a reversal or void cancels the
    adjudication before it, any other adjudication replaces it."""
    standing: dict[str, RemitClaim] = {}
    reversed_: dict[str, RemitClaim] = {}
    for file in files:
        for item in read_835(file):
            if isinstance(item, InputError):
                errors.append(item)
                continue
            errors.extend(item.errors)
            if item.is_reversal or item.frequency == "8":
                standing.pop(item.claim_id, None)
                reversed_[item.claim_id] = item
                continue
            standing.pop(item.claim_id, None)
            standing[item.claim_id] = item
            reversed_.pop(item.claim_id, None)
    return standing, reversed_


# --- matching ---------------------------------------------------------------------------------

def _match_lines(remitted: list[RemitLine], checked: Optional[list[CheckedLine]]) -> list[Optional[int]]:
    """The checked line number (1-based) of each remitted line, or None."""
    if checked is None:
        return [n + 1 for n in range(len(remitted))]
    taken: set[int] = set()
    out: list[Optional[int]] = [None] * len(remitted)

    def first(n: int, test: Any) -> None:
        if out[n] is not None:
            return
        for k, line in enumerate(checked, start=1):
            if k not in taken and test(remitted[n], line):
                out[n] = k
                taken.add(k)
                return

    passes = (
        lambda r, c: r.control is not None and c.control is not None and r.control == c.control,
        lambda r, c: r.code == c.code and frozenset(r.modifiers) == c.modifiers and _same_day(r, c),
        lambda r, c: r.code == c.code and _same_day(r, c),
    )
    for test in passes:
        for n in range(len(remitted)):
            first(n, test)
    return out


def _same_day(remitted: RemitLine, checked: CheckedLine) -> bool:
    return remitted.date is None or remitted.date.isoformat() == checked.date


def compare(remit_files: Iterable[str | Path], results: Iterable[dict[str, Any]],
            checked_lines: Optional[dict[str, list[CheckedLine]]] = None) -> Comparison:
    """Hold check results against remittances. ``checked_lines`` (claim id -> its lines, from
    the claim files) lets lines match by control number, code, modifiers and date."""
    out = Comparison(remittance_files=[str(f) for f in remit_files])
    standing, reversed_ = remittances(out.remittance_files, out.errors)
    out.reversed = len(reversed_)
    seen: set[str] = set()
    for result in results:
        claim_id = result.get("claim_id")
        if not isinstance(claim_id, str) or claim_id in seen:
            continue
        seen.add(claim_id)
        remit = standing.get(claim_id)
        if remit is None:
            out.checked_only += 1
            continue
        out.matched += 1
        if result.get("status") == "error" or "findings" not in result:
            out.unchecked += 1
            continue
        lines = checked_lines.get(claim_id) if checked_lines is not None else None
        _count_claim(out, result, remit, lines)
    out.remitted_only = sum(1 for claim_id in standing if claim_id not in seen)
    return out


def _count_claim(out: Comparison, result: dict[str, Any], remit: RemitClaim,
                 lines: Optional[list[CheckedLine]]) -> None:
    payer = str(result.get("payer") or remit.payer or "(unknown)")
    predicted: dict[int, list[tuple[str, str]]] = {}     # line -> [(rule, carc)]
    for finding in result.get("findings") or []:
        if finding.get("severity") != "deny":
            continue
        for n in finding.get("lines") or []:
            if isinstance(n, int):
                predicted.setdefault(n, []).append((str(finding.get("rule")), str(finding.get("carc") or "")))
    if lines is None:
        out.by_order += 1
    # (line number, denied, denial CARCs, code, denial adjustments counted with this line)
    outcomes: list[tuple[int, bool, list[str], str, list[Adjustment], list[str]]] = []
    if remit.lines:
        for remit_line, number in zip(remit.lines, _match_lines(remit.lines, lines)):
            if number is None:
                out.unmatched_lines += 1
                continue
            denials = [a for a in remit_line.adjustments if a.is_denial] if remit_line.denied else []
            outcomes.append((number, remit_line.denied, [a.reason for a in denials], remit_line.code,
                             denials, remit_line.remarks or remit.remarks))
    else:   # adjudicated as a whole: every checked line shares the claim's outcome
        numbers = list(range(1, len(lines) + 1)) if lines is not None else sorted(predicted) or [1]
        denials = [a for a in remit.adjustments if a.is_denial] if remit.denied else []
        for k, number in enumerate(numbers):
            code = lines[number - 1].code if lines is not None else ""
            outcomes.append((number, remit.denied, [a.reason for a in denials], code,
                             denials if k == 0 else [], remit.remarks))

    counts = out.payers.setdefault(payer, Counts())
    denied_lines = 0
    for number, denied, carcs, code, denials, remarks in outcomes:
        rules = predicted.get(number, [])
        for group in (out.totals, counts):
            group.add(bool(rules), denied)
        denied_lines += denied
        for rule, carc in dict.fromkeys(rules):
            for group in (out.rules.setdefault(rule, Counts()),
                          out.rule_payers.setdefault((rule, payer), Counts())):
                group.add(True, denied)
                group.carc_agreed += denied and carc in carcs
        if denied:
            _count_denied(out, carcs, code, denials, remarks, missed=not rules)
    for rates in (out.claim_rates, out.payer_rates.setdefault(payer, _ClaimRates())):
        rates.add(str(result.get("status")), denied_lines, remit.denied)


def _count_denied(out: Comparison, carcs: list[str], code: str, denials: list[Adjustment],
                  remarks: list[str], missed: bool) -> None:
    """Dollars denied by group and reason; and, when no rule predicted it, the missed reason
    (the denial CARC that explains the most money, with the first remark code)."""
    for a in denials:
        key = f"{a.group}-{a.reason}"
        out.denied_amount[key] = out.denied_amount.get(key, 0) + a.amount
    if not missed:
        return
    main = max(denials, key=lambda a: a.amount).reason if denials else (carcs[0] if carcs else "")
    m = out.missed.setdefault((main, remarks[0] if remarks else ""), _Missed())
    m.lines += 1
    m.amount += sum(a.amount for a in denials)
    if code:
        m.codes.add(code)


def comparison_id(files: Iterable[str | Path]) -> str:
    """Names a comparison by the remittances it read (their bytes, in order): recording the same
    remittances again replaces their counts instead of adding them twice."""
    import hashlib

    digest = hashlib.sha256()
    for path in files:
        digest.update(Path(path).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def checked_lines_of(claim_files: Iterable[str | Path]) -> dict[str, list[CheckedLine]]:
    """Claim id -> its lines as billed, from claim files (JSON, YAML, JSON Lines, 837P)."""
    from ..inputs.readers import read_claims

    out: dict[str, list[CheckedLine]] = {}
    for record in read_claims(list(claim_files)):
        claim = record.claim
        if claim is None or claim.claim_id in out:
            continue
        controls = _line_controls(record)
        out[claim.claim_id] = [
            CheckedLine(line.code, frozenset(line.modifiers), line.date.isoformat(),
                        controls[n] if n < len(controls) else None)
            for n, line in enumerate(claim.lines)]
    return out


def _line_controls(record: Any) -> list[Optional[str]]:
    """The 2400 REF*6R line item control numbers of a claim read from an 837P."""
    source = getattr(record, "source", None)
    lines = getattr(source, "lines", None)
    if not lines:
        return []
    out: list[Optional[str]] = []
    for segments in lines:
        control = None
        for seg in segments:
            if getattr(seg, "id", "") == "REF" and seg.get(1) == "6R":
                control = seg.get(2) or None
        out.append(control)
    return out


def require_remittances(paths: Iterable[Path]) -> list[Path]:
    """The 835 files among ``paths`` (folders walked); anything else is a usage error."""
    from ..inputs.era import is_835

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file())
            found.extend(p for p in candidates if is_835(p))
        elif not path.exists():
            raise PainAspError(f"{path}: no such file or folder")
        elif is_835(path):
            found.append(path)
        else:
            raise PainAspError(f"{path}: expected an X12 835 remittance (ISA, then GS01 HP)")
    if not found:
        raise PainAspError("no X12 835 remittance found in the files given")
    return found
