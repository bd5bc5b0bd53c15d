"""X12 837P (005010X222A1) claims in and out, with pyx12 (docs/architecture.md, docs/claim-format.md).

Reading. pyx12's ``X12ContextReader`` walks the file against its 005010X222A1 map and,
with an error handler attached, validates every segment against the implementation guide
(element usage and length, code values, dates, loop and segment repeats, HL and LX
numbering, SE/GE/IEA counts). It hands back each 2300 claim loop as a tree and every other
segment alone, each tagged with its loop, so this module only tracks the hierarchy (billing
provider 2000A, subscriber 2000B, patient 2000C) and reads the elements the claim model
needs (the 837P implementation guide 005010X222A1, as pyx12 maps it):

=========================  =====================================================
claim model                837P
=========================  =====================================================
claim_id                   2300 CLM01
place_of_service           2300 CLM05-1, or 2400 SV105 when every line names the same one
payer                      2010BB NM1*PR NM109, else 2000B SBR09, mapped through
                           payers/ids/payer_ids.yaml
payer_id                   2010BB NM1*PR NM109
providers                  NM109 (NM108 XX) of 2010AA NM1*85, 2310B NM1*82, 2310A NM1*DN/P3
patient.id                 2010BA NM1*IL NM109 (member id); a dependent (2000C) adds a
                           short digest of the patient's name and birth date
patient.birth_date, sex    DMG02, DMG03 of the patient (2010CA) or subscriber (2010BA)
prior_authorization        2300 REF*G1, else the first 2400 REF*G1
frequency, replaces        2300 CLM05-3; 2300 REF*F8 (payer claim control number)
diagnoses                  2300 HI, ABK then ABF codes, in order
lines[n].code, modifiers   SV101-2, SV101-3..6 (SV101-1 must be HC)
lines[n].charge, units     SV102, SV104 (SV103 UN); minutes: SV104 when SV103 is MJ
lines[n].dx                SV107-1..4
lines[n].date, through     2400 DTP*472 (D8, or RD8 first-last)
=========================  =====================================================

The chart documentation (``documented``, ``clinical``) is not in an 837P, so it stays
unknown and the rules that need it answer ``review``.

Errors. A claim whose segments break the implementation guide, or whose values do not make
a valid claim, becomes a record with errors; the other claims of the file still run. Each
error names the claim, the segment id, its position (the segment's ordinal number in the
file, ISA = 1; pyx12 calls it the line) and its loop. An error in a provider, subscriber or
patient loop belongs to every claim under that loop; an envelope error (ISA/GS/ST/SE/GE/
IEA) to every claim of that envelope. Values are shown only from segments that carry no
patient data: the member id, names, addresses and birth dates never appear in a message,
and pyx12's own log lines (which echo values) are silenced.

Writing. :func:`write_837` writes claims as an 837P. A claim read from an 837P keeps what
the model does not carry (envelope, submitter, receiver, providers, subscriber, patient,
other claim and line segments) through its :class:`X12Context`; only the elements the
model owns are rewritten and HL, LX and trailer counts are recomputed. A claim from JSON or
YAML has no names or addresses: required ones are filled with placeholders (``Provider``)
and the file is marked as test data (ISA15 = T) unless asked otherwise. The output is
validated with pyx12 before it is returned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InputError, PainAspError
from ..models import Claim, Line, Providers
from ..resources import payers_dir
from .records import Record, Unsplittable, validate_claim

__all__ = [
    "IMPLEMENTATION",
    "PAYER_IDS_ENV",
    "Provider",
    "Untouched",
    "X12Context",
    "contexts_for_files",
    "contexts_of",
    "payer_table",
    "read_x12",
    "validate_x12",
    "write_837",
    "write_corrected_837",
]

IMPLEMENTATION = "005010X222A1"
# The implementation guide's limit of claims (CLM segments) in one transaction set; the
# writer starts a new set after it, and the reader releases claims a set at a time.
CLAIMS_PER_TRANSACTION = 5000
PAYER_IDS_ENV = "PAIN_ASP_PAYER_IDS"
_HIDDEN = "(not shown: patient data)"
# Values are shown only from segments that carry no patient data: the envelope and header,
# hierarchy and line counters, the claim, diagnosis and service segments, line dates, and
# every segment of the provider and payer loops. Anything else (subscriber and patient
# names, ids, addresses, demographics, record numbers, notes) is never echoed.
_SHOWN_SEGMENTS = {"ISA", "GS", "ST", "BHT", "SE", "GE", "IEA", "HL", "LX", "CLM", "HI", "SV1", "PRV"}
_PROVIDER_LOOPS = {"2010AA", "2010AB", "2010AC", "2010BB", "1000A", "1000B", "2310A", "2310B",
                   "2310C", "2310D", "2310E", "2310F", "2420A", "2420B", "2420C", "2420D",
                   "2420E", "2420F", "2420G", "2420H"}

# What each X12 element error code (999 IK403) asks for.
ELEMENT_EXPECT = {
    "1": "a value: the implementation guide requires this element",
    "2": "a value: the implementation guide requires this element here",
    "3": "fewer elements or components",
    "4": "a longer value",
    "5": "a shorter value",
    "6": "only characters valid for the element's data type",
    "7": "a code the implementation guide allows for this element",
    "8": "a valid date (CCYYMMDD)",
    "9": "a valid time (HHMM)",
    "10": "no value: the implementation guide does not use this element",
}


# ---------------------------------------------------------------------------------------
# Segments
# ---------------------------------------------------------------------------------------

class _Seg:
    """One segment as an id and elements, each element a list of components."""

    __slots__ = ("id", "elements")

    def __init__(self, seg_id: str, elements: list[list[str]] | None = None) -> None:
        self.id = seg_id
        self.elements = elements or []

    @classmethod
    def of(cls, seg: Any) -> _Seg:
        """From a pyx12 segment."""
        return cls(seg.get_seg_id() or "", [[e.value for e in comp.elements] for comp in seg.elements])

    @classmethod
    def make(cls, seg_id: str, *elements: str | list[str] | None) -> _Seg:
        """From element values; a list is a composite; None is an empty element."""
        out = []
        for value in elements:
            if value is None:
                out.append([""])
            elif isinstance(value, list):
                out.append([str(v) for v in value])
            else:
                out.append([str(value)])
        return cls(seg_id, out)

    def get(self, n: int, c: int = 1) -> str:
        """Element ``n`` (1-based), component ``c``; empty when absent."""
        if n > len(self.elements):
            return ""
        comps = self.elements[n - 1]
        return comps[c - 1].strip() if c <= len(comps) else ""

    def set(self, n: int, value: str | list[str]) -> None:
        """Set element ``n`` (1-based) to a value or a composite."""
        while len(self.elements) < n:
            self.elements.append([""])
        self.elements[n - 1] = [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def copy(self) -> _Seg:
        """A deep copy."""
        return _Seg(self.id, [list(c) for c in self.elements])

    def format(self, ele: str = "*", sub: str = ":", term: str = "~") -> str:
        """The segment text (trailing empty elements and components dropped).

        A value holding a delimiter or a line break would shift every element after it, so
        it is refused (ISA11 and ISA16 name the delimiters and are exempt).
        """
        parts = []
        for n, comps in enumerate(self.elements, start=1):
            if not (self.id == "ISA" and n in (11, 16)) and any(
                    ch in value for value in comps for ch in (ele, sub, term, "^", "\n", "\r")):
                raise PainAspError(
                    f"write_837: a value of a {self.id} segment (element {n:02d}) contains an X12 "
                    f"delimiter ({ele} {sub} {term} ^) or a line break; remove it from the claim")
            comps = list(comps)
            while len(comps) > 1 and comps[-1] == "":
                comps.pop()
            parts.append(sub.join(comps))
        while parts and parts[-1] == "":
            parts.pop()
        return ele.join([self.id, *parts]) + term


# ---------------------------------------------------------------------------------------
# The structure of a file, as read
# ---------------------------------------------------------------------------------------

@dataclass(eq=False)
class _Level:
    """One hierarchical level: billing provider (20), subscriber (22) or patient (23)."""

    code: str
    position: int
    parent: _Level | None
    segments: list[_Seg] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _Transaction:
    """One ST/SE transaction set with its envelope and header (BHT, 1000A, 1000B)."""

    isa: _Seg
    gs: _Seg
    st: _Seg
    interchange: int
    group: int
    header: list[_Seg] = field(default_factory=list)


@dataclass(eq=False)
class X12Context:
    """What an 837P carries beyond the claim model, so the claim can be written back."""

    transaction: _Transaction
    billing: _Level | None
    subscriber: _Level | None
    patient: _Level | None
    claim_segments: list[_Seg]
    lines: list[list[_Seg]]
    prior_auth_on_lines: bool = False
    as_read: dict[str, Any] | None = None    # the raw claim mapping the reader built


@dataclass(frozen=True)
class Untouched:
    """A claim read from an 837P that pain-asp could not check: :func:`write_837` writes it
    back with the segments it was read with, so a corrected file never drops a claim."""

    context: X12Context


@dataclass
class _ClaimLoop:
    """A 2300 loop as read: its segments with positions, split into claim part and lines."""

    context: X12Context
    first: int
    last: int
    claim: list[tuple[int, str, _Seg]]          # (position, loop id, segment)
    lines: list[list[tuple[int, str, _Seg]]]
    errors: list[InputError] = field(default_factory=list)


@dataclass
class _Scan:
    """Everything one pass of pyx12 over a file gives."""

    claims: list[_ClaimLoop]
    loop_at: dict[int, str]                   # position -> loop id
    seg_at: dict[int, str]                    # position -> segment id
    scope_at: dict[int, tuple[str, Any]]      # position -> ("claim", i) | ("level", L) | ("txn", t) ...
    transactions: list[_Transaction]
    errors: list[tuple[tuple[str, Any] | None, str, str, str]]  # (scope, field, value, expected)
    fatal: str | None = None


def silence_pyx12() -> None:
    """pyx12 logs every error with the bad value: keep those lines out of any log."""
    logger = logging.getLogger("pyx12")
    logger.setLevel(logging.CRITICAL + 1)     # its modules log through children of "pyx12"
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


def _need_pyx12() -> None:
    """Raise a user-facing error when pyx12 is not installed (an install without the package's dependencies)."""
    try:
        import pyx12  # noqa: F401
    except ImportError:
        raise PainAspError("reading or writing X12 837P needs pyx12 4: "
                           "pip install 'pyx12>=4,<5'") from None


def _scan(text: str) -> _Scan:
    """One validating pass of pyx12 over ``text``, every part merged (for validation)."""
    whole = _Scan([], {}, {}, {}, [], [])
    for part in _scan_parts(io.StringIO(text)):
        whole.claims.extend(part.claims)
        whole.errors.extend(part.errors)
        whole.fatal = part.fatal or whole.fatal
    return whole


def _scan_parts(handle: Any, shift: int = 0) -> Iterator[_Scan]:
    """One validating pass of pyx12 over an 837P read from ``handle``, in parts.

    A transaction set (ST..SE) is released as one part as soon as pyx12 has finished with
    it: its claims, and the errors that belong to its segments, levels and envelope. The
    implementation guide allows at most 5,000 claims in a transaction set, so memory stays
    bounded however long the file. Errors of a functional group or interchange envelope
    (GE, IEA), known only at their end, and claims of a transaction set that never ends
    come in the last part, with a fatal error if reading stopped.

    ``shift``: the segments after the first GS are numbered that much further on, as in the
    file a transaction set was cut from (:func:`split_x12`).
    """
    _need_pyx12()
    import pyx12.error_handler
    import pyx12.errors
    import pyx12.params
    import pyx12.x12context

    silence_pyx12()
    part = _Scan([], {}, {}, {}, [], [])
    try:
        start = handle.read(4096)
    except UnicodeDecodeError:
        part.fatal = "X12 text (ASCII or UTF-8)"
        yield part
        return
    head = start.lstrip("\ufeff \t\r\n")
    if not head.startswith("ISA"):
        part.fatal = "an X12 interchange starting with an ISA segment"
        yield part
        return
    widths = _isa_width_problems(_isa_values(head))
    if widths:
        part.fatal = ("an ISA segment of fixed width (106 characters): "
                      + "; ".join(f"{ref} {expected}" for ref, expected in widths))
        yield part
        return
    source = _Rest(head, handle)
    errh = pyx12.error_handler.err_handler()
    interchange = group = -1
    isa = gs = None
    envelope: dict[str, list[tuple[str, str]]] = {"ISA": [], "GS": []}   # element errors of the open ISA, GS
    txn: _Transaction | None = None
    levels: dict[str, _Level] = {}
    current: _Level | None = None
    position = 0
    groups: dict[int, list[int]] = {}                # interchange -> its functional groups
    ended: tuple[_Transaction, Any] | None = None   # a transaction set whose SE has been read
    try:
        reader = pyx12.x12context.X12ContextReader(pyx12.params.ParamsBase(), errh, source)
        with reader:
            for node in reader.iter_segments("2300"):
                if ended is not None:      # pyx12 has finished with the SE: release the part
                    _transaction_errors(ended[1], ended[0], part)
                    yield part
                    part = _Scan([], {}, {}, {}, [], [])
                    ended = None
                if node.type == "loop":
                    if txn is None:
                        raise pyx12.errors.EngineError("a claim loop outside a transaction set")
                    loop = _claim_loop(node, txn, current, len(part.claims), part)
                    part.claims.append(loop)
                    position = loop.last
                    continue
                seg = _Seg.of(node.seg_data)
                position = node.cur_line_number or position + 1
                loop_id = node.x12_map_node.parent.id if node.x12_map_node.parent is not None else ""
                part.loop_at[position] = loop_id
                part.seg_at[position] = seg.id
                if seg.id in envelope:
                    envelope[seg.id] = [(f"{seg.id} (segment {position}) {ref}", expected)
                                        for ref, expected in _envelope_problems(seg)]
                if seg.id == "ISA":
                    interchange += 1
                    isa = seg
                    part.scope_at[position] = ("isa", interchange)
                elif seg.id == "IEA":
                    part.scope_at[position] = ("isa", interchange)
                elif seg.id == "GS":
                    group += 1
                    gs = seg
                    groups.setdefault(interchange, []).append(group)
                    part.scope_at[position] = ("group", group)
                    reader.src.cur_line += shift  # pyx12 numbers every later segment
                    version = seg.get(8)
                    if version != IMPLEMENTATION:
                        part.fatal = (f"GS08 {IMPLEMENTATION} (the 837P implementation guide); "
                                      f"this functional group is {version or 'unnamed'}")
                        yield part
                        return
                elif seg.id == "GE":
                    part.scope_at[position] = ("group", group)
                elif seg.id == "ST":
                    txn = _Transaction(isa or _Seg("ISA"), gs or _Seg("GS"), seg, interchange, group)
                    part.transactions.append(txn)
                    levels, current = {}, None
                    part.scope_at[position] = ("txn", txn)
                    part.errors.extend((("txn", txn), where, "", expected)
                                       for where, expected in envelope["ISA"] + envelope["GS"])
                elif seg.id == "SE":
                    part.scope_at[position] = ("txn", txn)
                    if txn is not None and errh.cur_st_node is not None:
                        ended = (txn, errh.cur_st_node)
                elif seg.id == "HL" and txn is not None:
                    parent = levels.get(seg.get(2))
                    current = _Level(seg.get(3), position, parent)
                    levels[seg.get(1)] = current
                    part.scope_at[position] = ("level", current)
                elif current is not None:
                    current.segments.append(seg)
                    current.loops.append(loop_id)
                    part.scope_at[position] = ("level", current)
                elif txn is not None:
                    txn.header.append(seg)
                    part.scope_at[position] = ("txn", txn)
            reader.src.cleanup()
            errh.handle_errors(reader.src.pop_errors())
        if ended is not None:
            _transaction_errors(ended[1], ended[0], part)
            if part.claims:
                yield part
                part = _Scan([], {}, {}, {}, [], [])
    except (pyx12.errors.X12Error, pyx12.errors.EngineError, pyx12.errors.X12PathError) as exc:
        part.fatal = _fatal_text(exc, position)
    except UnicodeDecodeError:
        part.fatal = f"X12 text (ASCII or UTF-8; reading stopped after segment {position})"
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        part.fatal = f"segments pyx12 can follow (reading stopped after segment {position})"
    if part.fatal is None or part.claims:
        _collect_errors(errh, part, groups)
    yield part


class _Rest:
    """A text handle whose first characters were read already (to look for ISA): what
    pyx12's reader needs of a file, ``read(size)`` and ``closed``."""

    closed = False

    def __init__(self, head: str, handle: Any) -> None:
        self._head, self._handle = head, handle

    def read(self, size: int = -1) -> str:
        if not self._head:
            return self._handle.read(size)
        if size is None or size < 0:
            text, self._head = self._head + self._handle.read(), ""
            return text
        text, self._head = self._head[:size], self._head[size:]
        return text if len(text) == size else text + self._handle.read(size - len(text))


def _transaction_errors(st_node: Any, txn: _Transaction, part: _Scan) -> None:
    """The errors pyx12 recorded for one finished transaction set, into ``part``; the set's
    node then leaves pyx12's error tree (it holds nothing more, and the tree stays small)."""
    for code, text in st_node.errors:
        part.errors.append((("txn", txn), "transaction set (ST/SE)", "",
                            _envelope_expect("ST", {"err_cde": code, "err_str": text})))
    for seg in st_node.children:
        _segment_errors(_seg_errors(seg), part)
    parent = getattr(st_node, "parent", None)
    if parent is not None and st_node in getattr(parent, "children", []):
        parent.children.remove(st_node)


def _seg_errors(seg: Any) -> dict[str, Any]:
    """One pyx12 segment error node as the dictionary :func:`_segment_errors` reads."""
    return {"seg_id": seg.seg_id, "cur_line": seg.get_cur_line(),
            "errors": [{"err_cde": c, "err_str": t, "err_val": v} for c, t, v in seg.errors],
            "elements": [{"ele_pos": e.ele_pos, "subele_pos": e.subele_pos, "name": e.name,
                          "errors": [{"err_cde": c, "err_str": t, "err_val": v} for c, t, v in e.errors]}
                         for e in seg.elements]}


def _fatal_text(exc: Exception, position: int) -> str:
    text = str(exc)
    if "does not begin with 'ISA'" in text or "ISA line is only" in text:
        return "an X12 interchange starting with a complete ISA segment (106 characters)"
    if "ISA segment must have 16 elements" in text:
        return "an ISA segment with 16 elements"
    if "Map not found" in text:
        return f"a {IMPLEMENTATION} functional group (GS01 HC, GS08 {IMPLEMENTATION})"
    return f"segments pyx12 can follow (reading stopped after segment {position})"


def _claim_loop(node: Any, txn: _Transaction, level: _Level | None, index: int, scan: _Scan) -> _ClaimLoop:
    claim: list[tuple[int, str, _Seg]] = []
    lines: list[list[tuple[int, str, _Seg]]] = []
    for item in node.iterate_segments():
        seg = _Seg.of(item["segment"])
        pos = int(item.get("cur_line_number") or 0)
        loops = list(getattr(item.get("path"), "loop_list", []) or [])
        loop_id = next((part for part in reversed(loops) if part[:1].isdigit()), "2300")
        scan.loop_at[pos] = loop_id
        scan.seg_at[pos] = seg.id
        scan.scope_at[pos] = ("claim", index)
        if "2400" in loops:
            if seg.id == "LX" or not lines:
                lines.append([])
            lines[-1].append((pos, loop_id, seg))
        else:
            claim.append((pos, loop_id, seg))
    positions = [p for p, _, _ in claim] + [p for line in lines for p, _, _ in line]
    chain = []
    walk = level
    while walk is not None:
        chain.append(walk)
        walk = walk.parent
    patient = next((lv for lv in chain if lv.code == "23"), None)
    subscriber = next((lv for lv in chain if lv.code == "22"), None)
    billing = next((lv for lv in chain if lv.code == "20"), None)
    context = X12Context(txn, billing, subscriber, patient, [s for _, _, s in claim],
                         [[s for _, _, s in line] for line in lines])
    return _ClaimLoop(context, min(positions), max(positions), claim, lines)


def error_tree(errh: Any) -> dict[str, Any] | None:
    """pyx12's error tree (interchanges, groups, transaction sets, segments) as plain data,
    or None when it cannot be read."""
    import pyx12.errh_json

    out = io.StringIO()
    errh.accept(pyx12.errh_json.errh_json_visitor(out))
    try:
        return json.loads(out.getvalue())
    except ValueError:
        return None


def _collect_errors(errh: Any, scan: _Scan, groups: dict[int, list[int]]) -> None:
    """Turn pyx12's error tree into (scope, field, value, expected) with no patient data.

    ``groups`` lists the functional groups of each interchange in file order; the tree only
    holds the transaction sets not released yet, which are ``scan.transactions``."""
    tree = error_tree(errh)
    if tree is None:
        return
    by_index = {}
    for txn in scan.transactions:
        by_index.setdefault((txn.interchange, txn.group), []).append(txn)
    for i, isa in enumerate(tree.get("interchanges", [])):
        for err in isa.get("errors", []):
            scan.errors.append((("isa", i), "interchange envelope (ISA/IEA)", "",
                                _envelope_expect("ISA", err)))
        for g, group in enumerate(isa.get("groups", [])):
            group_index = groups[i][g] if i in groups and g < len(groups[i]) else -1
            for err in group.get("errors", []):
                scan.errors.append((("group", group_index), "functional group (GS/GE)", "",
                                    _envelope_expect("GS", err)))
            txns = by_index.get((i, group_index), [])
            for t, trans in enumerate(group.get("transactions", [])):
                txn = txns[t] if t < len(txns) else None
                for err in trans.get("errors", []):
                    scan.errors.append((("txn", txn) if txn else None, "transaction set (ST/SE)", "",
                                        _envelope_expect("ST", err)))
                for seg in trans.get("segments", []):
                    _segment_errors(seg, scan)


def _envelope_expect(level: str, err: dict[str, Any]) -> str:
    """What a trailer error of pyx12 (TA1, AK9 or AK5 code) asks for, without the values
    its own message quotes."""
    code = str(err.get("err_cde", ""))
    return _TRAILER_EXPECT.get((level, code), f"a valid {level} envelope (X12 error code {code})")


_TRAILER_EXPECT = {
    ("ISA", "001"): "IEA02 equal to ISA13 (the interchange control number)",
    ("ISA", "021"): "IEA01 equal to the number of functional groups (GS) in the interchange",
    ("ISA", "023"): "an IEA segment closing the interchange",
    ("ISA", "024"): "a GE segment closing the functional group before the IEA",
    ("ISA", "025"): "an ISA13 control number no other interchange of the file uses",
    ("GS", "3"): "a GE segment closing the functional group",
    ("GS", "4"): "GE02 equal to GS06 (the group control number)",
    ("GS", "5"): "GE01 equal to the number of transaction sets (ST) in the group",
    ("GS", "6"): "a GS06 control number no other group of the file uses",
    ("ST", "2"): "an SE segment closing the transaction set",
    ("ST", "3"): "SE02 equal to ST02 (the transaction set control number)",
    ("ST", "4"): "SE01 equal to the number of segments in the transaction set, ST and SE included",
    ("ST", "23"): "an ST02 control number no other transaction set of the group uses",
}


# ---------------------------------------------------------------------------------------
# The envelope's own elements (ISA, GS), which pyx12's map does not check
# ---------------------------------------------------------------------------------------

# ISA01..ISA16: every element has a fixed width (005010 interchange control header).
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
_ID_QUALIFIERS = ("01", "14", "20", "27", "28", "29", "30", "33", "ZZ")
_ISA_CODES = {1: ("00", "03"), 3: ("00", "01"), 5: _ID_QUALIFIERS, 7: _ID_QUALIFIERS,
              12: ("00501",), 14: ("0", "1"), 15: ("P", "T")}


def _isa_values(head: str) -> list[str]:
    """ISA01..ISA15 as written at the start of a file, split on its element separator (the
    character after ``ISA``), before pyx12 relies on their fixed widths."""
    return head[4:].split(head[3], 15)[:15] if len(head) > 4 else []


def _isa_width_problems(values: list[str]) -> list[tuple[str, str]]:
    if len(values) < 15:
        return [("ISA", "16 elements")]
    return [(f"ISA{n:02d}", f"exactly {width} character{'s' if width > 1 else ''}")
            for n, (value, width) in enumerate(zip(values, _ISA_WIDTHS), start=1) if len(value) != width]


def _envelope_problems(seg: _Seg) -> list[tuple[str, str]]:
    """(element, what is expected) for each element of an ISA or GS segment that breaks the
    X12 envelope standard; values are never part of the answer."""
    raw = [comps[0] if comps else "" for comps in seg.elements]
    if seg.id == "ISA":
        out = _isa_width_problems(raw[:15]) + (
            [] if len(raw) == 16 and len(raw[15]) == 1 else [("ISA16", "exactly 1 character")])
        bad = {ref for ref, _ in out}
        for n, codes in _ISA_CODES.items():
            if f"ISA{n:02d}" not in bad and raw[n - 1] not in codes:
                out.append((f"ISA{n:02d}", "one of " + ", ".join(codes)))
        checks = [(9, _real_date(raw[8], "%y%m%d"), "a real date as YYMMDD"),
                  (10, _real_time(raw[9], (4,)), "a time as HHMM"),
                  (13, raw[12].isdigit(), "9 digits (the interchange control number)")]
    else:
        value = [seg.get(n) for n in range(1, 9)]
        checks = [(1, value[0] == "HC", "HC (health care claim)"),
                  (2, 2 <= len(value[1]) <= 15, "2 to 15 characters (the sender's code)"),
                  (3, 2 <= len(value[2]) <= 15, "2 to 15 characters (the receiver's code)"),
                  (4, _real_date(value[3], "%Y%m%d"), "a real date as CCYYMMDD"),
                  (5, _real_time(value[4], (4, 6, 7, 8)), "a time as HHMM, HHMMSS or HHMMSSD(D)"),
                  (6, value[5].isdigit() and len(value[5]) <= 9, "1 to 9 digits (the group control number)"),
                  (7, value[6] == "X", "X (Accredited Standards Committee X12)")]
        out = []
        bad = set()
    out.extend((f"{seg.id}{n:02d}", expected) for n, good, expected in checks
               if not good and f"{seg.id}{n:02d}" not in bad)
    return out


def _real_date(value: str, pattern: str) -> bool:
    try:
        dt.datetime.strptime(value, pattern)
    except ValueError:
        return False
    return value.isdigit()


def _real_time(value: str, lengths: tuple[int, ...]) -> bool:
    if not value.isdigit() or len(value) not in lengths:
        return False
    return int(value[:2]) < 24 and int(value[2:4]) < 60 and (len(value) < 6 or int(value[4:6]) < 60)


def _segment_errors(seg: dict[str, Any], scan: _Scan) -> None:
    seg_id = str(seg.get("seg_id") or "")
    position = int(seg.get("cur_line") or 0)
    for err in seg.get("errors", []):
        code = str(err.get("err_cde", ""))
        at = position
        if code == "3" and (position - 1) in scan.scope_at:
            at = position - 1          # a missing segment is noticed at the next one
        where = _where(seg_id, at, scan) if code != "3" else _where_missing(at, scan)
        text = str(err.get("err_str", ""))
        if code in ("1", "2"):
            expected = f"a segment the 005010X222A1 map allows at this point ({seg_id} is not expected here)"
        elif code == "3":
            expected = f"the segment the implementation guide requires here (pyx12: {text})"
        elif code in ("4", "5"):
            expected = f"fewer repeats (pyx12: {text})"
        elif _private(seg_id, at, scan):
            expected = "a valid segment (pyx12 found a problem; details not shown: patient data)"
        else:
            expected = f"a valid segment (pyx12: {text})"
        scan.errors.append((scan.scope_at.get(at), where, "", expected))
    for ele in seg.get("elements", []):
        ref = f"{seg_id}{int(ele.get('ele_pos') or 0):02d}"
        if ele.get("subele_pos"):
            ref += f"-{int(ele['subele_pos'])}"
        for err in ele.get("errors", []):
            code = str(err.get("err_cde", ""))
            private = _private(seg_id, position, scan)
            value = "" if err.get("err_val") in (None, "") else (
                _HIDDEN if private else _shown(str(err["err_val"])))
            expected = ELEMENT_EXPECT.get(code, "a valid value")
            if not private:
                expected += f" (pyx12: {err.get('err_str', '')})"
            else:
                expected += f" ({ref} {ele.get('name', '')})"
            scan.errors.append((scan.scope_at.get(position), f"{_where(seg_id, position, scan)} {ref}",
                                value, expected))


def _private(seg_id: str, position: int, scan: _Scan) -> bool:
    """True when the segment may carry patient data (its values are then never shown)."""
    loop = scan.loop_at.get(position)
    if loop is None:
        return True
    if seg_id in _SHOWN_SEGMENTS or (seg_id == "DTP" and loop == "2400"):
        return False
    return loop not in _PROVIDER_LOOPS


def _where(seg_id: str, position: int, scan: _Scan) -> str:
    loop = scan.loop_at.get(position)
    return f"{seg_id} (segment {position}{', loop ' + loop if loop and loop[:1].isdigit() else ''})"


def _where_missing(position: int, scan: _Scan) -> str:
    seg_id = scan.seg_at.get(position, "?")
    return f"after {_where(seg_id, position, scan)}"


def _shown(value: str) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------
# Payer ids
# ---------------------------------------------------------------------------------------

def payer_table() -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(payer id -> policy, claim filing indicator -> policy, files read), from
    ``payers/ids/payer_ids.yaml`` and then ``$PAIN_ASP_PAYER_IDS``."""
    return _payer_table(os.environ.get(PAYER_IDS_ENV) or None)


@lru_cache(maxsize=4)
def _payer_table(extra: str | None) -> tuple[dict[str, str], dict[str, str], list[str]]:
    by_id: dict[str, str] = {}
    by_sbr: dict[str, str] = {}
    files = [payers_dir() / "ids" / "payer_ids.yaml"]
    if extra:
        files.append(Path(extra))
    for path in files:
        ids, indicators = _read_payer_ids(path)
        by_id.update(ids)
        by_sbr.update(indicators)
    return by_id, by_sbr, [str(p) for p in files]


def _read_payer_ids(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    from .yamlsafe import YAMLError, safe_load

    try:
        data = safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PainAspError(f"{path}: a readable payer id mapping ({exc.strerror})") from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise PainAspError(f"{path}{where}: valid YAML") from None
    data = data or {}
    if not isinstance(data, dict) or set(data) - {"payer_ids", "claim_filing_indicators"}:
        raise PainAspError(f"{path}: a mapping with the keys payer_ids and claim_filing_indicators")
    tables = []
    for key in ("payer_ids", "claim_filing_indicators"):
        table = data.get(key) or {}
        if not isinstance(table, dict):
            raise PainAspError(f"{path}: {key}: a mapping from an id to a payer policy id")
        out = {}
        for name, policy in table.items():
            if not isinstance(policy, str) or not policy.strip() or isinstance(name, (dict, list)):
                raise PainAspError(f"{path}: {key}: {name}: a payer policy id (a payers/*.yaml file name)")
            out[str(name).strip().upper()] = policy.strip()
        tables.append(out)
    return tables[0], tables[1]


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------

def read_x12(path: str | Path) -> Iterator[Record]:
    """Yield one record per 2300 claim loop of an 837P file, in file order, as the file is
    read (a transaction set at a time: memory does not grow with the file)."""
    name = str(path)
    try:
        handle = open(path, encoding="utf-8", newline="")
        info = os.fstat(handle.fileno())
    except OSError as exc:
        yield Record(name, 1, errors=[InputError(name, None, "", "", f"a readable file ({exc.strerror})")])
        return
    key = (str(Path(path).resolve()), info.st_mtime_ns, info.st_size)
    contexts: dict[str, X12Context] | None = {}
    with handle:
        for record in records_from_handle(handle, name):
            if contexts is not None and isinstance(record.source, X12Context) and record.claim_id:
                contexts.setdefault(record.claim_id, record.source)
                if len(contexts) > _CONTEXTS_KEPT:
                    contexts = None     # a large file: fix -o reads it again instead
            yield record
    if contexts is not None:
        _CONTEXTS[key] = contexts
        while len(_CONTEXTS) > 8:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))


# The contexts of the files read last (resolved path, mtime, size -> claim id -> context), so
# that ``fix -o out.837`` writes corrected claims back without reading its input twice; kept
# for files of up to one transaction set's worth of claims (the implementation guide's 5,000).
_CONTEXTS: dict[tuple[str, int, int], dict[str, X12Context]] = {}
_CONTEXTS_KEPT = 5000


def contexts_for_files(paths: Iterable[str | Path]) -> dict[str, X12Context]:
    """Claim id -> 837P context for every claim of the X12 files among ``paths`` (folders are
    walked like the readers walk them); the first file naming a claim id wins."""
    from .files import is_x12

    out: dict[str, X12Context] = {}
    for item in paths:
        path = Path(item)
        files = sorted(p for p in path.rglob("*") if p.is_file() and is_x12(p)) if path.is_dir() else (
            [path] if is_x12(path) else [])
        for file in files:
            try:
                info = file.stat()
            except OSError:
                continue
            key = (str(file.resolve()), info.st_mtime_ns, info.st_size)
            if key in _CONTEXTS:
                found = _CONTEXTS[key]
            else:  # not read yet, or too large to have been kept: read it (again)
                found = {}
                for record in read_x12(file):
                    if isinstance(record.source, X12Context) and record.claim_id:
                        found.setdefault(record.claim_id, record.source)
            for claim_id, ctx in found.items():
                out.setdefault(claim_id, ctx)
    return out


def write_corrected_837(claims: Iterable[Claim | Untouched], inputs: Iterable[str | Path]) -> str:
    """Corrected claims as one 837P: each claim read from an 837P among ``inputs`` goes back
    into the envelope and loops it came from (see :func:`write_837`)."""
    return write_837(claims, contexts_for_files(inputs))


def records_from_text(text: str, name: str = "<837P>") -> Iterator[Record]:
    """The records of an 837P given as text (see :func:`read_x12`)."""
    return records_from_handle(io.StringIO(text), name)


def records_from_handle(handle: Any, name: str = "<837P>", shift: int = 0, first: int = 1) -> Iterator[Record]:
    """The records of an 837P read from a text handle, a transaction set at a time; the first
    claim is claim ``first`` of the file (``shift``: see :func:`_scan_parts`).

    Errors that belong to no claim (and those of a group or interchange envelope, known only
    at its end) come in one last record, with what stopped the reading, if anything did."""
    count = first - 1
    loose: list[InputError] = []
    fatal: str | None = None
    for part in _scan_parts(handle, shift):
        affected = _affected(part)
        loose.extend(InputError(name, None, f, v, x) for e in part.errors if not affected.get(id(e))
                     for _, f, v, x in [e])
        fatal = part.fatal or fatal
        for index, loop in enumerate(part.claims):
            claim_id = _claim_id(loop)
            errors = [InputError(name, claim_id, f, v, x)
                      for e in part.errors if index in affected.get(id(e), ())
                      for _, f, v, x in [e]]
            count += 1
            record = _record(loop, name, count, claim_id)
            if errors:
                record.claim = None
                record.errors = errors + record.errors
            yield record
    if count == first - 1:
        if fatal is not None:
            yield Record(name, 1, errors=[InputError(name, None, "", "", fatal)])
        else:
            loose.append(InputError(name, None, "", "", "at least one claim (a 2300 loop starting with CLM)"))
            yield Record(name, 1, errors=loose)
        return
    if fatal is not None:
        loose.append(InputError(name, None, "", "", fatal + "; the claims after this point were not read"))
    if loose:
        yield Record(name, count + 1, errors=loose)


# ---------------------------------------------------------------------------------------
# Cutting an 837P into transaction sets for the batch's workers
# ---------------------------------------------------------------------------------------

_PIECE_BLOCK = 1 << 20  # an 837P is cut a megabyte at a time
# Consecutive transaction sets are given together up to this many claims: pyx12 loads its
# map for every interchange it reads, which costs more than a set of a few claims. As many
# as a batch chunk holds (pain_asp.modes.check.BatchOptions.chunk_size), which bounds a
# worker's memory.
PIECE_CLAIMS = 1000
_ENVELOPE_FIELDS = ("ISA ", "GS ", "GE ", "IEA ", "interchange envelope", "functional group")


def split_x12(path: str | Path) -> Iterator[tuple[str, int, int, bytes, int]]:
    """The transaction sets of an 837P, unparsed and in order, for :func:`records_from_piece`,
    consecutive sets together up to :data:`PIECE_CLAIMS` claims: each piece as ``(file, its
    first claim's number, its first ST's segment number, text, claims)``, the text being the
    file's ISA and GS segments, the sets' segments as written (ST..SE) and a GE and IEA that
    close them. Only the envelope is read (control numbers, counts, delimiters); the
    claims are counted by their CLM segments.

    Raises :class:`~pain_asp.inputs.records.Unsplittable` for a file that does not cut apart
    cleanly: not UTF-8, not starting with a complete ISA segment, delimiters that are letters,
    digits, blanks or the same character, an ISA or GS element :func:`_envelope_problems`
    refuses, more than one interchange or functional group, a GS08 other than 005010X222A1, a
    segment outside a transaction set other than ISA, GS, GE and IEA, SE01/GE01/IEA01 counts
    or SE02/GE02/IEA02 control numbers that do not match, a repeated ST02, a set without a
    claim, or anything after the IEA. Its reader (:func:`read_x12`) then gives its errors."""
    name = str(path)
    try:
        import pyx12  # noqa: F401  (without it the file's reader says what to install)

        with open(path, encoding="utf-8", newline="") as handle:
            yield from _pieces(name, handle)
    except (OSError, UnicodeDecodeError, ImportError):
        raise Unsplittable(name) from None


def _pieces(name: str, handle: Any) -> Iterator[tuple[str, int, int, bytes, int]]:
    head = handle.read(106)
    if len(head) < 106 or not head.startswith("ISA") or _isa_width_problems(_isa_values(head)):
        raise Unsplittable(name)
    ele, sub, term = head[3], head[104], head[105]
    if len({ele, sub, term}) < 3 or any(c.isalnum() or c.isspace() for c in (ele, sub, term)):
        raise Unsplittable(name)
    controls: dict[str, list[str]] = {}   # the ISA, GS, GE and IEA read: their elements as written
    opening = ""                 # the ISA and GS segments, as written
    st_ids: set[str] = set()
    segments: list[str] = []     # the open transaction set's segments, as written
    st_id: str | None = None     # the open transaction set's ST02
    st_position = claims = before = 0
    piece: list[str] = []        # the transaction sets read and not yet given, as written
    piece_sets = piece_claims = piece_position = 0
    for position, raw in enumerate(_segments(name, handle, head, term), start=1):
        values = raw.lstrip("\r\n").split(ele)
        seg_id = values[0]
        if st_id is not None:
            segments.append(raw + term)
            if seg_id == "CLM":
                claims += 1
            elif seg_id == "SE":
                if values[1:] != [str(len(segments)), st_id] or not claims:
                    raise Unsplittable(name)
                piece_position = piece_position or st_position
                piece += segments
                piece_sets, piece_claims = piece_sets + 1, piece_claims + claims
                segments, claims, st_id = [], 0, None
                if piece_claims >= PIECE_CLAIMS:
                    yield name, before + 1, piece_position, _piece(opening, piece, piece_sets, controls, ele, term), \
                        piece_claims
                    before += piece_claims
                    piece, piece_sets, piece_claims, piece_position = [], 0, 0, 0
            elif seg_id in ("ISA", "GS", "GE", "IEA", "ST"):
                raise Unsplittable(name)
        elif seg_id == "ST" and "GS" in controls and "GE" not in controls and len(values) > 2 \
                and values[2] not in st_ids:
            st_id, st_position = values[2], position
            st_ids.add(st_id)
            segments = [raw + term]
        elif (seg_id == "ISA" and position == 1 or seg_id == "GS" and "ISA" in controls and "GS" not in controls
              and values[8:9] == [IMPLEMENTATION] and len(values) > 6) and not _envelope_problems(
                _Seg(seg_id, [[value] if seg_id == "ISA" else value.split(sub) for value in values[1:]])):
            controls[seg_id] = values
            opening += raw + term
        elif seg_id == "GE" and "GS" in controls and "GE" not in controls \
                and values[1:] == [str(len(st_ids)), controls["GS"][6]]:
            controls["GE"] = values
        elif seg_id == "IEA" and "GE" in controls and "IEA" not in controls \
                and values[1:] == ["1", controls["ISA"][13]]:
            controls["IEA"] = values
        else:
            raise Unsplittable(name)
    if "IEA" not in controls:
        raise Unsplittable(name)
    if piece:
        yield name, before + 1, piece_position, _piece(opening, piece, piece_sets, controls, ele, term), piece_claims


def _piece(opening: str, segments: list[str], sets: int, controls: dict[str, list[str]], ele: str,
           term: str) -> bytes:
    """Consecutive transaction sets of an 837P as an interchange of their own: the file's ISA
    and GS, the sets as written, and a GE and IEA that close them."""
    closing = f"GE{ele}{sets}{ele}{controls['GS'][6]}{term}IEA{ele}1{ele}{controls['ISA'][13]}{term}"
    return (opening + "".join(segments) + closing).encode("utf-8")


def _segments(name: str, handle: Any, head: str, term: str) -> Iterator[str]:
    """The segments of an 837P as pyx12 cuts them (on the terminator), each without its
    terminator, read a megabyte at a time; raises Unsplittable when anything but white space
    follows where pyx12 stops (an empty segment, or text without a terminator at the end)."""
    buffer = head
    while True:
        block = handle.read(_PIECE_BLOCK)
        *whole, buffer = (buffer + block).split(term)
        for number, raw in enumerate(whole):
            if not raw.lstrip("\r\n"):
                if term.join(whole[number + 1:] + [buffer]).strip() or handle.read().strip():
                    raise Unsplittable(name)
                return
            yield raw
        if not block:
            if buffer.strip():
                raise Unsplittable(name)
            return


def records_from_piece(name: str, first: int, st_position: int, text: bytes, claims: int) -> Iterator[Record]:
    """The records of transaction sets cut from an 837P (:func:`split_x12`), the same as
    :func:`read_x12` gives for their claims, a transaction set at a time. Raises
    :class:`~pain_asp.inputs.records.Unsplittable`, at the latest after the last record, when
    the sets do not read alone as they read in their file: a record for no claim, another
    number of claims than its CLM segments, or an error of the envelope (ISA, GS, GE, IEA)."""
    count = 0
    for record in records_from_handle(io.StringIO(text.decode("utf-8"), newline=""), name, st_position - 3, first):
        count += 1
        if count > claims or not isinstance(record.source, X12Context) or any(
                e.field.startswith(_ENVELOPE_FIELDS) for e in record.errors):
            raise Unsplittable(name)
        yield record
    if count != claims:
        raise Unsplittable(name)


def _affected(scan: _Scan) -> dict[int, set[int]]:
    """For each error (by id), the claims it belongs to."""
    out: dict[int, set[int]] = {}
    for error in scan.errors:
        scope = error[0]
        hits: set[int] = set()
        if scope is not None:
            kind, key = scope
            for index, loop in enumerate(scan.claims):
                ctx = loop.context
                if ((kind == "claim" and key == index)
                        or (kind == "level" and key in (ctx.billing, ctx.subscriber, ctx.patient))
                        or (kind == "txn" and key is ctx.transaction)
                        or (kind == "group" and key == ctx.transaction.group)
                        or (kind == "isa" and key == ctx.transaction.interchange)):
                    hits.add(index)
        out[id(error)] = hits
    return out


def _claim_id(loop: _ClaimLoop) -> str | None:
    clm = next((s for _, _, s in loop.claim if s.id == "CLM"), None)
    value = clm.get(1) if clm is not None else ""
    return value or None


def _record(loop: _ClaimLoop, name: str, position: int, claim_id: str | None) -> Record:
    raw, refs, problems = _raw_claim(loop)
    errors = [InputError(name, claim_id, f, v, x) for f, v, x in problems]
    if errors:
        record = Record(name, position, errors=errors, claim_id=claim_id)
    else:
        record = validate_claim(raw, name, position)
        for error in record.errors:
            error.field = _annotate(error.field, refs)
    record.source = loop.context
    loop.context.as_read = raw
    return record


def _annotate(field_path: str, refs: dict[str, str]) -> str:
    """``lines[2].units`` -> ``lines[2].units (SV104, segment 36)``."""
    best = ""
    for key in refs:
        if (field_path == key or field_path.startswith(key + ".") or field_path.startswith(key + "[")) \
                and len(key) > len(best):
            best = key
    return f"{field_path} ({refs[best]})" if best else field_path


def _raw_claim(loop: _ClaimLoop) -> tuple[dict[str, Any], dict[str, str], list[tuple[str, str, str]]]:
    """The claim as a raw mapping for the model, where each field came from, and problems."""
    ctx = loop.context
    raw: dict[str, Any] = {}
    refs: dict[str, str] = {}
    problems: list[tuple[str, str, str]] = []
    segs = loop.claim
    clm_pos, _, clm = next(((p, lp, s) for p, lp, s in segs if s.id == "CLM"), (loop.first, "2300", _Seg("CLM")))
    raw["claim_id"] = clm.get(1)
    refs["claim_id"] = f"CLM01, segment {clm_pos}"
    claim_pos = clm.get(5, 1)
    refs["place_of_service"] = f"CLM05-1, segment {clm_pos}"
    life, life_refs = _claim_life(segs, clm, clm_pos)
    raw.update(life)
    refs.update(life_refs)

    payer, payer_problem, payer_id = _payer(ctx)
    refs["payer"] = "2010BB NM1*PR NM109 and 2000B SBR09, mapped by payers/ids/payer_ids.yaml"
    if payer_problem:
        problems.append(("payer (2010BB NM1*PR NM109, 2000B SBR09)", payer_problem[0], payer_problem[1]))
    raw["payer"] = payer or ""
    if payer_id:
        raw["payer_id"] = payer_id
        refs["payer_id"] = "2010BB NM1*PR NM109"

    raw["patient"], patient_refs = _patient(ctx)
    refs.update(patient_refs)
    providers = _providers(ctx, segs)
    if providers:
        raw["providers"] = providers
        refs["providers"] = "2010AA, 2310B, 2310A NM109"

    diagnoses: list[str] = []
    for pos, _, seg in segs:
        if seg.id != "HI":
            continue
        for n, comps in enumerate(seg.elements, start=1):
            qualifier = comps[0].strip() if comps else ""
            code = comps[1].strip() if len(comps) > 1 else ""
            if qualifier in ("ABK", "ABF"):
                diagnoses.append(code)
                refs[f"diagnoses[{len(diagnoses)}]"] = f"HI{n:02d}-2, segment {pos}"
            elif qualifier in ("BK", "BF"):
                problems.append((f"HI (segment {pos}) HI{n:02d}-1", qualifier,
                                 "ICD-10-CM diagnoses (ABK, ABF); ICD-9-CM (BK, BF) ended in 2015"))
    raw["diagnoses"] = diagnoses
    refs["diagnoses"] = "2300 HI"

    prior_auth = next((s.get(2) for _, lp, s in segs if s.id == "REF" and s.get(1) == "G1" and lp == "2300"), "")
    lines_raw: list[dict[str, Any]] = []
    line_places: list[tuple[str, int]] = []
    for n, line in enumerate(loop.lines, start=1):
        entry, place, line_refs, line_problems, line_auth = _raw_line(line, n)
        lines_raw.append(entry)
        refs.update(line_refs)
        problems.extend(line_problems)
        if place:
            line_places.append(place)
        if line_auth and not prior_auth:
            prior_auth = line_auth
            ctx.prior_auth_on_lines = True
    if prior_auth:
        raw["prior_authorization"] = prior_auth
        refs["prior_authorization"] = "REF*G1"
    raw["lines"] = lines_raw
    refs["lines"] = "2400 loops"

    effective = {place or claim_pos for place, _ in line_places} if line_places else set()
    if line_places and len(line_places) < len(loop.lines):
        effective.add(claim_pos)
    if len(effective) > 1:
        shown = ", ".join(f"SV105 {p} at segment {pos}" for p, pos in line_places)
        problems.append(("place_of_service (CLM05-1, SV105)", f"CLM05-1 {claim_pos}; {shown}",
                         "one place of service for every line of the claim (pain-asp checks a claim "
                         "at one place of service: split the claim by place of service)"))
    raw["place_of_service"] = effective.pop() if len(effective) == 1 else claim_pos
    return raw, refs, problems


def _claim_life(segs: list[tuple[int, str, _Seg]], clm: _Seg, clm_pos: int) -> tuple[
        dict[str, Any], dict[str, str]]:
    """The claim's ``frequency`` (CLM05-3) and ``replaces`` (2300 REF*F8, the payer's claim
    control number of the claim a replacement or void replaces), and where they came from."""
    raw: dict[str, Any] = {}
    refs = {"frequency": f"CLM05-3, segment {clm_pos}",
            "replaces": "2300 REF*F8, payer claim control number"}
    if clm.get(5, 3):
        raw["frequency"] = clm.get(5, 3)
    ref = next(((p, s) for p, lp, s in segs
                if s.id == "REF" and s.get(1) == "F8" and lp == "2300"), None)
    if ref is not None:
        raw["replaces"] = ref[1].get(2)
        refs["replaces"] = f"2300 REF*F8 REF02, segment {ref[0]}"
    return raw, refs


def _raw_line(line: list[tuple[int, str, _Seg]], n: int) -> tuple[
        dict[str, Any], tuple[str, int] | None, dict[str, str], list[tuple[str, str, str]], str]:
    entry: dict[str, Any] = {}
    refs: dict[str, str] = {}
    problems: list[tuple[str, str, str]] = []
    key = f"lines[{n}]"
    place = None
    auth = ""
    sv1 = next(((p, s) for p, lp, s in line if s.id == "SV1" and lp == "2400"), None)
    if sv1 is None:
        lx = line[0][0] if line else 0
        problems.append((f"{key} (2400 loop at segment {lx})", "", "an SV1 professional service segment"))
        return entry, None, refs, problems, auth
    pos, seg = sv1
    refs[key] = f"SV1, segment {pos}"
    qualifier = seg.get(1, 1)
    if qualifier != "HC":
        problems.append((f"{key}.code (SV101-1, segment {pos})", qualifier,
                         "HC (a CPT/HCPCS code); pain-asp does not check NDC, revenue or other codes"))
    entry["code"] = seg.get(1, 2)
    refs[f"{key}.code"] = f"SV101-2, segment {pos}"
    entry["modifiers"] = [m for m in (seg.get(1, c) for c in range(3, 7)) if m]
    refs[f"{key}.modifiers"] = f"SV101-3..6, segment {pos}"
    charge = seg.get(2)
    if charge:
        entry["charge"] = charge
    refs[f"{key}.charge"] = f"SV102, segment {pos}"
    unit_basis = seg.get(3)
    quantity = "minutes" if unit_basis == "MJ" else "units"
    if unit_basis and unit_basis not in ("UN", "MJ"):
        problems.append((f"{key}.units (SV103, segment {pos})", unit_basis,
                         "UN (units) or MJ (anesthesia minutes)"))
    units = seg.get(4)
    refs[f"{key}.{quantity}"] = f"SV104, segment {pos}"
    if units:
        try:
            number = Decimal(units)
        except InvalidOperation:
            number = None
        if number is None or number != number.to_integral_value():
            problems.append((f"{key}.{quantity} (SV104, segment {pos})", _shown(units),
                             f"a whole number of {quantity}"))
        else:
            entry[quantity] = int(number)
    if seg.get(5):
        place = (seg.get(5), pos)
    pointers = []
    for c in range(1, 5):
        value = seg.get(7, c)
        if not value:
            continue
        if not value.isdigit():
            problems.append((f"{key}.dx (SV107-{c}, segment {pos})", _shown(value), "a diagnosis pointer 1-12"))
            continue
        pointers.append(int(value))
    entry["dx"] = pointers
    refs[f"{key}.dx"] = f"SV107, segment {pos}"
    dtp = next(((p, s) for p, lp, s in line if s.id == "DTP" and s.get(1) == "472" and lp == "2400"), None)
    if dtp is not None:
        dpos, dseg = dtp
        refs[f"{key}.date"] = f"DTP*472 DTP03, segment {dpos}"
        day, last, problem = _service_dates(dseg.get(2), dseg.get(3))
        if problem:
            problems.append((f"{key}.date (DTP03, segment {dpos})", _shown(dseg.get(3)), problem))
        else:
            entry["date"] = day
            if last != day:
                entry["through"] = last
                refs[f"{key}.through"] = f"DTP*472 DTP03, segment {dpos}"
    auth = next((s.get(2) for _, lp, s in line if s.id == "REF" and s.get(1) == "G1" and lp == "2400"), "")
    return entry, place, refs, problems, auth


def _service_dates(qualifier: str, value: str) -> tuple[str, str, str | None]:
    """The first and last date of service of DTP*472 (the same for D8), or a problem."""
    try:
        if qualifier == "D8":
            day = dt.datetime.strptime(value, "%Y%m%d").date().isoformat()
            return day, day, None
        if qualifier == "RD8":
            start, _, end = value.partition("-")
            first = dt.datetime.strptime(start, "%Y%m%d").date()
            last = dt.datetime.strptime(end, "%Y%m%d").date()
            if last < first:
                return "", "", "a date range whose last day is not before its first (RD8)"
            return first.isoformat(), last.isoformat(), None
    except ValueError:
        return "", "", "a date of service as CCYYMMDD (D8) or CCYYMMDD-CCYYMMDD (RD8)"
    return "", "", "a date of service qualified D8 or RD8"


def _payer(ctx: X12Context) -> tuple[str | None, tuple[str, str] | None, str]:
    """(policy, problem, payer id): the payer policy of the claim by its payer id (2010BB
    NM109), else by its claim filing indicator (2000B SBR09); when neither is mapped, the
    problem says what to add to the mapping."""
    payer_id = indicator = ""
    if ctx.subscriber is not None:
        for seg, loop in zip(ctx.subscriber.segments, ctx.subscriber.loops):
            if seg.id == "NM1" and seg.get(1) == "PR" and loop == "2010BB":
                payer_id = seg.get(9)
            elif seg.id == "SBR":
                indicator = seg.get(9)
    by_id, by_sbr, _ = payer_table()
    policy = by_id.get(payer_id.upper()) if payer_id else None
    if policy is None and indicator:
        policy = by_sbr.get(indicator.upper())
    if policy is None:
        shown = f"NM109 {_shown(payer_id) if payer_id else '(none)'}, SBR09 {_shown(indicator) if indicator else '(none)'}"
        add = [f"`payer_ids: {payer_id.upper()}: <policy id>`" if payer_id else "",
               f"`claim_filing_indicators: {indicator.upper()}: <policy id>`" if indicator else ""]
        return None, (shown, "a payer id or claim filing indicator the payer id mapping names: add "
                      + (" or ".join(a for a in add if a) or "the payer's id to the claim (NM109)")
                      + f" to payers/ids/payer_ids.yaml (or the file {PAYER_IDS_ENV} names)"), payer_id
    return policy, None, payer_id


def _providers(ctx: X12Context, claim: list[tuple[int, str, _Seg]]) -> dict[str, str]:
    """The NPIs of the billing (2010AA NM1*85), rendering (2310B NM1*82) and referring (2310A
    NM1*DN or P3) providers the claim names: NM109 when NM108 is XX, else empty (missing)."""
    named = [("billing", loop, seg) for seg, loop in
             zip(ctx.billing.segments, ctx.billing.loops)] if ctx.billing is not None else []
    named += [(role, loop, seg) for _, loop, seg in claim for role in ("rendering", "referring")]
    wanted = {"billing": ("2010AA", ("85",)), "rendering": ("2310B", ("82",)),
              "referring": ("2310A", ("DN", "P3"))}
    out: dict[str, str] = {}
    for role, loop, seg in named:
        where, entities = wanted[role]
        if seg.id == "NM1" and loop == where and seg.get(1) in entities and role not in out:
            out[role] = seg.get(9) if seg.get(8) == "XX" else ""
    return out


def _patient(ctx: X12Context) -> tuple[dict[str, Any], dict[str, str]]:
    member = ""
    subscriber_demo = patient_demo = None
    patient_name: list[str] = []
    if ctx.subscriber is not None:
        for seg, loop in zip(ctx.subscriber.segments, ctx.subscriber.loops):
            if seg.id == "NM1" and seg.get(1) == "IL":
                member = seg.get(9)
            elif seg.id == "DMG" and loop == "2010BA":
                subscriber_demo = seg
    if ctx.patient is not None:
        for seg, loop in zip(ctx.patient.segments, ctx.patient.loops):
            if seg.id == "NM1" and seg.get(1) == "QC":
                patient_name = [seg.get(3), seg.get(4), seg.get(5)]
            elif seg.id == "DMG":
                patient_demo = seg
    refs = {"patient.id": "2010BA NM1*IL NM109"}
    patient: dict[str, Any] = {"id": member}
    demo = subscriber_demo
    if ctx.patient is not None:
        demo = patient_demo
        digest = hashlib.sha256("|".join([*patient_name, patient_demo.get(2) if patient_demo else ""])
                                .upper().encode()).hexdigest()[:8]
        patient["id"] = f"{member}-{digest}" if member else ""
        refs["patient"] = "2010CA"
    if demo is not None:
        if demo.get(1) == "D8" and demo.get(2):
            try:
                patient["birth_date"] = dt.datetime.strptime(demo.get(2), "%Y%m%d").date().isoformat()
            except ValueError:
                pass
        if demo.get(3) in ("F", "M", "U"):
            patient["sex"] = demo.get(3)
    return patient, refs


def validate_x12(text: str) -> list[str]:
    """pyx12's findings on an 837P text, as messages without patient data (empty = valid)."""
    scan = _scan(text)
    out = [f"{field}: expected {expected}" + (f" (got {value})" if value else "")
           for _, field, value, expected in scan.errors]
    if scan.fatal:
        out.append(f"expected {scan.fatal}")
    return out


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Provider:
    """Submitter and billing provider for claims that did not come from an 837P.

    The defaults are placeholders that validate (the NPI is a made-up number with a valid
    check digit); replace them before a file is submitted.
    """

    name: str = "BILLING PROVIDER"
    npi: str = "1234567893"
    tax_id: str = "000000000"
    address: str = "ADDRESS UNKNOWN"
    city: str = "UNKNOWN"
    state: str = "TX"
    zip: str = "750010000"
    submitter_id: str = "PAINASP"
    receiver_id: str = "RECEIVER"
    phone: str = "0000000000"


