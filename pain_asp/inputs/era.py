"""X12 835 remittance advice (005010X221A1) in, with pyx12.

A payer answers every claim in an 835: the claim as adjudicated (CLP), the services it paid
or denied (SVC), and why (CAS adjustment groups and reasons, LQ remark codes). This module
reads what :mod:`pain_asp.modes.remit` needs to hold the checker's predictions against it:

=========================  =====================================================
model                      835
=========================  =====================================================
payer, payer_id            1000A N1*PR name; REF*2U, else N1*PR N104, else TRN03
production_date            BPR16, else DTM*405
claim_id                   2100 CLP01 (the submitter's patient control number, CLM01)
status                     CLP02 (1-3, 19-21 processed; 4 denied; 22 reversal; 23; 25)
charge, paid, patient      CLP03, CLP04, CLP05
filing_indicator           CLP06
payer_claim_number         CLP07
frequency                  CLP09 (1 original, 7 replacement, 8 void)
adjustments (claim)        2100 CAS: group (CO, OA, PI, PR), reason (CARC), amount
remarks (claim)            MOA03-07, MIA05 and MIA20-24 (RARC)
lines[n].code, modifiers   SVC06 when the payer changed the code (the code as billed),
                           else SVC01-2; modifiers SVC01-3..6 (SVC06-3..6)
lines[n].charge, paid      SVC02, SVC03
lines[n].units             SVC07, else SVC05 (default 1)
lines[n].date              2110 DTM*472, else DTM*150; else the claim's DTM*232
lines[n].control           2110 REF*6R (the 837P line item control number)
lines[n].adjustments       2110 CAS
lines[n].remarks           2110 LQ*HE
=========================  =====================================================

Amounts are whole cents. Errors name the file, the claim id (CLP01), the segment, its
position in the file (ISA = 1) and the element, with what was expected; the value is never
shown: an 835 carries patient names and member ids (NM1*QC, NM1*IL), and those never leave
this module. A claim with an error is still returned, with its errors, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError
from .x12 import ELEMENT_EXPECT, error_tree

__all__ = ["IMPLEMENTATION", "Adjustment", "RemitClaim", "RemitLine", "read_835", "is_835"]

IMPLEMENTATION = "005010X221A1"

# Adjustments that are not a denial of the service: the patient's share (deductible,
# coinsurance, co-payment) and the contractual reduction to the allowed amount.
NOT_A_DENIAL = {("PR", "1"), ("PR", "2"), ("PR", "3"), ("CO", "45")}
CLAIM_STATUS = {"1", "2", "3", "4", "19", "20", "21", "22", "23", "25"}
ADJUSTMENT_GROUPS = {"CO", "OA", "PI", "PR"}
REVERSAL = "22"
DENIED = "4"


@dataclass(frozen=True)
class Adjustment:
    """One CAS reason: group code, claim adjustment reason code (CARC), amount in cents."""

    group: str
    reason: str
    amount: int

    @property
    def is_denial(self) -> bool:
        """True for any reason other than the patient's share or the contractual reduction."""
        return (self.group, self.reason) not in NOT_A_DENIAL


