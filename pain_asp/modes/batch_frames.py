"""What a batch moves between the command, its spool and its workers (:mod:`pain_asp.modes.check`).

* The checked claims: :class:`Checked` (one claim, rendered) and :class:`CheckedChunk` (a
  worker's chunk of them, its texts joined as the output joins them).
* The spool (:class:`Spool`): validated records (:class:`Spooled`) or claims as read
  (:class:`Unparsed`), one msgpack frame per chunk, in an unnamed owner-only file; a record
  on its way to a worker (:class:`Outgoing`) and as the worker decodes it (:class:`Task`).
* The patient index (:class:`PatientIndex`): each patient's services in the batch, what
  batch history needs (:func:`merge_history`).
* :data:`ENCODER` and :func:`decoder`: msgpack in both directions, never pickles of claims.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Any, Optional

import msgspec

from ..models import ORIGINAL, VOID, Claim, HistoryEntry

__all__ = ["ENCODER", "Checked", "CheckedChunk", "NIL", "Outgoing", "PatientIndex", "Spool", "Spooled",
           "Task", "Unparsed", "checked_chunk", "checked_item", "chunk_items", "decoder", "line_charges",
           "merge_history", "spooled", "tally"]


class Checked(msgspec.Struct, array_like=True):
    """One checked input claim, rendered: what a writer, a progress line and a report need.

    Workers send these as msgpack arrays, decoded straight into this type (no per-claim
    Python in the command)."""

    claim_id: Optional[str]
    payer: Optional[str]
    status: str              # clean, info, warn, review, deny or error
    rank: int                # worst severity rank (0 deny .. 3 info), 9 when there is no finding
    findings: int            # number of findings
    text: str                # the result in the output format (one entry; see ResultWriter)
    charges: Optional[list[tuple[str, Optional[int]]]] = None  # (code, charge in cents) per line (with_charges)


class CheckedChunk(msgspec.Struct, array_like=True):
    """A chunk's checked claims as a worker sends them: their counts and their texts, joined
    as the output joins them (``,\\n  `` between JSON entries, nothing between the others),
    so that the command writes a chunk's bytes as they come and never handles its claims one
    by one (:meth:`pain_asp.render.results.ResultWriter.write_joined`). ``items`` are the
    :class:`Checked` items without their text, and ``sizes`` each text's length in characters,
    for a caller that wants the claims one by one (:func:`chunk_items`)."""

    claims: int
    statuses: dict[str, int]
    findings: int
    worst_rank: int
    text: bytes              # UTF-8
    sizes: list[int]
    items: msgspec.Raw       # list[Checked], texts empty

    def __len__(self) -> int:
        return self.claims


def checked_chunk(items: list[Checked], fmt: str) -> CheckedChunk:
    """``items`` as one :class:`CheckedChunk` (in a worker, or for a chunk no worker checked)."""
    from ..render.results import JSON_SEPARATOR

    texts = [item.text for item in items]
    bare = [msgspec.structs.replace(item, text="") for item in items]
    joined = (JSON_SEPARATOR if fmt == "json" else "").join(texts).encode("utf-8")
    return CheckedChunk(len(items), *tally(items), joined, [len(text) for text in texts],
                        msgspec.Raw(ENCODER.encode(bare)))


def tally(items: list[Checked]) -> tuple[dict[str, int], int, int]:
    """The statuses counted, the findings and the worst severity rank of ``items`` (no Python per claim)."""
    return (dict(Counter(map(attrgetter("status"), items))), sum(map(attrgetter("findings"), items)),
            min(map(attrgetter("rank"), items), default=9))


def chunk_items(chunk: CheckedChunk, fmt: str) -> list[Checked]:
    """The :class:`Checked` items of ``chunk``, each with its text."""
    from ..render.results import JSON_SEPARATOR

    text = chunk.text.decode("utf-8")
    gap = len(JSON_SEPARATOR) if fmt == "json" else 0
    items = decoder("checked").decode(chunk.items)
    start = 0
    for item, size in zip(items, chunk.sizes):
        item.text = text[start:start + size]
        start += size + gap
    return items


def checked_item(result: Any, fmt: str, colour: bool,
             charges: Optional[list[tuple[str, Optional[int]]]] = None) -> Checked:
    from ..render.results import render_result
    from ..vocabulary import SEVERITY_RANK

    rank = min((SEVERITY_RANK[f.severity] for f in result.findings), default=9)
    return Checked(result.claim_id, result.payer, result.status, rank, len(result.findings),
                   render_result(result, fmt, colour), charges)


def line_charges(claim: Optional[Claim]) -> Optional[list[tuple[str, Optional[int]]]]:
    """Each line's code and charge in cents (None when not billed with a charge)."""
    if claim is None:
        return None
    return [(line.code, int(line.charge * 100) if line.charge is not None else None) for line in claim.lines]


# --- the patient index ----------------------------------------------------------------------

ENCODER = msgspec.msgpack.Encoder()
_DECODERS: dict[str, Any] = {}