def contexts_of(records: Iterable[Record]) -> dict[str, X12Context]:
    """Claim id -> the 837P context of each record read from an 837P."""
    out = {}
    for record in records:
        source = getattr(record, "source", None)
        if isinstance(source, X12Context) and record.claim_id:
            out[record.claim_id] = source
    return out


def write_837(claims: Iterable[Claim | Untouched], contexts: Mapping[str, X12Context] | None = None, *,
              provider: Provider | None = None, created: dt.datetime | None = None,
              usage: str = "T", validate: bool = True) -> str:
    """The claims as one 837P (005010X222A1) text.

    ``contexts`` (from :func:`contexts_of`) keeps what an 837P claim carries beyond the
    model; an :class:`Untouched` claim is written as it was read. ``created`` dates a new envelope (claims without a context); ``usage`` is ISA15
    for it (T test, P production). With ``validate`` the text is checked with pyx12 and a
    problem raises :class:`PainAspError`.
    """
    contexts = contexts or {}
    provider = provider or Provider()
    created = created or dt.datetime.now().replace(second=0, microsecond=0)
    claims = list(claims)
    if not claims:
        raise PainAspError("write_837: expected at least one claim")
    fresh = [_fresh_transaction(provider, created, usage)]
    fresh_claims = 0
    fresh_subscribers: dict[tuple[str, ...], _Level] = {}
    # interchange -> group -> transaction -> billing -> subscriber -> patient -> claims
    tree: dict[Any, Any] = {}
    for claim in claims:
        ctx = claim.context if isinstance(claim, Untouched) else contexts.get(claim.claim_id)
        if ctx is not None:
            txn, billing, subscriber, patient = ctx.transaction, ctx.billing, ctx.subscriber, ctx.patient
        else:  # new envelopes: at most CLAIMS_PER_TRANSACTION claims per transaction set
            if fresh_claims and fresh_claims % CLAIMS_PER_TRANSACTION == 0:
                fresh.append(_next_transaction(fresh[0], len(fresh) + 1))
            fresh_claims += 1
            npi = claim.providers.billing if claim.providers is not None else None
            txn, billing = fresh[-1], _fresh_billing(provider if npi is None else replace(provider, npi=npi))
            subscriber, patient = _fresh_subscriber(claim, fresh_subscribers), None
        keys = [("isa", txn.interchange, id(txn.isa)), ("gs", txn.group, id(txn.gs)), ("st", id(txn)),
                ("hl20", _level_key(billing)), ("hl22", _level_key(subscriber)), ("hl23", _level_key(patient))]
        node = tree
        for key, value in zip(keys, [txn.isa, txn.gs, txn, billing, subscriber, patient]):
            node = node.setdefault(key, {"value": value, "children": {}, "claims": []})
            if key == keys[-1]:
                node["claims"].append((claim, ctx))
            node = node["children"]
    lines: list[str] = []
    for isa_node in tree.values():
        isa = isa_node["value"].copy()
        groups = 0
        lines.append(_isa_text(isa))
        for gs_node in isa_node["children"].values():
            gs = gs_node["value"]
            groups += 1
            lines.append(gs.format())
            sets = 0
            for st_node in gs_node["children"].values():
                sets += 1
                lines.extend(_transaction_text(st_node))
            lines.append(_Seg.make("GE", str(sets), gs.get(6)).format())
        lines.append(_Seg.make("IEA", str(groups), isa.get(13)).format())
    text = "\n".join(lines) + "\n"
    if validate:
        problems = validate_x12(text)
        if problems:
            raise PainAspError("the 837P written does not validate against 005010X222A1:\n  "
                               + "\n  ".join(problems[:10]))
    return text


