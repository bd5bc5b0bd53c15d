"""Batch checking at scale: streaming, worker processes, progress (docs/architecture.md, docs/scaling.md).

A billing company checks a day of claims for many practices at once. Two things make that
more than a loop over :meth:`pain_asp.engine.Checker.check`:

* **Batch history needs every claim of a patient.** A claim sees the patient's other claims
  of the batch dated on or before its first date of service (docs/architecture.md), and those may come
  later in the file. So a batch is read twice:

  1. **Index pass.** Every claim is read and validated once (:func:`pain_asp.inputs.readers.read_claims`,
     so JSON Lines, JSON, YAML and X12 837P all work). What a later claim needs of it (its
     services: date, code, modifiers, units, purpose, relief, levels, side; see
     :func:`pain_asp.history.claim_services`) goes into a :class:`PatientIndex`, encoded as
     a few hundred bytes per claim; patients with a single claim are dropped from it at the
     end. The validated records themselves go to a *spool*: a temporary file of msgpack
     frames, one frame per chunk, so that nothing is parsed or validated twice (owner-only
     and without a name, so that no patient data outlives the process; see :class:`_Spool`).
  2. **Check pass.** The spool is read back a chunk at a time; each claim gets its history
     from the index (plus the history store with ``--history``), exactly as
     :func:`pain_asp.history.batch_history` would give it, and the chunk goes to a worker.

  JSON Lines, the format of large batches, is not parsed here at all (:func:`_with_lines`):
  this process cuts the files into lines and spools those; the workers parse and validate
  each chunk and build the claim-id check and the patient index in buckets of hashed ids
  (:mod:`pain_asp.modes.batch_index`), and in the check pass a worker parses the chunk
  again, rebuilds the claims of its patients from the index's parts it is sent, and checks
  it. So this process's work per claim is a line read and bytes moved between the workers,
  the spool files and the output, with no Python run per claim. JSON arrays go the same way,
  and 837P files cut into transaction sets (:func:`pain_asp.inputs.x12.split_x12`), whose
  records the workers send back validated so that pyx12 reads them once, and YAML files,
  each read whole by one worker (anchors may reach across its claims); a batch with a
  history store or charges for the report is read and validated here.

  Small inputs (up to :attr:`BatchOptions.in_memory_limit` claims) skip the spool and the
  workers: they are read once, checked in this process, as before.

* **clingo never forgets a term.** A process that grounds many claims keeps growing (about 8 KB a
  claim was measured, docs/scaling.md). Checking happens in worker processes
  (:class:`WorkerPool`) that retire once they have checked
  :attr:`BatchOptions.recycle_claims` claims or their resident memory passes
  :attr:`BatchOptions.recycle_mb`, and are replaced by fresh ones. Each worker builds one
  :class:`~pain_asp.engine.Checker` and reuses it for every chunk it checks.

Order and completeness (docs/architecture.md): chunks are numbered, results come back in any order and
are released in input order, with at most ``2 x workers`` chunks held at once. Every input
claim yields exactly one item, an unreadable claim an error record. A worker that dies
(killed, out of memory) is replaced and its chunk is tried again once; if it dies again,
each claim of that chunk gets an error record saying it was not checked, and the batch goes
on. Because every claim's history is computed in this process from the whole batch, the
results do not depend on how many workers there are, nor on how claims fall into chunks.

Workers render each result in the output format (:func:`pain_asp.render.results.render_result`)
and send a chunk's texts joined as one block (:class:`CheckedChunk`), so the parent writes
bytes; :class:`~pain_asp.render.results.ResultWriter` adds the header, the separators and the
summary. Messages between processes are msgpack bytes, never pickles of claims.

Memory: the parent holds at most ``2 x workers`` chunks and no result once written, and,
for a batch it reads itself (YAML, 837P, a history store), the patient index (a few hundred
bytes a claim, only for patients with more than one claim); each worker stays under its
recycling limit.
"""

from __future__ import annotations

import functools
import itertools
import os
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any, Optional, TextIO

import msgspec

from ..errors import InputError, PainAspError
from ..memory import rss_mb
from ..models import ORIGINAL, VOID, Claim, HistoryEntry
from ..processes import worker_context
from ..vocabulary import FORMATS

__all__ = [
    "BatchOptions", "BatchSummary", "Checked", "CheckedChunk", "PatientIndex", "Progress", "checked_chunk",
    "WorkerPool", "check_files", "check_partition", "claim_identity", "default_workers",
    "duplicate_positions", "iter_checked", "patient_key",
]



def default_workers() -> int:
    """The cores this process may run on (``--workers`` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class BatchOptions(msgspec.Struct):
    """How a batch is read, split and checked."""

    workers: Optional[int] = None     # worker processes; None: default_workers()
    chunk_size: int = 1000            # claims per chunk (one clingo Control each): a fresh worker peaks
                                      # near 114 MB in a chunk of 1,000 and near 150 in one of 1,500
    in_memory_limit: int = 1000       # up to this many claims: one pass, checked in this process
    recycle_claims: Optional[int] = None  # a worker retires after checking this many claims (default:
                                      # one chunk: a second chunk took a worker 25-55 MB further;
                                      # docs/scaling.md) ...
    recycle_mb: float = 115.0         # ... or once its resident memory passes this (MB)
    fmt: str = "jsonl"                # what workers render: text, json, jsonl, csv
    colour: bool = False              # ANSI colour in text output
    with_charges: bool = False        # attach each claim's line charges (for the report)
    spool_dir: Optional[str] = None   # where the spool file goes (default: the temp folder)
    dask: Optional[str] = None        # check chunks on Dask: "local" or "tcp://HOST:PORT" (dask_pool.py)

    def claims_per_worker(self) -> int:
        """How many claims a worker checks before it retires: ``recycle_claims``, else one chunk."""
        return max(1, self.recycle_claims if self.recycle_claims is not None else self.chunk_size)

    def worker_count(self) -> int:
        """The number of worker processes to use: ``workers``, at most the machine's cores."""
        cores = default_workers()
        return max(1, min(self.workers, cores) if self.workers is not None else cores)


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
    return CheckedChunk(len(items), *_tally(items), joined, [len(text) for text in texts],
                        msgspec.Raw(_ENCODER.encode(bare)))


def _tally(items: list[Checked]) -> tuple[dict[str, int], int, int]:
    """The statuses counted, the findings and the worst severity rank of ``items`` (no Python per claim)."""
    return (dict(Counter(map(attrgetter("status"), items))), sum(map(attrgetter("findings"), items)),
            min(map(attrgetter("rank"), items), default=9))


def chunk_items(chunk: CheckedChunk, fmt: str) -> list[Checked]:
    """The :class:`Checked` items of ``chunk``, each with its text."""
    from ..render.results import JSON_SEPARATOR

    text = chunk.text.decode("utf-8")
    gap = len(JSON_SEPARATOR) if fmt == "json" else 0
    items = _decoder("checked").decode(chunk.items)
    start = 0
    for item, size in zip(items, chunk.sizes):
        item.text = text[start:start + size]
        start += size + gap
    return items


