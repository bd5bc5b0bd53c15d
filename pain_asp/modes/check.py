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
     and without a name, so that no patient data outlives the process; see :class:`Spool`).
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

Where each part lives: this module reads the batch, keeps order and counts, and writes the
results; :mod:`pain_asp.modes.batch_frames` holds what moves between the command, the spool
and the workers (the checked items, the spool, the patient index, msgpack);
:mod:`pain_asp.modes.workers` the worker processes and what they run;
:mod:`pain_asp.modes.batch_index` the index the workers build in buckets.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Optional, TextIO

import msgspec

from ..errors import InputError, PainAspError
from ..models import ORIGINAL, Claim, HistoryEntry
from ..vocabulary import FORMATS
from .batch_frames import (ENCODER, NIL, Checked, CheckedChunk, Outgoing, PatientIndex, Spool, Spooled, Unparsed,
                           checked_chunk, checked_item, chunk_items, decoder, line_charges, tally)
from .workers import WorkerPool, check_task, validated_line

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
        self._count(len(items), *tally(items))

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
    spool: Optional[Spool] = None
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
                spool = Spool(options.spool_dir, chunk_size, options.with_charges)
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
        charges = line_charges(record.claim) if options.with_charges else None
        item = checked_item(result, options.fmt, options.colour, charges)
        summary.add(item)
        progress.checking(summary)
        yield [item]


def _failure_item(entry: Spooled, why: str, fmt: str, colour: bool) -> Checked:
    """The error record of a claim whose chunk could not be checked (its input errors, if any)."""
    return _not_checked(entry.file, entry.position, entry.claim_id, entry.payer,
                        [InputError(*e) for e in entry.errors], why, fmt, colour)


def _not_checked(file: str, position: int, claim_id: Optional[str], payer: Optional[str],
                 input_errors: list[InputError], why: str, fmt: str, colour: bool) -> Checked:
    from ..findings import Result

    errors = [e.as_dict() for e in input_errors] or [{
        "file": file, "claim_id": claim_id, "field": "", "value": "",
        "expected": "a completed check", "message": f"not checked: {why}"}]
    return checked_item(Result(file, position, claim_id, payer=payer, errors=errors), fmt, colour)


def _with_workers(spool: Spool, index: PatientIndex, pool: WorkerPool, store: Any,
                  options: BatchOptions, progress: Progress,
                  summary: BatchSummary) -> Iterator[list[Checked] | CheckedChunk]:
    """A large batch: spool chunks, each claim's history from the index, checked by workers."""
    chunk_count = -(-spool.count // max(1, options.chunk_size))
    pool.size = max(1, min(pool.size, chunk_count))
    summary.mode, summary.workers = "dask" if options.dask else "workers", pool.size
    held: dict[int, list[Spooled]] = {}
    provider: Optional[Callable[[Claim], list[HistoryEntry]]] = None
    if store is not None:  # the store needs the claim itself: decode it here
        from ..store import store_history

        provider = store_history(store, base=index)

    def outgoing(entry: Spooled) -> Outgoing:
        out = Outgoing(entry.file, entry.position, entry.claim_id, entry.errors, entry.claim)
        if provider is not None and entry.patient is not None and entry.claim_id is not None:
            out.history = provider(decoder("claim").decode(entry.claim))
        return out

    def chunks() -> Iterator[tuple[bytes, int]]:
        for number, entries in enumerate(spool.chunks()):
            held[number] = entries
            # Without a store, the worker merges each claim's history from the table of the
            # chunk's patients: each patient's services are sent once, not once per claim.
            table = index.table({e.patient for e in entries if e.patient is not None}) if provider is None else []
            yield b"R" + ENCODER.encode(([outgoing(e) for e in entries], table)), len(entries)

    def failed(number: int, why: str) -> CheckedChunk:
        return checked_chunk([_failure_item(t, why, options.fmt, options.colour) for t in held[number]],
                             options.fmt)

    try:
        for number, blob in enumerate(pool.run(chunks(), failed)):
            chunk = decoder("chunk").decode(blob)
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
    spool = Spool(options.spool_dir, chunk_size, False)
    validated = Spool(options.spool_dir, chunk_size, False)  # a piece's records, from the index pass
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
            # A line as read is already a Unparsed's array: (file, position, line number, text[, [], claims]).
            frame = spool.write([item if isinstance(item, tuple) else Unparsed(
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
        for line in decoder("lines").decode(frame):
            if line.claims:  # an 837P's transaction sets its workers died on: never read
                records = [Record(line.file, line.position + n) for n in range(line.claims)]
            else:
                try:
                    records = [validated_line(line, payers, index.first(number * _CHUNK_STRIDE + offset))]
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
                    parts, records, count = decoder("piece parts").decode(blob)
                    for frame in records:
                        validated.write_frame(frame)
                    with_records[number] = len(records)
                    total += count - _claims_in(pieces[number])  # a YAML file's claims were estimated
                else:
                    parts = decoder("index parts").decode(blob)
            except msgspec.ValidationError:  # [file]: an element of a JSON array or an 837P piece that
                raise Unsplittable(msgspec.msgpack.decode(blob)[0]) from None  # does not read alone
            index.add(parts)
        for reply in pool.run(index.repeat_tasks(), unindexed):
            if memoryview(reply)[:1] != NIL:  # a bucket's task that failed twice gives nil
                index.add_repeats(reply)
        for reply in pool.run(index.patient_tasks(), unindexed):
            if memoryview(reply)[:1] != NIL:
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
                    yield kind + index.salt + ENCODER.encode((msgspec.Raw(data), repeats, rows, part * chunk_size)), \
                        chunk_size

        def failed(pool_number: int, why: str) -> CheckedChunk:
            number, part = order[pool_number]
            kind, frame = checks[number, part][:1], checks[number, part][1:]
            if kind == b"X":
                return checked_chunk([_failure_item(e, why, options.fmt, options.colour)
                                      for e in decoder("spooled").decode(frame)], options.fmt)
            return checked_chunk(not_checked(frame, why, number), options.fmt)

        results = pool.run(chunks(), failed)
        for number in range(chunk_count):
            if number in lost:
                why, frame = lost.pop(number)
                yield _released(checked_chunk(not_checked(frame, why, number), options.fmt), summary, progress)
                continue
            for part in range(with_records.get(number, 1)):
                chunk = decoder("chunk").decode(next(results))
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