def _level_key(level: _Level | None) -> int:
    return id(level) if level is not None else 0


def _isa_text(isa: _Seg) -> str:
    isa.set(11, "^")
    isa.set(16, ":")
    return isa.format()


def _transaction_text(st_node: dict[str, Any]) -> list[str]:
    txn: _Transaction = st_node["value"]
    body: list[_Seg] = [txn.st.copy(), *[s.copy() for s in txn.header]]
    hl = 0
    for billing_node in st_node["children"].values():
        hl += 1
        billing_id = hl
        body.append(_Seg.make("HL", str(hl), None, "20", "1"))
        body.extend(s.copy() for s in (billing_node["value"].segments if billing_node["value"] else []))
        for sub_node in billing_node["children"].values():
            hl += 1
            sub_id = hl
            patients = [p for key, p in sub_node["children"].items() if key[1] != 0]
            body.append(_Seg.make("HL", str(hl), str(billing_id), "22", "1" if patients else "0"))
            body.extend(s.copy() for s in sub_node["value"].segments)
            own = sub_node["children"].get(("hl23", 0))
            for claim, ctx in (own["claims"] if own else []):
                body.extend(_claim_segments(claim, ctx))
            for pat_node in patients:
                hl += 1
                body.append(_Seg.make("HL", str(hl), str(sub_id), "23", "0"))
                body.extend(s.copy() for s in pat_node["value"].segments)
                for claim, ctx in pat_node["claims"]:
                    body.extend(_claim_segments(claim, ctx))
    body.append(_Seg.make("SE", str(len(body) + 1), txn.st.get(2)))
    return [s.format() for s in body]