@dataclass
class RemitLine:
    """One adjudicated service (2110 loop)."""

    code: str
    modifiers: tuple[str, ...]
    charge: int
    paid: int
    units: str
    date: Optional[dt.date]
    control: Optional[str]
    adjustments: list[Adjustment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    position: int = 0

    @property
    def denied(self) -> bool:
        """Paid nothing, with at least one adjustment that is a denial."""
        return self.paid == 0 and any(a.is_denial for a in self.adjustments)


@dataclass
class RemitClaim:
    """One adjudicated claim (2100 loop), with where it was read."""

    file: str
    position: int
    claim_id: str
    status: str
    charge: int
    paid: int
    patient_responsibility: int
    filing_indicator: str
    payer_claim_number: str
    frequency: str
    payer: str
    payer_id: str
    production_date: Optional[dt.date]
    service_date: Optional[dt.date] = None
    adjustments: list[Adjustment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    lines: list[RemitLine] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)

    @property
    def is_reversal(self) -> bool:
        return self.status == REVERSAL

    @property
    def denied(self) -> bool:
        """The whole claim denied: status 4, or nothing paid with a claim-level denial."""
        return self.status == DENIED or (
            self.paid == 0 and any(a.is_denial for a in self.adjustments) and not self.lines)


def is_835(path: str | Path) -> bool:
    """True when ``path`` starts (after a BOM or white space) with an ISA whose functional
    group is an 835 (GS01 HP)."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            head = handle.read(4096).lstrip("\ufeff \t\r\n")
    except OSError:
        return False
    if not head.startswith("ISA") or len(head) < 106:
        return False
    element, terminator = head[3], head[105]
    for segment in head.split(terminator):
        parts = segment.strip().split(element)
        if parts[0] == "GS":
            return len(parts) > 1 and parts[1] == "HP"
    return False


def read_835(path: str | Path) -> Iterator[RemitClaim | InputError]:
    """Every claim of an 835 file, in file order; an error that belongs to no claim (the
    file, its envelope, its payer or payee) comes as an :class:`InputError` of its own."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        yield InputError(name, None, "", "", f"a readable X12 835 file ({why})")
        return
    yield from _Reader(name).read(text)


class _Elements:
    """A segment's elements read once from pyx12 (its ``get_value`` parses the reference on
    every call): ``get("CLP02")`` or ``get("SVC01-2")``."""

    __slots__ = ("id", "_values")

    def __init__(self, seg: Any) -> None:
        self.id = seg.get_seg_id() or ""
        self._values = [[e.value for e in comp.elements] for comp in seg.elements]

    def get(self, ref: str) -> str:
        element, _, component = ref[len(self.id):].partition("-")
        n, c = int(element), int(component or 1)
        if n > len(self._values) or c > len(self._values[n - 1]):
            return ""
        return (self._values[n - 1][c - 1] or "").strip()


class _Reader:
    """One pass of pyx12 over an 835, building claims as the 2100 loops go by."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.payer = ""
        self.payer_id = ""
        self.production: Optional[dt.date] = None
        self.claims: list[RemitClaim] = []
        self.loose: list[InputError] = []          # errors that belong to no claim
        self.claim_at: dict[int, RemitClaim] = {}  # segment position -> its claim

    def read(self, text: str) -> Iterator[RemitClaim | InputError]:
        head = text.lstrip(" \t\r\n")
        if not head.startswith("ISA"):
            yield InputError(self.name, None, "", "", "an X12 interchange starting with an ISA segment")
            return
        import pyx12.error_handler
        import pyx12.errors
        import pyx12.params
        import pyx12.x12context

        from .x12 import silence_pyx12

        silence_pyx12()
        errh = pyx12.error_handler.err_handler()
        position = 0
        try:
            reader = pyx12.x12context.X12ContextReader(pyx12.params.ParamsBase(), errh, io.StringIO(head))
            with reader:
                for node in reader.iter_segments("2100"):
                    if node.type == "loop":
                        position = self._claim(node)
                        continue
                    position = node.cur_line_number or position + 1
                    self._header(_Elements(node.seg_data), position)
                reader.src.cleanup()
                errh.handle_errors(reader.src.pop_errors())
        except (pyx12.errors.X12Error, pyx12.errors.EngineError, pyx12.errors.X12PathError):
            self.loose.append(self._error(None, "", position,
                                          f"segments of an {IMPLEMENTATION} 835 that pyx12 can follow "
                                          f"(reading stopped after segment {position})"))
        except (IndexError, KeyError, TypeError, ValueError, AttributeError):
            self.loose.append(self._error(None, "", position,
                                          f"segments of an {IMPLEMENTATION} 835 "
                                          f"(reading stopped after segment {position})"))
        self._validation_errors(errh)
        yield from self.loose
        yield from self.claims

    # --- header, payer, payee ---------------------------------------------------------------

    def _header(self, seg: Any, position: int) -> None:
        seg_id = seg.id
        if seg_id == "GS":
            if seg.get("GS01") != "HP" or seg.get("GS08") != IMPLEMENTATION:
                self.loose.append(self._error(None, "GS", position,
                                              f"GS01 HP and GS08 {IMPLEMENTATION}: a health care claim "
                                              "payment/advice (835) functional group"))
        elif seg_id == "BPR":
            self.production = _date(seg.get("BPR16")) or self.production
        elif seg_id == "DTM" and seg.get("DTM01") == "405":
            self.production = self.production or _date(seg.get("DTM02"))
        elif seg_id == "TRN":
            self.payer_id = self.payer_id or (seg.get("TRN03") or "")
        elif seg_id == "N1" and seg.get("N101") == "PR":
            self.payer = seg.get("N102") or ""
            if seg.get("N104"):
                self.payer_id = seg.get("N104")
        elif seg_id == "REF" and seg.get("REF01") == "2U":
            self.payer_id = seg.get("REF02") or self.payer_id
        elif seg_id == "ST":
            self.payer, self.payer_id, self.production = "", "", None

    # --- claims -----------------------------------------------------------------------------

    def _claim(self, node: Any) -> int:
        claim: Optional[RemitClaim] = None
        line: Optional[RemitLine] = None
        position = 0
        for item in node.iterate_segments():
            seg = _Elements(item["segment"])
            position = int(item.get("cur_line_number") or position + 1)
            seg_id = seg.id
            if seg_id == "CLP":
                claim = self._new_claim(seg, position)
                self.claims.append(claim)
            if claim is None:
                continue
            self.claim_at[position] = claim
            if seg_id == "SVC":
                line = self._new_line(claim, seg, position)
                claim.lines.append(line)
            elif seg_id == "CAS":
                target = line.adjustments if line is not None else claim.adjustments
                target.extend(self._adjustments(claim, seg, position))
            elif seg_id == "DTM":
                self._dtm(claim, line, seg, position)
            elif seg_id == "REF" and line is not None and seg.get("REF01") == "6R":
                line.control = seg.get("REF02") or None
            elif seg_id == "LQ" and line is not None and seg.get("LQ01") == "HE":
                if seg.get("LQ02"):
                    line.remarks.append(seg.get("LQ02"))
            elif seg_id == "MOA":
                claim.remarks.extend(v for v in (seg.get(f"MOA{n:02d}") for n in range(3, 8)) if v)
            elif seg_id == "MIA":
                claim.remarks.extend(v for v in (seg.get(f"MIA{n:02d}") for n in (5, 20, 21, 22, 23, 24)) if v)
        for held in (claim.lines if claim else []):
            if held.date is None:
                held.date = claim.service_date
        return position

    def _new_claim(self, seg: Any, position: int) -> RemitClaim:
        claim = RemitClaim(self.name, position, seg.get("CLP01") or "", seg.get("CLP02") or "",
                           0, 0, 0, seg.get("CLP06") or "", seg.get("CLP07") or "",
                           seg.get("CLP09") or "1", self.payer, self.payer_id, self.production)
        if claim.status not in CLAIM_STATUS:
            claim.errors.append(self._error(claim, "CLP02", position,
                                            "a claim status code (1, 2, 3, 4, 19, 20, 21, 22, 23 or 25)"))
        claim.charge = self._amount(claim, seg, "CLP03", position, required=True)
        claim.paid = self._amount(claim, seg, "CLP04", position, required=True)
        claim.patient_responsibility = self._amount(claim, seg, "CLP05", position)
        if claim.frequency not in ("1", "7", "8"):
            claim.errors.append(self._error(claim, "CLP09", position,
                                            "a claim frequency code: 1 original, 7 replacement, 8 void"))
        return claim

    def _new_line(self, claim: RemitClaim, seg: Any, position: int) -> RemitLine:
        billed = seg.get("SVC06") and seg.get("SVC06-2")
        prefix = "SVC06" if billed else "SVC01"
        qualifier = seg.get(f"{prefix}-1") or ""
        code = seg.get(f"{prefix}-2") or ""
        if qualifier not in ("HC", "AD", "ER", "IV", "WK", "N4", "NU", "HP", "ZZ") or not code:
            claim.errors.append(self._error(claim, prefix, position,
                                            "a procedure composite: qualifier (HC for CPT/HCPCS) and code"))
        modifiers = tuple(m for m in (seg.get(f"{prefix}-{n}") for n in range(3, 7)) if m)
        units = seg.get("SVC07") or seg.get("SVC05") or "1"
        return RemitLine(code, modifiers, self._amount(claim, seg, "SVC02", position, required=True),
                         self._amount(claim, seg, "SVC03", position, required=True), units, None, None,
                         position=position)

    def _adjustments(self, claim: RemitClaim, seg: Any, position: int) -> list[Adjustment]:
        group = seg.get("CAS01") or ""
        if group not in ADJUSTMENT_GROUPS:
            claim.errors.append(self._error(claim, "CAS01", position,
                                            "a claim adjustment group code: CO, OA, PI or PR"))
        out = []
        for first in range(2, 20, 3):
            reason = seg.get(f"CAS{first:02d}")
            if not reason:
                continue
            amount = self._amount(claim, seg, f"CAS{first + 1:02d}", position, required=True)
            out.append(Adjustment(group, reason, amount))
        return out

    def _dtm(self, claim: RemitClaim, line: Optional[RemitLine], seg: Any, position: int) -> None:
        qualifier = seg.get("DTM01")
        if qualifier not in ("472", "150", "232"):
            return
        day = _date(seg.get("DTM02"))
        if day is None:
            claim.errors.append(self._error(claim, "DTM02", position, "a real date (CCYYMMDD)"))
            return
        if line is not None and qualifier in ("472", "150"):
            if qualifier == "472" or line.date is None:
                line.date = day
        elif line is None and qualifier == "232":
            claim.service_date = day

    def _amount(self, claim: RemitClaim, seg: Any, element: str, position: int,
                required: bool = False) -> int:
        value = seg.get(element)
        if not value:
            if required:
                claim.errors.append(self._error(claim, element, position, "an amount"))
            return 0
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = Decimal("NaN")
        if not amount.is_finite() or abs(amount) >= Decimal("1e16"):
            claim.errors.append(self._error(claim, element, position, "an amount such as 850 or -12.5"))
            return 0
        return int((amount * 100).to_integral_value())

    # --- errors -----------------------------------------------------------------------------

    def _error(self, claim: Optional[RemitClaim], element: str, position: int, expected: str) -> InputError:
        where = f"segment {position}" + (f" {element}" if element else "")
        return InputError(self.name, claim.claim_id if claim else None, where, "", expected)

    def _validation_errors(self, errh: Any) -> None:
        """pyx12's findings against the implementation guide, without the values it quotes."""
        tree = error_tree(errh)
        if tree is None:
            return
        for isa in tree.get("interchanges", []):
            for err in isa.get("errors", []):
                self.loose.append(self._error(None, "ISA/IEA", int(isa.get("cur_line") or 0),
                                              _expect(err, "a valid interchange envelope")))
            for group in isa.get("groups", []):
                for err in group.get("errors", []):
                    self.loose.append(self._error(None, "GS/GE", int(group.get("cur_line") or 0),
                                                  _expect(err, "a valid functional group envelope")))
                for trans in group.get("transactions", []):
                    for err in trans.get("errors", []):
                        self.loose.append(self._error(None, "ST/SE", int(trans.get("cur_line") or 0),
                                                      _expect(err, "a valid transaction set envelope")))
                    for seg in trans.get("segments", []):
                        self._segment_errors(seg)

    def _segment_errors(self, seg: dict[str, Any]) -> None:
        position = int(seg.get("cur_line") or 0)
        seg_id = str(seg.get("seg_id") or "segment")
        claim = self.claim_at.get(position)
        found = [(seg_id, err) for err in seg.get("errors", [])]
        for element in seg.get("elements", []):
            name = f"{seg_id}{int(element.get('ele_pos') or 0):02d}"
            if element.get("subele_pos"):
                name += f"-{element['subele_pos']}"
            found.extend((name, err) for err in element.get("errors", []))
        for name, err in found:
            error = self._error(claim, name, position, _expect(err, "what the 835 implementation guide allows"))
            (claim.errors if claim is not None else self.loose).append(error)


def _expect(err: dict[str, Any], default: str) -> str:
    """What an error asks for, from its X12 error code; pyx12's own text quotes values, so
    it is used only where it names no value (counts and control numbers)."""
    code = str(err.get("err_cde") or "")
    text = str(err.get("err_str") or "")
    if code in ELEMENT_EXPECT and not text.startswith(("SE count", "Segment count")):
        return ELEMENT_EXPECT[code]
    if "count" in text.lower():
        return f"{default}: a trailer count that matches the segments or sets it closes"
    if "control number" in text.lower():
        return f"{default}: matching control numbers in the header and trailer"
    return default


def _date(value: Optional[str]) -> Optional[dt.date]:
    if not value or len(value) != 8 or not value.isdigit():
        return None
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None