class BatchSummary(msgspec.Struct):
    """Counts over a whole batch, for the exit code and the progress line."""

    claims: int = 0
    findings: int = 0
    statuses: dict[str, int] = msgspec.field(default_factory=dict)
    worst_rank: int = 9
    errors: int = 0
    mode: str = "in-process"  # in-process | workers | dask
    workers: int = 0
    workers_started: int = 0  # worker processes started, replacements included
    workers_retired: int = 0  # ... that retired at their claim or memory limit
    workers_died: int = 0     # ... that stopped unexpectedly

    def add(self, item: Checked) -> None:
        """Count one checked claim."""
        self.add_all([item])

    def add_all(self, items: list[Checked]) -> None:
        """Count checked claims (a chunk's)."""
        self._count(len(items), *_tally(items))

    def add_chunk(self, chunk: CheckedChunk) -> None:
        """Count a worker's chunk of checked claims."""
        self._count(chunk.claims, chunk.statuses, chunk.findings, chunk.worst_rank)

    def _count(self, claims: int, statuses: dict[str, int], findings: int, worst_rank: int) -> None:
        for status, count in statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.claims += claims
        self.findings += findings
        self.errors = self.statuses.get("error", 0)
        self.worst_rank = min(self.worst_rank, worst_rank)

    def exit_code(self, fail_on: str) -> int:
        """docs/rules.md: 2 for input errors, 1 for a finding at ``fail_on`` or worse, else 0."""
        from ..vocabulary import SEVERITY_RANK

        if self.errors:
            return 2
        if fail_on == "never":
            return 0
        return 1 if self.worst_rank <= SEVERITY_RANK[fail_on] else 0


def _checked(result: Any, fmt: str, colour: bool,
             charges: Optional[list[tuple[str, Optional[int]]]] = None) -> Checked:
    from ..render.results import render_result
    from ..vocabulary import SEVERITY_RANK

    rank = min((SEVERITY_RANK[f.severity] for f in result.findings), default=9)
    return Checked(result.claim_id, result.payer, result.status, rank, len(result.findings),
                   render_result(result, fmt, colour), charges)


def _line_charges(claim: Optional[Claim]) -> Optional[list[tuple[str, Optional[int]]]]:
    """Each line's code and charge in cents (None when not billed with a charge)."""
    if claim is None:
        return None
    return [(line.code, int(line.charge * 100) if line.charge is not None else None) for line in claim.lines]