def _fresh_transaction(provider: Provider, created: dt.datetime, usage: str) -> _Transaction:
    stamp_date, stamp_time = created.strftime("%Y%m%d"), created.strftime("%H%M")
    control = created.strftime("%y%m%d%H%M")[-9:].rjust(9, "0")
    isa = _Seg.make("ISA", "00", " " * 10, "00", " " * 10, "ZZ", provider.submitter_id.ljust(15)[:15],
                    "ZZ", provider.receiver_id.ljust(15)[:15], created.strftime("%y%m%d"), stamp_time,
                    "^", "00501", control, "0", usage, ":")
    gs = _Seg.make("GS", "HC", provider.submitter_id, provider.receiver_id, stamp_date, stamp_time,
                   "1", "X", IMPLEMENTATION)
    st = _Seg.make("ST", "837", "0001", IMPLEMENTATION)
    header = [
        _Seg.make("BHT", "0019", "00", f"PAINASP{stamp_date}", stamp_date, stamp_time, "CH"),
        _Seg.make("NM1", "41", "2", provider.name, None, None, None, None, "46", provider.submitter_id),
        _Seg.make("PER", "IC", provider.name, "TE", provider.phone),
        _Seg.make("NM1", "40", "2", provider.receiver_id, None, None, None, None, "46", provider.receiver_id),
    ]
    return _Transaction(isa, gs, st, -1, -1, header)