def decoder(name: str) -> Any:
    """msgpack decoders, built on first use (building one costs milliseconds at start-up)."""
    if name not in _DECODERS:
        from .batch_index import IndexParts

        types = {"history": list[HistoryEntry], "spooled": list[Spooled],
                 "tasks": tuple[list[Task], list[tuple[str, list[tuple[str, bytes]]]]],
                 "claim": Claim, "lines": list[Unparsed],
                 "line tasks": tuple[msgspec.Raw, list[msgspec.Raw], list[msgspec.Raw], int],
                 "repeats": list[tuple[int, str]], "patient rows": list[tuple[bytes, bytes, int, bytes]],
                 "repeat task": tuple[int, list[msgspec.Raw]],
                 "patient task": tuple[int, list[msgspec.Raw], list[msgspec.Raw]],
                 "results": tuple[int, msgspec.Raw], "checked": list[Checked], "chunk": CheckedChunk,
                 "index parts": IndexParts, "piece parts": tuple[IndexParts, list[msgspec.Raw], int]}
        _DECODERS[name] = msgspec.msgpack.Decoder(types[name])
    return _DECODERS[name]


def merge_history(claim: Claim, services: Iterable[bytes] = ()) -> list[HistoryEntry]:
    """The claim's own history plus ``services`` dated on or before its first day, sorted.

    ``services`` are the encoded services (:meth:`PatientIndex.others`) of the patient's
    other claims in input order; the result is what :func:`pain_asp.history.batch_history`
    gives the claim (the same entries, in the same order).
    """
    entries = list(claim.history)
    if services:
        first_day = claim.first_day
        decode = decoder("history").decode
        for blob in services:
            entries.extend(e for e in decode(blob) if e.date <= first_day)
    entries.sort(key=lambda e: (e.date, e.code))
    return entries


class PatientIndex:
    """Each patient's services in the batch, compact: what batch history needs, no more.

    Per claim: its id and its services (:func:`pain_asp.history.claim_services`) as msgpack
    bytes, about 200 bytes a claim. :meth:`history` gives a claim exactly what
    :func:`pain_asp.history.batch_history` over the same claims would; :meth:`others` gives
    the encoded part a worker decodes itself (:func:`merge_history`). A JSON Lines worker
    keys one by the hashed ids of :mod:`pain_asp.modes.batch_index` (bytes, not text).
    """

    def __init__(self) -> None:
        self._by_patient: dict[str | bytes, list[tuple[str | bytes, bytes]]] = {}
        self._replaced: dict[str | bytes, set[str | bytes]] = {}

    def add(self, claim: Claim) -> None:
        """Record a valid claim's services (claims are added in input order). A replacement
        or void takes the place of the patient's claim with its claim id, as in
        :func:`pain_asp.history.current_claims`."""
        from ..history import claim_services

        self.add_services(claim.patient.id, claim.claim_id, claim.frequency,
                          ENCODER.encode(claim_services(claim)))

    def add_services(self, patient_id: str | bytes, claim_id: str | bytes, frequency: int,
                     services: bytes) -> None:
        """:meth:`add` for a claim validated elsewhere (a worker), given its encoded services."""
        held = self._by_patient.get(patient_id)
        if held is None:
            held = self._by_patient[patient_id] = []
        if frequency != ORIGINAL:
            self._replaced.setdefault(patient_id, set()).add(claim_id)
            held[:] = [entry for entry in held if entry[0] != claim_id]
        if frequency != VOID:
            held.append((claim_id, services))

    def freeze(self) -> None:
        """Drop patients with one claim: their claim sees nothing of the batch but itself."""
        self._by_patient = {k: v for k, v in self._by_patient.items() if len(v) > 1}

    def __len__(self) -> int:
        return len(self._by_patient)

    def table(self, patients: Iterable[str | bytes]) -> list[tuple[str | bytes, list[tuple[str | bytes, bytes]]]]:
        """The claims (id and encoded services) of ``patients`` held here, for a worker
        (:meth:`of_table`)."""
        held = self._by_patient
        return [(patient, held[patient]) for patient in sorted(patients) if patient in held]

    @classmethod
    def of_table(cls, table: Iterable[tuple[str | bytes, list[tuple[str | bytes, bytes]]]]) -> PatientIndex:
        """The index of a :meth:`table` (its :meth:`others` answer as the table's index did)."""
        index = cls()
        index._by_patient = dict(table)
        return index

    def others(self, patient_id: str | bytes, claim_id: str | bytes) -> list[bytes]:
        """The encoded services of the patient's other claims, in input order."""
        return [blob for other, blob in self._by_patient.get(patient_id, ()) if other != claim_id]

    def history(self, claim: Claim) -> list[HistoryEntry]:
        """The claim's own history plus its patient's other claims dated on or before its first day."""
        return merge_history(claim, self.others(claim.patient.id, claim.claim_id))

    __call__ = history

    def replaced_ids(self, patient_id: str) -> set[str]:
        """As :meth:`pain_asp.history.BatchHistory.replaced_ids`."""
        return self._replaced.get(patient_id, set())