# --- progress ------------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on a terminal: claims done, claims/s, findings so far.

    Silent unless ``stream`` is a terminal (pipes, files and CI stay clean), and silent for
    the first ``delay`` seconds so that a quick check never flashes a bar.
    """

    def __init__(self, stream: Optional[TextIO] = None, enabled: Optional[bool] = None,
                 delay: float = 0.5, interval: float = 0.25) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.delay, self.interval = delay, interval
        self.start = time.monotonic()
        self._last = 0.0
        self._shown = False
        self.total: Optional[int] = None

    def _due(self, force: bool) -> bool:
        if not self.enabled:
            return False
        now = time.monotonic()
        if not force and (now - self.start < self.delay or now - self._last < self.interval):
            return False
        self._last = now
        return True

    def _show(self, text: str) -> None:
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def reading(self, count: int, force: bool = False) -> None:
        """During the index pass: how many claims have been read."""
        if self._due(force):
            rate = count / max(time.monotonic() - self.start, 1e-9)
            self._show(f"pain-asp: reading {count:,} claims ({rate:,.0f}/s)")

    def checking(self, summary: BatchSummary, force: bool = False) -> None:
        """During the check pass: a bar, claims done, claims/s, findings so far."""
        if not self._due(force):
            return
        done = summary.claims
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        deny = summary.statuses.get("deny", 0)
        head = "pain-asp: "
        if self.total:
            share = min(done / self.total, 1.0)
            filled = int(share * 24)
            eta = (self.total - done) / rate if rate > 0 else 0.0
            head += f"[{'#' * filled}{'.' * (24 - filled)}] {share:4.0%} {done:,}/{self.total:,}"
            tail = f"  eta {int(eta) // 60}:{int(eta) % 60:02d}" if done < self.total else ""
        else:
            head += f"{done:,}"
            tail = ""
        self._show(f"{head} claims  {rate:,.0f} claims/s  {summary.findings:,} findings  "
                   f"{deny:,} denied{tail}")

    def close(self, summary: Optional[BatchSummary] = None) -> None:
        """Show the final figures (if a bar was shown) and end the line."""
        if not self.enabled or not self._shown:
            return
        if summary is not None:
            self.checking(summary, force=True)
        self.stream.write("\n")
        self.stream.flush()


# --- the patient index ----------------------------------------------------------------------

_ENCODER = msgspec.msgpack.Encoder()
_DECODERS: dict[str, Any] = {}


def _decoder(name: str) -> Any:
    """msgpack decoders, built on first use (building one costs milliseconds at start-up)."""
    if name not in _DECODERS:
        from .batch_index import IndexParts

        types = {"history": list[HistoryEntry], "spooled": list[_Spooled],
                 "tasks": tuple[list[_Task], list[tuple[str, list[tuple[str, bytes]]]]],
                 "claim": Claim, "lines": list[_Line],
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
        decode = _decoder("history").decode
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
                          _ENCODER.encode(claim_services(claim)))

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

_Errors = list[tuple[str, Optional[str], str, str, str, Optional[int]]]  # InputError fields, in order
_NIL = msgspec.Raw(b"\xc0")  # msgpack nil: "no claim"


class _Spooled(msgspec.Struct, array_like=True):
    """One validated record in the spool: the claim stays encoded until a worker needs it."""

    file: str
    position: int
    claim_id: Optional[str]
    errors: _Errors
    claim: msgspec.Raw                  # an encoded Claim, or msgpack nil
    payer: Optional[str] = None
    patient: Optional[str] = None
    charges: Optional[list[tuple[str, Optional[int]]]] = None


class _Outgoing(msgspec.Struct, array_like=True):
    """A record on its way to a worker (the same layout as :class:`_Task`)."""

    file: str
    position: int
    claim_id: Optional[str]
    errors: _Errors
    claim: msgspec.Raw
    history: Optional[list[HistoryEntry]] = None   # the full history (with a history store; else the
                                                   # worker merges the chunk's table, PatientIndex.table)


class _Task(msgspec.Struct, array_like=True):
    """A record as a worker decodes it."""

    file: str
    position: int
    claim_id: Optional[str]
    errors: _Errors
    claim: Optional[Claim]
    history: Optional[list[HistoryEntry]] = None


class _Line(msgspec.Struct, array_like=True):
    """A claim of a JSON Lines or JSON file as read, unparsed (``text``; ``line`` 0 for an
    element of a JSON array), an 837P's transaction sets (``claims`` of them from
    ``position`` on, ``line`` the first ST segment's number), or the errors of a claim that
    could not be read (:func:`pain_asp.inputs.readers.split_claims`)."""

    file: str
    position: int
    line: int
    text: bytes
    errors: _Errors = []
    claims: int = 0


_FRAME = struct.Struct("<I")


def _spooled(record: Any, with_charges: bool) -> _Spooled:
    errors = [(e.file, e.claim_id, e.field, e.value, e.expected, e.line) for e in record.errors]
    claim = record.claim
    if claim is None:
        return _Spooled(record.file, record.position, record.claim_id, errors, _NIL)
    return _Spooled(record.file, record.position, record.claim_id, errors,
                    msgspec.Raw(_ENCODER.encode(claim)), claim.payer, claim.patient.id,
                    _line_charges(claim) if with_charges else None)


class _Spool:
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
        self._pending: list[_Spooled] = []
        self.count = 0

    def add(self, record: Any) -> None:
        self.append(_spooled(record, self.with_charges))

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
        data = _ENCODER.encode(entries)
        self._handle.write(_FRAME.pack(len(data)) + data)
        self.count += len(entries)
        return data

    def write_frame(self, data: Any) -> None:
        """Write a frame encoded elsewhere (a chunk's entries, as a worker sent them)."""
        data = bytes(data)
        self._handle.write(_FRAME.pack(len(data)) + data)

    def fileno(self) -> int:
        return self._handle.fileno()

    def frames(self) -> Iterator[bytes]:
        """Every frame, from the start (after writing the pending entries)."""
        self.flush()
        handle = self._handle
        handle.seek(0)
        while True:
            head = handle.read(_FRAME.size)
            if not head:
                return
            (size,) = _FRAME.unpack(head)
            yield handle.read(size)

    def chunks(self) -> Iterator[list[_Spooled]]:
        for frame in self.frames():
            yield _decoder("spooled").decode(frame)

    def close(self) -> None:
        self._handle.close()


# --- the worker side ---------------------------------------------------------------------------

def check_task(checker: Any, payload: bytes, fmt: str, colour: bool) -> Any:
    """Run one chunk in a worker; the payload's first byte says what to do with the rest.

    * ``R``: check validated records (msgpack ``_Task`` list, and the services of the chunk's
      patients with several claims, :meth:`PatientIndex.table`) and render each result;
    * ``L``: the same for JSON Lines claims as read (after the batch's salt, 16 bytes: a
      ``_Line`` frame and the chunk's parts of the batch index,
      :meth:`pain_asp.modes.batch_index.BatchIndex.chunk`): parse, validate, check, render;
    * ``X``: the same for a piece's records (an 837P's, a YAML file's) validated in the
      index pass (``_Spooled``);
    * ``I``: parse and validate a ``_Line`` frame for the index pass (after the batch's salt,
      16 bytes, the number of the frame's first claim, 8, and the number of buckets, 4): one
      :func:`pain_asp.modes.batch_index.index_row` per claim (none for a line that is not
      a claim), its services None when the claim fails a check of the batch's
      (:func:`pain_asp.inputs.records.cross_check`: a diagnosis pointer, the payer), sorted
      into buckets (:func:`pain_asp.modes.batch_index.bucket_rows`), with a piece's records
      (an 837P's transaction sets, a YAML file) as validated (``_Spooled``); or only the
      file's name in a list when an element of a JSON array or an 837P's transaction sets
      do not read on their own;
    * ``D`` and ``S``: a bucket's task of the batch index,
      :func:`pain_asp.modes.batch_index.find_repeats` and
      :func:`pain_asp.modes.batch_index.share_patients`.

    A checked chunk gives a :class:`CheckedChunk` of its claims, in order.
    """
    kind, body = payload[:1], payload[1:]
    if kind == b"I":
        return _index_lines(checker, body)
    if kind == b"D":
        from .batch_index import find_repeats

        chunk_size, parts = _decoder("repeat task").decode(body)
        return find_repeats(parts, chunk_size)
    if kind == b"S":
        from .batch_index import share_patients

        chunk_size, parts, repeated = _decoder("patient task").decode(body)
        return share_patients(parts, repeated, chunk_size)
    if kind in (b"L", b"X"):
        return _check_lines(checker, body, fmt, colour, validated=kind == b"X")
    from ..inputs.records import Record

    records = []
    past: dict[int, Callable[[], list[HistoryEntry]]] = {}
    tasks, table = _decoder("tasks").decode(body)
    index = PatientIndex.of_table(table)
    for task in tasks:
        errors = [InputError(*e) for e in task.errors]
        records.append(Record(task.file, task.position, claim=task.claim, errors=errors,
                              claim_id=task.claim_id))
        if task.claim is not None:
            past[id(task.claim)] = functools.partial(list, task.history) if task.history is not None \
                else functools.partial(_merged_others, index, task.claim, task.claim.patient.id, task.claim_id)
    return _check_records(checker, records, past, fmt, colour)


def _line_record(line: _Line) -> Any:
    """The record of a JSON Lines or JSON claim (:func:`pain_asp.inputs.readers.record_from_line`)."""
    from ..inputs.readers import record_from_line
    from ..inputs.records import Record

    if line.errors:
        return Record(line.file, line.position, errors=[InputError(*e) for e in line.errors])
    return record_from_line(line.file, line.position, line.line, line.text)


def _line_records(line: _Line) -> Iterable[Any]:
    """The records of a JSON Lines or JSON claim, of an 837P's transaction sets
    (:func:`pain_asp.inputs.x12.records_from_piece`, read a set at a time), or of a YAML file
    (:func:`pain_asp.inputs.readers.file_records`, read whole)."""
    if not line.claims:  # a JSON claim (the common case: nothing imported for it)
        return [_line_record(line)]
    from ..inputs.readers import WHOLE_FILE, file_records

    if line.line == WHOLE_FILE:
        return file_records(Path(line.file))
    from ..inputs.x12 import records_from_piece

    return records_from_piece(line.file, line.position, line.line, line.text, line.claims)


def _index_lines(checker: Any, body: bytes) -> Any:
    from ..history import claim_services
    from ..inputs.readers import Unsplittable
    from ..inputs.records import cross_check
    from .batch_index import bucket_rows, index_row

    salt, start = body[:16], int.from_bytes(body[16:24], "little")
    buckets, chunk_size = int.from_bytes(body[24:28], "little"), int.from_bytes(body[28:32], "little")
    payers = set(checker.known_payers())
    rows: list[Any] = []
    spooled: list[_Spooled] = []  # a piece's records, validated: the check pass does not read it again
    offset = 0
    lines = _decoder("lines").decode(memoryview(body)[32:])
    for line in lines:
        try:
            for record in _line_records(line):
                claim = record.claim
                if claim is not None:
                    cross_check(record, payers, {})
                    services = _ENCODER.encode(claim_services(claim)) if record.claim is not None else None
                    rows.append(index_row(salt, start + offset, claim.claim_id, claim.frequency, claim.patient.id,
                                          f"{record.file} claim {record.position}", services))
                if line.claims:
                    spooled.append(_spooled(record, False))
                offset += 1
        except Unsplittable:  # the command reads the batch itself (_checked_chunks)
            return [line.file]
    parts = bucket_rows(rows, buckets)
    if not any(line.claims for line in lines):
        return parts
    # In frames of a chunk's size: the check pass checks each in a task of its own.
    return parts, [msgspec.Raw(_ENCODER.encode(spooled[k:k + chunk_size]))
                   for k in range(0, len(spooled), chunk_size)], len(spooled)


def _validated_line(line: _Line, payers: set[str], first: Optional[str]) -> Any:
    """The record of a JSON Lines claim with the batch's checks; ``first``: where an earlier
    claim of the batch used its claim id (see :func:`pain_asp.inputs.readers.read_claims`)."""
    from ..inputs.records import cross_check

    record = _line_record(line)
    if record.claim is not None:
        cross_check(record, payers, {record.claim.claim_id: first} if first is not None else {})
    record.line_at = None
    return record


def _check_lines(checker: Any, body: bytes, fmt: str, colour: bool, validated: bool = False) -> CheckedChunk:
    """The check pass of a chunk with its parts of the batch index: lines to parse, or
    (``validated``) a piece's records validated in the index pass; see :func:`check_task`."""
    from ..inputs.records import Record, cross_check
    from .batch_index import identity_hash

    salt = body[:16]
    frame, repeats, rows, first = _decoder("line tasks").decode(memoryview(body)[16:])
    firsts = dict(itertools.chain.from_iterable(map(_decoder("repeats").decode, repeats)))
    index = PatientIndex()  # the chunk's patients with several claims, keyed by hashed ids
    for part in rows:
        for patient, claim_id, frequency, services in _decoder("patient rows").decode(part):
            index.add_services(patient, claim_id, frequency, services)
    index.freeze()
    payers = set(checker.known_payers())
    records = []
    if validated:  # a piece's records: the batch's claim-id check to add
        for offset, entry in enumerate(_decoder("spooled").decode(frame)):
            claim = None if bytes(entry.claim) == bytes(_NIL) else _decoder("claim").decode(entry.claim)
            record = Record(entry.file, entry.position, claim=claim, claim_id=entry.claim_id,
                            errors=[InputError(*e) for e in entry.errors])
            if record.claim is not None and first + offset in firsts:
                cross_check(record, payers, {record.claim.claim_id: firsts[first + offset]})
            records.append(record)
    else:
        records = [_validated_line(line, payers, firsts.get(offset))
                   for offset, line in enumerate(_decoder("lines").decode(frame))]
    past: dict[int, Callable[[], list[HistoryEntry]]] = {}
    for record in records:
        claim = record.claim
        if claim is not None:
            past[id(claim)] = functools.partial(_merged_others, index, claim, identity_hash(salt, claim.patient.id),
                                                identity_hash(salt, claim.claim_id))
    return _check_records(checker, records, past, fmt, colour)


def _merged_others(index: PatientIndex, claim: Claim, patient: bytes, claim_id: bytes) -> list[HistoryEntry]:
    return merge_history(claim, index.others(patient, claim_id))


def _check_records(checker: Any, records: list[Any], past: dict[int, Callable[[], list[HistoryEntry]]],
                   fmt: str, colour: bool) -> CheckedChunk:
    """Check and render ``records``; a claim's history is merged (``past``) only when the
    claim joins a solve, so a chunk never holds every claim's merged history at once (a
    patient with many claims would make it their square)."""
    return checked_chunk([_checked(result, fmt, colour)
                          for result in checker.check(records, history=lambda claim: past[id(claim)]())], fmt)


def _worker_main(conn: Any, options: Any, fmt: str, colour: bool, recycle_claims: int,
                 recycle_mb: float, task: Callable[..., list[Any]]) -> None:
    """A worker: one Checker, chunks in, rendered results out, until it is told to stop or retires.

    Replies are ``b"R"`` (results) or ``b"X"`` (retiring after these results) followed by
    msgpack ``(chunk number, items)``; ``b"U"`` + message for a user error (the knowledge
    base or a payer file did not load); ``b"B"`` + traceback for a bug.
    """
    import signal

    from ..engine import Checker

    # Ctrl-C reaches the whole process group: the parent stops the workers, they do not
    # print tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        checker = Checker(options)
    except PainAspError as exc:
        conn.send_bytes(b"U" + str(exc).encode("utf-8", "replace"))
        return
    done = 0
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        number = int.from_bytes(message[:8], "little")
        try:
            items = task(checker, message[8:], fmt, colour)
        except PainAspError as exc:
            conn.send_bytes(b"U" + str(exc).encode("utf-8", "replace"))
            return
        except Exception:  # noqa: BLE001 - reported to the parent with its traceback
            import traceback

            conn.send_bytes(b"B" + traceback.format_exc().encode("utf-8", "replace"))
            return
        # The index passes ground nothing (clingo does not grow): only checks count towards retiring.
        checked = message[8:9] in (b"L", b"X", b"R")
        done += len(items) if checked else 0
        retire = checked and (done >= recycle_claims or rss_mb() >= recycle_mb)
        try:
            conn.send_bytes((b"X" if retire else b"R") + _ENCODER.encode((number, items)))
        except OSError:  # the parent is gone (stopped or killed): nothing to report to
            return
        if retire:
            return


class _Worker:
    def __init__(self, context: Any, args: tuple[Any, ...]) -> None:
        parent, child = context.Pipe(duplex=True)
        self.conn = parent
        self.process = context.Process(target=_worker_main, args=(child, *args), daemon=True)
        self.process.start()
        child.close()
        self.chunk: Optional[int] = None

    def stop(self, wait: float = 5.0) -> None:
        try:
            self.conn.send_bytes(b"")
        except (OSError, ValueError):
            pass
        self.process.join(wait)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(wait)
        self.conn.close()


def _context() -> Any:
    # Workers fork from a server that has already imported clingo and the engine; the server
    # starts from a clean interpreter, so no state of this process is shared.
    return worker_context(["pain_asp.modes.check", "pain_asp.engine", "clingo"])


class WorkerPool:
    """Worker processes that check chunks; results come back in chunk order.

    ``task(checker, payload, fmt, colour)`` is run in a worker for each chunk (default
    :func:`check_task`; it must be importable by name). Workers retire after
    ``recycle_claims`` claims or past ``recycle_mb`` of resident memory and are replaced.
    """

    def __init__(self, workers: int, options: Any, fmt: str, colour: bool,
                 recycle_claims: int, recycle_mb: float,
                 task: Callable[..., list[Any]] = check_task) -> None:
        self.size = max(1, workers)
        self._context = _context()
        self._args = (options, fmt, colour, max(1, recycle_claims), recycle_mb, task)
        self._workers: list[_Worker] = []
        self.started = 0
        self.retired = 0
        self.died = 0
        self._streak = 0  # deaths since the last chunk checked

    def start(self, count: int) -> None:
        """Start workers now (up to ``count`` in all), e.g. while the batch is still being read."""
        while len(self._workers) < min(count, self.size):
            self._spawn()

    def _spawn(self) -> _Worker:
        worker = _Worker(self._context, self._args)
        self._workers.append(worker)
        self.started += 1
        return worker

    def run(self, chunks: Iterable[tuple[bytes, int]],
            on_failure: Callable[[int, str], list[Any]]) -> Iterator[Any]:
        """Check ``(payload, claims)`` chunks; yield each chunk's items, msgpack-encoded, in chunk order.

        ``on_failure(chunk number, why)`` gives the items for a chunk whose worker died twice.
        """
        from multiprocessing.connection import wait

        source = iter(chunks)
        payloads: dict[int, bytes] = {}
        attempts: dict[int, int] = {}
        retry: list[int] = []
        done: dict[int, Any] = {}
        next_in = next_out = 0
        exhausted = False
        window = 2 * self.size
        try:
            self.start(self.size)
            while True:
                for worker in self._workers:
                    if worker.chunk is not None:
                        continue
                    if retry:
                        number = retry.pop(0)
                    elif not exhausted and next_in - next_out < window:
                        try:
                            payload, _ = next(source)
                        except StopIteration:
                            exhausted = True
                            continue
                        number = next_in
                        next_in += 1
                        payloads[number] = payload
                        attempts[number] = 0
                    else:
                        continue
                    worker.chunk = number
                    try:
                        worker.conn.send_bytes(number.to_bytes(8, "little") + payloads[number])
                    except (OSError, ValueError):
                        pass  # the worker is gone; its sentinel says so below
                busy = [w for w in self._workers if w.chunk is not None]
                if not busy:
                    if exhausted and not retry:
                        break
                    if not self._workers:
                        self._spawn()
                    continue
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for worker in busy:
                    if worker.conn in ready or worker.conn.poll():
                        if not self._receive(worker, done, payloads):
                            self._died(worker, attempts, retry, done, payloads, on_failure)
                    elif worker.process.sentinel in ready:
                        self._died(worker, attempts, retry, done, payloads, on_failure)
                while next_out in done:
                    yield done.pop(next_out)
                    next_out += 1
        except BaseException:  # stopped early or failed; after a full run the workers stay for the next
            self.close()
            raise

    def _receive(self, worker: _Worker, done: dict[int, Any],
                 payloads: dict[int, bytes]) -> bool:
        """Take a worker's reply; False when there was none (the worker died)."""
        try:
            message = worker.conn.recv_bytes()
        except (EOFError, OSError):
            message = b""
        kind, body = message[:1], message[1:]
        if kind == b"U":
            raise PainAspError(body.decode("utf-8", "replace"))
        if kind == b"B":
            raise RuntimeError("a batch worker failed:\n" + body.decode("utf-8", "replace"))
        if kind not in (b"R", b"X"):  # the pipe closed without a reply: the worker died
            return False
        number, items = _decoder("results").decode(body)
        self._streak = 0
        done[number] = items
        payloads.pop(number, None)
        worker.chunk = None
        if kind == b"X":
            self.retired += 1
            self._workers.remove(worker)
            worker.process.join(5.0)
            worker.conn.close()
            self._spawn()
        return True

    def _died(self, worker: _Worker, attempts: dict[int, int], retry: list[int],
              done: dict[int, Any], payloads: dict[int, bytes],
              on_failure: Callable[[int, str], list[Any]]) -> None:
        number = worker.chunk
        worker.process.join(1.0)
        code = worker.process.exitcode
        self.died += 1
        self._streak += 1
        self._workers.remove(worker)
        worker.conn.close()
        if self._streak > 2 * self.size + 2:
            raise PainAspError(f"the worker processes keep stopping without checking anything "
                               f"(last exit code {code}); try --workers 1 or a smaller batch")
        self._spawn()
        if number is None:
            return
        attempts[number] += 1
        if attempts[number] >= 2:
            done[number] = _ENCODER.encode(
                on_failure(number, f"the worker process checking it stopped twice (exit code {code})"))
            payloads.pop(number, None)
        else:
            retry.append(number)

    def close(self) -> None:
        """Stop every worker."""
        workers, self._workers = self._workers, []
        for worker in workers:
            try:
                worker.conn.send_bytes(b"")
            except (OSError, ValueError):
                pass
        for worker in workers:
            worker.stop()


# --- the batch ---------------------------------------------------------------------------------

def iter_checked(files: Iterable[str | Path], checker: Any = None, *,
                 history_db: Optional[str | Path] = None,
                 options: Optional[BatchOptions] = None,
                 progress: Optional[Progress] = None,
                 summary: Optional[BatchSummary] = None,
                 task: Callable[..., list[Any]] = check_task) -> Iterator[Checked]:
    """Check every claim of ``files``; yield one :class:`Checked` per input claim, in input order.

    ``checker`` (a :class:`~pain_asp.engine.Checker`, default a new one with the shipped
    policy) decides the payers known; its options go to the workers. ``summary`` is filled
    in as items are yielded (a chunk at a time).
    """
    fmt = (options or BatchOptions()).fmt
    for items in _checked_chunks(files, checker, history_db=history_db, options=options,
                                 progress=progress, summary=summary, task=task):
        yield from chunk_items(items, fmt) if isinstance(items, CheckedChunk) else items


def _checked_chunks(files: Iterable[str | Path], checker: Any = None, *,
                    history_db: Optional[str | Path] = None,
                    options: Optional[BatchOptions] = None,
                    progress: Optional[Progress] = None,
                    summary: Optional[BatchSummary] = None,
                    task: Callable[..., Any] = check_task) -> Iterator[list[Checked] | CheckedChunk]:
    """:func:`iter_checked` a chunk at a time: each list is counted in ``summary`` before it is yielded."""
    from ..engine import Checker
    from ..inputs.readers import Unsplittable, read_claims, split_claims, splittable

    options = options or BatchOptions()
    if options.fmt not in FORMATS:
        raise PainAspError(f"--format {options.fmt}: expected one of {', '.join(FORMATS)}")
    checker = checker or Checker()
    summary = summary if summary is not None else BatchSummary()
    progress = progress or Progress(enabled=False)
    chunk_size = max(1, options.chunk_size)
    limit = max(0, options.in_memory_limit)
    records: Optional[list[Any]] = []
    spool: Optional[_Spool] = None
    pool: Any = None  # WorkerPool or DaskPool
    index = PatientIndex()
    count = 0
    store = None
    if history_db is not None:  # opened first: a missing store fails before any output
        from ..store import HistoryStore

        store = HistoryStore(history_db, create=False)
    files = list(files)
    if store is None and not options.with_charges and splittable(files):
        # JSON Lines, JSON arrays and 837P: this process only cuts the files into claims (an
        # 837P into transaction sets); workers parse and validate them.
        lines = split_claims(files)
        try:
            head: list[Any] = []
            claims = 0
            for item in lines:  # up to limit + 1 claims (an 837P's transaction sets hold several)
                head.append(item)
                claims += _claims_in(item)
                if claims > limit:
                    break
            if claims > limit:
                input_bytes = sum(Path(file).stat().st_size for file in files)
                yield from _with_lines(itertools.chain(head, lines), input_bytes, checker, options, progress, summary,
                                       task)
                return
        except Unsplittable:  # raised before any result (the index pass): read and parsed below
            pass
        lines.close()  # a small batch: read again below, and checked in this process
    try:
        for record in read_claims(files, checker.known_payers()):
            count += 1
            progress.reading(count)
            if spool is not None:
                spool.add(record)
                if record.claim is not None:
                    index.add(record.claim)
                continue
            assert records is not None
            records.append(record)
            if len(records) > limit:
                spool = _Spool(options.spool_dir, chunk_size, options.with_charges)
                # Workers start while the rest is read (their start-up is hidden behind it).
                pool = _pool(options, checker.options, task)
                pool.start(2)
                for held in records:
                    spool.add(held)
                    if held.claim is not None:
                        index.add(held.claim)
                records = None
        progress.total = count
        if spool is None:
            assert records is not None
            yield from _in_process(records, checker, store, options, progress, summary)
            return
        index.freeze()
        assert pool is not None
        yield from _with_workers(spool, index, pool, store, options, progress, summary)
    finally:
        if pool is not None:
            pool.close()
        if spool is not None:
            spool.close()
        if store is not None:
            store.close()
        progress.close(summary if summary.claims else None)


def _pool(options: BatchOptions, check_options: Any, task: Callable[..., list[Any]]) -> Any:
    """The processes that check chunks: local workers, or Dask with ``options.dask``."""
    if options.dask:
        from .dask_pool import DaskPool

        return DaskPool(options.dask, options.worker_count(), check_options, options.fmt,
                        options.colour, options.claims_per_worker(), options.recycle_mb, task,
                        WorkerPool)
    return WorkerPool(options.worker_count(), check_options, options.fmt, options.colour,
                      options.claims_per_worker(), options.recycle_mb, task)


def _in_process(records: list[Any], checker: Any, store: Any, options: BatchOptions,
                progress: Progress, summary: BatchSummary) -> Iterator[list[Checked]]:
    """A small batch: one pass, checked here, with :func:`pain_asp.history.batch_history`."""
    from ..history import batch_history

    summary.mode, summary.workers = "in-process", 0
    provider = batch_history([r.claim for r in records if r.claim is not None])
    if store is not None:
        from ..store import store_history

        provider = store_history(store, base=provider)
    for record, result in zip(records, checker.check(records, history=provider)):
        charges = _line_charges(record.claim) if options.with_charges else None
        item = _checked(result, options.fmt, options.colour, charges)
        summary.add(item)
        progress.checking(summary)
        yield [item]


def _failure_item(entry: _Spooled, why: str, fmt: str, colour: bool) -> Checked:
    """The error record of a claim whose chunk could not be checked (its input errors, if any)."""
    return _not_checked(entry.file, entry.position, entry.claim_id, entry.payer,
                        [InputError(*e) for e in entry.errors], why, fmt, colour)


def _not_checked(file: str, position: int, claim_id: Optional[str], payer: Optional[str],
                 input_errors: list[InputError], why: str, fmt: str, colour: bool) -> Checked:
    from ..findings import Result

    errors = [e.as_dict() for e in input_errors] or [{
        "file": file, "claim_id": claim_id, "field": "", "value": "",
        "expected": "a completed check", "message": f"not checked: {why}"}]
    return _checked(Result(file, position, claim_id, payer=payer, errors=errors), fmt, colour)


def _with_workers(spool: _Spool, index: PatientIndex, pool: WorkerPool, store: Any,
                  options: BatchOptions, progress: Progress,
                  summary: BatchSummary) -> Iterator[list[Checked] | CheckedChunk]:
    """A large batch: spool chunks, each claim's history from the index, checked by workers."""
    chunk_count = -(-spool.count // max(1, options.chunk_size))
    pool.size = max(1, min(pool.size, chunk_count))
    summary.mode, summary.workers = "dask" if options.dask else "workers", pool.size
    held: dict[int, list[_Spooled]] = {}
    provider: Optional[Callable[[Claim], list[HistoryEntry]]] = None
    if store is not None:  # the store needs the claim itself: decode it here
        from ..store import store_history

        provider = store_history(store, base=index)

    def outgoing(entry: _Spooled) -> _Outgoing:
        out = _Outgoing(entry.file, entry.position, entry.claim_id, entry.errors, entry.claim)
        if provider is not None and entry.patient is not None and entry.claim_id is not None:
            out.history = provider(_decoder("claim").decode(entry.claim))
        return out

    def chunks() -> Iterator[tuple[bytes, int]]:
        for number, entries in enumerate(spool.chunks()):
            held[number] = entries
            # Without a store, the worker merges each claim's history from the table of the
            # chunk's patients: each patient's services are sent once, not once per claim.
            table = index.table({e.patient for e in entries if e.patient is not None}) if provider is None else []
            yield b"R" + _ENCODER.encode(([outgoing(e) for e in entries], table)), len(entries)

    def failed(number: int, why: str) -> CheckedChunk:
        return checked_chunk([_failure_item(t, why, options.fmt, options.colour) for t in held[number]],
                             options.fmt)

    try:
        for number, blob in enumerate(pool.run(chunks(), failed)):
            chunk = _decoder("chunk").decode(blob)
            if options.with_charges:  # the report: each claim with its line charges
                items = chunk_items(chunk, options.fmt)
                for item, entry in zip(items, held[number]):
                    item.charges = entry.charges
                del held[number]
                yield _released(items, summary, progress)
            else:
                del held[number]
                yield _released(chunk, summary, progress)
    finally:
        _count_workers(summary, pool)


def _released(items: list[Checked] | CheckedChunk, summary: BatchSummary,
              progress: Progress) -> list[Checked] | CheckedChunk:
    """One chunk's results, counted in ``summary``."""
    if isinstance(items, CheckedChunk):
        summary.add_chunk(items)
    else:
        summary.add_all(items)
    progress.checking(summary)
    return items


def _count_workers(summary: BatchSummary, pool: Any) -> None:
    summary.workers_started = pool.started
    summary.workers_retired = pool.retired
    summary.workers_died = pool.died


def _with_lines(lines: Iterable[Any], input_bytes: int, checker: Any, options: BatchOptions, progress: Progress,
                summary: BatchSummary, task: Callable[..., Any]) -> Iterator[CheckedChunk]:
    """A large JSON Lines, JSON, YAML or 837P batch: this process cuts it into claims (an 837P
    into transaction sets, a YAML file given whole), spools them and joins results.

    Index pass: each chunk of lines goes to a worker, which parses and validates it and sends
    back, per claim, its ids (hashed) and encoded services sorted into buckets; a task per
    bucket then finds the repeated claim ids and one more the patients with several claims
    (:mod:`pain_asp.modes.batch_index`); this process only keeps the parts on disk
    (:class:`pain_asp.modes.batch_index.BatchIndex`), so it does not grow with the batch.
    Check pass: each chunk goes to a worker again, with its parts of the index (the claims'
    earlier uses of their claim ids and their patients' other services); the worker parses,
    validates, checks and renders. A chunk whose workers die in the index pass is not sent
    again: its claims get error records, and the batch's other claims do not see them; a
    bucket's task that kills its workers twice leaves every claim unchecked, saying why.
    """
    from ..inputs.readers import Unsplittable
    from ..inputs.records import Record
    from .batch_index import BatchIndex, bucket_count

    chunk_size = max(1, options.chunk_size)
    payers = set(checker.known_payers())
    spool = _Spool(options.spool_dir, chunk_size, False)
    validated = _Spool(options.spool_dir, chunk_size, False)  # a piece's records, from the index pass
    pool: Any = _pool(options, checker.options, task)
    index = BatchIndex(bucket_count(input_bytes, pool.size), _CHUNK_STRIDE, options.spool_dir)
    lost: dict[int, tuple[str, bytes]] = {}  # chunks the index pass could not read: why, frame
    sent: dict[int, bytes] = {}
    pieces: dict[int, Any] = {}   # the chunks that are an 837P's transaction sets or a YAML file: the piece
    with_records: dict[int, int] = {}  # ... whose records the index pass sent: frames in `validated`
    total = chunk_count = 0       # claims and chunks read
    index_failures: list[str] = []  # why a bucket's task of the index could not be done

    def blocks() -> Iterator[list[Any]]:
        """The chunks: up to chunk_size claims of JSON, a piece (an 837P's transaction sets, a
        YAML file) alone."""
        block: list[Any] = []
        for item in lines:
            if _is_piece(item):
                if block:
                    yield block
                yield [item]
                block = []
                continue
            block.append(item)
            if len(block) >= chunk_size:
                yield block
                block = []
        if block:
            yield block

    def frames() -> Iterator[tuple[bytes, int]]:
        nonlocal total, chunk_count
        sizes = index.buckets.to_bytes(4, "little") + chunk_size.to_bytes(4, "little")
        for number, block in enumerate(blocks()):
            # A line as read is already a _Line's array: (file, position, line number, text[, [], claims]).
            frame = spool.write([item if isinstance(item, tuple) else _Line(
                item.file, item.position, 0, b"", [(e.file, e.claim_id, e.field, e.value, e.expected, e.line)
                                                   for e in item.errors]) for item in block])
            claims = sum(map(_claims_in, block))
            if _is_piece(block[0]):
                pieces[number] = block[0]
            total, chunk_count = total + claims, chunk_count + 1
            progress.reading(total)
            sent[number] = frame
            yield b"I" + index.salt + (number * _CHUNK_STRIDE).to_bytes(8, "little") + sizes + frame, claims

    def unread(number: int, why: str) -> list[Any]:
        lost[number] = (why, sent[number])
        return []

    def unindexed(number: int, why: str) -> None:
        index_failures.append(why)  # the reply is nil

    def not_checked(frame: bytes, why: str, number: int) -> list[Checked]:
        items = []
        offset = 0
        for line in _decoder("lines").decode(frame):
            if line.claims:  # an 837P's transaction sets its workers died on: never read
                records = [Record(line.file, line.position + n) for n in range(line.claims)]
            else:
                try:
                    records = [_validated_line(line, payers, index.first(number * _CHUNK_STRIDE + offset))]
                except Unsplittable:  # never parsed (its chunk's workers died in the index pass)
                    records = [Record(line.file, line.position)]
            for record in records:
                offset += 1
                payer = record.claim.payer if record.claim is not None else None
                items.append(_not_checked(record.file, record.position, record.claim_id, payer,
                                          record.errors, why, options.fmt, options.colour))
        return items

    try:
        pool.start(2)
        for number, blob in enumerate(pool.run(frames(), unread)):
            sent.pop(number)
            if number in lost:
                if _is_yaml(pieces.get(number)):  # its claims are not known: the command reads the batch
                    raise Unsplittable(pieces[number][0])
                continue
            try:
                if number in pieces:
                    parts, records, count = _decoder("piece parts").decode(blob)
                    for frame in records:
                        validated.write_frame(frame)
                    with_records[number] = len(records)
                    total += count - _claims_in(pieces[number])  # a YAML file's claims were estimated
                else:
                    parts = _decoder("index parts").decode(blob)
            except msgspec.ValidationError:  # [file]: an element of a JSON array or an 837P piece that
                raise Unsplittable(msgspec.msgpack.decode(blob)[0]) from None  # does not read alone
            index.add(parts)
        for reply in pool.run(index.repeat_tasks(), unindexed):
            if memoryview(reply)[:1] != _NIL:  # a bucket's task that failed twice gives nil
                index.add_repeats(reply)
        for reply in pool.run(index.patient_tasks(), unindexed):
            if memoryview(reply)[:1] != _NIL:
                index.add_shared(reply)
        progress.total = total
        if index_failures and any(map(_is_yaml, pieces.values())):  # a YAML file's claims: read by the command
            raise Unsplittable(next(p[0] for p in pieces.values() if _is_yaml(p)))
        pool.size = max(1, min(pool.size, chunk_count))
        summary.mode, summary.workers = "dask" if options.dask else "workers", pool.size
        if index_failures:  # some claims' history or claim-id check is unknown: none is checked
            why = f"the batch's index could not be built ({index_failures[0]})"
            for number, frame in enumerate(spool.frames()):  # read back a chunk at a time, not held
                reason = lost.pop(number)[0] if number in lost else why
                yield _released(checked_chunk(not_checked(frame, reason, number), options.fmt), summary, progress)
            return
        order: list[tuple[int, int]] = []  # the tasks sent to the workers (chunk, part), by the pool's numbering
        checks: dict[tuple[int, int], bytes] = {}

        def chunks() -> Iterator[tuple[bytes, int]]:
            records = validated.frames()
            for number, frame in enumerate(spool.frames()):
                # A piece's records were read once, in the index pass: in frames of a chunk's size.
                tasks = [(b"X", next(records)) for _ in range(with_records[number])] if number in with_records \
                    else [(b"L", frame)]
                if number in lost:
                    continue
                repeats, rows = index.chunk(number)
                for part, (kind, data) in enumerate(tasks):
                    checks[number, part] = kind + data
                    order.append((number, part))
                    yield kind + index.salt + _ENCODER.encode((msgspec.Raw(data), repeats, rows, part * chunk_size)), \
                        chunk_size

        def failed(pool_number: int, why: str) -> CheckedChunk:
            number, part = order[pool_number]
            kind, frame = checks[number, part][:1], checks[number, part][1:]
            if kind == b"X":
                return checked_chunk([_failure_item(e, why, options.fmt, options.colour)
                                      for e in _decoder("spooled").decode(frame)], options.fmt)
            return checked_chunk(not_checked(frame, why, number), options.fmt)

        results = pool.run(chunks(), failed)
        for number in range(chunk_count):
            if number in lost:
                why, frame = lost.pop(number)
                yield _released(checked_chunk(not_checked(frame, why, number), options.fmt), summary, progress)
                continue
            for part in range(with_records.get(number, 1)):
                chunk = _decoder("chunk").decode(next(results))
                checks.pop((number, part), None)
                yield _released(chunk, summary, progress)
    finally:
        _count_workers(summary, pool)
        pool.close()
        spool.close()
        validated.close()
        index.close()
        progress.close(summary if summary.claims else None)


def _is_piece(item: Any) -> bool:
    """An item of :func:`pain_asp.inputs.readers.split_claims` that is a piece: an 837P's
    transaction sets or a YAML file."""
    return isinstance(item, tuple) and len(item) > 5


def _is_yaml(item: Any) -> bool:
    """A piece of :func:`pain_asp.inputs.readers.split_claims` that is a YAML file, read whole."""
    from ..inputs.readers import WHOLE_FILE

    return _is_piece(item) and item[2] == WHOLE_FILE


def _claims_in(item: Any) -> int:
    """The claims of an item of :func:`pain_asp.inputs.readers.split_claims`: an 837P's
    transaction sets hold several, a line or an error record one."""
    return item[5] if _is_piece(item) else 1


# Claim numbers in the batch index: chunk N's claims are numbered from N x this, so that a
# chunk may hold any number of claims (an 837P's transaction sets).
_CHUNK_STRIDE = 1 << 24


def check_files(files: Iterable[str | Path], out: TextIO, *, fmt: str = "text", colour: bool = False,
                checker: Any = None, history_db: Optional[str | Path] = None,
                options: Optional[BatchOptions] = None, progress: Optional[Progress] = None) -> BatchSummary:
    """Check ``files`` and write every result to ``out`` as it is ready (``pain-asp check``).

    The output is the same bytes whatever the number of workers. Returns the batch's counts.
    """
    from ..render.results import ResultWriter

    options = options or BatchOptions()
    options.fmt, options.colour = fmt, colour
    summary = BatchSummary()
    writer = ResultWriter(fmt, out, colour)
    for items in _checked_chunks(files, checker, history_db=history_db, options=options,
                                 progress=progress, summary=summary):
        if isinstance(items, CheckedChunk):
            writer.write_joined(items.text, items.claims, items.statuses)
        else:
            writer.write_all(items)
    writer.end()
    return summary


# --- partitions for a distributed engine (docs/scaling.md) ------------------------------------

def patient_key(raw: Any) -> Optional[str]:
    """The patient id of a raw claim mapping, or None when it has none (then any partition will do)."""
    if isinstance(raw, dict):
        patient = raw.get("patient")
        if isinstance(patient, dict):
            value = patient.get("id")
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                return str(value).strip()  # as the claim model reads it
    return None


def claim_identity(raw: Any) -> Optional[str]:
    """The claim id of a raw claim mapping that validates as a claim, else None.

    Only such claims take part in the batch's duplicate-id check (as in
    :func:`pain_asp.inputs.readers.read_claims`), and only originals: a replacement or void repeats
    the claim id of the claim it replaces.
    """
    from ..models import ValidationError, parse_claim

    if not isinstance(raw, dict):
        return None
    try:
        claim = parse_claim(raw)
    except (ValidationError, ValueError, TypeError):
        return None
    return claim.claim_id if claim.frequency == ORIGINAL else None


def duplicate_positions(ids: Iterable[tuple[int, Optional[str]]]) -> dict[int, int]:
    """``(position, claim_identity)`` pairs -> {position: position of the first claim with that id}."""
    first: dict[str, int] = {}
    out: dict[int, int] = {}
    for position, claim_id in sorted(ids, key=lambda pair: pair[0]):
        if claim_id is None:
            continue
        if claim_id in first:
            out[position] = first[claim_id]
        else:
            first[claim_id] = position
    return out


def check_partition(rows: Iterable[tuple[int, Any]], *, file: str = "<batch>",
                    duplicates: Optional[dict[int, int]] = None, checker: Any = None,
                    fmt: str = "jsonl") -> list[tuple[int, str]]:
    """Check one partition of a batch that holds *all* the claims of its patients.

    ``rows`` are ``(position, raw claim mapping)`` pairs of one input file named ``file``
    (positions count from 1, as in the file); ``duplicates`` maps the positions whose claim
    id an earlier claim of the whole batch already used to that claim's position
    (:func:`duplicate_positions`), so that they get the error record a one-machine run
    gives them. Returns ``(position, rendered result)`` pairs: sorting every partition's
    pairs by position gives the one-machine output of ``pain-asp check --format jsonl``.
    This is the unit of work for Dask, Ray or any engine that can group by a key (see
    docs/scaling.md).
    """
    from ..history import batch_history
    from ..inputs.records import cross_check, validate_record
    from ..render.results import render_result

    checker = checker or _partition_checker()
    payers = set(checker.known_payers())
    duplicates = duplicates or {}
    records = []
    for position, raw in sorted(rows, key=lambda row: row[0]):
        record = validate_record(raw, file, position, lambda keys, line=position: line)  # a JSON Lines line
        if record.claim is not None:
            seen = {}
            if position in duplicates:
                seen[record.claim.claim_id] = f"{file} claim {duplicates[position]}"
            cross_check(record, payers, seen)
        records.append(record)
    provider = batch_history([r.claim for r in records if r.claim is not None])
    return [(record.position, render_result(result, fmt))
            for record, result in zip(records, checker.check(records, history=provider))]


_PARTITION_CHECKER: dict[str, Any] = {}


def _partition_checker() -> Any:
    from ..engine import Checker

    if "checker" not in _PARTITION_CHECKER:
        _PARTITION_CHECKER["checker"] = Checker()
    return _PARTITION_CHECKER["checker"]