def _next_transaction(first: _Transaction, number: int) -> _Transaction:
    """Transaction set ``number`` in the interchange and group of ``first`` (ST02 and BHT03
    numbered on)."""
    header = [s.copy() for s in first.header]
    bht = next(s for s in header if s.id == "BHT")
    bht.set(3, f"{bht.get(3)}-{number}")
    st = _Seg.make("ST", "837", f"{number:04d}", IMPLEMENTATION)
    return _Transaction(first.isa, first.gs, st, first.interchange, first.group, header)


@lru_cache(maxsize=8)
def _fresh_billing(provider: Provider) -> _Level:
    return _Level("20", 0, None, [
        _Seg.make("NM1", "85", "2", provider.name, None, None, None, None, "XX", provider.npi),
        _Seg.make("N3", provider.address),
        _Seg.make("N4", provider.city, provider.state, provider.zip),
        _Seg.make("REF", "EI", provider.tax_id),
    ])


def _fresh_subscriber(claim: Claim, known: dict[tuple[str, ...], _Level]) -> _Level:
    """A subscriber loop for a claim without an 837P context (one per patient and payer)."""
    patient = claim.patient
    key = (patient.id, claim.payer, claim.payer_id or "", str(patient.birth_date or ""), patient.sex or "")
    level = known.get(key)
    if level is not None:
        return level
    by_id, by_sbr, _ = payer_table()
    payer_code = claim.payer_id or next((k for k, v in by_id.items() if v == claim.payer), claim.payer.upper()[:80])
    indicator = next((k for k, v in by_sbr.items() if v == claim.payer), "ZZ")
    segments = [
        _Seg.make("SBR", "P", "18", None, None, None, None, None, None, indicator),
        _Seg.make("NM1", "IL", "1", "UNKNOWN", None, None, None, None, "MI", patient.id),
    ]
    if patient.birth_date is not None:
        segments.append(_Seg.make("DMG", "D8", patient.birth_date.strftime("%Y%m%d"), patient.sex or "U"))
    segments.append(_Seg.make("NM1", "PR", "2", claim.payer.upper().replace("_", " ")[:60], None, None, None, None, "PI", payer_code))
    level = _Level("22", 0, None, segments, ["2000B", "2010BA"] + (["2010BA"] if patient.birth_date else [])
                   + ["2010BB"])
    known[key] = level
    return level