# --- the spool: validated records on disk ----------------------------------------------------

Errors = list[tuple[str, Optional[str], str, str, str, Optional[int]]]  # InputError fields, in order
NIL = msgspec.Raw(b"\xc0")  # msgpack nil: "no claim"


class Spooled(msgspec.Struct, array_like=True):
    """One validated record in the spool: the claim stays encoded until a worker needs it."""

    file: str
    position: int
    claim_id: Optional[str]
    errors: Errors
    claim: msgspec.Raw                  # an encoded Claim, or msgpack nil
    payer: Optional[str] = None
    patient: Optional[str] = None
    charges: Optional[list[tuple[str, Optional[int]]]] = None


class Outgoing(msgspec.Struct, array_like=True):
    """A record on its way to a worker (the same layout as :class:`Task`)."""

    file: str
    position: int
    claim_id: Optional[str]
    errors: Errors
    claim: msgspec.Raw
    history: Optional[list[HistoryEntry]] = None   # the full history (with a history store; else the
                                                   # worker merges the chunk's table, PatientIndex.table)


class Task(msgspec.Struct, array_like=True):
    """A record as a worker decodes it."""

    file: str
    position: int
    claim_id: Optional[str]
    errors: Errors
    claim: Optional[Claim]
    history: Optional[list[HistoryEntry]] = None


class Unparsed(msgspec.Struct, array_like=True):
    """A claim of a JSON Lines or JSON file as read, unparsed (``text``; ``line`` 0 for an
    element of a JSON array), an 837P's transaction sets (``claims`` of them from
    ``position`` on, ``line`` the first ST segment's number), or the errors of a claim that
    could not be read (:func:`pain_asp.inputs.readers.split_claims`)."""

    file: str
    position: int
    line: int
    text: bytes
    errors: Errors = []
    claims: int = 0


FRAME = struct.Struct("<I")


def spooled(record: Any, with_charges: bool) -> Spooled:
    errors = [(e.file, e.claim_id, e.field, e.value, e.expected, e.line) for e in record.errors]
    claim = record.claim
    if claim is None:
        return Spooled(record.file, record.position, record.claim_id, errors, NIL)
    return Spooled(record.file, record.position, record.claim_id, errors,
                    msgspec.Raw(ENCODER.encode(claim)), claim.payer, claim.patient.id,
                    line_charges(claim) if with_charges else None)


class Spool:
    """Validated records in a temporary file, one msgpack frame per chunk.

    The records hold patient data, so the file is its owner's only and has no name: it is
    unlinked as it is created (``O_TMPFILE`` on Linux), and the system frees it when this
    process ends, however it ends (a signal, or a kill that no clean-up survives). It goes
    into ``folder`` (``--spool-dir``, else beside the output file), where the user keeps the
    data, rather than a shared temporary folder.
    """

    def __init__(self, folder: Optional[str], chunk_size: int, with_charges: bool) -> None:
        import tempfile

        self._handle = tempfile.TemporaryFile(prefix="pain-asp-spool-", dir=folder)
        self.chunk_size = chunk_size
        self.with_charges = with_charges
        self._pending: list[Spooled] = []
        self.count = 0

    def add(self, record: Any) -> None:
        self.append(spooled(record, self.with_charges))

    def append(self, entry: Any) -> Optional[bytes]:
        """Spool one entry; returns the frame written when it completes a chunk."""
        self._pending.append(entry)
        self.count += 1
        return self.flush() if len(self._pending) >= self.chunk_size else None

    def flush(self) -> Optional[bytes]:
        """Write the pending entries as a frame; returns it (None when nothing was pending)."""
        if not self._pending:
            return None
        pending, self._pending = self._pending, []
        self.count -= len(pending)
        return self.write(pending)

    def write(self, entries: list[Any]) -> bytes:
        """Write ``entries`` (a chunk) as a frame at once; returns the frame."""
        data = ENCODER.encode(entries)
        self._handle.write(FRAME.pack(len(data)) + data)
        self.count += len(entries)
        return data

    def write_frame(self, data: Any) -> None:
        """Write a frame encoded elsewhere (a chunk's entries, as a worker sent them)."""
        data = bytes(data)
        self._handle.write(FRAME.pack(len(data)) + data)

    def fileno(self) -> int:
        return self._handle.fileno()

    def frames(self) -> Iterator[bytes]:
        """Every frame, from the start (after writing the pending entries)."""
        self.flush()
        handle = self._handle
        handle.seek(0)
        while True:
            head = handle.read(FRAME.size)
            if not head:
                return
            (size,) = FRAME.unpack(head)
            yield handle.read(size)

    def chunks(self) -> Iterator[list[Spooled]]:
        for frame in self.frames():
            yield decoder("spooled").decode(frame)

    def close(self) -> None:
        self._handle.close()