def _amount(value: Decimal | None) -> str:
    if value is None:
        return "0"
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# Order of the 2300 segments before its sub-loops (005010X222A1).
_CLAIM_ORDER = ["CLM", "DTP", "PWK", "CN1", "AMT", "REF", "K3", "NTE", "CR1", "CR2", "CRC", "HI", "HCP"]


def _claim_segments(claim: Claim | Untouched, ctx: X12Context | None) -> list[_Seg]:
    if isinstance(claim, Untouched):
        return [s.copy() for s in claim.context.claim_segments] + [
            s.copy() for line in claim.context.lines for s in line]
    total = sum((line.charge or Decimal(0)) for line in claim.lines)
    out: list[_Seg] = []
    if ctx is not None:
        head = [s.copy() for s in ctx.claim_segments]
    else:
        head = [_Seg.make("CLM", claim.claim_id, "0", None, None, ["11", "B", "1"], "Y", "A", "Y", "Y")]
    clm = head[0]
    clm.set(1, claim.claim_id)
    clm.set(2, _amount(total))
    composite = list(clm.elements[4]) if len(clm.elements) >= 5 else ["", "B", "1"]
    while len(composite) < 3:
        composite.append("")
    composite[0] = claim.place_of_service
    composite[2] = str(claim.frequency)
    clm.set(5, composite)
    diagnoses = [["ABK" if i == 0 else "ABF", dx.replace(".", "")] for i, dx in enumerate(claim.diagnoses)]
    hi_done = False
    auth_on_claim = ctx is None or not ctx.prior_auth_on_lines
    auth_done = False
    for seg in head:
        if seg.id == "HI" and seg.get(1, 1) in ("ABK", "ABF", "BK", "BF"):
            if not hi_done and diagnoses:
                out.append(_Seg("HI", diagnoses))
            hi_done = True
            continue
        if seg.id == "REF" and seg.get(1) == "G1":
            if auth_on_claim and claim.prior_authorization and not auth_done:
                out.append(_Seg.make("REF", "G1", claim.prior_authorization))
            auth_done = True
            continue
        if seg.id == "REF" and seg.get(1) == "F8":  # written from the model below
            continue
        out.append(seg)
    if claim.replaces:
        _insert_ordered(out, _Seg.make("REF", "F8", claim.replaces))
    if not hi_done and diagnoses:
        _insert_ordered(out, _Seg("HI", diagnoses))
    if auth_on_claim and claim.prior_authorization and not auth_done:
        _insert_ordered(out, _Seg.make("REF", "G1", claim.prior_authorization))
    if ctx is None and claim.providers is not None:
        out.extend(_fresh_claim_providers(claim.providers))
    originals = list(ctx.lines) if ctx is not None else []
    used: set[int] = set()
    for n, line in enumerate(claim.lines, start=1):
        match = _match_line(line, originals, used)
        out.extend(_line_segments(n, line, originals[match] if match is not None else None,
                                  full=match is not None and match not in used))
        if match is not None:
            used.add(match)
    return out


def _fresh_claim_providers(providers: Providers) -> list[_Seg]:
    """Referring (2310A) and rendering (2310B) provider loops of a claim from JSON or YAML: the
    NPI it gives and a placeholder name, like the other placeholders of a new file."""
    out = []
    for entity, npi in (("DN", providers.referring), ("82", providers.rendering)):
        if npi is not None:
            out.append(_Seg.make("NM1", entity, "1", "UNKNOWN", None, None, None, None, "XX", npi))
    return out


def _insert_ordered(segments: list[_Seg], new: _Seg) -> None:
    """Insert a 2300 segment after the last one that comes before it in the guide's order."""
    rank = _CLAIM_ORDER.index(new.id)
    at = 1
    for i, seg in enumerate(segments):
        if seg.id in _CLAIM_ORDER and _CLAIM_ORDER.index(seg.id) <= rank:
            at = i + 1
        elif seg.id not in _CLAIM_ORDER:
            break
    segments.insert(at, new)


def _line_key(segments: list[_Seg]) -> tuple[str, str, frozenset[str]]:
    sv1 = next((s for s in segments if s.id == "SV1"), _Seg("SV1"))
    dtp = next((s for s in segments if s.id == "DTP" and s.get(1) == "472"), _Seg("DTP"))
    date = dtp.get(3).split("-")[0]
    mods = frozenset(m for m in (sv1.get(1, c) for c in range(3, 7)) if m)
    return sv1.get(1, 2), date, mods


def _match_line(line: Line, originals: list[list[_Seg]], used: set[int]) -> int | None:
    """The original 2400 loop a line came from: same code, date and modifiers, else same code
    and date, else same date; unused loops first."""
    date = line.date.strftime("%Y%m%d")
    keys = [_line_key(o) for o in originals]
    tests = [
        lambda k: k == (line.code, date, frozenset(line.modifiers)),
        lambda k: k[:2] == (line.code, date),
        lambda k: k[1] == date,
    ]
    for test in tests:
        for prefer_unused in (True, False):
            for i, key in enumerate(keys):
                if test(key) and (i not in used or not prefer_unused):
                    return i
    return None


def _line_segments(n: int, line: Line, original: list[_Seg] | None, full: bool) -> list[_Seg]:
    sv1 = next((s.copy() for s in original if s.id == "SV1"), None) if original else None
    if sv1 is None:
        sv1 = _Seg("SV1")
    composite = list(sv1.elements[0]) if sv1.elements else []
    description = composite[6] if len(composite) > 6 else ""
    composite = ["HC", line.code, *(list(line.modifiers) + [""] * 4)[:4]]
    if description:
        composite.append(description)
    sv1.set(1, composite)
    sv1.set(2, _amount(line.charge))
    sv1.set(3, "UN" if line.minutes is None else "MJ")
    sv1.set(4, str(line.units if line.minutes is None else line.minutes))
    if len(sv1.elements) >= 5:
        sv1.set(5, "")
    sv1.set(7, [str(p) for p in line.dx] or [""])
    out = [_Seg.make("LX", str(n)), sv1]
    dtp = _service_date_segment(line)
    if original is None:
        return out + [dtp]
    placed = False
    for seg in original:
        if seg.id in ("LX", "SV1"):
            continue
        if seg.id == "DTP" and seg.get(1) == "472":
            out.append(dtp)
            placed = True
        elif full or (seg.id == "REF" and seg.get(1) == "G1"):
            out.append(seg.copy())
    if not placed:
        out.insert(2, dtp)
    return out


def _service_date_segment(line: Line) -> _Seg:
    """DTP*472 of a line: D8, or RD8 first-last for a line billed over several days."""
    first = line.date.strftime("%Y%m%d")
    if line.through is None or line.through == line.date:
        return _Seg.make("DTP", "472", "D8", first)
    return _Seg.make("DTP", "472", "RD8", f"{first}-{line.through.strftime('%Y%m%d')}")
